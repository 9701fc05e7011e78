"""The verify and bench phases, and bench_run's measurements, against a model the emulator serves.

No site converge: the serving path is set up with kubectl - permissive CRDs, the Gateway
opendatahub/inference-gateway on a free port (the emulated Istio binds that very port, so the
Gateway's address and port are the URL the phases use) and the LLMInferenceService
llm-d-inference-scheduling/qwen2-3b-pattern1, for which the emulated KServe controller makes the
vLLM Deployment, the endpoint picker (EPP), the HTTPRoute and the InferencePool. The emulated vLLM
answers in real time with the latency set through the admin API (ttft_ms, itl_ms,
tokens_per_chunk). The service's router.scheduler carries the EPP arguments the model phase
renders (KServe's scheduler config plus --v 3), so its EPP logs upstream's `Request handled`
line per routing decision; the LLMInferenceService `quiet` leaves the EPP at upstream's default
verbosity (2), where it logs none.
"""

from __future__ import annotations

import csv
import json
import time

import pytest
from conftest import apply, free_port, kubectl, recap, running_emulator, tasks_runner

from llmd_emulator.testing import (
    SERVING_CRDS,
    gateway,
    kserve_presets,
    kserve_root,
    llm_inference_service,
    namespace,
)

NS = "llm-d-inference-scheduling"
NAME = "qwen2-3b-pattern1"
MODEL = "Qwen/Qwen2.5-3B-Instruct"
PNG = b"\x89PNG\r\n\x1a\n"
QUIET = "quiet"


def with_epp_verbosity(service: dict, verbosity: int) -> dict:
    """The service with router.scheduler as the model phase renders it for model_epp_verbosity
    (held against KServe's real scheduler config by test_model_render.py)."""
    name, ns = service["metadata"]["name"], service["metadata"]["namespace"]
    args = [
        *("--pool-name", f"{name}-inference-pool", "--pool-namespace", ns),
        *("--pool-group", "inference.networking.x-k8s.io", "--zap-encoder", "json"),
        *("--grpc-port", "9002", "--grpc-health-port", "9003", "--secure-serving"),
        *("--model-server-metrics-scheme", "https", "--cert-path", "/var/run/kserve/tls"),
        *("--v", str(verbosity)),
    ]
    service["spec"]["router"]["scheduler"] = {
        "template": {"containers": [{"name": "main", "args": args}]}
    }
    return service


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    port = free_port()
    with running_emulator(tmp_path_factory.mktemp("verify-bench"), time_scale=0.01) as endpoints:
        endpoints.admin_post("/config", {"gateway": {"bind_exact_ports": True}})
        apply(endpoints, *SERVING_CRDS)
        apply(endpoints, *kserve_presets(kserve_root()), namespace(NS))
        apply(
            endpoints,
            gateway(port=port),
            with_epp_verbosity(llm_inference_service(NAME, NS), 3),
            llm_inference_service(QUIET, NS),
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            services = endpoints.objects("LLMInferenceService", NS)
            ready = [
                s
                for s in services
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in (s.get("status") or {}).get("conditions") or ()
                )
            ]
            if len(ready) == 2:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"the LLMInferenceServices did not get Ready: {services}")
        yield endpoints, port


@pytest.fixture
def latency(served):
    """latency(ttft_ms=..., itl_ms=..., tokens_per_chunk=...) for one test; reset after it."""
    endpoints, _port = served

    def set_latency(**settings) -> None:
        endpoints.admin_post("/config", {"model_server": settings})

    yield set_latency
    set_latency(ttft_ms=0, itl_ms=0, tokens_per_chunk=1)
    endpoints.admin_post("/model-server/faults", {})


@pytest.fixture
def phase(playbook, served, tmp_path):
    """phase(name, *args, **extra_vars) runs playbooks/<name>.yml on the sandbox inventory."""
    endpoints, port = served

    def run(name: str, *args: str, **extra):
        variables = {
            "llmd_kubeconfig": endpoints.kubeconfig,
            "llmd_gateway_port": port,
            "bench_results_root": str(tmp_path / "results"),
            "bench_run_name": "run",
            **extra,
        }
        return playbook(
            f"playbooks/{name}.yml", "-i", "inventories/sandbox", "-e", json.dumps(variables), *args
        )

    return run


