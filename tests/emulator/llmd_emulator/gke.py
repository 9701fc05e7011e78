"""GKE REST API v1 stand-in (container.googleapis.com): clusters, node pools, operations, Nodes.

Mutations return long-running Operations that finish after emulated durations (config
``gke.durations``, seconds by operationType, see DURATIONS). One mutation at a time per cluster,
as GKE does. Running node pools materialise as core/v1 Nodes in the store with GKE's labels,
taints and capacity; a cluster's ``endpoint`` and CA point at the emulated Kubernetes API.
The site also serves the Compute and Cloud Quotas stand-ins; every request needs a Bearer token.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import json
import logging
import math
import re
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web

from . import compute, discovery, quotas
from .controllers.base import container_requests
from .controllers.scheduler import BASIC_RESOURCES, node_misfit
from .faults import (
    GRPC_CODES,
    GRPC_NAMES,
    ApiError,
    Fault,
    FaultRegistry,
    add_admin_routes,
    rpc_status,
)

if TYPE_CHECKING:
    from .core import Emulator

log = logging.getLogger("llmd_emulator.gke")

Obj = dict[str, Any]

DURATIONS = {  # emulated seconds
    "CREATE_CLUSTER": 300,
    "DELETE_CLUSTER": 120,
    "UPDATE_CLUSTER": 30,
    "UPGRADE_MASTER": 300,
    "CREATE_NODE_POOL": 90,
    "CREATE_TPU_NODE_POOL": 240,
    "DELETE_NODE_POOL": 120,
    "SET_NODE_POOL_SIZE": 30,
    "UPGRADE_NODES": 120,
    "SET_NODE_POOL_MANAGEMENT": 5,
    "AUTOSCALE_UP": 60,  # cluster-autoscaler: pending pod -> new Node
    "AUTOSCALE_DOWN": 600,  # an empty Node is removed after this long
    # Scenario gke-tpu-stockout: the TPU pool create meets GCE_STOCKOUT after STOCKOUT_ONSET and
    # GKE keeps retrying (RUNNING, cluster locked) until STOCKOUT_GIVE_UP, then fails it.
    "STOCKOUT_ONSET": 30,
    "STOCKOUT_GIVE_UP": 2700,
}
STOCKOUT_SCENARIO = "gke-tpu-stockout"
VERSIONS = {
    "1.32": "1.32.9-gke.1108000",
    "1.33": "1.33.5-gke.1201000",
    "1.34": "1.34.1-gke.1829001",
}
DEFAULT_VERSION = "1.34"
NAME_RE = re.compile(r"^[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?$")
TOPOLOGY_RE = re.compile(r"^\d+(x\d+){1,2}$")
TAINT_EFFECTS = {
    "NO_SCHEDULE": "NoSchedule",
    "PREFER_NO_SCHEDULE": "PreferNoSchedule",
    "NO_EXECUTE": "NoExecute",
}
TPU_TAINT = {"key": "google.com/tpu", "value": "present", "effect": "NoSchedule"}
TPU_RESOURCE = "google.com/tpu"
MISSING_AUTH = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential."
)
STOCKOUT = (
    'The zone "projects/{project}/zones/{zone}" does not have enough resources available to '
    "fulfill the request. Try a different zone, or try again later."
)
# What a node pool create that meets a stock-out says while GKE retries, and in the end
# (the wording of real GKE answers, e.g. GoogleCloudPlatform/cluster-toolkit PR 6278).
IGM_STOCKOUT = (
    "Google Compute Engine: Not all instances running in IGM after {elapsed}. Expected {size}, "
    "running 0, transitioning {size}. Current errors: [GCE_STOCKOUT]: Instance '{instance}' "
    "creation failed: The zone 'projects/{project}/zones/{zone}' does not have enough resources "
    "available to fulfill the request.  '(resource type:compute)'."
)
# "Operation X is currently <verb> cluster C. ..." (the wordings seen in answers quoted in
# hashicorp/terraform-provider-google issues 3650 and 10366, prometheus/test-infra PR 84).
_VERBS = {
    "CREATE_CLUSTER": "creating",
    "DELETE_CLUSTER": "deleting",
    "UPDATE_CLUSTER": "updating",
    "UPGRADE_MASTER": "upgrading",
    "CREATE_NODE_POOL": "creating a node pool for",
    "DELETE_NODE_POOL": "deleting a node pool for",
}
_UPDATE_NODE_POOL_FIELDS = {
    "projectId", "zone", "clusterId", "nodePoolId", "name", "nodeVersion", "imageType",
    "locations", "workloadMetadataConfig", "upgradeSettings", "tags", "taints", "labels",
    "linuxNodeConfig", "kubeletConfig", "nodeNetworkConfig", "gcfsConfig", "confidentialNodes",
    "gvnic", "etag", "fastSocket", "loggingConfig", "resourceLabels", "windowsNodeConfig",
    "accelerators", "machineType", "diskType", "diskSizeGb", "resourceManagerTags",
    "containerdConfig", "queuedProvisioning", "storagePools", "maxRunDuration", "flexStart",
    "bootDisk",
}  # fmt: skip
_POOL_CONFIG_UPDATES = {
    "imageType",
    "machineType",
    "diskType",
    "diskSizeGb",
    "labels",
    "taints",
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _invalid(message: str) -> ApiError:
    return ApiError(400, message, "INVALID_ARGUMENT")


def _check_fields(body: Obj, allowed: set[str], schema: str | None = None) -> None:
    """Google's JSON parser rejects unknown request fields: the whole body is checked against
    the request schema of Google's discovery document when the package that ships it is
    installed (see discovery.py), else only the top-level names against ``allowed``."""
    if schema and discovery.available():
        try:
            discovery.check_request("container", schema, body)
        except discovery.SchemaError as exc:
            raise _invalid(str(exc)) from None
        return
    for name in body:
        if name not in allowed:
            raise _invalid(
                f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'
            )


def project_number(project: str, numbers: dict | None = None) -> str:
    """The project NUMBER GKE writes into Operation links: ``numbers`` (config
    ``gke.project_numbers``, {project id: number}), else a stable 12-digit number derived from
    the id."""
    if numbers and numbers.get(project):
        return str(numbers[project])
    digest = int(hashlib.sha256(project.encode()).hexdigest(), 16)
    return str(100_000_000_000 + digest % 899_999_999_999)


def location_segment(location: str) -> str:
    """``zones/<zone>`` for a zonal resource, ``locations/<region>`` for a regional one: the
    form of GKE's Operation selfLink/targetLink."""
    kind = "zones" if compute.ZONE_RE.match(location) else "locations"
    return f"{kind}/{location}"


def status_conditions(message: str | None) -> list[Obj]:
    """StatusConditions (``conditions`` of a Cluster or NodePool) for a status message: GKE
    explains a state there; ``statusMessage`` is deprecated in favour of them."""
    if not message:
        return []
    stockout = "does not have enough resources" in message or "GCE_STOCKOUT" in message
    condition = {
        "message": message,
        "canonicalCode": "RESOURCE_EXHAUSTED" if stockout else "UNKNOWN",
    }
    if stockout:
        condition["code"] = "GCE_STOCKOUT"
    return [condition]


def resolve_version(wanted: str | None) -> str:
    """A GKE version for "1.34", "latest", "-", "" or a full version string."""
    if not wanted or wanted in ("-", "latest"):
        return VERSIONS[DEFAULT_VERSION]
    if wanted in VERSIONS.values():
        return wanted
    minor = ".".join(wanted.split(".")[:2])
    if minor in VERSIONS and re.match(r"^\d+\.\d+(\.\d+)?$", wanted):
        return VERSIONS[minor]
    raise _invalid(f'Master version "{wanted}" is unsupported.')


# --------------------------------------------------------------------------- state
@dataclass
class Tpu:
    accelerator: str
    topology: str
    chips_per_vm: int
    vms: int  # VMs per slice; > 1 for a multi-host slice


