"""llmd.gke.llmisvc_wait through the real ansible-playbook against the Kubernetes emulator.

One emulator for the file, time compressed 100 times (a vLLM start of 600 emulated seconds takes
6 s). Setup, with kubectl: the CRDs of the Gateway API, the Inference Extension and KServe's
LLMInferenceService (permissive stand-ins), the namespace opendatahub and the Gateway
inference-gateway the emulated Istio programs. Each test creates its LLMInferenceService in a
namespace of its own (the emulator's KServe controller creates the Deployment, the endpoint
picker, the HTTPRoute and the InferencePool) and runs the module in a playbook. Failure scenarios
are turned on for one test and off after it; scenarios act on pods as they start, so they are
turned on before the LLMInferenceService is created.
"""

from __future__ import annotations

import json
import time

import pytest
from conftest import apply, kubectl, running_emulator, tasks_runner

from llmd_emulator.testing import (
    SERVING_CRDS,
    gateway,
    kserve_presets,
    kserve_root,
    llm_inference_service,
)

HF_TOKEN = "hf_" + "Qx7" * 12  # a token-shaped value the logs carry and the output must not
OTHER_SECRET = "s3cr3t-value-given-to-redact"
TPU_NODE = "tpu-node-1"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    with running_emulator(tmp_path_factory.mktemp("llmisvc-wait"), time_scale=0.01) as endpoints:
        apply(endpoints, *SERVING_CRDS)
        apply(endpoints, *kserve_presets(kserve_root()))
        apply(endpoints, gateway())
        yield endpoints


def create(emulator, ns: str, obj: dict) -> None:
    apply(emulator, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, obj)


def wait_task(ns: str, name: str = "m", **options) -> dict:
    return {
        "name": f"Wait for {ns}/{name}",
        "llmd.gke.llmisvc_wait": {"name": name, "namespace": ns, **options},
    }


@pytest.fixture
def run_tasks(playbook, tmp_path, emulator):
    env = {"K8S_AUTH_KUBECONFIG": emulator.kubeconfig}
    return tasks_runner(playbook, tmp_path, env=env)


def test_ready_with_url_children_and_timeline(emulator, run_tasks):
    create(emulator, "ready", llm_inference_service("m", "ready"))
    run, (result,) = run_tasks([wait_task("ready", timeout=90, progress_interval=0)])
    assert result.get("failed") is not True, run.output
    assert result["ready"] is True and result["changed"] is False
    assert result["url"].endswith("/ready/m")
    assert {c["type"]: c["status"] for c in result["conditions"]}["Ready"] == "True"
    children = result["children"]
    assert children["workload"]["name"] == "m-kserve" and children["workload"]["available"]
    assert children["scheduler"]["name"] == "m-kserve-router-scheduler"
    assert children["scheduler"]["available"] is True
    assert children["route"]["accepted"] and children["route"]["resolved_refs"]
    assert children["pool"]["name"] == "m-inference-pool" and children["pool"]["accepted"]
    stages = [t["stage"] for t in result["timeline"]]
    for stage in ("created", "scheduled", "container_started", "model_loading", "compiling"):
        assert stage in stages
    assert stages[0] == "created" and stages[-1] == "ready"
    assert result["timeline"][-1]["duration"] is None
    assert all(t["duration"] is not None for t in result["timeline"][:-1])
    offsets = [t["offset"] for t in result["timeline"]]
    assert offsets == sorted(offsets)


def test_check_mode_and_progress_lines(emulator, playbook, tmp_path, scenario):
    # The vLLM pod is held unready, so the wait lasts until its timeout, in 1 s slices.
    scenario("operator-held:slowpoke-kserve")
    create(emulator, "progress", llm_inference_service("slowpoke", "progress"))
    env = {"K8S_AUTH_KUBECONFIG": emulator.kubeconfig, "LLMD_LLMISVC_PROGRESS_INTERVAL": "1"}
    run_tasks = tasks_runner(playbook, tmp_path, env=env)
    run, (result,) = run_tasks([wait_task("progress", "slowpoke", timeout=4)], "--check")
    assert result["failed"] is True and result["changed"] is False, run.output
    assert result["wait_calls"] >= 2
    assert "LLMInferenceService progress/slowpoke: pod slowpoke-kserve-" in run
    assert "s elapsed (timeout 4 s)" in run
    assert "is not Ready after" in result["msg"]


