"""Watch streams: JSON lines {type, object}, from a resourceVersion or the current state."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..store import Gone, Store, StoreError
from .kinds import KindInfo

DEFAULT_TIMEOUT = 1800.0
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


class Watchers:
    """Open watch streams; close() ends them all (at shutdown)."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[Any]] = set()

    def open(self) -> asyncio.Queue[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._queues.add(queue)
        return queue

    def discard(self, queue: asyncio.Queue[Any]) -> None:
        self._queues.discard(queue)

    def close(self) -> None:
        for queue in self._queues:
            queue.put_nowait(None)


async def serve_watch(
    request: web.Request,
    store: Store,
    watchers: Watchers,
    *,
    info: KindInfo,
    api_version: str,
    matches: Callable[[dict[str, Any]], bool],
) -> web.StreamResponse:
    """Stream events of one kind that satisfy matches until timeoutSeconds or disconnect."""
    query = request.query
    timeout = float(query.get("timeoutSeconds") or DEFAULT_TIMEOUT)
    since = query.get("resourceVersion", "")
    initial = query.get("sendInitialEvents") == "true"
    queue = watchers.open()

    def on_event(event: str, obj: dict[str, Any]) -> None:
        if (
            obj.get("kind") == info.kind
            and obj.get("apiVersion", "").rpartition("/")[0] == info.group
        ):
            queue.put_nowait((event, obj))

    unsubscribe = store.subscribe(on_event)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    try:
        replay = _replay(store, info, api_version, since, initial)
    except Gone as exc:
        replay, error = [], exc
    else:
        error = None
    await response.prepare(request)
    try:
        if error is not None:
            await _send(response, "ERROR", _status(error))
            return response
        last_rv = int(store.resource_version)
        for event, obj in replay:
            if event == "BOOKMARK" or matches(obj):
                await _send(response, event, obj)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (remaining := deadline - loop.time()) > 0:
            try:
                item = await asyncio.wait_for(queue.get(), remaining)
            except TimeoutError:
                break
            if item is None:
                break
            event, obj = item
            if int(obj["metadata"]["resourceVersion"]) <= last_rv or not matches(obj):
                continue
            obj["apiVersion"] = api_version
            await _send(response, event, obj)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        unsubscribe()
        watchers.discard(queue)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


def _replay(
    store: Store, info: KindInfo, api_version: str, since: str, initial: bool
) -> list[tuple[str, dict[str, Any]]]:
    if since and since != "0" and not initial:
        events = []
        for _rv, event, obj in store.history_since(int(since)):
            if obj.get("kind") == info.kind and obj["apiVersion"].rpartition("/")[0] == info.group:
                obj["apiVersion"] = api_version
                events.append((event, obj))
        return events
    events = [("ADDED", obj) for obj in store.list(api_version, info.kind)]
    if initial:
        bookmark = {
            "kind": info.kind,
            "apiVersion": api_version,
            "metadata": {
                "resourceVersion": store.resource_version,
                "annotations": {INITIAL_EVENTS_END: "true"},
            },
        }
        events.append(("BOOKMARK", bookmark))
    return events


def _status(error: StoreError) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": error.message,
        "reason": error.reason,
        "code": error.code,
    }


async def _send(response: web.StreamResponse, event: str, obj: dict[str, Any]) -> None:
    await response.write(json.dumps({"type": event, "object": obj}).encode() + b"\n")
