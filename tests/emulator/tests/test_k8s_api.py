"""Kubernetes API semantics through the kubernetes Python client and raw HTTPS requests."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests
from kubernetes import config, dynamic
from kubernetes.client.rest import ApiException
from support import crd, k8s_session

NS = "api-test"
CRD = crd(
    "example.com",
    "v1",
    "Gadget",
    "gadgets",
    schema={
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {
                    "size": {"type": "integer"},
                    "mode": {"type": "string", "enum": ["fast", "slow"]},
                    "port": {"x-kubernetes-int-or-string": True},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            },
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    },
    list_kind=False,
)


@pytest.fixture(scope="module")
def dyn(emulator) -> dynamic.DynamicClient:
    api = dynamic.DynamicClient(config.new_client_from_config(config_file=emulator.kubeconfig))
    api.resources.get(api_version="v1", kind="Namespace").create(
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    )
    return api


class Raw:
    """Raw HTTPS calls with the emulator's token and CA."""

    def __init__(self, emulator) -> None:
        self.base = emulator.k8s_url
        self.session = k8s_session(emulator)

    def __call__(self, method: str, path: str, body: Any = None, ctype: str = "application/json"):
        data = None if body is None else json.dumps(body)
        return self.session.request(
            method,
            self.base + path,
            data=data,
            headers={"Content-Type": ctype},
            timeout=30,
        )


@pytest.fixture(scope="module")
def raw(emulator, dyn) -> Raw:
    return Raw(emulator)


def _cm(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "data": {"k": "v"},
    }


def test_dynamic_client_crud_and_selectors(dyn: dynamic.DynamicClient) -> None:
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    created = cms.create(body=_cm("one", app="a", tier="web"), namespace=NS)
    meta = created.metadata
    assert meta.uid and meta.resourceVersion and meta.creationTimestamp
    assert "generation" not in created.to_dict()["metadata"]  # ConfigMaps have none
    cms.create(body=_cm("two", app="b"), namespace=NS)
    cms.create(body=_cm("three", app="c", tier="db"), namespace=NS)
    generated = cms.create(
        body={"metadata": {"generateName": "gen-", "namespace": NS}, "data": {}}, namespace=NS
    )
    assert generated.metadata.name.startswith("gen-") and len(generated.metadata.name) > 4

    def names(**kwargs: str) -> set[str]:
        found = cms.get(namespace=NS, **kwargs)
        assert found.kind == "ConfigMapList" and found.metadata.resourceVersion
        return {i.metadata.name for i in found.items} - {"kube-root-ca.crt"}

    assert names(label_selector="app=a") == {"one"}
    assert names(label_selector="app==a") == {"one"}
    assert names(label_selector="app!=a,app") == {"two", "three"}
    assert names(label_selector="app in (a,c)") == {"one", "three"}
    assert names(label_selector="app notin (a,c),app") == {"two"}
    assert names(label_selector="tier") == {"one", "three"}
    assert names(label_selector="!tier,app") == {"two"}
    assert names(field_selector="metadata.name=two") == {"two"}
    assert names(field_selector="metadata.name!=two", label_selector="app") == {"one", "three"}
    everywhere = dyn.resources.get(api_version="v1", kind="ConfigMap").get(label_selector="app=a")
    assert [i.metadata.namespace for i in everywhere.items] == [NS]

    patched = cms.patch(
        name="one",
        namespace=NS,
        body={"data": {"x": "1"}},
        content_type="application/merge-patch+json",
    )
    assert patched.data.x == "1" and patched.metadata.resourceVersion != meta.resourceVersion
    same = cms.patch(
        name="one",
        namespace=NS,
        body={"data": {"x": "1"}},
        content_type="application/merge-patch+json",
    )
    assert same.metadata.resourceVersion == patched.metadata.resourceVersion

    stale = patched.to_dict()
    stale["metadata"]["resourceVersion"] = meta.resourceVersion
    with pytest.raises(ApiException) as conflict:
        cms.replace(body=stale, namespace=NS)
    assert conflict.value.status == 409
    assert json.loads(conflict.value.body)["reason"] == "Conflict"

    cms.delete(name="one", namespace=NS)
    with pytest.raises(ApiException) as missing:
        cms.get(name="one", namespace=NS)
    assert missing.value.status == 404
    cms.delete(namespace=NS, label_selector="app")
    assert names() == {generated.metadata.name}


