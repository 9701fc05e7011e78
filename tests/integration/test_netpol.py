"""The netpol phase (playbooks/netpol.yml) through the real ansible-playbook and the emulator, and
an evaluation of the policies it applied with network-config-analyzer (tests/netpol/nca_harness.py,
from .venv-nca: `make nca`, built by `make integration`).

The emulator stores NetworkPolicies but enforces none: what the policies allow is computed by nca
for pods labelled as KServe, Istio and GKE label them, on the objects read back from the emulator.
"""

from __future__ import annotations

import json
import sys

import pytest
import yaml
from conftest import ROOT, kubectl, recap, running_emulator

from llmd_emulator.controllers import llmisvc as emulated_kserve

sys.path.insert(0, str(ROOT / "tests" / "netpol"))
from nca_harness import (  # noqa: E402
    evaluate,
    ip_block_reaches,
    parse,
    scheduler_labels,
    workload_labels,
    world,
)

NS = "llm-d-inference-scheduling"
SERVICE = "qwen2-3b-pattern1"
NAMES = {
    "llmd-default-deny",
    f"llmd-{SERVICE}-workload",
    f"llmd-{SERVICE}-scheduler",
}
APISERVER = "34.90.12.34"  # the control plane's address, as the EndpointSlice of kubernetes says
INTERNET = "203.0.113.7"  # an address outside the cluster (Hugging Face, say)
NODE = "10.164.0.2"  # a node of the default VPC subnet
SERVICE_IP = "34.118.224.10"  # a ClusterIP of GKE's default Service range
W = world(SERVICE, NS)
OTHER_VLLM = f"{NS}/other-model-kserve-5d4c-abcde"
OTHER_EPP = f"{NS}/other-model-kserve-router-scheduler-9f8e-fghij"
DEBUG = f"{NS}/debug-shell"
KSERVE = "opendatahub/kserve-controller-manager-5f6d7-lp9qs"
OTHER_GATEWAY = "opendatahub/other-gateway-istio-6c5b4-rt7yu"
DNS = "kube-system/kube-dns-5b8f9d-vw2xq"
METRICS = "kube-system/metrics-server-v1-4c7d-zz9aa"
INTRUDER = "default/intruder"
VLLM_2 = f"{NS}/{SERVICE}-kserve-6f9c7d-q8z7m"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    with running_emulator(tmp_path_factory.mktemp("netpol"), time_scale=0.01) as endpoints:
        yield endpoints


def netpol_phase(playbook, endpoints, *args: str, **extra):
    variables = {"llmd_kubeconfig": endpoints.kubeconfig, **extra}
    return playbook(
        "playbooks/netpol.yml", "-i", "inventories/sandbox", "-e", json.dumps(variables), *args
    )


def policies(endpoints, namespace: str = NS) -> dict[str, dict]:
    """The NetworkPolicies of llmd.gke in the namespace, by name."""
    return {
        p["metadata"]["name"]: p
        for p in endpoints.objects("NetworkPolicy", namespace)
        if p["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") == "llmd.gke"
    }


def publish_apiserver(endpoints) -> None:
    """What a real cluster has: the EndpointSlice of Service default/kubernetes."""
    kubectl(
        endpoints,
        "apply",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(
            [
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}},
                {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "name": "kubernetes",
                        "namespace": "default",
                        "labels": {"kubernetes.io/service-name": "kubernetes"},
                    },
                    "addressType": "IPv4",
                    "endpoints": [{"addresses": [APISERVER]}],
                    "ports": [{"name": "https", "port": 443, "protocol": "TCP"}],
                },
            ]
        ),
    )


def assert_connections(conn, allowed=(), denied=()) -> None:
    """Every (source, destination, protocol, port) of allowed is allowed, every one of denied
    denied; a failure lists all that are wrong, with nca's output."""
    wrong = [c for c in allowed if not conn.allows(*c)]
    wrong += [("ALLOWED", *c) for c in denied if conn.allows(*c)]
    assert not wrong, f"{wrong}\n{conn.output}"


