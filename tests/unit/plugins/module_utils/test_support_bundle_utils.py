"""support_bundle: redaction of secret values, the bundle's layout and summary (fake client)."""

from __future__ import annotations

import base64
import json
import os
import stat
import tarfile
from datetime import UTC, datetime

from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import KubeError
from ansible_collections.llmd.gke.plugins.module_utils.support_bundle import (
    Collector,
    archive_name,
    known_values,
    leaks,
    redact_tree,
    secret_summary,
    secret_values,
    summarise,
    tidy,
    write_archive,
)

NOW = datetime(2026, 11, 28, 1, 0, 0, tzinfo=UTC)
HF = "hf_" + "Unit1" * 8
PASSWORD = "UnitRegistryPassw0rd"
AUTH = base64.b64encode(f"robot:{PASSWORD}".encode()).decode()
DOCKERCONFIG = json.dumps({"auths": {"registry.redhat.io": {"auth": AUTH}}})
OTHER = "an-unrelated-secret-value-42"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(name, data, type_="Opaque", ns="ns"):
    return {
        "metadata": {"name": name, "namespace": ns},
        "type": type_,
        "data": {k: b64(v) for k, v in data.items()},
    }


def pod(name, *, waiting=None, ready=True, restarts=0, labels=None, ns="ns"):
    state = (
        {"waiting": {"reason": waiting, "message": "pull denied"}}
        if waiting
        else {"running": {"startedAt": "2026-11-28T00:00:00Z"}}
    )
    return {
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": f"uid-{name}",
            "creationTimestamp": "2026-11-28T00:00:00Z",
            "labels": labels or {},
        },
        "spec": {"containers": [{"name": "main", "image": "vllm:1"}]},
        "status": {
            "phase": "Pending" if waiting else "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [
                {"name": "main", "state": state, "restartCount": restarts, "ready": ready}
            ],
        },
    }


WORKLOAD = {
    "app.kubernetes.io/name": "m",
    "app.kubernetes.io/component": "llminferenceservice-workload",
    "kserve.io/component": "workload",
}


class FakeClient:
    """get/list/_json over a dict of objects by (path) and namespaced lists."""

    def __init__(self, objects: dict, lists: dict, fail: set | None = None):
        self.objects = objects
        self.lists = lists
        self.fail = fail or set()

    def get(self, resource, name):
        return self.objects.get(resource.path(name))

    def list(self, resource, label_selector=None, field_selector=None):
        path = resource.path()
        if path in self.fail:
            raise KubeError(f"LIST {path}: 403 Forbidden", status=403)
        if path not in self.lists:
            raise KubeError("not found", status=404)
        return {"items": self.lists[path]}

    def _json(self, path, query, what):
        return {"gitVersion": "v1.34.1-gke.1"}


def llmisvc(ready=False):
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "LLMInferenceService",
        "metadata": {
            "name": "m",
            "namespace": "ns",
            "generation": 1,
            "creationTimestamp": "2026-11-28T00:00:00Z",
            "managedFields": [{"manager": "llmd-gke"}],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": f'{{"t": "{HF}"}}'},
        },
        "spec": {
            "replicas": 1,
            "template": {
                "containers": [
                    {
                        "name": "main",
                        "env": [
                            {
                                "name": "HF_TOKEN",
                                "valueFrom": {"secretKeyRef": {"name": "hf-token"}},
                            }
                        ],
                    }
                ]
            },
        },
        "status": {
            "observedGeneration": 1,
            "conditions": [
                {"type": "Ready", "status": "True" if ready else "False", "reason": "Pending"}
            ],
        },
    }


def cluster(pods_ns, *, svc=None, fail=None):
    secrets_ns = [
        secret("hf-token", {"HF_TOKEN": HF}),
        secret(
            "redhat-pull-secret",
            {".dockerconfigjson": DOCKERCONFIG},
            "kubernetes.io/dockerconfigjson",
        ),
    ]
    lists = {
        "/api/v1/namespaces/ns/secrets": secrets_ns,
        "/api/v1/namespaces/ns/pods": pods_ns,
        "/apis/apps/v1/namespaces/ns/deployments": [],
        "/api/v1/namespaces/ns/services": [],
        "/api/v1/namespaces/ns/events": [],
        "/api/v1/namespaces/plat/secrets": [secret("other", {"k": OTHER}, ns="plat")],
        "/api/v1/namespaces/plat/pods": [pod("ctrl-1", ns="plat")],
        "/apis/apps/v1/namespaces/plat/deployments": [],
        "/api/v1/namespaces/plat/services": [],
        "/api/v1/namespaces/plat/events": [
            {
                "type": "Warning",
                "reason": "BackOff",
                "involvedObject": {"kind": "Deployment", "name": "x"},
                "message": f"token={OTHER}",
            }
        ],
        "/api/v1/nodes": [],
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions": [],
    }
    objects = {}
    if svc is not None:
        objects["/apis/serving.kserve.io/v1alpha1/namespaces/ns/llminferenceservices/m"] = svc
    return FakeClient(objects, lists, fail)


