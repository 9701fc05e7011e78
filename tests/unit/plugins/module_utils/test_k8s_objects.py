"""k8s_objects: queries, reads in order, kinds not served, Secret redaction, discovery."""

from __future__ import annotations

import pytest

from ansible_collections.llmd.gke.plugins.module_utils.k8s_objects import (
    LAST_APPLIED,
    Query,
    QueryError,
    Reader,
    not_served_message,
    redact_secret,
)
from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import KubeError


class FakeClient:
    """Objects by resource path; discovery by group version; counts the requests."""

    def __init__(self, objects=None, served=None) -> None:
        self.objects = objects or {}
        self.served = served or {}
        self.calls: list[tuple] = []

    def _known(self, resource) -> bool:
        return resource.plural in [r["name"] for r in self.served.get(resource.api_version, [])]

    def get(self, resource, name):
        self.calls.append(("get", resource.path(name)))
        if not self._known(resource):
            raise KubeError("404 NotFound", status=404, reason="NotFound")
        found = [o for o in self.objects.get(resource.path(), []) if o["metadata"]["name"] == name]
        return dict(found[0]) if found else None

    def list(self, resource, label_selector=None, field_selector=None):
        self.calls.append(("list", resource.path(), label_selector, field_selector))
        if not self._known(resource):
            raise KubeError("404 NotFound", status=404, reason="NotFound")
        items = [dict(o) for o in self.objects.get(resource.path(), [])]
        if label_selector:
            key, _eq, value = label_selector.partition("=")
            items = [o for o in items if o["metadata"].get("labels", {}).get(key) == value]
        return {"metadata": {"resourceVersion": "1"}, "items": items}

    def discover(self, api_version):
        self.calls.append(("discover", api_version))
        return self.served.get(api_version)


def res(name, kind, sub=()):
    return [{"name": name, "kind": kind}] + [{"name": f"{name}/{s}", "kind": kind} for s in sub]


SERVED = {
    "v1": res("secrets", "Secret") + res("namespaces", "Namespace", ["status"]),
    "gateway.networking.k8s.io/v1": res("gatewayclasses", "GatewayClass", ["status"]),
}
CA = {
    "kind": "Secret",
    "metadata": {
        "name": "ca",
        "namespace": "cm",
        "annotations": {LAST_APPLIED: '{"data": {"tls.key": "S0VZ"}}', "keep": "me"},
        "managedFields": [{"manager": "x"}],
    },
    "data": {"ca.crt": "Q0VSVA==", "tls.key": "S0VZ"},
    "stringData": {"tls.key": "KEY"},
}


def q(**kw):
    return Query.from_dict(kw, 0)


def test_query_checks_and_paths():
    assert q(api_version="v1", kind="Namespace").resource.path() == "/api/v1/namespaces"
    gc = q(api_version="gateway.networking.k8s.io/v1", kind="GatewayClass", name="istio")
    assert gc.resource.path("istio") == "/apis/gateway.networking.k8s.io/v1/gatewayclasses/istio"
    assert gc.crd_name() == "gatewayclasses.gateway.networking.k8s.io"
    sel = q(api_version="v1", kind="Pod", namespace="n", label_selectors=["a=b", "c=d"])
    assert sel.label_selector == "a=b,c=d"
    assert q(api_version="x/v1", kind="Odd", plural="oddities").resource.plural == "oddities"
    with pytest.raises(QueryError, match="objects\\[0\\]: api_version and kind"):
        q(kind="Pod")
    with pytest.raises(QueryError, match="name or selectors"):
        q(api_version="v1", kind="Pod", name="p", label_selectors=["a=b"])
    with pytest.raises(QueryError, match="wait needs the name"):
        q(api_version="v1", kind="Pod", wait=True)
    with pytest.raises(QueryError, match="not group/version"):
        q(api_version="a/b/c", kind="Pod")


