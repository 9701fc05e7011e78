# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The logic of the ``gke_tpu_nodepool`` module: a TPU v6e node pool on the GKE REST API v1.

Pure parts (unit tested without any API):

- ``validate``: the options against the v6e table (``tpu.py``) and GKE's rules, before any call;
- ``build_create_body``: the ``{nodePool: ...}`` request (``placementPolicy`` only for multi-host);
- ``wanted_fields`` / ``actual_fields`` / ``comparable``: the fields the user set and the pool's
  current values in the same user-facing terms (``machine_type``, ``topology``, ``node_count``,
  ``autoscaling``, ``labels``...), so ``changed`` and ``--diff`` come from one comparison;
- ``update_requests``: the calls that change the updatable fields, one field per call;
- ``IMMUTABLE``: the fields GKE cannot change in place (recreate the pool).

``NodePoolRunner`` follows the protocol of ``gke_ops``: wait for the Operations already running on
the pool, read it, compare, act (nothing in check mode), wait for the Operation, read it again and
check its status. The current size of a pool is not a field of the GKE NodePool: it is the
``targetSize`` of the Compute instance group managers its ``instanceGroupUrls`` name (the way
Terraform reads it); when they cannot be read, ``initialNodeCount`` stands in, with a warning.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from ansible_collections.llmd.gke.plugins.module_utils.gcp import GcpApiError, hint_for
from ansible_collections.llmd.gke.plugins.module_utils.gke_ops import (
    OperationWaiter,
    Pending,
    PoolSizes,
    conditions_text,
    diff_of,
    differences,
    operation_summary,
)
from ansible_collections.llmd.gke.plugins.module_utils.tpu import (
    TpuShapeError,
    TpuSlice,
    check_node_counts,
    resolve_slice,
)

DEFAULT_MACHINE_TYPE = "ct6e-standard-4t"
TAINT_EFFECTS = ("NO_SCHEDULE", "PREFER_NO_SCHEDULE", "NO_EXECUTE")
LOCATION_POLICIES = ("BALANCED", "ANY")
# GKE puts this taint on every TPU node itself; it is not a user taint.
TPU_TAINT_KEY = "google.com/tpu"
# Label keys GKE or Kubernetes set on nodes (the TPU ones are what workloads select on).
RESERVED_LABEL_PREFIXES = ("cloud.google.com/gke-", "kubernetes.io/", "k8s.io/")
RESERVED_LABEL_DOMAINS = (".kubernetes.io/", ".k8s.io/")
POOL_NAME_RE = re.compile(r"^[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?$")
FAILED_STATUSES = ("ERROR", "RUNNING_WITH_ERROR")
NODEPOOL_ARG_SPEC = dict(
    location=dict(type="str", required=True, aliases=["zone"]),
    cluster=dict(type="str", required=True),
    name=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    machine_type=dict(type="str", default=DEFAULT_MACHINE_TYPE),
    topology=dict(type="str"),
    node_count=dict(type="int"),
    autoscaling=dict(
        type="dict",
        options=dict(
            enabled=dict(type="bool", default=True),
            min_nodes=dict(type="int", default=0),
            max_nodes=dict(type="int"),
            location_policy=dict(type="str", choices=list(LOCATION_POLICIES)),
        ),
    ),
    spot=dict(type="bool"),
    node_locations=dict(type="list", elements="str"),
    labels=dict(type="dict"),
    taints=dict(
        type="list",
        elements="dict",
        options=dict(
            key=dict(type="str", required=True, no_log=False),
            value=dict(type="str", default=""),
            effect=dict(type="str", required=True, choices=list(TAINT_EFFECTS)),
        ),
    ),
    disk_size_gb=dict(type="int"),
    disk_type=dict(type="str"),
    service_account=dict(type="str"),
    allow_recreate=dict(type="bool", default=False),
)
NODEPOOL_REQUIRED_IF = [("state", "present", ("topology",))]

