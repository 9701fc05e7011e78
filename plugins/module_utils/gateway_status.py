# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Gateway API (gateway.networking.k8s.io/v1) Gateway status for the gateway_ip module.

A Gateway is usable when its ``Programmed`` condition is True for the current generation, it has
an address (``status.addresses[]`` of type ``IPAddress`` or ``Hostname``) and the chosen
listener does not report ``Programmed`` False. Until the load balancer has an address, Istio
keeps ``Programmed`` False with reason ``AddressNotAssigned``. Istio's ``Programmed`` does not
include the readiness of the gateway's pod (it can be True while the pod is in ErrImagePull), so
the pods labelled ``gateway.networking.k8s.io/gateway-name=<name>`` are checked separately.

The base URL is built from the address and the listener's port (``spec.listeners[].port``): on
GKE the load balancer Service of an Istio gateway exposes exactly the listener ports.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field

from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import (
    Deadline,
    KubeError,
    Resource,
    WaitTimeout,
    Watcher,
    condition,
    pod_ready,
    wait_for,
    wait_for_object,
)

API = "gateway.networking.k8s.io/v1"
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
ADDRESS_TYPES = ("IPAddress", "Hostname")
DEFAULT_PORTS = {"http": 80, "https": 443}
HTTPS_PROTOCOLS = ("HTTPS", "TLS")


def gateways(namespace: str) -> Resource:
    return Resource(API, "gateways", namespace)


GATEWAY_CLASSES = Resource(API, "gatewayclasses")


class GatewayFailure(Exception):
    """The module fails with this message and these return values."""

    def __init__(self, message: str, **result) -> None:
        super().__init__(message)
        self.message = message
        self.result = result


@dataclass
class Verdict:
    """Whether a Gateway is usable; when not, a short reason code and the explanation."""

    ready: bool
    reason: str = ""
    message: str = ""


@dataclass
class GatewayInfo:
    """What the module returns for a usable Gateway."""

    address: str
    address_type: str
    addresses: list
    listener: str
    port: int
    scheme: str
    url: str
    gateway_class: str
    conditions: list
    listeners: list
    pod_ready: bool | None = None
    pods: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    elapsed: float = 0.0

    def as_dict(self) -> dict:
        return {
            "address": self.address,
            "address_type": self.address_type,
            "addresses": self.addresses,
            "listener": self.listener,
            "port": self.port,
            "scheme": self.scheme,
            "url": self.url,
            "gateway_class": self.gateway_class,
            "conditions": self.conditions,
            "listeners": self.listeners,
            "pod_ready": self.pod_ready,
            "pods": self.pods,
            "elapsed": round(self.elapsed, 1),
        }


# ------------------------------------------------------------------------------- pure parts
def select_listener(gateway: dict, name: str | None = None) -> dict:
    """The listener named ``name``, else the first HTTP listener, else the first HTTPS one,
    else the first listener. Raises ValueError when there is none or the name is unknown."""
    listeners = [lst for lst in (gateway.get("spec") or {}).get("listeners") or () if lst]
    if not listeners:
        raise ValueError("the Gateway has no listeners")
    if name:
        for listener in listeners:
            if listener.get("name") == name:
                return listener
        names = ", ".join(str(lst.get("name")) for lst in listeners)
        raise ValueError(f"the Gateway has no listener named {name!r} (it has: {names})")
    for protocol in ("HTTP", "HTTPS"):
        for listener in listeners:
            if str(listener.get("protocol", "")).upper() == protocol:
                return listener
    return listeners[0]


def scheme_for(listener: dict, override: str | None = None) -> str:
    """``https`` for HTTPS and TLS listeners, else ``http``; override wins."""
    if override:
        return override
    return "https" if str(listener.get("protocol", "")).upper() in HTTPS_PROTOCOLS else "http"


def build_url(scheme: str, host: str, port: int) -> str:
    """scheme://host[:port], without the port when it is the scheme's default (80, 443).

    IPv6 addresses are bracketed.
    """
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass
    if DEFAULT_PORTS.get(scheme) == int(port):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{int(port)}"


