"""llmisvc_wait's main(): what it returns and how it fails, with the waiting code faked; and the
progress interval of its action plugin."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.llmd.gke.plugins.action import llmisvc_wait as action
from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import KubeError
from ansible_collections.llmd.gke.plugins.module_utils.llmisvc import Diagnosis, Outcome
from ansible_collections.llmd.gke.plugins.modules import llmisvc_wait

TOKEN = "hf_" + "Zz9" * 12

SVC = {
    "metadata": {"name": "m", "namespace": "ns", "generation": 1},
    "status": {
        "observedGeneration": 1,
        "url": "http://gw/ns/m",
        "conditions": [{"type": "Ready", "status": "False", "reason": "Progressing"}],
    },
}


class FakeWaiter:
    outcome: Outcome | None = None
    error: KubeError | None = None
    seen: dict = {}

    def __init__(self, client, name, namespace, **options) -> None:
        FakeWaiter.seen = dict(options, name=name, namespace=namespace)
        self.warnings = []
        self.redact_values = tuple(options.get("redact_values") or ())

    def wait(self, timeout, slice_seconds=None):
        FakeWaiter.seen.update(timeout=timeout, slice_seconds=slice_seconds)
        if self.error:
            raise self.error
        return self.outcome

    def workload_log(self, pods):
        return []

    def children(self):
        return {"workload": {"kind": "Deployment", "name": "m-kserve", "exists": True}}

    def redact(self, text):
        return text


@pytest.fixture
def run(monkeypatch, capsys):
    monkeypatch.setattr(llmisvc_wait, "LlmisvcWaiter", FakeWaiter)
    monkeypatch.setattr(llmisvc_wait, "module_client", lambda module: object())

    def call(outcome=None, error=None, **args) -> dict:
        FakeWaiter.outcome, FakeWaiter.error = outcome, error
        with patch_module_args({"name": "m", "namespace": "ns", **args}), pytest.raises(SystemExit):
            llmisvc_wait.main()
        return json.loads(capsys.readouterr().out)

    return call


def test_pending_slice_returns_stage_without_children(run):
    result = run(Outcome("pending", SVC, [], []), progress_interval=7, timeout=100)
    assert result["pending"] is True and result["changed"] is False
    assert "children" not in result and result["stage"].startswith("waiting for the workload")
    assert FakeWaiter.seen["slice_seconds"] == 7 and FakeWaiter.seen["timeout"] == 100


def test_failure_carries_cause_hint_and_diagnosis_without_the_token(run):
    diagnosis = Diagnosis(
        cause="container main keeps crashing",
        hint="check Secret hf-token",
        reason="HuggingFace401",
        pod="m-kserve-1",
        log_tail=[f"token {TOKEN}"],
    )
    result = run(Outcome("failed", SVC, [], [], diagnosis), redact_values=["other-secret"])
    assert result["failed"] is True
    assert (
        result["msg"]
        == "LLMInferenceService ns/m will not become Ready: container main keeps crashing"
    )
    assert result["hint"] == "check Secret hf-token"
    assert result["diagnosis"]["log_tail"] == ["token <redacted>"]
    assert result["url"] == "http://gw/ns/m" and result["children"]["workload"]["exists"]
    assert TOKEN not in json.dumps(result)
    assert FakeWaiter.seen["redact_values"] == ["other-secret"]


def test_timeout_names_the_stage_and_the_ready_condition(run):
    result = run(Outcome("timeout", SVC, [], []), timeout=5, progress_interval=0)
    assert "is not Ready after 5 s" in result["msg"] and "Progressing" in result["msg"]
    assert result["ready"] is False and "raise timeout" in result["hint"]
    assert FakeWaiter.seen["slice_seconds"] is None


def test_missing_object_and_unserved_kind(run):
    assert "does not exist" in run(Outcome("missing", None, [], []))["msg"]
    error = KubeError("LIST: 404 NotFound", status=404, reason="NotFound")
    result = run(error=error)
    assert result["failed"] and "the kserve phase" in result["hint"]


def test_negative_values_are_refused(run):
    assert "timeout must be 0 or more" in run(timeout=-1)["msg"]


def test_progress_interval_env_overrides_the_task(monkeypatch):
    monkeypatch.delenv(action.PROGRESS_INTERVAL_ENV, raising=False)
    assert action.progress_interval(25) == 25
    monkeypatch.setenv(action.PROGRESS_INTERVAL_ENV, "2")
    assert action.progress_interval(25) == 2
    monkeypatch.setenv(action.PROGRESS_INTERVAL_ENV, "nonsense")
    assert action.progress_interval(0) == 0