# Fields GKE cannot change in place: a difference needs allow_recreate (delete + create).
IMMUTABLE = ("machine_type", "topology", "spot", "disk_size_gb", "disk_type", "service_account")
# Updatable fields, in the order their calls are made (autoscaling before a fixed size).
UPDATE_ORDER = ("labels", "taints", "node_locations", "autoscaling", "node_count")
FIELDS = (*IMMUTABLE, "node_count", "autoscaling", "labels", "taints", "node_locations")


class NodePoolError(Exception):
    """A request the module refuses or a pool in a failed state; ``details`` go to fail_json."""

    def __init__(self, message: str, **details) -> None:
        super().__init__(message)
        self.details = details


# --------------------------------------------------------------------------- validation
@dataclass
class PoolRequest:
    """The validated options of a ``state=present`` run."""

    name: str
    tpu: TpuSlice
    node_count: int  # initial size per zone (the option, or its default)
    node_count_set: bool  # the user gave node_count
    autoscaling: dict | None  # None = not set; else enabled/min_nodes/max_nodes/location_policy
    params: dict = field(repr=False)

    @property
    def autoscaling_enabled(self) -> bool:
        return bool(self.autoscaling and self.autoscaling.get("enabled"))


def label_value(value) -> str:
    """A label value as GKE stores it (YAML booleans as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def labels_of(labels: dict) -> dict[str, str]:
    return {str(k): label_value(v) for k, v in labels.items()}


def reserved_label(key: str) -> bool:
    return key.startswith(RESERVED_LABEL_PREFIXES) or any(d in key for d in RESERVED_LABEL_DOMAINS)


def validate(params: dict) -> PoolRequest | None:
    """Check the options before any API call; NodePoolError with the reason and the fix."""
    name = params["name"]
    if not POOL_NAME_RE.match(name or ""):
        raise NodePoolError(
            f"Invalid node pool name {name!r}: use 1-40 lowercase letters, digits and '-', "
            "starting with a letter and not ending with '-'."
        )
    if params["state"] == "absent":
        return None
    try:
        tpu = resolve_slice(params["machine_type"], params["topology"])
    except TpuShapeError as exc:
        raise NodePoolError(
            f"Invalid TPU node pool: {exc}. See the v6e table (cloud.google.com/tpu/docs/v6e)."
        ) from None
    autoscaling = copy.deepcopy(params.get("autoscaling"))
    enabled = bool(autoscaling and autoscaling.get("enabled"))
    if enabled and autoscaling.get("max_nodes") is None:
        raise NodePoolError("autoscaling.max_nodes is required when autoscaling is enabled.")
    count = params.get("node_count")
    count_set = count is not None
    if not count_set:
        count = tpu.nodes_per_slice
        if enabled:
            count = min(max(count, autoscaling["min_nodes"]), autoscaling["max_nodes"])
    try:
        check_node_counts(
            tpu,
            count,
            enabled,
            autoscaling.get("min_nodes") if enabled else None,
            autoscaling.get("max_nodes") if enabled else None,
        )
    except TpuShapeError as exc:
        raise NodePoolError(f"Invalid TPU node pool: {exc}.") from None
    _check_labels(params.get("labels"))
    _check_taints(params.get("taints"))
    _check_locations(params.get("node_locations"), tpu)
    size = params.get("disk_size_gb")
    if size is not None and size < 10:
        raise NodePoolError(f"disk_size_gb must be at least 10, not {size}.")
    return PoolRequest(name, tpu, count, count_set, autoscaling, params)


def _check_labels(labels: dict | None) -> None:
    if not labels:
        return
    reserved = sorted(k for k in labels if reserved_label(str(k)))
    if reserved:
        raise NodePoolError(
            f"labels {', '.join(reserved)} collide with labels GKE or Kubernetes set on nodes "
            "(cloud.google.com/gke-*, *kubernetes.io/*, *k8s.io/*); GKE labels TPU nodes with "
            "cloud.google.com/gke-tpu-accelerator and cloud.google.com/gke-tpu-topology itself. "
            "Use keys of your own domain."
        )
    bad = sorted(str(k) for k, v in labels.items() if isinstance(v, (dict, list)) or v is None)
    if bad:
        raise NodePoolError(f"labels {', '.join(bad)} need a string value.")


def _check_taints(taints: list | None) -> None:
    seen = set()
    for taint in taints or []:
        if taint["key"] == TPU_TAINT_KEY:
            raise NodePoolError(
                f"Do not list the {TPU_TAINT_KEY} taint: GKE adds {TPU_TAINT_KEY}=present:"
                "NoSchedule to every TPU node itself. List only taints of your own."
            )
        pair = (taint["key"], taint["effect"])
        if pair in seen:
            raise NodePoolError(
                f"The taint {taint['key']} with effect {taint['effect']} is listed twice."
            )
        seen.add(pair)


def _check_locations(locations: list | None, tpu: TpuSlice) -> None:
    if locations is None:
        return
    if not locations or len(set(locations)) != len(locations):
        raise NodePoolError("node_locations must list one or more zones, each once.")
    if tpu.multi_host and len(locations) != 1:
        raise NodePoolError(
            f"A multi-host {tpu.topology} slice lives in one zone: give one zone in "
            f"node_locations, not {len(locations)}."
        )


# --------------------------------------------------------------------------- mapping
def _taints_view(taints) -> list[dict]:
    """User taints as {key, value, effect}, GKE's own TPU taint left out, in a stable order."""
    found = [
        {"key": t.get("key"), "value": t.get("value") or "", "effect": t.get("effect")}
        for t in taints or []
        if t.get("key") != TPU_TAINT_KEY
    ]
    return sorted(found, key=lambda t: (t["key"], t["effect"], t["value"]))


