"""The gateway phase (playbooks/gateway.yml) through the real ansible-playbook and the emulator.

What the earlier phases leave behind is set up directly with kubectl: Gateway API CRDs (small
permissive ones), GatewayClass istio (the operators phase's Istio creates it), namespaces
opendatahub and cert-manager, and the CA Secret cert-manager/opendatahub-ca (the kserve phase's
cert-manager issuer creates it). The emulator's gateway controller plays Istio: a Gateway of class
istio gets ServiceAccount/Deployment/Service `<name>-istio` and, once its listener is served, an
address. It binds the exact listener port (`gateway.bind_exact_ports`), so the URL the phase
publishes is reachable; every test uses a free unprivileged port.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
import requests
import yaml
from conftest import free_port, kubectl, recap, running_emulator

from llmd_emulator.testing import GATEWAY_CRDS

NS = "opendatahub"
GATEWAY = "inference-gateway"
GW_API = "gateway.networking.k8s.io/v1"
CA_PEM = "-----BEGIN CERTIFICATE-----\nTEST-CA-FOR-THE-GATEWAY-PHASE\n-----END CERTIFICATE-----\n"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    with running_emulator(tmp_path_factory.mktemp("gateway-phase"), time_scale=0.01) as endpoints:
        endpoints.admin_post("/config", {"gateway": {"bind_exact_ports": True}})
        setup = [
            *GATEWAY_CRDS,
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cert-manager"}},
        ]
        kubectl(endpoints, "apply", "-f", "-", stdin=yaml.safe_dump_all(setup))
        prerequisites = [
            {
                "apiVersion": GW_API,
                "kind": "GatewayClass",
                "metadata": {"name": "istio"},
                "spec": {"controllerName": "istio.io/gateway-controller"},
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "opendatahub-ca", "namespace": "cert-manager"},
                "type": "kubernetes.io/tls",
                "data": {
                    "ca.crt": b64(CA_PEM),
                    "tls.crt": b64(CA_PEM),
                    "tls.key": b64("CA-PRIVATE-KEY"),
                },
            },
        ]
        kubectl(endpoints, "apply", "-f", "-", stdin=yaml.safe_dump_all(prerequisites))
        yield endpoints


PORT = free_port()


def auth(user: str, password: str) -> dict:
    return {"auths": {"registry.redhat.io": {"auth": b64(f"{user}:{password}")}}}


def gateway_phase(playbook, endpoints, *args: str, **extra):
    variables = {"llmd_kubeconfig": endpoints.kubeconfig, "llmd_gateway_port": PORT, **extra}
    return playbook(
        "playbooks/gateway.yml", "-i", "inventories/sandbox", "-e", json.dumps(variables), *args
    )


def get(endpoints, kind: str, name: str, namespace: str = NS) -> dict | None:
    found = [o for o in endpoints.objects(kind, namespace) if o["metadata"]["name"] == name]
    return found[0] if found else None


def gateway_pods(endpoints) -> list[dict]:
    return [
        p
        for p in endpoints.objects("Pod", NS)
        if p["metadata"].get("labels", {}).get("gateway.networking.k8s.io/gateway-name") == GATEWAY
    ]


def settled_pod_uids(endpoints) -> set[str]:
    """The uids of the gateway's pods once the rollout has settled (one pod, Ready)."""
    deadline = time.monotonic() + 60
    while True:
        pods = [p for p in gateway_pods(endpoints) if not p["metadata"].get("deletionTimestamp")]
        ready = [
            p
            for p in pods
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p.get("status", {}).get("conditions") or ()
            )
        ]
        if len(pods) == 1 and len(ready) == 1:
            return {p["metadata"]["uid"] for p in pods}
        assert time.monotonic() < deadline, f"gateway pods did not settle: {pods}"
        time.sleep(0.5)


def replica_sets(endpoints) -> set[str]:
    return {
        rs["metadata"]["name"]
        for rs in endpoints.objects("ReplicaSet", NS)
        if rs["metadata"]["name"].startswith(f"{GATEWAY}-istio-")
    }


