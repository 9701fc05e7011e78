"""Server-side defaulting of builtin kinds (the few fields clients and controllers rely on)."""

from __future__ import annotations

import ipaddress
import itertools
from typing import Any

_SERVICE_IPS = (str(ipaddress.IPv4Address("10.96.0.10") + i) for i in itertools.count())


def _namespace(obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")
    labels = obj["metadata"].setdefault("labels", {})
    labels.setdefault("kubernetes.io/metadata.name", obj["metadata"]["name"])


def _service(obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    old_ip = ((old or {}).get("spec") or {}).get("clusterIP")
    if "clusterIP" not in spec and spec["type"] != "ExternalName":
        spec["clusterIP"] = old_ip or next(_SERVICE_IPS)
    if spec.get("clusterIP") and "clusterIPs" not in spec:
        spec["clusterIPs"] = [spec["clusterIP"]]
    for port in spec.get("ports") or ():
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
    obj.setdefault("status", {}).setdefault("loadBalancer", {})


def _pod(obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("serviceAccountName", "default")
    for container in spec.get("containers") or ():
        for port in container.get("ports") or ():
            port.setdefault("protocol", "TCP")
    obj.setdefault("status", {}).setdefault("phase", "Pending")


def _replicated(obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    obj.setdefault("spec", {}).setdefault("replicas", 1)


def _secret(obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    obj.setdefault("type", "Opaque")


_DEFAULTERS = {
    ("", "Secret"): _secret,
    ("", "Namespace"): _namespace,
    ("", "Service"): _service,
    ("", "Pod"): _pod,
    ("apps", "Deployment"): _replicated,
    ("apps", "ReplicaSet"): _replicated,
    ("apps", "StatefulSet"): _replicated,
}


def apply_defaults(group: str, kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Fill defaulted fields of obj in place (old is the stored object on updates)."""
    defaulter = _DEFAULTERS.get((group, kind))
    if defaulter:
        defaulter(obj, old)
