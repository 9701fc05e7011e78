"""Decoding of the Kubernetes protobuf wire format for the kinds typed clients send that way.

Helm stores releases as Secrets through client-go's typed client, which writes
`application/vnd.kubernetes.protobuf` bodies (so do `kubectl create <kind>` and helm's
--create-namespace). Only Secret, ConfigMap, Namespace, ServiceAccount (metadata and data) and
DeleteOptions are decoded; other kinds get 415, a clear error for the caller.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from ..store import UnsupportedMediaType

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
Fields = list[tuple[int, int | bytes]]


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> Fields:
    """(field number, value) pairs; value is an int (varint) or bytes (length-delimited)."""
    found: Fields = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            found.append((number, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            found.append((number, data[pos : pos + length]))
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise UnsupportedMediaType(f"unsupported protobuf wire type {wire}")
    return found


def _text(value: int | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _map_entry(value: int | bytes) -> tuple[str, bytes]:
    entry = dict(_fields(value if isinstance(value, bytes) else b""))
    key, item = entry.get(1, b""), entry.get(2, b"")
    return _text(key), item if isinstance(item, bytes) else b""


def _time(value: int | bytes) -> str:
    seconds = dict(_fields(value if isinstance(value, bytes) else b"")).get(1, 0)
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _owner_reference(value: int | bytes) -> dict[str, Any]:
    names = {
        1: "kind",
        3: "name",
        4: "uid",
        5: "apiVersion",
        6: "controller",
        7: "blockOwnerDeletion",
    }
    ref: dict[str, Any] = {}
    for number, item in _fields(value if isinstance(value, bytes) else b""):
        if number in (6, 7):
            ref[names[number]] = bool(item)
        elif number in names:
            ref[names[number]] = _text(item)
    return ref


def _object_meta(data: bytes) -> dict[str, Any]:
    strings = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    meta: dict[str, Any] = {}
    for number, value in _fields(data):
        if number in strings and value:
            meta[strings[number]] = _text(value)
        elif number in (11, 12):
            key, item = _map_entry(value)
            meta.setdefault("labels" if number == 11 else "annotations", {})[key] = item.decode()
        elif number == 13:
            meta.setdefault("ownerReferences", []).append(_owner_reference(value))
        elif number == 14:
            meta.setdefault("finalizers", []).append(_text(value))
        elif number == 8 and value:
            meta["creationTimestamp"] = _time(value)
    return meta


def _secret(fields: Fields) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, value in fields:
        if number == 1 and isinstance(value, bytes):
            obj["metadata"] = _object_meta(value)
        elif number == 2:
            key, item = _map_entry(value)
            obj.setdefault("data", {})[key] = base64.b64encode(item).decode()
        elif number == 3 and value:
            obj["type"] = _text(value)
        elif number == 4:
            key, item = _map_entry(value)
            obj.setdefault("stringData", {})[key] = item.decode()
        elif number == 5:
            obj["immutable"] = bool(value)
    return obj


def _config_map(fields: Fields) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, value in fields:
        if number == 1 and isinstance(value, bytes):
            obj["metadata"] = _object_meta(value)
        elif number == 2:
            key, item = _map_entry(value)
            obj.setdefault("data", {})[key] = item.decode()
        elif number == 3:
            key, item = _map_entry(value)
            obj.setdefault("binaryData", {})[key] = base64.b64encode(item).decode()
        elif number == 4:
            obj["immutable"] = bool(value)
    return obj


def _delete_options(fields: Fields) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, value in fields:
        if number == 4 and value:
            obj["propagationPolicy"] = _text(value)
        elif number == 5:
            obj.setdefault("dryRun", []).append(_text(value))
    return obj


def _metadata_only(fields: Fields) -> dict[str, Any]:
    meta = next((v for n, v in fields if n == 1 and isinstance(v, bytes)), b"")
    return {"metadata": _object_meta(meta)}


DECODERS = {
    ("v1", "Namespace"): _metadata_only,
    ("v1", "ServiceAccount"): _metadata_only,
    ("v1", "Secret"): _secret,
    ("v1", "ConfigMap"): _config_map,
    ("v1", "DeleteOptions"): _delete_options,
    ("meta.k8s.io/v1", "DeleteOptions"): _delete_options,
}


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object (runtime.Unknown envelope)."""
    if not body.startswith(MAGIC):
        raise UnsupportedMediaType("protobuf body without the k8s envelope")
    envelope = dict(_fields(body[len(MAGIC) :]))
    type_meta = dict(_fields(envelope.get(1, b"") or b""))  # type: ignore[arg-type]
    api_version, kind = _text(type_meta.get(1, b"")), _text(type_meta.get(2, b""))
    decoder = DECODERS.get((api_version, kind))
    raw = envelope.get(2, b"")
    if decoder is None or not isinstance(raw, bytes):
        raise UnsupportedMediaType(
            f"{CONTENT_TYPE} is only accepted for "
            f"{', '.join(sorted({k for _api, k in DECODERS}))}, not {api_version} {kind}"
        )
    return {"apiVersion": api_version, "kind": kind, **decoder(_fields(raw))}
