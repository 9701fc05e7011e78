"""llmd.gke.gateway_ip through the real ansible-playbook against the Kubernetes emulator.

One emulator for the file. Its gateway controller plays Istio: a Gateway of class istio gets an
`<name>-istio` Deployment/Service and, once its listener is served, `Programmed=True` with
address 127.0.0.1. The emulator is configured to bind the exact listener ports
(`gateway.bind_exact_ports`), so the URL the module builds from the Gateway status (address +
listener port, as on GKE) really reaches the emulated gateway; every Gateway here listens on a
free unprivileged port. Scenarios hold the address back (`gateway-no-address`), give a hostname
(`gateway-hostname`) or keep the gateway pod unready (`operator-held:<deployment>`).

The Gateway API CRDs, the namespace and the GatewayClass are set up with kubectl; the Gateways
are created by kubernetes.core.k8s in the test playbooks, then the module runs.
"""

from __future__ import annotations

import json

import pytest
import requests
import yaml
from conftest import free_port, kubectl, recap, running_emulator, tasks_runner

from llmd_emulator.testing import GATEWAY_CRDS

NS = "opendatahub"
API = "gateway.networking.k8s.io/v1"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    with running_emulator(tmp_path_factory.mktemp("gateway-ip"), time_scale=0.01) as endpoints:
        endpoints.admin_post("/config", {"gateway": {"bind_exact_ports": True}})
        setup = [
            *GATEWAY_CRDS,
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        ]
        kubectl(endpoints, "apply", "-f", "-", stdin=yaml.safe_dump_all(setup))
        gateway_class = {
            "apiVersion": API,
            "kind": "GatewayClass",
            "metadata": {"name": "istio"},
            "spec": {"controllerName": "istio.io/gateway-controller"},
        }
        kubectl(endpoints, "apply", "-f", "-", stdin=json.dumps(gateway_class))
        yield endpoints


def gateway_task(name: str, port: int, class_name: str = "istio") -> dict:
    return {
        "name": f"Gateway {name}",
        "kubernetes.core.k8s": {
            "definition": {
                "apiVersion": API,
                "kind": "Gateway",
                "metadata": {"name": name, "namespace": NS},
                "spec": {
                    "gatewayClassName": class_name,
                    "listeners": [
                        {
                            "name": "http",
                            "port": port,
                            "protocol": "HTTP",
                            "allowedRoutes": {"namespaces": {"from": "All"}},
                        }
                    ],
                },
            }
        },
    }


def ip_task(name: str, **options) -> dict:
    return {"name": f"Address of {name}", "llmd.gke.gateway_ip": dict(options, name=name)}


@pytest.fixture
def run(emulator, playbook, tmp_path):
    """run(tasks, *ansible_args) -> (Run, [registered results]): one play on localhost.

    Every task is registered and ignores errors; a last task writes the results to JSON.
    K8S_AUTH_KUBECONFIG points kubernetes.core and the module at the emulator.
    """

    env = {
        "K8S_AUTH_KUBECONFIG": emulator.kubeconfig,
        "ANSIBLE_ASYNC_DIR": str(tmp_path / "async"),
    }
    return tasks_runner(playbook, tmp_path, name="gateway_ip", env=env)


# --------------------------------------------------------------------------- tests
def test_address_port_and_a_reachable_url_also_in_check_mode(run, emulator):
    port = free_port()
    outcome, (created, found) = run(
        [gateway_task("gw-main", port), ip_task("gw-main", kubeconfig=emulator.kubeconfig)]
    )
    assert not created.get("failed") and not found.get("failed"), outcome.output
    assert found["changed"] is False
    assert found["address"] == "127.0.0.1" and found["address_type"] == "IPAddress"
    assert found["port"] == port and found["listener"] == "http" and found["scheme"] == "http"
    assert found["url"] == f"http://127.0.0.1:{port}"
    assert found["gateway_class"] == "istio"
    programmed = next(c for c in found["conditions"] if c["type"] == "Programmed")
    assert programmed["status"] == "True"
    assert found["listeners"][0]["name"] == "http"
    assert found["pod_ready"] is True and found["pods"][0]["ready"] is True
    # The URL reaches the emulated gateway (no route matches this path: its own 404).
    assert requests.get(found["url"] + "/no/such/route", timeout=10).status_code == 404

    check, [again] = run([ip_task("gw-main", timeout=30)], "--check")
    assert recap(check)["changed"] == 0 and recap(check)["ignored"] == 0, check.output
    assert again["changed"] is False and again["url"] == found["url"]


