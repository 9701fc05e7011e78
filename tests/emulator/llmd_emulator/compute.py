"""Compute Engine stand-in: the machine-type catalogue, machineTypes (get, list, aggregatedList
filtered by name) and regions (quotas) reads.

Config (``gke`` section of the emulator config, all optional):
- ``machine_types``: {name: {guestCpus, memoryMb, zones?, tpu?}} merged over the built-in
  catalogue (a ``zones`` list restricts where the type is offered; no list: every zone);
- ``region_quotas``: {"*" | region: {METRIC: limit}} merged over the defaults.
"""

from __future__ import annotations

import re
import zlib
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import discovery

if TYPE_CHECKING:
    from .core import Emulator

ZONE_RE = re.compile(r"^([a-z]+-[a-z]+\d+)-[a-z]$")
REGION_RE = re.compile(r"^[a-z]+-[a-z]+\d+$")

V6E_ZONES = [
    "us-central1-b",
    "us-east1-d",
    "us-east5-a",
    "us-east5-b",
    "us-south1-a",
    "us-south1-b",
    "europe-west4-a",
    "asia-northeast1-b",
    "southamerica-west1-a",
]
V5E_ZONES = [
    "us-central1-a",
    "us-east1-c",
    "us-east5-b",
    "us-south1-a",
    "us-west1-c",
    "us-west4-a",
    "europe-west4-b",
    "asia-southeast1-b",
]
# The zones the aggregated machine type list covers (a real project sees about 120).
KNOWN_ZONES = sorted(
    set(V6E_ZONES)
    | set(V5E_ZONES)
    | {"europe-west1-b", "europe-west4-b", "europe-west4-c", "us-central1-a", "us-central1-c"}
)
NAME_FILTER_RE = re.compile(r"""^\s*name\s*(?:=|eq)\s*["']?([a-z0-9-]+)["']?\s*$""")
TPU_TOPOLOGIES = ["1x1", "2x2", "2x4", "4x4", "4x8", "8x8", "8x16", "16x16"]


def _tpu(accelerator: str, chips: int, topology: str) -> dict[str, Any]:
    return {
        "accelerator": accelerator,
        "chipsPerVm": chips,
        "topology": topology,
        "topologies": TPU_TOPOLOGIES,
    }


_V6E = "tpu-v6e-slice"
_V5E = "tpu-v5-lite-podslice"
MACHINE_TYPES: dict[str, dict[str, Any]] = {
    "e2-medium": {"guestCpus": 2, "memoryMb": 4096},
    "e2-standard-4": {"guestCpus": 4, "memoryMb": 16384},
    "e2-standard-8": {"guestCpus": 8, "memoryMb": 32768},
    "n1-standard-4": {"guestCpus": 4, "memoryMb": 15360},
    "n1-standard-8": {"guestCpus": 8, "memoryMb": 30720},
    "n2-standard-4": {"guestCpus": 4, "memoryMb": 16384},
    "ct6e-standard-1t": {
        "guestCpus": 44,
        "memoryMb": 458752,
        "zones": V6E_ZONES,
        "tpu": _tpu(_V6E, 1, "1x1"),
    },
    "ct6e-standard-4t": {
        "guestCpus": 180,
        "memoryMb": 737280,
        "zones": V6E_ZONES,
        "tpu": _tpu(_V6E, 4, "2x2"),
    },
    "ct6e-standard-8t": {
        "guestCpus": 180,
        "memoryMb": 1474560,
        "zones": V6E_ZONES,
        "tpu": _tpu(_V6E, 8, "2x4"),
    },
    "ct5lp-hightpu-1t": {
        "guestCpus": 24,
        "memoryMb": 49152,
        "zones": V5E_ZONES,
        "tpu": _tpu(_V5E, 1, "1x1"),
    },
    "ct5lp-hightpu-4t": {
        "guestCpus": 112,
        "memoryMb": 196608,
        "zones": V5E_ZONES,
        "tpu": _tpu(_V5E, 4, "2x2"),
    },
    "ct5lp-hightpu-8t": {
        "guestCpus": 224,
        "memoryMb": 393216,
        "zones": V5E_ZONES,
        "tpu": _tpu(_V5E, 8, "2x4"),
    },
}

