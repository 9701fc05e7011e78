"""Assembly: build the Emulator, wire the parts, serve the sites, write the state directory."""

from __future__ import annotations

import asyncio
import base64
import importlib
import importlib.util
import json
import logging
import os
import secrets
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .admin import build_admin_app, scenario_validator
from .core import Emulator
from .k8s.api import ApiServer

log = logging.getLogger(__name__)

PARTS = ("gke", "controllers", "modelserver")


@dataclass
class Options:
    """Command-line options of `run`."""

    state_dir: Path
    k8s_port: int = 0
    gke_port: int = 0
    admin_port: int = 0
    time_scale: float = 1.0
    scenarios: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)


def setup_parts(emu: Emulator) -> list[str]:
    """Call setup(emu) of every part that exists; returns the names wired."""
    wired = []
    for name in PARTS:
        if importlib.util.find_spec(f"{__package__}.{name}") is None:
            continue
        importlib.import_module(f"{__package__}.{name}").setup(emu)
        wired.append(name)
    return wired


def kubeconfig(k8s_url: str, ca_pem: bytes, token: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "llmd-emulator",
                "cluster": {
                    "server": k8s_url,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": "llmd-emulator", "user": {"token": token}}],
        "contexts": [
            {
                "name": "llmd-emulator",
                "context": {"cluster": "llmd-emulator", "user": "llmd-emulator"},
            }
        ],
        "current-context": "llmd-emulator",
        "preferences": {},
    }


def _write(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    """Write atomically (readers poll these files)."""
    tmp = path.with_name(f".{path.name}.tmp")
    if isinstance(data, bytes):
        tmp.write_bytes(data)
    else:
        tmp.write_text(data)
    tmp.chmod(mode)
    tmp.replace(path)


async def serve(options: Options, stop: asyncio.Event) -> None:
    """Run the emulator until stop is set, then shut down cleanly."""
    state_dir = options.state_dir
    emu = Emulator(
        time_scale=options.time_scale,
        config=options.config,
        scenarios={scenario_validator()(s) for s in options.scenarios},
    )
    token = secrets.token_urlsafe(32)
    wired = setup_parts(emu)
    api = ApiServer(emu.store, token)
    try:
        ssl_context = emu.ca.server_ssl_context(["127.0.0.1", "localhost"])
        k8s_port = await emu.add_http_site(api.app(), options.k8s_port, ssl_context=ssl_context)
        admin_port = await emu.add_http_site(build_admin_app(emu), options.admin_port)
        gke_app = getattr(emu, "gke_app", None)
        gke_port = await emu.add_http_site(gke_app, options.gke_port) if gke_app else None
        ca_file = state_dir / "ca.crt"
        config_file = state_dir / "kubeconfig"
        k8s_url = f"https://127.0.0.1:{k8s_port}"
        emu.endpoints.update(
            k8s_url=k8s_url,
            gke_url=f"http://127.0.0.1:{gke_port}" if gke_port else None,
            admin_url=f"http://127.0.0.1:{admin_port}",
            ca_file=str(ca_file),
            token=token,
            kubeconfig=str(config_file),
            pid=os.getpid(),
            log_file=str(state_dir / "emulator.log"),
            time_scale=emu.clock.time_scale,
        )
        _write(ca_file, emu.ca.cert_pem, 0o644)
        _write(config_file, yaml.safe_dump(kubeconfig(k8s_url, emu.ca.cert_pem, token)))
        _write(state_dir / "emulator.pid", f"{os.getpid()}\n", 0o644)
        _write(state_dir / "endpoints.json", json.dumps(emu.endpoints, indent=2) + "\n")
        log.info(
            "serving k8s %s, gke %s, admin %s (parts: %s)",
            k8s_url,
            emu.endpoints["gke_url"],
            emu.endpoints["admin_url"],
            ", ".join(wired) or "none",
        )
        await stop.wait()
        log.info("stopping")
    finally:
        await emu.shutdown()
        (state_dir / "emulator.pid").unlink(missing_ok=True)
        log.info("stopped")


def run(options: Options) -> None:
    """Foreground run; SIGTERM/SIGINT stop it."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(options, stop)

    asyncio.run(main())
