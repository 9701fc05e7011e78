"""`make sandbox` (tests/tools/sandbox.py): its own options and the ansible-playbook arguments
passed through, the Makefile's ARGS, SANDBOX_ARGS and KEEP, the summary (clean paths, the time
per phase), a kept emulator (state file, the printed kubectl line, replaced by the next run) and
`--stop`. test_sandbox.py runs the whole site.yml kept, asks the model with the printed curl and
stops it."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sandbox
from conftest import PHASES, ROOT, as_printed

from llmd_emulator.cli import process_alive

SCRIPT = ROOT / "tests" / "tools" / "sandbox.py"
VENV = Path(sys.executable).parent.parent


@pytest.mark.parametrize(
    ("argv", "keep", "passthrough"),
    [
        (["--tags", "model", "-v"], False, ["--tags", "model", "-v"]),
        (["--keep", "--tags", "model", "-v"], True, ["--tags", "model", "-v"]),
        (["-e", "x=1", "--keep", "--check"], True, ["-e", "x=1", "--check"]),
        # After `--`, everything is ansible-playbook's, even a name this script knows.
        (["--keep", "--", "--tags", "model", "--keep"], True, ["--tags", "model", "--keep"]),
        (["--", "--tags", "model"], False, ["--tags", "model"]),
        ([], False, []),
    ],
)
def test_own_options_and_the_ansible_playbook_arguments(argv, keep, passthrough):
    args, rest = sandbox.parse_args(argv)
    assert (args.keep, rest) == (keep, passthrough)


def test_own_options_are_whole_words_and_stop_takes_no_playbook_arguments(capsys):
    # --t is no abbreviation of --time-scale: it goes to ansible-playbook (-t is --tags there).
    args, rest = sandbox.parse_args(["--t", "model"])
    assert (args.time_scale, rest) == (0.01, ["--t", "model"])
    for argv in (["--stop", "--tags", "x"], ["--stop", "--keep"]):
        with pytest.raises(SystemExit):
            sandbox.parse_args(argv)
    assert "--stop takes no ansible-playbook arguments" in capsys.readouterr().err


def make_dry_run(*variables: str, target: str = "sandbox") -> list[str]:
    """The commands `make <target>` would run (make -n; the venv of this test, never rebuilt)."""
    proc = subprocess.run(
        [
            "make",
            "-n",
            "--no-print-directory",
            "-o",
            f"{VENV}/.setup-stamp",
            target,
            f"VENV={VENV}",
            *variables,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.replace("\\\n", " ").strip().splitlines()


@pytest.mark.parametrize(
    ("variables", "own", "passthrough"),
    [
        (["ARGS=--tags model -v"], {}, ["--tags", "model", "-v"]),
        (["ARGS=--tags model -v", "KEEP=1"], {"keep": True}, ["--tags", "model", "-v"]),
        # SANDBOX_ARGS as before: ansible-playbook's arguments, with or without `--`, and the
        # script's own options.
        (["SANDBOX_ARGS=--tags model"], {}, ["--tags", "model"]),
        (["SANDBOX_ARGS=-- --tags model"], {}, ["--tags", "model"]),
        (["SANDBOX_ARGS=--time-scale 0.1", "ARGS=-v"], {"time_scale": 0.1}, ["-v"]),
        (["KEEP=0"], {}, []),
        (["KEEP=no", "ARGS=--keep"], {}, ["--keep"]),
        (
            ["KEEP=1", 'ARGS=-e \'{"a": "b c"}\' --check'],
            {"keep": True},
            ["-e", '{"a": "b c"}', "--check"],
        ),
    ],
)
def test_make_sandbox_passes_args_and_keep(variables, own, passthrough):
    (command,) = make_dry_run(*variables)
    words = shlex.split(command)
    assert words[:2] == [f"{VENV}/bin/python", "tests/tools/sandbox.py"]
    args, rest = sandbox.parse_args(words[2:])
    expected = {"keep": False, "stop": False, "time_scale": 0.01, **own}
    assert {k: getattr(args, k) for k in expected} == expected
    assert rest == passthrough


def test_make_sandbox_stop_runs_stop():
    command = " ".join(make_dry_run(target="sandbox-stop"))
    assert f"then {VENV}/bin/python tests/tools/sandbox.py --stop;" in command


def test_paths_are_clean_and_phases_are_site_yml_plays_by_tag(tmp_path):
    assert sandbox.shown(ROOT / "inventories/sandbox/../../sandbox-results/bench") == (
        "sandbox-results/bench"
    )
    assert sandbox.shown(tmp_path / "a" / ".." / "b") == str(tmp_path / "b")
    labels = sandbox.phases()
    assert list(labels.values()) == PHASES
    assert labels["TPU node pool (ready)"] == "tpu (ready)"
    times = sandbox.phase_times([("Preflight checks", 10.0), ("GKE cluster", 13.5)], 20.0)
    assert times == [("preflight", 3.5), ("cluster", 6.5)]
    assert sandbox.phase_times([], 20.0) == []


def test_cpu_per_phase_from_both_counters():
    marks = [("Preflight checks", 1.0, 0.5), ("GKE cluster", 3.5, 0.75)]
    assert sandbox.phase_cpu(marks, (10.0, 2.0)) == [
        ("preflight", 2.5, 0.25),
        ("cluster", 6.5, 1.25),
    ]
    assert sandbox.phase_cpu([], (10.0, 2.0)) == []
    # This process's own counter grows with the CPU it uses; a process that is gone counts 0.
    before = sandbox.process_cpu(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    assert sandbox.process_cpu(os.getpid()) >= before + 0.2
    assert sandbox.process_cpu(None) == 0.0
    assert sandbox.process_cpu(2**22 + 12345) == 0.0


def run_script(*args, env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, SCRIPT, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def paste(line: str, env: dict) -> subprocess.CompletedProcess:
    """A printed command line run as a user pastes it: bash, from the repository root."""
    return subprocess.run(
        ["bash", "-c", line], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def phase_seconds(stdout: str) -> dict[str, float]:
    table = stdout.split("Time per phase (tag: seconds):\n")[1]
    table = table.split("\nGKE cluster", maxsplit=1)[0]
    return {
        m.group(1): float(m.group(2)) for m in re.finditer(r"^  (.+?)\s+(\d+\.\d)$", table, re.M)
    }


@pytest.fixture
def results(tmp_path, ansible_env):
    """The results directory of the test's sandbox, whose kept emulator goes whatever happens."""
    out = tmp_path / "out"
    yield out
    run_script("--stop", "--results", out, env=ansible_env)