def test_watch_streams_events_and_honours_timeout(dyn: dynamic.DynamicClient) -> None:
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    start_rv = cms.get(namespace=NS).metadata.resourceVersion
    cms.create(body=_cm("watched", app="w"), namespace=NS)
    cms.patch(name="watched", namespace=NS, body={"data": {"k": "2"}})
    cms.delete(name="watched", namespace=NS)
    began = time.monotonic()
    events = [
        (e["type"], e["object"].metadata.name)
        for e in cms.watch(namespace=NS, resource_version=start_rv, timeout=2)
    ]
    elapsed = time.monotonic() - began
    assert events == [("ADDED", "watched"), ("MODIFIED", "watched"), ("DELETED", "watched")]
    assert 1.5 < elapsed < 5


def test_watch_by_name_sees_later_changes(emulator, raw: Raw) -> None:
    raw("POST", f"/api/v1/namespaces/{NS}/configmaps", _cm("later"))
    url = (
        f"{emulator.k8s_url}/api/v1/namespaces/{NS}/configmaps"
        "?watch=true&fieldSelector=metadata.name%3Dlater&timeoutSeconds=2"
    )
    with raw.session.get(url, stream=True, timeout=10, verify=emulator.ca_file) as stream:
        lines = stream.iter_lines()
        first = json.loads(next(lines))
        raw(
            "PATCH",
            f"/api/v1/namespaces/{NS}/configmaps/later",
            {"data": {"k": "3"}},
            "application/merge-patch+json",
        )
        second = json.loads(next(lines))
    assert first["type"] == "ADDED" and first["object"]["metadata"]["name"] == "later"
    assert second["type"] == "MODIFIED" and second["object"]["data"] == {"k": "3"}


def test_dry_run_stores_nothing(emulator, raw: Raw) -> None:
    base = f"/api/v1/namespaces/{NS}/configmaps"
    created = raw("POST", base + "?dryRun=All", _cm("dry"))
    assert created.status_code == 201 and created.json()["metadata"]["name"] == "dry"
    assert raw("GET", base + "/dry").status_code == 404
    raw("POST", base, _cm("wet"))
    patched = raw(
        "PATCH", base + "/wet?dryRun=All", {"data": {"k": "dry"}}, "application/merge-patch+json"
    )
    assert patched.json()["data"] == {"k": "dry"}
    deleted = raw("DELETE", base + "/wet?dryRun=All")
    assert deleted.status_code == 200
    applied = raw(
        "PATCH",
        base + "/dry-apply?dryRun=All&fieldManager=t",
        _cm("dry-apply"),
        "application/apply-patch+yaml",
    )
    assert applied.status_code == 201
    stored = [o["metadata"]["name"] for o in emulator.objects("ConfigMap", NS)]
    assert "dry" not in stored and "dry-apply" not in stored
    assert raw("GET", base + "/wet").json()["data"] == {"k": "v"}


def test_error_status_bodies(emulator, raw: Raw) -> None:
    missing = raw("GET", f"/api/v1/namespaces/{NS}/configmaps/nope")
    assert missing.status_code == 404
    body = missing.json()
    assert (body["kind"], body["status"], body["reason"], body["code"]) == (
        "Status",
        "Failure",
        "NotFound",
        404,
    )
    assert body["details"] == {"name": "nope", "group": "", "kind": "configmaps"}
    raw("POST", f"/api/v1/namespaces/{NS}/configmaps", _cm("dup"))
    dup = raw("POST", f"/api/v1/namespaces/{NS}/configmaps", _cm("dup"))
    assert (dup.status_code, dup.json()["reason"]) == (409, "AlreadyExists")
    wrong_ns = raw("POST", "/api/v1/namespaces/absent/configmaps", {"metadata": {"name": "x"}})
    assert wrong_ns.status_code == 404
    bad = raw("POST", f"/api/v1/namespaces/{NS}/configmaps", None)
    assert (bad.status_code, bad.json()["reason"]) == (400, "BadRequest")
    not_allowed = raw("PUT", f"/api/v1/namespaces/{NS}/configmaps")
    assert (not_allowed.status_code, not_allowed.json()["reason"]) == (405, "MethodNotAllowed")
    unknown = raw("GET", "/apis/example.com/v9/things")
    assert unknown.status_code == 404 and unknown.json()["kind"] == "Status"
    noauth = requests.get(
        emulator.k8s_url + "/api/v1/namespaces", verify=emulator.ca_file, timeout=10
    )
    assert (noauth.status_code, noauth.json()["reason"]) == (401, "Unauthorized")
    wrong = requests.get(
        emulator.k8s_url + "/api",
        verify=emulator.ca_file,
        headers={"Authorization": "Bearer wrong"},
        timeout=10,
    )
    assert wrong.status_code == 401
    version = requests.get(emulator.k8s_url + "/version", verify=emulator.ca_file, timeout=10)
    assert version.status_code == 200 and version.json()["major"] == "1"


def test_crd_lifecycle_validation_and_status_subresource(emulator, dyn, raw: Raw) -> None:
    crds = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    crd = crds.create(body=CRD)
    conditions = {c.type: c.status for c in crd.status.conditions}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert crd.status.acceptedNames.kind == "Gadget"
    group = raw("GET", "/apis/example.com/v1").json()
    names = {r["name"]: r for r in group["resources"]}
    assert names["gadgets"]["kind"] == "Gadget" and names["gadgets"]["namespaced"] is True
    assert "gadgets/status" in names
    assert "example.com" in {g["name"] for g in raw("GET", "/apis").json()["groups"]}

    base = f"/apis/example.com/v1/namespaces/{NS}/gadgets"
    gadget = {
        "apiVersion": "example.com/v1",
        "kind": "Gadget",
        "metadata": {"name": "g1"},
        "spec": {"size": 1, "port": "http", "extra": {"any": ["thing"]}},
        "status": {"phase": "ignored-on-create"},
    }
    created = raw("POST", base, gadget)
    assert created.status_code == 201, created.text
    assert "status" not in created.json()
    for spec, field, reason in (
        ({"size": "big"}, "spec.size", "FieldValueTypeInvalid"),
        ({"mode": "fast"}, "spec.size", "FieldValueRequired"),
        ({"size": 1, "mode": "warp"}, "spec.mode", "FieldValueNotSupported"),
    ):
        invalid = raw("POST", base, {**gadget, "metadata": {"name": "bad"}, "spec": spec})
        body = invalid.json()
        assert invalid.status_code == 422 and body["reason"] == "Invalid", body
        assert body["details"]["causes"][0]["field"] == field
        assert body["details"]["causes"][0]["reason"] == reason
    smp = raw(
        "PATCH", f"{base}/g1", {"spec": {"size": 2}}, "application/strategic-merge-patch+json"
    )
    assert smp.status_code == 415 and smp.json()["reason"] == "UnsupportedMediaType"

    status = raw(
        "PATCH",
        f"{base}/g1/status",
        {"status": {"phase": "Ready"}, "spec": {"size": 9}},
        "application/merge-patch+json",
    ).json()
    assert status["status"] == {"phase": "Ready"} and status["spec"]["size"] == 1
    assert status["metadata"]["generation"] == 1
    main = raw(
        "PATCH",
        f"{base}/g1",
        {"status": {"phase": "Lost"}, "spec": {"size": 2}},
        "application/merge-patch+json",
    ).json()
    assert main["status"] == {"phase": "Ready"} and main["spec"]["size"] == 2
    assert main["metadata"]["generation"] == 2

    crds.delete(name="gadgets.example.com")
    assert raw("GET", "/apis/example.com/v1").status_code == 404
    assert not emulator.objects("Gadget")


def test_builtin_status_scale_and_strategic_merge(raw: Raw) -> None:
    base = f"/apis/apps/v1/namespaces/{NS}/deployments"
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d1", "labels": {"app": "d1"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "d1"}},
            "template": {
                "metadata": {"labels": {"app": "d1"}},
                "spec": {
                    "containers": [
                        {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
                        {"name": "b", "image": "b:1"},
                    ]
                },
            },
        },
    }
    assert raw("POST", base, deployment).status_code == 201
    patched = raw(
        "PATCH",
        f"{base}/d1",
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "a", "env": [{"name": "Y", "value": "2"}]},
                            {"name": "b", "$patch": "delete"},
                        ]
                    }
                }
            }
        },
        "application/strategic-merge-patch+json",
    ).json()
    containers = patched["spec"]["template"]["spec"]["containers"]
    assert containers == [
        {
            "name": "a",
            "image": "a:1",
            "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
            # SetDefaults_Container (k8s.io/kubernetes pkg/apis/core/v1/defaults.go)
            "imagePullPolicy": "IfNotPresent",
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        }
    ]
    json_patched = raw(
        "PATCH",
        f"{base}/d1",
        [{"op": "replace", "path": "/spec/replicas", "value": 2}],
        "application/json-patch+json",
    ).json()
    assert json_patched["spec"]["replicas"] == 2
    scale = raw("GET", f"{base}/d1/scale").json()
    assert (scale["kind"], scale["spec"]["replicas"]) == ("Scale", 2)
    rescaled = raw(
        "PATCH", f"{base}/d1/scale", {"spec": {"replicas": 4}}, "application/merge-patch+json"
    ).json()
    assert rescaled["spec"]["replicas"] == 4
    assert raw("GET", f"{base}/d1").json()["spec"]["replicas"] == 4
    current = raw("GET", f"{base}/d1").json()
    del current["metadata"]["resourceVersion"]  # controllers may write status meanwhile
    current["status"] = {"observedGeneration": 99}
    current["spec"]["replicas"] = 7
    put_status = raw("PUT", f"{base}/d1/status", current).json()
    assert put_status["status"] == {"observedGeneration": 99}
    assert put_status["spec"]["replicas"] == 4


