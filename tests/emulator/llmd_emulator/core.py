"""The Emulator object every part receives: store, clock, config, scenarios, sites, tasks."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Coroutine, Mapping
from typing import Any

from aiohttp import web

from .store import Store
from .tls import CA

log = logging.getLogger(__name__)


def deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Merge update into base in place (dicts recursively, everything else replaced)."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


class Clock:
    """Emulated time: one emulated second lasts time_scale real seconds."""

    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self._scale = time_scale
        self._real0 = time.monotonic()
        self._emulated0 = 0.0

    @property
    def time_scale(self) -> float:
        return self._scale

    def set_time_scale(self, time_scale: float) -> None:
        """Change the scale from now on (emulated time stays continuous)."""
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self._emulated0 = self.now()
        self._real0 = time.monotonic()
        self._scale = time_scale

    def now(self) -> float:
        """Emulated seconds since the emulator started."""
        return self._emulated0 + (time.monotonic() - self._real0) / self._scale

    def real_seconds(self, emulated_seconds: float) -> float:
        return max(0.0, emulated_seconds) * self._scale

    async def sleep(self, emulated_seconds: float) -> None:
        await asyncio.sleep(self.real_seconds(emulated_seconds))


class Emulator:
    """Shared state of one emulator process (see INTERFACE.md)."""

    def __init__(
        self,
        *,
        time_scale: float = 1.0,
        config: Mapping[str, Any] | None = None,
        scenarios: set[str] | None = None,
        ca: CA | None = None,
    ) -> None:
        self.store = Store()
        self.clock = Clock(time_scale)
        self.config: dict[str, Any] = deep_merge({}, config or {})
        self.scenario: set[str] = set(scenarios or ())
        self.ca = ca or CA()
        self.endpoints: dict[str, Any] = {}
        self.admin_routes = web.RouteTableDef()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sites: dict[int, web.AppRunner] = {}

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run coro in the background; it is cancelled at shutdown and its crash is logged."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def add_http_site(
        self, app: web.Application, port: int = 0, ssl_context: Any = None
    ) -> int:
        """Serve app on 127.0.0.1:port (0 = a free port); returns the bound port."""
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        bound = runner.addresses[0][1]
        self._sites[bound] = runner
        return bound

    async def remove_http_site(self, port: int) -> None:
        runner = self._sites.pop(port, None)
        if runner is not None:
            await runner.cleanup()

    async def shutdown(self) -> None:
        """Cancel background tasks and close every site."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for port in list(self._sites):
            await self.remove_http_site(port)
