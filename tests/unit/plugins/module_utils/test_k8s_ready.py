"""k8s_ready: targets, verdicts and the gate over several objects with one deadline."""

from __future__ import annotations

import pytest

from ansible_collections.llmd.gke.plugins.module_utils.k8s_ready import (
    Target,
    TargetError,
    judge,
    plural_of,
    wait_ready,
)
from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import KubeError


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class FakeClient:
    """Objects by (path of the resource): list() answers them; watch() plays scripted events.

    `events` maps a resource path to the events a watch delivers (one list per watch call);
    a watch with nothing scripted keeps the stream open for `watch_cost` seconds.
    """

    def __init__(self, clock: Clock, objects=None, events=None, missing_kinds=()) -> None:
        self.clock = clock
        self.objects = objects or {}
        self.events = {k: list(v) for k, v in (events or {}).items()}
        self.missing_kinds = set(missing_kinds)
        self.watch_cost = 10.0
        self.lists = 0

    def list(self, resource, label_selector=None, field_selector=None):
        self.lists += 1
        path = resource.path()
        if path in self.missing_kinds:
            raise KubeError("404 NotFound", status=404, reason="NotFound")
        name = field_selector.split("=", 1)[1]
        items = [o for o in self.objects.get(path, []) if o["metadata"]["name"] == name]
        return {"metadata": {"resourceVersion": "1"}, "items": items}

    def watch(self, resource, rv, timeout_seconds, label_selector=None, field_selector=None):
        script = self.events.get(resource.path()) or []
        batch = script.pop(0) if script else []

        def stream():
            yield from batch
            if not batch:
                self.clock.now += min(self.watch_cost, timeout_seconds)

        return stream()


def deployment(name, ns, available, *, generation=1, observed=1, message="msg"):
    return {
        "metadata": {"name": name, "namespace": ns, "generation": generation},
        "status": {
            "observedGeneration": observed,
            "conditions": [
                {"type": "Progressing", "status": "True"},
                {
                    "type": "Available",
                    "status": available,
                    "reason": "MinimumReplicasAvailable" if available == "True" else "Unavailable",
                    "message": message,
                },
            ],
        },
    }


DEPLOY = Target.from_dict(
    {"api_version": "apps/v1", "kind": "Deployment", "name": "op", "namespace": "ns"}
)
ISTIO = Target.from_dict({"api_version": "sailoperator.io/v1", "kind": "Istio", "name": "default"})
DEPLOY_PATH = "/apis/apps/v1/namespaces/ns/deployments"
ISTIO_PATH = "/apis/sailoperator.io/v1/istios"


def test_plurals_and_default_conditions():
    assert plural_of("Istio") == "istios"
    assert plural_of("NetworkPolicy") == "networkpolicies"
    assert plural_of("Gateway") == "gateways"
    assert plural_of("IngressClass") == "ingressclasses"
    assert DEPLOY.condition == "Available" and ISTIO.condition == "Ready"
    crd = Target.from_dict(
        {"api_version": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "name": "x"}
    )
    assert crd.condition == "Established"
    assert crd.resource.path("x") == "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/x"
    explicit = Target.from_dict(
        {"api_version": "x.io/v1", "kind": "Thing", "name": "t", "condition": "Synced"}
    )
    assert explicit.condition == "Synced" and explicit.status == "True"


def test_a_kind_without_a_default_condition_is_refused_naming_it():
    with pytest.raises(
        TargetError, match=r"resources\[3\] \(CertManager cluster\) needs condition"
    ):
        Target.from_dict(
            {
                "api_version": "operator.openshift.io/v1alpha1",
                "kind": "CertManager",
                "name": "cluster",
            },
            3,
        )
    with pytest.raises(TargetError, match="needs name"):
        Target.from_dict({"api_version": "v1", "kind": "Pod"})


def test_verdicts_name_the_cause():
    assert judge(DEPLOY, None).message == "does not exist"
    ready = judge(DEPLOY, deployment("op", "ns", "True"))
    assert ready.ready and ready.reason == "Ready"
    held = judge(DEPLOY, deployment("op", "ns", "False", message="no pod is ready"))
    assert not held.ready
    assert held.message == "Available is False, not True (Unavailable; no pod is ready)"
    stale = judge(DEPLOY, deployment("op", "ns", "True", generation=3, observed=2))
    assert not stale.ready and stale.reason == "NotObserved" and "generation 2" in stale.message
    bare = judge(ISTIO, {"metadata": {"name": "default"}, "status": {"conditions": []}})
    assert bare.reason == "NoCondition" and bare.message == "no Ready condition (no conditions yet)"
    other = judge(
        ISTIO, {"metadata": {"name": "default"}, "status": {"conditions": [{"type": "Reconciled"}]}}
    )
    assert other.message == "no Ready condition (conditions: Reconciled)"


def test_the_gate_waits_for_an_object_that_becomes_ready():
    clock = Clock()
    fake = FakeClient(
        clock,
        objects={DEPLOY_PATH: [deployment("op", "ns", "False")]},
        events={DEPLOY_PATH: [[("MODIFIED", deployment("op", "ns", "True"))]]},
    )
    result = wait_ready(fake, [DEPLOY], timeout=60, clock=clock, sleep=lambda s: None)
    assert result.ready and result.not_ready == []
    assert result.message(60) == "all 1 objects are ready"
    assert result.as_dict()["resources"][0]["reason"] == "Ready"


def test_after_the_deadline_every_remaining_object_is_read_once_and_named():
    clock = Clock()
    fake = FakeClient(
        clock,
        objects={
            DEPLOY_PATH: [deployment("op", "ns", "False", message="held")],
            ISTIO_PATH: [
                {
                    "metadata": {"name": "default"},
                    "status": {
                        "conditions": [
                            {"type": "Ready", "status": "False", "reason": "IstiodNotReady"}
                        ]
                    },
                }
            ],
        },
    )
    crd = Target.from_dict(
        {"api_version": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "name": "c"}
    )
    result = wait_ready(fake, [DEPLOY, ISTIO, crd], timeout=30, clock=clock, sleep=lambda s: None)
    assert not result.ready
    assert clock.now - 50.0 <= 30 + 10  # bounded: one watch can outlast the deadline by its cost
    text = result.message(30)
    assert text.startswith("3 of 3 objects not ready after")
    assert "Deployment ns/op: Available is False, not True (Unavailable; held)" in text
    assert "Istio default: Ready is False, not True (IstiodNotReady)" in text
    assert "CustomResourceDefinition c: does not exist" in text


def test_a_kind_not_served_is_retried_until_the_deadline_then_reported():
    clock = Clock()
    fake = FakeClient(clock, missing_kinds={ISTIO_PATH})
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.now += seconds

    result = wait_ready(fake, [ISTIO], timeout=5, clock=clock, sleep=sleep)
    assert sleeps == [2.0, 2.0, 1.0]
    verdict = result.not_ready[0]
    assert verdict.reason == "KindNotServed"
    assert "istios.sailoperator.io" in verdict.message and "CRD" in verdict.message


def test_a_fatal_api_error_propagates():
    class Refusing(FakeClient):
        def list(self, resource, label_selector=None, field_selector=None):
            raise KubeError("403 Forbidden", status=403, reason="Forbidden")

    with pytest.raises(KubeError, match="Forbidden"):
        wait_ready(Refusing(Clock()), [DEPLOY], timeout=5, clock=Clock(), sleep=lambda s: None)