def pick_address(gateway: dict) -> tuple[str, str] | None:
    """(value, type) of the first IPAddress or Hostname address (a missing type is IPAddress)."""
    for entry in (gateway.get("status") or {}).get("addresses") or ():
        if not isinstance(entry, dict) or not entry.get("value"):
            continue
        type_ = entry.get("type") or "IPAddress"
        if type_ in ADDRESS_TYPES:
            return entry["value"], type_
    return None


def _stale(gateway: dict, cond: dict) -> bool:
    generation = (gateway.get("metadata") or {}).get("generation")
    observed = cond.get("observedGeneration")
    return generation is not None and observed is not None and observed < generation


def _listener_status(gateway: dict, name: str | None) -> dict:
    for entry in (gateway.get("status") or {}).get("listeners") or ():
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry
    return {}


def _reconciled(gateway: dict) -> bool:
    """Whether a controller wrote any condition (the CRD's defaults are Unknown/Pending)."""
    for cond in (gateway.get("status") or {}).get("conditions") or ():
        if cond.get("status") != "Unknown" or cond.get("reason") not in (None, "", "Pending"):
            return True
    return False


def _said(cond: dict) -> str:
    reason = cond.get("reason") or "no reason"
    message = cond.get("message")
    return f"{cond.get('type')}={cond.get('status')} ({reason}{': ' + message if message else ''})"


def evaluate(gateway: dict | None, listener_name: str | None = None) -> Verdict:
    """Whether the Gateway is Programmed (current generation), addressed, listener programmed."""
    if gateway is None:
        return Verdict(False, "NotFound", "the Gateway does not exist")
    if not _reconciled(gateway):
        return Verdict(False, "NoStatus", "no controller has written the Gateway's status")
    accepted = condition(gateway, "Accepted")
    if accepted and accepted.get("status") == "False":
        return Verdict(False, "NotAccepted", _said(accepted))
    programmed = condition(gateway, "Programmed")
    if not programmed:
        return Verdict(False, "NotProgrammed", "the Gateway has no Programmed condition yet")
    if _stale(gateway, programmed):
        return Verdict(
            False,
            "Stale",
            f"Programmed describes generation {programmed.get('observedGeneration')}, the "
            f"Gateway is at generation {gateway['metadata']['generation']}",
        )
    if programmed.get("status") != "True":
        return Verdict(False, programmed.get("reason") or "NotProgrammed", _said(programmed))
    if pick_address(gateway) is None:
        return Verdict(False, "NoAddress", "Programmed is True but status.addresses is empty")
    listener_programmed = condition(
        {"status": _listener_status(gateway, listener_name)}, "Programmed"
    )
    if listener_programmed and listener_programmed.get("status") == "False":
        return Verdict(
            False,
            "ListenerNotProgrammed",
            f"listener {listener_name}: {_said(listener_programmed)}",
        )
    return Verdict(True, "Programmed", _said(programmed))


def diagnose(
    gateway: dict,
    verdict: Verdict,
    gateway_class: dict | None,
    class_name: str,
) -> str:
    """What to do about a Gateway that did not become usable (gateway_class: None if absent)."""
    meta = gateway.get("metadata") or {}
    ns, name = meta.get("namespace"), meta.get("name")
    describe = f"kubectl describe gateway -n {ns} {name}"
    istiod = "kubectl get pods -n istio-system; kubectl logs -n istio-system deploy/istiod"
    if verdict.reason in ("NoStatus", "Stale"):
        if gateway_class is None:
            return (
                f"GatewayClass {class_name} does not exist, so no controller handles this "
                f"Gateway. Istio creates the class {class_name!r} when istiod runs: check "
                "'kubectl get gatewayclass' and the Istio control plane (kubectl get istio), "
                "and run the operators phase"
            )
        if not _class_accepted(gateway_class):
            return (
                f"GatewayClass {class_name} is not Accepted by any controller "
                f"(controllerName {(gateway_class.get('spec') or {}).get('controllerName')}): "
                f"istiod is not running or not ready ({istiod}); run the operators phase"
            )
        return (
            "No controller is reconciling this Gateway: istiod is not running, not ready or "
            f"failing ({istiod})"
        )
    if verdict.reason == "NotAccepted":
        return (
            "istiod rejected the Gateway: fix its spec (for InvalidParameters, the "
            "infrastructure.parametersRef ConfigMap must exist and be valid; for "
            f"ListenersNotValid, the listeners). See {describe}"
        )
    if verdict.reason in ("AddressNotAssigned", "NoAddress"):
        return (
            "The load balancer has no address yet: see 'kubectl get svc -n "
            f"{ns} {name}-istio' (EXTERNAL-IP <pending>) and its events ('kubectl describe svc "
            f"-n {ns} {name}-istio'). On GKE this is usually a quota on in-use external IP "
            "addresses or forwarding rules in the region (gcloud compute regions describe "
            "REGION), or a load balancer still being created"
        )
    if verdict.reason == "ListenerNotProgrammed":
        return (
            "The listener is not programmed (port conflict, invalid TLS or unsupported protocol): "
            f"see status.listeners in {describe}"
        )
    return f"istiod could not program the Gateway: see {describe} and {istiod}"


