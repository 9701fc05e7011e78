"""Deployment, ReplicaSet, StatefulSet, DaemonSet and Job controllers (simplified kube-controller).

Status and conditions are written as kube-controller-manager writes them (k8s.io/kubernetes
pkg/controller/deployment/sync.go calculateStatus, progress.go syncRolloutStatus,
pkg/controller/replicaset/replica_set_utils.go calculateStatus, and the status types' `omitempty`
in k8s.io/api: a zero count is absent). A pod the API server refuses (ServiceAccount admission)
is a FailedCreate event and, for a ReplicaSet, the ReplicaFailure condition; creation is retried
with a growing delay. Rollouts surge the whole new ReplicaSet at once and scale old ones down as
new pods become Ready (Recreate scales old ones to zero first). minReadySeconds is ignored.
"""

from __future__ import annotations

import contextlib
import copy
import json
from typing import TYPE_CHECKING

from ..store import AlreadyExists, Forbidden, now_iso
from .base import (
    Controller,
    Key,
    Obj,
    controller_of,
    key_of,
    owned_by,
    owner_ref,
    set_condition,
    stable_hash,
)
from .scheduler import matches_node_selection, untolerated_taint

if TYPE_CHECKING:
    from ..core import Emulator

_TERMINAL = {"Succeeded", "Failed"}


def _owner_key(kind: str):
    def mapper(_event: str, obj: Obj) -> list[Key]:
        ref = controller_of(obj, kind)
        return [(obj["metadata"].get("namespace") or "", ref["name"])] if ref else []

    return mapper


def pod_ready(pod: Obj) -> bool:
    for cond in pod.get("status", {}).get("conditions") or ():
        if cond.get("type") == "Ready":
            return cond.get("status") == "True" and not pod["metadata"].get("deletionTimestamp")
    return False


def _active(pods: list[Obj]) -> list[Obj]:
    return [p for p in pods if p["status"].get("phase") not in _TERMINAL]


