"""Patch formats: JSON merge patch, JSON patch and Kubernetes strategic merge patch."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch

from ..store import BadRequest, Invalid

# patchMergeKey of the builtin list fields with patchStrategy "merge" (field name -> key).
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "taints": "key",
    "addresses": "type",
    "webhooks": "name",
}
# Lists of scalars merged as sets.
SET_LISTS = frozenset({"finalizers"})


def _port_key(items: list[Any]) -> str | None:
    if any(isinstance(i, dict) and "containerPort" in i for i in items):
        return "containerPort"
    if any(isinstance(i, dict) and "port" in i for i in items):
        return "port"
    return None


def merge_key(field: str, *lists: list[Any]) -> str | None:
    """The merge key of a builtin list field, or None when the list is replaced as a whole."""
    if field == "ports":
        return _port_key([i for items in lists for i in items])
    return MERGE_KEYS.get(field)


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


def json_patch(target: dict[str, Any], operations: Any) -> dict[str, Any]:
    """RFC 6902; failures are 422 Invalid like the API server's."""
    try:
        return jsonpatch.apply_patch(target, operations)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as exc:
        raise Invalid(
            f"the server rejected our request due to an error in our request: {exc}"
        ) from exc


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Strategic merge patch of builtin kinds (merge keys, $patch, $setElementOrder, sets)."""
    if not isinstance(patch, dict) or not isinstance(target, dict):
        return _strip_directives(copy.deepcopy(patch))
    if patch.get("$patch") == "replace":
        return _strip_directives({k: v for k, v in patch.items() if k != "$patch"})
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target)
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or () if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key) or {}, value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        else:
            result[key] = value
    if retain is not None:
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    current = current if isinstance(current, list) else []
    if field in SET_LISTS:
        return current + [v for v in patch if v not in current]
    key = merge_key(field, current, patch)
    if key is None or not all(isinstance(i, dict) for i in patch):
        if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
            patch = [i for i in patch if not (isinstance(i, dict) and "$patch" in i)]
        return _strip_directives(copy.deepcopy(patch))
    if any(i.get("$patch") == "replace" for i in patch):
        return _strip_directives([i for i in patch if "$patch" not in i])
    result = copy.deepcopy(current)
    for item in patch:
        index = next(
            (
                n
                for n, c in enumerate(result)
                if isinstance(c, dict) and c.get(key) == item.get(key)
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
        elif index is None:
            result.append(_strip_directives(copy.deepcopy(item)))
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _strip_directives(v)
            for k, v in value.items()
            if not k.startswith("$") and v is not None
        }
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as exc:
        raise BadRequest(f"the body of the request was in an unknown format: {exc}") from exc
