"""The Table kube-apiserver answers for `Accept: application/json;as=Table;...` (kubectl get).

Read from kubernetes/kubernetes (v1.33 era, the fork yongruilin/kubernetes at 144a7980 holds the
file as upstream has it): `pkg/printers/internalversion/printers.go` (the column definitions of
`AddHandlers` and the print functions), `pkg/printers/storage/storage.go` (the API server always
prints with `Wide: true`: kubectl hides the priority-1 columns unless `-o wide`), and for custom
resources `staging/src/k8s.io/apiextensions-apiserver/pkg/registry/customresource/tableconvertor`
(the CRD's `additionalPrinterColumns`, or `Age` alone: `serveDefaultColumnsIfEmpty`). Durations
are `k8s.io/apimachinery/pkg/util/duration.HumanDuration`. Kinds without a printer here keep
NAME and AGE (docs/conformance.md names them as a gap).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .kinds import KindInfo

Obj = dict[str, Any]

# metav1.TableColumnDefinition fields: name, type, format, priority (descriptions are left empty).
Column = tuple[str, str, str, int]


class TableGap(Exception):
    """A printer column the emulator cannot evaluate as kube-apiserver does (named, not guessed)."""


# --------------------------------------------------------------------------------- time


def human_duration(seconds: float) -> str:
    """duration.HumanDuration: ~2-3 significant figures of a duration."""
    whole = int(seconds)  # Go's int() truncates toward zero
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        sec = whole % 60
        return f"{minutes}m" if sec == 0 else f"{minutes}m{sec}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        mins = minutes % 60
        return f"{hours}h" if mins == 0 else f"{hours}h{mins}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def _time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def since(value: Any, now: datetime) -> str:
    """translateTimestampSince: `<unknown>` for a zero (absent) time."""
    at = _time(value)
    if at is None:
        return "<unknown>"
    return human_duration((now - at).total_seconds())


# ------------------------------------------------------------------------ formatting helpers


def format_labels(labels: dict[str, str] | None) -> str:
    """labels.FormatLabels: sorted `k=v` joined by `,`, `<none>` when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def selector_string(selector: Obj | None) -> str:
    """metav1.LabelSelectorAsSelector(...).String(): requirements sorted by key ("" for nil)."""
    if selector is None:
        return ""
    reqs: list[tuple[str, str]] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        reqs.append((key, f"{key}={value}"))
    for expr in selector.get("matchExpressions") or ():
        key, op = expr.get("key", ""), expr.get("operator", "")
        values = ",".join(sorted(expr.get("values") or ()))
        text = {
            "In": f"{key} in ({values})",
            "NotIn": f"{key} notin ({values})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }.get(op)
        if text is None:
            return "<invalid>"
        reqs.append((key, text))
    return ",".join(text for _key, text in sorted(reqs, key=lambda r: r[0]))


def format_selector(selector: Obj | None) -> str:
    """metav1.FormatLabelSelector: the selector string, `<none>` when empty."""
    return selector_string(selector) or "<none>"


def _containers(template_spec: Obj | None) -> tuple[str, str]:
    """layoutContainerCells: names and images joined by `,`."""
    containers = (template_spec or {}).get("containers") or ()
    return (
        ",".join(c.get("name", "") for c in containers),
        ",".join(c.get("image", "") for c in containers),
    )


def _template_spec(obj: Obj) -> Obj:
    return (((obj.get("spec") or {}).get("template") or {}).get("spec")) or {}


# ------------------------------------------------------------------------------- printers

NAME: Column = ("Name", "string", "name", 0)
AGE: Column = ("Age", "string", "", 0)


def _s(name: str, priority: int = 0) -> Column:
    return (name, "string", "", priority)


def _i(name: str, priority: int = 0) -> Column:
    return (name, "integer", "", priority)


def _condition(conditions: Any, type_: str) -> Obj | None:
    for cond in conditions or ():
        if cond.get("type") == type_:
            return cond
    return None


def _later(current: datetime | None, candidate: Any) -> datetime | None:
    at = _time(candidate)
    if at is not None and (current is None or at > current):
        return at
    return current


def _terminated_at(status: Obj) -> Any:
    return (((status.get("lastState") or {}).get("terminated")) or {}).get("finishedAt")


def print_pod(pod: Obj, now: datetime) -> tuple[list[Any], list[Obj]]:
    """printPod: READY ready/total, STATUS by the reason logic, RESTARTS with `(X ago)`."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    restarts = sidecar_restarts = ready = 0
    total = len(spec.get("containers") or ())
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    conditions = status.get("conditions") or ()
    for cond in conditions:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    row_conditions: list[Obj] = []
    if phase == "Succeeded":
        row_conditions = [
            {
                "type": "Completed",
                "status": "True",
                "reason": "Succeeded",
                "message": "The pod has completed successfully.",
            }
        ]
    elif phase == "Failed":
        row_conditions = [
            {
                "type": "Completed",
                "status": "True",
                "reason": "Failed",
                "message": "The pod failed.",
            }
        ]

    inits = {c.get("name"): c for c in spec.get("initContainers") or ()}
    n_inits = len(spec.get("initContainers") or ())
    total += sum(1 for c in inits.values() if c.get("restartPolicy") == "Always")

    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or ()):
        restarts += int(cs.get("restartCount") or 0)
        last_restart = _later(last_restart, _terminated_at(cs))
        sidecar = (inits.get(cs.get("name")) or {}).get("restartPolicy") == "Always"
        if sidecar:
            sidecar_restarts += int(cs.get("restartCount") or 0)
            last_sidecar_restart = _later(last_sidecar_restart, _terminated_at(cs))
        state = cs.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated is not None and int(terminated.get("exitCode") or 0) == 0:
            continue
        if sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if terminated is not None:
            if not terminated.get("reason"):
                if terminated.get("signal"):
                    reason = f"Init:Signal:{terminated['signal']}"
                else:
                    reason = f"Init:ExitCode:{terminated.get('exitCode') or 0}"
            else:
                reason = "Init:" + terminated["reason"]
        elif (
            waiting is not None
            and waiting.get("reason")
            and waiting["reason"] != ("PodInitializing")
        ):
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{n_inits}"
        initializing = True
        break

    initialized = (_condition(conditions, "Initialized") or {}).get("status") == "True"
    if not initializing or initialized:
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or ()):
            restarts += int(cs.get("restartCount") or 0)
            last_restart = _later(last_restart, _terminated_at(cs))
            state = cs.get("state") or {}
            terminated, waiting = state.get("terminated"), state.get("waiting")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                if terminated.get("signal"):
                    reason = f"Signal:{terminated['signal']}"
                else:
                    reason = f"ExitCode:{terminated.get('exitCode') or 0}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = (_condition(conditions, "Ready") or {}).get("status") == "True"
            reason = "Running" if pod_ready else "NotReady"

    deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Failed", "Succeeded"):
        reason = "Terminating"

    restarts_text = str(restarts)
    if restarts and last_restart is not None:
        restarts_text = f"{restarts} ({human_duration((now - last_restart).total_seconds())} ago)"

    ips = status.get("podIPs") or ()
    pod_ip = (ips[0].get("ip") if ips else "") or "<none>"
    gates = spec.get("readinessGates") or ()
    readiness = "<none>"
    if gates:
        true = sum(
            1
            for gate in gates
            if (_condition(conditions, gate.get("conditionType", "")) or {}).get("status") == "True"
        )
        readiness = f"{true}/{len(gates)}"
    cells = [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        reason,
        restarts_text,
        since(pod["metadata"].get("creationTimestamp"), now),
        pod_ip,
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        readiness,
    ]
    return cells, row_conditions


POD_COLUMNS = [
    NAME,
    _s("Ready"),
    _s("Status"),
    _s("Restarts"),
    AGE,
    _s("IP", 1),
    _s("Node", 1),
    _s("Nominated Node", 1),
    _s("Readiness Gates", 1),
]


def _print_deployment(obj: Obj, now: datetime) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers(_template_spec(obj))
    return [
        obj["metadata"]["name"],
        f"{status.get('readyReplicas') or 0}/{spec.get('replicas', 1)}",
        int(status.get("updatedReplicas") or 0),
        int(status.get("availableReplicas") or 0),
        since(obj["metadata"].get("creationTimestamp"), now),
        names,
        images,
        selector_string(spec.get("selector")),
    ]


def _print_replicaset(obj: Obj, now: datetime) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers(_template_spec(obj))
    return [
        obj["metadata"]["name"],
        int(spec.get("replicas", 1)),
        int(status.get("replicas") or 0),
        int(status.get("readyReplicas") or 0),
        since(obj["metadata"].get("creationTimestamp"), now),
        names,
        images,
        format_selector(spec.get("selector")),
    ]


def _print_statefulset(obj: Obj, now: datetime) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers(_template_spec(obj))
    return [
        obj["metadata"]["name"],
        f"{status.get('readyReplicas') or 0}/{spec.get('replicas', 1)}",
        since(obj["metadata"].get("creationTimestamp"), now),
        names,
        images,
    ]


def _print_daemonset(obj: Obj, now: datetime) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers(_template_spec(obj))
    return [
        obj["metadata"]["name"],
        int(status.get("desiredNumberScheduled") or 0),
        int(status.get("currentNumberScheduled") or 0),
        int(status.get("numberReady") or 0),
        int(status.get("updatedNumberScheduled") or 0),
        int(status.get("numberAvailable") or 0),
        format_labels(_template_spec(obj).get("nodeSelector")),
        since(obj["metadata"].get("creationTimestamp"), now),
        names,
        images,
        format_selector(spec.get("selector")),
    ]


def _job_condition(status: Obj, type_: str) -> bool:
    return (_condition(status.get("conditions"), type_) or {}).get("status") == "True"


def _print_job(obj: Obj, now: datetime) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    succeeded = int(status.get("succeeded") or 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif int(spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    start, end = _time(status.get("startTime")), _time(status.get("completionTime"))
    duration = ""
    if start is not None:
        duration = human_duration(((end or now) - start).total_seconds())
    if _job_condition(status, "Complete"):
        state = "Complete"
    elif _job_condition(status, "Failed"):
        state = "Failed"
    elif obj["metadata"].get("deletionTimestamp"):
        state = "Terminating"
    elif _job_condition(status, "Suspended"):
        state = "Suspended"
    elif _job_condition(status, "FailureTarget"):
        state = "FailureTarget"
    else:
        state = "Running"
    names, images = _containers(_template_spec(obj))
    return [
        obj["metadata"]["name"],
        state,
        completions,
        duration,
        since(obj["metadata"].get("creationTimestamp"), now),
        names,
        images,
        format_selector(spec.get("selector")),
    ]


def _external_ip(svc: Obj) -> str:
    """getServiceExternalIP with wide=true (no clipping of load-balancer addresses)."""
    spec = svc.get("spec") or {}
    external = list(spec.get("externalIPs") or ())
    kind = spec.get("type") or ""
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if kind == "LoadBalancer":
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()
        found = sorted({i.get("ip") or i.get("hostname") for i in ingress} - {None, ""})
        if external:
            return ",".join([*found, *external])
        return ",".join(found) if found else "<pending>"
    if kind == "ExternalName":
        return spec.get("externalName") or ""
    return "<unknown>"


def _print_service(obj: Obj, now: datetime) -> list[Any]:
    spec = obj.get("spec") or {}
    ports = []
    for port in spec.get("ports") or ():
        protocol = port.get("protocol") or ""
        if port.get("nodePort"):
            ports.append(f"{port.get('port')}:{port['nodePort']}/{protocol}")
        else:
            ports.append(f"{port.get('port')}/{protocol}")
    cluster_ips = spec.get("clusterIPs") or ()
    return [
        obj["metadata"]["name"],
        spec.get("type") or "",
        cluster_ips[0] if cluster_ips else "<none>",
        _external_ip(obj),
        ",".join(ports) or "<none>",
        since(obj["metadata"].get("creationTimestamp"), now),
        format_labels(spec.get("selector")),
    ]


def _node_address(node: Obj, type_: str) -> str:
    for address in (node.get("status") or {}).get("addresses") or ():
        if address.get("type") == type_:
            return address.get("address") or ""
    return "<none>"


def _print_node(obj: Obj, now: datetime) -> list[Any]:
    status = obj.get("status") or {}
    ready = _condition(status.get("conditions"), "Ready")
    states = [] if ready is None else ["Ready" if ready.get("status") == "True" else "NotReady"]
    if not states:
        states = ["Unknown"]
    if (obj.get("spec") or {}).get("unschedulable"):
        states.append("SchedulingDisabled")
    roles: set[str] = set()
    for key, value in (obj["metadata"].get("labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/"):
            if role := key.removeprefix("node-role.kubernetes.io/"):
                roles.add(role)
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    info = status.get("nodeInfo") or {}
    return [
        obj["metadata"]["name"],
        ",".join(states),
        ",".join(sorted(roles)) or "<none>",
        since(obj["metadata"].get("creationTimestamp"), now),
        info.get("kubeletVersion") or "",
        _node_address(obj, "InternalIP"),
        _node_address(obj, "ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


def _print_event(obj: Obj, now: datetime) -> list[Any]:
    """printEvent (core/v1 Event) with wide=true: all ten cells."""
    first = since(obj.get("firstTimestamp"), now)
    if not obj.get("firstTimestamp"):
        first = since(obj.get("eventTime"), now)  # translateMicroTimestampSince
    last = since(obj.get("lastTimestamp"), now) if obj.get("lastTimestamp") else first
    count = int(obj.get("count") or 0)
    if obj.get("series"):
        last = since(obj["series"].get("lastObservedTime"), now)
        count = int(obj["series"].get("count") or 0)
    elif count == 0:
        count = 1  # singleton events have no count in the new API
    involved = obj.get("involvedObject") or {}
    kind = (involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = obj.get("source") or {}
    component = source.get("component") or obj.get("reportingComponent") or ""
    instance = source.get("host") or obj.get("reportingInstance") or ""
    return [
        last,
        obj.get("type") or "",
        obj.get("reason") or "",
        target,
        involved.get("fieldPath") or "",
        f"{component}, {instance}" if instance else component,
        (obj.get("message") or "").strip(),
        first,
        count,
        obj["metadata"]["name"],
    ]


def _simple(*cells: Callable[[Obj], Any]) -> Callable[[Obj, datetime], list[Any]]:
    """Name, the given cells, then Age."""

    def row(obj: Obj, now: datetime) -> list[Any]:
        return [
            obj["metadata"]["name"],
            *(cell(obj) for cell in cells),
            since(obj["metadata"].get("creationTimestamp"), now),
        ]

    return row


Printer = Callable[[Obj, datetime], list[Any]]

BUILTIN: dict[tuple[str, str], tuple[list[Column], Printer]] = {
    ("apps", "Deployment"): (
        [
            NAME,
            _s("Ready"),
            _s("Up-to-date"),
            _s("Available"),
            AGE,
            _s("Containers", 1),
            _s("Images", 1),
            _s("Selector", 1),
        ],
        _print_deployment,
    ),
    ("apps", "ReplicaSet"): (
        [
            NAME,
            _i("Desired"),
            _i("Current"),
            _i("Ready"),
            AGE,
            _s("Containers", 1),
            _s("Images", 1),
            _s("Selector", 1),
        ],
        _print_replicaset,
    ),
    ("apps", "StatefulSet"): (
        [NAME, _s("Ready"), AGE, _s("Containers", 1), _s("Images", 1)],
        _print_statefulset,
    ),
    ("apps", "DaemonSet"): (
        [
            NAME,
            _i("Desired"),
            _i("Current"),
            _i("Ready"),
            _i("Up-to-date"),
            _i("Available"),
            _s("Node Selector"),
            AGE,
            _s("Containers", 1),
            _s("Images", 1),
            _s("Selector", 1),
        ],
        _print_daemonset,
    ),
    ("batch", "Job"): (
        [
            NAME,
            _s("Status"),
            _s("Completions"),
            _s("Duration"),
            AGE,
            _s("Containers", 1),
            _s("Images", 1),
            _s("Selector", 1),
        ],
        _print_job,
    ),
    ("", "Service"): (
        [
            NAME,
            _s("Type"),
            _s("Cluster-IP"),
            _s("External-IP"),
            _s("Port(s)"),
            AGE,
            _s("Selector", 1),
        ],
        _print_service,
    ),
    ("", "Node"): (
        [
            NAME,
            _s("Status"),
            _s("Roles"),
            AGE,
            _s("Version"),
            _s("Internal-IP", 1),
            _s("External-IP", 1),
            _s("OS-Image", 1),
            _s("Kernel-Version", 1),
            _s("Container-Runtime", 1),
        ],
        _print_node,
    ),
    ("", "Event"): (
        [
            _s("Last Seen"),
            _s("Type"),
            _s("Reason"),
            _s("Object"),
            _s("Subobject", 1),
            _s("Source", 1),
            _s("Message"),
            _s("First Seen", 1),
            _s("Count", 1),
            ("Name", "string", "name", 1),
        ],
        _print_event,
    ),
    ("", "Namespace"): (
        [NAME, _s("Status"), AGE],
        _simple(lambda o: (o.get("status") or {}).get("phase") or ""),
    ),
    ("", "Secret"): (
        [NAME, _s("Type"), _s("Data"), AGE],
        _simple(lambda o: o.get("type") or "", lambda o: len(o.get("data") or {})),
    ),
    ("", "ConfigMap"): (
        [NAME, _s("Data"), AGE],
        _simple(lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
    ),
    ("", "ServiceAccount"): (
        [NAME, _s("Secrets"), AGE],
        _simple(lambda o: len(o.get("secrets") or ())),
    ),
    ("networking.k8s.io", "NetworkPolicy"): (
        [NAME, _s("Pod-Selector"), AGE],
        _simple(lambda o: format_selector((o.get("spec") or {}).get("podSelector") or {})),
    ),
}


# ---------------------------------------------------------------- custom resources (JSONPath)

_STEP = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_-]+)
      | \[\*\]
      | \[(?P<index>-?\d+)\]
      | \[\?\(@(?P<fpath>(?:\.[A-Za-z0-9_-]+)+)\s*==\s*(?:'(?P<sq>[^']*)'|"(?P<dq>[^"]*)")\)\]
    """,
    re.VERBOSE,
)


