"""`make sandbox` (tests/tools/sandbox.py): the whole site.yml on its own emulator, a summary,
and the emulator stopped whatever happened."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT

from llmd_emulator.cli import process_alive


def test_make_sandbox_script_prints_the_summary(tmp_path, ansible_env):
    proc = subprocess.run(
        # Preflight and the cluster only: test_sandbox.py runs every phase; this is about the
        # script (summary, results, the emulator stopped).
        [
            sys.executable,
            ROOT / "tests" / "tools" / "sandbox.py",
            "--results",
            tmp_path / "out",
            "--",
            "--tags",
            "cluster",
        ],
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
    assert "GKE cluster llmd-sandbox: RUNNING" in proc.stdout
    for name in ("site.log", "state.json", "emulator.log"):
        assert (tmp_path / "out" / name).is_file()
    # The emulator was stopped whatever happened: its process is gone.
    pid = json.loads((tmp_path / "out" / "emulator" / "endpoints.json").read_text())["pid"]
    assert not process_alive(pid)
