"""kube-scheduler stand-in: binds Pending pods to fitting Nodes, or explains why none fits.

Filters run in kube-scheduler's order (NodeUnschedulable, TaintToleration, NodeAffinity,
NodeResourcesFit) and the first failing filter gives a node's reason; the FailedScheduling
message aggregates them like the real one. Only extended resources (e.g. google.com/tpu) are
counted; cpu and memory always fit. When the cluster has no Node at all (a sandbox without GKE),
pods without extended-resource requests whose node selection matches a GKE node's standard labels
(kubernetes.io/os linux, kubernetes.io/arch amd64: the operator charts require them) run on a
virtual node.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from .. import scenarios
from .base import (
    Controller,
    Key,
    Obj,
    condition,
    container_requests,
    key_of,
    parse_quantity,
    set_condition,
)

if TYPE_CHECKING:
    from ..core import Emulator

SANDBOX_NODE = "emulator-sandbox"
# The well-known labels the kubelet sets on every Node (k8s.io/api core/v1 well_known_labels.go).
_SANDBOX_NODE_OBJ = {
    "metadata": {
        "name": SANDBOX_NODE,
        "labels": {
            "kubernetes.io/hostname": SANDBOX_NODE,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
        },
    }
}
TPU_RESOURCE = "google.com/tpu"
BASIC_RESOURCES = {"cpu", "memory", "ephemeral-storage", "pods"}
_TERMINAL = {"Succeeded", "Failed"}


def tolerates(pod_spec: Obj, taint: Obj) -> bool:
    for tol in pod_spec.get("tolerations") or ():
        if tol.get("effect") and tol["effect"] != taint.get("effect"):
            continue
        if tol.get("operator") == "Exists":
            if not tol.get("key") or tol["key"] == taint.get("key"):
                return True
        elif tol.get("key") == taint.get("key") and tol.get("value", "") == taint.get("value", ""):
            return True
    return False


def _expression_matches(labels: dict[str, str], expr: Obj) -> bool:
    key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt") and key in labels and values:
        diff = float(labels[key]) - float(values[0])
        return diff > 0 if op == "Gt" else diff < 0
    return False


def matches_node_selection(pod_spec: Obj, node: Obj) -> bool:
    """nodeSelector and required node affinity."""
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (pod_spec.get("nodeSelector") or {}).items()):
        return False
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return True
    return any(
        all(_expression_matches(labels, e) for e in term.get("matchExpressions") or ())
        for term in terms
    )


def untolerated_taint(pod_spec: Obj, node: Obj) -> Obj | None:
    for taint in (node.get("spec") or {}).get("taints") or ():
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(pod_spec, taint):
            return taint
    return None


def node_ready(node: Obj) -> bool:
    cond = condition(node, "Ready")
    return cond is None or cond.get("status") == "True"


def node_misfit(
    spec: Obj, requests: dict[str, float], node: Obj, node_used: dict[str, float]
) -> str | None:
    """The first failing filter's reason for this node, None when the pod fits (extended
    resources only, see the module docstring)."""
    if (node.get("spec") or {}).get("unschedulable"):
        return "node(s) were unschedulable"
    if not node_ready(node):
        return "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
    taint = untolerated_taint(spec, node)
    if taint is not None:
        return f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"
    if not matches_node_selection(spec, node):
        return "node(s) didn't match Pod's node affinity/selector"
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    for resource, amount in sorted(requests.items()):
        free = parse_quantity(allocatable.get(resource, 0)) - node_used.get(resource, 0.0)
        if free < amount:
            return f"Insufficient {resource}"
    return None


class Scheduler:
    """Binds pods; asks the optional autoscaler hook for capacity when a pod does not fit."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store
        self.controller = Controller(emu, "scheduler", self.reconcile)
        self.controller.watch("v1", "Pod", self._pod_keys)
        self.controller.watch("v1", "Node", lambda _e, _o: self._pending_keys())

    def _pod_keys(self, event: str, pod: Obj) -> list[Key]:
        if event == "DELETED":  # freed capacity
            return self._pending_keys() if pod["spec"].get("nodeName") else []
        return [] if pod["spec"].get("nodeName") else [key_of(pod)]

    def _pending_keys(self) -> list[Key]:
        return [
            key_of(p)
            for p in self.store.list("v1", "Pod")
            if not p["spec"].get("nodeName") and p["status"].get("phase") not in _TERMINAL
        ]

    def reconcile(self, key: Key) -> None:
        pod = self.store.get("v1", "Pod", key[1], key[0])
        if pod is None or pod["spec"].get("nodeName") or pod["metadata"].get("deletionTimestamp"):
            return
        nodes = self.store.list("v1", "Node")
        spec = pod["spec"]
        requests = {k: v for k, v in container_requests(spec).items() if k not in BASIC_RESOURCES}
        if scenarios.active(self.emu, "unschedulable-tpu") and TPU_RESOURCE in requests:
            nodes_for_fit = [n for n in nodes if not self._has_tpu(n)]
            tpu_nodes = len(nodes) - len(nodes_for_fit)
        else:
            nodes_for_fit, tpu_nodes = nodes, 0
        if not nodes and not requests and matches_node_selection(spec, _SANDBOX_NODE_OBJ):
            self._bind(pod, SANDBOX_NODE)
            return
        reasons: Counter[str] = Counter(
            {f"Insufficient {TPU_RESOURCE}": tpu_nodes} if tpu_nodes else {}
        )
        used = self._used_resources() if requests else {}
        for node in nodes_for_fit:
            reason = self._misfit(spec, requests, node, used)
            if reason is None:
                self._bind(pod, node["metadata"]["name"])
                return
            reasons[reason] += 1
        self._unschedulable(pod, len(nodes), reasons, requests)

    @staticmethod
    def _has_tpu(node: Obj) -> bool:
        return TPU_RESOURCE in ((node.get("status") or {}).get("allocatable") or {})

    def _misfit(
        self, spec: Obj, requests: dict[str, float], node: Obj, used: dict[str, dict[str, float]]
    ) -> str | None:
        return node_misfit(spec, requests, node, used.get(node["metadata"]["name"], {}))

    def _used_resources(self) -> dict[str, dict[str, float]]:
        used: dict[str, dict[str, float]] = {}
        for pod in self.store.list("v1", "Pod"):
            node = pod["spec"].get("nodeName")
            if node and pod["status"].get("phase") not in _TERMINAL:
                per_node = used.setdefault(node, {})
                for name, amount in container_requests(pod["spec"]).items():
                    per_node[name] = per_node.get(name, 0.0) + amount
        return used

    def _bind(self, pod: Obj, node_name: str) -> None:
        pod["spec"]["nodeName"] = node_name
        pod = self.store.update(pod, binding=True)
        status = pod["status"]
        set_condition(status.setdefault("conditions", []), "PodScheduled", "True")
        self.store.update_status(pod)
        meta = pod["metadata"]
        self.store.record_event(
            pod,
            "Scheduled",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {node_name}",
            component="default-scheduler",
        )

    def _unschedulable(
        self, pod: Obj, total: int, reasons: Counter[str], requests: dict[str, Any]
    ) -> None:
        if total == 0:
            message = "no nodes available to schedule pods"
        else:
            parts = sorted(f"{count} {reason}" for reason, count in reasons.items())
            preempt = Counter(
                "No preemption victims found for incoming pod"
                if reason.startswith("Insufficient")
                else "Preemption is not helpful for scheduling"
                for reason in reasons.elements()
            )
            preempt_parts = sorted(f"{c} {r}" for r, c in preempt.items())
            message = (
                f"0/{total} nodes are available: {', '.join(parts)}. preemption: 0/{total} nodes "
                f"are available: {', '.join(preempt_parts)}."
            )
        status = pod["status"]
        cond = condition(pod, "PodScheduled") or {}
        if cond.get("message") != message:
            set_condition(
                status.setdefault("conditions", []),
                "PodScheduled",
                "False",
                "Unschedulable",
                message,
            )
            self.store.update_status(pod)
            self.store.record_event(
                pod, "FailedScheduling", message, "Warning", component="default-scheduler"
            )
        self._ask_autoscaler(pod, requests)

    def _ask_autoscaler(self, pod: Obj, requests: dict[str, Any]) -> None:
        """Hand the pod to the gke part's cluster-autoscaler hook when it offers one."""
        hook = getattr(self.emu, "autoscaler_hint", None)
        if hook is not None and not (
            scenarios.active(self.emu, "unschedulable-tpu") and TPU_RESOURCE in requests
        ):
            hook(pod)
