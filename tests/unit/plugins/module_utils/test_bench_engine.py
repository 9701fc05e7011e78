"""bench_engine against an in-process aiohttp server (its own thread and loop): SSE parsing with
multi-token chunks, error kinds, concurrency and request bounds, warm-up, Poisson arrivals, the
error-rate stop, request ids and headers. No assertion depends on how fast the machine is: only
lower bounds of latencies that the server enforces with sleeps."""

from __future__ import annotations

import asyncio
import json
import socket
import threading

import pytest
from aiohttp import web

from ansible_collections.llmd.gke.plugins.module_utils import bench_engine as be

MIXED = [  # answer by request sequence % 5
    ("ok", ["2"]),
    ("status", ["503"]),
    ("status", ["404"]),
    ("bad", []),
    ("ok", ["2"]),
]


class FakeServer:
    """OpenAI-like answers chosen by the path prefix before /v1/...:

    /ok/<delay_ms>                              JSON with usage
    /sse/<tokens per chunk>/<continuous 0|1>/<gap_ms>/<final usage 0|1>
    /mixed      by sequence % 5: ok, 503, 404, 200 with a non-JSON body, ok
    /status/<code>, /slow/<ms>, /nodone (SSE without [DONE]), /errevent (SSE error event)
    """

    def __init__(self) -> None:
        self.count = 0
        self.inflight = 0
        self.max_inflight = 0
        self.request_ids: list[str] = []
        self.headers: list[dict] = []
        self.bodies: list[dict] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.count += 1
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            return await self._answer(request)
        finally:
            self.inflight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(body)
        self.headers.append(dict(request.headers))
        rid = request.headers.get("x-request-id", "")
        self.request_ids.append(rid)
        parts = request.path.strip("/").split("/")
        mode, args = parts[0], parts[1 : parts.index("v1")]
        out = int(body.get("max_tokens", 16))
        prompt = body.get("prompt") or body["messages"][0]["content"]
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": out}
        usage["total_tokens"] = usage["prompt_tokens"] + out
        headers = {"x-gateway-destination-endpoint": "10.0.0.7:8000"}
        if mode == "mixed":
            mode, args = MIXED[int(rid.rsplit("-", 1)[1]) % 5]
        if mode == "ok":
            await asyncio.sleep(int(args[0]) / 1000)
            data = {"id": f"cmpl-gw-{rid}", "choices": [{"index": 0, "text": "w " * out}]}
            data["usage"] = usage
            return web.json_response(data, headers=headers)
        if mode == "status":
            return web.Response(status=int(args[0]), text="upstream says no", headers=headers)
        if mode == "bad":
            return web.Response(text="<html>not json</html>", headers=headers)
        if mode == "slow":
            await asyncio.sleep(int(args[0]) / 1000)
            return web.json_response({"choices": [], "usage": usage})
        resp = web.StreamResponse(headers={**headers, "content-type": "text/event-stream"})
        await resp.prepare(request)
        if mode == "nodone":
            await resp.write(b'data: {"choices":[{"index":0,"text":"a"}]}\n\n')
            return resp
        if mode == "split":  # events cut mid-line across reads, CRLF line ends, a comment line
            await resp.write(b': keep-alive\r\n\r\ndata: {"choices":[{"index":0,"te')
            await asyncio.sleep(0.02)
            await resp.write(b'xt":"a b "}]}\r\n\r\ndata: {"choices":[{"index":0,"text":"c"}]}')
            await asyncio.sleep(0.02)
            tail = {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 3}}
            await resp.write(b"\r\n\r\ndata: " + json.dumps(tail).encode() + b"\r\n\r\n")
            await resp.write(b"data: [DONE]\r\n\r\n")
            return resp
        if mode == "errevent":
            await resp.write(b'data: {"error":{"message":"engine died","code":500}}\n\n')
            await resp.write(b"data: [DONE]\n\n")
            return resp
        per_chunk, continuous, gap, final = (int(x) for x in args)
        chat = request.path.endswith("/chat/completions")
        if chat:  # vLLM's role chunk: no content
            role = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
            if continuous:
                role["usage"] = {"prompt_tokens": usage["prompt_tokens"], "completion_tokens": 0}
            await resp.write(b"data: " + json.dumps(role).encode() + b"\n\n")
        sent = 0
        while sent < out:
            await asyncio.sleep(gap / 1000)
            k = min(per_chunk, out - sent)
            sent += k
            text = "w " * k
            choice = (
                {"index": 0, "delta": {"content": text}} if chat else {"index": 0, "text": text}
            )
            event = {"id": f"cmpl-gw-{rid}", "choices": [choice]}
            if continuous:
                event["usage"] = {
                    "prompt_tokens": usage["prompt_tokens"],
                    "completion_tokens": sent,
                }
            # pretty separators on purpose (json.dumps default), as Python servers send them
            await resp.write(b"data: " + json.dumps(event).encode() + b"\n\n")
        if final:
            await resp.write(
                b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n"
            )
        await resp.write(b"data: [DONE]\n\n")
        return resp