def logs_with_secrets(ns, pod_name, container, tail, previous=False):
    if pod_name == "m-kserve-1":  # waiting for its image: the API answers 400
        raise KubeError("cannot read the log: Bad Request", status=400)
    return [
        f"2026-11-28T00:00:01Z token {HF} loaded",
        f"2026-11-28T00:00:02Z Authorization: Bearer {'x' * 30}",
        f"2026-11-28T00:00:03Z pull with {AUTH} and {PASSWORD} and {OTHER}",
    ]


def test_secret_values_cover_raw_base64_and_registry_credentials():
    found = secret_values(
        [
            secret("a", {"HF_TOKEN": HF}),
            secret("p", {".dockerconfigjson": DOCKERCONFIG}),
            {"stringData": {"x": "plain-string-data"}},
            {"data": {"short": b64("true")}},
        ]
    )
    assert {HF, b64(HF), AUTH, f"robot:{PASSWORD}", PASSWORD, "plain-string-data"} <= found
    assert "true" not in found  # too short: it would blank out ordinary words
    assert {PASSWORD, AUTH, b64(HF), HF} <= known_values([HF, DOCKERCONFIG])


def test_redact_tree_removes_values_and_token_patterns_in_keys_and_values():
    data = {"a": [f"x {HF} y", {"Bearer": f"Bearer {'t' * 20}"}], OTHER: 1, "n": 3}
    out = redact_tree(data, [OTHER])
    text = json.dumps(out)
    assert HF not in text and OTHER not in text and "t" * 20 not in text
    assert out["n"] == 3


def test_tidy_and_secret_summary_drop_what_must_not_go_out():
    obj = tidy(llmisvc())
    assert "managedFields" not in obj["metadata"] and "annotations" not in obj["metadata"]
    summary = secret_summary(secret("hf-token", {"HF_TOKEN": HF}))
    assert summary == {
        "name": "hf-token",
        "namespace": "ns",
        "type": "Opaque",
        "keys": ["HF_TOKEN"],
        "labels": {},
    }


def test_collect_writes_no_secret_and_diagnoses_with_llmisvc_rules():
    pods = [
        pod("m-kserve-1", waiting="ImagePullBackOff", ready=False, labels=WORKLOAD),
        pod("m-router-1", restarts=2, labels={"app.kubernetes.io/name": "m"}),
    ]
    collector = Collector(
        cluster(pods, svc=llmisvc()),
        "m",
        "ns",
        ["plat", "ns"],
        log_lines=5,
        redact_values=[HF, DOCKERCONFIG],
        read_log=logs_with_secrets,
        tool_versions=lambda: {"helm": "v4.1.4"},
        wall=lambda: NOW,
    )
    files, summary, warnings = collector.collect()
    assert warnings == []
    everything = b"".join(files.values()).decode()
    for value in (HF, b64(HF), AUTH, PASSWORD, OTHER, b64(OTHER), "x" * 30):
        assert value not in everything
    assert leaks(files, collector.values) == []
    # Layout.
    assert {
        "summary.txt",
        "summary.json",
        "llmisvc.json",
        "children.json",
        "versions.json",
        "pods/ns.json",
        "pods/plat.json",
        "events/plat.json",
        "secrets/ns.json",
        "deployments/ns.json",
        "services/plat.json",
        "logs/ns/m-router-1/main.log",
        "logs/ns/m-router-1/main.previous.log",
        "logs/plat/ctrl-1/main.log",
    } <= set(files)
    # A waiting container has no log (the API refuses it): no file, no error line.
    assert "logs/ns/m-kserve-1/main.log" not in files
    assert "<redacted>" in files["logs/ns/m-router-1/main.log"].decode()
    assert json.loads(files["secrets/ns.json"])[0]["keys"] == ["HF_TOKEN"]
    versions = json.loads(files["versions.json"])
    assert versions["kubernetes"]["gitVersion"] == "v1.34.1-gke.1"
    assert versions["helm"] == "v4.1.4"
    # Summary: the pull failure first (llmisvc_wait's rule), then what else looks wrong.
    assert summary["diagnosis"]["reason"] == "ImagePullBackOff"
    assert "redhat-pull-secret" in summary["diagnosis"]["hint"]
    wheres = [p["where"] for p in summary["problems"]]
    assert wheres[0] == "m-kserve-1"
    assert "Pod ns/m-router-1" in wheres  # restarted
    assert "namespace plat" in wheres  # Warning event
    assert "HTTPRoute m-kserve-route" in wheres  # child missing
    text = files["summary.txt"].decode()
    assert text.startswith("LLMInferenceService ns/m: NOT Ready;")