@dataclass
class NodePool:
    resource: Obj  # the GKE NodePool fields (without selfLink/status/instanceGroupUrls)
    size: int  # nodes per zone
    tpu: Tpu | None
    status: str = "PROVISIONING"
    status_message: str = ""
    nodes: dict[str, list[str]] = field(default_factory=dict)  # zone -> node names
    generation: int = 0  # bumped when Nodes are recreated (machine type change)
    scaling: bool = False  # a cluster-autoscaler scale-up is under way
    idle_since: dict[str, float] = field(default_factory=dict)  # node -> emulated time
    conditions: list[Obj] = field(default_factory=list)  # NodePool.conditions (StatusCondition)

    @property
    def name(self) -> str:
        return self.resource["name"]


@dataclass
class Cluster:
    project: str
    location: str
    base: str  # URL prefix for selfLinks
    resource: Obj
    pools: dict[str, NodePool] = field(default_factory=dict)
    busy: Operation | None = None

    @property
    def name(self) -> str:
        return self.resource["name"]

    @property
    def path(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/clusters/{self.name}"


@dataclass
class Operation:
    name: str
    op_type: str
    project: str
    location: str
    base: str
    target: str  # resource path, e.g. projects/p/locations/l/clusters/c/nodePools/np
    fault: Fault | None
    number: str = ""  # the project number of the links ("" = the project id)
    status: str = "PENDING"
    start_time: str = field(default_factory=_now)
    end_time: str | None = None
    error: Obj | None = None
    detail: str | None = None  # what GKE is doing or meeting (a stock-out) while it runs
    conditions: list[Obj] = field(default_factory=list)  # StatusConditions while it runs
    started: float = 0.0  # emulated time of the start
    stockout: Any = None  # the NodePool whose create meets GCE_STOCKOUT (scenario)
    seconds: float = 0.0  # emulated duration, for progress
    # Set by the admin test control POST /gke/operations/release: the duration ends now.
    released: asyncio.Event = field(default_factory=asyncio.Event, repr=False, compare=False)

    def link(self, path: str) -> str:
        """A link as GKE writes it: project number, zones/<zone> or locations/<region>."""
        rest = path.split("/", 4)[4] if path.startswith("projects/") else path
        where = location_segment(self.location)
        return f"{self.base}/v1/projects/{self.number or self.project}/{where}/{rest}"

    def to_json(self, now: float | None = None) -> Obj:
        """The Operation as GKE answers it; ``now`` (emulated s) adds ``progress``."""
        data: Obj = {
            "name": self.name,
            "zone": self.location,
            "location": self.location,
            "operationType": self.op_type,
            "status": self.status,
            "selfLink": self.link(f"operations/{self.name}"),
            "targetLink": self.link(self.target),
            "startTime": self.start_time,
        }
        if self.status == "RUNNING" and self.seconds > 0 and now is not None:
            emulated = now - self.started
            data["progress"] = {
                "metrics": [
                    {"name": "progress", "doubleValue": round(min(emulated / self.seconds, 1), 3)},
                    {"name": "progress scale", "doubleValue": 1.0},
                ]
            }
        if self.detail:
            data["detail"] = data["statusMessage"] = self.detail
        key = "nodepoolConditions" if "/nodePools/" in self.target else "clusterConditions"
        if self.conditions:
            data[key] = copy.deepcopy(self.conditions)
        if self.end_time:
            data["endTime"] = self.end_time
        if self.error:
            data["error"] = self.error
            data["statusMessage"] = self.error["message"]
        return data

    def busy_message(self) -> str:
        """GKE's two wordings of "another Operation holds the cluster" (400
        FAILED_PRECONDITION): cluster Operations and node pool creates/deletes name their verb
        and the cluster; other node pool Operations, and a create that GKE keeps retrying
        through a stock-out, are an "incompatible operation" (rancher/gke-operator PR 509
        quotes one during a node pool update)."""
        verb = _VERBS.get(self.op_type)
        if verb is None or self.stockout is not None:
            return f"Cluster is running incompatible operation {self.name}."
        cluster = self.target.split("/")[5]
        return (
            f"Operation {self.name} is currently {verb} cluster {cluster}. Please wait and try "
            "again once it is done."
        )


# --------------------------------------------------------------------------- nodes
def _reserved_cpu_millis(cores: int) -> int:
    """GKE's CPU reservation: 6% of the first core, 1% of the next, 0.5% of 2 more, 0.25% above."""
    reserved, left = 0.0, float(cores)
    for size, share in ((1, 60), (1, 10), (2, 5), (math.inf, 2.5)):
        take = min(left, size)
        reserved += take * share
        left -= take
    return int(reserved)


def _reserved_memory_mib(memory_mib: int) -> int:
    """GKE's memory reservation (25/20/10/6/2 % tiers) plus the 100 MiB eviction threshold."""
    reserved, left = 0.0, float(memory_mib)
    for size, share in (
        (4096, 0.25),
        (4096, 0.2),
        (8192, 0.1),
        (114688, 0.06),
        (math.inf, 0.02),
    ):
        take = min(left, size)
        reserved += take * share
        left -= take
    return int(reserved) + 100


def _node_name(cluster: Cluster, pool: NodePool, zone: str, index: int) -> str:
    group = zlib.crc32(f"{cluster.path}/{pool.name}/{zone}".encode())
    suffix = hashlib.sha1(f"{group}/{pool.generation}/{index}".encode()).hexdigest()[:4]
    return f"gke-{cluster.name[:18]}-{pool.name[:18]}-{group:08x}-{suffix}"


def _user_taints(pool: NodePool) -> list[Obj]:
    return [
        {
            "key": t["key"],
            "value": t.get("value", ""),
            "effect": TAINT_EFFECTS.get(t.get("effect", ""), t.get("effect")),
        }
        for t in pool.resource["config"].get("taints") or []
    ]


def _managed_taints(pool: NodePool) -> list[Obj]:
    return ([dict(TPU_TAINT)] if pool.tpu else []) + _user_taints(pool)


def _managed_labels(cluster: Cluster, pool: NodePool, zone: str, name: str) -> dict[str, str]:
    machine = pool.resource["config"]["machineType"]
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": machine,
        "beta.kubernetes.io/os": "linux",
        "cloud.google.com/gke-boot-disk": pool.resource["config"]["diskType"],
        "cloud.google.com/gke-container-runtime": "containerd",
        "cloud.google.com/gke-nodepool": pool.name,
        "cloud.google.com/gke-os-distribution": "cos",
        "cloud.google.com/machine-family": compute.machine_family(machine),
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": machine,
        "topology.kubernetes.io/region": compute.region_of(zone),
        "topology.kubernetes.io/zone": zone,
    }
    if pool.tpu:
        labels["cloud.google.com/gke-tpu-accelerator"] = pool.tpu.accelerator
        labels["cloud.google.com/gke-tpu-topology"] = pool.tpu.topology
    labels.update(pool.resource["config"].get("labels") or {})
    return labels


def build_node(emu: Emulator, cluster: Cluster, pool: NodePool, zone: str, name: str) -> Obj:
    """A core/v1 Node as a GKE VM of the pool registers it."""
    spec = compute.machine_types(emu)[pool.resource["config"]["machineType"]]
    cpus, memory_mib = spec["guestCpus"], spec["memoryMb"]
    capacity = {
        "cpu": str(cpus),
        "ephemeral-storage": "98831908Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": f"{memory_mib * 1024}Ki",
        "pods": pool.resource["maxPodsConstraint"]["maxPodsPerNode"],
    }
    allocatable = dict(
        capacity,
        cpu=f"{cpus * 1000 - _reserved_cpu_millis(cpus)}m",
        memory=f"{(memory_mib - _reserved_memory_mib(memory_mib)) * 1024}Ki",
        **{"ephemeral-storage": "47060071478"},
    )
    if pool.tpu:
        capacity[TPU_RESOURCE] = allocatable[TPU_RESOURCE] = str(pool.tpu.chips_per_vm)
    ip = 2 + zlib.crc32(name.encode()) % 60000
    internal_ip = f"10.{128 + ip // 65536}.{ip // 256 % 256}.{ip % 256}"
    now = _now().split(".")[0] + "Z"
    version = pool.resource["version"]
    conditions = [
        (t, "False", reason, message)
        for t, reason, message in (
            (
                "MemoryPressure",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory",
            ),
            (
                "DiskPressure",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            ),
            (
                "PIDPressure",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
        )
    ] + [("Ready", "True", "KubeletReady", "kubelet is posting ready status")]
    node: Obj = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": _managed_labels(cluster, pool, zone, name),
            "annotations": {
                "container.googleapis.com/instance_id": str(zlib.crc32(name.encode()) * 7919),
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {
            "providerID": f"gce://{cluster.project}/{zone}/{name}",
            "podCIDR": f"10.{64 + ip // 65536}.{ip // 256 % 256}.0/24",
        },
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": [
                {
                    "type": t,
                    "status": s,
                    "reason": r,
                    "message": m,
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
                for t, s, r, m in conditions
            ],
            "addresses": [
                {"type": "InternalIP", "address": internal_ip},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
                "containerRuntimeVersion": "containerd://2.0.6",
                "kernelVersion": "6.6.97+",
                "kubeProxyVersion": f"v{version}",
                "kubeletVersion": f"v{version}",
                "machineID": hashlib.md5(name.encode()).hexdigest(),
                "operatingSystem": "linux",
                "osImage": "Container-Optimized OS from Google",
                "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
            },
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        },
    }
    node["spec"]["podCIDRs"] = [node["spec"]["podCIDR"]]
    taints = _managed_taints(pool)
    if taints:
        node["spec"]["taints"] = taints
    return node


