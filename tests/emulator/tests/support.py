"""Helpers shared by the emulator tests (fixtures built on them live in conftest.py).

- tools: an environment for kubectl/helm/ansible-playbook, and running them;
- Kubernetes: CRD manifests, an HTTP session for the API, the `Kube` REST client, Nodes, polling;
- GKE: the emulator configuration of the GKE tests, the `GkeClient` and cluster request bodies.

Emulators are started with llmd_emulator.testing.running_emulator (`python -m llmd_emulator
start`), through `running_kube` and `running_gke` here or the `emulator` fixture in conftest.py.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from google.auth.transport.requests import AuthorizedSession
from google.oauth2.credentials import Credentials

from llmd_emulator.testing import (
    Endpoints,
    kserve_presets,
    kserve_root,
    permissive_crd,
    running_emulator,
)

# ---------------------------------------------------------------------------------------- tools


def tools_bin() -> str:
    """Directory holding kubectl, helm and ansible-playbook for the tests."""
    return os.environ.get("LLMD_TOOLS_BIN") or str(Path(sys.executable).parent)


def tool_env(tmp_path: Path, kubeconfig: str) -> dict[str, str]:
    """Environment for kubectl/helm/ansible-playbook: private temp, cache and home dirs."""
    home = tmp_path / "home"
    for sub in ("tmp", "ansible-local", "ansible-remote", "ansible-home", "kube-cache"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        TMPDIR=str(home / "tmp"),
        KUBECONFIG=kubeconfig,
        KUBECACHEDIR=str(home / "kube-cache"),
        K8S_AUTH_KUBECONFIG=kubeconfig,
        ANSIBLE_HOME=str(home / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(home / "ansible-local"),
        ANSIBLE_REMOTE_TEMP=str(home / "ansible-remote"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PIPELINING="1",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        HELM_CACHE_HOME=str(home / "helm-cache"),
        HELM_CONFIG_HOME=str(home / "helm-config"),
        HELM_DATA_HOME=str(home / "helm-data"),
        PATH=os.pathsep.join((tools_bin(), env.get("PATH", ""))),
    )
    return env


def run_playbook(
    text: str, env: dict[str, str]
) -> tuple[int, str, dict[str, list[dict[str, Any]]]]:
    """Run a playbook (YAML text) on localhost; returns (rc, stdout, results by task name).

    Needs the ansible.posix.json callback in env (ansible_env sets it). Each task name maps to the
    list of its host results (one per loop item for loops).
    """
    path = Path(env["TMPDIR"]) / "playbook.yml"
    path.write_text(text)
    proc = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        return proc.returncode, proc.stdout + proc.stderr, results
    for play in report.get("plays", []):
        for task in play.get("tasks", []):
            results.setdefault(task["task"]["name"], []).extend(task["hosts"].values())
    return proc.returncode, proc.stdout + proc.stderr, results


def run_tool(*args: str, env: dict[str, str], stdin: str | None = None, check: bool = True):
    """Run kubectl/helm; with check, a non-zero exit fails the test with its output."""
    proc = subprocess.run(
        list(args), env=env, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


# ----------------------------------------------------------------------------------- Kubernetes


def crd(
    group: str,
    version: str,
    kind: str,
    plural: str,
    scope: str = "Namespaced",
    *,
    schema: dict | None = None,
    list_kind: bool = True,
) -> dict:
    """A CRD with a status subresource; permissive unless an openAPIV3Schema is given.

    list_kind=False leaves names.listKind for the API server to default.
    """
    obj = permissive_crd(group, version, kind, plural, scope)
    if not list_kind:
        del obj["spec"]["names"]["listKind"]
    if schema is not None:
        obj["spec"]["versions"][0]["schema"] = {"openAPIV3Schema": copy.deepcopy(schema)}
    return obj


# The llm-d stack's CRDs: group -> (version, ["Kind:plural[:Cluster]"]).
GROUPS = {
    "gateway.networking.k8s.io": (
        "v1",
        ["Gateway:gateways", "HTTPRoute:httproutes", "GatewayClass:gatewayclasses:Cluster"],
    ),
    "inference.networking.k8s.io": ("v1", ["InferencePool:inferencepools"]),
    "inference.networking.x-k8s.io": ("v1alpha2", ["InferencePool:inferencepools"]),
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
    "ConfigMap": "configmaps",
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
        _kind, _plural, *_scope = _spec.split(":")
        PLURALS[_kind] = _plural
CLUSTER_KINDS = {
    "Node",
    "Namespace",
    "CustomResourceDefinition",
    "GatewayClass",
    "ClusterIssuer",
    "Istio",
}


def stack_crds(groups: tuple[str, ...] = tuple(GROUPS)) -> list[dict]:
    out = []
    for group in groups:
        version, kinds = GROUPS[group]
        for spec in kinds:
            kind, plural, *scope = spec.split(":")
            out.append(crd(group, version, kind, plural, scope[0] if scope else "Namespaced"))
    return out


def k8s_session(endpoints: Endpoints) -> requests.Session:
    """A requests Session for the emulator's Kubernetes API: its bearer token and its CA."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {endpoints.token}"
    # Session.verify loses to REQUESTS_CA_BUNDLE; trust_env=False keeps our CA in charge.
    session.trust_env = False
    session.verify = endpoints.ca_file
    return session