def test_four_step_idempotence_and_the_published_url(playbook, emulator):
    check = gateway_phase(playbook, emulator, "--check")
    assert check.rc == 0, check.output
    assert recap(check)["changed"] > 0, check.output
    assert (
        "Would add redhat-pull-secret to ServiceAccount opendatahub/inference-gateway-istio"
        in check
    )
    assert "it does not exist yet (check mode predicts its creation)" in check
    assert get(emulator, "Gateway", GATEWAY) is None
    assert get(emulator, "ConfigMap", "odh-ca-bundle") is None
    assert get(emulator, "ConfigMap", "inference-gateway-config") is None
    assert get(emulator, "Secret", "redhat-pull-secret") is None

    converge = gateway_phase(playbook, emulator)
    assert converge.rc == 0, converge.output
    assert recap(converge)["changed"] > 0
    assert get(emulator, "ConfigMap", "odh-ca-bundle")["data"] == {"ca.crt": CA_PEM}
    overlay = yaml.safe_load(
        get(emulator, "ConfigMap", "inference-gateway-config")["data"]["deployment"]
    )
    pod_spec = overlay["spec"]["template"]["spec"]
    assert pod_spec["volumes"] == [
        {"name": "odh-ca-bundle", "configMap": {"name": "odh-ca-bundle"}}
    ]
    assert pod_spec["containers"][0]["name"] == "istio-proxy"
    assert (
        pod_spec["containers"][0]["volumeMounts"][0]["mountPath"] == "/var/run/secrets/opendatahub"
    )
    gateway = get(emulator, "Gateway", GATEWAY)
    assert gateway["metadata"]["labels"]["serving.kserve.io/gateway"] == "kserve-ingress-gateway"
    assert gateway["spec"]["gatewayClassName"] == "istio"
    assert gateway["spec"]["listeners"] == [
        {
            "name": "http",
            "port": PORT,
            "protocol": "HTTP",
            "allowedRoutes": {"namespaces": {"from": "All"}},
        }
    ]
    assert gateway["spec"]["infrastructure"] == {
        "labels": {"serving.kserve.io/gateway": "kserve-ingress-gateway"},
        "parametersRef": {"group": "", "kind": "ConfigMap", "name": "inference-gateway-config"},
    }
    account = get(emulator, "ServiceAccount", f"{GATEWAY}-istio")
    assert account["imagePullSecrets"] == [{"name": "redhat-pull-secret"}]
    template = get(emulator, "Deployment", f"{GATEWAY}-istio")["spec"]["template"]
    assert "llmd.gke/pull-secret-version" in template["metadata"]["annotations"]
    url = f"http://127.0.0.1:{PORT}"
    assert f"Gateway opendatahub/inference-gateway: {url}" in converge
    # The published URL reaches the emulated gateway (no route matches this path: its own 404).
    assert requests.get(url + "/no/such/route", timeout=10).status_code == 404
    # A rerun (nothing changes: no object written, so no pod restarted; the URL published again)
    # and check mode on the converged cluster: test_sandbox.py's site.yml rerun and --check, over
    # every phase on one converge.


def test_a_new_pull_secret_restarts_the_gateway_once_and_is_never_printed(playbook, emulator):
    first = gateway_phase(playbook, emulator)
    assert first.rc == 0, first.output
    pods = settled_pod_uids(emulator)
    sets = replica_sets(emulator)

    password = "gw-phase-secret-7f3a9c"
    changed = gateway_phase(playbook, emulator, "-vvv", llmd_registry_auth=auth("robot", password))
    assert changed.rc == 0, changed.output
    assert recap(changed)["changed"] > 0
    secret = get(emulator, "Secret", "redhat-pull-secret")
    for shown in (
        password,
        b64(f"robot:{password}"),
        b64("CA-PRIVATE-KEY"),
        secret["data"][".dockerconfigjson"],
        "CA-PRIVATE-KEY",
    ):
        assert shown not in changed.output
    assert len(replica_sets(emulator) - sets) == 1  # exactly one rollout
    restarted = settled_pod_uids(emulator)
    assert restarted.isdisjoint(pods)

    again = gateway_phase(playbook, emulator, llmd_registry_auth=auth("robot", password))
    assert again.rc == 0, again.output
    assert recap(again)["changed"] == 0, again.output
    assert settled_pod_uids(emulator) == restarted


def test_a_missing_ca_secret_names_the_kserve_phase(playbook, emulator):
    missing = {"gateway_ca_secret_name": "no-such-ca"}
    failed = gateway_phase(playbook, emulator, **missing)
    assert failed.rc != 0
    assert (
        "Secret cert-manager/no-such-ca (the CA of the KServe certificates) does not exist"
        in failed
    )
    assert "Run the kserve phase first" in failed

    check = gateway_phase(playbook, emulator, "--check", **missing)
    assert check.rc == 0, check.output
    assert "Cannot predict the gateway phase yet" in check
