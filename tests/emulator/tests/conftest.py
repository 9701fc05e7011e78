"""Shared fixtures: a real background emulator per test module, and Ansible/kubectl helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llmd_emulator.testing import Endpoints, running_emulator  # noqa: E402

TIME_SCALE = 0.01


def tools_bin() -> str:
    """Directory holding kubectl, helm and ansible-playbook for the tests."""
    return os.environ.get("LLMD_TOOLS_BIN") or str(Path(sys.executable).parent)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    """A fresh emulator for the test module (time scale 0.01)."""
    with running_emulator(tmp_path_factory.mktemp("emulator"), time_scale=TIME_SCALE) as endpoints:
        yield endpoints


def tool_env(tmp_path: Path, kubeconfig: str) -> dict[str, str]:
    """Environment for kubectl/helm/ansible-playbook: private temp, cache and home dirs."""
    home = tmp_path / "home"
    for sub in ("tmp", "ansible-local", "ansible-remote", "ansible-home", "kube-cache"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        TMPDIR=str(home / "tmp"),
        KUBECONFIG=kubeconfig,
        KUBECACHEDIR=str(home / "kube-cache"),
        K8S_AUTH_KUBECONFIG=kubeconfig,
        ANSIBLE_HOME=str(home / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(home / "ansible-local"),
        ANSIBLE_REMOTE_TEMP=str(home / "ansible-remote"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PIPELINING="1",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        HELM_CACHE_HOME=str(home / "helm-cache"),
        HELM_CONFIG_HOME=str(home / "helm-config"),
        HELM_DATA_HOME=str(home / "helm-data"),
        PATH=os.pathsep.join((tools_bin(), env.get("PATH", ""))),
    )
    return env


@pytest.fixture
def ansible_env(tmp_path: Path, emulator: Endpoints) -> dict[str, str]:
    """Environment for ansible-playbook, kubectl and helm against the module's emulator."""
    return tool_env(tmp_path, emulator.kubeconfig)


def run_playbook(
    text: str, env: dict[str, str]
) -> tuple[int, str, dict[str, list[dict[str, Any]]]]:
    """Run a playbook (YAML text) on localhost; returns (rc, stdout, results by task name).

    Needs the ansible.posix.json callback in env (ansible_env sets it). Each task name maps to the
    list of its host results (one per loop item for loops).
    """
    path = Path(env["TMPDIR"]) / "playbook.yml"
    path.write_text(text)
    proc = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        return proc.returncode, proc.stdout + proc.stderr, results
    for play in report.get("plays", []):
        for task in play.get("tasks", []):
            results.setdefault(task["task"]["name"], []).extend(task["hosts"].values())
    return proc.returncode, proc.stdout + proc.stderr, results


def run_tool(*args: str, env: dict[str, str], stdin: str | None = None, check: bool = True):
    """Run kubectl/helm; with check, a non-zero exit fails the test with its output."""
    proc = subprocess.run(
        list(args), env=env, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc
