"""Helpers for the controllers/modelserver tests: a small REST client over endpoints.json."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

from llmd_emulator.testing import running_emulator

GROUPS = {
    "gateway.networking.k8s.io": (
        "v1",
        ["Gateway:gateways", "HTTPRoute:httproutes", "GatewayClass:gatewayclasses:Cluster"],
    ),
    "inference.networking.k8s.io": ("v1", ["InferencePool:inferencepools"]),
    "serving.kserve.io": (
        "v1alpha1",
        [
            "LLMInferenceService:llminferenceservices",
            "LLMInferenceServiceConfig:llminferenceserviceconfigs",
        ],
    ),
    "cert-manager.io": (
        "v1",
        ["Certificate:certificates", "Issuer:issuers", "ClusterIssuer:clusterissuers:Cluster"],
    ),
    "sailoperator.io": ("v1", ["Istio:istios:Cluster"]),
}
PLURALS = {
    "Pod": "pods",
    "Node": "nodes",
    "Namespace": "namespaces",
    "Service": "services",
    "Secret": "secrets",
    "Event": "events",
    "ServiceAccount": "serviceaccounts",
    "Deployment": "deployments",
    "ReplicaSet": "replicasets",
    "StatefulSet": "statefulsets",
    "Job": "jobs",
    "CustomResourceDefinition": "customresourcedefinitions",
}
for _group, (_version, _kinds) in GROUPS.items():
    for _spec in _kinds:
        _kind, _plural, *_ = _spec.split(":")
        PLURALS[_kind] = _plural
CLUSTER_KINDS = {
    "Node",
    "Namespace",
    "CustomResourceDefinition",
    "GatewayClass",
    "ClusterIssuer",
    "Istio",
}


def crd(group: str, version: str, kind: str, plural: str, scope: str = "Namespaced") -> dict:
    """A permissive CRD with a status subresource."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {
                "kind": kind,
                "plural": plural,
                "singular": kind.lower(),
                "listKind": f"{kind}List",
            },
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def stack_crds(groups: tuple[str, ...] = tuple(GROUPS)) -> list[dict]:
    out = []
    for group in groups:
        version, kinds = GROUPS[group]
        for spec in kinds:
            kind, plural, *scope = spec.split(":")
            out.append(crd(group, version, kind, plural, scope[0] if scope else "Namespaced"))
    return out


class Kube:
    """Kubernetes REST calls and admin calls against a running emulator."""

    def __init__(self, endpoints: dict[str, Any]) -> None:
        self.base = endpoints["k8s_url"].rstrip("/")
        self.admin = endpoints["admin_url"].rstrip("/")
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {endpoints['token']}"
        # Session.verify loses to REQUESTS_CA_BUNDLE; trust_env=False keeps our CA in charge.
        self.http.trust_env = False
        self.http.verify = endpoints["ca_file"]

    def _path(self, api_version: str, kind: str, namespace: str | None, name: str = "") -> str:
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        ns = "" if kind in CLUSTER_KINDS or not namespace else f"/namespaces/{namespace}"
        return f"{self.base}{prefix}{ns}/{PLURALS[kind]}" + (f"/{name}" if name else "")

    def create(self, obj: dict) -> dict:
        meta = obj["metadata"]
        resp = self.http.post(
            self._path(obj["apiVersion"], obj["kind"], meta.get("namespace")), json=obj
        )
        assert resp.status_code == 201, resp.text
        return resp.json()

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None):
        resp = self.http.get(self._path(api_version, kind, namespace, name))
        return resp.json() if resp.status_code == 200 else None

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, selector: str = ""
    ) -> list[dict]:
        params = {"labelSelector": selector} if selector else {}
        resp = self.http.get(self._path(api_version, kind, namespace), params=params)
        assert resp.status_code == 200, resp.text
        return resp.json()["items"]

    def patch(self, api_version: str, kind: str, name: str, namespace: str | None, body: dict):
        resp = self.http.patch(
            self._path(api_version, kind, namespace, name),
            data=json.dumps(body),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert resp.status_code == 200, resp.text
        return resp.json()

    def patch_status(
        self, api_version: str, kind: str, name: str, namespace: str | None, status: dict
    ) -> dict:
        resp = self.http.patch(
            self._path(api_version, kind, namespace, name) + "/status",
            data=json.dumps({"status": status}),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert resp.status_code == 200, resp.text
        return resp.json()

    def create_node(self, obj: dict) -> None:
        """Create a Node, then set its status (the API ignores status on create)."""
        self.create(obj)
        self.patch_status("v1", "Node", obj["metadata"]["name"], None, obj["status"])

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None):
        self.http.delete(self._path(api_version, kind, namespace, name))

    def logs(self, namespace: str, pod: str, container: str = "main") -> list[str]:
        resp = self.http.get(
            self._path("v1", "Pod", namespace, pod) + "/log", params={"container": container}
        )
        assert resp.status_code == 200, resp.text
        return resp.text.splitlines()

    def events(self, namespace: str, name: str) -> list[dict]:
        return [
            e
            for e in self.list("v1", "Event", namespace)
            if e["involvedObject"].get("name") == name
        ]

    def namespace(self, name: str) -> None:
        self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def install_crds(self, groups: tuple[str, ...] = tuple(GROUPS)) -> None:
        for obj in stack_crds(groups):
            if (
                self.get(
                    "apiextensions.k8s.io/v1", "CustomResourceDefinition", obj["metadata"]["name"]
                )
                is None
            ):
                self.create(obj)

    def admin_post(self, path: str, body: Any) -> dict:
        resp = requests.post(self.admin + path, json=body, timeout=10)
        assert resp.status_code < 300, resp.text
        return resp.json()

    def admin_get(self, path: str) -> Any:
        resp = requests.get(self.admin + path, timeout=10)
        assert resp.status_code == 200, resp.text
        return resp.json()


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll check() until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def condition(obj: dict | None, type_: str) -> dict:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or ():
        if cond["type"] == type_:
            return cond
    return {}


def node(name: str, tpu: bool = False) -> dict:
    """A Node like GKE's: TPU nodes carry the google.com/tpu taint, labels and capacity."""
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/arch": "amd64"}
    spec: dict[str, Any] = {}
    allocatable = {"cpu": "3920m", "memory": "12Gi", "pods": "110"}
    if tpu:
        labels |= {
            "cloud.google.com/gke-tpu-accelerator": "tpu-v6e-slice",
            "cloud.google.com/gke-tpu-topology": "2x2",
        }
        spec["taints"] = [{"key": "google.com/tpu", "value": "present", "effect": "NoSchedule"}]
        allocatable["google.com/tpu"] = "4"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
        "status": {
            "allocatable": allocatable,
            "capacity": dict(allocatable),
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


TPU_TEMPLATE = {
    "nodeSelector": {
        "cloud.google.com/gke-tpu-accelerator": "tpu-v6e-slice",
        "cloud.google.com/gke-tpu-topology": "2x2",
    },
    "tolerations": [{"key": "google.com/tpu", "operator": "Exists", "effect": "NoSchedule"}],
}


@contextlib.contextmanager
def emulator(state_dir: Path, time_scale: float = 0.002) -> Iterator[Kube]:
    """A background emulator (llmd_emulator.testing.running_emulator) with a Kube client."""
    with running_emulator(state_dir, time_scale=time_scale) as endpoints:
        yield Kube(
            {
                "k8s_url": endpoints.k8s_url,
                "admin_url": endpoints.admin_url,
                "token": endpoints.token,
                "ca_file": endpoints.ca_file,
            }
        )