def test_reads_in_order_with_kinds_on_list_items_and_absent_objects():
    client = FakeClient(
        {
            "/api/v1/namespaces": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}],
            "/apis/gateway.networking.k8s.io/v1/gatewayclasses": [{"metadata": {"name": "istio"}}],
        },
        SERVED,
    )
    reader = Reader(client)
    ns = reader.read(q(api_version="v1", kind="Namespace"))
    gc = reader.read(q(api_version="gateway.networking.k8s.io/v1", kind="GatewayClass", name="x"))
    assert [o["metadata"]["name"] for o in ns["resources"]] == ["a", "b"]
    assert ns["resources"][0]["kind"] == "Namespace" and ns["resources"][0]["apiVersion"] == "v1"
    assert ns["api_found"] is True and ns["plural"] == "namespaces"
    # Absent object of a served kind: one discovery to tell it from a kind not served.
    assert gc["api_found"] is True and gc["resources"] == []
    assert ("discover", "gateway.networking.k8s.io/v1") in client.calls


def test_found_objects_need_no_discovery():
    client = FakeClient({"/api/v1/namespaces": [{"metadata": {"name": "a"}}]}, SERVED)
    Reader(client).read(q(api_version="v1", kind="Namespace", name="a"))
    assert [c[0] for c in client.calls] == ["get"]


def test_kind_not_served_and_its_message_names_the_crd():
    client = FakeClient({}, SERVED)
    reader = Reader(client)
    got = reader.read(q(api_version="cert-manager.io/v1", kind="ClusterIssuer", name="ca"))
    listed = reader.read(q(api_version="v1", kind="Widget"))
    assert got["api_found"] is False and got["resources"] == []
    assert listed["api_found"] is False
    text = not_served_message([got, listed])
    assert "ClusterIssuer (cert-manager.io/v1) is not served" in text
    assert "kubectl get crd clusterissuers.cert-manager.io" in text
    assert "Widget (v1) is not served: the API server has no resource widgets" in text


def test_secrets_keep_only_the_keys_asked_for():
    client = FakeClient({"/api/v1/namespaces/cm/secrets": [CA]}, SERVED)
    got = Reader(client).read(
        q(api_version="v1", kind="Secret", name="ca", namespace="cm", secret_keys=["ca.crt"])
    )
    secret = got["resources"][0]
    assert secret["data"] == {"ca.crt": "Q0VSVA=="}
    assert "stringData" not in secret and "managedFields" not in secret["metadata"]
    assert secret["metadata"]["annotations"] == {"keep": "me"}
    assert "S0VZ" not in repr(got) and "KEY" not in repr(got)
    # Nothing asked for: no data at all; the original is not modified.
    assert redact_secret(CA, ())["data"] == {}
    assert CA["data"]["tls.key"] == "S0VZ"
    assert redact_secret({"kind": "ConfigMap", "data": {"a": "b"}}, ()) == {
        "kind": "ConfigMap",
        "data": {"a": "b"},
    }


def test_served_kinds_per_group_version_without_subresources():
    client = FakeClient({}, SERVED)
    reader = Reader(client)
    apis = reader.served_kinds(["v1", "cert-manager.io/v1"])
    assert apis == {"v1": ["Namespace", "Secret"], "cert-manager.io/v1": []}
    reader.served_kinds(["v1"])
    assert client.calls.count(("discover", "v1")) == 1  # kept for the run


def test_other_api_errors_propagate():
    class Denied(FakeClient):
        def get(self, resource, name):
            raise KubeError("403 Forbidden", status=403, reason="Forbidden")

    with pytest.raises(KubeError, match="403"):
        Reader(Denied({}, SERVED)).read(q(api_version="v1", kind="Secret", name="x", namespace="n"))


def test_wait_returns_the_object_or_times_out(monkeypatch):
    from ansible_collections.llmd.gke.plugins.module_utils import k8s_objects
    from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import WaitTimeout

    seen = []

    def fake_wait(client, resource, name, check, deadline):
        seen.append((resource.path(), name, deadline.timeout))
        if name == "late":
            raise WaitTimeout("timed out", last=None)
        obj = {"metadata": {"name": name}}
        assert check(obj) and not check(None)
        return True, obj

    monkeypatch.setattr(k8s_objects, "wait_for_object", fake_wait)
    client = FakeClient({}, SERVED)
    reader = Reader(client, wait_timeout=30)
    sa = dict(api_version="v1", kind="Secret", namespace="n", wait=True)
    found = reader.read(q(name="s", **sa))
    late = reader.read(q(name="late", **sa))
    assert found["resources"][0]["data"] == {} and found["timed_out"] is False
    assert late["resources"] == [] and late["timed_out"] is True and late["api_found"] is True
    assert seen[0] == ("/api/v1/namespaces/n/secrets", "s", 30.0)
