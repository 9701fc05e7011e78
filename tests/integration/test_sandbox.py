"""site.yml on the sandbox: converge, then the same again and --check change nothing."""

from __future__ import annotations

import base64
import json

from conftest import changed_tasks, recap

# A Hugging Face token of our own making: the model phase puts it in the hf-token Secret and
# must print it nowhere, not even with -vvv.
HF_TOKEN = "hf_SandboxSiteTokenNeverPrinted0123456789"
NS = "llm-d-inference-scheduling"


def snapshot(endpoints) -> dict[tuple, str]:
    """uid and resourceVersion of every stored object: any write changes one of them."""
    return {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): (
            o["metadata"]["uid"],
            o["metadata"]["resourceVersion"],
        )
        for o in endpoints.state()["objects"]
    }


BENCH = "llmd.gke.bench : Run the load benchmark"


def test_converge_then_idempotent_then_check_mode_changes_nothing(site, sandbox_emulator, tmp_path):
    settings = {"llmd_hf_token": HF_TOKEN, "bench_results_root": str(tmp_path / "bench")}
    first = site("-vvv", "-e", json.dumps(settings))
    assert first.rc == 0, first.output[-5000:]
    assert recap(first)["failed"] == 0
    assert HF_TOKEN not in first.output
    assert base64.b64encode(HF_TOKEN.encode()).decode() not in first.output
    (secret,) = [
        o for o in sandbox_emulator.objects("Secret", NS) if o["metadata"]["name"] == "hf-token"
    ]
    assert base64.b64decode(secret["data"]["HF_TOKEN"]).decode() == HF_TOKEN
    # The model is Ready, and the wait said how long each stage took.
    assert "LLMInferenceService llm-d-inference-scheduling/qwen2-3b-pattern1 Ready at" in first
    assert "Stages (s): created" in first
    # verify and bench answered through the gateway, after the NetworkPolicies
    assert f"/{NS}/qwen2-3b-pattern1 serves Qwen/Qwen2.5-3B-Instruct." in first
    assert "Prefix-cache routing: 16 hits in 16 follow-up requests" in first
    (report,) = (tmp_path / "bench").glob("*/report.md")
    assert "concurrency 4: 24 ok, 0 failed" in first
    converged = snapshot(sandbox_emulator)

    # Again: only the benchmark reports a change (it sends load and writes a new report).
    second = site("-e", json.dumps(settings))
    assert second.rc == 0, second.output
    assert changed_tasks(second) == [BENCH], second.output
    assert len(list((tmp_path / "bench").glob("*/report.md"))) == 2
    assert snapshot(sandbox_emulator) == converged

    check = site("--check", "--diff", "-e", json.dumps(settings))
    assert check.rc == 0, check.output
    assert set(changed_tasks(check)) <= {BENCH}, check.output
    assert "Check mode: no request sent" in check
    assert len(list((tmp_path / "bench").glob("*/report.md"))) == 2
    assert snapshot(sandbox_emulator) == converged