def _autoscaling_view(autoscaling: dict | None) -> dict | None:
    """The user's autoscaling option as compared: min/max only matter when enabled."""
    if autoscaling is None:
        return None
    if not autoscaling.get("enabled"):
        return {"enabled": False}
    view = {
        "enabled": True,
        "min_nodes": autoscaling.get("min_nodes") or 0,
        "max_nodes": autoscaling.get("max_nodes"),
    }
    if autoscaling.get("location_policy"):
        view["location_policy"] = autoscaling["location_policy"]
    return view


def wanted_fields(request: PoolRequest) -> dict:
    """The fields the user set, in user-facing terms (None = not set, not compared)."""
    params = request.params
    labels = params.get("labels")
    return {
        "machine_type": request.tpu.machine_type,
        "topology": request.tpu.topology,
        "node_count": request.node_count if request.node_count_set else None,
        "autoscaling": _autoscaling_view(request.autoscaling),
        "spot": params.get("spot"),
        "labels": None if labels is None else labels_of(labels),
        "taints": None if params.get("taints") is None else _taints_view(params["taints"]),
        "node_locations": (
            None if params.get("node_locations") is None else sorted(params["node_locations"])
        ),
        "disk_size_gb": params.get("disk_size_gb"),
        "disk_type": params.get("disk_type"),
        "service_account": params.get("service_account"),
    }


def pool_topology(pool: dict) -> str | None:
    """placementPolicy.tpuTopology, else the single-host topology of a v6e machine type."""
    topology = (pool.get("placementPolicy") or {}).get("tpuTopology")
    if topology:
        return topology
    try:
        return resolve_slice((pool.get("config") or {}).get("machineType") or "").topology
    except TpuShapeError:
        return None


def pool_slice(pool: dict) -> TpuSlice | None:
    """The v6e slice of an existing pool, when its shape is one of the table."""
    try:
        return resolve_slice(
            (pool.get("config") or {}).get("machineType") or "", pool_topology(pool)
        )
    except TpuShapeError:
        return None


def node_count_of(sizes: dict | None, pool: dict) -> int | dict | None:
    """Nodes per zone: one number when every zone has the same size, else {zone: size}."""
    if sizes:
        values = set(sizes.values())
        return values.pop() if len(values) == 1 else dict(sorted(sizes.items()))
    count = pool.get("initialNodeCount")
    return int(count or 0)