def parse_jsonpath(path: str) -> list[tuple[str, Any]]:
    """The client-go JSONPath subset CRD columns use: `.field`, `[*]`, `[n]`, `[?(@.f=='v')]`.

    Anything else is refused naming the gap (client-go parses more: ranges, unions, `..`)."""
    steps: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(path):
        match = _STEP.match(path, pos)
        if match is None:
            raise TableGap(f"emulator gap: the JSONPath {path!r} is beyond the emulated subset")
        if match.group("field") is not None:
            steps.append(("field", match.group("field")))
        elif match.group("index") is not None:
            steps.append(("index", int(match.group("index"))))
        elif match.group("fpath") is not None:
            value = match.group("sq") if match.group("sq") is not None else match.group("dq")
            steps.append(("filter", (match.group("fpath").split(".")[1:], value)))
        else:
            steps.append(("all", None))
        pos = match.end()
    return steps


def find_results(obj: Any, steps: list[tuple[str, Any]]) -> list[Any]:
    """FindResults with AllowMissingKeys: the values the path reaches, missing keys dropped."""
    values = [obj]
    for kind, arg in steps:
        found: list[Any] = []
        for value in values:
            if kind == "field":
                if isinstance(value, dict) and arg in value:
                    found.append(value[arg])
            elif kind == "all":
                if isinstance(value, list):
                    found.extend(value)
                elif isinstance(value, dict):
                    found.extend(value[k] for k in sorted(value))
            elif kind == "index":
                if isinstance(value, list) and -len(value) <= arg < len(value):
                    found.append(value[arg])
            else:
                fields, wanted = arg
                for item in value if isinstance(value, list) else ():
                    got: Any = item
                    for name in fields:
                        got = got.get(name) if isinstance(got, dict) else None
                    if isinstance(got, str) and got == wanted:
                        found.append(item)
        values = found
    return values