def test_the_module_waits_until_the_address_is_assigned(run, emulator, scenario):
    scenario("gateway-no-address")
    port = free_port()
    start = {
        **ip_task("gw-late", timeout=60),
        "async": 90,
        "poll": 0,
    }
    release = {
        "name": "Let the load balancer assign the address",
        "ansible.builtin.uri": {
            "url": emulator.admin_url + "/scenario",
            "method": "POST",
            "body_format": "json",
            "body": {"remove": ["gateway-no-address"]},
        },
    }
    touch = {
        "name": "Make the controller reconcile the Gateway",
        "kubernetes.core.k8s": {
            "state": "patched",
            "kind": "Gateway",
            "api_version": API,
            "name": "gw-late",
            "namespace": NS,
            "definition": {"metadata": {"annotations": {"test/reconcile": "now"}}},
        },
    }
    collect = {
        "name": "Collect the module's result",
        "ansible.builtin.async_status": {"jid": "{{ r1.ansible_job_id }}"},
        "until": "r5.finished",
        "retries": 90,
        "delay": 1,
    }
    pause = {"name": "Let the module start watching", "ansible.builtin.pause": {"seconds": 3}}
    outcome, results = run([gateway_task("gw-late", port), start, pause, release, touch, collect])
    [created, started, _pause, released, touched, result] = results
    assert not created.get("failed") and started.get("ansible_job_id"), outcome.output
    assert not released.get("failed") and not touched.get("failed"), outcome.output
    assert result.get("finished") and not result.get("failed"), outcome.output
    assert result["url"] == f"http://127.0.0.1:{port}"
    assert result["address_type"] == "IPAddress"


def test_a_hostname_address(run, scenario):
    scenario("gateway-hostname")
    port = free_port()
    outcome, (created, result) = run([gateway_task("gw-named", port), ip_task("gw-named")])
    assert not created.get("failed") and not result.get("failed"), outcome.output
    assert result["address"] == "localhost" and result["address_type"] == "Hostname"
    assert result["url"] == f"http://localhost:{port}"
    assert requests.get(result["url"] + "/no/such/route", timeout=10).status_code == 404


def test_programmed_gateway_with_an_unready_pod_warns(run, scenario):
    scenario("operator-held:gw-held-istio")
    outcome, (created, result) = run(
        [gateway_task("gw-held", free_port()), ip_task("gw-held", pod_timeout=2)]
    )
    assert not created.get("failed") and not result.get("failed"), outcome.output
    assert result["changed"] is False and result["address"] == "127.0.0.1"
    assert result["pod_ready"] is False
    assert result["pods"] and not result["pods"][0]["ready"]
    warning = "Gateway opendatahub/gw-held is Programmed but its pod(s) are not Ready"
    assert any(warning in w for w in result["warnings"])
    assert warning in outcome
    assert recap(outcome)["ignored"] == 0


def test_failures_return_the_conditions_and_a_hint_but_never_the_token(run, emulator, scenario):
    scenario("gateway-no-address")
    outcome, (absent, created, pending, orphaned, orphan) = run(
        [
            ip_task("gw-absent", timeout=60),
            gateway_task("gw-pending", free_port()),
            ip_task("gw-pending", timeout=3),
            gateway_task("gw-orphan", free_port(), class_name="no-such-class"),
            ip_task("gw-orphan", timeout=2),
        ],
        "-vvv",
    )
    assert not created.get("failed") and not orphaned.get("failed"), outcome.output
    assert recap(outcome)["ignored"] == 3
    for result in (absent, pending, orphan):
        assert result["failed"] is True and result["changed"] is False

    assert absent["reason"] == "NotFound"
    assert "Gateway opendatahub/gw-absent not found" in absent["msg"]
    assert "run the gateway phase" in absent["msg"]
    assert absent["elapsed"] < 60  # fails at once instead of waiting for the timeout

    # Timeout while the load balancer has no address: the last conditions and the LB hint.
    assert pending["reason"] == "AddressNotAssigned"
    programmed = next(c for c in pending["conditions"] if c["type"] == "Programmed")
    assert programmed["status"] == "False" and programmed["reason"] == "AddressNotAssigned"
    assert pending["addresses"] == [] and pending["gateway_class"] == "istio"
    assert f"kubectl get svc -n {NS} gw-pending-istio" in pending["hint"]
    assert "quota" in pending["hint"]
    assert "Gateway opendatahub/gw-pending is not usable after" in pending["msg"]

    # No controller for the class: no status at all.
    assert orphan["reason"] == "NoStatus" and orphan["conditions"] == []
    assert "GatewayClass no-such-class does not exist" in orphan["hint"]

    assert emulator.token not in outcome.output
