"""KServe LLMInferenceService controller (serving.kserve.io/v1alpha1, as release-v0.15 behaves).

For an LLMInferenceService n in namespace ns it owns: Deployment n-kserve (the vLLM workload,
container "main"), Service n-kserve-workload-svc, Secret n-kserve-self-signed-certs, and when
spec.router asks for them: HTTPRoute n-kserve-route, InferencePool n-inference-pool, EPP
Deployment n-kserve-router-scheduler, Service n-epp-service, ServiceAccount n-epp-sa.
Kinds whose CRDs are missing are skipped and reported in the conditions.

Conditions are knative-style (sorted by type; sub-conditions have severity Info). Deviation: when
a workload pod is failing (CrashLoopBackOff, ImagePullBackOff, Unschedulable, OOMKilled...),
MainWorkloadReady carries that pod's reason and message rather than the Deployment's.
Config `emu.config["llmisvc"]`: kserve_namespace (default "opendatahub"), default_gateway
({"name", "namespace"}) used when spec.router.route is set without gateway refs.
"""

from __future__ import annotations

import base64
import copy
from typing import TYPE_CHECKING, Any

from .base import (
    Controller,
    Key,
    Obj,
    condition,
    controller_of,
    key_of,
    owner_ref,
    set_condition,
)

if TYPE_CHECKING:
    from ..core import Emulator
    from .gateway import Gateways

GROUP = "serving.kserve.io"
API = f"{GROUP}/v1alpha1"
ROUTE_API = "gateway.networking.k8s.io/v1"
POOL_API = "inference.networking.k8s.io/v1"
EPP_IMAGE = "ghcr.io/llm-d/llm-d-inference-scheduler:v0.2.1"
WORKLOAD_PORT = 8000
_FAILING_WAIT = {
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "InvalidImageName",
}
_SUB_CONDITIONS = (
    "GatewaysReady",
    "HTTPRoutesReady",
    "InferencePoolReady",
    "MainWorkloadReady",
    "PresetsCombined",
    "SchedulerWorkloadReady",
)


def workload_labels(name: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": "llminferenceservice-workload",
        "app.kubernetes.io/part-of": "llminferenceservice",
        "kserve.io/component": "workload",
    }


def scheduler_labels(name: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": "llminferenceservice-router-scheduler",
        "app.kubernetes.io/part-of": "llminferenceservice",
    }