def _class_accepted(gateway_class: dict) -> bool:
    cond = condition(gateway_class, "Accepted")
    return bool(cond) and cond.get("status") == "True"


def pod_summary(pods: list) -> tuple[bool, list]:
    """(all current pods Ready and at least one, per-pod summaries). Terminating and finished
    pods (deletionTimestamp, Succeeded, Failed) do not count."""
    summaries = []
    current = []
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        phase = status.get("phase")
        reasons = sorted(
            {
                state[key].get("reason")
                for cs in status.get("containerStatuses") or ()
                for state in [cs.get("state") or {}]
                for key in ("waiting", "terminated")
                if (state.get(key) or {}).get("reason")
            }
        )
        ready = pod_ready(pod)
        summaries.append(
            {"name": meta.get("name"), "phase": phase, "ready": ready, "reasons": reasons}
        )
        if not meta.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
            current.append(ready)
    return bool(current) and all(current), sorted(summaries, key=lambda s: s["name"] or "")


def pod_warning(ns: str, name: str, summaries: list) -> str:
    if not summaries:
        problem = f"no pod labelled {GATEWAY_NAME_LABEL}={name} exists in {ns}"
    else:
        problem = "its pod(s) are not Ready: " + ", ".join(
            f"{s['name']} ({', '.join(s['reasons']) or s['phase'] or 'not ready'})"
            for s in summaries
            if not s["ready"]
        )
    text = (
        f"Gateway {ns}/{name} is Programmed but {problem}. Istio's Programmed does not include "
        "the pod's readiness: requests fail until it is Ready. Check 'kubectl get pods -n "
        f"{ns} -l {GATEWAY_NAME_LABEL}={name}' and 'kubectl describe pod'"
    )
    if any(
        r in ("ErrImagePull", "ImagePullBackOff") for s in summaries for r in s.get("reasons", ())
    ):
        text += (
            f"; for ErrImagePull/ImagePullBackOff check the pull secret on ServiceAccount "
            f"{name}-istio (gateway phase)"
        )
    return text


