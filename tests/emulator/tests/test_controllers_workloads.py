"""Deployment/ReplicaSet/StatefulSet/Job controllers and the scheduler, on a background emulator."""

from __future__ import annotations

import re

import pytest
from support import TPU_TEMPLATE, Kube, condition, node, running_kube, wait_for


@pytest.fixture(scope="module")
def kube(tmp_path_factory) -> Kube:
    with running_kube(tmp_path_factory.mktemp("emu-workloads"), time_scale=0.002) as kube:
        yield kube


def deployment(name: str, ns: str, replicas: int, spec: dict | None = None) -> dict:
    pod_spec = {"containers": [{"name": "app", "image": "nginx:1.27"}], **(spec or {})}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        },
    }


def pods(kube: Kube, ns: str, app: str) -> list[dict]:
    return kube.list("v1", "Pod", ns, f"app={app}")


def ready_replicas(kube: Kube, ns: str, name: str) -> int:
    return (
        (kube.get("apps/v1", "Deployment", name, ns) or {})
        .get("status", {})
        .get("readyReplicas", 0)
    )


def test_deployment_pods_become_ready_scale_and_go_away(kube):
    kube.namespace("web")
    kube.create(deployment("shop", "web", 2))
    wait_for(lambda: ready_replicas(kube, "web", "shop") == 2, what="2 ready replicas")
    found = pods(kube, "web", "shop")
    assert len(found) == 2
    rs = kube.list("apps/v1", "ReplicaSet", "web")
    assert [r["metadata"]["ownerReferences"][0]["kind"] for r in rs] == ["Deployment"]
    for pod in found:
        meta = pod["metadata"]
        pod_hash = meta["labels"]["pod-template-hash"]
        assert re.fullmatch(rf"shop-{pod_hash}-[a-z0-9]{{5}}", meta["name"])
        assert meta["ownerReferences"][0]["name"] == rs[0]["metadata"]["name"]
        assert pod["status"]["phase"] == "Running"
        assert pod["status"]["containerStatuses"][0]["ready"] is True
    status = kube.get("apps/v1", "Deployment", "shop", "web")["status"]
    assert status["observedGeneration"] == 1
    assert status["availableReplicas"] == status["updatedReplicas"] == 2
    assert condition({"status": status}, "Available")["reason"] == "MinimumReplicasAvailable"
    assert condition({"status": status}, "Progressing")["reason"] == "NewReplicaSetAvailable"

    kube.patch("apps/v1", "Deployment", "shop", "web", {"spec": {"replicas": 3}})
    wait_for(lambda: ready_replicas(kube, "web", "shop") == 3, what="scale up")
    kube.patch("apps/v1", "Deployment", "shop", "web", {"spec": {"replicas": 1}})
    wait_for(lambda: len(pods(kube, "web", "shop")) == 1, what="scale down")
    assert kube.get("apps/v1", "Deployment", "shop", "web")["status"]["replicas"] == 1

    kube.delete("apps/v1", "Deployment", "shop", "web")
    wait_for(lambda: not pods(kube, "web", "shop"), what="pods deleted with the Deployment")
    assert kube.list("apps/v1", "ReplicaSet", "web") == []


def test_template_change_rolls_out_a_new_replicaset(kube):
    kube.namespace("roll")
    kube.create(deployment("api", "roll", 2))
    wait_for(lambda: ready_replicas(kube, "roll", "api") == 2, what="first rollout")
    old_hash = pods(kube, "roll", "api")[0]["metadata"]["labels"]["pod-template-hash"]
    new = deployment("api", "roll", 2)["spec"]["template"]
    new["spec"]["containers"][0]["image"] = "nginx:1.28"
    kube.patch("apps/v1", "Deployment", "api", "roll", {"spec": {"template": new}})

    def rolled() -> bool:
        current = pods(kube, "roll", "api")
        hashes = {p["metadata"]["labels"]["pod-template-hash"] for p in current}
        status = kube.get("apps/v1", "Deployment", "api", "roll")["status"]
        return len(current) == 2 and old_hash not in hashes and status.get("readyReplicas") == 2

    wait_for(rolled, what="rollout to the new template")
    status = kube.get("apps/v1", "Deployment", "api", "roll")["status"]
    assert status["observedGeneration"] == 2
    assert len(kube.list("apps/v1", "ReplicaSet", "roll")) == 2