REGION_QUOTAS = {
    "CPUS": 2400,
    "INSTANCES": 6000,
    "IN_USE_ADDRESSES": 575,
    "DISKS_TOTAL_GB": 102400,
    "SSD_TOTAL_GB": 81920,
    "INSTANCE_GROUP_MANAGERS": 500,
}
NODE_DISK_GB = 100


def gke_settings(emu: Emulator) -> dict[str, Any]:
    """The ``gke`` config section (read on every use: the admin API may change it)."""
    return emu.config.get("gke") or {}


def region_of(location: str) -> str:
    """The region of a zone, or the location itself when it is a region."""
    match = ZONE_RE.match(location)
    return match.group(1) if match else location


def machine_types(emu: Emulator) -> dict[str, dict[str, Any]]:
    """The catalogue with the config's additions and overrides."""
    merged = {name: dict(spec) for name, spec in MACHINE_TYPES.items()}
    for name, spec in (gke_settings(emu).get("machine_types") or {}).items():
        merged.setdefault(name, {}).update(spec)
    return merged


def machine_type(emu: Emulator, name: str, zone: str) -> dict[str, Any] | None:
    """The machine type if it is offered in the zone."""
    spec = machine_types(emu).get(name)
    if spec is None or not ZONE_RE.match(zone):
        return None
    zones = spec.get("zones")
    return spec if zones is None or zone in zones else None


def machine_family(name: str) -> str:
    return name.split("-", 1)[0]


def unknown_query_parameter(resource: str, method: str, query: Any) -> str | None:
    """The first query parameter that compute.v1.json does not list for the method (the
    standard parameters of every Google API excepted); None without the discovery document."""
    doc = discovery.document("compute")
    if doc is None:
        return None
    known = set(doc["resources"][resource]["methods"][method].get("parameters") or {})
    known |= set(doc.get("parameters") or {})
    return next((name for name in query if name not in known), None)


def _bad_query(name: str) -> web.Response:
    message = (
        f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query parameter. '
        f"Field '{name}' could not be found in request message."
    )
    body = {
        "error": {
            "code": 400,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": "invalid"}],
            "status": "INVALID_ARGUMENT",
        }
    }
    return web.json_response(body, status=400)


def _not_found(what: str) -> web.Response:
    message = f"The resource '{what}' was not found"
    body = {
        "error": {
            "code": 404,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": "notFound"}],
        }
    }
    return web.json_response(body, status=404)


def _machine_type_json(base: str, project: str, zone: str, name: str, spec: dict) -> dict:
    return {
        "kind": "compute#machineType",
        "id": str(zlib.crc32(name.encode())),
        "creationTimestamp": "2024-10-01T00:00:00.000-07:00",
        "name": name,
        "description": f"{spec['guestCpus']} vCPUs, {spec['memoryMb'] / 1024:g} GB RAM",
        "guestCpus": spec["guestCpus"],
        "memoryMb": spec["memoryMb"],
        "imageSpaceGb": 0,
        "maximumPersistentDisks": 128,
        "maximumPersistentDisksSizeGb": "263168",
        "zone": zone,
        "isSharedCpu": name == "e2-medium",
        "selfLink": f"{base}/compute/v1/projects/{project}/zones/{zone}/machineTypes/{name}",
    }


