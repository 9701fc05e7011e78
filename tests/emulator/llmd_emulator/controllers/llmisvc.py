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
import json
from typing import TYPE_CHECKING, Any

from .. import kserve_merge
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
POOL_ALPHA_API = "inference.networking.x-k8s.io/v1alpha2"
MIGRATED = "serving.kserve.io/inferencepool-migrated"
MODEL_DIR = "/mnt/models"
PROVISION_VOLUME = "kserve-provision-location"
STORAGE_INITIALIZER = "storage-initializer"
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


def router_labels(name: str) -> dict[str, str]:
    """RouterLabels (router.go): the HTTPRoute's labels."""
    return {
        "app.kubernetes.io/component": "llminferenceservice-router",
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": "llminferenceservice",
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
            global_config = self._global_config()
        except PresetError as err:
            # Reconcile fails before the presets are combined: no condition changes, an event.
            self.store.record_event(
                svc, "Error", f"Reconciliation failed: {err}", "Warning", component="llmisvc"
            )
            return
        status.setdefault("annotations", {}).update(
            {
                kserve_merge.STATUS_ANNOTATION_PREFIX + n.removeprefix(kserve_merge.PREFIX): n
                for n in kserve_merge.WELL_KNOWN
                if kserve_merge.STATUS_ANNOTATION_PREFIX + n.removeprefix(kserve_merge.PREFIX)
                not in (status.get("annotations") or {})
            }
        )
        try:
            spec = self._combined_spec(svc, global_config)
        except PresetError as err:
            set_condition(conds, "PresetsCombined", "False", "CombineBaseError", str(err))
            set_condition(conds, "Ready", "False", "CombineBaseError", str(err))
            self._write_status(svc, status)
            return
        set_condition(conds, "PresetsCombined", "True")
        self._reconcile_workload(svc, spec, conds, global_config)
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

    def _global_config(self) -> Obj:
        """LoadConfig (config_loader.go): ingress and storage of inferenceservice-config."""
        system_ns = self.settings["kserve_namespace"]
        cm = self.store.get("v1", "ConfigMap", "inferenceservice-config", system_ns)
        if cm is None:
            raise PresetError(
                "failed to load ingress config: failed to load InferenceServiceConfigMap: "
                'configmaps "inferenceservice-config" not found'
            )
        data = cm.get("data") or {}
        try:
            ingress = json.loads(data.get("ingress") or "{}")
            storage = json.loads(data.get("storageInitializer") or "{}")
        except json.JSONDecodeError as err:
            raise PresetError(f"failed to load ingress config: {err}") from err
        gateway = ingress.get("kserveIngressGateway", "")
        gw_ns, _slash, gw_name = gateway.rpartition("/")
        return {
            "systemNamespace": system_ns,
            "ingressGatewayName": gw_name,
            "ingressGatewayNamespace": gw_ns or system_ns,
            "urlScheme": ingress.get("urlScheme", ""),
            "storageInitializer": storage,
        }

    def _combined_spec(self, svc: Obj, global_config: Obj) -> Obj:
        ns = svc["metadata"]["namespace"]
        system_ns = self.settings["kserve_namespace"]

        def get_config(name: str) -> Obj | None:
            return self.store.get(API, "LLMInferenceServiceConfig", name, ns) or self.store.get(
                API, "LLMInferenceServiceConfig", name, system_ns
            )

        try:
            spec, _refs = kserve_merge.combine(svc, get_config, global_config)
        except kserve_merge.CombineError as err:
            raise PresetError(str(err)) from err
        return spec

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
        for field in ("labels", "annotations"):
            merged = {**(current["metadata"].get(field) or {}), **(meta.get(field) or {})}
            if merged != (current["metadata"].get(field) or {}):
                current["metadata"][field] = merged
                changed = True
        return self.store.update(current) if changed else current

    def _reconcile_workload(
        self, svc: Obj, spec: Obj, conds: list[Obj], global_config: Obj
    ) -> None:
        name = svc["metadata"]["name"]
        # singleNodeLabels + component + role (workload_single_node.go).
        labels = {**workload_labels(name), "llm-d.ai/role": "both"}
        pod_spec = copy.deepcopy(spec.get("template") or {})
        try:
            _attach_model(pod_spec, (spec.get("model") or {}).get("uri", ""), global_config)
        except PresetError as err:
            set_condition(
                conds,
                "MainWorkloadReady",
                "False",
                "ReconcileSingleNodeWorkloadError",
                f"failed to reconcile main workload: {err}",
            )
            return
        self._ensure(svc, self._tls_secret(svc))
        deploy = self._ensure(
            svc,
            _deployment(
                kserve_merge.child_name(name, "-kserve"), labels, spec.get("replicas"), pod_spec
            ),
        )
        self._ensure(
            svc,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": kserve_merge.child_name(name, "-kserve-workload-svc"),
                    "labels": {
                        k: v for k, v in labels.items() if k.startswith("app.kubernetes.io/")
                    },
                },
                "spec": {
                    "selector": kserve_merge.workload_selector(name),
                    "ports": [
                        {
                            "name": "https",
                            "protocol": "TCP",
                            "appProtocol": "https",
                            "port": WORKLOAD_PORT,
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
        """scheduler.go: ServiceAccount, EPP Deployment and Service, InferencePools."""
        name = svc["metadata"]["name"]
        labels = scheduler_labels(name)
        self._ensure(
            svc,
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": kserve_merge.child_name(name, "-epp-sa"), "labels": labels},
            },
        )
        pod_spec = copy.deepcopy(scheduler.get("template") or {})
        deploy = None
        if pod_spec:
            current = self.store.get(
                "apps/v1",
                "Deployment",
                kserve_merge.child_name(name, "-kserve-router-scheduler"),
                svc["metadata"]["namespace"],
            )
            for container in pod_spec.get("containers") or ():
                if container.get("name") == "main":
                    scheduler_config_args(container, current)
            deploy = self._ensure(
                svc,
                _deployment(
                    kserve_merge.child_name(name, "-kserve-router-scheduler"),
                    labels,
                    None,
                    pod_spec,
                ),
            )
            self._ensure(svc, _scheduler_service(name, labels, pod_spec))
        pool_spec = copy.deepcopy((scheduler.get("pool") or {}).get("spec") or {})
        alpha = self._ensure(svc, _pool_v1alpha2(name, pool_spec))
        pool = self._ensure(svc, _pool_v1(name, pool_spec)) if alpha is not None else None
        if alpha is None:
            message = (
                "Failed to reconcile scheduler: failed to reconcile inference pool: no matches "
                f'for kind "InferencePool" in version "{POOL_ALPHA_API}"'
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
        target = pool or alpha
        pool_name = target["metadata"]["name"]
        ns = target["metadata"]["namespace"]
        parents = (target.get("status") or {}).get("parents") or []
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
        route_name = kserve_merge.child_name(name, "-kserve-route")
        spec = copy.deepcopy(http.get("spec") or {})
        annotations: dict[str, str] = {}
        if scheduler_on:
            # expectedHTTPRoute (router.go): the v1alpha2 pool group first; v1 once the
            # gateway said it does not support v1alpha2 (ResolvedRefs InvalidKind), for good.
            current = self.store.get(ROUTE_API, "HTTPRoute", route_name, ns)
            migrated = (
                current is not None
                and (current["metadata"].get("annotations") or {}).get(MIGRATED) == "v1"
            )
            v1 = _backend_supported(current, kserve_merge.POOL_GROUPS[1])
            alpha = _backend_supported(current, kserve_merge.POOL_GROUPS[0])
            use_v1 = migrated or v1 == "True" or alpha == "False"
            group = kserve_merge.POOL_GROUPS[1 if use_v1 else 0]
            for rule in spec.get("rules") or ():
                for backend in rule.get("backendRefs") or ():
                    if kserve_merge.is_default_pool_ref(name, backend):
                        backend["group"] = group
            if use_v1:
                annotations[MIGRATED] = "v1"
        route = self._ensure(
            svc,
            {
                "apiVersion": ROUTE_API,
                "kind": "HTTPRoute",
                "metadata": {
                    "name": route_name,
                    "labels": router_labels(name),
                    "annotations": annotations,
                },
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
            **({} if replicas is None else {"replicas": replicas}),
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


def _backend_supported(route: Obj | None, group: str) -> str:
    """IsInferencePoolV1Supported / V1Alpha2Supported (router_discovery.go)."""
    if route is None:
        return "Unknown"
    uses = any(
        b.get("kind") == "InferencePool" and b.get("group") == group
        for rule in route["spec"].get("rules") or ()
        for b in rule.get("backendRefs") or ()
    )
    if not uses:
        return "Unknown"
    for parent in (route.get("status") or {}).get("parents") or ():
        cond = condition({"status": parent}, "ResolvedRefs")
        if cond is None:
            continue
        if cond.get("status") == "True":
            return "True"
        if cond.get("status") == "False" and cond.get("reason") == "InvalidKind":
            return "False"
    return "Unknown"


def _attach_model(pod_spec: Obj, uri: str, global_config: Obj) -> None:
    """attachModelArtifacts (workload_storage.go): hf:// and s3:// get the storage initializer."""
    scheme, sep, _rest = uri.partition("://")
    if not sep:
        raise PresetError(f"invalid model URI: {uri}")
    if scheme in ("pvc", "oci"):
        raise PresetError(f"emulator gap: {scheme}:// model URIs are not emulated")
    if scheme not in ("hf", "s3"):
        raise PresetError(f"unsupported schema in model URI: {uri}")
    storage = global_config.get("storageInitializer") or {}
    volumes = pod_spec.setdefault("volumes", [])
    if not any(v.get("name") == PROVISION_VOLUME for v in volumes):
        volumes.append({"name": PROVISION_VOLUME, "emptyDir": {}})
    inits = pod_spec.setdefault("initContainers", [])
    if not any(c.get("name") == STORAGE_INITIALIZER for c in inits):
        inits.append(
            {
                "name": STORAGE_INITIALIZER,
                "image": storage.get("image") or "kserve/storage-initializer:latest",
                "args": [uri, MODEL_DIR],
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "volumeMounts": [{"name": PROVISION_VOLUME, "mountPath": MODEL_DIR}],
                "env": [
                    {"name": "HF_HOME", "value": "/tmp"},
                    {"name": "HF_HUB_ENABLE_HF_TRANSFER", "value": "1"},
                    {"name": "HF_XET_HIGH_PERFORMANCE", "value": "1"},
                    {"name": "HF_XET_NUM_CONCURRENT_RANGE_GETS", "value": "8"},
                ],
                "resources": {
                    "limits": {
                        "cpu": storage.get("cpuLimit", "1"),
                        "memory": storage.get("memoryLimit", "1Gi"),
                    },
                    "requests": {
                        "cpu": storage.get("cpuRequest", "100m"),
                        "memory": storage.get("memoryRequest", "100Mi"),
                    },
                },
            }
        )
    for container in pod_spec.get("containers") or ():
        if container.get("name") == "main":
            mounts = container.setdefault("volumeMounts", [])
            if not any(m.get("name") == PROVISION_VOLUME for m in mounts):
                mounts.append({"name": PROVISION_VOLUME, "mountPath": MODEL_DIR, "readOnly": True})


_CONFIG_FLAGS = (
    "--config-text",
    "-config-text",
    "--configText",
    "-configText",
    "--config-file",
    "-config-file",
    "--configFile",
    "-configFile",
)
# schedulerConfigText (scheduler.go), the default profile for a service without prefill.
SCHEDULER_CONFIG_TEXT = """
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: single-profile-handler
- type: prefix-cache-scorer
- type: load-aware-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: prefix-cache-scorer
    weight: 2.0
  - pluginRef: load-aware-scorer
    weight: 1.0
  - pluginRef: max-score-picker
"""


def scheduler_config_args(container: Obj, current: Obj | None) -> None:
    """expectedSchedulerDeployment: append --config-text unless the args configure it."""
    args = container.setdefault("args", [])
    if any(a in ("--config-text", "-config-text", "--config-file", "-config-file") for a in args):
        return
    for old in ((current or {}).get("spec") or {}).get("template", {}).get("spec", {}).get(
        "containers"
    ) or ():
        if old.get("name") != "main":
            continue
        old_args = old.get("args") or []
        for i, arg in enumerate(old_args[:-1]):
            if arg in _CONFIG_FLAGS:
                args.extend([arg, old_args[i + 1]])
                return
    args.extend(["--config-text", SCHEDULER_CONFIG_TEXT])


def _scheduler_service(name: str, labels: dict[str, str], pod_spec: Obj) -> Obj:
    """expectedSchedulerService: the ports named grpc, grpc-health, metrics, zmq, by name."""
    wanted = {"grpc", "grpc-health", "metrics", "zmq"}
    found = {
        p["name"]: p
        for c in pod_spec.get("containers") or ()
        for p in c.get("ports") or ()
        if p.get("name") in wanted
    }
    ports = [
        {
            "name": n,
            "port": p["containerPort"],
            "protocol": p.get("protocol", "TCP"),
            "targetPort": n,
        }
        for n, p in sorted(found.items())
    ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": kserve_merge.child_name(name, "-epp-service"), "labels": labels},
        "spec": {"selector": dict(labels), "ports": ports},
    }


def _pool_v1alpha2(name: str, pool_spec: Obj) -> Obj:
    """expectedSchedulerInferencePool: inference.networking.x-k8s.io/v1alpha2 from the spec."""
    return {
        "apiVersion": POOL_ALPHA_API,
        "kind": "InferencePool",
        "metadata": {
            "name": kserve_merge.child_name(name, "-inference-pool"),
            "labels": scheduler_labels(name),
        },
        "spec": copy.deepcopy(pool_spec),
    }


def _pool_v1(name: str, pool_spec: Obj) -> Obj:
    """expectedSchedulerInferencePoolV1: the v1alpha2 spec converted to v1 fields."""
    spec: Obj = {"targetPorts": [{"number": int(pool_spec.get("targetPortNumber") or 0)}]}
    if pool_spec.get("selector") is not None:
        spec["selector"] = {"matchLabels": dict(pool_spec["selector"])}
    ext = pool_spec.get("extensionRef") or {}
    if ext.get("name"):
        ref: Obj = {"name": ext["name"]}
        for field in ("group", "kind"):
            if field in ext:
                ref[field] = ext[field]
        ref["port"] = {"number": int(ext.get("portNumber") or 9002)}
        if "failureMode" in ext:
            ref["failureMode"] = ext["failureMode"]
        spec["endpointPickerRef"] = ref
    return {
        "apiVersion": POOL_API,
        "kind": "InferencePool",
        "metadata": {
            "name": kserve_merge.child_name(name, "-inference-pool"),
            "labels": scheduler_labels(name),
        },
        "spec": spec,
    }