def test_statefulset_and_job(kube):
    kube.namespace("batch")
    template = {
        "metadata": {"labels": {"app": "db"}},
        "spec": {"containers": [{"name": "db", "image": "postgres:17"}]},
    }
    kube.create(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "batch"},
            "spec": {
                "replicas": 2,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": template,
            },
        }
    )
    kube.create(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "migrate", "namespace": "batch"},
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "migrate", "image": "busybox"}],
                    }
                }
            },
        }
    )
    wait_for(
        lambda: (
            kube.get("apps/v1", "StatefulSet", "db", "batch")["status"].get("readyReplicas") == 2
        ),
        what="statefulset ready",
    )
    assert sorted(p["metadata"]["name"] for p in pods(kube, "batch", "db")) == ["db-0", "db-1"]
    job = wait_for(
        lambda: condition(kube.get("batch/v1", "Job", "migrate", "batch"), "Complete"),
        what="job complete",
    )
    assert job["status"] == "True"
    job_pods = kube.list("v1", "Pod", "batch", "job-name=migrate")
    assert [p["status"]["phase"] for p in job_pods] == ["Succeeded"]


def test_scheduler_taints_tolerations_and_tpu_capacity(kube):
    kube.namespace("sched")
    for obj in (node("plain-a"), node("plain-b"), node("tpu-a", tpu=True)):
        kube.create_node(obj)
    try:
        tpu_request = {"resources": {"limits": {"google.com/tpu": "4"}}}
        spec = {
            **TPU_TEMPLATE,
            "containers": [
                {"name": "app", "image": "vllm", "args": ["/mnt/models"], **tpu_request}
            ],
        }
        kube.create(deployment("tpu", "sched", 2, spec))
        pending = wait_for(
            lambda: [
                p
                for p in pods(kube, "sched", "tpu")
                if not p["spec"].get("nodeName")
                and condition(p, "PodScheduled").get("reason") == "Unschedulable"
            ],
            what="one unschedulable TPU pod",
        )
        running = [p for p in pods(kube, "sched", "tpu") if p["spec"].get("nodeName")]
        assert [p["spec"]["nodeName"] for p in running] == ["tpu-a"]
        message = condition(pending[0], "PodScheduled")["message"]
        assert message.startswith(
            "0/3 nodes are available: 1 Insufficient google.com/tpu, 2 node(s) didn't match "
            "Pod's node affinity/selector. preemption: 0/3 nodes are available:"
        )
        events = kube.events("sched", pending[0]["metadata"]["name"])
        assert any(e["reason"] == "FailedScheduling" and e["type"] == "Warning" for e in events)

        untolerating = {
            "nodeSelector": TPU_TEMPLATE["nodeSelector"],
            "containers": [{"name": "app", "image": "vllm", "args": ["/mnt/models"]}],
        }
        kube.create(deployment("no-toleration", "sched", 1, untolerating))
        stuck = wait_for(
            lambda: condition(
                (pods(kube, "sched", "no-toleration") or [None])[0], "PodScheduled"
            ).get("message"),
            what="taint message",
        )
        assert "1 node(s) had untolerated taint {google.com/tpu: present}" in stuck

        kube.create(deployment("plain", "sched", 2))
        wait_for(lambda: ready_replicas(kube, "sched", "plain") == 2, what="plain pods ready")
        assert {p["spec"]["nodeName"] for p in pods(kube, "sched", "plain")} <= {
            "plain-a",
            "plain-b",
        }

        kube.create_node(node("tpu-b", tpu=True))  # new capacity: the pending pod gets scheduled
        wait_for(lambda: ready_replicas(kube, "sched", "tpu") == 2, what="second TPU pod ready")
    finally:
        for name in ("plain-a", "plain-b", "tpu-a", "tpu-b"):
            kube.delete("v1", "Node", name)
