"""Google-format API errors and injectable faults for the GKE, Compute and Cloud Quotas stand-ins.

A fault matches requests by HTTP method and a regular expression searched in the path. It either
answers the request at once with an HTTP error (``status``), or it marks the Operation that the
matching mutation starts: the Operation ends DONE with ``operation_error`` and/or the node pool
ends in ``pool_status`` (ERROR or RUNNING_WITH_ERROR). ``times`` limits how often a fault fires
(unset: always). Faults come from the admin API (``/faults``) or the ``faults`` list of the config.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

GRPC_CODES = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}
GRPC_NAMES = {code: name for name, code in GRPC_CODES.items()}

_STATUS_BY_HTTP = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}

# What an injected HTTP fault says when the fault gives no status name or message.
_FAULT_DEFAULTS = {
    400: (
        "FAILED_PRECONDITION",
        (
            "Operation operation-0000000000000-fault is currently upgrading cluster. "
            "Please wait and try again once it is done."
        ),
    ),
    403: (
        "PERMISSION_DENIED",
        (
            'Insufficient regional quota to satisfy request: resource "TPUS_PER_TPU_FAMILY": '
            "request requires '4.0' and is short '4.0'. project has a quota of '0.0' with '0.0' "
            "available."
        ),
    ),
    429: (
        "RESOURCE_EXHAUSTED",
        "Too many operations in progress for this project. Please try again later.",
    ),
    503: ("UNAVAILABLE", "The service is currently unavailable."),
}

POOL_FAULT_STATUSES = ("ERROR", "RUNNING_WITH_ERROR")


class ApiError(Exception):
    """An error answered in Google's JSON format: {"error": {code, message, status, details}}."""

    def __init__(
        self,
        http_status: int,
        message: str,
        status: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message
        self.status = status or _STATUS_BY_HTTP.get(http_status, "UNKNOWN")
        self.details = details or []

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.http_status,
                "message": self.message,
                "status": self.status,
                "details": self.details,
            }
        }

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.http_status)


def rpc_status(code: int, message: str) -> dict[str, Any]:
    """A google.rpc.Status as an Operation's ``error`` carries it."""
    return {"code": code, "message": message, "details": []}


@dataclass
class Fault:
    """One injected fault; see the module docstring."""

    id: int
    method: str | None = None
    path: str | None = None
    status: int | None = None
    grpc_status: str | None = None
    message: str | None = None
    details: list[dict[str, Any]] = field(default_factory=list)
    operation_error: dict[str, Any] | None = None
    pool_status: str | None = None
    times: int | None = None
    hits: int = 0

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    @property
    def is_http(self) -> bool:
        return self.status is not None

    def matches(self, method: str, path: str) -> bool:
        if self.exhausted:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        return self.path is None or re.search(self.path, path) is not None

    def error(self) -> ApiError:
        assert self.status is not None
        status_name, message = _FAULT_DEFAULTS.get(
            self.status,
            (_STATUS_BY_HTTP.get(self.status, "UNKNOWN"), "Injected fault."),
        )
        return ApiError(
            self.status,
            self.message or message,
            self.grpc_status or status_name,
            self.details,
        )

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


_FAULT_FIELDS = {
    "method",
    "path",
    "status",
    "grpc_status",
    "message",
    "details",
    "operation_error",
    "pool_status",
    "times",
}


def parse_fault(fault_id: int, spec: Mapping[str, Any]) -> Fault:
    """Validate a fault spec (admin API body or config entry); raises ValueError/TypeError."""
    if not isinstance(spec, Mapping):
        raise TypeError("a fault is a JSON object")
    unknown = set(spec) - _FAULT_FIELDS
    if unknown:
        raise ValueError(f"unknown fault fields: {sorted(unknown)}")
    fault = Fault(id=fault_id, **{k: v for k, v in spec.items() if k in _FAULT_FIELDS})
    effects = [fault.status, fault.operation_error, fault.pool_status]
    if all(e is None for e in effects):
        raise ValueError("a fault needs status, operation_error or pool_status")
    if fault.status is not None and (fault.operation_error or fault.pool_status):
        raise ValueError("status (HTTP fault) excludes operation_error and pool_status")
    if fault.status is not None and not 400 <= int(fault.status) <= 599:
        raise ValueError("status must be an HTTP error code (400-599)")
    if fault.pool_status is not None and fault.pool_status not in POOL_FAULT_STATUSES:
        raise ValueError(f"pool_status must be one of {POOL_FAULT_STATUSES}")
    if fault.operation_error is not None:
        code = fault.operation_error.get("code")
        if not isinstance(code, int) or code not in GRPC_NAMES or code == 0:
            raise ValueError("operation_error.code must be a non-zero google.rpc.Code number")
    if fault.times is not None and (not isinstance(fault.times, int) or fault.times < 1):
        raise ValueError("times must be a positive integer")
    if fault.path is not None:
        re.compile(fault.path)
    return fault


class FaultRegistry:
    """The active faults, in the order they were added (the first match wins)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: Mapping[str, Any]) -> Fault:
        fault = parse_fault(next(self._ids), spec)
        self._faults.append(fault)
        return fault

    def add_all(self, specs: Iterable[Mapping[str, Any]]) -> None:
        for spec in specs:
            self.add(spec)

    def clear(self) -> None:
        self._faults.clear()

    def remove(self, fault_id: int) -> bool:
        kept = [f for f in self._faults if f.id != fault_id]
        removed = len(kept) != len(self._faults)
        self._faults = kept
        return removed

    def list(self) -> list[Fault]:
        return list(self._faults)

    def take_http(self, method: str, path: str) -> Fault | None:
        """The first live HTTP fault matching the request; counts a hit."""
        return self._take(method, path, http=True)

    def take_operation(self, method: str, path: str) -> Fault | None:
        """The first live operation-level fault matching a mutation; counts a hit."""
        return self._take(method, path, http=False)

    def _take(self, method: str, path: str, http: bool) -> Fault | None:
        for fault in self._faults:
            if fault.is_http == http and fault.matches(method, path):
                fault.hits += 1
                return fault
        return None


def add_admin_routes(routes: web.RouteTableDef, registry: FaultRegistry) -> None:
    """GET (with hit counts), POST (a spec or a list), DELETE /faults (all) or /faults/{id}."""

    @routes.get("/faults")
    async def list_faults(_request: web.Request) -> web.Response:
        return web.json_response({"faults": [f.to_json() for f in registry.list()]})

    @routes.post("/faults")
    async def add_fault(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            specs = body if isinstance(body, list) else [body]
            for spec in specs:
                parse_fault(0, spec)
            faults = [registry.add(spec) for spec in specs]
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"faults": [f.to_json() for f in faults]}, status=201)

    @routes.delete("/faults")
    async def clear_faults(_request: web.Request) -> web.Response:
        registry.clear()
        return web.json_response({"faults": []})

    @routes.delete(r"/faults/{fault_id:\d+}")
    async def remove_fault(request: web.Request) -> web.Response:
        if not registry.remove(int(request.match_info["fault_id"])):
            return web.json_response({"error": "no such fault"}, status=404)
        return web.json_response({"faults": [f.to_json() for f in registry.list()]})