def test_keep_then_replaced_by_the_next_run_then_stop(results, ansible_env):
    out = results
    # Preflight and the cluster only (test_sandbox.py runs every phase), kept; the playbook's
    # arguments without `--`.
    kept = run_script("--results", out, "--keep", "--tags", "cluster", env=ansible_env)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "== sandbox summary" in kept.stdout
    assert "failed=0" in kept.stdout
    assert "GKE cluster llmd-sandbox: RUNNING" in kept.stdout
    seconds = phase_seconds(kept.stdout)
    assert list(seconds) == PHASES
    # The CPU time of ansible-playbook and its processes (steadier than the wall time): the
    # modules it ran count, so it is more than nothing.
    cpu = re.search(r"^CPU time of ansible-playbook and what it ran: (\d+) s$", kept.stdout, re.M)
    assert cpu and int(cpu.group(1)) >= 1, kept.stdout
    # The cluster phase waited for the emulated GKE's Operation; the skipped ones only validated.
    assert seconds["cluster"] > seconds["model"]
    assert "/../" not in kept.stdout
    for name in ("site.log", "state.json", "emulator.log", "sandbox-vars.json"):
        assert (out / name).is_file()

    # The state file says what runs where; the emulator runs on after the script returned.
    state = json.loads((out / "sandbox.json").read_text())
    assert process_alive(state["pid"])
    assert state["kubeconfig"] == str(out / "kubeconfig.yaml")
    assert f"== sandbox kept running: emulator pid {state['pid']}" in kept.stdout
    assert "No model deployed yet" in kept.stdout and "curl -sS" not in kept.stdout
    lines = kept.stdout.splitlines()
    kubectl = lines[lines.index("Look at the cluster:") + 1].strip()
    assert kubectl == state["kubectl"]
    # The venv's kubectl, relative to the repository root when the venv is in it (make's .venv).
    venv_kubectl = as_printed(VENV / "bin" / "kubectl")
    assert kubectl.startswith(f"KUBECONFIG={out}/kubeconfig.yaml {venv_kubectl} get pods -A")
    stop = lines[lines.index("Stop it:") + 1].strip()
    assert shlex.split(stop)[-3:] == ["--stop", "--results", str(out)]
    # The kubectl line, pasted: the kept cluster's API answers with the kubeconfig it names.
    pods = paste(kubectl, ansible_env)
    assert pods.returncode == 0, pods.stderr
    assert "No resources found" in pods.stderr
    nodes = paste(kubectl.replace("get pods -A", "get nodes -o name"), ansible_env)
    assert nodes.stdout.count("node/gke-llmd-sandbox-default-pool-") == 2, nodes.stderr

    # The next run (not kept) in the same results stops the kept emulator first, and its own
    # emulator whatever happened.
    again = run_script("--results", out, "--", "--tags", "preflight", env=ansible_env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"Stopped the sandbox kept in {out} (emulator pid {state['pid']})" in again.stdout
    assert not process_alive(state["pid"])
    assert "== sandbox kept running" not in again.stdout
    assert not (out / "sandbox.json").exists()
    pid = json.loads((out / "emulator" / "endpoints.json").read_text())["pid"]
    assert pid != state["pid"] and not process_alive(pid)

    # --stop with nothing running says so, and succeeds.
    stopped = paste(stop, ansible_env)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == f"No sandbox is running (none kept in {out})."
