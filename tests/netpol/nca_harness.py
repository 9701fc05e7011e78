"""Evaluate NetworkPolicies with network-config-analyzer (nca) for pods labelled as KServe does.

nca computes, offline, which endpoint may open which connection to which other under a set of
NetworkPolicies (Kubernetes semantics: a pod selected by no policy of a direction is open in that
direction; policies add up). It runs from its own virtualenv (.venv-nca, built by `make nca`; it
pins PyYAML 6.0.2, which the project's kubernetes client does not accept). `LLMD_NCA` names
another nca executable.

`world()` is a cluster of pods labelled as KServe release-v0.15, Istio and GKE label them;
`evaluate()` runs nca on policies and pods and returns a `Connectivity` answering
`allows(src, dst, protocol, port)` for a pod ("namespace/name") or an IPv4 address.

What nca does not model, and how the tests cover it instead:
- Services: policies see the packet after a Service's address is translated to an endpoint (as
  Calico on GKE does), so DNS is evaluated against the kube-dns pods and the API server against
  its endpoint address, never against a ClusterIP.
- ipBlocks never match pods in nca, while Calico matches pod addresses against ipBlocks too: that
  vLLM's restricted "internet" rule excludes the cluster's ranges is checked on the addresses
  directly (`ip_block_reaches`).
"""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
NCA = Path(os.environ.get("LLMD_NCA") or ROOT / ".venv-nca" / "bin" / "nca")

# KServe release-v0.15 labels of an LLMInferenceService's pods (config/llmisvc): the vLLM
# workload and the EPP (router-scheduler) share app.kubernetes.io/name.
WORKLOAD = "llminferenceservice-workload"
SCHEDULER = "llminferenceservice-router-scheduler"


def workload_labels(service: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": service,
        "app.kubernetes.io/component": WORKLOAD,
        "app.kubernetes.io/part-of": "llminferenceservice",
        "kserve.io/component": "workload",
    }


def scheduler_labels(service: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": service,
        "app.kubernetes.io/component": SCHEDULER,
        "app.kubernetes.io/part-of": "llminferenceservice",
    }


def gateway_labels(gateway: str) -> dict[str, str]:
    """What Istio (and the gateway phase's spec.infrastructure.labels) put on a Gateway's pods."""
    return {
        "gateway.networking.k8s.io/gateway-name": gateway,
        "gateway.istio.io/managed": "istio.io-gateway-controller",
        "istio.io/gateway-name": gateway,
        "service.istio.io/canonical-name": f"{gateway}-istio",
        "service.istio.io/canonical-revision": "latest",
        "sidecar.istio.io/inject": "false",
        "serving.kserve.io/gateway": "kserve-ingress-gateway",
    }


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    labels: dict[str, str] = field(hash=False)
    ip: str

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def manifest(self) -> dict:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": self.labels},
            "spec": {"containers": [{"name": "main", "image": "example"}]},
            "status": {"podIP": self.ip, "hostIP": "10.164.0.2", "phase": "Running"},
        }


@dataclass(frozen=True)
class World:
    """The pods of one evaluation and the references the tests use."""

    pods: tuple[Pod, ...]
    vllm: str
    epp: str
    gateway: str

    def namespaces(self) -> list[str]:
        return sorted({p.namespace for p in self.pods})


def world(
    service: str,
    namespace: str,
    gateway: str = "inference-gateway",
    gateway_namespace: str = "opendatahub",
) -> World:
    """The model's vLLM and EPP pods, the gateway's pod, DNS, and neighbours that must stay out."""
    pods = [
        Pod(namespace, f"{service}-kserve-6f9c7d-x2k4p", workload_labels(service), "10.8.0.10"),
        Pod(namespace, f"{service}-kserve-6f9c7d-q8z7m", workload_labels(service), "10.8.1.11"),
        Pod(
            namespace,
            f"{service}-kserve-router-scheduler-7c8d9-kq2ld",
            scheduler_labels(service),
            "10.8.0.12",
        ),
        # Another LLMInferenceService in the same namespace, and an unlabelled pod.
        Pod(
            namespace, "other-model-kserve-5d4c-abcde", workload_labels("other-model"), "10.8.0.20"
        ),
        Pod(
            namespace,
            "other-model-kserve-router-scheduler-9f8e-fghij",
            scheduler_labels("other-model"),
            "10.8.0.21",
        ),
        Pod(namespace, "debug-shell", {"run": "debug-shell"}, "10.8.0.22"),
        Pod(gateway_namespace, f"{gateway}-istio-7d9f8-m2n3b", gateway_labels(gateway), "10.8.2.5"),
        Pod(
            gateway_namespace,
            "kserve-controller-manager-5f6d7-lp9qs",
            {"control-plane": "kserve-controller-manager", "app.kubernetes.io/name": "kserve"},
            "10.8.2.6",
        ),
        Pod(
            gateway_namespace,
            "other-gateway-istio-6c5b4-rt7yu",
            gateway_labels("other-gateway"),
            "10.8.2.7",
        ),
        Pod("kube-system", "kube-dns-5b8f9d-vw2xq", {"k8s-app": "kube-dns"}, "10.8.3.2"),
        Pod(
            "kube-system", "metrics-server-v1-4c7d-zz9aa", {"k8s-app": "metrics-server"}, "10.8.3.3"
        ),
        Pod("default", "intruder", {"app": "intruder"}, "10.8.4.4"),
    ]
    return World(
        pods=tuple(pods),
        vllm=pods[0].ref,
        epp=pods[2].ref,
        gateway=pods[6].ref,
    )