CASES = {
    "image-pull-backoff": ("ImagePullBackOff", "cannot pull the image", "redhat-pull-secret"),
    "crashloop-hf-401": ("HuggingFace401", "refused the token (401)", "Secret hf-token"),
    "crashloop-hf-403": ("HuggingFace403", "refused access to the model (403)", "gated model"),
    "oom-killed": ("OOMKilled", "was OOMKilled", "memory limit"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_failure_scenarios_fail_fast_with_cause_and_hint(emulator, run_tasks, scenario, name):
    reason, cause, hint = CASES[name]
    scenario(name)
    create(emulator, name, llm_inference_service("m", name))
    run, (result,) = run_tasks([wait_task(name, timeout=60, log_lines=10)])
    assert result["failed"] is True, run.output
    diagnosis = result["diagnosis"]
    assert diagnosis["reason"] == reason
    assert cause in diagnosis["cause"] and cause in result["msg"]
    assert hint in diagnosis["hint"] and result["hint"] == diagnosis["hint"]
    assert diagnosis["pod"].startswith("m-kserve-")
    assert result["children"]["workload"]["exists"] is True
    if name.startswith("crashloop"):
        assert len(diagnosis["log_tail"]) == 10
        assert any("Client Error" in line for line in diagnosis["log_tail"])


def test_args_only_crash_loops_with_the_bash_error(emulator, run_tasks):
    """vLLM arguments in args replace the script of KServe's template: `/bin/bash -c --model=..`."""
    obj = llm_inference_service("m", "argsonly")
    (main,) = obj["spec"]["template"]["containers"]
    main.pop("env")
    main["args"] = ["--model=/mnt/models", "--served-model-name=Qwen/Qwen2.5-3B-Instruct"]
    create(emulator, "argsonly", obj)
    run, (result,) = run_tasks([wait_task("argsonly", timeout=60, log_lines=10)])
    assert result["failed"] is True, run.output
    diagnosis = result["diagnosis"]
    assert diagnosis["reason"] == "InvalidCommandLine"
    assert "the command line does not start vLLM: /bin/bash: --: invalid option" in result["msg"]
    assert "VLLM_ADDITIONAL_ARGS" in result["hint"]
    assert len(diagnosis["log_tail"]) == 10  # bash's usage text follows the error


def test_a_liveness_probe_shorter_than_the_start_kills_vllm(emulator, run_tasks):
    """Without a startup probe, the template's liveness probe (120 s) restarts a vLLM that needs
    600 emulated seconds to listen: the pod never gets Ready."""
    obj = llm_inference_service("m", "liveness")
    (main,) = obj["spec"]["template"]["containers"]
    main.pop("startupProbe")
    create(emulator, "liveness", obj)
    run, (result,) = run_tasks([wait_task("liveness", timeout=60, log_lines=10)])
    assert result["failed"] is True, run.output
    assert result["diagnosis"]["reason"] == "ProbeKilled"
    assert "failed liveness probe" in result["msg"] and "startupProbe" in result["hint"]
    events = kubectl(emulator, "get", "events", "-n", "liveness", "-o", "json")
    messages = [e["message"] for e in json.loads(events)["items"]]
    assert any(m.startswith('Liveness probe failed: Get "https://') for m in messages)
    assert "Container main failed liveness probe, will be restarted" in messages


def test_unschedulable_without_scale_up(emulator, run_tasks, scenario):
    scenario("unschedulable-tpu")
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": TPU_NODE,
            "labels": {
                "cloud.google.com/gke-tpu-accelerator": "tpu-v6e-slice",
                "cloud.google.com/gke-tpu-topology": "2x2",
            },
        },
        "spec": {"taints": [{"key": "google.com/tpu", "value": "present", "effect": "NoSchedule"}]},
    }
    apply(emulator, node)
    capacity = {"cpu": "4", "memory": "16Gi", "pods": "110", "google.com/tpu": "4"}
    status = {
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [{"type": "Ready", "status": "True"}],
        }
    }
    kubectl(
        emulator,
        *("patch", "node", TPU_NODE, "--subresource=status", "--type=merge"),
        *("-p", json.dumps(status)),
    )
    try:
        create(emulator, "unsched", llm_inference_service("m", "unsched", tpu=True))
        run, (result,) = run_tasks([wait_task("unsched", timeout=60, unschedulable_grace=2)])
    finally:
        kubectl(emulator, "delete", "node", TPU_NODE, "--wait=false", check=False)
    assert result["failed"] is True, run.output
    diagnosis = result["diagnosis"]
    assert diagnosis["reason"] == "Unschedulable"
    assert "no cluster autoscaler scale-up was announced" in diagnosis["cause"]
    assert "Insufficient google.com/tpu" in diagnosis["cause"]
    assert "Not enough free TPU chips" in diagnosis["hint"]
    assert "autoscaling" in diagnosis["hint"]


