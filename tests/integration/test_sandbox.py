"""site.yml on the sandbox: converge, then the same again and --check change nothing."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, recap

from llmd_emulator.cli import process_alive


def snapshot(endpoints) -> dict[tuple, str]:
    """uid and resourceVersion of every stored object: any write changes one of them."""
    return {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): (
            o["metadata"]["uid"],
            o["metadata"]["resourceVersion"],
        )
        for o in endpoints.state()["objects"]
    }


def test_converge_then_idempotent_then_check_mode_changes_nothing(site, sandbox_emulator):
    first = site()
    assert first.rc == 0, first.output
    assert recap(first)["failed"] == 0
    converged = snapshot(sandbox_emulator)

    second = site()
    assert second.rc == 0, second.output
    assert recap(second)["changed"] == 0, second.output
    assert snapshot(sandbox_emulator) == converged

    check = site("--check", "--diff")
    assert check.rc == 0, check.output
    assert recap(check)["changed"] == 0, check.output
    assert snapshot(sandbox_emulator) == converged


def test_make_sandbox_script_prints_the_summary(tmp_path, ansible_env):
    proc = subprocess.run(
        [sys.executable, ROOT / "tests" / "tools" / "sandbox.py", "--results", tmp_path / "out"],
        cwd=ROOT,
        env=ansible_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "== sandbox summary" in proc.stdout
    assert "failed=0" in proc.stdout
    # The gateway phase ran and its address made it into the summary.
    assert "Gateway URL: http://127.0.0.1:" in proc.stdout
    for name in ("site.log", "state.json", "emulator.log"):
        assert (tmp_path / "out" / name).is_file()
    # The emulator was stopped whatever happened: its process is gone.
    pid = json.loads((tmp_path / "out" / "emulator" / "endpoints.json").read_text())["pid"]
    assert not process_alive(pid)