def _go_text(value: Any) -> str:
    """jsonpath PrintResults of one value: maps and lists as compact JSON, scalars as fmt.Fprint."""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def crd_cell(column: Obj, steps: list[tuple[str, Any]], obj: Obj, now: datetime) -> Any:
    """One cell of tableconvertor.ConvertToTable: the first result, typed by the column."""
    results = find_results(obj, steps)
    if not results:
        return None
    value = results[0]
    kind = column.get("type")
    if kind == "string":
        return _go_text(value)
    if value is None:
        return None
    if kind == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "date" and isinstance(value, str):
        at = _time(value)
        return "<invalid>" if at is None else human_duration((now - at).total_seconds())
    return None


DEFAULT_CRD_COLUMNS = ({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},)


# ----------------------------------------------------------------------------------- table

# Served kinds printers.go has no handler for: kube-apiserver answers with the default
# convertor (NAME, CREATED AT).
DEFAULT_CONVERTOR_KINDS = frozenset(
    {
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
    }
)


def _rfc3339(value: Any) -> str:
    at = _time(value) or datetime(1, 1, 1, tzinfo=UTC)  # Go's zero time
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _row_object(obj: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata") or {},
    }


def table(
    info: KindInfo,
    version: str,
    items: list[Obj],
    *,
    resource_version: str,
    include_object: str = "Metadata",
    no_headers: bool = False,
    now: datetime | None = None,
) -> Obj:
    """The meta.k8s.io/v1 Table kube-apiserver answers for these objects of this kind."""
    now = now or datetime.now(UTC)
    rows: list[Obj] = []
    columns: list[Column]
    if not info.builtin:
        crd_columns = info.printer_columns.get(version) or DEFAULT_CRD_COLUMNS
        parsed = [parse_jsonpath(c.get("jsonPath", "")) for c in crd_columns]
        columns = [NAME] + [
            (c["name"], c.get("type", ""), c.get("format", ""), int(c.get("priority") or 0))
            for c in crd_columns
        ]
        for obj in items:
            cells = [obj["metadata"]["name"]] + [
                crd_cell(c, steps, obj, now) for c, steps in zip(crd_columns, parsed, strict=True)
            ]
            rows.append({"cells": cells})
    elif (info.group, info.kind) == ("", "Pod"):
        columns = POD_COLUMNS
        for obj in items:
            cells, conditions = print_pod(obj, now)
            row: Obj = {"cells": cells}
            if conditions:
                row["conditions"] = conditions
            rows.append(row)
    elif (info.group, info.kind) in BUILTIN:
        columns, printer = BUILTIN[(info.group, info.kind)]
        rows = [{"cells": printer(obj, now)} for obj in items]
    elif (info.group, info.kind) in DEFAULT_CONVERTOR_KINDS:
        # No printer upstream: k8s.io/apiserver rest.defaultTableConvertor, the creation time
        # in RFC 3339 (UTC).
        columns = [NAME, ("Created At", "date", "", 0)]
        rows = [
            {"cells": [o["metadata"]["name"], _rfc3339(o["metadata"].get("creationTimestamp"))]}
            for o in items
        ]
    else:
        # No printer emulated for this kind: the generic NAME/AGE (docs/conformance.md gap).
        columns = [NAME, AGE]
        rows = [
            {"cells": [o["metadata"]["name"], since(o["metadata"].get("creationTimestamp"), now)]}
            for o in items
        ]
    for row, obj in zip(rows, items, strict=True):
        if (body := _row_object(obj, include_object)) is not None:
            row["object"] = body
    out: Obj = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "rows": rows,
    }
    if not no_headers:
        out["columnDefinitions"] = [
            {"name": n, "type": t, "format": f, "description": "", "priority": p}
            for n, t, f, p in columns
        ]
    return out
