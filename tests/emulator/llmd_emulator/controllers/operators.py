"""Operator stand-ins: custom resources of the Sail, cert-manager and LWS operators report healthy.

Handled kinds (only ever seen when their CRDs are installed): sailoperator.io Istio (state
Healthy, Ready/Reconciled; it also creates GatewayClass istio as istiod does), and the OpenShift
operator.openshift.io CertManager and LeaderWorkerSetOperator (Available). A CR is held back
while an operator-held scenario matches its operator's name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import scenarios
from .base import Controller, Key, Obj, set_condition

if TYPE_CHECKING:
    from ..core import Emulator

_KINDS = {
    ("sailoperator.io", "Istio"): "sail-operator",
    ("operator.openshift.io", "CertManager"): "cert-manager-operator",
    ("operator.openshift.io", "LeaderWorkerSetOperator"): "openshift-lws-operator",
}
GATEWAY_API = "gateway.networking.k8s.io/v1"


class Operators:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store
        self.controller = Controller(emu, "operators", self.reconcile)
        for group, kind in _KINDS:
            self.controller.watch(f"{group}/v1", kind, self._key)

    @staticmethod
    def _key(_event: str, obj: Obj) -> list[Key]:
        group = obj["apiVersion"].split("/")[0]
        return [(f"{group}|{obj['apiVersion']}|{obj['kind']}", obj["metadata"]["name"])]

    def reconcile(self, key: Key) -> None:
        group, api, kind = key[0].split("|")
        obj = self.store.get(api, kind, key[1])
        if obj is None:
            return
        held = scenarios.held(self.emu, _KINDS[(group, kind)])
        gen = obj["metadata"].get("generation", 1)
        status = dict(obj.get("status") or {})
        conds = [dict(c) for c in status.get("conditions") or ()]
        if kind == "Istio":
            state = "Healthy" if not held else "Updating"
            for type_ in ("Reconciled", "Ready"):
                ok = "False" if held and type_ == "Ready" else "True"
                set_condition(conds, type_, ok, "Healthy" if ok == "True" else "IstiodNotReady")
            version = (obj.get("spec") or {}).get("version", "v1.27.3")
            status.update(
                state=state,
                activeRevisionName="default",
                revisions={"total": 1, "ready": 0 if held else 1, "inUse": 1},
                observedGeneration=gen,
            )
            status.setdefault("version", version)
            if not held:
                self._gateway_class()
        else:
            set_condition(
                conds,
                "Available",
                "False" if held else "True",
                "AsExpected" if not held else "OperatorNotAvailable",
                "",
            )
            set_condition(conds, "Progressing", "True" if held else "False", "AsExpected", "")
            set_condition(conds, "Degraded", "False", "AsExpected", "")
        status["conditions"] = conds
        if status != obj.get("status"):
            obj["status"] = status
            self.store.update_status(obj)
        if held:
            self.controller.enqueue_after(key, 10)

    def _gateway_class(self) -> None:
        if not self.store.is_known(GATEWAY_API, "GatewayClass"):
            return
        if self.store.get(GATEWAY_API, "GatewayClass", "istio") is None:
            self.store.create(
                {
                    "apiVersion": GATEWAY_API,
                    "kind": "GatewayClass",
                    "metadata": {"name": "istio"},
                    "spec": {
                        "controllerName": "istio.io/gateway-controller",
                        "description": "The default Istio GatewayClass",
                    },
                }
            )
