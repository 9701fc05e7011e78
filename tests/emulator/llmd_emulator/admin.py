"""Admin API for tests and `make sandbox`: health, state dump, scenarios, config, time scale,
pod log lines."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .core import deep_merge

if TYPE_CHECKING:
    from .core import Emulator


def _json_error(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


def scenario_validator() -> Callable[[str], str]:
    """scenarios.validate when the controllers part provides it, else accept any name."""
    if importlib.util.find_spec(f"{__package__}.scenarios") is None:
        return lambda name: name
    return importlib.import_module(f"{__package__}.scenarios").validate


def build_admin_app(emu: Emulator) -> web.Application:
    """The admin site: the core routes plus every route the parts added to emu.admin_routes."""
    routes = web.RouteTableDef()

    @routes.get("/healthz")
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    @routes.get("/state")
    async def state(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "resourceVersion": emu.store.resource_version,
                "objects": emu.store.all_objects(),
                "scenario": sorted(emu.scenario),
                "config": emu.config,
                "time_scale": emu.clock.time_scale,
                "endpoints": emu.endpoints,
            }
        )

    @routes.get("/scenario")
    async def get_scenario(_request: web.Request) -> web.Response:
        return web.json_response({"scenario": sorted(emu.scenario)})

    @routes.post("/scenario")
    async def post_scenario(request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        try:
            added = {scenario_validator()(name) for name in body.get("add") or ()}
        except ValueError as exc:
            return _json_error(str(exc))
        emu.scenario |= added
        emu.scenario -= set(body.get("remove") or ())
        return web.json_response({"scenario": sorted(emu.scenario)})

    @routes.post("/config")
    async def post_config(request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict):
            return _json_error("config must be a JSON object")
        deep_merge(emu.config, body)
        return web.json_response(emu.config)

    @routes.post("/time-scale")
    async def post_time_scale(request: web.Request) -> web.Response:
        body = await request.json()
        try:
            emu.clock.set_time_scale(float(body["time_scale"]))
        except (KeyError, TypeError, ValueError) as exc:
            return _json_error(f"time_scale: {exc}")
        emu.endpoints["time_scale"] = emu.clock.time_scale
        return web.json_response({"time_scale": emu.clock.time_scale})

    @routes.post("/logs")
    async def post_logs(request: web.Request) -> web.Response:
        body = await request.json()
        try:
            for line in body["lines"]:
                emu.store.inject_log(body["namespace"], body["pod"], body["container"], line)
        except (KeyError, TypeError) as exc:
            return _json_error(f"logs need namespace, pod, container and lines: {exc}")
        return web.json_response({"added": len(body["lines"])})

    app = web.Application()
    app.add_routes(routes)
    app.add_routes(emu.admin_routes)
    return app