def test_verify_answers_and_routes_shared_prefixes_to_one_pod(phase, served):
    endpoints, _port = served
    before = endpoints.admin_get("/model-server/stats")
    check = phase("verify", "--check")
    assert check.rc == 0, check.output
    assert "Check mode: no request sent" in check
    assert endpoints.admin_get("/model-server/stats") == before  # nothing was sent

    run = phase(
        "verify", "-e", "verify_prefix_groups=3", "-e", "verify_prefix_requests_per_group=4"
    )
    assert run.rc == 0, run.output
    assert recap(run)["changed"] == 0
    assert f"/{NS}/{NAME} serves {MODEL}." in run
    assert "completions: HTTP 200" in run and "chat: HTTP 200" in run
    # One replica: every follow-up of a group hits the prefix its first request left in the cache.
    assert "Prefix-cache routing: 9 hits in 9 follow-up requests (ratio 1.0, same pod as" in run
    assert "from 12 EPP decisions at verbosity 3" in run
    after = endpoints.admin_get("/model-server/stats")
    assert after["200"] - before.get("200", 0) >= 3 + 12


def test_verify_failures_name_status_and_cause(phase, latency, served):
    endpoints, _port = served
    wrong = phase("verify", "-e", "llmd_model_name=other/model")
    assert wrong.rc != 0
    assert "lists ['Qwen/Qwen2.5-3B-Instruct'], not `other/model`" in wrong
    assert "--served-model-name=other/model" in wrong

    endpoints.admin_post("/model-server/faults", {"status": 503, "rate": 1.0})
    down = phase("verify", verify_wait_timeout=2, verify_checks=["completions"])
    assert down.rc != 0
    assert "/v1/completions: HTTP 503" in down, down.output
    assert "no ready endpoint" in down