Endpoint = str | tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]
Ports = tuple[tuple[int, int], ...]
_ALL_PORTS: Ports = ((1, 65535),)


@dataclass
class Connectivity:
    """Allowed connections: {(src, dst): [(protocols, port ranges)]}, as nca printed them."""

    rules: list[tuple[Endpoint, Endpoint, frozenset[str] | None, Ports]]
    output: str

    def allows(self, src: str, dst: str, protocol: str, port: int) -> bool:
        """src/dst: "namespace/pod" or an IPv4 address."""
        for rule_src, rule_dst, protocols, ports in self.rules:
            if not (_matches(rule_src, src) and _matches(rule_dst, dst)):
                continue
            if protocols is not None and protocol.upper() not in protocols:
                continue
            if any(low <= port <= high for low, high in ports):
                return True
        return False


def _matches(endpoint: Endpoint, target: str) -> bool:
    if isinstance(endpoint, str):
        return endpoint == target
    if "/" in target:
        return False
    address = ipaddress.IPv4Address(target)
    return endpoint[0] <= address <= endpoint[1]


def _endpoint(text: str) -> Endpoint:
    text = text.strip()
    pod = re.fullmatch(r"([^/\s]+/[^\[\s]+)\[Pod\]", text)
    if pod:
        return pod.group(1)
    if "/" in text:
        network = ipaddress.IPv4Network(text)
        return (network[0], network[-1])
    low, high = (text.split("-", 1) + [text])[:2]
    return (ipaddress.IPv4Address(low), ipaddress.IPv4Address(high))


def _ports(text: str) -> Ports:
    out = []
    for part in text.split(","):
        low, high = (part.split("-", 1) + [part])[:2]
        out.append((int(low), int(high)))
    return tuple(out)


def _connections(text: str) -> list[tuple[frozenset[str] | None, Ports]]:
    text = text.strip()
    if text == "All connections":
        return [(None, _ALL_PORTS)]
    groups = re.findall(r"\{([^{}]*)\}", text)
    if not groups or ",".join("{" + g + "}" for g in groups) != text:
        raise ValueError(f"nca printed a connection set this harness does not read: {text!r}")
    out = []
    for group in groups:
        found = re.fullmatch(r"protocols:([A-Z, ]+?)(?:,dst_ports:([0-9,\-]+))?", group)
        if not found:
            raise ValueError(f"nca printed a connection set this harness does not read: {text!r}")
        protocols = frozenset(p.strip() for p in found.group(1).split(","))
        out.append((protocols, _ports(found.group(2)) if found.group(2) else _ALL_PORTS))
    return out


def parse(output: str) -> Connectivity:
    """Read nca's `-o txt_no_fw_rules` connectivity map (one `src => dst : connections` a line)."""
    rules = []
    for line in output.splitlines():
        if " => " not in line:
            continue
        pair, connections = line.split(" : ", 1)
        src, dst = pair.split(" => ", 1)
        for protocols, ports in _connections(connections):
            rules.append((_endpoint(src), _endpoint(dst), protocols, ports))
    if not rules:
        raise ValueError(f"nca printed no connectivity map:\n{output}")
    return Connectivity(rules, output)


def evaluate(policies: list[dict], the_world: World, workdir: Path) -> Connectivity:
    """Run nca on the policies (NetworkPolicy dicts) for the pods of the world."""
    if not NCA.exists():
        raise FileNotFoundError(
            f"{NCA} does not exist: build the evaluator's virtualenv with `make nca` "
            "(`make integration` and `make setup` do), or set LLMD_NCA to an nca executable."
        )
    workdir.mkdir(parents=True, exist_ok=True)
    namespaces = {
        "apiVersion": "v1",
        "kind": "NamespaceList",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
            }
            for ns in the_world.namespaces()
        ],
    }
    pods = {"apiVersion": "v1", "kind": "PodList", "items": [p.manifest() for p in the_world.pods]}
    (workdir / "namespaces.yaml").write_text(yaml.safe_dump(namespaces))
    (workdir / "pods.yaml").write_text(yaml.safe_dump(pods))
    (workdir / "policies.yaml").write_text(yaml.safe_dump_all(policies))
    proc = subprocess.run(
        [
            str(NCA),
            "--connectivity",
            str(workdir / "policies.yaml"),
            "--pod_list",
            str(workdir / "pods.yaml"),
            "--ns_list",
            str(workdir / "namespaces.yaml"),
            "--output_format",
            "txt_no_fw_rules",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"nca failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return parse(proc.stdout)


def ip_block_reaches(policy: dict, address: str, protocol: str, port: int) -> bool:
    """Whether an egress ipBlock rule of the policy admits the address (as Calico matches it,
    pod and Service addresses included): what nca does not evaluate."""
    target = ipaddress.ip_address(address)
    for rule in policy["spec"].get("egress") or []:
        ports = rule.get("ports")
        if ports and not any(
            p.get("protocol", "TCP") == protocol and p.get("port") == port for p in ports
        ):
            continue
        for peer in rule.get("to") or []:
            block = peer.get("ipBlock")
            if not block or target not in ipaddress.ip_network(block["cidr"]):
                continue
            if not any(target in ipaddress.ip_network(x) for x in block.get("except") or []):
                return True
    return False