@pytest.fixture
def server():
    srv = FakeServer()
    srv.start()
    yield srv
    srv.stop()


def spec(url: str, **options) -> dict:
    base = {
        "url": url,
        "model": "m",
        "levels": [2],
        "requests": 10,
        "max_tokens": 8,
        "prompts": {"count": 5, "input_tokens": 6},
        "return_records": True,
    }
    base.update(options)
    return base


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------ streaming
@pytest.mark.parametrize("continuous", [0, 1])
@pytest.mark.parametrize("api", ["completions", "chat"])
def test_sse_multi_token_chunks(server, continuous, api):
    # 12 tokens in chunks of 4, 30 ms apart: TTFT >= 30 ms (the server sleeps before the first
    # chunk); 8 ITL intervals per request (the first chunk's 4 tokens excluded)
    result = be.run(
        spec(
            f"{server.url}/sse/4/{continuous}/30/1",
            api=api,
            max_tokens=12,
            requests=3,
            levels=[1],
        )
    )
    level = result["levels"][0]
    assert level["completed"] == 3 and level["failed"] == 0
    assert level["ttft_ms"]["count"] == 3 and level["ttft_ms"]["min"] >= 30.0
    assert level["itl_ms"]["count"] == 3 * 8
    assert level["tpot_ms"]["count"] == 3
    assert level["e2e_latency_ms"]["min"] >= 90.0
    assert level["output_tokens"] == 36 and level["input_tokens"] == 18
    for record in result["records"]:
        after_first = record["e2e_ms"] - record["ttft_ms"]
        assert record["tpot_ms"] == pytest.approx(after_first / 11, abs=0.01)
        # the 8 intervals span the first to the last content chunk, within e2e - TTFT
        assert 0 < record["itl_mean_ms"] * 8 <= after_first + 0.01
    record = result["records"][0]
    assert record["output_tokens"] == 12 and record["input_tokens"] == 6
    assert record["endpoint"] == "10.0.0.7:8000"
    body = server.bodies[0]
    assert body["stream"] is True and body["ignore_eos"] is True
    assert body["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    assert ("messages" in body) == (api == "chat")


def test_sse_without_any_usage_counts_one_token_per_chunk(server):
    result = be.run(spec(f"{server.url}/sse/2/0/0/0", max_tokens=6, requests=2, levels=[1]))
    level = result["levels"][0]
    assert level["failed"] == 0
    # 3 chunks, no usage: output tokens = chunks, ITL over the 2 later chunks
    assert [r["output_tokens"] for r in result["records"]] == [3, 3]
    assert level["itl_ms"]["count"] == 4


def test_non_streaming_uses_usage_and_has_no_ttft(server):
    result = be.run(spec(f"{server.url}/ok/5", stream=False, requests=4, levels=[2]))
    level = result["levels"][0]
    assert level["completed"] == 4 and level["e2e_latency_ms"]["min"] >= 5.0
    assert level["ttft_ms"] is None and level["itl_ms"] is None and level["tpot_ms"] is None
    assert level["output_tokens"] == 4 * 8
    assert "stream_options" not in server.bodies[0]


# ------------------------------------------------------------------------------ errors
def test_error_kinds_are_counted_apart_and_kept_out_of_latency(server):
    result = be.run(
        spec(f"{server.url}/mixed", stream=False, requests=20, levels=[1], max_error_rate=1.0)
    )
    level = result["levels"][0]
    assert level["errors"] == {"http_404": 4, "http_503": 4, "invalid_response": 4}
    assert level["completed"] == 8 and level["failed"] == 12
    assert level["e2e_latency_ms"]["count"] == 8
    assert level["e2e_latency_ms"]["min"] >= 2.0  # only the ok answers (2 ms sleep) are in it
    assert "upstream says no" in level["error_samples"]["http_503"]
    statuses = {r["status"] for r in result["records"] if r["error"] == "invalid_response"}
    assert statuses == {200}


def test_timeout_and_connection_refused(server):
    result = be.run(spec(f"{server.url}/slow/600", stream=False, timeout=0.2, requests=2))
    level = result["levels"][0]
    assert level["errors"] == {"timeout": 2} and level["e2e_latency_ms"] is None
    assert level["request_throughput"] == 0.0
    refused = be.run(spec(f"http://127.0.0.1:{free_port()}", requests=3))["levels"][0]
    assert refused["errors"] == {"connection": 3} and refused["completed"] == 0


def test_sse_events_split_across_reads(server):
    result = be.run(spec(f"{server.url}/split", requests=2, levels=[1]))
    level = result["levels"][0]
    assert level["failed"] == 0
    # 2 content chunks carrying 3 tokens: spread as 1 + 2, the second chunk's gap counts twice
    assert [r["output_tokens"] for r in result["records"]] == [3, 3]
    assert level["itl_ms"]["count"] == 4
    assert level["ttft_ms"]["count"] == 2


@pytest.mark.parametrize("mode", ["nodone", "errevent"])
def test_broken_streams_are_invalid_responses(server, mode):
    level = be.run(spec(f"{server.url}/{mode}", requests=2))["levels"][0]
    assert level["errors"] == {"invalid_response": 2}


def test_error_rate_stop_skips_later_levels(server):
    result = be.run(
        spec(
            f"{server.url}/status/503",
            levels=[2, 4],
            requests=200,
            error_stop_min_requests=10,
            max_error_rate=0.5,
        )
    )
    assert len(result["levels"]) == 1 and result["levels_not_run"] == [4]
    level = result["levels"][0]
    assert level["stopped_early"] and "max_error_rate" in level["stopped_early"]
    assert 10 <= level["sent"] < 200  # stopped soon after 10 answers (2 more were in flight)
    assert level["sent"] <= 10 + 2
    assert result["stopped_early"].startswith("concurrency=2")


# ------------------------------------------------------------------------------ load shape
def test_concurrency_never_exceeds_the_level_and_requests_are_exact(server):
    result = be.run(spec(f"{server.url}/ok/20", stream=False, levels=[3], requests=17))
    assert server.max_inflight <= 3
    assert server.count == 17
    assert result["levels"][0]["sent"] == 17 and result["levels"][0]["completed"] == 17


def test_sweep_runs_each_level_with_its_own_bound(server):
    result = be.run(spec(f"{server.url}/ok/1", stream=False, levels=[1, 4], requests=6))
    assert [lv["label"] for lv in result["levels"]] == ["concurrency=1", "concurrency=4"]
    assert server.count == 12
    assert [r["level"] for r in result["records"]] == [1] * 6 + [4] * 6


def test_warmup_is_excluded_and_flagged(server):
    result = be.run(
        spec(f"{server.url}/ok/1", stream=False, levels=[2], requests=5, warmup_requests=3)
    )
    level = result["levels"][0]
    assert server.count == 8
    assert level["sent"] == 5 and level["warmup_sent"] == 3
    assert level["e2e_latency_ms"]["count"] == 5
    assert [r["warmup"] for r in result["records"]] == [True] * 3 + [False] * 5


def test_duration_bound_ends_the_level(server):
    result = be.run(
        {**spec(f"{server.url}/ok/10", stream=False, levels=[2], duration=0.2), "requests": None}
    )
    level = result["levels"][0]
    # at most 2 in flight for 0.2 s with >= 10 ms each: at most 2 * (0.2 / 0.01 + 1) sends
    assert 2 <= level["sent"] <= 42 and level["failed"] == 0


def test_request_ids_unique_and_sent_with_headers(server):
    result = be.run(
        spec(
            f"{server.url}/ok/0",
            stream=False,
            levels=[2, 2],
            requests=4,
            run_id="run7",
            api_key="sk-test-key",
            headers={"X-Tenant": "blue"},
        )
    )
    ids = [r["request_id"] for r in result["records"]]
    assert len(set(ids)) == 8 and sorted(ids) == sorted(server.request_ids)
    assert ids[0] == "run7-0-0" and ids[-1] == "run7-1-3"
    assert all(h["Authorization"] == "Bearer sk-test-key" for h in server.headers)
    assert all(h["X-Tenant"] == "blue" for h in server.headers)
    text = json.dumps(result)
    assert "sk-test-key" not in text and "blue" not in text
    # the answer's id (vLLM: cmpl-<x-request-id as it reached the server>) is kept
    assert all(r["response_id"] == f"cmpl-gw-{r['request_id']}" for r in result["records"])


def test_streamed_answers_keep_their_id_and_answers_without_one_none(server):
    streamed = be.run(spec(f"{server.url}/sse/1/0/0/1", requests=2, levels=[1]))
    assert [r["response_id"] for r in streamed["records"]] == [
        f"cmpl-gw-{r['request_id']}" for r in streamed["records"]
    ]
    plain = be.run(spec(f"{server.url}/slow/0", stream=False, requests=1, levels=[1]))
    assert plain["records"][0]["response_id"] is None


def test_prompts_cycle_and_prefix_groups_are_recorded(server):
    result = be.run(
        spec(
            f"{server.url}/ok/0",
            stream=False,
            levels=[1],
            requests=6,
            prompts={"count": 4, "input_tokens": 8, "prefix_groups": 2, "prefix_tokens": 4},
        )
    )
    assert [r["prefix_group"] for r in result["records"]] == [0, 1, 0, 1, 0, 1]
    prompts = [b["prompt"] for b in server.bodies]
    assert prompts[0] == prompts[4] and prompts[1] == prompts[5]
    assert prompts[0].split()[:4] == prompts[2].split()[:4] != prompts[1].split()[:4]


# ------------------------------------------------------------------------------ rate mode
def test_poisson_offsets_are_seeded():
    def take(seed, level=0, n=50):
        gen = be.arrival_offsets(10.0, "poisson", seed, level)
        return [next(gen) for _i in range(n)]

    assert take(1) == take(1)
    assert take(1) != take(2) and take(1) != take(1, level=1)
    offsets = take(5, n=2000)
    assert offsets == sorted(offsets) and offsets[0] == 0.0
    assert 150 < offsets[-1] < 250  # 2000 arrivals at 10/s: about 200 s of schedule
    constant = be.arrival_offsets(4.0, "constant", 0, 0)
    assert [next(constant) for _i in range(3)] == [0.0, 0.25, 0.5]


def test_rate_mode_schedule_reproducible_and_capped(server):
    def gaps(result):
        sched = [r["scheduled_s"] for r in result["records"]]
        return [round(b - a, 4) for a, b in zip(sched, sched[1:], strict=False)]

    options = dict(stream=False, load="rate", arrival="poisson", levels=[200.0], requests=12)
    first = be.run(spec(f"{server.url}/ok/0", seed=9, **options))
    second = be.run(spec(f"{server.url}/ok/0", seed=9, **options))
    assert gaps(first) == gaps(second)
    assert gaps(first) != gaps(be.run(spec(f"{server.url}/ok/0", seed=10, **options)))
    level = first["levels"][0]
    assert level["sent"] == 12 and level["max_schedule_lag_ms"] >= 0.0
    assert level["label"] == "rate=200/s"
    # a cap of 1 in flight with 50 ms answers at 100/s: arrivals wait for the slot
    server.max_inflight = 0
    capped = be.run(
        spec(
            f"{server.url}/ok/50",
            stream=False,
            load="rate",
            levels=[100.0],
            requests=5,
            max_concurrency=1,
        )
    )["levels"][0]
    assert server.max_inflight == 1
    assert capped["capped_arrivals"] >= 3 and capped["max_schedule_lag_ms"] >= 50.0


# ------------------------------------------------------------------------------ spec and plan
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"requests": None}, "duration"),
        ({"levels": [1.5]}, "whole numbers"),
        ({"load": "rate", "levels": [0]}, "above 0"),
        ({"url": "ftp://x"}, "http"),
        ({"model": ""}, "model is required"),
        ({"max_error_rate": 2}, "between 0 and 1"),
        ({"bogus": 1}, "unknown option"),
    ],
)
def test_bad_specs(options, message):
    with pytest.raises(be.BenchError, match=message):
        be.normalize({**spec("http://127.0.0.1:1"), **options})


def test_plan_describes_without_sending(server):
    plan = be.plan(spec(f"http://user:pw@127.0.0.1:{server.port}/prefix/v1", levels=[1, 8]))
    assert server.count == 0
    assert plan["endpoint"] == f"http://127.0.0.1:{server.port}/prefix/v1/completions"
    assert [lv["level"] for lv in plan["levels"]] == [1, 8]
    assert plan["max_measured_requests"] == 20 and plan["prompts"]["count"] == 5
