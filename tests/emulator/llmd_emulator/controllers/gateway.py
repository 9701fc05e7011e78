"""Istio's Gateway API controller: GatewayClass, Gateway, HTTPRoute and InferencePool status.

A Gateway of class istio gets a Deployment, Service and ServiceAccount `<gw>-istio` and one
model-server listener per listener port on 127.0.0.1. The real bound port is random unless
`emu.config["gateway"]["bind_exact_ports"]` is true; `external_base()` gives the URL clients use
(admin GET /gateways lists them). Scenarios: gateway-no-address, gateway-hostname.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

from .. import modelserver, scenarios
from .base import Controller, Key, Obj, condition, key_of, owner_ref, set_condition

if TYPE_CHECKING:
    from ..core import Emulator

API = "gateway.networking.k8s.io/v1"
POOL_API = "inference.networking.k8s.io/v1"
CONTROLLER_NAME = "istio.io/gateway-controller"
PROXY_IMAGE = "registry.redhat.io/openshift-service-mesh/istio-proxyv2-rhel9:1.27.3"
_OK = "No errors found"
log = logging.getLogger("llmd_emulator.controllers.gateway")


def _parent_gateways(route: Obj) -> list[Key]:
    ns = route["metadata"]["namespace"]
    return [
        (ref.get("namespace") or ns, ref["name"])
        for ref in (route.get("spec") or {}).get("parentRefs") or ()
        if ref.get("kind", "Gateway") == "Gateway"
    ]


class Gateways:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store
        self.server = modelserver.get(emu)
        self._bound: dict[Key, dict[int, int]] = {}  # gateway -> listener port -> real port
        self._opening: set[tuple[Key, int]] = set()
        self.classes = Controller(emu, "gatewayclass", self.reconcile_class)
        self.classes.watch(API, "GatewayClass")
        self.gateways = c = Controller(emu, "gateway", self.reconcile_gateway)
        c.watch(API, "Gateway")
        c.watch(API, "HTTPRoute", lambda _e, route: _parent_gateways(route))
        self.routes = r = Controller(emu, "httproute", self.reconcile_route)
        r.watch(API, "HTTPRoute")
        for api, kind in ((API, "Gateway"), ("v1", "Service"), (POOL_API, "InferencePool")):
            r.watch(api, kind, lambda _e, _o: self._all(API, "HTTPRoute"))
        self.pools = p = Controller(emu, "inferencepool", self.reconcile_pool)
        p.watch(POOL_API, "InferencePool")
        p.watch(API, "HTTPRoute", lambda _e, _o: self._all(POOL_API, "InferencePool"))
        p.watch("v1", "Service", lambda _e, _o: self._all(POOL_API, "InferencePool"))
        emu.admin_routes.get("/gateways")(self._admin_list)

    def _all(self, api: str, kind: str) -> list[Key]:
        return [key_of(o) for o in self.store.list(api, kind)]

    async def _admin_list(self, _request: web.Request) -> web.Response:
        items = [
            {
                "namespace": ns,
                "name": name,
                "ports": {str(k): v for k, v in ports.items()},
                "url": self.external_base(ns, name),
            }
            for (ns, name), ports in sorted(self._bound.items())
        ]
        return web.json_response({"gateways": items})

    # -------------------------------------------------------------- addresses
    def _address(self) -> Obj:
        if scenarios.active(self.emu, "gateway-hostname"):
            return {"type": "Hostname", "value": "localhost"}
        return {"type": "IPAddress", "value": "127.0.0.1"}

    def external_base(self, ns: str, name: str) -> str | None:
        """http://address[:port] of a Programmed gateway's first listener, else None."""
        gw = self.store.get(API, "Gateway", name, ns)
        programmed = condition(gw, "Programmed") if gw else None
        addresses = (gw or {}).get("status", {}).get("addresses") or []
        ports = self._bound.get((ns, name)) or {}
        if not programmed or programmed["status"] != "True" or not addresses or not ports:
            return None
        listener_port = gw["spec"]["listeners"][0]["port"]
        real = ports.get(listener_port)
        host = addresses[0]["value"]
        return f"http://{host}" if real == 80 else f"http://{host}:{real}"

    def _handled(self, gw: Obj) -> bool:
        class_name = gw["spec"].get("gatewayClassName", "")
        gw_class = self.store.get(API, "GatewayClass", class_name)
        if gw_class is not None:
            return gw_class["spec"].get("controllerName") == CONTROLLER_NAME
        return class_name == "istio"

    # ---------------------------------------------------------- GatewayClass
    def reconcile_class(self, key: Key) -> None:
        gw_class = self.store.get(API, "GatewayClass", key[1])
        if gw_class is None or gw_class["spec"].get("controllerName") != CONTROLLER_NAME:
            return
        status = {
            "conditions": [dict(c) for c in (gw_class.get("status") or {}).get("conditions") or ()]
        }
        gen = gw_class["metadata"].get("generation", 1)
        conds = status["conditions"]
        set_condition(
            conds,
            "Accepted",
            "True",
            "Accepted",
            "Handled by Istio controller",
            observedGeneration=gen,
        )
        set_condition(
            conds, "SupportedVersion", "True", "SupportedVersion", "", observedGeneration=gen
        )
        if status != gw_class.get("status"):
            gw_class["status"] = status
            self.store.update_status(gw_class)

    # --------------------------------------------------------------- Gateway
    def reconcile_gateway(self, key: Key) -> None:
        gw = self.store.get(API, "Gateway", key[1], key[0])
        if gw is None or not self._handled(gw):
            for port in list(self._bound.get(key, {})):
                self.emu.spawn(self._close(key, port))
            return
        listeners = gw["spec"].get("listeners") or []
        self._children(gw, listeners)
        no_address = scenarios.active(self.emu, "gateway-no-address")
        if not no_address:
            for listener in listeners:
                self._open(key, gw, listener["port"])
        bound = self._bound.get(key, {})
        ready = not no_address and all(lst["port"] in bound for lst in listeners)
        self._gateway_status(gw, listeners, ready)
        if ready:
            self._service_address(gw)

    def _children(self, gw: Obj, listeners: list[Obj]) -> None:
        name, ns = gw["metadata"]["name"], gw["metadata"]["namespace"]
        child = f"{name}-istio"
        labels = {
            "gateway.networking.k8s.io/gateway-name": name,
            "gateway.istio.io/managed": "istio.io-gateway-controller",
            "istio.io/gateway-name": name,
        }
        meta = {
            "name": child,
            "namespace": ns,
            "labels": labels,
            "ownerReferences": [owner_ref(gw)],
        }
        ports = [{"name": "status-port", "port": 15021, "protocol": "TCP", "targetPort": 15021}]
        ports += [
            {
                "name": f"{lst['name']}",
                "port": lst["port"],
                "protocol": "TCP",
                "targetPort": lst["port"],
            }
            for lst in listeners
        ]
        desired = [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(meta)},
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": dict(meta),
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"gateway.networking.k8s.io/gateway-name": name}},
                    "template": {
                        "metadata": {"labels": dict(labels)},
                        "spec": {
                            "serviceAccountName": child,
                            "containers": [
                                {
                                    "name": "istio-proxy",
                                    "image": PROXY_IMAGE,
                                    "ports": [{"containerPort": 15021, "name": "status-port"}],
                                }
                            ],
                        },
                    },
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": dict(meta),
                "spec": {
                    "type": "LoadBalancer",
                    "selector": {"gateway.networking.k8s.io/gateway-name": name},
                    "ports": ports,
                },
            },
        ]
        for obj in desired:
            current = self.store.get(obj["apiVersion"], obj["kind"], child, ns)
            if current is None:
                self.store.create(obj)
            elif obj["kind"] == "Service" and current["spec"].get("ports") != ports:
                current["spec"]["ports"] = ports
                self.store.update(current)

    def _open(self, key: Key, gw: Obj, port: int) -> None:
        if port in self._bound.get(key, {}) or (key, port) in self._opening:
            return
        self._opening.add((key, port))
        exact = (self.emu.config.get("gateway") or {}).get("bind_exact_ports", False)
        app = self.server.gateway_app(key[0], key[1])

        async def open_site() -> None:
            try:
                real = await self.emu.add_http_site(app, port if exact else 0)
                self._bound.setdefault(key, {})[port] = real
                log.info("gateway %s/%s listener %s serving on 127.0.0.1:%s", *key, port, real)
            finally:
                self._opening.discard((key, port))
            self.gateways.enqueue(key)

        self.emu.spawn(open_site())

    async def _close(self, key: Key, port: int) -> None:
        real = self._bound.get(key, {}).pop(port, None)
        if not self._bound.get(key):
            self._bound.pop(key, None)
        if real is not None:
            await self.emu.remove_http_site(real)

    def _gateway_status(self, gw: Obj, listeners: list[Obj], ready: bool) -> None:
        name, ns = gw["metadata"]["name"], gw["metadata"]["namespace"]
        gen = gw["metadata"].get("generation", 1)
        old = gw.get("status") or {}
        status: Obj = {"conditions": [dict(c) for c in old.get("conditions") or ()]}
        conds = status["conditions"]
        service = f"{name}-istio.{ns}.svc.cluster.local"
        ports = ",".join(str(lst["port"]) for lst in listeners)
        set_condition(
            conds, "Accepted", "True", "Accepted", "Resource accepted", observedGeneration=gen
        )
        if ready:
            status["addresses"] = [self._address()]
            set_condition(
                conds,
                "Programmed",
                "True",
                "Programmed",
                f"Resource programmed, assigned to service(s) {service}:{ports}",
                observedGeneration=gen,
            )
        else:
            set_condition(
                conds,
                "Programmed",
                "False",
                "AddressNotAssigned",
                f"Assigned to service(s) {service}:{ports}, but failed to assign to all requested "
                f'addresses: address pending for hostname "{service}"',
                observedGeneration=gen,
            )
        routes = self.store.list(API, "HTTPRoute")
        old_listeners = {lst.get("name"): lst for lst in old.get("listeners") or ()}
        status["listeners"] = []
        for listener in listeners:
            attached = sum(
                1
                for route in routes
                for ref in route["spec"].get("parentRefs") or ()
                if (ref.get("namespace") or route["metadata"]["namespace"], ref["name"])
                == (ns, name)
                and ref.get("sectionName") in (None, listener["name"])
            )
            lconds = [
                dict(c) for c in old_listeners.get(listener["name"], {}).get("conditions") or ()
            ]
            for type_, value in (
                ("Accepted", "True"),
                ("NoConflicts", "False"),
                ("Programmed", "True" if ready else "False"),
                ("ResolvedRefs", "True"),
            ):
                set_condition(lconds, type_, value, type_, _OK, observedGeneration=gen)
            status["listeners"].append(
                {
                    "name": listener["name"],
                    "attachedRoutes": attached,
                    "supportedKinds": [
                        {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"},
                        {"group": "gateway.networking.k8s.io", "kind": "GRPCRoute"},
                    ],
                    "conditions": lconds,
                }
            )
        if status != old:
            gw["status"] = status
            self.store.update_status(gw)

    def _service_address(self, gw: Obj) -> None:
        svc = self.store.get(
            "v1", "Service", f"{gw['metadata']['name']}-istio", gw["metadata"]["namespace"]
        )
        if svc is None:
            return
        address = self._address()
        entry = (
            {"hostname": address["value"]}
            if address["type"] == "Hostname"
            else {"ip": address["value"]}
        )
        lb = {"ingress": [{**entry, "ipMode": "VIP"}]}
        if (svc.get("status") or {}).get("loadBalancer") != lb:
            svc["status"] = {**(svc.get("status") or {}), "loadBalancer": lb}
            self.store.update_status(svc)

    # ------------------------------------------------------------- HTTPRoute
    def reconcile_route(self, key: Key) -> None:
        route = self.store.get(API, "HTTPRoute", key[1], key[0])
        if route is None:
            return
        ns, gen = key[0], route["metadata"].get("generation", 1)
        old = (route.get("status") or {}).get("parents") or []
        parents = [p for p in old if p.get("controllerName") != CONTROLLER_NAME]
        resolved = self._resolve_backends(route)
        for ref in route["spec"].get("parentRefs") or ():
            if ref.get("kind", "Gateway") != "Gateway":
                continue
            gw = self.store.get(API, "Gateway", ref["name"], ref.get("namespace") or ns)
            if gw is None or not self._handled(gw):
                continue
            previous = next((p for p in old if p.get("parentRef") == ref), {})
            conds = [dict(c) for c in previous.get("conditions") or ()]
            set_condition(
                conds, "Accepted", "True", "Accepted", "Route was valid", observedGeneration=gen
            )
            set_condition(conds, "ResolvedRefs", *resolved, observedGeneration=gen)
            parents.append(
                {"parentRef": ref, "controllerName": CONTROLLER_NAME, "conditions": conds}
            )
        if parents != old:
            route["status"] = {"parents": parents}
            self.store.update_status(route)

    def _resolve_backends(self, route: Obj) -> tuple[str, str, str]:
        ns = route["metadata"]["namespace"]
        for rule in route["spec"].get("rules") or ():
            for backend in rule.get("backendRefs") or ():
                kind, group = backend.get("kind", "Service"), backend.get("group", "")
                target_ns = backend.get("namespace") or ns
                if kind == "Service" and not group:
                    found = self.store.get("v1", "Service", backend["name"], target_ns)
                elif kind == "InferencePool" and self.store.is_known(f"{group}/v1", kind):
                    found = self.store.get(f"{group}/v1", kind, backend["name"], target_ns)
                else:
                    return (
                        "False",
                        "InvalidKind",
                        f'referencing unsupported backendRef: group "{group}" kind "{kind}"',
                    )
                if found is None:
                    host = f"{backend['name']}.{target_ns}.svc.cluster.local"
                    return "False", "BackendNotFound", f"backend({host}) not found"
        return "True", "ResolvedRefs", "All references resolved"

    # ---------------------------------------------------------- InferencePool
    def reconcile_pool(self, key: Key) -> None:
        pool = self.store.get(POOL_API, "InferencePool", key[1], key[0])
        if pool is None:
            return
        ns, name, gen = key[0], key[1], pool["metadata"].get("generation", 1)
        gateways: list[Key] = []
        for route in self.store.list(API, "HTTPRoute", ns):
            uses_pool = any(
                b.get("kind") == "InferencePool" and b.get("name") == name
                for rule in route["spec"].get("rules") or ()
                for b in rule.get("backendRefs") or ()
            )
            accepted = [
                p
                for p in (route.get("status") or {}).get("parents") or ()
                if p.get("controllerName") == CONTROLLER_NAME
            ]
            if uses_pool and accepted:
                gateways += [g for g in _parent_gateways(route) if g not in gateways]
        epp = (pool["spec"].get("endpointPickerRef") or {}).get("name", "")
        epp_found = self.store.get("v1", "Service", epp, ns) is not None
        old = (pool.get("status") or {}).get("parents") or []
        parents = []
        for gw_ns, gw_name in gateways:
            ref = {
                "group": "gateway.networking.k8s.io",
                "kind": "Gateway",
                "name": gw_name,
                "namespace": gw_ns,
            }
            previous = next((p for p in old if p.get("parentRef") == ref), {})
            conds = [dict(c) for c in previous.get("conditions") or ()]
            set_condition(
                conds,
                "Accepted",
                "True",
                "Accepted",
                f"InferencePool has been Accepted by controller {CONTROLLER_NAME}: Referenced by "
                "an HTTPRoute accepted by the parentRef Gateway",
                observedGeneration=gen,
            )
            if epp_found:
                set_condition(
                    conds,
                    "ResolvedRefs",
                    "True",
                    "ResolvedRefs",
                    "Referenced ExtensionRef resolved successfully",
                    observedGeneration=gen,
                )
            else:
                set_condition(
                    conds,
                    "ResolvedRefs",
                    "False",
                    "InvalidExtensionRef",
                    f"Referenced ExtensionRef {ns}/{epp} not found",
                    observedGeneration=gen,
                )
            parents.append(
                {"parentRef": ref, "controllerName": CONTROLLER_NAME, "conditions": conds}
            )
        if parents != old:
            pool["status"] = {"parents": parents}
            self.store.update_status(pool)