def test_terminal_condition_fails_at_once(emulator, run_tasks):
    create(
        emulator,
        "terminal",
        llm_inference_service("m", "terminal", base_refs=[{"name": "missing"}]),
    )
    run, (result,) = run_tasks([wait_task("terminal", timeout=60)])
    assert result["failed"] is True, run.output
    assert result["diagnosis"]["reason"] == "CombineBaseError"
    assert "LLMInferenceServiceConfig" in result["hint"]


def test_timeout_returns_the_last_state(emulator, run_tasks, scenario):
    scenario("image-pull-backoff")
    create(emulator, "slow", llm_inference_service("m", "slow"))
    run, (result,) = run_tasks([wait_task("slow", timeout=3, fail_fast=False, progress_interval=1)])
    assert result["failed"] is True, run.output
    assert "is not Ready after" in result["msg"]
    assert result["ready"] is False
    assert {c["type"] for c in result["conditions"]} >= {"Ready", "MainWorkloadReady"}
    assert result["children"]["workload"]["exists"] is True
    assert result["pods"] and result["pods"][0]["name"].startswith("m-kserve-")
    assert result["timeline"][0]["stage"] == "created"
    assert result["diagnosis"]["reason"] == "ImagePullBackOff"
    assert result["wait_calls"] >= 2


def test_missing_object_fails_at_once(emulator, run_tasks):
    run, (result,) = run_tasks([wait_task("opendatahub", name="nothing", timeout=60)])
    assert result["failed"] is True
    assert "does not exist" in result["msg"]


def test_no_token_in_any_output_even_with_vvv(emulator, run_tasks, scenario):
    scenario("crashloop-hf-401")
    create(emulator, "secret", llm_inference_service("m", "secret"))
    deadline = time.monotonic() + 30
    pod = None
    while pod is None and time.monotonic() < deadline:
        names = kubectl(
            emulator,
            *("get", "pods", "-n", "secret", "-l", "kserve.io/component=workload"),
            *("-o", "jsonpath={.items[*].metadata.name}"),
        ).split()
        pod = names[0] if names else None
        time.sleep(0.1)
    assert pod, "the workload pod did not appear"
    emulator.admin_post(
        "/logs",
        {
            "namespace": "secret",
            "pod": pod,
            "container": "main",
            "lines": [
                f"DEBUG hub request with HF_TOKEN={HF_TOKEN}",
                f"DEBUG headers: {{'authorization': 'Bearer {HF_TOKEN}'}}",
                f"DEBUG token file content {HF_TOKEN} and {OTHER_SECRET}",
            ],
        },
    )
    run, (result,) = run_tasks(
        [wait_task("secret", timeout=60, log_lines=500, redact_values=[OTHER_SECRET])], "-vvv"
    )
    assert result["failed"] is True
    tail = "\n".join(result["diagnosis"]["log_tail"])
    assert "token file content <redacted>" in tail  # the injected lines are in the tail
    assert HF_TOKEN not in run.output and HF_TOKEN not in json.dumps(result)
    assert OTHER_SECRET not in run.output and OTHER_SECRET not in json.dumps(result)
    assert HF_TOKEN[:12] not in run.output