# ----------------------------------------------------------------------------- orchestration
def wait_gateway(
    client,
    name: str,
    namespace: str,
    *,
    listener: str | None = None,
    scheme: str | None = None,
    timeout: float = 600,
    check_pod: bool = True,
    pod_timeout: float = 60,
    clock=time.monotonic,
) -> GatewayInfo:
    """Wait (watch) until the Gateway is usable; raise GatewayFailure with a hint otherwise."""
    deadline = Deadline(timeout, clock)
    where = f"Gateway {namespace}/{name}"
    resource = gateways(namespace)
    chosen: dict = {}

    def usable(gw: dict | None):
        if gw is None:
            return "missing"
        chosen.clear()
        chosen.update(select_listener(gw, listener))  # ValueError: caught below
        return evaluate(gw, chosen.get("name")).ready

    try:
        outcome, gateway = wait_for_object(
            client, resource, name, usable, deadline, what=f"{where} to be Programmed"
        )
    except ValueError as exc:
        raise GatewayFailure(
            f"{where}: {exc}. Set the listener option to one of its listeners"
        ) from None
    except WaitTimeout as exc:
        gateway = exc.last
        if gateway is None:
            raise _not_found(where, deadline) from None
        verdict = evaluate(gateway, chosen.get("name"))
        class_name = (gateway.get("spec") or {}).get("gatewayClassName", "")
        gateway_class = _get_quietly(client, GATEWAY_CLASSES, class_name)
        hint = diagnose(gateway, verdict, gateway_class, class_name)
        status = gateway.get("status") or {}
        raise GatewayFailure(
            f"{where} is not usable after {deadline.elapsed():.0f}s "
            f"({verdict.reason}: {verdict.message}). {hint}",
            reason=verdict.reason,
            hint=hint,
            conditions=status.get("conditions") or [],
            listeners=status.get("listeners") or [],
            addresses=status.get("addresses") or [],
            gateway_class=class_name,
            elapsed=round(deadline.elapsed(), 1),
            **({"last_api_error": exc.last_error.to_dict()} if exc.last_error else {}),
        ) from None
    except KubeError as exc:
        raise _api_failure(where, exc) from None
    if outcome == "missing":
        raise _not_found(where, deadline)

    address, address_type = pick_address(gateway)
    chosen_scheme = scheme_for(chosen, scheme)
    status = gateway.get("status") or {}
    info = GatewayInfo(
        address=address,
        address_type=address_type,
        addresses=status.get("addresses") or [],
        listener=chosen.get("name"),
        port=int(chosen["port"]),
        scheme=chosen_scheme,
        url=build_url(chosen_scheme, address, chosen["port"]),
        gateway_class=(gateway.get("spec") or {}).get("gatewayClassName", ""),
        conditions=status.get("conditions") or [],
        listeners=status.get("listeners") or [],
    )
    if check_pod:
        budget = min(pod_timeout, deadline.remaining())
        _check_pods(client, info, name=name, namespace=namespace, budget=budget, clock=clock)
    info.elapsed = deadline.elapsed()
    return info


def _check_pods(client, info: GatewayInfo, *, name, namespace, budget, clock) -> None:
    """Wait up to budget seconds for the gateway's pods to be Ready; warn when they are not."""
    deadline = Deadline(budget, clock)
    watcher = Watcher(
        client, Resource("v1", "pods", namespace), label_selector=f"{GATEWAY_NAME_LABEL}={name}"
    )
    summaries: list = []

    def ready(snapshot: dict) -> bool:
        nonlocal summaries
        ok, summaries = pod_summary(list(snapshot.values()))
        return ok

    try:
        wait_for(watcher, ready, deadline, f"the pods of Gateway {namespace}/{name}")
        info.pod_ready = True
    except WaitTimeout:
        info.pod_ready = False
        info.warnings.append(pod_warning(namespace, name, summaries))
    except KubeError as exc:
        info.pod_ready = None
        info.warnings.append(
            f"Could not check the pods of Gateway {namespace}/{name}: {exc.message}"
        )
    info.pods = summaries


def _get_quietly(client, resource: Resource, name: str) -> dict | None:
    if not name:
        return None
    try:
        return client.get(resource, name)
    except KubeError:
        return None


def _not_found(where: str, deadline: Deadline) -> GatewayFailure:
    hint = (
        "Create it first: run the gateway phase (site.yml, or the gateway role), or set name and "
        "namespace to an existing Gateway (kubectl get gateways -A)"
    )
    return GatewayFailure(
        f"{where} not found. {hint}",
        reason="NotFound",
        hint=hint,
        conditions=[],
        elapsed=round(deadline.elapsed(), 1),
    )


def _api_failure(where: str, exc: KubeError) -> GatewayFailure:
    hint = exc.hint
    if exc.status == 404:
        hint = (
            "The cluster does not serve gateway.networking.k8s.io/v1 Gateways: the Gateway API "
            "CRDs are missing. Run the operators phase (it installs them)"
        )
    return GatewayFailure(
        f"Cannot read {where}: {exc.message}" + (f". {hint}" if hint else ""),
        reason=exc.reason or "ApiError",
        hint=hint,
        api_error=exc.to_dict() | {"hint": hint},
    )
