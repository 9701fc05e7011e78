"""The model server behind a Gateway listener: OpenAI API, routing, EPP and latency knobs."""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlsplit

import pytest
import requests
from support import Kube, condition, running_kube, wait_for
from test_controllers_llmisvc import LLM, gateway, llmisvc

MODEL = "Qwen/Qwen2.5-3B-Instruct"
EPP = "app.kubernetes.io/component=llminferenceservice-router-scheduler"


def router(name: str, ns: str, *verbosity: str) -> dict:
    """spec.router with the scheduler's args as the model phase renders them: every argument of
    KServe's kserve-config-llm-scheduler (9682be26), plus the given -v flags."""
    args = [
        *("--pool-name", f"{name}-inference-pool", "--pool-namespace", ns),
        *("--pool-group", "inference.networking.x-k8s.io", "--zap-encoder", "json"),
        *("--grpc-port", "9002", "--grpc-health-port", "9003", "--secure-serving"),
        *("--model-server-metrics-scheme", "https", "--cert-path", "/var/run/kserve/tls"),
        *verbosity,
    ]
    return {
        "gateway": {"refs": [{"name": "inference-gateway", "namespace": "opendatahub"}]},
        "route": {},
        "scheduler": {"template": {"containers": [{"name": "main", "args": args}]}},
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> tuple[Kube, str]:
    """A ready 3-replica LLMInferenceService; yields (kube, its URL)."""
    with running_kube(tmp_path_factory.mktemp("emu-models"), time_scale=0.001) as kube:
        kube.install_kserve()
        kube.create(gateway("inference-gateway", "opendatahub"))
        kube.namespace("llm")
        kube.create(llmisvc("qwen", "llm", replicas=3, router=router("qwen", "llm", "--v", "3")))

        def ready() -> str | None:
            obj = kube.get(LLM, "LLMInferenceService", "qwen", "llm")
            return condition(obj, "Ready").get("status") == "True" and obj["status"]["url"]

        yield kube, wait_for(ready, timeout=30, what="model Ready")


def test_models_completions_and_chat(served):
    _kube, url = served
    models = requests.get(f"{url}/v1/models", timeout=5).json()
    assert [m["id"] for m in models["data"]] == [MODEL]
    body = {"model": MODEL, "prompt": "one two three four", "max_tokens": 7, "ignore_eos": True}
    first = requests.post(f"{url}/v1/completions", json=body, timeout=5).json()
    again = requests.post(f"{url}/v1/completions", json=body, timeout=5).json()
    assert first["object"] == "text_completion"
    assert first["choices"][0]["text"] == again["choices"][0]["text"]  # deterministic
    assert len(first["choices"][0]["text"].split()) == 7
    assert first["choices"][0]["finish_reason"] == "length"
    assert first["usage"] == {"prompt_tokens": 4, "completion_tokens": 7, "total_tokens": 11}
    chat = requests.post(
        f"{url}/v1/chat/completions",
        timeout=5,
        json={
            "model": MODEL,
            "max_tokens": 3,
            "messages": [{"role": "user", "content": "hi there"}],
        },
    ).json()
    assert chat["object"] == "chat.completion"
    assert chat["choices"][0]["message"]["role"] == "assistant"
    assert chat["usage"]["completion_tokens"] == len(
        chat["choices"][0]["message"]["content"].split()
    )
    assert chat["usage"]["completion_tokens"] <= 3


def test_streaming_sse_with_usage(served):
    _kube, url = served
    body = {
        "model": MODEL,
        "max_tokens": 5,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "stream please"}],
    }
    with requests.post(f"{url}/v1/chat/completions", json=body, stream=True, timeout=5) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = [
            line[6:] for line in resp.iter_lines(decode_unicode=True) if line.startswith("data: ")
        ]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert len(text.split()) == 5
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 5
    assert chunks[-1]["usage"]["prompt_tokens"] == 2


def test_continuous_usage_counts_the_tokens_of_every_chunk(served):
    kube, url = served
    kube.admin_post("/config", {"model_server": {"tokens_per_chunk": 3}})
    try:
        body = {
            "model": MODEL,
            "prompt": "count my chunks",
            "max_tokens": 7,
            "ignore_eos": True,
            "stream": True,
            "stream_options": {"include_usage": True, "continuous_usage_stats": True},
        }
        with requests.post(f"{url}/v1/completions", json=body, stream=True, timeout=5) as resp:
            events = [line[6:] for line in resp.iter_lines() if line.startswith(b"data: {")]
    finally:
        kube.admin_post("/config", {"model_server": {"tokens_per_chunk": 1}})
    chunks = [json.loads(e) for e in events]
    content = [c for c in chunks if c["choices"]]
    # 7 tokens in chunks of 3, 3, 1; the usage of each is cumulative, as vLLM sends it
    assert [len(c["choices"][0]["text"].split()) for c in content] == [3, 3, 1]
    assert [c["usage"]["completion_tokens"] for c in content] == [3, 6, 7]
    assert all(c["usage"]["prompt_tokens"] == 3 for c in content)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 7


def test_errors_model_mismatch_http10_and_routes(served):
    _kube, url = served
    wrong = requests.post(
        f"{url}/v1/completions", json={"model": "other", "prompt": "x"}, timeout=5
    )
    assert wrong.status_code == 404
    assert wrong.json()["error"]["type"] == "NotFoundError"
    assert wrong.json()["error"]["message"] == "The model `other` does not exist."
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn._http_vsn, conn._http_vsn_str = 10, "HTTP/1.0"  # what ab sends
    conn.request("GET", parts.path + "/v1/models")
    assert conn.getresponse().status == 426
    conn.close()
    base = f"{parts.scheme}://{parts.netloc}"
    assert requests.get(f"{base}/llm/unknown/v1/models", timeout=5).status_code == 404


