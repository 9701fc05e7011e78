"""Server-side apply: field sets per manager (fieldsV1 format), removal of dropped fields,
conflicts with other managers (force wins); non-apply writes (create, update, patch) recorded
as `operation: Update` entries that own the fields they set or changed (k8s.io/apiserver
pkg/endpoints/handlers/fieldmanager, structured-merge-diff merge.Updater.Update)."""

from __future__ import annotations

import copy
import json
from typing import Any

from ..store import Conflict, now_iso
from .patch import SET_LISTS, merge_key

FieldSet = dict[str, Any]  # fieldsV1: {"f:spec": {"f:replicas": {}}, "k:{...}": {".": {}}}
IGNORED_TOP = ("apiVersion", "kind", "status")
IGNORED_META = ("resourceVersion", "managedFields", "uid", "creationTimestamp", "generation")


def field_set(value: Any, field: str = "", builtin: bool = True) -> FieldSet:
    """The fieldsV1 set of the leaves of value (lists keyed by merge key for builtin kinds)."""
    if isinstance(value, dict):
        return {f"f:{k}": field_set(v, k, builtin) for k, v in value.items()}
    if isinstance(value, list) and builtin:
        if field in SET_LISTS:
            return {f"v:{json.dumps(v)}": {} for v in value}
        key = merge_key(field, value)
        if key and all(isinstance(i, dict) and key in i for i in value):
            return {
                f"k:{json.dumps({key: i[key]}, separators=(',', ':'))}": {
                    ".": {},
                    **field_set(i, "", builtin),
                }
                for i in value
            }
    return {}


def config_fields(config: dict[str, Any], builtin: bool) -> FieldSet:
    """Fields an apply configuration sets (without identity and server-owned metadata)."""
    body = {k: v for k, v in config.items() if k not in IGNORED_TOP}
    meta = {
        k: v
        for k, v in (body.get("metadata") or {}).items()
        if k not in IGNORED_META and k not in ("name", "namespace")
    }
    body["metadata"] = meta
    fields = field_set(body, builtin=builtin)
    if not meta:
        fields.pop("f:metadata", None)
    return fields


