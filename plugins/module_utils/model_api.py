# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Smoke checks of an OpenAI-compatible model API behind the inference gateway.

`ApiChecker.run()` asks GET /v1/models, POST /v1/completions and POST /v1/chat/completions and
returns what each answered. A failure carries the HTTP status, an excerpt of the body and the
likely cause, told apart by what answered: Envoy's own 404 (no HTTPRoute matches) and 503 (no
healthy upstream: no Ready endpoint), vLLM's 404 NotFoundError (the model name is not the served
one), vLLM's `{"detail":"Not Found"}` (the path prefix reached vLLM but not an API path).
Answers that can be transient right after a deployment (Envoy's 404 and 503, 502/504, refused
connections) are retried until `wait_timeout` on the monotonic clock; the others fail at once.
"""

from __future__ import annotations

import json
import time
from urllib.error import HTTPError, URLError

from ansible.module_utils.urls import open_url

CHECKS = ("models", "completions", "chat")
EXCERPT = 300
TRANSIENT = {404, 502, 503, 504}


class ApiFailure(Exception):
    """A check that failed: message with cause and fix, plus what the module returns."""

    def __init__(self, message: str, result: dict) -> None:
        super().__init__(message)
        self.message = message
        self.result = result


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "********")
    return text


def excerpt(body: str, secrets: tuple[str, ...] = ()) -> str:
    text = redact(body.strip().replace("\n", " "), secrets)
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "..."


def _json(body: str):
    try:
        return json.loads(body)
    except ValueError:
        return None


def explain(
    status: int | None, body: str, model: str, served: list[str] | None
) -> tuple[str, bool]:
    """(likely cause and fix, transient?) for an answer that is not a good one."""
    data = _json(body) if body else None
    error = data.get("error") if isinstance(data, dict) else None
    if status is None:
        return (
            "the gateway did not answer (connection refused, reset or timed out): its load "
            "balancer may not be provisioned yet, a firewall may block this machine, or the "
            "address is private to the VPC. Check the Gateway's address and Programmed condition "
            "(kubectl get gateway -A) and run from a machine that reaches it.",
            True,
        )
    if (
        status == 404
        and isinstance(error, dict)
        and (error.get("param") == "model" or "does not exist" in str(error.get("message", "")))
    ):
        names = ", ".join(served) if served else "see GET /v1/models"
        return (
            f"model name mismatch: vLLM answered that `{model}` does not exist; it serves "
            f"{names}. Request the served name, or start vLLM with --served-model-name={model} "
            "(the model role sets it; a manifest that replaces the container args drops it and "
            "vLLM then serves /mnt/models).",
            False,
        )
    if status == 404 and isinstance(data, dict) and data.get("detail") == "Not Found":
        return (
            "the request reached vLLM but not one of its API paths: the URL prefix is wrong or the "
            "HTTPRoute rewrites it differently. The URL is http://<gateway>/<namespace>/<name>/v1/...",
            False,
        )
    if status == 404:
        return (
            "no route: the gateway has no HTTPRoute matching this path (Envoy's own 404). Check "
            "that the LLMInferenceService's HTTPRoute exists and is Accepted with ResolvedRefs "
            "(kubectl get httproute -n <namespace> -o yaml) and that the URL is "
            "http://<gateway>/<namespace>/<name>/v1/...",
            True,
        )
    if status == 503:
        return (
            "no ready endpoint: the route exists but the gateway found no healthy upstream (vLLM "
            "pods not Ready, an empty InferencePool, or the endpoint picker unreachable - for "
            "example a NetworkPolicy that blocks the gateway -> EPP port 9002). Check the pods and "
            "the EPP (kubectl get pods,inferencepool -n <namespace>).",
            True,
        )
    if status in (502, 504):
        return (
            f"the gateway could not get an answer from the model server ({status}): the vLLM "
            "pod is restarting or overloaded, or a NetworkPolicy blocks gateway -> vLLM port 8000.",
            True,
        )
    if status in (401, 403):
        return (
            f"the request was refused ({status}): the gateway or the model server requires "
            "credentials (api_key or an Authorization header).",
            False,
        )
    if status == 426:
        return ("the client spoke HTTP/1.0; Envoy requires HTTP/1.1 or later.", False)
    if status == 400:
        message = error.get("message") if isinstance(error, dict) else ""
        return (f"vLLM refused the request as invalid: {message or 'see the body'}.", False)
    return (f"unexpected answer {status} from the model server or the gateway.", status >= 500)


class ApiChecker:
    def __init__(
        self,
        url: str,
        model: str,
        *,
        prompt: str,
        max_tokens: int,
        timeout: float,
        wait_timeout: float,
        retry_interval: float,
        headers: dict | None = None,
        validate_certs: bool = True,
        ca_path: str | None = None,
        secrets: tuple[str, ...] = (),
        clock=time.monotonic,
        sleep=time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.prompt = prompt
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.wait_timeout = wait_timeout
        self.retry_interval = retry_interval
        self.headers = dict(headers or {})
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.secrets = tuple(s for s in secrets if s)
        self.clock = clock
        self.sleep = sleep
        self.served: list[str] | None = None
        self.attempts = 0
        self.deadline = 0.0

    # ---------------------------------------------------------------- HTTP
    def _call(self, method: str, path: str, payload: dict | None) -> tuple[int | None, str, float]:
        headers = {"Accept": "application/json", **self.headers}
        data = None
        if payload is not None:
            data = json.dumps(payload)
            headers["Content-Type"] = "application/json"
        start = time.perf_counter()
        try:
            response = open_url(
                self.url + path,
                method=method,
                data=data,
                headers=headers,
                timeout=self.timeout,
                validate_certs=self.validate_certs,
                ca_path=self.ca_path,
                follow_redirects="none",
            )
            status, body = response.status, response.read().decode("utf-8", "replace")
        except HTTPError as exc:
            status, body = exc.code, (exc.read() or b"").decode("utf-8", "replace")
        except (TimeoutError, URLError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            status, body = None, f"{type(exc).__name__}: {reason}"
        return status, body, round((time.perf_counter() - start) * 1000, 1)

    def _ask(self, name: str, method: str, path: str, payload: dict | None) -> tuple[dict, dict]:
        """One check, retried while the answer is transient; (parsed body, record)."""
        while True:
            self.attempts += 1
            status, body, elapsed = self._call(method, path, payload)
            record = {"status": status, "elapsed_ms": elapsed}
            if status is not None and 200 <= status < 300:
                data = _json(body)
                if isinstance(data, dict):
                    return data, record
                cause, transient = "the answer is not a JSON object.", False
            else:
                cause, transient = explain(status, body, self.model, self.served)
            if transient and self.clock() + self.retry_interval < self.deadline:
                self.sleep(self.retry_interval)
                continue
            what = f"HTTP {status}" if status is not None else "no answer"
            body_text = excerpt(body, self.secrets)
            cause = redact(cause, self.secrets)
            message = (
                f"{method} {self.url}{path}: {what}"
                + (f", body: {body_text!r}" if body_text else "")
                + f". Likely cause: {cause}"
            )
            record.update(body=body_text, cause=cause)
            raise ApiFailure(message, {"failed_check": name, name: record})

    def _fail(self, name: str, record: dict, problem: str) -> None:
        record["cause"] = problem
        raise ApiFailure(f"{name}: {problem}", {"failed_check": name, name: record})

    # ---------------------------------------------------------------- checks
    def models(self) -> dict:
        data, record = self._ask("models", "GET", "/v1/models", None)
        served = [str(m.get("id")) for m in data.get("data") or () if isinstance(m, dict)]
        self.served = served
        record["models"] = served
        if self.model not in served:
            self._fail(
                "models",
                record,
                f"model name mismatch: GET /v1/models lists {served or 'no model'}, not "
                f"`{self.model}`. Start vLLM with --served-model-name={self.model} (a manifest "
                "that replaces the container args drops it and vLLM serves /mnt/models), or set "
                "the served name you expect.",
            )
        return record

    def completion(self, chat: bool) -> dict:
        name = "chat" if chat else "completions"
        payload: dict = {"model": self.model, "max_tokens": self.max_tokens, "temperature": 0}
        if chat:
            payload["messages"] = [{"role": "user", "content": self.prompt}]
            path = "/v1/chat/completions"
        else:
            payload["prompt"] = self.prompt
            path = "/v1/completions"
        data, record = self._ask(name, "POST", path, payload)
        choices = data.get("choices") or [{}]
        first = choices[0] if isinstance(choices[0], dict) else {}
        text = (first.get("message") or {}).get("content") if chat else first.get("text")
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
        record.update(
            text=excerpt(text or "", self.secrets),
            finish_reason=first.get("finish_reason"),
            usage=usage,
            model=data.get("model"),
        )
        if not text or not text.strip():
            self._fail(name, record, "the answer has no text (choices[0] is empty).")
        if not usage or not usage.get("completion_tokens"):
            self._fail(name, record, "the answer has no usage with completion_tokens.")
        return record

    def run(self, checks: list[str]) -> dict:
        self.deadline = self.clock() + self.wait_timeout
        results: dict = {}
        try:
            for check in CHECKS:
                if check not in checks:
                    continue
                if check == "models":
                    results["models"] = self.models()
                else:
                    results[check] = self.completion(chat=check == "chat")
        except ApiFailure as exc:
            exc.result = {**results, **exc.result, "attempts": self.attempts}
            raise
        return results
