"""The emulated operators write what their upstream sources write (docs/conformance.md).

The CRDs are the real ones of the pinned charts (tests/tools/upstream.py); the operator
Deployments are created here as the charts would (their names), so each operator starts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import support
import yaml
from support import Kube, condition, running_kube, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import upstream  # noqa: E402

GW = "gateway.networking.k8s.io/v1"
CM_API = "operator.openshift.io/v1alpha1"
LWS_API = "operator.openshift.io/v1"
# The chart's RELATED_IMAGE_CERT_MANAGER_WEBHOOK replaces the manifest's image.
WEBHOOK_IMAGE = "registry.example/cert-manager-webhook@sha256:feed"
# The operators' kinds for support.Kube's paths (all cluster-scoped, as their CRDs say).
support.PLURALS.update(
    IstioRevision="istiorevisions",
    CertManager="certmanagers",
    LeaderWorkerSetOperator="leaderworkersetoperators",
    ServiceMonitor="servicemonitors",
)
support.CLUSTER_KINDS.update({"IstioRevision", "CertManager", "LeaderWorkerSetOperator"})


def chart_crds(chart: str, directory: str, *names: str) -> list[dict]:
    root = upstream.paths()["charts"][chart] / directory
    docs = []
    for name in names:
        docs += [d for d in yaml.safe_load_all((root / name).read_text()) if d]
    return docs


def operator_deployment(name: str, namespace: str, env: list[dict] | None = None) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"name": name}},
            "template": {
                "metadata": {"labels": {"name": name}},
                "spec": {"containers": [{"name": name, "image": "op", "env": env or []}]},
            },
        },
    }


@pytest.fixture(scope="module")
def kube(tmp_path_factory) -> Kube:
    with running_kube(tmp_path_factory.mktemp("emu-operators"), time_scale=0.002) as kube:
        for obj in (
            chart_crds(
                "sail",
                "manifests-crds",
                "customresourcedefinition-istios-sailoperator-io.yaml",
                "customresourcedefinition-istiorevisions-sailoperator-io.yaml",
            )
            + chart_crds(
                "cert_manager",
                "manifests-crds",
                "customresourcedefinition-certmanagers-operator-openshift-io.yaml",
            )
            + chart_crds(
                "lws",
                "crds",
                "customresourcedefinition-leaderworkersetoperators-operator-openshift-io.yaml",
            )
        ):
            kube.create(obj)
        kube.install_crds(("gateway.networking.k8s.io",))
        for ns in ("istio-system", "cert-manager-operator", "openshift-lws-operator"):
            kube.namespace(ns)
        yield kube


def test_sail_runs_istiod_and_copies_the_revision_conditions(kube):
    kube.create(
        {
            "apiVersion": "sailoperator.io/v1",
            "kind": "Istio",
            "metadata": {"name": "default"},
            "spec": {"version": "v1.27.3", "namespace": "istio-system"},
        }
    )
    # No operator running: nothing reconciles the Istio.
    assert not (kube.get("sailoperator.io/v1", "Istio", "default").get("status") or {})
    kube.create(operator_deployment("servicemesh-operator3", "istio-system"))
    istio = wait_for(
        lambda: (
            (kube.get("sailoperator.io/v1", "Istio", "default").get("status") or {}).get("state")
            == "Healthy"
            and kube.get("sailoperator.io/v1", "Istio", "default")
        ),
        what="Istio Healthy",
    )
    assert {c["type"]: c["status"] for c in istio["status"]["conditions"]} == {
        "Reconciled": "True",
        "Ready": "True",
        "DependenciesHealthy": "True",
    }
    assert istio["status"]["activeRevisionName"] == "default"
    assert istio["status"]["revisions"]["ready"] == 1
    istiod = kube.get("apps/v1", "Deployment", "istiod", "istio-system")
    assert istiod["metadata"]["labels"]["istio.io/rev"] == "default"
    revision = kube.get("sailoperator.io/v1", "IstioRevision", "default")
    assert condition(revision, "InUse")["reason"] == "NotReferencedByAnything"
    assert wait_for(lambda: kube.get(GW, "GatewayClass", "istio"), what="GatewayClass istio")


def test_the_cert_manager_operator_runs_its_operands_and_writes_prefixed_conditions(kube):
    kube.create(
        {
            "apiVersion": CM_API,
            "kind": "CertManager",
            "metadata": {"name": "cluster"},
            "spec": {"managementState": "Managed"},
        }
    )
    env = [{"name": "RELATED_IMAGE_CERT_MANAGER_WEBHOOK", "value": WEBHOOK_IMAGE}]
    kube.create(
        operator_deployment(
            "cert-manager-operator-controller-manager", "cert-manager-operator", env
        )
    )

    def conditions() -> dict:
        obj = kube.get(CM_API, "CertManager", "cluster")
        return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or ()}

    wait_for(
        lambda: all(
            conditions().get(f"cert-manager-{x}-deploymentAvailable", {}).get("status") == "True"
            for x in ("controller", "webhook", "cainjector")
        ),
        what="cert-manager operands Available",
    )
    found = conditions()
    assert "Available" not in found  # no status controller sums them up
    for operand in ("controller", "webhook", "cainjector"):
        assert found[f"cert-manager-{operand}-deploymentProgressing"]["status"] == "False"
        assert found[f"cert-manager-{operand}-deploymentDegraded"]["reason"] == "AsExpected"
        assert found[f"cert-manager-{operand}-static-resources-Degraded"]["status"] == "False"
    for name in ("cert-manager", "cert-manager-webhook", "cert-manager-cainjector"):
        assert condition(kube.get("apps/v1", "Deployment", name, "cert-manager"), "Available")
    webhook = kube.get("apps/v1", "Deployment", "cert-manager-webhook", "cert-manager")
    assert webhook["spec"]["template"]["spec"]["containers"][0]["image"] == WEBHOOK_IMAGE


def test_the_lws_operator_needs_cert_manager_then_runs_its_controller(kube):
    kube.create(
        {
            "apiVersion": LWS_API,
            "kind": "LeaderWorkerSetOperator",
            "metadata": {"name": "cluster"},
            "spec": {"managementState": "Managed"},
        }
    )
    kube.create(operator_deployment("openshift-lws-operator", "openshift-lws-operator"))

    def lws_condition(type_: str) -> dict:
        return condition(kube.get(LWS_API, "LeaderWorkerSetOperator", "cluster"), type_)

    degraded = wait_for(
        lambda: (
            lws_condition("TargetConfigControllerDegraded").get("status") == "True"
            and lws_condition("TargetConfigControllerDegraded")
        ),
        what="Degraded without cert-manager",
    )
    assert degraded["reason"] == "SyncError"
    assert degraded["message"] == "please make sure that cert-manager is installed on your cluster"
    assert not lws_condition("Available")

    kube.install_crds(("cert-manager.io",))
    # Next it applies its ServiceMonitor, before its Deployment; with the kind not served the
    # sync stops there (a cluster without a Prometheus operator: GKE's default).
    degraded = wait_for(
        lambda: (
            lws_condition("TargetConfigControllerDegraded").get("message")
            == "the server could not find the requested resource"
            and lws_condition("TargetConfigControllerDegraded")
        ),
        what="Degraded without the ServiceMonitor kind",
    )
    assert (degraded["status"], degraded["reason"]) == ("True", "SyncError")
    assert not lws_condition("Available")
    assert not kube.get("apps/v1", "Deployment", "lws-controller-manager", "openshift-lws-operator")
    events = kube.list("v1", "Event", "openshift-lws-operator")
    assert [
        (e["type"], e["message"], e["involvedObject"]["name"])
        for e in events
        if e["reason"] == "ServiceMonitorCreateFailed"
    ] == [
        (
            "Warning",
            "Failed to create ServiceMonitor.monitoring.coreos.com/"
            "lws-controller-manager-metrics-monitor -n openshift-lws-operator: "
            "the server could not find the requested resource",
            "openshift-lws-operator",
        )
    ]

    kube.create(support.crd("monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors"))
    wait_for(lambda: lws_condition("Available").get("status") == "True", what="LWS Available")
    monitor = kube.get(
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        "lws-controller-manager-metrics-monitor",
        "openshift-lws-operator",
    )
    assert monitor["spec"]["selector"] == {"matchLabels": {"control-plane": "controller-manager"}}
    assert lws_condition("TargetConfigControllerDegraded")["status"] == "False"
    for cert, secret in (
        ("lws-serving-cert", "webhook-server-cert"),
        ("lws-metrics-cert", "metrics-server-cert"),
    ):
        obj = kube.get("cert-manager.io/v1", "Certificate", cert, "openshift-lws-operator")
        assert obj["spec"]["secretName"] == secret
    assert kube.get("apps/v1", "Deployment", "lws-controller-manager", "openshift-lws-operator")


def test_the_real_gateway_crd_takes_an_ip_address_and_refuses_a_bad_one(kube):
    """Gateway API v1.4.0's status.addresses: oneOf (IPAddress with format ipv4/ipv6 | type not
    IPAddress with value required): the emulator enforces oneOf as anyOf and keeps `not`."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from llmd_emulator.k8s.validation import validate_custom
    from llmd_emulator.store import Invalid

    (crd,) = [
        d
        for d in yaml.safe_load_all(upstream.paths()["gateway_api"].read_text())
        if d and d["metadata"]["name"] == "gateways.gateway.networking.k8s.io"
    ]
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]

    class Info:
        kind, group = "Gateway", "gateway.networking.k8s.io"
        schemas = {"v1": schema["openAPIV3Schema"]}

    gateway = {
        "metadata": {"name": "gw"},
        "spec": {
            "gatewayClassName": "istio",
            "listeners": [{"name": "h", "port": 80, "protocol": "HTTP"}],
        },
        "status": {"addresses": [{"type": "IPAddress", "value": "127.0.0.1"}]},
    }
    validate_custom(Info, "v1", gateway)
    gateway["status"]["addresses"] = [{"type": "Hostname"}]
    with pytest.raises(Invalid, match=r"status.addresses\[0\].value: Required value"):
        validate_custom(Info, "v1", gateway)