def _leaves(fields: FieldSet, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    if not fields:
        return {prefix}
    found: set[tuple[str, ...]] = set()
    for key, sub in fields.items():
        if key == ".":
            found.add(prefix)
        else:
            found |= _leaves(sub, (*prefix, key))
    return found


def _lookup(obj: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    for part in path:
        kind, _sep, name = part.partition(":")
        if kind == "f" and isinstance(obj, dict) and name in obj:
            obj = obj[name]
        elif kind == "k" and isinstance(obj, list):
            wanted = json.loads(name)
            match = [i for i in obj if isinstance(i, dict) and _matches(i, wanted)]
            if not match:
                return False, None
            obj = match[0]
        elif kind == "v" and isinstance(obj, list):
            value = json.loads(name)
            if value not in obj:
                return False, None
            obj = value
        else:
            return False, None
    return True, obj


def _matches(item: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(item.get(k) == v for k, v in wanted.items())


def _remove(obj: Any, path: tuple[str, ...]) -> None:
    if not path:
        return
    found, parent = _lookup(obj, path[:-1])
    if not found:
        return
    kind, _sep, name = path[-1].partition(":")
    if kind == "f" and isinstance(parent, dict):
        parent.pop(name, None)
    elif kind == "k" and isinstance(parent, list):
        wanted = json.loads(name)
        parent[:] = [i for i in parent if not (isinstance(i, dict) and _matches(i, wanted))]
    elif kind == "v" and isinstance(parent, list):
        value = json.loads(name)
        parent[:] = [i for i in parent if i != value]


def _merge(current: Any, config: Any, field: str, builtin: bool) -> Any:
    if isinstance(current, dict) and isinstance(config, dict):
        result = copy.deepcopy(current)
        for key, value in config.items():
            result[key] = _merge(current.get(key), value, key, builtin)
        return result
    if isinstance(current, list) and isinstance(config, list) and builtin:
        if field in SET_LISTS:
            return current + [v for v in config if v not in current]
        key = merge_key(field, current, config)
        if key and all(isinstance(i, dict) and key in i for i in config + current):
            result = []
            for item in config:
                old = next((c for c in current if c.get(key) == item[key]), None)
                result.append(_merge(old, item, "", builtin) if old else copy.deepcopy(item))
            result += [c for c in current if all(c.get(key) != i[key] for i in config)]
            return result
    return copy.deepcopy(config)


def _managers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return copy.deepcopy(obj.get("metadata", {}).get("managedFields") or [])


def server_side_apply(
    current: dict[str, Any] | None,
    config: dict[str, Any],
    manager: str,
    force: bool,
    builtin: bool,
) -> dict[str, Any]:
    """The object after manager applies config to current (None when creating)."""
    new_fields = config_fields(config, builtin)
    new_leaves = _leaves(new_fields) if new_fields else set()
    base = copy.deepcopy(current) if current else {}
    managers = _managers(base)
    mine = next(
        (m for m in managers if m["manager"] == manager and m["operation"] == "Apply"), None
    )
    others = [m for m in managers if m is not mine]
    if current and not force:
        _check_conflicts(current, config, new_leaves, others, manager)
    old_leaves = _leaves(mine["fieldsV1"]) if mine and mine.get("fieldsV1") else set()
    kept_by_others = set().union(
        *(_leaves(m.get("fieldsV1") or {}) for m in others if m.get("fieldsV1"))
    )
    for path in sorted(old_leaves - new_leaves - kept_by_others, key=len, reverse=True):
        _remove(base, path)
    body = {k: v for k, v in config.items() if k != "status"}
    body["metadata"] = {
        k: v for k, v in (config.get("metadata") or {}).items() if k not in IGNORED_META
    }
    result = _merge(base, body, "", builtin)
    if force:
        for entry in others:
            remaining = _leaves(entry.get("fieldsV1") or {}) - new_leaves
            entry["fieldsV1"] = _to_fieldset(remaining)
        others = [m for m in others if m["fieldsV1"]]
    changed = mine is None or mine.get("fieldsV1") != new_fields
    entry = {
        "manager": manager,
        "operation": "Apply",
        "apiVersion": config.get("apiVersion"),
        "time": now_iso() if changed or not mine else mine.get("time"),
        "fieldsType": "FieldsV1",
        "fieldsV1": new_fields,
    }
    result.setdefault("metadata", {})["managedFields"] = [*others, entry]
    return result


def _to_fieldset(leaves: set[tuple[str, ...]]) -> FieldSet:
    """The fieldsV1 set of leaves; a path that is also a prefix of others is marked "."."""
    fields: FieldSet = {}
    for path in leaves:
        node = fields
        for part in path:
            node = node.setdefault(part, {})
    for path in leaves:
        node = fields
        for part in path:
            node = node[part]
        if path and node and "." not in node:
            node["."] = {}
    return fields


def _check_conflicts(
    current: dict[str, Any],
    config: dict[str, Any],
    leaves: set[tuple[str, ...]],
    others: list[dict[str, Any]],
    manager: str,
) -> None:
    conflicts: list[tuple[str, str]] = []
    for entry in others:
        for path in sorted(_leaves(entry.get("fieldsV1") or {}) & leaves):
            if path and path[-1].startswith(("k:", "v:")):
                continue  # owning a list item's existence: both sides keep it
            found_now, now_value = _lookup(current, path)
            found_new, new_value = _lookup(config, path)
            if found_now and found_new and now_value != new_value:
                conflicts.append((print_manager(entry), path_string(path)))
    if conflicts:
        causes = [
            {"reason": "FieldManagerConflict", "message": f"conflict with {m}", "field": f}
            for m, f in conflicts
        ]
        raise Conflict(_conflict_message(conflicts), {"causes": causes})


def path_string(path: tuple[str, ...]) -> str:
    """structured-merge-diff fieldpath PathElement.String: .field, [key="v",...], [=value]."""
    out = []
    for part in path:
        kind, _sep, name = part.partition(":")
        if kind == "f":
            out.append(f".{name}")
        elif kind == "k":
            key = json.loads(name)
            out.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(key.items())) + "]")
        elif kind == "v":
            out.append(f"[={name}]")
        elif kind == "i":
            out.append(f"[{name}]")
    return "".join(out)


def print_manager(entry: dict[str, Any]) -> str:
    """fieldmanager printManager: the quoted name, `with subresource "s"`, and for an Update
    manager `using <apiVersion>` (the manager identifier carries no time)."""
    printed = json.dumps(entry["manager"])
    if entry.get("subresource"):
        printed += f' with subresource "{entry["subresource"]}"'
    if entry.get("operation") == "Update":
        printed += f" using {entry.get('apiVersion')}"
    return printed


def _conflict_message(conflicts: list[tuple[str, str]]) -> str:
    """apiserver fieldmanager getConflictMessage (managers as printManager prints them)."""
    if len(conflicts) == 1:
        manager, field = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {manager}: {field}"
    by_manager: dict[str, list[str]] = {}
    for manager, field in conflicts:
        by_manager.setdefault(manager, []).append(field)
    lines = []
    for manager in sorted(by_manager):
        lines.append(f"conflicts with {manager}:")
        lines += [f"- {field}" for field in by_manager[manager]]
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


def manager_from_user_agent(user_agent: str) -> str:
    """The default field manager: the User-Agent up to its first '/' (fieldmanager
    prefixFromUserAgent), at most 128 characters."""
    return user_agent.split("/", maxsplit=1)[0][:128]


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    builtin: bool,
    subresource: str | None = None,
) -> None:
    """Set new's managedFields for a non-apply write by manager: the manager's Update entry
    gains every field it set (create) or changed; other managers lose those fields and the
    fields the write removed; an entry left empty goes (structured-merge-diff Updater.Update)."""
    managers = _managers(old) if old else []
    sent = (new.get("metadata") or {}).get("managedFields")
    if old is not None and sent is not None and sent != managers:
        managers = copy.deepcopy(sent)  # the client rewrote managedFields (kubectl csaupgrade)
    new_fields = config_fields(new, builtin)
    new_leaves = _leaves(new_fields) if new_fields else set()
    if old is None:
        changed = new_leaves
        removed: set[tuple[str, ...]] = set()
    else:
        old_fields = config_fields(old, builtin)
        old_leaves = _leaves(old_fields) if old_fields else set()
        changed = {p for p in new_leaves if _lookup(old, p) != _lookup(new, p)}
        removed = old_leaves - new_leaves
    api_version = new.get("apiVersion")
    ident = (manager, "Update", api_version, subresource)
    mine = next(
        (
            m
            for m in managers
            if (m["manager"], m["operation"], m.get("apiVersion"), m.get("subresource")) == ident
        ),
        None,
    )
    if not changed and not removed:
        new.setdefault("metadata", {})["managedFields"] = managers
        return
    kept = []
    for entry in managers:
        if entry is mine:
            continue
        leaves = _leaves(entry.get("fieldsV1") or {}) if entry.get("fieldsV1") else set()
        remaining = leaves - changed - removed
        if remaining != leaves:
            entry["fieldsV1"] = _to_fieldset(remaining)
        if entry["fieldsV1"]:
            kept.append(entry)
    owned = (_leaves(mine["fieldsV1"]) if mine and mine.get("fieldsV1") else set()) - removed
    owned |= changed
    entry = {
        "manager": manager,
        "operation": "Update",
        "apiVersion": api_version,
        "time": now_iso(),
        "fieldsType": "FieldsV1",
        "fieldsV1": _to_fieldset(owned),
    }
    if subresource:
        entry["subresource"] = subresource
    new.setdefault("metadata", {})["managedFields"] = [*kept, entry] if owned else kept
