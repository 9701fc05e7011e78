"""gateway_status: listener choice, URL building, condition evaluation, hints, pod readiness,
and the wait/fail flow of the gateway_ip module over a scripted client."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.llmd.gke.plugins.module_utils.gateway_status import (
    GatewayFailure,
    Verdict,
    build_url,
    diagnose,
    evaluate,
    pick_address,
    pod_summary,
    pod_warning,
    scheme_for,
    select_listener,
    wait_gateway,
)
from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import KubeError

NOT_ASSIGNED = {
    "type": "Programmed",
    "status": "False",
    "reason": "AddressNotAssigned",
    "message": "address pending",
    "observedGeneration": 1,
}


def cond(type_, status, reason=None, generation=1, message=""):
    return {
        "type": type_,
        "status": status,
        "reason": reason or type_,
        "message": message,
        "observedGeneration": generation,
    }


def gateway(
    conditions=None,
    addresses=None,
    *,
    listeners=None,
    generation=1,
    listener_status=None,
    class_name="istio",
):
    gw = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {
            "name": "inference-gateway",
            "namespace": "opendatahub",
            "generation": generation,
            "resourceVersion": "7",
        },
        "spec": {
            "gatewayClassName": class_name,
            "listeners": listeners
            if listeners is not None
            else [{"name": "http", "port": 80, "protocol": "HTTP"}],
        },
    }
    status = {}
    if conditions is not None:
        status["conditions"] = conditions
    if addresses is not None:
        status["addresses"] = addresses
    if listener_status is not None:
        status["listeners"] = listener_status
    if status:
        gw["status"] = status
    return gw


PROGRAMMED = gateway(
    [cond("Accepted", "True"), cond("Programmed", "True")],
    [{"type": "IPAddress", "value": "34.90.1.2"}],
)


# ------------------------------------------------------------------------- pure parts
def test_listener_choice_prefers_http_then_https_then_the_first():
    http = {"name": "web", "port": 8080, "protocol": "HTTP"}
    https = {"name": "tls", "port": 443, "protocol": "HTTPS"}
    tcp = {"name": "raw", "port": 9000, "protocol": "TCP"}
    assert select_listener(gateway(listeners=[https, http])) == http
    assert select_listener(gateway(listeners=[tcp, https])) == https
    assert select_listener(gateway(listeners=[tcp])) == tcp
    assert select_listener(gateway(listeners=[http, https]), "tls") == https
    with pytest.raises(ValueError, match=r"no listener named 'grpc' \(it has: web, tls\)"):
        select_listener(gateway(listeners=[http, https]), "grpc")
    with pytest.raises(ValueError, match="no listeners"):
        select_listener(gateway(listeners=[]))


def test_scheme_follows_the_listener_protocol_unless_set():
    assert scheme_for({"protocol": "HTTP"}) == "http"
    assert scheme_for({"protocol": "HTTPS"}) == "https"
    assert scheme_for({"protocol": "TLS"}) == "https"
    assert scheme_for({"protocol": "HTTP"}, "https") == "https"


@pytest.mark.parametrize(
    ("scheme", "host", "port", "url"),
    [
        ("http", "34.90.1.2", 80, "http://34.90.1.2"),
        ("http", "34.90.1.2", 8080, "http://34.90.1.2:8080"),
        ("https", "34.90.1.2", 443, "https://34.90.1.2"),
        ("http", "34.90.1.2", 443, "http://34.90.1.2:443"),
        ("https", "gw.example.com", 8443, "https://gw.example.com:8443"),
        ("http", "2001:db8::1", 80, "http://[2001:db8::1]"),
        ("http", "2001:db8::1", 81, "http://[2001:db8::1]:81"),
    ],
)
def test_url_omits_only_the_default_port(scheme, host, port, url):
    assert build_url(scheme, host, port) == url


def test_address_is_the_first_ip_or_hostname():
    def with_addresses(*entries):
        return gateway(addresses=list(entries))

    assert pick_address(with_addresses({"value": "10.0.0.1"})) == ("10.0.0.1", "IPAddress")
    named = {"type": "example.com/Named", "value": "x"}
    host = {"type": "Hostname", "value": "gw.example.com"}
    assert pick_address(with_addresses(named, host)) == ("gw.example.com", "Hostname")
    assert pick_address(with_addresses({"type": "IPAddress", "value": ""})) is None
    assert pick_address(gateway()) is None


def test_ready_gateway():
    verdict = evaluate(PROGRAMMED, "http")
    assert verdict.ready and verdict.reason == "Programmed"


@pytest.mark.parametrize(
    ("gw", "reason"),
    [
        (None, "NotFound"),
        (gateway(), "NoStatus"),
        # The Gateway API CRD's defaults, before any controller wrote the status.
        (
            gateway(
                [
                    cond("Accepted", "Unknown", "Pending", message="Waiting for controller"),
                    cond("Programmed", "Unknown", "Pending", message="Waiting for controller"),
                ]
            ),
            "NoStatus",
        ),
        (gateway([cond("Accepted", "False", "InvalidParameters")]), "NotAccepted"),
        (gateway([cond("Accepted", "True"), NOT_ASSIGNED]), "AddressNotAssigned"),
        (gateway([cond("Accepted", "True")]), "NotProgrammed"),
        (
            gateway(
                [cond("Accepted", "True"), cond("Programmed", "True")],
                [{"value": "1.2.3.4"}],
                generation=2,
            ),
            "Stale",
        ),
        (gateway([cond("Accepted", "True"), cond("Programmed", "True")], []), "NoAddress"),
        (
            gateway(
                [cond("Accepted", "True"), cond("Programmed", "True")],
                [{"value": "1.2.3.4"}],
                listener_status=[
                    {"name": "http", "conditions": [cond("Programmed", "False", "Invalid")]}
                ],
            ),
            "ListenerNotProgrammed",
        ),
    ],
)
def test_unusable_gateways_say_why(gw, reason):
    verdict = evaluate(gw, "http")
    assert not verdict.ready and verdict.reason == reason


def test_the_hint_follows_the_conditions():
    gw = gateway([cond("Accepted", "True"), NOT_ASSIGNED])
    hint = diagnose(gw, evaluate(gw), {"status": {}}, "istio")
    assert "kubectl get svc -n opendatahub inference-gateway-istio" in hint
    assert "quota" in hint and "forwarding rules" in hint

    bare = gateway()
    missing_class = diagnose(bare, evaluate(bare), None, "istio")
    assert "GatewayClass istio does not exist" in missing_class
    assert "operators phase" in missing_class

    unclaimed = {"spec": {"controllerName": "istio.io/gateway-controller"}}
    hint = diagnose(bare, evaluate(bare), unclaimed, "istio")
    assert "not Accepted" in hint and "istiod is not running" in hint

    accepted = {"status": {"conditions": [cond("Accepted", "True")]}}
    assert "No controller is reconciling" in diagnose(bare, evaluate(bare), accepted, "istio")

    rejected = gateway([cond("Accepted", "False", "InvalidParameters")])
    assert "parametersRef" in diagnose(rejected, evaluate(rejected), accepted, "istio")

    other = diagnose(PROGRAMMED, Verdict(False, "Invalid", "x"), accepted, "istio")
    assert "kubectl logs -n istio-system deploy/istiod" in other


def pod(name, ready, phase="Running", waiting=None, deleting=False):
    status = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    if waiting:
        status["containerStatuses"] = [{"state": {"waiting": {"reason": waiting}}}]
    meta = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": status}


def test_pod_readiness_ignores_terminating_and_finished_pods():
    assert pod_summary([pod("a", True)])[0] is True
    assert pod_summary([])[0] is False
    assert pod_summary([pod("a", True), pod("b", False, "Pending", "ErrImagePull")])[0] is False
    ok, summaries = pod_summary(
        [pod("new", True), pod("old", False, deleting=True), pod("evicted", False, "Failed")]
    )
    assert ok is True
    assert [s["name"] for s in summaries] == ["evicted", "new", "old"]


def test_pod_warning_names_the_pods_and_the_pull_secret():
    _ok, summaries = pod_summary([pod("gw-1", False, "Pending", "ImagePullBackOff")])
    text = pod_warning("opendatahub", "inference-gateway", summaries)
    assert "gw-1 (ImagePullBackOff)" in text
    assert "ServiceAccount inference-gateway-istio" in text
    assert "no pod labelled gateway.networking.k8s.io/gateway-name=gw" in pod_warning(
        "ns", "gw", []
    )


# ------------------------------------------------------------------- the flow, scripted
class Client:
    """Answers LISTs from fixed objects (gateways by field selector, pods by label)."""

    def __init__(self, gateways=(), pods=(), classes=None, list_error=None) -> None:
        self.gateways = list(gateways)
        self.pods = list(pods)
        self.classes = classes or {}
        self.list_error = list_error

    def list(self, resource, label_selector=None, field_selector=None):
        if self.list_error and resource.plural == "gateways":
            raise self.list_error
        items = self.gateways if resource.plural == "gateways" else self.pods
        if field_selector:
            name = field_selector.split("=", 1)[1]
            items = [o for o in items if o["metadata"]["name"] == name]
        return {"metadata": {"resourceVersion": "9"}, "items": copy.deepcopy(items)}

    def watch(self, *args, **kwargs):
        return iter(())

    def get(self, resource, name):
        return self.classes.get(name)


def test_a_programmed_gateway_gives_address_port_and_url():
    listeners = [
        {"name": "admin", "port": 15000, "protocol": "TCP"},
        {"name": "web", "port": 8080, "protocol": "HTTP"},
    ]
    gw = copy.deepcopy(PROGRAMMED)
    gw["spec"]["listeners"] = listeners
    info = wait_gateway(
        Client([gw], [pod("gw-1", True)]), "inference-gateway", "opendatahub", timeout=0
    )
    assert (info.address, info.address_type, info.port) == ("34.90.1.2", "IPAddress", 8080)
    assert (info.listener, info.scheme, info.url) == ("web", "http", "http://34.90.1.2:8080")
    assert info.pod_ready is True and info.warnings == []
    assert info.as_dict()["conditions"][1]["type"] == "Programmed"


def test_a_programmed_gateway_with_an_unready_pod_warns():
    client = Client([PROGRAMMED], [pod("gw-1", False, "Pending", "ErrImagePull")])
    info = wait_gateway(client, "inference-gateway", "opendatahub", timeout=0, pod_timeout=0)
    assert info.pod_ready is False
    assert "gw-1 (ErrImagePull)" in info.warnings[0]
    assert info.pods[0]["reasons"] == ["ErrImagePull"]

    unchecked = wait_gateway(client, "inference-gateway", "opendatahub", timeout=0, check_pod=False)
    assert unchecked.pod_ready is None and unchecked.warnings == []


def test_timeout_fails_with_conditions_and_the_hint():
    gw = gateway([cond("Accepted", "True"), NOT_ASSIGNED])
    with pytest.raises(GatewayFailure) as caught:
        wait_gateway(Client([gw]), "inference-gateway", "opendatahub", timeout=0)
    result = caught.value.result
    assert result["reason"] == "AddressNotAssigned"
    assert result["conditions"][1]["reason"] == "AddressNotAssigned"
    assert "kubectl get svc" in result["hint"]
    assert "Gateway opendatahub/inference-gateway is not usable" in caught.value.message


def test_missing_gateway_listener_and_api_problems_fail_with_the_fix():
    with pytest.raises(GatewayFailure) as caught:
        wait_gateway(Client(), "inference-gateway", "opendatahub", timeout=5)
    assert caught.value.result["reason"] == "NotFound"
    assert "run the gateway phase" in caught.value.message

    with pytest.raises(GatewayFailure, match="no listener named 'grpc'"):
        wait_gateway(Client([PROGRAMMED]), "inference-gateway", "opendatahub", listener="grpc")

    no_crd = KubeError("LIST gateways: 404 NotFound", status=404, reason="NotFound")
    with pytest.raises(GatewayFailure) as caught:
        wait_gateway(Client(list_error=no_crd), "inference-gateway", "opendatahub")
    assert "Gateway API CRDs are missing" in caught.value.message

    denied = KubeError("LIST gateways: 403 Forbidden", status=403, reason="Forbidden", hint="RBAC")
    with pytest.raises(GatewayFailure) as caught:
        wait_gateway(Client(list_error=denied), "inference-gateway", "opendatahub")
    assert caught.value.result["reason"] == "Forbidden" and "RBAC" in caught.value.message