def merge_specs(base: Any, override: Any) -> Any:
    """Strategic-merge-like: dicts merge, containers merge by name, other lists are replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = copy.deepcopy(base)
        for key, value in override.items():
            out[key] = merge_specs(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    named = (
        isinstance(base, list)
        and isinstance(override, list)
        and all(isinstance(i, dict) and "name" in i for i in base + override)
        and base
    )
    if named:
        out = copy.deepcopy(base)
        index = {item["name"]: i for i, item in enumerate(out)}
        for item in override:
            if item["name"] in index:
                out[index[item["name"]]] = merge_specs(out[index[item["name"]]], item)
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(override)


class PresetError(Exception):
    """A baseRefs entry cannot be resolved."""


class LLMInferenceServices:
    def __init__(self, emu: Emulator, gateways: Gateways) -> None:
        self.emu = emu
        self.store = emu.store
        self.gateways = gateways
        self.controller = c = Controller(emu, "llminferenceservice", self.reconcile)
        c.watch(API, "LLMInferenceService")
        c.watch(API, "LLMInferenceServiceConfig", lambda _e, _o: self._all())
        c.watch(ROUTE_API, "Gateway", lambda _e, _o: self._all())
        for api, kind in (
            ("apps/v1", "Deployment"),
            ("v1", "Service"),
            (ROUTE_API, "HTTPRoute"),
            (POOL_API, "InferencePool"),
        ):
            c.watch(api, kind, self._owner)
        c.watch("v1", "Pod", self._pod_owner)

    @property
    def settings(self) -> dict[str, Any]:
        defaults = {
            "kserve_namespace": "opendatahub",
            "default_gateway": {"name": "inference-gateway", "namespace": "opendatahub"},
        }
        return {**defaults, **(self.emu.config.get("llmisvc") or {})}

    def _all(self) -> list[Key]:
        return [key_of(o) for o in self.store.list(API, "LLMInferenceService")]

    @staticmethod
    def _owner(_event: str, obj: Obj) -> list[Key]:
        ref = controller_of(obj, "LLMInferenceService")
        return [(obj["metadata"]["namespace"], ref["name"])] if ref else []

    @staticmethod
    def _pod_owner(_event: str, pod: Obj) -> list[Key]:
        labels = pod["metadata"].get("labels") or {}
        if labels.get("app.kubernetes.io/part-of") != "llminferenceservice":
            return []
        return [(pod["metadata"]["namespace"], labels.get("app.kubernetes.io/name", ""))]

    # ----------------------------------------------------------------- reconcile
    def reconcile(self, key: Key) -> None:
        svc = self.store.get(API, "LLMInferenceService", key[1], key[0])
        if svc is None or svc["metadata"].get("deletionTimestamp"):
            return
        status = copy.deepcopy(svc.get("status") or {})
        conds: list[Obj] = status.setdefault("conditions", [])
        try:
            spec = self._combined_spec(svc)
        except PresetError as err:
            set_condition(conds, "PresetsCombined", "False", "CombineBaseError", str(err))
            set_condition(conds, "Ready", "False", "CombineBaseError", str(err))
            self._write_status(svc, status)
            return
        set_condition(conds, "PresetsCombined", "True")
        self._reconcile_workload(svc, spec, conds)
        router = spec.get("router")
        route = self._reconcile_router(svc, spec, conds) if router is not None else None
        self._summarise(conds)
        self._addresses(svc, status, route)
        self._write_status(svc, status)

    def _write_status(self, svc: Obj, status: Obj) -> None:
        status["observedGeneration"] = svc["metadata"].get("generation", 1)
        for cond in status["conditions"]:
            if cond["type"] in _SUB_CONDITIONS:
                cond["severity"] = "Info"
            if cond["status"] == "True":
                for empty in [k for k in ("reason", "message") if not cond.get(k)]:
                    del cond[empty]
        status["conditions"].sort(key=lambda c: c["type"])
        if status != svc.get("status"):
            svc["status"] = status
            self.store.update_status(svc)

    def _combined_spec(self, svc: Obj) -> Obj:
        ns = svc["metadata"]["namespace"]
        system_ns = self.settings["kserve_namespace"]
        spec: Obj = {}
        for ref in svc["spec"].get("baseRefs") or ():
            name = ref.get("name", "")
            found = self.store.get(API, "LLMInferenceServiceConfig", name, ns) or self.store.get(
                API, "LLMInferenceServiceConfig", name, system_ns
            )
            if found is None:
                raise PresetError(
                    f'failed to get LLMInferenceServiceConfig "{name}" from namespaces '
                    f'["{ns}", "{system_ns}"]: llminferenceserviceconfigs.{GROUP} "{name}" '
                    "not found"
                )
            spec = merge_specs(spec, found.get("spec") or {})
        overrides = {k: v for k, v in svc["spec"].items() if k != "baseRefs"}
        return merge_specs(spec, overrides)

    # ------------------------------------------------------------------ children
    def _ensure(self, owner: Obj, desired: Obj) -> Obj | None:
        """Create or update a child (spec, labels, data); None when its kind is not served."""
        if not self.store.is_known(desired["apiVersion"], desired["kind"]):
            return None
        meta = desired["metadata"]
        meta["namespace"] = owner["metadata"]["namespace"]
        meta["ownerReferences"] = [owner_ref(owner)]
        current = self.store.get(
            desired["apiVersion"], desired["kind"], meta["name"], meta["namespace"]
        )
        if current is None:
            return self.store.create(desired)
        changed = False
        for field in ("spec", "data", "type"):
            if field in desired and current.get(field) != desired[field]:
                current[field] = desired[field]
                changed = True
        labels = {**(current["metadata"].get("labels") or {}), **(meta.get("labels") or {})}
        if labels != current["metadata"].get("labels"):
            current["metadata"]["labels"] = labels
            changed = True
        return self.store.update(current) if changed else current

    def _reconcile_workload(self, svc: Obj, spec: Obj, conds: list[Obj]) -> None:
        name = svc["metadata"]["name"]
        labels = workload_labels(name)
        pod_spec = copy.deepcopy(spec.get("template") or {})
        containers = pod_spec.setdefault("containers", [])
        if not any(c.get("name") == "main" for c in containers):
            containers.insert(0, {"name": "main", "image": "vllm/vllm-openai:latest"})
        self._ensure(svc, self._tls_secret(svc))
        deploy = self._ensure(
            svc, _deployment(f"{name}-kserve", labels, spec.get("replicas", 1), pod_spec)
        )
        self._ensure(
            svc,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": f"{name}-kserve-workload-svc", "labels": dict(labels)},
                "spec": {
                    "selector": dict(labels),
                    "ports": [
                        {
                            "name": "https",
                            "port": WORKLOAD_PORT,
                            "protocol": "TCP",
                            "targetPort": WORKLOAD_PORT,
                        }
                    ],
                    "type": "ClusterIP",
                },
            },
        )
        reason, message = self._deployment_readiness(deploy)
        failing = self._failing_pod(svc["metadata"]["namespace"], labels)
        if reason and failing:
            reason, message = failing
        if reason:
            set_condition(conds, "MainWorkloadReady", "False", reason, message)
        else:
            set_condition(conds, "MainWorkloadReady", "True")

    def _tls_secret(self, svc: Obj) -> Obj:
        name, ns = svc["metadata"]["name"], svc["metadata"]["namespace"]
        secret_name = f"{name}-kserve-self-signed-certs"
        existing = self.store.get("v1", "Secret", secret_name, ns)
        if existing is not None:
            return {k: existing[k] for k in ("apiVersion", "kind", "metadata", "type", "data")}
        host = f"{name}-kserve-workload-svc.{ns}.svc"
        cert, key = self.emu.ca.issue_server_cert([host, f"{host}.cluster.local", "localhost"])
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret_name},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": _b64(cert), "tls.key": _b64(key)},
        }

    @staticmethod
    def _deployment_readiness(deploy: Obj | None) -> tuple[str, str]:
        """("", "") when Available, else the reason and message KServe propagates."""
        available = condition(deploy, "Available") if deploy else None
        if available is None:
            return "Progressing", ""
        if available["status"] == "True":
            return "", ""
        return available.get("reason", ""), available.get("message", "")

    def _failing_pod(self, ns: str, labels: dict[str, str]) -> tuple[str, str] | None:
        for pod in self.store.list("v1", "Pod", ns, label_selector=labels):
            scheduled = condition(pod, "PodScheduled")
            if scheduled and scheduled.get("reason") == "Unschedulable":
                return "Unschedulable", scheduled.get("message", "")
            for status in pod["status"].get("containerStatuses") or ():
                waiting = (status.get("state") or {}).get("waiting") or {}
                if waiting.get("reason") in _FAILING_WAIT:
                    last = ((status.get("lastState") or {}).get("terminated")) or {}
                    if last.get("reason") == "OOMKilled":
                        return "OOMKilled", f"container {status['name']} was OOMKilled (exit 137)"
                    return waiting["reason"], waiting.get("message", "")
        return None

    def _reconcile_router(self, svc: Obj, spec: Obj, conds: list[Obj]) -> Obj | None:
        router = spec.get("router") or {}
        scheduler_on = "scheduler" in router
        if scheduler_on:
            self._reconcile_scheduler(svc, router.get("scheduler") or {}, conds)
        route = None
        if "route" in router:
            route = self._reconcile_route(svc, router, scheduler_on, conds)
        self._gateway_conditions(svc, router, conds)
        return route

    def _reconcile_scheduler(self, svc: Obj, scheduler: Obj, conds: list[Obj]) -> None:
        name = svc["metadata"]["name"]
        labels = scheduler_labels(name)
        self._ensure(
            svc,
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": f"{name}-epp-sa", "labels": dict(labels)},
            },
        )
        pod_spec = copy.deepcopy(scheduler.get("template") or {})
        if not pod_spec.get("containers"):
            pod_spec["containers"] = [
                {
                    "name": "main",
                    "image": EPP_IMAGE,
                    "args": [
                        "--pool-name",
                        f"{name}-inference-pool",
                        "--pool-namespace",
                        svc["metadata"]["namespace"],
                        "--zap-encoder",
                        "json",
                        "--grpc-port",
                        "9002",
                        "--grpc-health-port",
                        "9003",
                    ],
                    "ports": [
                        {"name": "grpc", "containerPort": 9002},
                        {"name": "grpc-health", "containerPort": 9003},
                        {"name": "metrics", "containerPort": 9090},
                    ],
                }
            ]
        pod_spec.setdefault("serviceAccountName", f"{name}-epp-sa")
        deploy = self._ensure(
            svc, _deployment(f"{name}-kserve-router-scheduler", labels, 1, pod_spec)
        )
        self._ensure(
            svc,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": f"{name}-epp-service", "labels": dict(labels)},
                "spec": {
                    "selector": dict(labels),
                    "ports": [
                        {"name": "grpc", "port": 9002, "targetPort": 9002, "appProtocol": "http2"},
                        {"name": "grpc-health", "port": 9003, "targetPort": 9003},
                        {"name": "metrics", "port": 9090, "targetPort": 9090},
                    ],
                },
            },
        )
        pool = self._ensure(svc, self._pool(svc, scheduler))
        if pool is None:
            message = (
                'Failed to reconcile scheduler: no matches for kind "InferencePool" in version '
                f'"{POOL_API}"'
            )
            set_condition(
                conds, "SchedulerWorkloadReady", "False", "SchedulerReconcileError", message
            )
            set_condition(conds, "InferencePoolReady", "False", "InferencePoolFetchError", message)
            return
        reason, message = self._deployment_readiness(deploy)
        if reason:
            set_condition(conds, "SchedulerWorkloadReady", "False", reason, message)
        else:
            set_condition(conds, "SchedulerWorkloadReady", "True")
        pool_name = pool["metadata"]["name"]
        ns = pool["metadata"]["namespace"]
        parents = (pool.get("status") or {}).get("parents") or []
        accepted = [condition({"status": p}, "Accepted") for p in parents]
        if parents and all(c and c.get("status") == "True" for c in accepted):
            set_condition(conds, "InferencePoolReady", "True")
        else:
            set_condition(
                conds,
                "InferencePoolReady",
                "False",
                "InferencePoolNotReady",
                f"The inference pool {ns}/{pool_name} is not ready",
            )

    def _pool(self, svc: Obj, scheduler: Obj) -> Obj:
        name = svc["metadata"]["name"]
        pool_spec = copy.deepcopy((scheduler.get("pool") or {}).get("spec") or {})
        pool_spec.setdefault("selector", {"matchLabels": workload_labels(name)})
        pool_spec.setdefault("targetPorts", [{"number": WORKLOAD_PORT}])
        pool_spec.setdefault(
            "endpointPickerRef",
            {
                "kind": "Service",
                "name": f"{name}-epp-service",
                "port": {"number": 9002},
                "failureMode": "FailOpen",
            },
        )
        return {
            "apiVersion": POOL_API,
            "kind": "InferencePool",
            "metadata": {"name": f"{name}-inference-pool", "labels": scheduler_labels(name)},
            "spec": pool_spec,
        }

    def _gateway_refs(self, svc: Obj, router: Obj) -> list[dict[str, str]]:
        refs = (router.get("gateway") or {}).get("refs") or []
        if not refs and "route" in router:
            refs = [self.settings["default_gateway"]]
        ns = svc["metadata"]["namespace"]
        return [{"name": r["name"], "namespace": r.get("namespace") or ns} for r in refs]

    def _reconcile_route(
        self, svc: Obj, router: Obj, scheduler_on: bool, conds: list[Obj]
    ) -> Obj | None:
        http = (router.get("route") or {}).get("http") or {}
        if http.get("refs"):
            return self._referenced_routes(svc, http["refs"], conds)
        name, ns = svc["metadata"]["name"], svc["metadata"]["namespace"]
        parents = [
            {"group": "gateway.networking.k8s.io", "kind": "Gateway", **ref}
            for ref in self._gateway_refs(svc, router)
        ]
        spec = copy.deepcopy(http.get("spec") or {}) or self._route_spec(name, ns, scheduler_on)
        spec.setdefault("parentRefs", parents)
        route = self._ensure(
            svc,
            {
                "apiVersion": ROUTE_API,
                "kind": "HTTPRoute",
                "metadata": {"name": f"{name}-kserve-route", "labels": workload_labels(name)},
                "spec": spec,
            },
        )
        if route is None:
            message = (
                'Failed to reconcile HTTPRoute: no matches for kind "HTTPRoute" in version '
                f'"{ROUTE_API}"'
            )
            set_condition(conds, "HTTPRoutesReady", "False", "HTTPRouteReconcileError", message)
            return None
        problem = _route_problem(route)
        if problem:
            set_condition(
                conds,
                "HTTPRoutesReady",
                "False",
                "HTTPRoutesNotReady",
                "The following HTTPRoutes are not ready: "
                f"[{ns}/{route['metadata']['name']}: {problem}]",
            )
        else:
            set_condition(conds, "HTTPRoutesReady", "True")
        return route

    def _referenced_routes(self, svc: Obj, refs: list[Obj], conds: list[Obj]) -> Obj | None:
        ns = svc["metadata"]["namespace"]
        routes = [self.store.get(ROUTE_API, "HTTPRoute", r.get("name", ""), ns) for r in refs]
        missing = [r.get("name") for r, found in zip(refs, routes, strict=True) if found is None]
        if missing:
            set_condition(
                conds,
                "HTTPRoutesReady",
                "False",
                "HTTPRouteFetchError",
                f"Failed to fetch referenced HTTPRoutes: httproutes.gateway.networking.k8s.io "
                f'"{missing[0]}" not found',
            )
            return None
        set_condition(conds, "HTTPRoutesReady", "True")
        return routes[0]

    @staticmethod
    def _route_spec(name: str, ns: str, scheduler_on: bool) -> Obj:
        prefix = f"/{ns}/{name}"
        svc_backend = {
            "group": "",
            "kind": "Service",
            "name": f"{name}-kserve-workload-svc",
            "port": WORKLOAD_PORT,
            "weight": 1,
        }
        pool_backend = {
            "group": "inference.networking.k8s.io",
            "kind": "InferencePool",
            "name": f"{name}-inference-pool",
            "weight": 1,
        }

        def rule(path: str, backend: Obj, rewrite: str) -> Obj:
            return {
                "backendRefs": [backend],
                "filters": [
                    {
                        "type": "URLRewrite",
                        "urlRewrite": {
                            "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": rewrite}
                        },
                    }
                ],
                "matches": [{"path": {"type": "PathPrefix", "value": path}}],
                "timeouts": {"backendRequest": "0s", "request": "0s"},
            }

        inference = pool_backend if scheduler_on else svc_backend
        return {
            "rules": [
                rule(f"{prefix}/v1/completions", inference, "/v1/completions"),
                rule(f"{prefix}/v1/chat/completions", inference, "/v1/chat/completions"),
                rule(prefix, svc_backend, "/"),
            ]
        }

    def _gateway_conditions(self, svc: Obj, router: Obj, conds: list[Obj]) -> None:
        refs = self._gateway_refs(svc, router)
        if not refs:
            return
        not_ready = []
        for ref in refs:
            gw = self.store.get(ROUTE_API, "Gateway", ref["name"], ref["namespace"])
            if gw is None:
                message = (
                    "Failed to fetch referenced Gateways: failed to get Gateway "
                    f"{ref['namespace']}/{ref['name']}: gateways.gateway.networking.k8s.io "
                    f'"{ref["name"]}" not found'
                )
                set_condition(conds, "GatewaysReady", "False", "GatewayFetchError", message)
                return
            programmed = condition(gw, "Programmed")
            if not programmed or programmed.get("status") != "True":
                not_ready.append(f"{ref['namespace']}/{ref['name']}")
        if not_ready:
            set_condition(
                conds,
                "GatewaysReady",
                "False",
                "GatewaysNotReady",
                f"The following Gateways are not ready: [{' '.join(not_ready)}]",
            )
        else:
            set_condition(conds, "GatewaysReady", "True")

    # ------------------------------------------------------------------- status
    @staticmethod
    def _summarise(conds: list[Obj]) -> None:
        by_type = {c["type"]: c for c in conds}

        def first_false(types: tuple[str, ...]) -> Obj | None:
            return next(
                (by_type[t] for t in types if t in by_type and by_type[t]["status"] != "True"),
                None,
            )

        workload = first_false(("MainWorkloadReady", "SchedulerWorkloadReady"))
        router = first_false(
            ("GatewaysReady", "HTTPRoutesReady", "InferencePoolReady", "SchedulerWorkloadReady")
        )
        for type_, bad in (("WorkloadsReady", workload), ("RouterReady", router)):
            if bad:
                set_condition(conds, type_, "False", bad.get("reason", ""), bad.get("message", ""))
            else:
                set_condition(conds, type_, "True")
        blocker = workload or router
        if blocker:
            set_condition(
                conds, "Ready", "False", blocker.get("reason", ""), blocker.get("message", "")
            )
        else:
            set_condition(conds, "Ready", "True")

    def _addresses(self, svc: Obj, status: Obj, route: Obj | None) -> None:
        name, ns = svc["metadata"]["name"], svc["metadata"]["namespace"]
        internal = f"https://{name}-kserve-workload-svc.{ns}.svc.cluster.local"
        urls = []
        if route is not None:
            for parent in route["spec"].get("parentRefs") or ():
                base = self.gateways.external_base(parent.get("namespace") or ns, parent["name"])
                if base:
                    urls.append(f"{base}/{ns}/{name}")
        if urls:
            status["url"] = urls[0]
            status["address"] = {"url": urls[0]}
            status["addresses"] = [{"name": "gateway-external", "url": u} for u in urls]
        else:
            status.pop("url", None)
            status["address"] = {"url": internal}
            status["addresses"] = [{"url": internal}]


def _deployment(name: str, labels: dict[str, str], replicas: Any, pod_spec: Obj) -> Obj:
    """A Deployment child: `replicas` Pods of pod_spec, selected by (and carrying) labels."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
        },
    }


def _route_problem(route: Obj) -> str:
    """Why an HTTPRoute is not ready (KServe checks Accepted and ResolvedRefs per parent)."""
    parents = (route.get("status") or {}).get("parents") or []
    if not parents:
        return "Accepted condition is missing"
    for parent in parents:
        for type_ in ("Accepted", "ResolvedRefs"):
            cond = condition({"status": parent}, type_)
            if cond is None:
                return f"{type_} condition is missing"
            if cond.get("status") != "True":
                return (
                    f'{type_}="{cond.get("status")}" (reason "{cond.get("reason", "")}", '
                    f'message "{cond.get("message", "")}")'
                )
    return ""


def _b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()
