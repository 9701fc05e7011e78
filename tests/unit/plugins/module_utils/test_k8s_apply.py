"""k8s_apply: discovery of plural and scope, changed as kubernetes.core says it, Secrets hidden,
the wait skipped for objects already ready."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.llmd.gke.plugins.module_utils import k8s_apply
from ansible_collections.llmd.gke.plugins.module_utils.k8s_apply import (
    Applier,
    ApplyError,
    apply_all,
    diff_of,
    same,
    wait_applied,
)
from ansible_collections.llmd.gke.plugins.module_utils.k8s_ready import GateResult, Verdict
from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import KubeError

DISCOVERY = {
    "v1": [
        {"name": "configmaps", "kind": "ConfigMap", "namespaced": True},
        {"name": "secrets", "kind": "Secret", "namespaced": True},
        {"name": "namespaces", "kind": "Namespace", "namespaced": False},
    ],
    "apiextensions.k8s.io/v1": [
        {"name": "customresourcedefinitions", "kind": "CustomResourceDefinition"},
        {"name": "customresourcedefinitions/status", "kind": "CustomResourceDefinition"},
    ],
}


class FakeClient:
    def __init__(self, discovery=None, objects=None, fail=None) -> None:
        self.discovery = copy.deepcopy(discovery or DISCOVERY)
        self.objects = objects or {}
        self.fail = fail
        self.calls: list[tuple] = []
        self.rv = 1

    def discover(self, api_version):
        self.calls.append(("discover", api_version))
        return self.discovery.get(api_version)

    def get(self, resource, name):
        self.calls.append(("get", resource.path(name)))
        return copy.deepcopy(self.objects.get(resource.path(name)))

    def apply(self, resource, body, field_manager, *, force=True, dry_run=False):
        self.calls.append(("apply", resource.path(body["metadata"]["name"]), force, dry_run))
        if self.fail:
            raise self.fail
        path = resource.path(body["metadata"]["name"])
        before = self.objects.get(path)
        after = copy.deepcopy(before) if before else {"metadata": {"uid": "u"}}
        merged = copy.deepcopy(body)
        merged["metadata"] = {**after["metadata"], **body["metadata"]}
        if before is None or {k: v for k, v in merged.items() if k != "metadata"} != {
            k: v for k, v in before.items() if k != "metadata"
        }:
            self.rv += 1
        merged["metadata"]["resourceVersion"] = str(self.rv)
        if not dry_run:
            self.objects[path] = merged
        return copy.deepcopy(merged)


CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}


def test_same_ignores_only_generation_and_resource_version():
    base = {"metadata": {"name": "x", "resourceVersion": "1", "generation": 1}, "spec": {"a": 1}}
    bumped = copy.deepcopy(base)
    bumped["metadata"].update(resourceVersion="2", generation=2)
    assert same(base, bumped)
    labelled = copy.deepcopy(base)
    labelled["metadata"]["labels"] = {"x": "y"}
    assert not same(base, labelled)
    assert not same(base, {**base, "spec": {"a": 2}})
    assert not same(None, base)


def test_apply_creates_then_is_unchanged_with_plural_scope_and_default_namespace():
    client = FakeClient()
    applier = Applier(client, "llmd-gke", default_namespace="ns")
    (first,) = apply_all(applier, [CM])
    assert (first.method, first.changed, first.namespace) == ("create", True, "ns")
    assert ("apply", "/api/v1/namespaces/ns/configmaps/c", True, False) in client.calls
    (again,) = apply_all(Applier(client, "llmd-gke", default_namespace="ns"), [CM])
    assert (again.method, again.changed) == ("unchanged", False)
    changed = copy.deepcopy(CM)
    changed["data"]["a"] = "2"
    (update,) = apply_all(Applier(client, "llmd-gke", default_namespace="ns"), [changed])
    assert (update.method, update.changed) == ("update", True)
    assert diff_of(update)["before"] == {"data": {"a": "1"}, "metadata": {"resourceVersion": "2"}}


def test_check_mode_dry_runs_and_stores_nothing():
    client = FakeClient()
    (got,) = apply_all(
        Applier(client, "m", check_mode=True), [{**CM, "metadata": {"name": "c", "namespace": "n"}}]
    )
    assert got.method == "create" and client.objects == {}
    assert client.calls[-1][-1] is True


def test_kinds_not_served_and_namespaced_without_namespace_are_refused():
    client = FakeClient()
    with pytest.raises(
        ApplyError, match="does not serve this kind .is its CustomResourceDefinition"
    ):
        apply_all(
            Applier(client, "m"),
            [{"apiVersion": "x.io/v1", "kind": "X", "metadata": {"name": "a"}}],
        )
    with pytest.raises(ApplyError, match="is namespaced: give metadata.namespace"):
        apply_all(Applier(client, "m"), [CM])
    with pytest.raises(ApplyError, match=r"definitions\[0\] needs apiVersion"):
        apply_all(Applier(client, "m"), [{"kind": "ConfigMap"}])


def test_a_kind_created_earlier_in_the_list_is_discovered_again():
    client = FakeClient()
    applier = Applier(client, "m")
    applier._kind_info("x.io/v1", "X")  # cached as not served
    client.discovery["x.io/v1"] = [{"name": "xs", "kind": "X", "namespaced": False}]
    (got,) = apply_all(applier, [{"apiVersion": "x.io/v1", "kind": "X", "metadata": {"name": "a"}}])
    assert got.plural == "xs" and client.calls.count(("discover", "x.io/v1")) == 2


def test_secrets_are_hidden_in_diffs_and_errors():
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "n"},
        "data": {"token": "U0VDUkVU"},
    }
    (got,) = apply_all(Applier(FakeClient(), "m"), [secret])
    assert "U0VDUkVU" not in repr(diff_of(got))
    error = KubeError(
        "422 Invalid: data[token]: Invalid value: U0VDUkVU", status=422, reason="Invalid"
    )
    with pytest.raises(KubeError) as caught:
        apply_all(Applier(FakeClient(fail=error), "m"), [secret])
    assert str(caught.value) == "cannot apply Secret n/s: 422 Invalid"
    with pytest.raises(KubeError, match="cannot apply ConfigMap n/c: 422 Invalid: data"):
        apply_all(
            Applier(FakeClient(fail=error), "m"),
            [{**CM, "metadata": {"name": "c", "namespace": "n"}}],
        )


def test_wait_reads_only_what_the_apply_answer_did_not_show_ready(monkeypatch):
    ready = {"status": {"conditions": [{"type": "Established", "status": "True"}]}}
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}
    client = FakeClient()
    applied = apply_all(
        Applier(client, "m"),
        [{**crd, "metadata": {"name": "a.x.io"}, **ready}, {**crd, "metadata": {"name": "b.x.io"}}],
    )
    asked = []

    def fake_wait(_client, targets, timeout):
        asked.extend((t.name, t.resource.plural, timeout) for t in targets)
        gate = GateResult(elapsed=1.0)
        gate.verdicts = [
            Verdict(t, False, "NoCondition", "no Established condition") for t in targets
        ]
        return gate

    monkeypatch.setattr(k8s_apply, "wait_ready", fake_wait)
    gate = wait_applied(client, applied, "Established", "True", 30)
    assert asked == [("b.x.io", "customresourcedefinitions", 30)]
    assert [v.ready for v in gate.verdicts] == [True, False]
    assert "CustomResourceDefinition b.x.io: no Established condition" in gate.message(30)


def test_gather_reads_files_then_text_then_definitions(tmp_path):
    from ansible_collections.llmd.gke.plugins.module_utils.k8s_apply import gather

    crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n"
    first = tmp_path / "a.yaml"
    first.write_text(
        crd + "  name: a.x.io\n---\n" + crd + "  name: skip.x.io\n---\n"
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns, creationTimestamp: 2024-01-02}\n"
    )
    text = crd + "  name: b.x.io\n---\n# a comment only\n"
    got = gather([str(first)], text, ["CustomResourceDefinition"], ["skip.x.io"], [CM])
    assert [d["metadata"]["name"] for d in got] == ["a.x.io", "b.x.io", "c"]
    every = gather([str(first)], None, [], [], [])
    assert every[-1]["metadata"]["creationTimestamp"] == "2024-01-02"
    with pytest.raises(ApplyError, match="cannot read .*absent.yaml"):
        gather([str(tmp_path / "absent.yaml")], None, [], [], [])
    with pytest.raises(ApplyError, match="manifests is not YAML"):
        gather([], "a: [", [], [], [])
