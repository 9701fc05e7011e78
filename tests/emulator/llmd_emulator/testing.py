"""Helpers for tests: run a real background emulator and talk to its admin API."""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Endpoints:
    """What a running emulator serves (endpoints.json) plus admin helpers."""

    k8s_url: str
    gke_url: str | None
    admin_url: str
    kubeconfig: str
    token: str
    ca_file: str
    state_dir: Path
    log_file: str
    pid: int

    def admin_get(self, path: str) -> Any:
        with urllib.request.urlopen(self.admin_url + path, timeout=30) as response:
            return json.load(response)

    def admin_post(self, path: str, json_body: Any) -> Any:
        request = urllib.request.Request(
            self.admin_url + path,
            data=json.dumps(json_body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def state(self) -> dict[str, Any]:
        """The admin /state dump (every stored object under "objects")."""
        return self.admin_get("/state")

    def objects(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Stored objects of a kind (optionally in one namespace), from /state."""
        return [
            o
            for o in self.state()["objects"]
            if o["kind"] == kind
            and (namespace is None or o["metadata"].get("namespace") == namespace)
        ]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m llmd_emulator ARGS` with this package importable; output captured."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "llmd_emulator", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _options(options: dict[str, Any]) -> list[str]:
    args: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if key in ("scenario", "scenarios"):
            for name in [value] if isinstance(value, str) else value:
                args += ["--scenario", name]
        elif value is not None:
            args += [flag, str(value)]
    return args


def start_emulator(state_dir: Path | str, **options: Any) -> Endpoints:
    """`python -m llmd_emulator start` in state_dir (detached: it outlives the caller until
    stop_emulator) and its endpoints. options as for running_emulator."""
    state_dir = Path(state_dir)
    started = cli("start", "--state-dir", str(state_dir), *_options(options))
    if started.returncode != 0:
        log = state_dir / "emulator.log"
        tail = log.read_text()[-4000:] if log.exists() else ""
        raise RuntimeError(f"emulator did not start: {started.stderr}\n{tail}")
    return endpoints_of(state_dir)


def endpoints_of(state_dir: Path | str) -> Endpoints:
    """The Endpoints of the emulator started in state_dir (from its endpoints.json)."""
    state_dir = Path(state_dir)
    data = json.loads((state_dir / "endpoints.json").read_text())
    return Endpoints(
        k8s_url=data["k8s_url"],
        gke_url=data.get("gke_url"),
        admin_url=data["admin_url"],
        kubeconfig=data["kubeconfig"],
        token=data["token"],
        ca_file=data["ca_file"],
        state_dir=state_dir,
        log_file=data["log_file"],
        pid=data["pid"],
    )


def stop_emulator(state_dir: Path | str) -> None:
    """`python -m llmd_emulator stop`: the emulator of state_dir is gone (none running: no-op)."""
    stopped = cli("stop", "--state-dir", str(state_dir))
    if stopped.returncode != 0:
        raise RuntimeError(f"emulator did not stop cleanly: {stopped.stderr}")


@contextlib.contextmanager
def running_emulator(state_dir: Path | str, **options: Any) -> Iterator[Endpoints]:
    """Start `python -m llmd_emulator start` in state_dir, yield its endpoints, stop it.

    options are CLI options: time_scale=0.01, scenario=[...], config="file", k8s_port=0...
    """
    endpoints = start_emulator(state_dir, **options)
    try:
        yield endpoints
    finally:
        stop_emulator(state_dir)


# ----------------------------------------------------------------- objects tests create
# Shared by the playbook tests and the benchmarks: permissive stand-ins of the CRDs the serving
# path needs (the emulated controllers act on them), and the objects a test serves a model with.
Obj = dict[str, Any]


def permissive_crd(
    group: str, version: str, kind: str, plural: str, scope: str = "Namespaced"
) -> Obj:
    """A CRD that accepts any object of its kind (status subresource on)."""
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


GATEWAY_CRDS = [
    permissive_crd("gateway.networking.k8s.io", "v1", "Gateway", "gateways"),
    permissive_crd("gateway.networking.k8s.io", "v1", "GatewayClass", "gatewayclasses", "Cluster"),
]
SERVING_CRDS = [
    *GATEWAY_CRDS,
    permissive_crd("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes"),
    permissive_crd("inference.networking.k8s.io", "v1", "InferencePool", "inferencepools"),
    permissive_crd("inference.networking.x-k8s.io", "v1alpha2", "InferencePool", "inferencepools"),
    permissive_crd("serving.kserve.io", "v1alpha1", "LLMInferenceService", "llminferenceservices"),
    permissive_crd(
        "serving.kserve.io", "v1alpha1", "LLMInferenceServiceConfig", "llminferenceserviceconfigs"
    ),
]
MODEL = "Qwen/Qwen2.5-3B-Instruct"


def namespace(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def gateway(name: str = "inference-gateway", ns: str = "opendatahub", port: int = 80) -> Obj:
    """A Gateway of class istio with one HTTP listener open to routes of every namespace."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "gatewayClassName": "istio",
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


@functools.lru_cache(maxsize=4)
def _overlay(kserve_root: str) -> tuple[Obj, ...]:
    """`kubectl kustomize` of KServe's odh-xks overlay (the real pinned tree)."""
    built = subprocess.run(
        ["kubectl", "kustomize", str(Path(kserve_root) / "config/overlays/odh-xks")],
        capture_output=True,
        text=True,
        check=True,
    )
    return tuple(d for d in yaml.safe_load_all(built.stdout) if d)


@functools.lru_cache(maxsize=1)
def kserve_root() -> Path:
    """The KServe source tree at the commit the kserve role pins (tests/tools/upstream.py:
    LLMD_UPSTREAM_DIR or ../shared/upstream, else fetched as the role fetches it)."""
    tools = str(PACKAGE_ROOT.parent / "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    import upstream  # noqa: PLC0415 - tests/tools is not a package

    return Path(upstream.paths()["kserve"])


def kserve_presets(kserve_root: Path | str) -> list[Obj]:
    """What KServe's controller reads besides the service, from the real overlay: the
    ConfigMap inferenceservice-config and the LLMInferenceServiceConfigs (namespace
    opendatahub), plus the namespace itself."""
    wanted = [
        d
        for d in _overlay(str(kserve_root))
        if d["kind"] == "LLMInferenceServiceConfig"
        or (d["kind"] == "ConfigMap" and d["metadata"]["name"] == "inferenceservice-config")
    ]
    return [namespace("opendatahub"), *copy.deepcopy(wanted)]


def llm_inference_service(
    name: str,
    ns: str,
    *,
    tpu: bool = False,
    replicas: int = 1,
    base_refs: list | None = None,
    served_name: str = MODEL,
) -> Obj:
    """An LLMInferenceService served through the gateway opendatahub/inference-gateway, shaped as
    the model role renders it: no args (KServe's template runs vllm serve), the extra vLLM
    arguments in VLLM_ADDITIONAL_ARGS, the served name in spec.model.name."""
    container: Obj = {
        "name": "main",
        "image": "registry.redhat.io/rhaiis/vllm-tpu-rhel9:3.2.5",
        "env": [{"name": "VLLM_ADDITIONAL_ARGS", "value": "--dtype=bfloat16 --max-model-len=2048"}],
        "startupProbe": {
            "httpGet": {"path": "/health", "port": 8000, "scheme": "HTTPS"},
            "periodSeconds": 10,
            "failureThreshold": 180,
        },
    }
    template: Obj = {"containers": [container]}
    if tpu:
        container["resources"] = {"limits": {"google.com/tpu": "4"}}
        template["nodeSelector"] = {
            "cloud.google.com/gke-tpu-accelerator": "tpu-v6e-slice",
            "cloud.google.com/gke-tpu-topology": "2x2",
        }
        template["tolerations"] = [
            {"key": "google.com/tpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
    spec: Obj = {
        "model": {"uri": f"hf://{MODEL}", "name": served_name},
        "replicas": replicas,
        "template": template,
        "router": {
            "gateway": {"refs": [{"name": "inference-gateway", "namespace": "opendatahub"}]},
            "route": {},
            "scheduler": {},
        },
    }
    if base_refs:
        spec["baseRefs"] = base_refs
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "LLMInferenceService",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }
