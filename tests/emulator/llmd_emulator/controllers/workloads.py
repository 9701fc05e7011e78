"""Deployment, ReplicaSet, StatefulSet, DaemonSet and Job controllers (simplified kube-controller).

Rollouts surge the whole new ReplicaSet at once and scale old ones down as new pods become
Ready (Recreate scales old ones to zero first). minReadySeconds is ignored.
"""

from __future__ import annotations

import contextlib
import copy
import json
from typing import TYPE_CHECKING

from ..store import AlreadyExists, now_iso
from .base import (
    Controller,
    Key,
    Obj,
    controller_of,
    key_of,
    owned_by,
    owner_ref,
    rand_suffix,
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


def _pod(owner: Obj, template: Obj, name: str, labels: dict[str, str]) -> Obj:
    meta = template.get("metadata") or {}
    pod_meta = {
        "name": name,
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

    def _owned_pods(self, owner: Obj) -> list[Obj]:
        pods = self.store.list("v1", "Pod", owner["metadata"]["namespace"])
        return [p for p in pods if owned_by(p, owner)]

    def _create(self, obj: Obj) -> None:
        with contextlib.suppress(AlreadyExists):  # a random suffix collided; retried later
            self.store.create(obj)

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
        for _pos in range(want - len(pods)):
            self._create(_pod(rs, template, f"{rs['metadata']['name']}-{rand_suffix()}", {}))
        if len(pods) > want:
            self._delete_pods(pods, len(pods) - want)
        pods = _active(self._owned_pods(rs))
        ready = sum(pod_ready(p) for p in pods)
        status = {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        if rs.get("status") != status:
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
        if new is None:
            new = self._new_replicaset(deploy, template, hash_, len(owned), new_replicas)
        else:
            self._scale(new, new_replicas)
        self._deployment_status(deploy, new, old)

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

    def _deployment_status(self, deploy: Obj, new: Obj, old: list[Obj]) -> None:
        replicas = deploy["spec"].get("replicas", 1)
        every = [new, *old]

        def total(field: str, sets: list[Obj]) -> int:
            return sum((rs.get("status") or {}).get(field, 0) for rs in sets)

        available = total("availableReplicas", every)
        updated = total("replicas", [new])
        status = copy.deepcopy(deploy.get("status") or {})
        status.update(
            observedGeneration=deploy["metadata"].get("generation", 1),
            replicas=total("replicas", every),
            updatedReplicas=updated,
            readyReplicas=total("readyReplicas", every),
            availableReplicas=available,
        )
        unavailable = max(0, status["replicas"] - available)
        if unavailable:
            status["unavailableReplicas"] = unavailable
        else:
            status.pop("unavailableReplicas", None)
        for field in ("readyReplicas", "availableReplicas", "updatedReplicas"):
            if not status[field]:
                status.pop(field)
        conds = status.setdefault("conditions", [])
        max_unavailable = replicas // 4  # default maxUnavailable 25%, rounded down
        if available >= replicas - max_unavailable:
            set_condition(
                conds,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            )
        else:
            set_condition(
                conds,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        rs_name = new["metadata"]["name"]
        new_available = total("availableReplicas", [new])
        done = new_available >= replicas and not total("replicas", old)
        if done:
            progress = (
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
            )
        else:
            progress = ("ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
        prev = next((c for c in conds if c["type"] == "Progressing"), None)
        set_condition(conds, "Progressing", "True", *progress, lastUpdateTime=now_iso())
        if prev and prev.get("reason") == progress[0]:  # keep lastUpdateTime stable
            next(c for c in conds if c["type"] == "Progressing")["lastUpdateTime"] = prev.get(
                "lastUpdateTime"
            )
        conds.sort(key=lambda c: c["type"] != "Available")
        if status != deploy.get("status"):
            deploy["status"] = status
            self.store.update_status(deploy)

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
        for ordinal in range(replicas):
            pod_name = f"{name}-{ordinal}"
            if pod_name not in pods:
                labels = {
                    "controller-revision-hash": revision,
                    "statefulset.kubernetes.io/pod-name": pod_name,
                    "apps.kubernetes.io/pod-index": str(ordinal),
                }
                self._create(_pod(sts, template, pod_name, labels))
        pods_now = self._owned_pods(sts)
        ready = sum(pod_ready(p) for p in pods_now)
        status = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(pods_now),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "currentReplicas": len(pods_now),
            "updatedReplicas": len(pods_now),
            "currentRevision": revision,
            "updateRevision": revision,
            "collisionCount": 0,
        }
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
        for node in targets:
            if node not in by_node and not (node is None and pods):
                pod = _pod(ds, template, f"{ds['metadata']['name']}-{rand_suffix()}", {})
                if node:
                    pod["spec"]["nodeName"] = node
                self._create(pod)
        pods = self._owned_pods(ds)
        ready = sum(pod_ready(p) for p in pods)
        status = {
            "observedGeneration": ds["metadata"].get("generation", 1),
            "desiredNumberScheduled": len(targets),
            "currentNumberScheduled": len(pods),
            "updatedNumberScheduled": len(pods),
            "numberReady": ready,
            "numberAvailable": ready,
            "numberMisscheduled": 0,
        }
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
        for _pos in range(max(0, missing)):
            self._create(
                _pod(job, job["spec"].get("template") or {}, f"{name}-{rand_suffix()}", labels)
            )
        status = copy.deepcopy(job.get("status") or {})
        status.setdefault("startTime", now_iso())
        status.update(
            active=len(_active(self._owned_pods(job))),
            succeeded=succeeded,
            ready=sum(pod_ready(p) for p in active),
        )
        if succeeded >= completions:
            status["active"] = 0
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
        if status != job.get("status"):
            job["status"] = status
            self.store.update_status(job)