def assert_inference_path(conn) -> None:
    """The paths the inference needs are open, the neighbours stay out (both egress modes)."""
    allowed = [
        (W.gateway, W.vllm, "TCP", 8000),
        (W.gateway, VLLM_2, "TCP", 8000),
        (W.gateway, W.epp, "TCP", 9002),
        (W.gateway, W.epp, "TCP", 9003),
        (W.gateway, W.epp, "TCP", 9090),
        (W.epp, W.vllm, "TCP", 8000),
        (W.epp, VLLM_2, "TCP", 8000),
        (W.epp, DNS, "UDP", 53),
        (W.epp, DNS, "TCP", 53),
        (W.vllm, DNS, "UDP", 53),
        (W.vllm, DNS, "TCP", 53),
        (W.epp, APISERVER, "TCP", 443),
        (W.epp, APISERVER, "TCP", 6443),
        (W.vllm, INTERNET, "TCP", 443),
    ]
    denied = [
        # The guide's policies select vLLM and the EPP alike: ours keep them apart.
        (W.gateway, W.epp, "TCP", 8000),
        (W.gateway, W.vllm, "TCP", 9002),
        (W.vllm, W.epp, "TCP", 9002),
        (W.gateway, W.vllm, "UDP", 8000),
        (W.gateway, W.vllm, "TCP", 8080),
        # Nobody else reaches the model.
        (INTRUDER, W.vllm, "TCP", 8000),
        (INTRUDER, W.epp, "TCP", 9002),
        (KSERVE, W.vllm, "TCP", 8000),
        (KSERVE, W.epp, "TCP", 9002),
        (OTHER_GATEWAY, W.vllm, "TCP", 8000),
        (OTHER_GATEWAY, W.epp, "TCP", 9002),
        (DEBUG, W.vllm, "TCP", 8000),
        (DEBUG, W.epp, "TCP", 9002),
        (DNS, W.vllm, "TCP", 8000),
        # Another LLMInferenceService of the namespace is not opened by this one's policies.
        (W.gateway, OTHER_VLLM, "TCP", 8000),
        (W.gateway, OTHER_EPP, "TCP", 9002),
        (W.epp, OTHER_VLLM, "TCP", 8000),
        # The EPP talks to vLLM, DNS and the API server only.
        (W.epp, INTERNET, "TCP", 443),
        (W.epp, METRICS, "TCP", 443),
        (W.epp, W.gateway, "TCP", 15021),
        (W.epp, DNS, "TCP", 80),
        (W.epp, W.vllm, "TCP", 8001),
        (W.epp, DEBUG, "TCP", 8000),
    ]
    assert_connections(conn, allowed, denied)


def test_four_steps_then_nca_proves_the_scheduler_path_open(playbook, emulator, tmp_path):
    check = netpol_phase(playbook, emulator, "--check")
    assert check.rc == 0, check.output
    assert recap(check)["changed"] > 0, check.output
    assert (
        "Would create in the new namespace llm-d-inference-scheduling the NetworkPolicies "
        f"llmd-default-deny, llmd-{SERVICE}-workload, llmd-{SERVICE}-scheduler" in check
    )
    assert "its address is unknown" in check
    assert not [n for n in emulator.objects("Namespace") if n["metadata"]["name"] == NS]
    assert not emulator.objects("NetworkPolicy", NS)

    # No EndpointSlice of default/kubernetes: the EPP's API server rule is port-only, and says so.
    fallback = netpol_phase(playbook, emulator)
    assert fallback.rc == 0, fallback.output
    assert recap(fallback)["changed"] > 0
    assert set(policies(emulator)) == NAMES
    assert "the EPP may reach ANY address on ports 443, 6443" in fallback
    wide = evaluate(list(policies(emulator).values()), W, tmp_path / "fallback")
    assert wide.allows(W.epp, APISERVER, "TCP", 443)
    assert wide.allows(W.epp, INTERNET, "TCP", 443)
    assert not wide.allows(W.epp, INTERNET, "TCP", 80)

    publish_apiserver(emulator)
    converge = netpol_phase(playbook, emulator)
    assert converge.rc == 0, converge.output
    assert recap(converge)["changed"] > 0
    assert f"EPP -> Kubernetes API server: {APISERVER}/32 on ports 443, 6443." in converge
    applied = policies(emulator)
    assert set(applied) == NAMES
    assert applied[f"llmd-{SERVICE}-workload"]["spec"]["egress"] == [{}]
    conn = evaluate(list(applied.values()), W, tmp_path / "open")
    assert_inference_path(conn)
    # Open egress (proof of concept): vLLM reaches anything that admits it.
    assert_connections(
        conn,
        allowed=[
            (W.vllm, INTERNET, "TCP", 80),
            (W.vllm, APISERVER, "TCP", 443),
            (W.vllm, METRICS, "TCP", 4443),
        ],
    )
    # A rerun (nothing changes, no policy written) and check mode on the converged cluster:
    # test_sandbox.py's site.yml rerun and --check, over every phase on one converge.