def _region_usage(emu: Emulator, region: str) -> dict[str, float]:
    """Quota usage from the emulated Nodes in the region (one VM, IP and disk each)."""
    catalogue = machine_types(emu)
    usage = dict.fromkeys(REGION_QUOTAS, 0.0)
    for node in emu.store.list("v1", "Node"):
        labels = node["metadata"].get("labels") or {}
        if labels.get("topology.kubernetes.io/region") != region:
            continue
        spec = catalogue.get(labels.get("node.kubernetes.io/instance-type", ""), {})
        usage["CPUS"] += spec.get("guestCpus", 0)
        usage["INSTANCES"] += 1
        usage["IN_USE_ADDRESSES"] += 1
        usage["SSD_TOTAL_GB"] += NODE_DISK_GB
    return usage


def region_limits(emu: Emulator, region: str) -> dict[str, float]:
    configured = gke_settings(emu).get("region_quotas") or {}
    limits = dict(REGION_QUOTAS)
    limits.update(configured.get("*") or {})
    limits.update(configured.get(region) or {})
    return limits


def add_routes(routes: web.RouteTableDef, emu: Emulator) -> None:
    """machineTypes (get, list, aggregated list) and regions (get) under /compute/v1."""
    prefix = "/compute/v1/projects/{project}"

    def base(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    @routes.get(prefix + "/zones/{zone}/machineTypes")
    async def list_machine_types(request: web.Request) -> web.Response:
        project, zone = request.match_info["project"], request.match_info["zone"]
        if not ZONE_RE.match(zone):
            return _not_found(f"projects/{project}/zones/{zone}")
        items = [
            _machine_type_json(base(request), project, zone, name, spec)
            for name in machine_types(emu)
            if (spec := machine_type(emu, name, zone))
        ]
        return web.json_response({"kind": "compute#machineTypeList", "items": items})

    @routes.get(prefix + "/aggregated/machineTypes")
    async def aggregated_machine_types(request: web.Request) -> web.Response:
        # Only the filter forms the collection sends: name = NAME, name eq NAME (quotes optional).
        project = request.match_info["project"]
        unknown = unknown_query_parameter("machineTypes", "aggregatedList", request.query)
        if unknown:
            return _bad_query(unknown)
        match = NAME_FILTER_RE.match(request.query.get("filter", ""))
        wanted = match.group(1) if match else None
        items: dict[str, Any] = {}
        for zone in KNOWN_ZONES:
            found = [
                _machine_type_json(base(request), project, zone, name, spec)
                for name in machine_types(emu)
                if (wanted is None or name == wanted) and (spec := machine_type(emu, name, zone))
            ]
            items[f"zones/{zone}"] = (
                {"machineTypes": found}
                if found
                else {"warning": {"code": "NO_RESULTS_ON_PAGE", "message": "No results."}}
            )
        return web.json_response({"kind": "compute#machineTypeAggregatedList", "items": items})

    @routes.get(prefix + "/zones/{zone}/machineTypes/{name}")
    async def get_machine_type(request: web.Request) -> web.Response:
        project, zone, name = (request.match_info[k] for k in ("project", "zone", "name"))
        spec = machine_type(emu, name, zone)
        if spec is None:
            return _not_found(f"projects/{project}/zones/{zone}/machineTypes/{name}")
        return web.json_response(_machine_type_json(base(request), project, zone, name, spec))

    @routes.get(prefix + "/regions/{region}")
    async def get_region(request: web.Request) -> web.Response:
        project, region = request.match_info["project"], request.match_info["region"]
        if not REGION_RE.match(region):
            return _not_found(f"projects/{project}/regions/{region}")
        usage = _region_usage(emu, region)
        link = f"{base(request)}/compute/v1/projects/{project}"
        quotas = [
            {
                "metric": metric,
                "limit": float(limit),
                "usage": float(usage.get(metric, 0.0)),
            }
            for metric, limit in region_limits(emu, region).items()
        ]
        return web.json_response(
            {
                "kind": "compute#region",
                "name": region,
                "description": region,
                "status": "UP",
                "zones": [f"{link}/zones/{region}-{z}" for z in "abc"],
                "quotas": quotas,
                "selfLink": f"{link}/regions/{region}",
            }
        )
