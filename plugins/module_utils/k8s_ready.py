# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readiness gate over a list of Kubernetes objects (the k8s_ready_info module).

Each target names an object (apiVersion, kind, name, namespace) and the status condition that
must hold (``Available`` for a Deployment, ``Established`` for a CustomResourceDefinition,
``Ready`` for an ``Istio``...). ``wait_ready`` waits for all of them with one monotonic deadline,
watching each object in turn (``k8s_wait``), then reads the rest once when the deadline is gone,
so the result names every object that is not ready with its last condition message.

An object counts as ready when the condition has the wanted status and, when the object reports
``status.observedGeneration``, its controller has seen the current ``metadata.generation``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import (
    Deadline,
    KubeClient,
    KubeError,
    Resource,
    WaitTimeout,
    condition,
    wait_for_object,
)

DEFAULT_CONDITIONS = {
    "Deployment": "Available",
    "StatefulSet": "Ready",
    "CustomResourceDefinition": "Established",
    "Istio": "Ready",
    "Pod": "Ready",
}
UNKNOWN_KIND_POLL = 2.0  # seconds between two LISTs while the API does not serve the kind


class TargetError(ValueError):
    """A target of the gate is malformed (message names it)."""


def plural_of(kind: str) -> str:
    """The resource name of a kind by the usual English rules (Istio -> istios)."""
    lower = kind.lower()
    if lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u"):
        return lower[:-1] + "ies"
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return lower + "es"
    return lower + "s"


@dataclass(frozen=True)
class Target:
    api_version: str
    kind: str
    name: str
    namespace: str | None
    condition: str
    status: str = "True"
    plural: str | None = None

    @classmethod
    def from_dict(cls, data: dict, index: int = 0) -> Target:
        where = f"resources[{index}]"
        for key in ("api_version", "kind", "name"):
            if not data.get(key):
                raise TargetError(f"{where} needs {key}")
        kind = data["kind"]
        cond = data.get("condition") or DEFAULT_CONDITIONS.get(kind)
        if not cond:
            raise TargetError(
                f"{where} ({kind} {data['name']}) needs condition: there is no default for {kind}"
            )
        return cls(
            api_version=data["api_version"],
            kind=kind,
            name=data["name"],
            namespace=data.get("namespace") or None,
            condition=cond,
            status=str(data.get("status") or "True"),
            plural=data.get("plural") or None,
        )

    @property
    def resource(self) -> Resource:
        return Resource(self.api_version, self.plural or plural_of(self.kind), self.namespace)

    def describe(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


@dataclass
class Verdict:
    """What one target looked like when the gate last saw it."""

    target: Target
    ready: bool
    reason: str
    message: str
    condition: dict | None = None

    def as_dict(self) -> dict:
        return {
            "api_version": self.target.api_version,
            "kind": self.target.kind,
            "name": self.target.name,
            "namespace": self.target.namespace,
            "condition_type": self.target.condition,
            "ready": self.ready,
            "reason": self.reason,
            "message": self.message,
            "condition": self.condition,
        }

    def line(self) -> str:
        return f"{self.target.describe()}: {self.message}"


def judge(target: Target, obj: dict | None) -> Verdict:
    """Is obj (None: absent) ready for target? With the reason and a message naming the cause."""
    if obj is None:
        return Verdict(target, False, "NotFound", "does not exist")
    cond = condition(obj, target.condition)
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    generation, observed = meta.get("generation"), status.get("observedGeneration")
    if cond is None:
        known = [c.get("type") for c in status.get("conditions") or () if isinstance(c, dict)]
        extra = f" (conditions: {', '.join(map(str, known))})" if known else " (no conditions yet)"
        return Verdict(
            target, False, "NoCondition", f"no {target.condition} condition{extra}", None
        )
    detail = (
        "; ".join(str(part) for part in (cond.get("reason"), cond.get("message")) if part)
        or "no message"
    )
    if str(cond.get("status")) != target.status:
        return Verdict(
            target,
            False,
            "ConditionNotMet",
            f"{target.condition} is {cond.get('status')}, not {target.status} ({detail})",
            cond,
        )
    if isinstance(generation, int) and isinstance(observed, int) and observed < generation:
        return Verdict(
            target,
            False,
            "NotObserved",
            f"{target.condition} is {cond.get('status')} but the controller has seen generation "
            f"{observed}, not the current {generation}",
            cond,
        )
    return Verdict(target, True, "Ready", f"{target.condition} is {cond.get('status')}", cond)


@dataclass
class GateResult:
    verdicts: list[Verdict] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def not_ready(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.ready]

    @property
    def ready(self) -> bool:
        return not self.not_ready

    def message(self, timeout: float) -> str:
        missing = self.not_ready
        if not missing:
            return f"all {len(self.verdicts)} objects are ready"
        head = (
            f"{len(missing)} of {len(self.verdicts)} objects not ready after "
            f"{self.elapsed:.0f}s (timeout {timeout:g}s): "
        )
        return head + "; ".join(v.line() for v in missing)

    def as_dict(self) -> dict:
        return {
            "ready": self.ready,
            "resources": [v.as_dict() for v in self.verdicts],
            "not_ready": [v.line() for v in self.not_ready],
            "elapsed": round(self.elapsed, 1),
        }


def wait_one(
    client: KubeClient,
    target: Target,
    deadline: Deadline,
    sleep: Callable[[float], None] = time.sleep,
) -> Verdict:
    """Wait (until deadline) for target; the last verdict. KubeError only for fatal API errors."""
    last: dict = {}

    def check(obj: dict | None) -> Verdict | None:
        verdict = judge(target, obj)
        last["verdict"] = verdict
        return verdict if verdict.ready else None

    while True:
        try:
            result, _obj = wait_for_object(
                client,
                target.resource,
                target.name,
                check,
                deadline,
                what=target.describe(),
            )
            return result
        except WaitTimeout as exc:
            verdict = last.get("verdict") or judge(target, exc.last)
            if exc.last_error is not None:
                verdict.message += f" (last API error: {exc.last_error.message})"
            return verdict
        except KubeError as exc:
            if exc.status != 404:
                raise
            # The API does not serve this kind (yet): its CRD is missing or not established.
            verdict = Verdict(
                target,
                False,
                "KindNotServed",
                f"the API does not serve {target.resource.describe()} (is its CRD installed?)",
            )
            if deadline.expired():
                return verdict
            sleep(min(UNKNOWN_KIND_POLL, deadline.remaining()))
            if deadline.expired():
                return verdict


def wait_ready(
    client: KubeClient,
    targets: list[Target],
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> GateResult:
    """Wait for every target with one deadline; once it is gone, each remaining one is read once."""
    deadline = Deadline(timeout, clock)
    result = GateResult()
    for target in targets:
        result.verdicts.append(wait_one(client, target, deadline, sleep))
    result.elapsed = deadline.elapsed()
    return result
