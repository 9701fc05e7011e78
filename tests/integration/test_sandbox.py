"""site.yml on the sandbox: converge, then the same again and --check change nothing."""

from __future__ import annotations

import base64
import json

from conftest import recap

# A Hugging Face token of our own making: the model phase puts it in the hf-token Secret and
# must print it nowhere, not even with -vvv.
HF_TOKEN = "hf_SandboxSiteTokenNeverPrinted0123456789"


def snapshot(endpoints) -> dict[tuple, str]:
    """uid and resourceVersion of every stored object: any write changes one of them."""
    return {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): (
            o["metadata"]["uid"],
            o["metadata"]["resourceVersion"],
        )
        for o in endpoints.state()["objects"]
    }


def test_converge_then_idempotent_then_check_mode_changes_nothing(site, sandbox_emulator):
    first = site("-vvv", "-e", json.dumps({"llmd_hf_token": HF_TOKEN}))
    assert first.rc == 0, first.output[-5000:]
    assert recap(first)["failed"] == 0
    assert HF_TOKEN not in first.output
    assert base64.b64encode(HF_TOKEN.encode()).decode() not in first.output
    (secret,) = [
        o
        for o in sandbox_emulator.objects("Secret", "llm-d-inference-scheduling")
        if o["metadata"]["name"] == "hf-token"
    ]
    assert base64.b64decode(secret["data"]["HF_TOKEN"]).decode() == HF_TOKEN
    # The model is Ready, and the wait said how long each stage took.
    assert "LLMInferenceService llm-d-inference-scheduling/qwen2-3b-pattern1 Ready at" in first
    assert "Stages (s): created" in first
    converged = snapshot(sandbox_emulator)

    second = site("-e", json.dumps({"llmd_hf_token": HF_TOKEN}))
    assert second.rc == 0, second.output
    assert recap(second)["changed"] == 0, second.output
    assert snapshot(sandbox_emulator) == converged

    check = site("--check", "--diff", "-e", json.dumps({"llmd_hf_token": HF_TOKEN}))
    assert check.rc == 0, check.output
    assert recap(check)["changed"] == 0, check.output
    assert snapshot(sandbox_emulator) == converged