def actual_fields(pool: dict, sizes: dict | None = None) -> dict:
    """A pool resource in the user-facing terms of wanted_fields (GKE omits zero/false values)."""
    config = pool.get("config") or {}
    autoscaling = pool.get("autoscaling") or {}
    return {
        "machine_type": config.get("machineType"),
        "topology": pool_topology(pool),
        "node_count": node_count_of(sizes, pool),
        "autoscaling": {
            "enabled": bool(autoscaling.get("enabled")),
            "min_nodes": int(autoscaling.get("minNodeCount") or 0),
            "max_nodes": int(autoscaling.get("maxNodeCount") or 0),
            "location_policy": autoscaling.get("locationPolicy"),
        },
        "spot": bool(config.get("spot")),
        "labels": {str(k): str(v) for k, v in (config.get("labels") or {}).items()},
        "taints": _taints_view(config.get("taints")),
        "node_locations": sorted(pool.get("locations") or []),
        "disk_size_gb": config.get("diskSizeGb"),
        "disk_type": config.get("diskType"),
        "service_account": config.get("serviceAccount") or "default",
    }


def comparable(wanted: dict, actual: dict) -> tuple[dict, dict]:
    """wanted and actual reduced to what is compared.

    autoscaling: only the keys the user's setting has; node_count: only when the pool does not
    autoscale (as wanted, else as it is), since the autoscaler owns the size then.
    """
    wanted = dict(wanted)
    actual = dict(actual)
    full = actual.get("autoscaling") or {}
    if wanted.get("autoscaling") is not None:
        actual["autoscaling"] = {k: full.get(k) for k in wanted["autoscaling"]}
        autoscaled = wanted["autoscaling"]["enabled"]
    else:
        autoscaled = bool(full.get("enabled"))
    if autoscaled:
        wanted["node_count"] = None
    return wanted, actual


def plan(wanted: dict, actual: dict) -> tuple[list[str], list[str], dict]:
    """(differing keys, the immutable ones among them, the --diff) of a comparison."""
    wanted, actual = comparable(wanted, actual)
    keys = differences(wanted, actual)
    immutable = [k for k in keys if k in IMMUTABLE]
    return keys, immutable, diff_of(keys, wanted, actual)


def api_autoscaling(view: dict) -> dict:
    if not view.get("enabled"):
        return {"enabled": False}
    body = {
        "enabled": True,
        "minNodeCount": view.get("min_nodes") or 0,
        "maxNodeCount": view["max_nodes"],
    }
    if view.get("location_policy"):
        body["locationPolicy"] = view["location_policy"]
    return body


def api_taints(taints: list[dict]) -> list[dict]:
    return [{"key": t["key"], "value": t.get("value") or "", "effect": t["effect"]} for t in taints]


def build_create_body(request: PoolRequest) -> dict:
    """The NodePool create request; single-host slices send no placementPolicy.tpuTopology."""
    params = request.params
    config: dict = {"machineType": request.tpu.machine_type}
    if params.get("labels"):
        config["labels"] = labels_of(params["labels"])
    if params.get("taints"):
        config["taints"] = api_taints(params["taints"])
    if params.get("spot"):
        config["spot"] = True
    for option, key in (
        ("disk_size_gb", "diskSizeGb"),
        ("disk_type", "diskType"),
        ("service_account", "serviceAccount"),
    ):
        if params.get(option) is not None:
            config[key] = params[option]
    pool: dict = {"name": request.name, "config": config, "initialNodeCount": request.node_count}
    if params.get("node_locations"):
        pool["locations"] = list(params["node_locations"])
    if request.autoscaling_enabled:
        pool["autoscaling"] = api_autoscaling(_autoscaling_view(request.autoscaling))
    if request.tpu.multi_host:
        pool["placementPolicy"] = {"type": "COMPACT", "tpuTopology": request.tpu.api_tpu_topology}
    return {"nodePool": pool}


def create_view(request: PoolRequest) -> dict:
    """The --diff 'after' of a create: what the new pool will be, in user-facing terms."""
    view = {k: v for k, v in wanted_fields(request).items() if v is not None}
    view["node_count"] = request.node_count
    view.setdefault("autoscaling", {"enabled": False})
    return view


