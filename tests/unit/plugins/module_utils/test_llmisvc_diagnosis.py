"""llmisvc: redaction, diagnosis, timeline, children and the watch-driven wait (fake client)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import KubeError
from ansible_collections.llmd.gke.plugins.module_utils.llmisvc import (
    Diagnosis,
    LlmisvcWaiter,
    build_timeline,
    child_summary,
    command_line_refinement,
    current_stage,
    diagnose,
    is_ready,
    log_entries,
    probe_kill,
    redact,
    redact_all,
    result_of,
)

NOW = datetime(2026, 11, 27, 21, 0, 0, tzinfo=UTC)
TOKEN = "hf_" + "AbC1" * 9


def ts(seconds: float) -> str:
    return (NOW + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def svc(*conditions, generation=1, observed=1, url=None) -> dict:
    status = {"conditions": list(conditions), "observedGeneration": observed}
    if url:
        status["url"] = url
    return {
        "metadata": {
            "name": "m",
            "namespace": "ns",
            "generation": generation,
            "creationTimestamp": ts(0),
            "resourceVersion": "1",
        },
        "status": status,
    }


def cond(type_, status, reason="", message="", at=0) -> dict:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": ts(at),
    }


def pod(
    name="m-kserve-abc-1", *, waiting=None, last=None, running_at=None, scheduled=None, ready=False
):
    cs = {"name": "main", "restartCount": 2 if last else 0, "ready": ready, "state": {}}
    if waiting:
        cs["state"] = {"waiting": waiting}
    elif running_at is not None:
        cs["state"] = {"running": {"startedAt": ts(running_at)}}
    if last:
        cs["lastState"] = {"terminated": last}
    conditions = [scheduled or cond("PodScheduled", "True", at=5)]
    if ready:
        conditions.append(cond("Ready", "True", at=700))
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "creationTimestamp": ts(2),
            "labels": {"kserve.io/component": "workload", "app.kubernetes.io/name": "m"},
            "resourceVersion": "1",
        },
        "spec": {"nodeName": "node-1"},
        "status": {"phase": "Running", "conditions": conditions, "containerStatuses": [cs]},
    }


def event(pod_obj, reason, message="", at=0) -> dict:
    return {
        "metadata": {"name": f"e-{reason}-{at}", "namespace": "ns", "resourceVersion": "1"},
        "involvedObject": {
            "kind": "Pod",
            "name": pod_obj["metadata"]["name"],
            "uid": pod_obj["metadata"]["uid"],
        },
        "reason": reason,
        "message": message,
        "firstTimestamp": ts(at),
        "lastTimestamp": ts(at),
    }


def run(svc_obj, pods=(), events=(), **options):
    return diagnose(svc_obj, pods, events, now=NOW + timedelta(seconds=30), **options)


# ------------------------------------------------------------------------------------ redaction
@pytest.mark.parametrize(
    "line",
    [
        f"HF_TOKEN={TOKEN}",
        f"Authorization: Bearer {TOKEN}",
        "headers {'authorization': 'Bearer eyJhbGciOiJSUzI1NiJ9.payload.sig'}",
        f"using token {TOKEN} for the hub",
        '"token": "plain-secret-value"',
        "password=hunter2hunter2",
    ],
)
def test_redact_removes_tokens(line):
    out = redact(line)
    assert "<redacted>" in out
    for secret in (TOKEN, "eyJhbGciOiJSUzI1NiJ9", "plain-secret-value", "hunter2hunter2"):
        assert secret not in out


def test_redact_keeps_ordinary_log_lines_and_removes_given_values():
    line = "INFO GPU KV cache size: 1,048,576 tokens; max_tokens: 2048"
    assert redact(line) == line
    assert redact("value abcdef-123 here", ["abcdef-123"]) == "value <redacted> here"
    nested = redact_all({"a": [f"x {TOKEN}", {"b": "s3cr3t!"}], "n": 3}, ["s3cr3t!"])
    assert nested == {"a": ["x <redacted>", {"b": "<redacted>"}], "n": 3}


# ------------------------------------------------------------------------------------ readiness
def test_ready_needs_the_current_generation():
    assert is_ready(svc(cond("Ready", "True")))
    assert not is_ready(svc(cond("Ready", "True"), generation=2, observed=1))
    assert not is_ready(svc(cond("Ready", "False", "MinimumReplicasUnavailable")))
    assert not is_ready(None)


# ------------------------------------------------------------------------------------ diagnosis
def test_image_pull_backoff_names_the_pull_secret():
    p = pod(waiting={"reason": "ImagePullBackOff", "message": 'Back-off pulling image "x"'})
    failed = event(p, "Failed", 'Failed to pull image "x": 401 Unauthorized', 3)
    diagnosis, _recheck = run(svc(), [p], [failed])
    assert diagnosis.reason == "ImagePullBackOff"
    assert "401 Unauthorized" in diagnosis.cause
    assert "redhat-pull-secret" in diagnosis.hint and "namespace ns" in diagnosis.hint


def test_err_image_pull_fails_only_for_auth_or_not_found():
    auth = pod(waiting={"reason": "ErrImagePull", "message": "401 Unauthorized"})
    assert run(svc(), [auth])[0].reason == "ErrImagePull"
    transient = pod(waiting={"reason": "ErrImagePull", "message": "i/o timeout"})
    assert run(svc(), [transient])[0] is None


def test_crashloop_asks_for_the_log_and_hf_refines_the_hint():
    p = pod(
        waiting={"reason": "CrashLoopBackOff", "message": "back-off 10s"},
        last={"reason": "Error", "exitCode": 1},
    )
    diagnosis, _recheck = run(svc(), [p])
    assert diagnosis.reason == "CrashLoopBackOff" and diagnosis.read_log
    assert "2 restarts, last exit code 1" in diagnosis.cause


def test_oom_killed():
    p = pod(waiting={"reason": "CrashLoopBackOff"}, last={"reason": "OOMKilled", "exitCode": 137})
    diagnosis, _recheck = run(svc(), [p])
    assert diagnosis.reason == "OOMKilled"
    assert "exit code 137" in diagnosis.cause and "memory limit" in diagnosis.hint


def test_missing_secret():
    p = pod(
        waiting={"reason": "CreateContainerConfigError", "message": 'secret "hf-token" not found'}
    )
    diagnosis, _recheck = run(svc(), [p])
    assert "Secret hf-token" in diagnosis.hint


def test_terminal_condition():
    bad = cond("PresetsCombined", "False", "CombineBaseError", "config x not found")
    diagnosis, _recheck = run(svc(bad))
    assert diagnosis.reason == "CombineBaseError" and "LLMInferenceServiceConfig" in diagnosis.hint
    assert run(svc(cond("Ready", "False", "MinimumReplicasUnavailable")))[0] is None


UNSCHED = "0/3 nodes are available: 3 Insufficient google.com/tpu."


def unschedulable(at=20):
    p = pod(scheduled=cond("PodScheduled", "False", "Unschedulable", UNSCHED, at=at))
    p["status"].update(phase="Pending", containerStatuses=[])
    p["spec"] = {}
    return p


def test_unschedulable_waits_for_the_grace_then_fails():
    p = unschedulable(at=20)  # 10 s before "now"
    diagnosis, recheck = run(svc(), [p], unschedulable_grace=60)
    assert diagnosis is None and recheck == pytest.approx(50)
    diagnosis, _recheck = run(svc(), [p], unschedulable_grace=5)
    assert diagnosis.reason == "Unschedulable" and UNSCHED in diagnosis.cause
    assert "TPU chips" in diagnosis.hint


def test_unschedulable_with_a_scale_up_is_not_a_failure():
    p = unschedulable(at=0)
    scale = event(p, "TriggeredScaleUp", "pod triggered scale-up: [{tpu-pool 0->1 (max: 3)}]", 10)
    diagnosis, recheck = run(svc(), [p], [scale], unschedulable_grace=5)
    assert diagnosis is None and recheck is None
    assert "autoscaler adding a node" in current_stage(
        svc(), [p], build_timeline(svc(), [p], [scale])
    )


def test_unschedulable_refused_by_the_autoscaler_fails_at_once():
    p = unschedulable(at=29)
    refused = event(
        p, "NotTriggerScaleUp", "pod didn't trigger scale-up: 1 node(s) had untolerated taint", 29
    )
    diagnosis, _recheck = run(svc(), [p], [refused], unschedulable_grace=600)
    assert diagnosis.reason == "Unschedulable"
    assert "untolerated taint" in diagnosis.cause and "toleration" in diagnosis.hint


# ------------------------------------------------------------------------------------- timeline
def test_timeline_from_conditions_events_and_vllm_log():
    p = pod(running_at=12, ready=True)
    events = [event(p, "Pulled", "ok", 10), event(p, "Started", "ok", 12)]
    ready = svc(cond("Ready", "True", at=700))
    log = log_entries(
        [
            f"{ts(13)} INFO [__init__.py:244] Automatically detected platform tpu.",
            "INFO 11-27 21:01:00 [default_loader.py:262] Loading weights took 41.37 seconds",
            f"{ts(120)} INFO Compiling the model with different input shapes.",
            f"{ts(600)} INFO Starting vLLM API server 0 on https://0.0.0.0:8000",
        ],
        NOW,
    )
    timeline = build_timeline(ready, [p], events, log)
    stages = {t["stage"]: t for t in timeline}
    assert [t["stage"] for t in timeline] == [
        "created",
        "scheduled",
        "image_pulled",
        "container_started",
        "model_loading",
        "compiling",
        "server_starting",
        "ready",
    ]
    assert stages["model_loading"]["at"] == "2026-11-27T21:01:00Z"  # vLLM's own stamp, UTC
    assert stages["compiling"]["duration"] == 480.0
    assert stages["ready"]["offset"] == 700.0 and stages["ready"]["duration"] is None
    assert stages["created"]["duration"] == 5.0


def test_a_stage_never_shows_before_the_one_it_follows():
    # The Pulled event (whole seconds) says 12 s, the container start (fraction) 11.6 s: the
    # timeline keeps the stages in order and does not go back in time.
    p = pod(running_at=11.6, ready=True)
    timeline = build_timeline(
        svc(cond("Ready", "True", at=30)), [p], [event(p, "Pulled", "ok", 12)]
    )
    offsets = [t["offset"] for t in timeline]
    assert [t["stage"] for t in timeline][-3:] == ["image_pulled", "container_started", "ready"]
    assert offsets == sorted(offsets)
    assert all(t["duration"] >= 0 for t in timeline[:-1])


def test_child_summaries():
    route = {
        "status": {
            "parents": [
                {
                    "parentRef": {"name": "gw", "namespace": "odh"},
                    "conditions": [
                        cond("Accepted", "True"),
                        cond("ResolvedRefs", "False", "BackendNotFound"),
                    ],
                }
            ]
        }
    }
    summary = child_summary("HTTPRoute", "m-kserve-route", route)
    assert summary["accepted"] is True and summary["resolved_refs"] is False
    assert summary["parents"][0]["parent"] == "odh/gw"
    deploy = {
        "spec": {"replicas": 1},
        "status": {"readyReplicas": 1, "conditions": [cond("Available", "True")]},
    }
    assert child_summary("Deployment", "m-kserve", deploy)["available"] is True
    assert child_summary("InferencePool", "m-inference-pool", None) == {
        "kind": "InferencePool",
        "name": "m-inference-pool",
        "exists": False,
    }


# ------------------------------------------------------------------------------ the wait itself
class FakeClient:
    """LISTs answer fixed objects; WATCHes replay scripted events then end."""

    def __init__(self, objects: dict, watch_events: dict | None = None, list_error=None):
        self.objects = objects
        self.watch_events = watch_events or {}
        self.list_error = list_error
        self.calls = []

    def list(self, resource, label_selector=None, field_selector=None):
        self.calls.append(("list", resource.plural))
        if self.list_error and resource.plural == "llminferenceservices":
            raise self.list_error
        items = copy.deepcopy(self.objects.get(resource.plural, []))
        return {"metadata": {"resourceVersion": "5"}, "items": items}

    def watch(self, resource, rv, timeout, label_selector=None, field_selector=None):
        self.calls.append(("watch", resource.plural))
        yield from self.watch_events.pop(resource.plural, [])

    def get(self, resource, name):
        self.calls.append(("get", name))

    def redact(self, text):
        return text


def waiter(client, **options):
    logs = options.pop("logs", [])
    return LlmisvcWaiter(client, "m", "ns", read_log=lambda *a, **k: list(logs), **options)


def test_wait_returns_ready_when_the_watch_says_so():
    pending = svc(cond("Ready", "False", "Progressing"))
    done = svc(cond("Ready", "True", at=5), url="http://gw/ns/m")
    client = FakeClient(
        {"llminferenceservices": [pending]}, {"llminferenceservices": [("MODIFIED", done)]}
    )
    w = waiter(client)
    outcome = w.wait(timeout=5)
    assert outcome.status == "ready"
    result = result_of(w, outcome)
    assert result["ready"] is True and result["url"] == "http://gw/ns/m"
    assert set(result["children"]) == {"workload", "route", "pool", "scheduler"}
    assert w.api_calls()["lists"] == 3


def test_wait_fails_fast_with_the_redacted_log_tail():
    p = pod(waiting={"reason": "CrashLoopBackOff"}, last={"reason": "Error", "exitCode": 1})
    logs = [
        f"2026-11-27T21:00:01Z DEBUG HF_TOKEN={TOKEN}",
        "2026-11-27T21:00:02Z requests.exceptions.HTTPError: 403 Client Error: Forbidden for url",
        "2026-11-27T21:00:02Z huggingface_hub.errors.GatedRepoError: 403 Client Error.",
    ]
    client = FakeClient({"llminferenceservices": [svc()], "pods": [p]})
    outcome = waiter(client, logs=logs).wait(timeout=5)
    assert outcome.status == "failed"
    assert outcome.diagnosis.reason == "HuggingFace403"
    assert "gated model" in outcome.diagnosis.hint
    assert outcome.diagnosis.log_tail[0] == "DEBUG HF_TOKEN=<redacted>"
    assert TOKEN not in str(outcome.diagnosis.as_dict())


def test_hf_401_in_the_log():
    p = pod(waiting={"reason": "CrashLoopBackOff"}, last={"reason": "Error", "exitCode": 1})
    logs = ["huggingface_hub.errors.RepositoryNotFoundError: 401 Client Error."]
    client = FakeClient({"llminferenceservices": [svc()], "pods": [p]})
    outcome = waiter(client, logs=logs).wait(timeout=5)
    assert outcome.diagnosis.reason == "HuggingFace401"
    assert "Secret hf-token in namespace ns" in outcome.diagnosis.hint


def test_without_fail_fast_a_broken_pod_waits_for_the_timeout():
    p = pod(waiting={"reason": "ImagePullBackOff"})
    client = FakeClient({"llminferenceservices": [svc()], "pods": [p]})
    outcome = waiter(client, fail_fast=False).wait(timeout=0)
    assert outcome.status == "timeout" and outcome.diagnosis.reason == "ImagePullBackOff"


def test_a_slice_that_ends_is_pending_and_the_missing_object_is_reported():
    client = FakeClient({"llminferenceservices": [svc(cond("Ready", "False"))]})
    assert waiter(client).wait(timeout=30, slice_seconds=0.2).status == "pending"
    assert waiter(FakeClient({})).wait(timeout=5).status == "missing"


def test_an_unserved_kind_raises():
    error = KubeError("LIST: 404 NotFound", status=404, reason="NotFound")
    with pytest.raises(KubeError):
        waiter(FakeClient({}, list_error=error)).wait(timeout=5)


@pytest.mark.parametrize(
    "line",
    [
        "/bin/bash: --: invalid option",
        "vllm serve: error: unrecognized arguments: --frobnicate",
        "vllm serve: error: argument --dtype: invalid choice: 'x' (choose from auto, bfloat16)",
    ],
)
def test_a_command_line_error_is_quoted_with_the_fix(line):
    diagnosis = Diagnosis(
        cause="container main keeps crashing", hint="read", reason="CrashLoopBackOff"
    )
    command_line_refinement(diagnosis, ["Usage: ...", line, "\t--norc"])
    assert diagnosis.reason == "InvalidCommandLine"
    assert diagnosis.cause.endswith(f"the command line does not start vLLM: {line}")
    assert "VLLM_ADDITIONAL_ARGS" in diagnosis.hint


def test_other_crashes_keep_their_diagnosis():
    diagnosis = Diagnosis(cause="c", hint="read", reason="CrashLoopBackOff")
    command_line_refinement(diagnosis, ["RuntimeError: TPU initialization failed"])
    assert diagnosis.reason == "CrashLoopBackOff" and diagnosis.hint == "read"


def test_probe_kill_names_the_probe_and_its_last_failure():
    events = [
        {"reason": "Unhealthy", "message": "Liveness probe failed: Get ...: connection refused"},
        {"reason": "Killing", "message": "Container main failed liveness probe, will be restarted"},
        {"reason": "Killing", "message": "Stopping container main"},
    ]
    assert probe_kill(events, "main") == (
        "Container main failed liveness probe, will be restarted "
        "(Liveness probe failed: Get ...: connection refused)"
    )
    assert probe_kill(events, "other") == ""
    assert probe_kill(events[2:], "main") == ""