def test_epp_logs_and_prefix_affinity(served):
    kube, url = served
    (epp,) = kube.list("v1", "Pod", "llm", EPP)
    earlier = len(kube.logs("llm", epp["metadata"]["name"]))  # the module's other tests
    shared = "You are a helpful assistant. " * 20
    picked: set[str] = set()
    answers = []
    for i in range(6):
        resp = requests.post(
            f"{url}/v1/completions",
            timeout=5,
            headers={"x-request-id": f"client-{i}"},
            json={"model": MODEL, "prompt": shared + f"question {i}", "max_tokens": 2},
        )
        picked.add(resp.headers["x-emulator-pod"])
        answers.append(resp.json()["id"])
        assert "x-request-id" not in resp.headers  # neither Envoy nor vLLM returns it
    assert len(picked) == 1  # same prefix -> same pod
    spread = {
        requests.post(
            f"{url}/v1/completions",
            timeout=5,
            json={"model": MODEL, "prompt": f"unrelated prompt number {i} " * 10, "max_tokens": 2},
        ).headers["x-emulator-pod"]
        for i in range(6)
    }
    assert len(spread) >= 2  # new prefixes go to the least-loaded pods
    lines = kube.logs("llm", epp["metadata"]["name"])[earlier:]
    handled = [json.loads(line) for line in lines if '"msg":"Request handled"' in line]
    assert len(handled) == 12
    # the gateway replaced the client's id; vLLM's answer id carries the one the EPP logged
    assert [f"cmpl-{h['x-request-id']}" for h in handled[:6]] == answers
    assert not any("client-" in line for line in lines)
    first = handled[0]
    assert first["level"] == "Level(-3)" and first["caller"] == "requestcontrol/director.go:266"
    assert time.strptime(first["ts"], "%Y-%m-%dT%H:%M:%SZ")
    assert (first["incomingModelName"], first["targetModel"]) == (MODEL, MODEL)
    ips = {p["status"]["podIP"]: p["metadata"]["name"] for p in kube.list("v1", "Pod", "llm")}
    assert len(ips) == 4  # a distinct IP per pod: 3 model servers and the EPP
    assert {ips[h["endpoint"].rsplit(":", 1)[0]] for h in handled[:6]} == picked
    assert all(h["endpoint"].endswith(":8000") for h in handled)
    # zap writes the logger's values, then the call's: some keys twice
    raw = next(line for line in lines if '"msg":"Request handled"' in line)
    assert raw.count('"incomingModelName"') == 2 and raw.startswith('{"level":"Level(-3)","ts":')
    messages = [json.loads(line)["msg"] for line in lines[:5]]
    assert messages == [
        "Running scorer plugin",
        "Running scorer plugin",
        "Running picker plugin",
        "Request handled",
        "Response generated",
    ]
    stats = kube.admin_get("/model-server/stats")
    assert stats["epp:prefix_hit"] >= 5


def test_epp_at_upstream_default_verbosity_logs_nothing_per_request(tmp_path):
    with running_kube(tmp_path, time_scale=0.001) as kube:
        kube.install_kserve()
        kube.create(gateway("inference-gateway", "opendatahub"))
        kube.namespace("llm")
        kube.create(llmisvc("quiet", "llm", router=router("quiet", "llm")))

        def ready() -> str | None:
            obj = kube.get(LLM, "LLMInferenceService", "quiet", "llm")
            return condition(obj, "Ready").get("status") == "True" and obj["status"]["url"]

        url = wait_for(ready, timeout=30, what="model Ready")
        body = {"model": MODEL, "prompt": "hello there", "max_tokens": 2}
        assert requests.post(f"{url}/v1/completions", json=body, timeout=5).status_code == 200
        (epp,) = kube.list("v1", "Pod", "llm", EPP)
        assert kube.logs("llm", epp["metadata"]["name"]) == []


def test_latency_settings_and_fault_injection(served):
    kube, url = served
    kube.admin_post(
        "/config", {"model_server": {"ttft_ms": 200, "itl_ms": 20, "tokens_per_chunk": 1}}
    )
    try:
        body = {
            "model": MODEL,
            "prompt": "time me",
            "max_tokens": 10,
            "ignore_eos": True,
            "stream": True,
        }
        start = time.perf_counter()
        stamps = []
        with requests.post(f"{url}/v1/completions", json=body, stream=True, timeout=5) as resp:
            for line in resp.iter_lines():
                if line.startswith(b"data: {"):
                    stamps.append(time.perf_counter() - start)
        assert 0.18 <= stamps[0] < 0.6  # TTFT ~200 ms
        assert 0.15 <= stamps[-1] - stamps[0] < 0.6  # 9 gaps of ~20 ms
    finally:
        kube.admin_post("/config", {"model_server": {"ttft_ms": 0, "itl_ms": 0}})
    kube.admin_post("/model-server/faults", {"status": 503, "count": 2})
    codes = [
        requests.post(
            f"{url}/v1/completions", timeout=5, json={"model": MODEL, "prompt": "f"}
        ).status_code
        for _pos in range(3)
    ]
    assert codes == [503, 503, 200]
    stats = kube.admin_get("/model-server/stats")
    assert stats["503"] >= 2 and stats["200"] >= 1
