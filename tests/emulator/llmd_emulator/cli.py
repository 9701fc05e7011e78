"""Command line: start (background), stop, run (foreground)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m llmd_emulator")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("start", "start in the background; return once it serves"),
        ("run", "run in the foreground"),
        ("stop", "stop the emulator of a state directory"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--state-dir", type=Path, required=True)
        if name == "stop":
            continue
        sub.add_argument("--k8s-port", type=int, default=0)
        sub.add_argument("--gke-port", type=int, default=0)
        sub.add_argument("--admin-port", type=int, default=0)
        sub.add_argument("--time-scale", type=float, default=1.0)
        sub.add_argument("--scenario", action="append", default=[], dest="scenarios")
        sub.add_argument("--config", type=Path, help="JSON or YAML file merged into the config")
    return parser


def _load_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise SystemExit(f"--config {path}: not a mapping")
    return data


def process_alive(pid: int) -> bool:
    """True while pid runs (a zombie waiting for its reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def _running_pid(state_dir: Path) -> int | None:
    try:
        pid = int((state_dir / "emulator.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if process_alive(pid) else None


def start(args: argparse.Namespace, argv: list[str]) -> int:
    """Spawn `run` detached and wait until it has written endpoints.json for its own pid."""
    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    if _running_pid(state_dir):
        print(f"an emulator is already running for {state_dir}", file=sys.stderr)
        return 1
    endpoints = state_dir / "endpoints.json"
    endpoints.unlink(missing_ok=True)
    log_file = state_dir / "emulator.log"
    run_argv = ["run" if a == "start" else a for a in argv]
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "llmd_emulator", *run_argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            print(f"the emulator exited with {process.returncode}; see {log_file}", file=sys.stderr)
            return 1
        if endpoints.exists():
            data = json.loads(endpoints.read_text())
            if data.get("pid") == process.pid:
                print(json.dumps(data, indent=2))
                return 0
        time.sleep(0.05)
    process.terminate()
    print(f"the emulator did not start within {START_TIMEOUT} s; see {log_file}", file=sys.stderr)
    return 1


def stop(args: argparse.Namespace) -> int:
    """SIGTERM the emulator of the state directory and wait until it is gone."""
    state_dir: Path = args.state_dir.resolve()
    pid = _running_pid(state_dir)
    if pid is None:
        print(f"no emulator running for {state_dir}", file=sys.stderr)
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return 0
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    print(f"the emulator {pid} did not stop in {STOP_TIMEOUT} s; killed", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.command == "stop":
        return stop(args)
    if args.command == "start":
        return start(args, argv)
    from .app import Options, run  # heavy imports: only the server needs them

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options = Options(
        state_dir=args.state_dir.resolve(),
        k8s_port=args.k8s_port,
        gke_port=args.gke_port,
        admin_port=args.admin_port,
        time_scale=args.time_scale,
        scenarios=args.scenarios,
        config=_load_config(args.config),
    )
    options.state_dir.mkdir(parents=True, exist_ok=True)
    run(options)
    return 0
