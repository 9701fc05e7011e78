"""Validation of custom resources against their CRD's openAPIV3Schema (types, required, enum)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from ..store import Invalid
from .kinds import KindInfo

_KEPT = ("type", "properties", "items", "required", "enum", "additionalProperties")
_COMBINATORS = ("anyOf", "allOf", "oneOf")


def _reduce(schema: Any) -> Any:
    """The part of a structural schema this validator enforces, in JSON Schema terms."""
    if not isinstance(schema, dict):
        return {}
    if schema.get("x-kubernetes-int-or-string"):
        return {"type": ["integer", "string"]}
    out: dict[str, Any] = {}
    for key in _KEPT:
        if key not in schema:
            continue
        value = schema[key]
        if key == "properties":
            out[key] = {name: _reduce(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _reduce(value)
        elif key in ("items", "additionalProperties"):
            continue
        else:
            out[key] = value
    for key in _COMBINATORS:
        if key in schema:
            out[key] = [_reduce(sub) for sub in schema[key]]
    if isinstance(schema.get("not"), dict):
        # kept: without it a oneOf whose branches differ by `not` matches both branches
        out["not"] = _reduce(schema["not"])
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _path(error: jsonschema.ValidationError) -> str:
    parts = []
    for part in error.absolute_path:
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(parts).lstrip(".")


_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array"}


def _json_type(value: Any) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), "object")


def _cause(error: jsonschema.ValidationError) -> tuple[str, str, str]:
    """(field, reason, message) of one violation, worded like the API server's causes."""
    field = _path(error)
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return (f"{field}.{missing}" if field else missing), "FieldValueRequired", "Required value"
    if error.validator == "enum":
        allowed = ", ".join(json.dumps(v) for v in error.validator_value)
        message = f"Unsupported value: {json.dumps(error.instance)}: supported values: {allowed}"
        return field, "FieldValueNotSupported", message
    if error.validator == "type":
        expected = error.validator_value
        expected = expected[0] if isinstance(expected, list) else expected
        actual = _json_type(error.instance)
        message = (
            f'Invalid value: "{actual}": {field} in body must be of type {expected}: "{actual}"'
        )
        return field, "FieldValueTypeInvalid", message
    return field, "FieldValueInvalid", f"Invalid value: {error.message}"


def validate_custom(info: KindInfo, version: str, obj: dict[str, Any]) -> None:
    """Raise Invalid (422) listing every schema violation of obj, like the API server."""
    schema = _reduce(info.schemas.get(version) or {})
    if not schema:
        return
    schema.get("properties", {}).pop("metadata", None)
    schema.get("properties", {}).pop("apiVersion", None)
    schema.get("properties", {}).pop("kind", None)
    body = {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")}
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(body), key=str)
    if not errors:
        return
    causes = [_cause(e) for e in errors]
    name = (obj.get("metadata") or {}).get("name", "")
    messages = ", ".join(f"{f}: {m}" for f, _reason, m in causes)
    listing = f"[{messages}]" if len(causes) > 1 else messages
    raise Invalid(
        f'{info.kind}.{info.group} "{name}" is invalid: {listing}',
        {
            "name": name,
            "group": info.group,
            "kind": info.kind,
            "causes": [{"reason": r, "message": m, "field": f} for f, r, m in causes],
        },
    )