def update_requests(
    keys: list[str], wanted: dict, path: str, pool: dict | None = None
) -> list[tuple[str, str, str, dict]]:
    """(field, method, path, body) of the calls that change the updatable keys, in order.

    UpdateNodePoolRequest documents ``nodeVersion`` and ``imageType`` as required: each PUT
    carries the pool's current ``version`` and ``config.imageType`` (never ``-``, which
    upgrades the nodes to the control plane's version)."""
    current = {}
    if pool is not None:
        current = {
            "nodeVersion": pool.get("version"),
            "imageType": (pool.get("config") or {}).get("imageType"),
        }
        missing = [k for k, v in current.items() if not v]
        if missing:
            raise NodePoolError(
                f"Node pool {pool.get('name')} has no {' or '.join(missing)} in GKE's answer, "
                "and an update must repeat them (UpdateNodePoolRequest). Run again; if it "
                "persists, update the pool with gcloud.",
                node_pool=pool,
            )
    calls = []
    for key in UPDATE_ORDER:
        if key not in keys:
            continue
        value = wanted[key]
        if key == "labels":
            calls.append((key, "PUT", path, {**current, "labels": {"labels": value}}))
        elif key == "taints":
            calls.append((key, "PUT", path, {**current, "taints": {"taints": api_taints(value)}}))
        elif key == "node_locations":
            calls.append((key, "PUT", path, {**current, "locations": list(value)}))
        elif key == "autoscaling":
            calls.append(
                (key, "POST", f"{path}:setAutoscaling", {"autoscaling": api_autoscaling(value)})
            )
        elif key == "node_count":
            calls.append((key, "POST", f"{path}:setSize", {"nodeCount": value}))
    return calls


def status_failure(pool: dict, location: str | None = None) -> NodePoolError | None:
    """The error for a pool in ERROR or RUNNING_WITH_ERROR, with what to do; else None."""
    status = pool.get("status")
    if status not in FAILED_STATUSES:
        return None
    message = conditions_text(pool) or "GKE gave no condition"
    hint = hint_for(None, None, message, location=location)
    if not hint:
        hint = (
            "Look at the pool's Operations (gcloud container operations list) for the cause."
            if status == "ERROR"
            else "Some of the pool's nodes could not be created or repaired; look at the "
            "pool's Operations (gcloud container operations list) for the cause."
        )
    return NodePoolError(
        f"Node pool {pool.get('name')} is {status}: {message} {hint} Once the cause is fixed, "
        "delete the pool (state: absent) and run again.",
        status=status,
        node_pool=pool,
    )


def max_chips_of(
    pool: dict | None, request: PoolRequest | None, tpu: TpuSlice | None, sizes: dict | None
) -> int | None:
    """Chips the pool may hold at most: max nodes per zone x zones x chips per node (without
    autoscaling: the nodes it has)."""
    if tpu is None:
        return None
    if pool is not None:
        autoscaling = pool.get("autoscaling") or {}
        zones = len(pool.get("locations") or []) or 1
        if autoscaling.get("enabled"):
            return int(autoscaling.get("maxNodeCount") or 0) * zones * tpu.chips_per_node
        if sizes:
            return sum(sizes.values()) * tpu.chips_per_node
        return int(pool.get("initialNodeCount") or 0) * zones * tpu.chips_per_node
    if request is None:
        return None
    zones = len(request.params.get("node_locations") or []) or 1
    per_zone = (
        request.autoscaling["max_nodes"] if request.autoscaling_enabled else request.node_count
    )
    return per_zone * zones * tpu.chips_per_node