def test_bench_writes_reports_and_fails_on_a_missed_slo(phase, latency, tmp_path):
    latency(ttft_ms=20, itl_ms=2)
    slo = [{"metric": "e2e_latency_ms.p50", "max": 1}, {"metric": "error_rate", "max": 0.5}]
    missed = phase("bench", "-e", json.dumps({"bench_slo": slo}))
    assert missed.rc != 0
    assert "e2e_latency_ms.p50" in missed and "error_rate" in missed
    results = tmp_path / "results" / "run"
    summary = json.loads((results / "summary.json").read_text())
    assert [level["level"] for level in summary["levels"]] == [1, 4]
    assert all(level["completed"] == 24 for level in summary["levels"])
    assert summary["slo_passed"] is False
    verdicts = {(row["level"], row["metric"]): row["verdict"] for row in summary["slo"]}
    assert verdicts == {
        ("concurrency=1", "e2e_latency_ms.p50"): "MISS",
        ("concurrency=1", "error_rate"): "pass",
        ("concurrency=4", "e2e_latency_ms.p50"): "MISS",
        ("concurrency=4", "error_rate"): "pass",
    }
    with (results / "requests.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    measured = [r for r in rows if r["warmup"].lower() not in ("true", "1")]
    assert len(measured) == 48
    assert all(float(r["ttft_ms"]) >= 20 for r in measured)
    assert "e2e_latency_ms.p50" in (results / "report.md").read_text()
    plots = sorted(results.glob("*.png"))
    assert len(plots) >= 2 and all(p.read_bytes().startswith(PNG) for p in plots)

    passed = phase("bench", "-e", "bench_run_name=again")
    assert passed.rc == 0, passed.output
    assert recap(passed)["changed"] == 1  # it sent load and wrote a report: never idempotent
    assert "concurrency 4: 24 ok, 0 failed" in passed


def test_bench_run_measures_what_the_server_was_told_to_take(playbook, served, latency, tmp_path):
    """At concurrency 20 against 800 ms answers: 25 req/s within 3 %, p50 within 10 ms of 800 ms;
    streamed in chunks of 4 tokens 20 ms apart after 200 ms: TTFT 200 ms, ITL 20 ms per token."""
    endpoints, port = served
    url = f"http://127.0.0.1:{port}/{NS}/{NAME}"
    run_tasks = tasks_runner(playbook, tmp_path)
    base = {"url": url, "model": MODEL, "prompts": {"source": "synthetic", "input_tokens": 32}}
    latency(ttft_ms=800, itl_ms=0)
    outcome, (plain,) = run_tasks(
        [
            {
                "name": "Non-streamed at concurrency 20",
                "llmd.gke.bench_run": {
                    **base,
                    "stream": False,
                    "max_tokens": 1,
                    "levels": [20],
                    "requests": 200,
                    "warmup_requests": 20,
                },
            }
        ]
    )
    assert not plain.get("failed"), outcome.output
    (level,) = plain["levels"]
    assert level["completed"] == 200 and level["failed"] == 0
    assert abs(level["request_throughput"] - 25.0) <= 0.03 * 25.0, level
    assert abs(level["e2e_latency_ms"]["p50"] - 800.0) <= 10.0, level

    latency(ttft_ms=200, itl_ms=20, tokens_per_chunk=4)
    outcome, (streamed,) = run_tasks(
        [
            {
                "name": "Streamed in chunks of 4 tokens",
                "llmd.gke.bench_run": {
                    **base,
                    "stream": True,
                    "max_tokens": 32,
                    "levels": [8],
                    "requests": 40,
                },
            }
        ]
    )
    assert not streamed.get("failed"), outcome.output
    (level,) = streamed["levels"]
    assert level["completed"] == 40
    assert abs(level["ttft_ms"]["p50"] - 200.0) <= 10.0, level
    assert abs(level["itl_ms"]["p50"] - 20.0) <= 1.0, level
    assert abs(level["itl_ms"]["mean"] - 20.0) <= 1.0, level


def test_pattern_3_groups_spread_over_three_pods_and_stay_on_theirs(playbook, served, tmp_path):
    """Three replicas (the guide's pattern 3): the first request of each group goes to the least
    busy pod, its follow-ups to the pod that holds the group's prefix."""
    endpoints, port = served
    kubectl(
        endpoints,
        *("patch", "llminferenceservice", NAME, "-n", NS, "--type=merge"),
        *("-p", json.dumps({"spec": {"replicas": 3}})),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pods = [
            p
            for p in endpoints.objects("Pod", NS)
            if p["metadata"]["name"].startswith(f"{NAME}-kserve-")
            and "router-scheduler" not in p["metadata"]["name"]
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (p.get("status") or {}).get("conditions") or ()
            )
        ]
        if len(pods) == 3:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the workload did not get 3 Ready pods")
    run_tasks = tasks_runner(playbook, tmp_path, env={"K8S_AUTH_KUBECONFIG": endpoints.kubeconfig})
    outcome, (check,) = run_tasks(
        [
            {
                "name": "Prefix-cache routing over three pods",
                "llmd.gke.prefix_cache_check": {
                    "url": f"http://127.0.0.1:{port}/{NS}/{NAME}",
                    "model": MODEL,
                    "name": NAME,
                    "namespace": NS,
                    "groups": 6,
                    "requests_per_group": 4,
                    "max_concurrency": 3,
                },
            }
        ]
    )
    assert not check.get("failed"), outcome.output
    assert check["changed"] is False
    assert (check["follow_ups"], check["hits"], check["affinity"]) == (18, 18, 1.0)
    assert len(check["pods"]) == 3 and sum(check["pods"].values()) == 24
    assert all(len(group["pods"]) == 1 for group in check["groups"])
    assert check["latency_ms"]["hit"]["count"] == 18 and check["latency_ms"]["miss"]["count"] == 6
    # pods named from the endpoints' IPs, every endpoint explained, the EPP's verbosity read
    assert all(pod.startswith(f"{NAME}-kserve-") for pod in check["pods"])
    assert check["unmapped_endpoints"] == [] and check["epp_verbosity"] == 3


def test_an_epp_at_upstream_default_verbosity_fails_the_check_naming_the_setting(
    playbook, served, tmp_path
):
    endpoints, port = served
    run_tasks = tasks_runner(playbook, tmp_path, env={"K8S_AUTH_KUBECONFIG": endpoints.kubeconfig})
    outcome, (check,) = run_tasks(
        [
            {
                "name": "Prefix-cache routing with a quiet EPP",
                "llmd.gke.prefix_cache_check": {
                    "url": f"http://127.0.0.1:{port}/{NS}/{QUIET}",
                    "model": MODEL,
                    "name": QUIET,
                    "namespace": NS,
                    "groups": 2,
                    "requests_per_group": 2,
                    "log_wait": 1,
                },
            }
        ]
    )
    assert check.get("failed"), outcome.output
    assert check["requests"] == 4 and check["decisions_found"] == 0
    assert check["epp_verbosity"] == 2
    assert "runs at log verbosity 2" in check["msg"]
    assert "set model_epp_verbosity: 3" in check["msg"]
