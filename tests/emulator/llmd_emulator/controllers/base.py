"""Controller plumbing: de-duplicating work queues fed by store events, plus object helpers."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..store import now_iso

if TYPE_CHECKING:
    from ..core import Emulator

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects
Mapper = Callable[[str, Obj], Iterable[Key]]

log = logging.getLogger("llmd_emulator.controllers")

# Alphabet Kubernetes uses for generated name suffixes and pod-template-hash.
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def rand_suffix(length: int = 5) -> str:
    return "".join(random.choice(_ALPHANUMS) for _pos in range(length))


def stable_hash(value: str, length: int = 10) -> str:
    """A deterministic pod-template-hash-like string."""
    digest = hashlib.sha256(value.encode()).digest()
    return "".join(_ALPHANUMS[b % len(_ALPHANUMS)] for b in digest[:length])


def key_of(obj: Obj) -> Key:
    meta = obj["metadata"]
    return meta.get("namespace") or "", meta["name"]


def owner_ref(owner: Obj, controller: bool = True) -> Obj:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def controller_of(obj: Obj, kind: str | None = None) -> Obj | None:
    """The ownerReference with controller=true (of the given kind), if any."""
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller") and (kind is None or ref.get("kind") == kind):
            return ref
    return None


def owned_by(obj: Obj, owner: Obj) -> bool:
    uid = owner["metadata"]["uid"]
    return any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or ())


def condition(obj: Obj, type_: str) -> Obj | None:
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == type_:
            return cond
    return None


def set_condition(
    conditions: list[Obj],
    type_: str,
    status: str,
    reason: str = "",
    message: str = "",
    **extra: Any,
) -> None:
    """Upsert a condition in place; lastTransitionTime changes only when status changes."""
    new = {"type": type_, "status": status, "reason": reason, "message": message, **extra}
    for i, old in enumerate(conditions):
        if old.get("type") == type_:
            same = old.get("status") == status
            new["lastTransitionTime"] = old.get("lastTransitionTime") if same else now_iso()
            conditions[i] = {**old, **new}
            return
    new["lastTransitionTime"] = now_iso()
    conditions.append(new)


def container_requests(pod_spec: Obj) -> dict[str, float]:
    """Summed container resource requests (limits count when requests are absent)."""
    total: dict[str, float] = {}
    for container in pod_spec.get("containers") or ():
        resources = container.get("resources") or {}
        wanted = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        for name, quantity in wanted.items():
            total[name] = total.get(name, 0.0) + parse_quantity(quantity)
    return total


def parse_quantity(value: Any) -> float:
    """Kubernetes quantity to a number (enough for counts, cpu and memory)."""
    text = str(value).strip()
    suffixes = {
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
        "m": 1e-3,
        "k": 1e3,
        "M": 1e6,
        "G": 1e9,
        "T": 1e12,
    }
    for suffix, factor in suffixes.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text or 0)


_DISPATCHERS: weakref.WeakKeyDictionary[Any, list[Callable[[str, Obj], None]]] = (
    weakref.WeakKeyDictionary()
)


def _dispatcher(emu: Emulator) -> list[Callable[[str, Obj], None]]:
    """One store subscription shared by all controllers (the store copies objects per call)."""
    callbacks = _DISPATCHERS.get(emu)
    if callbacks is None:
        callbacks = _DISPATCHERS[emu] = []

        def dispatch(event: str, obj: Obj) -> None:
            for callback in callbacks:
                callback(event, obj)

        emu.store.subscribe(dispatch)
    return callbacks


class Controller:
    """Reconciles keys one at a time; events enqueue keys, reconcile may requeue later."""

    def __init__(self, emu: Emulator, name: str, reconcile: Callable[[Key], None]) -> None:
        self.emu = emu
        self.name = name
        self._reconcile = reconcile
        self._pending: set[Key] = set()
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._mappers: dict[tuple[str, str], Mapper] = {}
        _dispatcher(emu).append(self._on_event)
        emu.spawn(self._run())

    def watch(self, api_version: str, kind: str, mapper: Mapper | None = None) -> None:
        """Enqueue mapper(event, obj) keys on events of that kind (default: the object's key)."""
        group = api_version.split("/", maxsplit=1)[0] if "/" in api_version else ""
        self._mappers[(group, kind)] = mapper or (lambda _event, obj: [key_of(obj)])

    def enqueue(self, key: Key) -> None:
        if key not in self._pending:
            self._pending.add(key)
            self._queue.put_nowait(key)

    def enqueue_after(self, key: Key, seconds: float) -> None:
        """Enqueue after `seconds` of emulated time."""

        async def later() -> None:
            await self.emu.clock.sleep(seconds)
            self.enqueue(key)

        self.emu.spawn(later())

    def _on_event(self, event: str, obj: Obj) -> None:
        api_version = obj.get("apiVersion") or ""
        group = api_version.split("/")[0] if "/" in api_version else ""
        mapper = self._mappers.get((group, obj.get("kind") or ""))
        if mapper:
            for key in mapper(event, obj):
                self.enqueue(key)

    async def _run(self) -> None:
        while True:
            key = await self._queue.get()
            self._pending.discard(key)
            try:
                self._reconcile(key)
            except Exception:
                log.exception("%s: reconcile of %s failed; retrying", self.name, key)
                self.enqueue_after(key, 5)
            # Let the API server and other controllers run between reconciles.
            await asyncio.sleep(0)