def test_restricted_vllm_egress_and_stale_policies(playbook, emulator, tmp_path):
    publish_apiserver(emulator)
    stale = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": "llmd-renamed-model-workload",
            "namespace": NS,
            "labels": {"app.kubernetes.io/managed-by": "llmd.gke"},
        },
        "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "renamed-model"}}},
    }
    foreign = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "team-allow-monitoring", "namespace": NS},
        "spec": {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]},
    }
    kubectl(
        emulator,
        "apply",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(
            [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}, stale, foreign]
        ),
    )
    before = {n: p["spec"] for n, p in policies(emulator).items()}
    restricted = {"llmd_netpol_vllm_egress": "restricted"}

    check = netpol_phase(playbook, emulator, "--check", **restricted)
    assert check.rc == 0, check.output
    assert recap(check)["changed"] > 0, check.output
    assert {n: p["spec"] for n, p in policies(emulator).items()} == before

    converge = netpol_phase(playbook, emulator, **restricted)
    assert converge.rc == 0, converge.output
    assert recap(converge)["changed"] > 0
    applied = policies(emulator)
    assert set(applied) == NAMES  # the stale policy of llmd.gke is gone
    names = {p["metadata"]["name"] for p in emulator.objects("NetworkPolicy", NS)}
    assert "team-allow-monitoring" in names  # someone else's stays
    workload = applied[f"llmd-{SERVICE}-workload"]
    assert workload["spec"]["egress"] != [{}]
    conn = evaluate(list(applied.values()), W, tmp_path / "restricted")
    assert_inference_path(conn)
    assert_connections(
        conn,
        denied=[
            (W.vllm, INTERNET, "TCP", 80),
            (W.vllm, INTERNET, "UDP", 443),
            (W.vllm, APISERVER, "TCP", 443),
            (W.vllm, NODE, "TCP", 443),
            (W.vllm, SERVICE_IP, "TCP", 443),
            (W.vllm, METRICS, "TCP", 443),
            (W.vllm, W.gateway, "TCP", 15021),
            (W.vllm, KSERVE, "TCP", 443),
            (W.vllm, W.epp, "TCP", 443),
        ],
    )
    # nca never matches pods against ipBlocks; Calico does: the HTTPS rule must exclude every
    # address of the cluster (pods, nodes, Services, the control plane) by itself.
    assert ip_block_reaches(workload, INTERNET, "TCP", 443)
    for address in [p.ip for p in W.pods] + [NODE, SERVICE_IP, APISERVER, "172.16.0.2"]:
        assert not ip_block_reaches(workload, address, "TCP", 443), address


def test_check_mode_on_an_empty_namespace_creates_nothing(playbook, emulator):
    kubectl(emulator, "create", "namespace", "netpol-empty")
    check = netpol_phase(
        playbook,
        emulator,
        "--check",
        llmd_model_namespace="netpol-empty",
        netpol_apiserver_cidrs=["172.16.0.2/32"],  # a private control plane endpoint
    )
    assert check.rc == 0, check.output
    assert recap(check)["changed"] > 0, check.output
    assert "Would create in the new namespace" not in check  # dry-run, not predicted
    assert "EPP -> Kubernetes API server: 172.16.0.2/32 on ports 443, 6443." in check
    assert emulator.objects("NetworkPolicy", "netpol-empty") == []


def test_the_harness_catches_the_guides_selector(tmp_path):
    """A negative control: the guide's policies (vLLM selected by its name label alone) break
    gateway -> EPP and open the EPP on vLLM's port; the evaluation must see both."""
    guide = [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": NS},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-gateway-to-vllm", "namespace": NS},
            "spec": {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": SERVICE}},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "opendatahub"}
                                }
                            }
                        ],
                        "ports": [{"protocol": "TCP", "port": 8000}],
                    }
                ],
            },
        },
    ]
    # The harness labels pods as the emulator's KServe does (both follow release-v0.15).
    assert scheduler_labels(SERVICE) == emulated_kserve.scheduler_labels(SERVICE)
    assert workload_labels(SERVICE) == emulated_kserve.workload_labels(SERVICE)
    conn = evaluate(guide, W, tmp_path)
    assert_connections(
        conn,
        allowed=[(W.gateway, W.vllm, "TCP", 8000), (W.gateway, W.epp, "TCP", 8000)],
        denied=[(W.gateway, W.epp, "TCP", 9002), (W.epp, W.vllm, "TCP", 8000)],
    )


def test_the_harness_refuses_what_it_cannot_read():
    conn = parse(
        "global: cluster has 2 unique endpoints, 1 namespaces\n"
        "a/x[Pod] => a/y[Pod] : {protocols:TCP,dst_ports:80-81,443},{protocols:UDP}\n"
        "a/x[Pod] => 0.0.0.0-9.255.255.255 : All connections\n"
    )
    assert conn.allows("a/x", "a/y", "TCP", 81)
    assert not conn.allows("a/x", "a/y", "TCP", 82)
    assert conn.allows("a/x", "a/y", "UDP", 9999)
    assert conn.allows("a/x", "9.1.2.3", "SCTP", 1)
    assert not conn.allows("a/x", "10.0.0.1", "TCP", 1)
    with pytest.raises(ValueError, match="does not read"):
        parse("a/x[Pod] => a/y[Pod] : All but {protocols:TCP}\n")