def test_namespace_deletion_removes_contents(emulator, raw: Raw) -> None:
    raw("POST", "/api/v1/namespaces", {"metadata": {"name": "doomed"}})
    raw("POST", "/api/v1/namespaces/doomed/configmaps", _cm("c1") | {"metadata": {"name": "c1"}})
    held = _cm("held") | {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}
    raw("POST", "/api/v1/namespaces/doomed/configmaps", held)
    raw("DELETE", "/api/v1/namespaces/doomed")
    namespace = raw("GET", "/api/v1/namespaces/doomed").json()
    assert namespace["status"]["phase"] == "Terminating"
    assert raw("GET", "/api/v1/namespaces/doomed/configmaps/c1").status_code == 404
    terminating = raw("GET", "/api/v1/namespaces/doomed/configmaps/held").json()
    assert terminating["metadata"]["deletionTimestamp"]
    refused = raw(
        "POST", "/api/v1/namespaces/doomed/configmaps", _cm("late") | {"metadata": {"name": "late"}}
    )
    assert refused.status_code == 403
    raw(
        "PATCH",
        "/api/v1/namespaces/doomed/configmaps/held",
        {"metadata": {"finalizers": None}},
        "application/merge-patch+json",
    )
    assert raw("GET", "/api/v1/namespaces/doomed/configmaps/held").status_code == 404
    assert raw("GET", "/api/v1/namespaces/doomed").status_code == 404


def test_discovery_documents(raw: Raw) -> None:
    core = {r["name"]: r for r in raw("GET", "/api/v1").json()["resources"]}
    assert core["pods"]["shortNames"] == ["po"] and core["pods"]["singularName"] == "pod"
    assert "pods/log" in core and "pods/status" in core
    apps = {r["name"]: r for r in raw("GET", "/apis/apps/v1").json()["resources"]}
    assert apps["deployments/scale"]["kind"] == "Scale"
    assert set(apps["deployments"]["verbs"]) >= {"create", "get", "list", "watch", "patch"}
    review = raw(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        {"spec": {"resourceAttributes": {"verb": "create", "resource": "pods"}}},
    )
    assert review.status_code == 201 and review.json()["status"]["allowed"] is True
    openapi = raw("GET", "/openapi/v3").json()["paths"]
    assert "apis/apps/v1" in openapi
    assert raw("GET", "/" + openapi["apis/apps/v1"]["serverRelativeURL"].lstrip("/")).ok


def test_apply_patch_in_yaml_or_json(raw: Raw) -> None:
    """An apply patch is YAML (JSON is its subset): block YAML applies as the same JSON does, and a
    body that is neither answers 400."""
    base = f"/api/v1/namespaces/{NS}/configmaps"
    ctype = {"Content-Type": "application/apply-patch+yaml"}
    as_yaml = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
        f"  name: from-yaml\n  namespace: {NS}\ndata:\n  k: 'yes'\n  n: '1'\n"
    )
    applied = raw.session.request(
        "PATCH", raw.base + base + "/from-yaml?fieldManager=t", data=as_yaml, headers=ctype
    )
    assert applied.status_code == 201, applied.text
    assert applied.json()["data"] == {"k": "yes", "n": "1"}
    as_json = raw(
        "PATCH", base + "/from-json?fieldManager=t", _cm("from-json"), ctype["Content-Type"]
    )
    assert as_json.status_code == 201 and as_json.json()["data"] == {"k": "v"}
    broken = raw.session.request(
        "PATCH", raw.base + base + "/broken?fieldManager=t", data="a: [b\n", headers=ctype
    )
    assert broken.status_code == 400 and "error decoding YAML" in broken.text