def test_collect_without_the_service_says_so_and_reports_unreadable_lists():
    client = cluster([], fail={"/api/v1/namespaces/plat/pods"})
    files, summary, warnings = Collector(
        client, "m", "ns", ["plat"], read_log=logs_with_secrets, wall=lambda: NOW
    ).collect()
    assert summary["problems"][0]["what"] == "does not exist"
    assert json.loads(files["llmisvc.json"])["object"] is None
    assert any("403" in w for w in warnings)


def test_summarise_a_healthy_service_and_settled_warnings():
    svc = llmisvc(ready=True)
    ready_pod = pod("m-kserve-1", labels=WORKLOAD)
    events = [
        {
            "type": "Warning",
            "reason": "FailedScheduling",
            "involvedObject": {"kind": "Pod", "name": "m-kserve-1"},
        },
        {
            "type": "Warning",
            "reason": "FailedScheduling",
            "involvedObject": {"kind": "Pod", "name": "gone"},
        },
    ]
    children = {
        "route": {"kind": "HTTPRoute", "name": "r", "exists": True, "accepted": True},
        "pool": {"kind": "InferencePool", "name": "p", "exists": True, "accepted": True},
    }
    summary = summarise(
        svc,
        children,
        {"ns": {"pods": [ready_pod], "events": events, "deployments": []}},
        what="x",
        now=NOW,
        model_namespace="ns",
    )
    assert summary == {
        "healthy": True,
        "ready": True,
        "conditions": summary["conditions"],
        "diagnosis": None,
        "problems": [],
    }


def test_write_archive_layout_and_mode(tmp_path):
    root = archive_name("m", "ns", NOW)
    assert root == "llmd-support-ns-m-20261128T010000Z"
    path = write_archive({"b.txt": b"b", "a/x.json": b"{}"}, str(tmp_path / "out"), root)
    assert path == str(tmp_path / "out" / f"{root}.tar.gz")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with tarfile.open(path) as tar:
        assert tar.getnames() == [f"{root}/a/x.json", f"{root}/b.txt"]
        assert tar.extractfile(f"{root}/b.txt").read() == b"b"
    assert [p.name for p in (tmp_path / "out").iterdir()] == [f"{root}.tar.gz"]


def test_leaks_finds_a_value_left():
    assert leaks({"a": b"x hf secret-value y", "b": b"clean"}, ["secret-value"]) == ["a"]


def test_a_container_running_between_two_crashes_is_diagnosed_with_its_previous_log():
    crashing = pod("m-kserve-1", ready=False, restarts=3, labels=WORKLOAD)
    crashing["status"]["containerStatuses"][0]["lastState"] = {
        "terminated": {"exitCode": 1, "reason": "Error"}
    }
    logs = {
        "logs/ns/m-kserve-1/main.previous.log": [
            "2026-11-28T00:00:01Z huggingface_hub.errors.RepositoryNotFoundError: 401 Client Error."
        ],
        "logs/ns/m-kserve-1/main.log": ["2026-11-28T00:00:09Z INFO starting"],
    }
    summary = summarise(
        llmisvc(),
        {},
        {"ns": {"pods": [crashing], "events": [], "deployments": []}},
        what="x",
        now=NOW,
        model_namespace="ns",
        logs=logs,
    )
    assert summary["diagnosis"]["reason"] == "HuggingFace401"
    assert summary["diagnosis"]["pod"] == "m-kserve-1"
    assert "401 Client Error" in summary["diagnosis"]["log_tail"][-1]
    # A Ready pod that restarted once is not crashing.
    healthy = pod("m-kserve-2", restarts=1, labels=WORKLOAD)
    healthy["status"]["containerStatuses"][0]["lastState"] = {"terminated": {"exitCode": 1}}
    quiet = summarise(
        llmisvc(ready=True),
        {},
        {"ns": {"pods": [healthy], "events": [], "deployments": []}},
        what="x",
        now=NOW,
        model_namespace="ns",
    )
    assert quiet["diagnosis"] is None
