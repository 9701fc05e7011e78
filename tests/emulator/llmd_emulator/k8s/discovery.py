"""Discovery documents: /version, /api, /apis, resource lists and a minimal OpenAPI."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..store import Store
from .kinds import KindInfo

VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-llmd-emulator",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.24.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_SUBRESOURCE_VERBS = {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"]}


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _groups(store: Store) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for info in store.kinds():
        if info.group:
            versions = groups.setdefault(info.group, [])
            versions += [v for v in info.versions if v not in versions]
    return groups


def _group_doc(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def group_list(store: Store) -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_doc(name, versions) for name, versions in sorted(_groups(store).items())],
    }


def group(store: Store, name: str) -> dict[str, Any] | None:
    versions = _groups(store).get(name)
    if versions is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(name, versions)}


def _resources(info: KindInfo) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": info.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        main["shortNames"] = list(info.short_names)
    if info.categories:
        main["categories"] = list(info.categories)
    found = [main]
    for sub in info.subresources:
        entry: dict[str, Any] = {
            "name": f"{info.plural}/{sub}",
            "singularName": "",
            "namespaced": info.namespaced,
            "kind": info.kind,
            "verbs": _SUBRESOURCE_VERBS.get(sub, ["get"]),
        }
        if sub == "scale":
            entry.update(kind="Scale", group="autoscaling", version="v1")
        found.append(entry)
    return found


def resource_list(store: Store, group_name: str, version: str) -> dict[str, Any] | None:
    kinds = [i for i in store.kinds() if i.group == group_name and version in i.versions]
    if not kinds:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group_name}/{version}" if group_name else version,
        "resources": [r for info in kinds for r in _resources(info)],
    }


# A protobuf-encoded OpenAPI v2 document with only `swagger: "2.0"`: clients that fetch v2 for
# client-side validation find no schema and skip it (OpenAPI v3 below declares server-side
# field validation for every kind, so kubectl relies on the server instead).
OPENAPI_V2_PROTOBUF = b"\x0a\x032.0"
# kube-openapi (pkg/handler/handler.go) answers both accepted protobuf subtypes, the deprecated
# "...spec.v2@v1.0+protobuf" among them, with this Content-Type: Go's mime parser (kubectl)
# rejects the "@" form.
OPENAPI_V2_CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def _gv_path(info: KindInfo, version: str) -> str:
    return f"apis/{info.group}/{version}" if info.group else f"api/{version}"


def _gv_kinds(store: Store) -> dict[str, list[tuple[KindInfo, str]]]:
    found: dict[str, list[tuple[KindInfo, str]]] = {}
    for info in store.kinds():
        for version in info.versions:
            found.setdefault(_gv_path(info, version), []).append((info, version))
    return found


def openapi_v3_root(store: Store) -> dict[str, Any]:
    """The /openapi/v3 index; each group-version's hash changes with its kinds."""
    paths = {}
    for gv_path, kinds in sorted(_gv_kinds(store).items()):
        digest = hashlib.sha256(
            json.dumps(
                [(i.kind, i.plural, i.namespaced, i.subresources) for i, _versions in kinds]
            ).encode()
        ).hexdigest()[:32]
        paths[gv_path] = {"serverRelativeURL": f"/openapi/v3/{gv_path}?hash={digest.upper()}"}
    return {"paths": paths}


def openapi_v3_group_version(store: Store, gv_path: str) -> dict[str, Any] | None:
    """A per-group-version OpenAPI v3 document: one PATCH operation per kind that declares the
    dryRun and fieldValidation parameters (what kubectl checks before relying on the server)."""
    kinds = _gv_kinds(store).get(gv_path)
    if kinds is None:
        return None
    params = [
        {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
        for name in ("dryRun", "fieldManager", "fieldValidation", "force")
    ]
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for info, version in kinds:
        gvk = {"group": info.group, "version": version, "kind": info.kind}
        scope = "namespaces/{namespace}/" if info.namespaced else ""
        paths[f"/{gv_path}/{scope}{info.plural}/{{name}}"] = {
            "patch": {
                "operationId": f"patch{info.kind}",
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
            }
        }
        schema_name = ".".join(p for p in (info.group or "core", version, info.kind) if p)
        schemas[schema_name] = {
            "type": "object",
            "x-kubernetes-group-version-kind": [gvk],
            "x-kubernetes-preserve-unknown-fields": True,
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": schemas},
    }
