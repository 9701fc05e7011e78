"""bench_run's main() against an in-process aiohttp server: check mode sends nothing, a run with
an SLO miss fails with the table and writes the outputs, secrets never appear in the output,
option errors fail before sending."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from aiohttp import web
from ansible.module_utils.testing import patch_module_args

from ansible_collections.llmd.gke.plugins.module_utils import bench_report
from ansible_collections.llmd.gke.plugins.modules import bench_run

API_KEY = "sk-" + "Qx7" * 10
HEADER_VALUE = "tenant-secret-" + "9f" * 8


class Server:
    """Completions (JSON or SSE) with usage; counts what it receives."""

    def __init__(self) -> None:
        self.count = 0
        self.auth: set = set()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner = None
        self.port = 0

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.port = self.runner.addresses[0][1]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.count += 1
        self.auth.add(request.headers.get("Authorization"))
        body = await request.json()
        usage = {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}
        if request.path.startswith("/down/"):
            return web.Response(status=503, text="no healthy upstream")
        if not body.get("stream"):
            return web.json_response({"choices": [{"text": "a b c"}], "usage": usage})
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for _i in range(3):
            await resp.write(b'data: {"choices":[{"index":0,"text":"a "}]}\n\n')
        await resp.write(b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        return resp

    def __enter__(self):
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def server():
    with Server() as srv:
        yield srv


@pytest.fixture
def run(capsys):
    def call(args: dict, check_mode: bool = False) -> dict:
        if check_mode:
            args = dict(args, _ansible_check_mode=True)
        with patch_module_args(args), pytest.raises(SystemExit):
            bench_run.main()
        out = capsys.readouterr().out
        return json.loads(out), out

    return call


def args(server, **extra) -> dict:
    return {
        "url": f"http://127.0.0.1:{server.port}/ns/model",
        "model": "m",
        "levels": [1, 2],
        "requests": 5,
        "max_tokens": 3,
        "api_key": API_KEY,
        "headers": {"X-Tenant": HEADER_VALUE},
        "prompts": {"count": 3, "input_tokens": 4},
        **extra,
    }


def test_check_mode_sends_nothing_and_returns_the_plan(server, run, tmp_path):
    result, raw = run(args(server, results_dir=str(tmp_path / "r")), check_mode=True)
    assert server.count == 0 and not (tmp_path / "r").exists()
    assert result["changed"] is False and "levels" not in result
    plan = result["plan"]
    assert plan["endpoint"].endswith("/ns/model/v1/completions")
    assert [lv["requests"] for lv in plan["levels"]] == [5, 5]
    assert plan["prompts"]["count"] == 3 and plan["header_names"] == ["X-Tenant"]
    assert API_KEY not in raw and HEADER_VALUE not in raw


def test_run_with_slo_miss_fails_with_table_and_writes_outputs(server, run, tmp_path, monkeypatch):
    # the plots are tested in test_bench_report; here a stub marks that they were asked for
    monkeypatch.setattr(bench_report, "plots", lambda d, s, r: [f"{d}/plots-stub.png"])
    slo = [
        {"metric": "error_rate", "max": 0},
        {"metric": "request_throughput", "min": 1e9},
    ]
    result, raw = run(args(server, slo=slo, results_dir=str(tmp_path), return_records=True))
    assert result["failed"] is True and result["changed"] is True
    assert result["msg"].startswith("2 of 4 SLO checks missed")
    assert "request_throughput" in result["msg"] and "error_rate" not in result["msg"]
    assert server.count == 10 and server.auth == {f"Bearer {API_KEY}"}
    assert [lv["completed"] for lv in result["levels"]] == [5, 5]
    assert result["levels"][0]["ttft_ms"]["count"] == 5
    assert len(result["records"]) == 10
    names = {p.rsplit("/", 1)[1] for p in result["files"]}
    assert names == {"summary.json", "requests.csv", "report.md", "plots-stub.png"}
    # secrets: neither the API key nor a header value anywhere, files included
    assert API_KEY not in raw and HEADER_VALUE not in raw
    for path in tmp_path.iterdir():
        if path.suffix != ".png":
            text = path.read_text()
            assert API_KEY not in text and HEADER_VALUE not in text


def test_passing_run_returns_changed_without_files(server, run):
    result, _raw = run(args(server, stream=False, slo=[{"metric": "error_rate", "max": 0}]))
    assert result.get("failed") is not True and result["changed"] is True
    assert result["slo_passed"] is True and result["files"] == []
    assert "records" not in result and result["percentile_method"].startswith("linear")


def test_error_stop_fails_with_hint(server, run):
    result, _raw = run(
        args(server, url=f"http://127.0.0.1:{server.port}/down", levels=[1, 2], requests=40)
    )
    assert result["failed"] is True and "Stopped early" in result["msg"]
    assert "503" in result["msg"] and result["levels_not_run"] == [2.0]
    assert server.count < 40


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"requests": None}, "one of the following is required: duration, requests"),
        ({"slo": [{"metric": "latency_p95", "max": 1}]}, "unknown metric"),
        ({"levels": [2.5]}, "whole numbers"),
        ({"prompts": {"prefix_groups": 2}}, "go together"),
    ],
)
def test_bad_options_fail_before_sending(server, run, extra, message):
    params = {k: v for k, v in args(server, **extra).items() if v is not None}
    result, _raw = run(params)
    assert result["failed"] is True and message in result["msg"]
    assert server.count == 0