def _pod(owner: Obj, template: Obj, name: str | None, labels: dict[str, str]) -> Obj:
    """A pod of the template; without a name, generateName `<owner>-` as controller_utils sets."""
    meta = template.get("metadata") or {}
    naming = {"name": name} if name else {"generateName": f"{owner['metadata']['name']}-"}
    pod_meta = {
        **naming,
        "namespace": owner["metadata"]["namespace"],
        "labels": {**(meta.get("labels") or {}), **labels},
        "ownerReferences": [owner_ref(owner)],
    }
    if meta.get("annotations"):
        pod_meta["annotations"] = dict(meta["annotations"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": pod_meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def template_hash(template: Obj) -> str:
    return stable_hash(json.dumps(template, sort_keys=True))


def omit_zero(status: Obj, keep: tuple[str, ...] = ()) -> Obj:
    """Status as the API serializes it: `omitempty` int32 counts absent at zero (keep: fields
    declared without omitempty, or pointers, which stay at 0)."""
    return {k: v for k, v in status.items() if k in keep or v not in (0, None, [], "")}


def _intstr(value: object, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, str) and value.endswith("%"):
        scaled = int(value[:-1]) * total
        return -(-scaled // 100) if round_up else scaled // 100
    return int(value or 0)  # type: ignore[call-overload]


def max_unavailable(deploy: Obj) -> int:
    """deploymentutil.MaxUnavailable: surge rounds up, unavailable down, never both zero."""
    spec = deploy["spec"]
    replicas = spec.get("replicas", 1)
    strategy = spec.get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate" or replicas == 0:
        return 0
    rolling = strategy.get("rollingUpdate") or {}
    surge = _intstr(rolling.get("maxSurge", "25%"), replicas, True)
    unavailable = _intstr(rolling.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return min(unavailable, replicas)


def put_condition(conds: list[Obj], new: Obj) -> None:
    """deploymentutil.SetDeploymentCondition: the same status and reason is left as it is; the
    same status keeps lastTransitionTime; the new condition goes last."""
    current = next((c for c in conds if c["type"] == new["type"]), None)
    if current and (current["status"], current.get("reason")) == (new["status"], new.get("reason")):
        return
    if current and current["status"] == new["status"]:
        new["lastTransitionTime"] = current.get("lastTransitionTime")
    conds[:] = [c for c in conds if c["type"] != new["type"]] + [new]


def _deployment_condition(type_: str, status: str, reason: str, message: str) -> Obj:
    stamp = now_iso()
    return {
        "type": type_,
        "status": status,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


class Workloads:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store
        self.rs = Controller(emu, "replicaset", self.reconcile_replicaset)
        self.rs.watch("apps/v1", "ReplicaSet")
        self.rs.watch("v1", "Pod", _owner_key("ReplicaSet"))
        self.deploy = Controller(emu, "deployment", self.reconcile_deployment)
        self.deploy.watch("apps/v1", "Deployment")
        self.deploy.watch("apps/v1", "ReplicaSet", _owner_key("Deployment"))
        self.sts = Controller(emu, "statefulset", self.reconcile_statefulset)
        self.sts.watch("apps/v1", "StatefulSet")
        self.sts.watch("v1", "Pod", _owner_key("StatefulSet"))
        self.ds = Controller(emu, "daemonset", self.reconcile_daemonset)
        self.ds.watch("apps/v1", "DaemonSet")
        self.ds.watch("v1", "Pod", _owner_key("DaemonSet"))
        self.ds.watch(
            "v1",
            "Node",
            lambda _e, _o: [key_of(d) for d in self.store.list("apps/v1", "DaemonSet")],
        )
        self.job = Controller(emu, "job", self.reconcile_job)
        self.job.watch("batch/v1", "Job")
        self.job.watch("v1", "Pod", _owner_key("Job"))
        self._backoff: dict[str, float] = {}  # uid -> emulated seconds before the next try
        self._progress: dict[str, float] = {}  # Deployment uid -> emulated time of last progress

    def _owned_pods(self, owner: Obj) -> list[Obj]:
        pods = self.store.list("v1", "Pod", owner["metadata"]["namespace"])
        return [p for p in pods if owned_by(p, owner)]

    def _create(self, obj: Obj) -> None:
        with contextlib.suppress(AlreadyExists):  # a random suffix collided; retried later
            self.store.create(obj)

    def _create_pods(
        self, controller: Controller, owner: Obj, pods: list[Obj], component: str, message: str
    ) -> str | None:
        """Create pods until the API server refuses one (controller_utils createPods: a Warning
        FailedCreate event, the error returned, the owner requeued with a growing delay)."""
        uid = owner["metadata"]["uid"]
        for pod in pods:
            try:
                self._create(pod)
            except Forbidden as err:
                name = pod["metadata"].get("name", "")
                self.store.record_event(
                    owner,
                    "FailedCreate",
                    message.format(pod=name, owner=owner["metadata"]["name"], err=err.message),
                    type="Warning",
                    component=component,
                )
                delay = min(self._backoff.get(uid, 0.5) * 2, 60.0)
                self._backoff[uid] = delay
                controller.enqueue_after(key_of(owner), delay)
                return err.message
        self._backoff.pop(uid, None)
        return None

    def _delete_pods(self, pods: list[Obj], count: int) -> None:
        """Delete count pods, not-ready and newest first (as the ReplicaSet controller prefers)."""
        newest_first = sorted(pods, key=lambda p: p["metadata"]["creationTimestamp"], reverse=True)
        ranked = sorted(newest_first, key=lambda p: (bool(p["spec"].get("nodeName")), pod_ready(p)))
        for pod in ranked[:count]:
            self.store.delete("v1", "Pod", pod["metadata"]["name"], pod["metadata"]["namespace"])

    # ------------------------------------------------------------- ReplicaSet
    def reconcile_replicaset(self, key: Key) -> None:
        rs = self.store.get("apps/v1", "ReplicaSet", key[1], key[0])
        if rs is None:
            return
        pods = _active(self._owned_pods(rs))
        want = rs["spec"].get("replicas", 1)
        template = rs["spec"].get("template") or {}
        error = None
        if want > len(pods):
            new_pods = [_pod(rs, template, None, {}) for _index in range(want - len(pods))]
            error = self._create_pods(
                self.rs, rs, new_pods, "replicaset-controller", "Error creating: {err}"
            )
        if len(pods) > want:
            self._delete_pods(pods, len(pods) - want)
        pods = _active(self._owned_pods(rs))
        ready = sum(pod_ready(p) for p in pods)
        old = rs.get("status") or {}
        conds = [dict(c) for c in old.get("conditions") or ()]
        failure = next((c for c in conds if c["type"] == "ReplicaFailure"), None)
        if error and failure is None:
            reason = "FailedCreate" if len(pods) < want else "FailedDelete"
            conds.append(
                {
                    "type": "ReplicaFailure",
                    "status": "True",
                    "lastTransitionTime": now_iso(),
                    "reason": reason,
                    "message": error,
                }
            )
        elif not error and failure is not None:
            conds.remove(failure)
        status = omit_zero(
            {
                "replicas": len(pods),
                "fullyLabeledReplicas": len(pods),
                "readyReplicas": ready,
                "availableReplicas": ready,
                "observedGeneration": rs["metadata"].get("generation", 1),
                "conditions": conds,
            },
            keep=("replicas",),
        )
        if old != status:
            rs["status"] = status
            self.store.update_status(rs)

    # ------------------------------------------------------------- Deployment
    def reconcile_deployment(self, key: Key) -> None:
        deploy = self.store.get("apps/v1", "Deployment", key[1], key[0])
        if deploy is None:
            return
        spec = deploy["spec"]
        replicas = spec.get("replicas", 1)
        template = copy.deepcopy(spec.get("template") or {})
        hash_ = template_hash(template)
        owned = [
            rs for rs in self.store.list("apps/v1", "ReplicaSet", key[0]) if owned_by(rs, deploy)
        ]
        new = next(
            (rs for rs in owned if rs["metadata"]["labels"].get("pod-template-hash") == hash_), None
        )
        old = [rs for rs in owned if rs is not new]
        recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
        old_running = sum((rs.get("status") or {}).get("replicas", 0) for rs in old)
        new_ready = (new or {}).get("status", {}).get("readyReplicas", 0)
        old_budget = 0 if recreate else max(0, replicas - new_ready)
        for rs in sorted(old, key=lambda r: r["metadata"]["creationTimestamp"]):
            keep = min(rs["spec"].get("replicas", 0), old_budget)
            old_budget -= keep
            self._scale(rs, keep)
        new_replicas = 0 if recreate and old_running else replicas
        created = new is None
        if new is None:
            new = self._new_replicaset(deploy, template, hash_, len(owned), new_replicas)
        else:
            self._scale(new, new_replicas)
        self._deployment_status(deploy, new, old, created)

    def _scale(self, rs: Obj, replicas: int) -> None:
        if rs["spec"].get("replicas") != replicas:
            rs["spec"]["replicas"] = replicas
            self.store.update(rs)

    def _new_replicaset(
        self, deploy: Obj, template: Obj, hash_: str, revision: int, replicas: int
    ) -> Obj:
        name = f"{deploy['metadata']['name']}-{hash_}"
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), "pod-template-hash": hash_}
        selector = copy.deepcopy(deploy["spec"].get("selector") or {})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = hash_
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": deploy["metadata"]["namespace"],
                "labels": dict(tmeta["labels"]),
                "annotations": {
                    "deployment.kubernetes.io/revision": str(revision + 1),
                    "deployment.kubernetes.io/desired-replicas": str(replicas),
                },
                "ownerReferences": [owner_ref(deploy)],
            },
            "spec": {"replicas": replicas, "selector": selector, "template": template},
        }
        created = self.store.create(rs)
        self.store.record_event(
            deploy,
            "ScalingReplicaSet",
            f"Scaled up replica set {name} from 0 to {replicas}",
            component="deployment-controller",
        )
        return created

    def _deployment_status(self, deploy: Obj, new: Obj, old: list[Obj], created: bool) -> None:
        """sync.go calculateStatus, then progress.go syncRolloutStatus."""
        spec = deploy["spec"]
        replicas = spec.get("replicas", 1)
        every = [new, *old]

        def total(field: str, sets: list[Obj]) -> int:
            return sum((rs.get("status") or {}).get(field, 0) for rs in sets)

        before = deploy.get("status") or {}
        conds = [dict(c) for c in before.get("conditions") or ()]
        rs_name = new["metadata"]["name"]
        if created:  # getNewReplicaSet
            put_condition(
                conds,
                _deployment_condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetCreated",
                    f'Created new replica set "{rs_name}"',
                ),
            )
        elif not any(c["type"] == "Progressing" for c in conds):
            put_condition(
                conds,
                _deployment_condition(
                    "Progressing",
                    "True",
                    "FoundNewReplicaSet",
                    f'Found new replica set "{rs_name}"',
                ),
            )
        available = total("availableReplicas", every)
        wanted = sum(rs["spec"].get("replicas", 0) for rs in every)
        counts = {
            "observedGeneration": deploy["metadata"].get("generation", 1),
            "replicas": total("replicas", every),
            "updatedReplicas": total("replicas", [new]),
            "readyReplicas": total("readyReplicas", every),
            "availableReplicas": available,
            "unavailableReplicas": max(0, wanted - available),
        }
        if available >= replicas - max_unavailable(deploy):
            put_condition(
                conds,
                _deployment_condition(
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                ),
            )
        else:
            put_condition(
                conds,
                _deployment_condition(
                    "Available",
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                ),
            )
        self._progress_condition(deploy, conds, counts, before, rs_name)
        failure = next(
            (c for rs in every for c in (rs.get("status") or {}).get("conditions") or ()
             if c["type"] == "ReplicaFailure"),
            None,
        )  # fmt: skip
        if failure:
            put_condition(
                conds,
                {
                    "type": "ReplicaFailure",
                    "status": failure["status"],
                    "lastUpdateTime": failure.get("lastTransitionTime"),
                    "lastTransitionTime": failure.get("lastTransitionTime"),
                    "reason": failure.get("reason"),
                    "message": failure.get("message"),
                },
            )
        else:
            conds[:] = [c for c in conds if c["type"] != "ReplicaFailure"]
        status = omit_zero({**counts, "conditions": conds})
        if "collisionCount" in before:
            status["collisionCount"] = before["collisionCount"]
        if status != before:
            deploy["status"] = status
            self.store.update_status(deploy)

    def _progress_condition(
        self, deploy: Obj, conds: list[Obj], counts: dict[str, int], before: Obj, rs_name: str
    ) -> None:
        """progress.go syncRolloutStatus: complete, progressing, or past progressDeadlineSeconds."""
        spec = deploy["spec"]
        replicas = spec.get("replicas", 1)
        deadline = spec.get("progressDeadlineSeconds")
        uid = deploy["metadata"]["uid"]
        now = self.emu.clock.now()
        if deadline is None or deadline == 2**31 - 1:
            conds[:] = [c for c in conds if c["type"] != "Progressing"]
            return
        current = next((c for c in conds if c["type"] == "Progressing"), None)
        if (
            counts["replicas"] == counts["updatedReplicas"]
            and current
            and (current.get("reason") == "NewReplicaSetAvailable")
        ):
            return
        complete = (
            counts["updatedReplicas"] == replicas
            and counts["replicas"] == replicas
            and counts["availableReplicas"] == replicas
            and counts["observedGeneration"] >= deploy["metadata"].get("generation", 1)
        )
        old_old = before.get("replicas", 0) - before.get("updatedReplicas", 0)
        progressing = (
            counts["updatedReplicas"] > before.get("updatedReplicas", 0)
            or counts["replicas"] - counts["updatedReplicas"] < old_old
            or counts["readyReplicas"] > before.get("readyReplicas", 0)
            or counts["availableReplicas"] > before.get("availableReplicas", 0)
        )
        if complete:
            self._progress.pop(uid, None)
            put_condition(
                conds,
                _deployment_condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    f'ReplicaSet "{rs_name}" has successfully progressed.',
                ),
            )
        elif progressing or uid not in self._progress:
            self._progress[uid] = now
            self.deploy.enqueue_after(key_of(deploy), deadline + 1)
            if progressing:
                cond = _deployment_condition(
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    f'ReplicaSet "{rs_name}" is progressing.',
                )
                if current and current["status"] == "True":
                    cond["lastTransitionTime"] = current.get("lastTransitionTime")
                conds[:] = [c for c in conds if c["type"] != "Progressing"] + [cond]
        elif current and (
            current.get("reason") == "ProgressDeadlineExceeded"
            or now - self._progress[uid] > deadline
        ):
            put_condition(
                conds,
                _deployment_condition(
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    f'ReplicaSet "{rs_name}" has timed out progressing.',
                ),
            )
        else:
            self.deploy.enqueue_after(key_of(deploy), deadline + 1 - (now - self._progress[uid]))

    # ------------------------------------------------------------- StatefulSet
    def reconcile_statefulset(self, key: Key) -> None:
        sts = self.store.get("apps/v1", "StatefulSet", key[1], key[0])
        if sts is None:
            return
        name, replicas = sts["metadata"]["name"], sts["spec"].get("replicas", 1)
        template = sts["spec"].get("template") or {}
        revision = f"{name}-{template_hash(template)}"
        pods = {p["metadata"]["name"]: p for p in self._owned_pods(sts)}
        for pod_name, pod in pods.items():
            ordinal = int(pod_name.rsplit("-", 1)[1])
            stale = pod["metadata"]["labels"].get("controller-revision-hash") != revision
            if ordinal >= replicas or stale:
                self.store.delete("v1", "Pod", pod_name, key[0])
        missing = []
        for ordinal in range(replicas):
            pod_name = f"{name}-{ordinal}"
            if pod_name not in pods:
                labels = {
                    "controller-revision-hash": revision,
                    "statefulset.kubernetes.io/pod-name": pod_name,
                    "apps.kubernetes.io/pod-index": str(ordinal),
                }
                missing.append(_pod(sts, template, pod_name, labels))
        self._create_pods(
            self.sts,
            sts,
            missing,
            "statefulset-controller",
            "create Pod {pod} in StatefulSet {owner} failed error: {err}",
        )
        pods_now = self._owned_pods(sts)
        ready = sum(pod_ready(p) for p in pods_now)
        status = omit_zero(
            {
                "observedGeneration": sts["metadata"].get("generation", 1),
                "replicas": len(pods_now),
                "readyReplicas": ready,
                "availableReplicas": ready,
                "currentReplicas": len(pods_now),
                "updatedReplicas": len(pods_now),
                "currentRevision": revision,
                "updateRevision": revision,
                "collisionCount": 0,
            },
            keep=("replicas", "availableReplicas", "collisionCount"),
        )
        if sts.get("status") != status:
            sts["status"] = status
            self.store.update_status(sts)

    # ------------------------------------------------------------- DaemonSet
    def reconcile_daemonset(self, key: Key) -> None:
        ds = self.store.get("apps/v1", "DaemonSet", key[1], key[0])
        if ds is None:
            return
        template = ds["spec"].get("template") or {}
        pod_spec = template.get("spec") or {}
        nodes = [
            n["metadata"]["name"]
            for n in self.store.list("v1", "Node")
            if matches_node_selection(pod_spec, n) and untolerated_taint(pod_spec, n) is None
        ]
        pods = self._owned_pods(ds)
        if not self.store.list("v1", "Node"):
            targets: list[str | None] = [None]  # sandbox: one pod, placed by the scheduler
        else:
            targets = list(nodes)
        by_node = {p["spec"].get("nodeName"): p for p in pods}
        for pod in pods:
            node = pod["spec"].get("nodeName")
            if targets != [None] and node not in targets:
                self.store.delete("v1", "Pod", pod["metadata"]["name"], key[0])
        missing = []
        for node in targets:
            if node not in by_node and not (node is None and pods):
                pod = _pod(ds, template, None, {})
                if node:
                    pod["spec"]["nodeName"] = node
                missing.append(pod)
        self._create_pods(self.ds, ds, missing, "daemonset-controller", "Error creating: {err}")
        pods = self._owned_pods(ds)
        ready = sum(pod_ready(p) for p in pods)
        status = omit_zero(
            {
                "observedGeneration": ds["metadata"].get("generation", 1),
                "desiredNumberScheduled": len(targets),
                "currentNumberScheduled": len(pods),
                "updatedNumberScheduled": len(pods),
                "numberReady": ready,
                "numberAvailable": ready,
                "numberUnavailable": max(0, len(targets) - ready),
                "numberMisscheduled": 0,
            },
            keep=(
                "currentNumberScheduled",
                "numberMisscheduled",
                "desiredNumberScheduled",
                "numberReady",
            ),
        )
        if ds.get("status") != status:
            ds["status"] = status
            self.store.update_status(ds)

    # ------------------------------------------------------------- Job
    def reconcile_job(self, key: Key) -> None:
        job = self.store.get("batch/v1", "Job", key[1], key[0])
        if job is None or (job.get("status") or {}).get("completionTime"):
            return
        completions = job["spec"].get("completions", 1)
        parallelism = job["spec"].get("parallelism", 1)
        pods = self._owned_pods(job)
        succeeded = sum(p["status"].get("phase") == "Succeeded" for p in pods)
        active = _active(pods)
        missing = min(parallelism, completions - succeeded) - len(active)
        name = job["metadata"]["name"]
        labels = {
            "job-name": name,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": job["metadata"]["uid"],
            "batch.kubernetes.io/controller-uid": job["metadata"]["uid"],
        }
        template = job["spec"].get("template") or {}
        self._create_pods(
            self.job,
            job,
            [_pod(job, template, None, labels) for _index in range(max(0, missing))],
            "job-controller",
            "Error creating: {err}",
        )
        status = copy.deepcopy(job.get("status") or {})
        status.setdefault("startTime", now_iso())
        status.update(
            active=len(_active(self._owned_pods(job))),
            succeeded=succeeded,
            ready=sum(pod_ready(p) for p in active),
            terminating=0,
            uncountedTerminatedPods={},
        )
        if succeeded >= completions:
            status["active"] = 0
            status["ready"] = 0
            status["completionTime"] = now_iso()
            conds = status.setdefault("conditions", [])
            set_condition(
                conds,
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            )
            set_condition(
                conds,
                "Complete",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            )
        status = omit_zero(status, keep=("ready", "terminating", "uncountedTerminatedPods"))
        if status != job.get("status"):
            job["status"] = status
            self.store.update_status(job)