# --------------------------------------------------------------------------- service
class Gke:
    """In-memory GKE control plane bound to one Emulator."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.faults = FaultRegistry()
        self.clusters: dict[tuple[str, str, str], Cluster] = {}
        self.operations: dict[str, Operation] = {}

    # ----------------------------------------------------------------- helpers
    def project_id(self, segment: str) -> str:
        """The project id for a path segment that is the id or the project number."""
        if not segment.isdigit():
            return segment
        known = {c.project for c in self.clusters.values()} | {
            op.project for op in self.operations.values()
        }
        known |= set(compute.gke_settings(self.emu).get("project_numbers") or {})
        for project in known:
            if self.number_of(project) == segment:
                return project
        return segment

    def number_of(self, project: str) -> str:
        return project_number(project, compute.gke_settings(self.emu).get("project_numbers"))

    def duration(self, key: str) -> float:
        configured = compute.gke_settings(self.emu).get("durations") or {}
        return float(configured.get(key, DURATIONS[key]))

    def cluster(self, project: str, location: str, name: str) -> Cluster:
        found = self.clusters.get((project, location, name))
        if found is None:
            raise ApiError(
                404,
                f"Not found: projects/{project}/locations/{location}/clusters/{name}.",
            )
        return found

    def pool(self, cluster: Cluster, name: str) -> NodePool:
        found = cluster.pools.get(name)
        if found is None:
            raise ApiError(404, f"Not found: {cluster.path}/nodePools/{name}.")
        return found

    @staticmethod
    def check_idle(cluster: Cluster) -> None:
        if cluster.busy is not None:
            raise ApiError(400, cluster.busy.busy_message(), "FAILED_PRECONDITION")

    def cluster_json(self, cluster: Cluster) -> Obj:
        data = copy.deepcopy(cluster.resource)
        data["selfLink"] = f"{cluster.base}/v1/{cluster.path}"
        data["nodePools"] = [self.pool_json(cluster, p) for p in cluster.pools.values()]
        conditions = status_conditions(data.get("statusMessage"))
        if conditions:
            data["conditions"] = conditions
        data["currentNodeCount"] = sum(
            len(names) for p in cluster.pools.values() for names in p.nodes.values()
        )
        versions = sorted(p.resource["version"] for p in cluster.pools.values())
        data["currentNodeVersion"] = versions[0] if versions else data["currentMasterVersion"]
        return data

    def pool_json(self, cluster: Cluster, pool: NodePool) -> Obj:
        data = copy.deepcopy(pool.resource)
        data["selfLink"] = f"{cluster.base}/v1/{cluster.path}/nodePools/{pool.name}"
        data["status"] = pool.status
        if pool.status_message:
            data["statusMessage"] = pool.status_message  # deprecated, still answered
        conditions = pool.conditions or status_conditions(pool.status_message)
        if conditions:
            data["conditions"] = copy.deepcopy(conditions)
        group = f"{cluster.base}/compute/v1/projects/{cluster.project}/zones"
        data["instanceGroupUrls"] = [
            f"{group}/{zone}/instanceGroupManagers/{_group_name(cluster, pool, zone)}"
            for zone in pool.resource["locations"]
        ]
        return data

    def instance_group_manager(self, base: str, project: str, zone: str, name: str) -> Obj:
        """The Compute instance group manager behind a pool's zone (the pool's instanceGroupUrls):
        NodePool has no current size field, clients read targetSize here (as Terraform does)."""
        for cluster in self.clusters.values():
            for pool in cluster.pools.values():
                if (
                    cluster.project == project
                    and zone in pool.resource["locations"]
                    and _group_name(cluster, pool, zone) == name
                ):
                    link = f"{base}/compute/v1/projects/{project}/zones/{zone}"
                    return {
                        "kind": "compute#instanceGroupManager",
                        "name": name,
                        "zone": link,
                        "baseInstanceName": name.removesuffix("-grp"),
                        "instanceGroup": f"{link}/instanceGroups/{name}",
                        "targetSize": pool.size,
                        "selfLink": f"{link}/instanceGroupManagers/{name}",
                    }
        raise ApiError(
            404,
            f"The resource 'projects/{project}/zones/{zone}/instanceGroupManagers/{name}' "
            "was not found",
        )

    # ----------------------------------------------------------------- validation
    def build_pool(self, spec: Any, cluster_locations: list[str], version: str) -> NodePool:
        """Validate a NodePool as GKE does and fill in its defaults."""
        if not isinstance(spec, dict):
            raise _invalid("Node pool is required.")
        resource = copy.deepcopy(spec)
        name = resource.get("name") or ""
        if not NAME_RE.match(name):
            raise _invalid(
                f'Invalid node pool name "{name}": must match '
                "(?:[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?)."
            )
        config = resource.setdefault("config", {})
        config.setdefault("machineType", "e2-medium")
        config.setdefault("diskSizeGb", 100)
        config.setdefault("diskType", "pd-balanced")
        config.setdefault("imageType", "COS_CONTAINERD")
        config.setdefault("serviceAccount", "default")
        config.setdefault("metadata", {"disable-legacy-endpoints": "true"})
        config.setdefault("oauthScopes", ["https://www.googleapis.com/auth/cloud-platform"])
        locations = resource.setdefault("locations", list(cluster_locations))
        self.check_locations(locations, cluster_locations[0])
        machine = config["machineType"]
        for zone in locations:
            if compute.machine_type(self.emu, machine, zone) is None:
                raise _invalid(f'Machine type "{machine}" is not available in zone "{zone}".')
        self.check_taints(config.get("taints") or [])
        count = resource.setdefault("initialNodeCount", 0)
        if not isinstance(count, int) or count < 0:
            raise _invalid("Node pool initialNodeCount must be a non-negative integer.")
        self.check_autoscaling(resource.get("autoscaling"))
        tpu = self.tpu_of(machine, resource, count)
        resource["version"] = resolve_version(resource.get("version") or version)
        resource.setdefault("management", {"autoUpgrade": True, "autoRepair": True})
        resource.setdefault("maxPodsConstraint", {"maxPodsPerNode": "110"})
        resource.setdefault("podIpv4CidrSize", 24)
        resource.setdefault("upgradeSettings", {"maxSurge": 1, "strategy": "SURGE"})
        resource["etag"] = uuid.uuid4().hex[:16]
        return NodePool(resource=resource, size=count, tpu=tpu)

    def tpu_of(self, machine: str, resource: Obj, count: int) -> Tpu | None:
        """TPU slice facts; enforces GKE's single-host / multi-host topology rules."""
        info = compute.machine_types(self.emu)[machine].get("tpu")
        topology = (resource.get("placementPolicy") or {}).get("tpuTopology")
        if info is None:
            if topology:
                raise _invalid(
                    f"TPU topology can only be set for TPU machine types, not {machine}."
                )
            return None
        cpv = info["chipsPerVm"]
        if not topology:
            return Tpu(info["accelerator"], info["topology"], cpv, 1)
        if not TOPOLOGY_RE.match(topology) or topology not in info["topologies"]:
            raise _invalid(f'Invalid TPU topology "{topology}" for machine type {machine}.')
        chips = math.prod(int(d) for d in topology.split("x"))
        if chips <= cpv:
            raise _invalid("TPU topology can't be specified with single-host TPU slice pool")
        if chips % cpv:
            raise _invalid(f"TPU topology {topology} does not fit machine type {machine}.")
        vms = chips // cpv
        if count != vms:
            raise _invalid(
                f"Invalid initialNodeCount {count}: a multi-host TPU slice with topology "
                f"{topology} on {machine} needs exactly {vms} nodes."
            )
        return Tpu(info["accelerator"], topology, cpv, vms)

    @staticmethod
    def check_autoscaling(autoscaling: Any) -> None:
        if not autoscaling or not autoscaling.get("enabled"):
            return
        low, high = (
            autoscaling.get("minNodeCount", 0),
            autoscaling.get("maxNodeCount", 0),
        )
        if low < 0 or high < 1:
            raise _invalid("Autoscaling requires minNodeCount >= 0 and maxNodeCount >= 1.")
        if low > high:
            raise _invalid(
                f"Autoscaling minNodeCount ({low}) must not be greater than maxNodeCount ({high})."
            )

    @staticmethod
    def check_taints(taints: list[Obj]) -> None:
        for taint in taints:
            if not taint.get("key") or taint.get("effect") not in TAINT_EFFECTS:
                raise _invalid(
                    f"Invalid taint {json.dumps(taint)}: key and effect "
                    "(NO_SCHEDULE, PREFER_NO_SCHEDULE or NO_EXECUTE) are required."
                )

    @staticmethod
    def check_locations(locations: Any, any_zone: str) -> None:
        region = compute.region_of(any_zone)
        if not isinstance(locations, list) or not locations:
            raise _invalid("locations must be a non-empty list of zones.")
        for zone in locations:
            if not compute.ZONE_RE.match(zone) or compute.region_of(zone) != region:
                raise _invalid(f'Location "{zone}" is not a zone of region "{region}".')

    # ----------------------------------------------------------------- nodes in the store
    def sync_nodes(self, cluster: Cluster, pool: NodePool) -> None:
        """Make the store's Nodes match the pool's zones and size (status RUNNING*)."""
        running = pool.status in ("RUNNING", "RUNNING_WITH_ERROR", "RECONCILING")
        wanted = set(pool.resource["locations"]) if running else set()
        for zone in list(pool.nodes):
            if zone not in wanted:
                self.remove_nodes(pool.nodes.pop(zone))
        for zone in pool.resource["locations"] if running else []:
            names = pool.nodes.setdefault(zone, [])
            while len(names) > pool.size:
                self.remove_nodes([names.pop()])
            while len(names) < pool.size:
                name = _node_name(cluster, pool, zone, len(names))
                names.append(name)
                if self.emu.store.get("v1", "Node", name) is None:
                    self.emu.store.create(build_node(self.emu, cluster, pool, zone, name))

    def remove_nodes(self, names: list[str]) -> None:
        """Delete Nodes and the pods bound to them (GKE drains a removed VM)."""
        store = self.emu.store
        doomed = set(names)
        for pod in store.list("v1", "Pod"):
            if pod["spec"].get("nodeName") in doomed:
                store.delete("v1", "Pod", pod["metadata"]["name"], pod["metadata"]["namespace"])
        for name in names:
            store.delete("v1", "Node", name)

    def recreate_nodes(self, cluster: Cluster, pool: NodePool) -> None:
        self.remove_nodes([n for names in pool.nodes.values() for n in names])
        pool.nodes.clear()
        pool.generation += 1
        self.sync_nodes(cluster, pool)

    def relabel_nodes(self, cluster: Cluster, pool: NodePool, old_config: Obj) -> None:
        """Apply new pool labels/taints to existing Nodes, keeping what others added."""
        old_labels = set(old_config.get("labels") or {})
        old_taints = {(t["key"], t["effect"]) for t in _managed_taints_of(old_config, pool.tpu)}
        for zone, names in pool.nodes.items():
            for name in names:
                node = self.emu.store.get("v1", "Node", name)
                if node is None:
                    continue
                labels = {
                    k: v
                    for k, v in node["metadata"].get("labels", {}).items()
                    if k not in old_labels
                }
                labels.update(_managed_labels(cluster, pool, zone, name))
                node["metadata"]["labels"] = labels
                taints = [
                    t
                    for t in node["spec"].get("taints") or []
                    if (t["key"], t["effect"]) not in old_taints
                ] + _managed_taints(pool)
                node["spec"]["taints"] = taints
                if not taints:
                    node["spec"].pop("taints")
                self.emu.store.update(node)

    # ----------------------------------------------------------------- operations
    def start(
        self,
        request: web.Request,
        cluster: Cluster,
        *,
        op_type: str,
        target: str,
        seconds: float,
        finish: Callable[[Operation], None],
    ) -> web.Response:
        """Lock the cluster, run finish(op) after the duration, answer the Operation."""
        fault = self.faults.take_operation(request.method, request.path)
        op = Operation(
            name=f"operation-{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}",
            op_type=op_type,
            project=cluster.project,
            location=cluster.location,
            base=cluster.base,
            target=target,
            fault=fault,
            number=self.number_of(cluster.project),
            started=self.emu.clock.now(),
            seconds=seconds,
        )
        self.operations[op.name] = op
        cluster.busy = op
        self.emu.spawn(self.run(op, cluster, seconds, finish))
        return web.json_response(op.to_json(self.emu.clock.now()))

    async def run(
        self,
        op: Operation,
        cluster: Cluster,
        seconds: float,
        finish: Callable[[Operation], None],
    ) -> None:
        try:
            await asyncio.sleep(0)
            op.status = "RUNNING"
            if op.stockout is not None:
                await self.stockout_retries(op, cluster, op.stockout)
                seconds = 0
            await self.hold(op, seconds)
            if op.fault and op.fault.operation_error:
                op.error = self.fault_status(op, op.fault.operation_error)
            finish(op)
        except Exception as exc:  # an emulator bug must not leave the operation running
            log.exception("operation %s failed", op.name)
            op.error = rpc_status(GRPC_CODES["INTERNAL"], f"Internal error: {exc}")
        finally:
            op.status = "DONE"
            op.end_time = _now()
            if cluster.busy is op:
                cluster.busy = None

    async def hold(self, op: Operation, seconds: float) -> None:
        """Wait ``seconds`` emulated, or until a test releases the Operation (admin
        ``POST /gke/operations/release``, a test control: GKE has no such call). A released
        Operation goes on exactly as after its duration; every later wait of it ends at once."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(op.released.wait(), self.emu.clock.real_seconds(seconds))

    def release(self, op_type: str, name: str | None = None) -> list[str]:
        """Release the unfinished Operations of ``op_type`` (and ``name``, when given): they
        finish now as after their duration. Their names; ValueError when none matches."""
        found = [
            op
            for op in self.operations.values()
            if op.op_type == op_type and op.status != "DONE" and name in (None, op.name)
        ]
        if not found:
            wanted = f"{op_type} Operation {name}" if name else f"{op_type} Operation"
            raise ValueError(f"no unfinished {wanted} to release")
        for op in found:
            op.released.set()
        return [op.name for op in found]

    async def stockout_retries(self, op: Operation, cluster: Cluster, pool: NodePool) -> None:
        """GCE_STOCKOUT on a node pool create: after the onset the Operation stays RUNNING with
        the stock-out in its detail and conditions (the pool's too) while GKE retries and keeps
        the cluster locked; after the give-up time it ends DONE with RESOURCE_EXHAUSTED."""
        onset = self.duration("STOCKOUT_ONSET")
        give_up = max(self.duration("STOCKOUT_GIVE_UP"), onset)
        await self.hold(op, onset)
        zone = pool.resource["locations"][0]
        instance = _node_name(cluster, pool, zone, 0)

        def message(elapsed: float) -> str:
            minutes, secs = divmod(int(elapsed), 60)
            return IGM_STOCKOUT.format(
                elapsed=f"{minutes}m{secs}s" if minutes else f"{secs}s",
                size=max(pool.size, 1),
                instance=instance,
                project=cluster.project,
                zone=zone,
            )

        condition = {
            "code": "GCE_STOCKOUT",
            "canonicalCode": "RESOURCE_EXHAUSTED",
            "message": message(onset),
        }
        op.detail = condition["message"]
        op.conditions = [condition]
        pool.conditions = [dict(condition)]
        await self.hold(op, give_up - onset)
        op.error = rpc_status(GRPC_CODES["RESOURCE_EXHAUSTED"], message(give_up))

    def fault_status(self, op: Operation, spec: Obj) -> Obj:
        code = spec["code"]
        message = spec.get("message")
        if not message:
            cluster = self.clusters.get(_cluster_key(op.target))
            zone = cluster.resource["locations"][0] if cluster else op.location
            message = (
                STOCKOUT.format(project=op.project, zone=zone)
                if code == GRPC_CODES["RESOURCE_EXHAUSTED"]
                else f"{GRPC_NAMES[code]}: the operation failed."
            )
        return rpc_status(code, message)

    # ----------------------------------------------------------------- clusters
    def create_cluster(self, request: web.Request, project: str, location: str, body: Obj):
        _check_fields(body, {"cluster", "parent", "projectId", "zone"}, "CreateClusterRequest")
        spec = body.get("cluster")
        if not isinstance(spec, dict):
            raise _invalid("Cluster is required.")
        name = spec.get("name") or ""
        if not NAME_RE.match(name):
            raise _invalid(
                f'Invalid value for field "cluster.name": "{name}". Must be a match of regex '
                "'(?:[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?)' (only alphanumerics and '-' allowed, "
                "must start with a letter and end with an alphanumeric, and must be no longer "
                "than 40 characters)."
            )
        if not (compute.ZONE_RE.match(location) or compute.REGION_RE.match(location)):
            raise ApiError(404, f'Location "{location}" does not exist.')
        if (project, location, name) in self.clusters:
            raise ApiError(
                409,
                f"Already exists: projects/{project}/locations/{location}/clusters/{name}.",
            )
        zonal = bool(compute.ZONE_RE.match(location))
        default_locations = [location] if zonal else [f"{location}-{z}" for z in "abc"]
        locations = spec.get("locations") or default_locations
        self.check_locations(locations, f"{compute.region_of(location)}-a")
        if zonal and location not in locations:
            raise _invalid(f'Cluster locations must include the cluster zone "{location}".')
        version = resolve_version(spec.get("initialClusterVersion"))
        pool_specs = spec.get("nodePools")
        if pool_specs:
            if "nodeConfig" in spec or "initialNodeCount" in spec:
                raise _invalid(
                    "Cluster.node_config and Cluster.initial_node_count must not be set when "
                    "Cluster.node_pools is specified."
                )
        else:
            if not spec.get("initialNodeCount"):
                raise _invalid("Cluster.initial_node_count must be greater than zero.")
            pool_specs = [
                {
                    "name": "default-pool",
                    "config": spec.get("nodeConfig") or {},
                    "initialNodeCount": spec["initialNodeCount"],
                }
            ]
        pools = [self.build_pool(p, locations, version) for p in pool_specs]
        names = [p.name for p in pools]
        if len(set(names)) != len(names):
            raise _invalid("Node pool names must be unique within a cluster.")
        resource = {
            k: v
            for k, v in spec.items()
            if k not in ("nodePools", "nodeConfig", "initialNodeCount")
        }
        resource.update(
            name=name,
            id=uuid.uuid4().hex,
            location=location,
            zone=location,
            locations=locations,
            nodeConfig=copy.deepcopy(pools[0].resource["config"]),
            initialClusterVersion=spec.get("initialClusterVersion") or version,
            currentMasterVersion=version,
            status="PROVISIONING",
            createTime=_now(),
            network=spec.get("network", "default"),
            subnetwork=spec.get("subnetwork", "default"),
            clusterIpv4Cidr=spec.get("clusterIpv4Cidr", "10.4.0.0/14"),
            servicesIpv4Cidr="34.118.224.0/20",
            loggingService=spec.get("loggingService", "logging.googleapis.com/kubernetes"),
            monitoringService=spec.get("monitoringService", "monitoring.googleapis.com/kubernetes"),
            releaseChannel=spec.get("releaseChannel", {"channel": "REGULAR"}),
            labelFingerprint="a9dc16a7",
            etag=uuid.uuid4().hex[:16],
        )
        cluster = Cluster(project, location, _base(request), resource)
        cluster.pools = {p.name: p for p in pools}
        self.clusters[(project, location, name)] = cluster

        def finish(op: Operation) -> None:
            if op.error:
                cluster.resource.update(status="ERROR", statusMessage=op.error["message"])
                for pool in cluster.pools.values():
                    pool.status, pool.status_message = "ERROR", op.error["message"]
                return
            cluster.resource.update(
                status="RUNNING",
                endpoint=urlsplit(self.emu.endpoints["k8s_url"]).netloc,
                masterAuth={"clusterCaCertificate": _b64(self.emu.ca.cert_pem)},
            )
            for pool in cluster.pools.values():
                self.finish_pool(cluster, pool, op)

        return self.start(
            request,
            cluster,
            op_type="CREATE_CLUSTER",
            target=cluster.path,
            seconds=self.duration("CREATE_CLUSTER"),
            finish=finish,
        )

    def finish_pool(self, cluster: Cluster, pool: NodePool, op: Operation) -> None:
        """A created pool becomes RUNNING with Nodes, or what the fault says."""
        fault_status = op.fault.pool_status if op.fault else None
        if op.error or fault_status == "ERROR":
            message = op.error["message"] if op.error else None
            pool.status = "ERROR"
            pool.status_message = message or op.fault.message or self.stockout(cluster, pool)
            return
        pool.status = fault_status or "RUNNING"
        if fault_status:
            pool.status_message = (op.fault.message if op.fault else None) or self.stockout(
                cluster, pool
            )
        self.sync_nodes(cluster, pool)

    @staticmethod
    def stockout(cluster: Cluster, pool: NodePool) -> str:
        return STOCKOUT.format(project=cluster.project, zone=pool.resource["locations"][0])

    def delete_cluster(self, request: web.Request, cluster: Cluster) -> web.Response:
        self.check_idle(cluster)
        before = cluster.resource["status"]
        cluster.resource["status"] = "STOPPING"

        def finish(op: Operation) -> None:
            if op.error:
                cluster.resource["status"] = before
                return
            for pool in cluster.pools.values():
                self.remove_nodes([n for names in pool.nodes.values() for n in names])
            self.clusters.pop((cluster.project, cluster.location, cluster.name), None)

        return self.start(
            request,
            cluster,
            op_type="DELETE_CLUSTER",
            target=cluster.path,
            seconds=self.duration("DELETE_CLUSTER"),
            finish=finish,
        )

    def update_cluster(self, request: web.Request, cluster: Cluster, body: Obj) -> web.Response:
        _check_fields(
            body, {"update", "name", "projectId", "zone", "clusterId"}, "UpdateClusterRequest"
        )
        update = body.get("update")
        if not isinstance(update, dict) or not update:
            raise _invalid("Must specify a field to update.")
        update = copy.deepcopy(update)
        pool_id = update.pop("desiredNodePoolId", None)
        pool = self.pool(cluster, pool_id) if pool_id else None
        if "desiredNodePoolAutoscaling" in update:
            if pool is None:
                raise _invalid("desiredNodePoolId is required to change node pool autoscaling.")
            self.check_autoscaling(update["desiredNodePoolAutoscaling"])
        master = update.pop("desiredMasterVersion", None)
        master_version = resolve_version(master) if master else None
        if "desiredLocations" in update:
            self.check_locations(update["desiredLocations"], cluster.resource["locations"][0])
        node_version = update.pop("desiredNodeVersion", None)
        if node_version:
            node_version = resolve_version(node_version)
        self.check_idle(cluster)
        op_type = "UPGRADE_MASTER" if master_version else "UPDATE_CLUSTER"
        cluster.resource["status"] = "RECONCILING"

        def finish(op: Operation) -> None:
            cluster.resource["status"] = "RUNNING"
            if op.error:
                return
            if master_version:
                cluster.resource["currentMasterVersion"] = master_version
            for p in [pool] if pool else cluster.pools.values():
                if node_version:
                    p.resource["version"] = node_version
                    self.recreate_nodes(cluster, p)
            if pool and "desiredNodePoolAutoscaling" in update:
                self.apply_autoscaling(cluster, pool, update.pop("desiredNodePoolAutoscaling"))
            for key, value in update.items():
                name = key.removeprefix("desired")
                cluster.resource[name[:1].lower() + name[1:]] = value

        return self.start(
            request,
            cluster,
            op_type=op_type,
            target=cluster.path,
            seconds=self.duration(op_type),
            finish=finish,
        )

    def set_network_policy(self, request: web.Request, cluster: Cluster, body: Obj):
        """clusters:setNetworkPolicy (ClusterUpdate has no network policy field)."""
        _check_fields(
            body,
            {"networkPolicy", "name", "projectId", "zone", "clusterId"},
            "SetNetworkPolicyRequest",
        )
        policy = body.get("networkPolicy")
        if not isinstance(policy, dict):
            raise _invalid("networkPolicy is required.")
        return self.cluster_op(request, cluster, {"networkPolicy": copy.deepcopy(policy)})

    def set_resource_labels(self, request: web.Request, cluster: Cluster, body: Obj):
        """clusters:setResourceLabels, guarded by the labelFingerprint as GKE does."""
        _check_fields(
            body,
            {"resourceLabels", "labelFingerprint", "name", "projectId", "zone", "clusterId"},
            "SetLabelsRequest",
        )
        labels = body.get("resourceLabels")
        if not isinstance(labels, dict):
            raise _invalid("resourceLabels is required.")
        if body.get("labelFingerprint") != cluster.resource.get("labelFingerprint"):
            raise ApiError(
                409,
                "Labels could not be set due to fingerprint mismatch.",
                "FAILED_PRECONDITION",
            )
        fingerprint = hashlib.sha1(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:8]
        return self.cluster_op(
            request,
            cluster,
            {"resourceLabels": dict(labels), "labelFingerprint": fingerprint},
        )

    def cluster_op(self, request: web.Request, cluster: Cluster, changes: Obj) -> web.Response:
        """An UPDATE_CLUSTER Operation that sets top-level cluster fields when it succeeds."""
        self.check_idle(cluster)
        cluster.resource["status"] = "RECONCILING"

        def finish(op: Operation) -> None:
            cluster.resource["status"] = "RUNNING"
            if not op.error:
                cluster.resource.update(changes)

        return self.start(
            request,
            cluster,
            op_type="UPDATE_CLUSTER",
            target=cluster.path,
            seconds=self.duration("UPDATE_CLUSTER"),
            finish=finish,
        )

    # ----------------------------------------------------------------- node pools
    def create_pool(self, request: web.Request, cluster: Cluster, body: Obj) -> web.Response:
        _check_fields(
            body, {"nodePool", "parent", "projectId", "zone", "clusterId"}, "CreateNodePoolRequest"
        )
        spec = body.get("nodePool")
        if isinstance(spec, dict) and spec.get("name") in cluster.pools:
            raise ApiError(409, f"Already exists: {cluster.path}/nodePools/{spec['name']}.")
        pool = self.build_pool(
            spec,
            cluster.resource["locations"],
            cluster.resource["currentMasterVersion"],
        )
        self.check_idle(cluster)
        cluster.pools[pool.name] = pool
        key = "CREATE_TPU_NODE_POOL" if pool.tpu else "CREATE_NODE_POOL"

        def finish(op: Operation) -> None:
            self.finish_pool(cluster, pool, op)

        response = self.start(
            request,
            cluster,
            op_type="CREATE_NODE_POOL",
            target=f"{cluster.path}/nodePools/{pool.name}",
            seconds=self.duration(key),
            finish=finish,
        )
        if pool.tpu and STOCKOUT_SCENARIO in self.emu.scenario:
            cluster.busy.stockout = pool
        return response

    def pool_op(
        self,
        request: web.Request,
        cluster: Cluster,
        pool: NodePool,
        op_type: str,
        apply: Callable[[], None],
    ) -> web.Response:
        """A pool mutation: RECONCILING (STOPPING for delete) until done, apply() on success."""
        self.check_idle(cluster)
        before = pool.status
        pool.status = "STOPPING" if op_type == "DELETE_NODE_POOL" else "RECONCILING"

        def finish(op: Operation) -> None:
            pool.status = before
            if not op.error:
                apply()
            if op.fault and op.fault.pool_status and cluster.pools.get(pool.name) is pool:
                pool.status = op.fault.pool_status
                pool.status_message = op.fault.message or self.stockout(cluster, pool)

        target = f"{cluster.path}/nodePools/{pool.name}"
        return self.start(
            request,
            cluster,
            op_type=op_type,
            target=target,
            seconds=self.duration(op_type),
            finish=finish,
        )

    def delete_pool(self, request: web.Request, cluster: Cluster, pool: NodePool) -> web.Response:
        def apply() -> None:
            self.remove_nodes([n for names in pool.nodes.values() for n in names])
            cluster.pools.pop(pool.name, None)

        return self.pool_op(request, cluster, pool, "DELETE_NODE_POOL", apply)

    def set_size(self, request: web.Request, cluster: Cluster, pool: NodePool, body: Obj):
        _check_fields(
            body,
            {"nodeCount", "projectId", "zone", "clusterId", "nodePoolId", "name"},
            "SetNodePoolSizeRequest",
        )
        count = body.get("nodeCount")
        if not isinstance(count, int) or count < 0:
            raise _invalid("nodeCount must be a non-negative integer.")
        if pool.tpu and count % pool.tpu.vms:
            raise _invalid(
                f"A multi-host TPU slice pool scales in whole slices of {pool.tpu.vms} nodes."
            )

        def apply() -> None:
            pool.size = count
            self.sync_nodes(cluster, pool)

        return self.pool_op(request, cluster, pool, "SET_NODE_POOL_SIZE", apply)

    def set_autoscaling(self, request: web.Request, cluster: Cluster, pool: NodePool, body: Obj):
        _check_fields(
            body,
            {"autoscaling", "projectId", "zone", "clusterId", "nodePoolId", "name"},
            "SetNodePoolAutoscalingRequest",
        )
        autoscaling = body.get("autoscaling")
        if not isinstance(autoscaling, dict):
            raise _invalid("autoscaling is required.")
        self.check_autoscaling(autoscaling)
        return self.pool_op(
            request,
            cluster,
            pool,
            "UPDATE_CLUSTER",
            lambda: self.apply_autoscaling(cluster, pool, autoscaling),
        )

    def apply_autoscaling(self, cluster: Cluster, pool: NodePool, autoscaling: Obj) -> None:
        """Store the settings; the autoscaler moves the size into [min, max] at once."""
        pool.resource["autoscaling"] = autoscaling
        if autoscaling.get("enabled"):
            low, high = autoscaling.get("minNodeCount", 0), autoscaling["maxNodeCount"]
            pool.size = min(max(pool.size, low), high)
            self.sync_nodes(cluster, pool)

    def set_management(self, request: web.Request, cluster: Cluster, pool: NodePool, body: Obj):
        _check_fields(
            body,
            {"management", "projectId", "zone", "clusterId", "nodePoolId", "name"},
            "SetNodePoolManagementRequest",
        )
        management = body.get("management")
        if not isinstance(management, dict):
            raise _invalid("management is required.")
        return self.pool_op(
            request,
            cluster,
            pool,
            "SET_NODE_POOL_MANAGEMENT",
            lambda: pool.resource.__setitem__("management", management),
        )

    def update_pool(self, request: web.Request, cluster: Cluster, pool: NodePool, body: Obj):
        _check_fields(body, _UPDATE_NODE_POOL_FIELDS, "UpdateNodePoolRequest")
        update = {k: v for k, v in body.items() if k not in _PATH_FIELDS}
        config = copy.deepcopy(pool.resource["config"])
        locations = update.get("locations", pool.resource["locations"])
        self.check_locations(locations, cluster.resource["locations"][0])
        machine = update.get("machineType", config["machineType"])
        for zone in locations:
            if compute.machine_type(self.emu, machine, zone) is None:
                raise _invalid(f'Machine type "{machine}" is not available in zone "{zone}".')
        if machine != config["machineType"] and (
            pool.tpu or compute.machine_types(self.emu)[machine].get("tpu")
        ):
            raise _invalid("The machine type of a TPU node pool cannot be changed; recreate it.")
        if "taints" in update:
            self.check_taints((update["taints"] or {}).get("taints") or [])
        # UpdateNodePoolRequest documents nodeVersion and imageType as "Required"; "-" means
        # the control plane's version (an upgrade when the nodes run an older one).
        missing = [k for k in ("nodeVersion", "imageType") if not update.get(k)]
        if missing:
            raise _invalid(f"{' and '.join(missing)} must be specified (UpdateNodePoolRequest).")
        wanted = update["nodeVersion"]
        if wanted == "-":
            wanted = cluster.resource["currentMasterVersion"]
        version = resolve_version(wanted)
        if version == pool.resource["version"]:
            version = None
        for key, value in update.items():
            if key in ("taints", "labels"):
                config[key] = (value or {}).get(key) or []
                if key == "labels":
                    config[key] = (value or {}).get(key) or {}
            elif key in _POOL_CONFIG_UPDATES:
                config[key] = value
        old_config = pool.resource["config"]

        def apply() -> None:
            pool.resource["config"] = config
            for key in ("upgradeSettings", "locations"):
                if key in update:
                    pool.resource[key] = update[key]
            if version:
                pool.resource["version"] = version
            pool.resource["etag"] = uuid.uuid4().hex[:16]
            if machine != old_config["machineType"] or version:
                self.recreate_nodes(cluster, pool)
            else:
                self.sync_nodes(cluster, pool)
                self.relabel_nodes(cluster, pool, old_config)

        return self.pool_op(request, cluster, pool, "UPGRADE_NODES", apply)

    # ----------------------------------------------------------------- cluster autoscaler
    def autoscaler_hint(self, pod: Obj) -> None:
        """Scheduler hook, the cluster autoscaler's loop for one unschedulable pod: grow an
        autoscaled pool whose template Node would take it (event TriggeredScaleUp), else say
        why none would (NotTriggerScaleUp). Pools without autoscaling are no node groups; while
        a scale-up is under way the pod waits for the upcoming Nodes (no event)."""
        groups = [
            (cluster, pool)
            for cluster in self.clusters.values()
            for pool in cluster.pools.values()
            if (pool.resource.get("autoscaling") or {}).get("enabled")
            and pool.status in ("RUNNING", "RUNNING_WITH_ERROR")
        ]
        if not groups or any(pool.scaling for _cluster, pool in groups):
            return
        reasons: dict[str, int] = {}
        for cluster, pool in groups:
            autoscaling = pool.resource["autoscaling"]
            step = pool.tpu.vms if pool.tpu else 1
            if pool.size + step > autoscaling.get("maxNodeCount", 0):
                reason: str | None = "max node group size reached"  # a skipped node group
            else:
                reason = _pool_misfit(self.emu, cluster, pool, pod)
            if reason is None:
                pool.scaling = True
                infos = " ".join(
                    f"{{{_mig_url(cluster, pool, zone)} {pool.size}->{pool.size + step} "
                    f"(max: {autoscaling.get('maxNodeCount', 0)})}}"
                    for zone in pool.resource["locations"]
                )
                self.emu.store.record_event(
                    pod,
                    "TriggeredScaleUp",
                    f"pod triggered scale-up: [{infos}]",
                    component="cluster-autoscaler",
                )
                self.emu.spawn(self.scale_up(cluster, pool, step))
                return
            reasons[reason] = reasons.get(reason, 0) + 1
        message = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
        self.emu.store.record_event(
            pod,
            "NotTriggerScaleUp",
            f"pod didn't trigger scale-up: {message}",
            component="cluster-autoscaler",
        )

    async def scale_up(self, cluster: Cluster, pool: NodePool, step: int) -> None:
        try:
            await self.emu.clock.sleep(self.duration("AUTOSCALE_UP"))
            if cluster.pools.get(pool.name) is pool:
                pool.size += step
                self.sync_nodes(cluster, pool)
        finally:
            pool.scaling = False

    async def scale_down_loop(self) -> None:
        """Remove Nodes of autoscaled pools that carried no pod for AUTOSCALE_DOWN emulated s."""
        while True:
            unneeded = self.duration("AUTOSCALE_DOWN")
            await self.emu.clock.sleep(min(unneeded / 4, 60))
            busy_nodes = {
                p["spec"].get("nodeName")
                for p in self.emu.store.list("v1", "Pod")
                if p["status"].get("phase") not in ("Succeeded", "Failed")
                and not any(
                    r.get("kind") == "DaemonSet" for r in p["metadata"].get("ownerReferences") or ()
                )
            }
            now = self.emu.clock.now()
            for cluster in list(self.clusters.values()):
                for pool in list(cluster.pools.values()):
                    self.shrink_idle(cluster, pool, busy_nodes, now - unneeded)

    def shrink_idle(
        self, cluster: Cluster, pool: NodePool, busy_nodes: set[str | None], cutoff: float
    ) -> None:
        """Drop trailing Nodes (whole slices) idle since before cutoff, down to minNodeCount."""
        current = [name for names in pool.nodes.values() for name in names]
        pool.idle_since = {
            name: pool.idle_since.get(name, self.emu.clock.now())
            for name in current
            if name not in busy_nodes
        }
        autoscaling = pool.resource.get("autoscaling") or {}
        if (
            not autoscaling.get("enabled")
            or pool.scaling
            or cluster.busy is not None
            or pool.status not in ("RUNNING", "RUNNING_WITH_ERROR")
        ):
            return
        step = pool.tpu.vms if pool.tpu else 1
        low = autoscaling.get("minNodeCount", 0)
        size = pool.size
        while size - step >= low and all(
            pool.idle_since.get(name, cutoff + 1) <= cutoff
            for names in pool.nodes.values()
            for name in names[size - step : size]
        ):
            size -= step
        if size != pool.size:
            pool.size = size
            self.sync_nodes(cluster, pool)


_PATH_FIELDS = {"projectId", "zone", "clusterId", "nodePoolId", "name", "etag"}


def _managed_taints_of(config: Obj, tpu: Tpu | None) -> list[Obj]:
    return ([dict(TPU_TAINT)] if tpu else []) + [
        {
            "key": t["key"],
            "effect": TAINT_EFFECTS.get(t.get("effect", ""), t.get("effect")),
        }
        for t in config.get("taints") or []
    ]


def _group_name(cluster: Cluster, pool: NodePool, zone: str) -> str:
    return _node_name(cluster, pool, zone, 0).rsplit("-", 1)[0] + "-grp"


def _pool_misfit(emu: Emulator, cluster: Cluster, pool: NodePool, pod: Obj) -> str | None:
    """Why a new Node of this pool would not take the pod (the scheduler's filters on the node
    group's template Node, as the autoscaler's predicate checker runs them), None if it would."""
    zone = pool.resource["locations"][0]
    template = build_node(emu, cluster, pool, zone, f"template-node-for-{pool.name}")
    requests = {
        k: v for k, v in container_requests(pod["spec"]).items() if k not in BASIC_RESOURCES
    }
    return node_misfit(pod["spec"], requests, template, {})


def _mig_url(cluster: Cluster, pool: NodePool, zone: str) -> str:
    """The node group's Id: its managed instance group's URL (cluster-autoscaler
    cloudprovider/gce GenerateMigUrl, default domain https://www.googleapis.com/compute/v1)."""
    return (
        f"https://www.googleapis.com/compute/v1/projects/{cluster.project}/zones/{zone}/"
        f"instanceGroups/{_group_name(cluster, pool, zone)}"
    )


def _cluster_key(target: str) -> tuple[str, str, str]:
    parts = target.split("/")
    return parts[1], parts[3], parts[5]


def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _b64(pem: str | bytes) -> str:
    return base64.b64encode(pem if isinstance(pem, bytes) else pem.encode()).decode()


# --------------------------------------------------------------------------- HTTP
async def _body(request: web.Request) -> Obj:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except json.JSONDecodeError as exc:
        raise _invalid(f"Invalid JSON payload received. {exc}") from exc
    if not isinstance(body, dict):
        raise _invalid("Invalid JSON payload received. Expected an object.")
    return body


def _middleware(gke: Gke) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Callable) -> web.StreamResponse:
        try:
            if not request.headers.get("Authorization", "").startswith("Bearer "):
                raise ApiError(401, MISSING_AUTH, "UNAUTHENTICATED")
            fault = gke.faults.take_http(request.method, request.path)
            if fault is not None:
                raise fault.error()
            return await handler(request)
        except ApiError as exc:
            return exc.response()
        except web.HTTPMethodNotAllowed:
            return ApiError(405, "Method not allowed.", "UNIMPLEMENTED").response()
        except web.HTTPNotFound:
            return ApiError(404, f"The requested URL {request.path} was not found.").response()

    return middleware


def add_routes(routes: web.RouteTableDef, gke: Gke) -> None:
    """The v1 clusters/nodePools/operations API, in the locations and the older zones form."""

    def names(request: web.Request) -> tuple[str, str]:
        """(project id, location); GKE takes the project NUMBER in paths as well (the links of
        its Operations carry it)."""
        return gke.project_id(request.match_info["project"]), request.match_info["location"]

    def target(request: web.Request) -> Cluster:
        return gke.cluster(*names(request), request.match_info["cluster"])

    def pool_target(request: web.Request) -> tuple[Cluster, NodePool]:
        cluster = target(request)
        return cluster, gke.pool(cluster, request.match_info["pool"])

    async def list_clusters(request: web.Request) -> web.Response:
        project, location = names(request)
        found = [
            gke.cluster_json(c)
            for (p, loc, _name), c in gke.clusters.items()
            if p == project and location in ("-", loc)
        ]
        return web.json_response({"clusters": found})

    async def create_cluster(request: web.Request) -> web.Response:
        return gke.create_cluster(request, *names(request), await _body(request))

    async def get_cluster(request: web.Request) -> web.Response:
        return web.json_response(gke.cluster_json(target(request)))

    async def update_cluster(request: web.Request) -> web.Response:
        return gke.update_cluster(request, target(request), await _body(request))

    async def delete_cluster(request: web.Request) -> web.Response:
        return gke.delete_cluster(request, target(request))

    def cluster_action(method: Callable[..., web.Response]) -> Callable:
        async def handler(request: web.Request) -> web.Response:
            return method(request, target(request), await _body(request))

        return handler

    async def list_pools(request: web.Request) -> web.Response:
        cluster = target(request)
        return web.json_response(
            {"nodePools": [gke.pool_json(cluster, p) for p in cluster.pools.values()]}
        )

    async def create_pool(request: web.Request) -> web.Response:
        return gke.create_pool(request, target(request), await _body(request))

    async def get_pool(request: web.Request) -> web.Response:
        return web.json_response(gke.pool_json(*pool_target(request)))

    async def delete_pool(request: web.Request) -> web.Response:
        return gke.delete_pool(request, *pool_target(request))

    def pool_action(method: Callable[..., web.Response]) -> Callable:
        async def handler(request: web.Request) -> web.Response:
            return method(request, *pool_target(request), await _body(request))

        return handler

    async def list_operations(request: web.Request) -> web.Response:
        project, location = names(request)
        found = [
            op.to_json(gke.emu.clock.now())
            for op in gke.operations.values()
            if op.project == project and location in ("-", op.location)
        ]
        return web.json_response({"operations": found})

    async def get_operation(request: web.Request) -> web.Response:
        project, location = names(request)
        op = gke.operations.get(request.match_info["operation"])
        if op is None or op.project != project or location not in ("-", op.location):
            raise ApiError(
                404,
                f"Not found: projects/{project}/locations/{location}/operations/"
                f"{request.match_info['operation']}.",
            )
        return web.json_response(op.to_json(gke.emu.clock.now()))

    for prefix, sep in (("locations", ":"), ("zones", "/")):
        base = f"/v1/projects/{{project}}/{prefix}/{{location}}"
        clusters = f"{base}/clusters"
        one = f"{clusters}/{{cluster}}"
        pools = f"{one}/nodePools"
        pool = f"{pools}/{{pool:[^/:]+}}"
        routes.get(clusters)(list_clusters)
        routes.post(clusters)(create_cluster)
        routes.get(one)(get_cluster)
        routes.put(one)(update_cluster)
        routes.delete(one)(delete_cluster)
        if sep == ":":
            action = f"{clusters}/{{cluster:[^/:]+}}:"
            routes.post(action + "setNetworkPolicy")(cluster_action(gke.set_network_policy))
            routes.post(action + "setResourceLabels")(cluster_action(gke.set_resource_labels))
        routes.get(pools)(list_pools)
        routes.post(pools)(create_pool)
        routes.get(pool)(get_pool)
        routes.delete(pool)(delete_pool)
        routes.post(f"{pool}{sep}setSize")(pool_action(gke.set_size))
        routes.post(f"{pool}{sep}setManagement")(pool_action(gke.set_management))
        routes.post(f"{pool}{sep}{'setAutoscaling' if sep == ':' else 'autoscaling'}")(
            pool_action(gke.set_autoscaling)
        )
        if sep == ":":
            routes.put(pool)(pool_action(gke.update_pool))
        else:
            routes.post(f"{pool}/update")(pool_action(gke.update_pool))
        routes.get(f"{base}/operations")(list_operations)
        routes.get(f"{base}/operations/{{operation}}")(get_operation)

    async def get_instance_group_manager(request: web.Request) -> web.Response:
        project, zone, name = (request.match_info[k] for k in ("project", "zone", "name"))
        return web.json_response(gke.instance_group_manager(_base(request), project, zone, name))

    routes.get("/compute/v1/projects/{project}/zones/{zone}/instanceGroupManagers/{name}")(
        get_instance_group_manager
    )


def add_release_route(routes: web.RouteTableDef, gke: Gke) -> None:
    """Admin ``POST /gke/operations/release`` {operationType, name?}: a test control, not a GKE
    API. The unfinished Operations of that type (that one, with name) end now, as they do after
    their duration (same finish, DONE, endTime), so a test can hold an Operation with a long
    duration and end it on an event it observed. 404 when none is unfinished."""

    @routes.post("/gke/operations/release")
    async def release(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError as exc:
            return web.json_response({"error": f"not JSON: {exc}"}, status=400)
        op_type = body.get("operationType") if isinstance(body, dict) else None
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(op_type, str) or not isinstance(name, str | None):
            return web.json_response(
                {"error": "the body is {operationType: string, name?: string}"}, status=400
            )
        try:
            released = gke.release(op_type, name)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=404)
        return web.json_response({"released": released})


def build_app(gke: Gke) -> web.Application:
    """The gke_url site: GKE, Compute and Cloud Quotas APIs."""
    routes = web.RouteTableDef()
    add_routes(routes, gke)
    compute.add_routes(routes, gke.emu)
    quotas.add_routes(routes, gke.emu)
    app = web.Application(middlewares=[_middleware(gke)])
    app.add_routes(routes)
    return app


def setup(emu: Emulator) -> None:
    """Create the GKE service and its site (emu.gke_app), admin routes, preset faults and the
    autoscaler hook (see INTERFACE.md)."""
    gke = Gke(emu)
    gke.faults.add_all(emu.config.get("faults") or [])
    add_admin_routes(emu.admin_routes, gke.faults)
    add_release_route(emu.admin_routes, gke)
    emu.gke = gke
    emu.gke_app = build_app(gke)
    emu.autoscaler_hint = gke.autoscaler_hint
    emu.spawn(gke.scale_down_loop())
