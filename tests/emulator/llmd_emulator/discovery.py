"""Google's own API schema for the GKE and Compute stand-ins: the discovery documents that the
``google-api-python-client`` package ships (``googleapiclient/discovery_cache/documents/``).

``check_request(api, schema, body)`` rejects a request body the way Google's JSON parser does:
an unknown field answers 400 INVALID_ARGUMENT ``Invalid JSON payload received. Unknown name "x"
at 'cluster.node_pools[0].config': Cannot find field.`` (the place is the enclosing message in
proto field names; nothing for the top level), and a value of the wrong JSON type answers
``Invalid value at 'a.b' (TYPE_...)``.

The package is a test dependency (requirements-dev.txt); without it no body is checked and
``available()`` is False.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any

Obj = dict[str, Any]


class SchemaError(Exception):
    """A request body does not fit the API's request schema (Google's 400 wording)."""


@functools.cache
def document(api: str) -> Obj | None:
    """The discovery document ``<api>.v1.json`` (container, compute), or None without the
    package."""
    try:
        folder = resources.files("googleapiclient") / "discovery_cache" / "documents"
        return json.loads((folder / f"{api}.v1.json").read_text(encoding="utf-8"))
    except (ModuleNotFoundError, FileNotFoundError):
        return None


def available() -> bool:
    return document("container") is not None


def schema(api: str, name: str) -> Obj:
    doc = document(api)
    if doc is None:
        return {}
    return doc["schemas"][name]


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def _json_name(path: list[str]) -> str:
    """Google names the place with the proto (snake_case) field names: cluster.node_pools[0]."""
    return ".".join(_snake(part) for part in path)


def _type_error(path: list[str], expected: str, value: Any) -> SchemaError:
    where = _json_name(path)
    kind = {
        "string": "TYPE_STRING",
        "boolean": "TYPE_BOOL",
        "integer": "TYPE_INT32",
        "number": "TYPE_DOUBLE",
        "object": "TYPE_MESSAGE",
        "array": "TYPE_MESSAGE",
    }.get(expected, "TYPE_MESSAGE")
    return SchemaError(f"Invalid value at '{where}' ({kind}), {json.dumps(value)}")


def _check(api: str, spec: Obj, value: Any, path: list[str]) -> None:
    if "$ref" in spec:
        ref = schema(api, spec["$ref"])
        _check(api, ref, value, path)
        return
    kind = spec.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            raise _type_error(path, "object", value)
        properties = spec.get("properties")
        extra = spec.get("additionalProperties")
        for key, item in value.items():
            if properties is not None and key in properties:
                _check(api, properties[key], item, [*path, key])
            elif extra is not None:
                _check(api, extra, item, [*path, key])
            else:
                where = f" at '{_json_name(path)}'" if path else ""
                raise SchemaError(
                    f'Invalid JSON payload received. Unknown name "{key}"{where}: '
                    "Cannot find field."
                )
        return
    if value is None:
        return
    if kind == "array":
        if not isinstance(value, list):
            raise _type_error(path, "array", value)
        for index, item in enumerate(value):
            _check(api, spec.get("items") or {}, item, [*path[:-1], f"{path[-1]}[{index}]"])
        return
    if kind == "boolean" and not isinstance(value, bool):
        raise _type_error(path, kind, value)
    if kind == "integer":
        # int32/int64 also arrive as strings (int64 is a string in Google's JSON).
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and value.lstrip("-").isdigit()
        )
        if not ok:
            raise _type_error(path, kind, value)
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise _type_error(path, kind, value)
    if kind == "string" and not isinstance(value, str):
        raise _type_error(path, kind, value)
    enum = spec.get("enum")
    if enum and kind == "string" and value not in enum:
        raise SchemaError(
            f"Invalid value at '{_json_name(path)}' (type.googleapis.com/"
            f'{spec.get("id", "enum")}), "{value}"'
        )


def check_request(api: str, name: str, body: Obj) -> None:
    """Raise SchemaError when body does not fit the request schema ``name`` of the API."""
    if document(api) is None:
        return
    _check(api, {"type": "object", **schema(api, name)}, body, [])


def fields_of(api: str, name: str) -> set[str]:
    """The property names of a schema (empty without the package)."""
    return set((schema(api, name) or {}).get("properties") or {})