# --------------------------------------------------------------------------- the run
class NodePoolRunner:
    """One module run; see the module docstring for the protocol."""

    def __init__(self, params: dict, client, check_mode: bool = False, warn=None) -> None:
        self.params = params
        self.request = validate(params)  # before anything talks to the API
        self.client = client() if callable(client) else client
        self.check_mode = check_mode
        self.warn = warn or (lambda _msg: None)
        project = self.client.project
        if not project:
            raise NodePoolError(
                "The GCP project is unknown: set project (or GCP_PROJECT), or use credentials "
                "that name one."
            )
        self.project = project
        self.location = params["location"]
        self.cluster_path = (
            f"projects/{project}/locations/{self.location}/clusters/{params['cluster']}"
        )
        self.path = f"{self.cluster_path}/nodePools/{params['name']}"
        self.wait = bool(params.get("wait", True))
        self.waiter = OperationWaiter(self.client, params)
        self.mutated = False
        self.adopted = False
        self.diff: dict | None = None
        self.started: dict | None = None  # the last Operation this run started
        self.sizes: dict | None = None
        self.pool_sizes = PoolSizes(self.client)

    # ----------------------------------------------------------------- helpers
    def run(self) -> dict:
        try:
            if self.params["state"] == "absent":
                return self.absent()
            return self.present()
        except Pending as exc:
            return self.pending(exc)

    def settle(self) -> None:
        """Wait for the Operations already running on the pool (never in check mode)."""
        if self.check_mode:
            return
        self.waiter.wait_all(self.waiter.running_on(self.project, self.location, self.path))

    def read(self) -> dict | None:
        return self.client.get_or_none(self.path)

    def read_sizes(self, pool: dict) -> dict | None:
        """{zone: targetSize} from the pool's instance group managers, None when unknown."""
        sizes, reason = self.pool_sizes.read(pool)
        if sizes is None and pool.get("status") not in ("PROVISIONING", "STOPPING"):
            self.warn(
                f"Could not read the size of node pool {pool.get('name')} from Compute Engine "
                f"({reason}); node_count is compared with the pool's initialNodeCount instead. "
                "Grant compute.instanceGroupManagers.get to see the current size."
            )
        return sizes

    def result(self, pool: dict | None, changed: bool, **extra) -> dict:
        tpu = (pool_slice(pool) if pool else None) or (self.request.tpu if self.request else None)
        sizes = self.sizes if pool is not None else None
        nodes = sum(sizes.values()) if sizes else None
        answer = dict(
            changed=changed,
            adopted=self.adopted,
            pending=False,
            node_pool=pool,
            status=pool.get("status") if pool else None,
            chips_per_node=tpu.chips_per_node if tpu else None,
            nodes=nodes,
            total_chips=nodes * tpu.chips_per_node if tpu and nodes is not None else None,
            max_chips=max_chips_of(pool, self.request, tpu, sizes),
            slice=tpu.as_dict() if tpu else None,
            operation=operation_summary(self.waiter.last or self.started),
            waited_seconds=round(self.waiter.waited, 1),
        )
        if self.diff is not None:
            answer["diff"] = self.diff
        answer.update(extra)
        return answer

    def pending(self, exc: Pending) -> dict:
        answer = dict(
            changed=self.mutated,
            adopted=self.adopted,
            pending=True,
            operation=operation_summary(exc.operation),
            elapsed=round(exc.elapsed, 1),
            waited_seconds=round(self.waiter.waited, 1),
        )
        if self.diff is not None:
            answer["diff"] = self.diff
        return answer

    def start(self, method: str, path: str, body: dict | None = None) -> dict:
        operation = self.waiter.send(
            method, path, body, project=self.project, location=self.location, wait=self.wait
        )
        self.mutated = True
        self.started = operation
        self.waiter.last = operation
        return operation

    def finish(self, changed: bool, pool: dict | None = None, **extra) -> dict:
        """Read the pool again (unless given), fail on a failed status, and answer."""
        if pool is None:
            pool = self.read()
            self.sizes = None
        if pool is not None and (self.wait or self.check_mode):
            failure = status_failure(pool, self.location)
            if failure is not None:
                failure.details["changed"] = changed
                if self.diff is not None:
                    failure.details["diff"] = self.diff
                raise failure
        if pool is not None and self.sizes is None:
            self.sizes = self.read_sizes(pool)
        return self.result(pool, changed, **extra)

    # ----------------------------------------------------------------- present
    def present(self) -> dict:
        if self.wait:
            self.settle()
        pool = self.read()
        if pool is None:
            return self.create()
        return self.reconcile(pool)

    def create(self) -> dict:
        self.diff = {"before": {}, "after": create_view(self.request)}
        if self.check_mode:
            return self.result(None, True)
        try:
            operation = self.start(
                "POST", f"{self.cluster_path}/nodePools", build_create_body(self.request)
            )
        except GcpApiError as exc:
            if exc.status != 409:
                raise
            return self.adopt(exc)
        if self.wait:
            self.waiter.wait(operation)
        return self.finish(True)

    def adopt(self, conflict: GcpApiError) -> dict:
        """409 on create: adopt the pool that exists if it is what was asked for."""
        pool = self.read()
        if pool is None:
            raise conflict
        self.sizes = self.read_sizes(pool)
        keys, _immutable, diff = plan(wanted_fields(self.request), actual_fields(pool, self.sizes))
        if keys:
            raise NodePoolError(
                f"Node pool {self.params['name']} already exists in cluster "
                f"{self.params['cluster']} (created by someone else meanwhile) and differs from "
                f"the request in: {', '.join(keys)}. Align the options with the existing pool, "
                "or delete it (state: absent) first.",
                differences=keys,
                diff=diff,
                node_pool=pool,
            )
        self.adopted = True
        self.diff = None
        if self.wait:
            self.settle()
        return self.finish(False, None if self.wait else pool)

    def reconcile(self, pool: dict) -> dict:
        wanted = wanted_fields(self.request)
        compare_size = comparable(wanted, actual_fields(pool))[0]["node_count"] is not None
        if compare_size:
            self.sizes = self.read_sizes(pool)
        keys, immutable, diff = plan(wanted, actual_fields(pool, self.sizes))
        if not keys:
            return self.finish(False, pool)
        if immutable and not self.params.get("allow_recreate"):
            shown = ", ".join(
                f"{k} ({diff['before'][k]!r} -> {diff['after'][k]!r})" for k in immutable
            )
            raise NodePoolError(
                f"Node pool {self.params['name']} differs in fields GKE cannot change in place: "
                f"{shown}. Nothing was changed. Put back the current values, or set "
                "allow_recreate: true to delete and recreate the pool (its nodes and the pods "
                "on them go away).",
                immutable=immutable,
                differences=keys,
                diff=diff,
                node_pool=pool,
            )
        self.diff = diff
        if self.check_mode:
            return self.result(pool, True, recreate=bool(immutable))
        failure = status_failure(pool, self.location)
        if failure is not None and not immutable:
            raise failure
        if immutable:
            return self.recreate()
        for _key, method, path, body in update_requests(keys, wanted, self.path, pool):
            if not self.wait and self.mutated:
                self.settle()  # GKE runs one Operation at a time on a cluster
            operation = self.start(method, path, body)
            if self.wait:
                self.waiter.wait(operation)
        return self.finish(True)

    def recreate(self) -> dict:
        """Delete the pool, wait for it to go, create it again."""
        self.waiter.wait(self.start("DELETE", self.path))
        operation = self.start(
            "POST", f"{self.cluster_path}/nodePools", build_create_body(self.request)
        )
        if self.wait:
            self.waiter.wait(operation)
        return self.finish(True, recreated=True)

    # ----------------------------------------------------------------- absent
    def absent(self) -> dict:
        if self.wait:
            self.settle()
        pool = self.read()
        if pool is None:
            return self.result(None, False)
        self.diff = {"before": actual_fields(pool), "after": {}}
        if self.check_mode:
            return self.result(pool, True)
        if pool.get("status") == "STOPPING" and not self.wait:
            return self.result(pool, False)
        try:
            operation = self.start("DELETE", self.path)
        except GcpApiError as exc:
            if exc.status == 404:
                self.diff = None
                return self.result(None, False)
            raise
        if not self.wait:
            return self.result(self.read(), True)
        self.waiter.wait(operation)
        gone = self.read()
        if gone is not None:
            raise NodePoolError(
                f"Node pool {self.params['name']} still exists ({gone.get('status')}) after its "
                "delete Operation finished; run again.",
                changed=True,
                node_pool=gone,
            )
        return self.result(None, True)
