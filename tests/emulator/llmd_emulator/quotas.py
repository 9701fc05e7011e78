"""Cloud Quotas API stand-in: QuotaInfo reads for compute.googleapis.com and tpu.googleapis.com.

Config ``gke.quotas``: {service: {quota_id: {metric?, dimensions?, values?: [{dimensions, value}]}}}
merged over the defaults below (per quota id, key by key; ``values`` entries replace the default
entry with the same dimensions). A ``values`` entry without dimensions is the project default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .compute import V6E_ZONES, gke_settings, region_of
from .faults import ApiError

if TYPE_CHECKING:
    from .core import Emulator

_V6E_REGIONS = sorted({region_of(z) for z in V6E_ZONES})


def _per_region(dimension: str, family: str, value: int) -> list[dict[str, Any]]:
    return [{"dimensions": {}, "value": 0}] + [
        {"dimensions": {"region": r, dimension: family}, "value": value} for r in _V6E_REGIONS
    ]


DEFAULT_QUOTAS: dict[str, dict[str, dict[str, Any]]] = {
    "compute.googleapis.com": {
        "TPUS-PER-TPU-FAMILY-per-project-region": {
            "metric": "compute.googleapis.com/tpus_per_tpu_family",
            "dimensions": ["region", "tpu_family"],
            "values": _per_region("tpu_family", "CT6E", 64),
        },
        "PREEMPTIBLE-TPUS-PER-TPU-FAMILY-per-project-region": {
            "metric": "compute.googleapis.com/preemptible_tpus_per_tpu_family",
            "dimensions": ["region", "tpu_family"],
            "values": _per_region("tpu_family", "CT6E", 64),
        },
        "CPUS-per-project-region": {
            "metric": "compute.googleapis.com/cpus",
            "dimensions": ["region"],
            "values": [{"dimensions": {}, "value": 2400}],
        },
        "IN-USE-ADDRESSES-per-project-region": {
            "metric": "compute.googleapis.com/in_use_addresses",
            "dimensions": ["region"],
            "values": [{"dimensions": {}, "value": 575}],
        },
    },
    "tpu.googleapis.com": {
        "TPUV6EPerProjectPerZoneForTPUAPI": {
            "metric": "tpu.googleapis.com/v6e",
            "dimensions": ["zone"],
            "values": [{"dimensions": {}, "value": 0}]
            + [{"dimensions": {"zone": z}, "value": 64} for z in V6E_ZONES],
        },
    },
}


def quota_definitions(emu: Emulator, service: str) -> dict[str, dict[str, Any]]:
    """The quota ids of a service, defaults merged with the config."""
    merged = {qid: dict(spec) for qid, spec in DEFAULT_QUOTAS.get(service, {}).items()}
    configured = (gke_settings(emu).get("quotas") or {}).get(service) or {}
    for qid, spec in configured.items():
        quota = merged.setdefault(qid, {"dimensions": [], "values": []})
        values = {_dims_key(v): v for v in quota.get("values") or []}
        values.update((_dims_key(v), v) for v in spec.get("values") or [])
        quota.update(spec, values=list(values.values()))
    return merged


def _dims_key(entry: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((entry.get("dimensions") or {}).items()))


def _quota_info(project: str, service: str, quota_id: str, spec: dict[str, Any]) -> dict:
    infos = []
    for entry in spec.get("values") or []:
        dims = dict(entry.get("dimensions") or {})
        location = dims.get("region") or dims.get("zone") or "global"
        infos.append(
            {
                "dimensions": dims,
                "details": {"value": str(entry["value"]), "rolloutInfo": {}},
                "applicableLocations": [location],
            }
        )
    return {
        "name": f"projects/{project}/locations/global/services/{service}/quotaInfos/{quota_id}",
        "quotaId": quota_id,
        "metric": spec.get("metric", f"{service}/{quota_id.lower()}"),
        "service": service,
        "isPrecise": True,
        "containerType": "PROJECT",
        "dimensions": list(spec.get("dimensions") or []),
        "metricDisplayName": quota_id,
        "quotaDisplayName": quota_id,
        "metricUnit": "1",
        "quotaIncreaseEligibility": {"isEligible": True},
        "isFixed": False,
        "isConcurrent": False,
        "refreshInterval": "minute" if "per-minute" in quota_id else "",
        "dimensionsInfos": infos,
    }


def add_routes(routes: web.RouteTableDef, emu: Emulator) -> None:
    """quotaInfos get and list under /cloudquotas/v1."""
    prefix = "/cloudquotas/v1/projects/{project}/locations/global/services/{service}/quotaInfos"

    @routes.get(prefix)
    async def list_quota_infos(request: web.Request) -> web.Response:
        project, service = request.match_info["project"], request.match_info["service"]
        infos = [
            _quota_info(project, service, qid, spec)
            for qid, spec in quota_definitions(emu, service).items()
        ]
        return web.json_response({"quotaInfos": infos})

    @routes.get(prefix + "/{quota_id}")
    async def get_quota_info(request: web.Request) -> web.Response:
        project, service, quota_id = (
            request.match_info[k] for k in ("project", "service", "quota_id")
        )
        spec = quota_definitions(emu, service).get(quota_id)
        if spec is None:
            raise ApiError(
                404,
                f"QuotaInfo projects/{project}/locations/global/services/{service}/quotaInfos/"
                f"{quota_id} not found.",
            )
        return web.json_response(_quota_info(project, service, quota_id, spec))