class Kube:
    """Kubernetes REST calls and admin calls against a running emulator."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.base = endpoints.k8s_url.rstrip("/")
        self.admin = endpoints.admin_url.rstrip("/")
        self.http = k8s_session(endpoints)

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

    def install_kserve(self) -> None:
        """The stack's CRDs and what KServe's controller reads from the real overlay
        (inferenceservice-config, the LLMInferenceServiceConfigs, namespace opendatahub)."""
        self.install_crds()
        for obj in kserve_presets(kserve_root()):
            if (
                self.get(
                    obj["apiVersion"],
                    obj["kind"],
                    obj["metadata"]["name"],
                    obj["metadata"].get("namespace"),
                )
                is None
            ):
                self.create(obj)

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


@contextlib.contextmanager
def running_kube(state_dir: Path, time_scale: float = 0.002) -> Iterator[Kube]:
    """A background emulator (running_emulator) with a Kube client for it."""
    with running_emulator(state_dir, time_scale=time_scale) as endpoints:
        yield Kube(endpoints)


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

# ------------------------------------------------------------------------------------------ GKE

POOL_LABEL = "cloud.google.com/gke-nodepool"
# Emulated seconds last 2 ms: creating a cluster (300 s) takes 0.6 s. Idle Nodes stay 10 s unless
# a test lowers AUTOSCALE_DOWN through the admin API.
GKE_TIME_SCALE = 0.002
GKE_CONFIG = {
    "gke": {
        "durations": {"AUTOSCALE_DOWN": 5000},
        "region_quotas": {"europe-west4": {"CPUS": 96}},
        "quotas": {
            "compute.googleapis.com": {
                "TPUS-PER-TPU-FAMILY-per-project-region": {
                    "values": [
                        {"dimensions": {"region": "europe-west4", "tpu_family": "CT6E"}, "value": 8}
                    ]
                }
            }
        },
    },
    "faults": [
        {"method": "GET", "path": "/services/tpu.googleapis.com/quotaInfos$", "status": 403}
    ],
}


class GkeClient:
    """GKE REST calls with google-auth (bearer token), plus Node reads from the Kubernetes API."""

    def __init__(
        self, endpoints: Endpoints, project: str = "proj", location: str = "europe-west4-a"
    ):
        self.endpoints = endpoints
        self.url = endpoints.gke_url
        self.prefix = f"/v1/projects/{project}/locations/{location}"
        self.session = AuthorizedSession(Credentials(token="test-token"))
        self.k8s = k8s_session(endpoints)

    def call(
        self, method: str, path: str, body: Any = None, *, absolute: bool = False, auth: bool = True
    ) -> requests.Response:
        """A request to prefix + path (or to path when absolute); auth=False sends no token."""
        url = self.url + (path if absolute else self.prefix + path)
        sender = self.session.request if auth else requests.request
        return sender(method, url, json=body, timeout=10)

    def _ok(self, method: str, path: str, body: Any = None) -> dict:
        response = self.call(method, path, body)
        assert response.status_code == 200, response.text
        return response.json()

    def get(self, path: str) -> dict:
        return self._ok("GET", path)

    def post(self, path: str, body: Any) -> dict:
        return self._ok("POST", path, body)

    def delete(self, path: str) -> dict:
        return self._ok("DELETE", path)

    def wait(self, op: dict, timeout: float = 10) -> dict:
        """Poll the Operation's selfLink until DONE."""
        deadline = time.monotonic() + timeout
        while op["status"] != "DONE":
            assert time.monotonic() < deadline, f"operation still {op['status']}: {op}"
            time.sleep(0.02)
            response = self.session.get(op["selfLink"], timeout=10)
            assert response.status_code == 200, response.text
            op = response.json()
        return op

    def nodes(self, pool: str | None = None, prefix: str = "") -> list[dict]:
        """Nodes from the Kubernetes API, by pool label and name prefix, sorted by name."""
        params = {"labelSelector": f"{POOL_LABEL}={pool}"} if pool else {}
        response = self.k8s.get(f"{self.endpoints.k8s_url}/api/v1/nodes", params=params, timeout=10)
        assert response.status_code == 200, response.text
        return sorted(
            (n for n in response.json()["items"] if n["metadata"]["name"].startswith(prefix)),
            key=lambda n: n["metadata"]["name"],
        )

    def admin(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(method, self.endpoints.admin_url + path, json=body, timeout=10)


@contextlib.contextmanager
def running_gke(state: Path) -> Iterator[GkeClient]:
    """A background emulator with GKE_CONFIG (running_emulator) and a GkeClient for it."""
    config = state / "config.json"
    config.write_text(json.dumps(GKE_CONFIG))
    with running_emulator(state, time_scale=GKE_TIME_SCALE, config=config) as endpoints:
        yield GkeClient(endpoints)


def cluster_body(name: str, **extra: Any) -> dict:
    """The cluster the collection creates: default pool n1-standard-4 x2 autoscaling 2..4."""
    cluster = {
        "name": name,
        "initialClusterVersion": "1.34",
        "releaseChannel": {"channel": "REGULAR"},
        "ipAllocationPolicy": {"useIpAliases": True},
        "networkPolicy": {"enabled": True, "provider": "CALICO"},
        "workloadIdentityConfig": {"workloadPool": "proj.svc.id.goog"},
        "nodePools": [
            {
                "name": "default-pool",
                "initialNodeCount": 2,
                "config": {
                    "machineType": "n1-standard-4",
                    "shieldedInstanceConfig": {
                        "enableSecureBoot": True,
                        "enableIntegrityMonitoring": True,
                    },
                },
                "autoscaling": {"enabled": True, "minNodeCount": 2, "maxNodeCount": 4},
            }
        ],
    }
    cluster.update(extra)
    return {"cluster": cluster}
