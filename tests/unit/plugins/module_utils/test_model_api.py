"""model_api: the smoke checks against a local HTTP server that answers from a script."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.llmd.gke.plugins.module_utils.model_api import (
    ApiChecker,
    ApiFailure,
    explain,
)

MODEL = "Qwen/Qwen2.5-3B-Instruct"
GOOD = {
    "GET /v1/models": (200, {"object": "list", "data": [{"id": MODEL}]}),
    "POST /v1/completions": (
        200,
        {
            "choices": [{"text": " hello there", "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            "model": MODEL,
        },
    ),
    "POST /v1/chat/completions": (
        200,
        {
            "choices": [
                {"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            "model": MODEL,
        },
    ),
}
ENVOY_404 = (404, b"")
ENVOY_503 = (503, b"no healthy upstream")
WRONG_MODEL = (
    404,
    {
        "error": {
            "message": f"The model `{MODEL}` does not exist.",
            "type": "NotFoundError",
            "param": "model",
            "code": 404,
        }
    },
)


class Server:
    """Answers `script[key]` (a list is consumed one answer per request; the last one stays)."""

    def __init__(self) -> None:
        self.script: dict = {}
        self.seen: list[tuple[str, dict, dict]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else {}
                path = self.path.removeprefix("/ns/m")
                key = f"{self.command} {path}"
                server.seen.append((key, body, dict(self.headers)))
                answers = server.script.get(key, (404, b""))
                if isinstance(answers, list):
                    answer = answers.pop(0) if len(answers) > 1 else answers[0]
                else:
                    answer = answers
                status, payload = answer
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/ns/m"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = Server()
    srv.script = dict(GOOD)
    yield srv
    srv.close()


class Clock:
    """A fake monotonic clock that the fake sleep advances."""

    def __init__(self):
        self.now = 0.0
        self.slept = 0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds
        self.slept += 1


def checker(url, clock=None, **options):
    clock = clock or Clock()
    defaults = dict(
        prompt="say hi",
        max_tokens=4,
        timeout=5,
        wait_timeout=30,
        retry_interval=2,
        clock=clock,
        sleep=clock.sleep,
    )
    return ApiChecker(url, MODEL, **{**defaults, **options})


def test_all_three_checks_pass_and_return_text_and_usage(server):
    check = checker(server.url)
    result = check.run(["models", "completions", "chat"])
    assert result["models"]["models"] == [MODEL]
    assert result["completions"]["text"] == "hello there"
    assert result["completions"]["usage"]["completion_tokens"] == 2
    assert result["chat"]["text"] == "hi" and result["chat"]["finish_reason"] == "stop"
    assert check.attempts == 3
    keys = [k for k, _b, _h in server.seen]
    assert keys == ["GET /v1/models", "POST /v1/completions", "POST /v1/chat/completions"]
    assert server.seen[1][1] == {
        "model": MODEL,
        "max_tokens": 4,
        "temperature": 0,
        "prompt": "say hi",
    }
    assert server.seen[2][1]["messages"] == [{"role": "user", "content": "say hi"}]


def test_envoy_404_and_503_are_retried_until_the_route_answers(server):
    server.script["GET /v1/models"] = [ENVOY_404, ENVOY_503, GOOD["GET /v1/models"]]
    clock = Clock()
    result = checker(server.url, clock).run(["models"])
    assert result["models"]["status"] == 200
    assert clock.slept == 2


def test_503_until_the_deadline_fails_with_status_body_and_cause(server):
    server.script["POST /v1/completions"] = ENVOY_503
    clock = Clock()
    with pytest.raises(ApiFailure) as failure:
        checker(server.url, clock, wait_timeout=10).run(["models", "completions"])
    message = failure.value.message
    assert message.startswith(f"POST {server.url}/v1/completions: HTTP 503")
    assert "'no healthy upstream'" in message
    assert "no ready endpoint" in message and "9002" in message
    result = failure.value.result
    assert result["failed_check"] == "completions"
    assert result["completions"]["status"] == 503
    assert result["models"]["status"] == 200  # the checks before the failure are kept
    assert 4 <= clock.slept <= 5  # every 2 s within 10 s


def test_a_wrong_model_name_fails_at_once_and_names_the_served_one(server):
    server.script["GET /v1/models"] = (200, {"data": [{"id": "/mnt/models"}]})
    clock = Clock()
    with pytest.raises(ApiFailure) as failure:
        checker(server.url, clock).run(["models"])
    assert "lists ['/mnt/models'], not `Qwen/Qwen2.5-3B-Instruct`" in failure.value.message
    assert "--served-model-name=Qwen/Qwen2.5-3B-Instruct" in failure.value.message
    assert clock.slept == 0
    server.script["POST /v1/completions"] = WRONG_MODEL
    check = checker(server.url, clock)
    check.served = ["/mnt/models"]
    with pytest.raises(ApiFailure) as failure:
        check.run(["completions"])
    assert "HTTP 404" in failure.value.message
    assert (
        "model name mismatch" in failure.value.message
        and "serves /mnt/models" in failure.value.message
    )
    assert clock.slept == 0


def test_answers_without_text_or_usage_fail(server):
    server.script["POST /v1/completions"] = (200, {"choices": [{"text": ""}], "usage": {}})
    with pytest.raises(ApiFailure, match="has no text"):
        checker(server.url).run(["completions"])
    server.script["POST /v1/completions"] = (200, {"choices": [{"text": "x"}]})
    with pytest.raises(ApiFailure, match="no usage"):
        checker(server.url).run(["completions"])


def test_no_answer_is_retried_then_explained():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once closed
    clock = Clock()
    with pytest.raises(ApiFailure) as failure:
        checker(f"http://127.0.0.1:{port}/ns/m", clock, wait_timeout=5).run(["models"])
    assert ": no answer, body: " in failure.value.message
    assert "did not answer" in failure.value.message
    assert failure.value.result["models"]["status"] is None
    assert clock.slept == 2


def test_header_values_are_sent_and_redacted_from_excerpts(server):
    secret = "tok-" + "9" * 20
    server.script["POST /v1/completions"] = (400, {"error": {"message": f"bad key {secret}"}})
    check = checker(
        server.url,
        headers={"Authorization": f"Bearer {secret}"},
        secrets=(f"Bearer {secret}", secret),
    )
    with pytest.raises(ApiFailure) as failure:
        check.run(["completions"])
    assert server.seen[0][2]["Authorization"] == f"Bearer {secret}"
    assert secret not in failure.value.message
    assert secret not in json.dumps(failure.value.result)
    assert "********" in failure.value.message


@pytest.mark.parametrize(
    ("status", "body", "words", "transient"),
    [
        (404, '{"detail":"Not Found"}', "URL prefix is wrong", False),
        (404, "", "no route", True),
        (502, "", "could not get an answer", True),
        (401, "", "requires", False),
        (426, "", "HTTP/1.0", False),
        (500, "", "unexpected answer 500", True),
        (418, "", "unexpected answer 418", False),
    ],
)
def test_explain(status, body, words, transient):
    cause, retry = explain(status, body, MODEL, None)
    assert words in cause
    assert retry is transient
