"""molecule/default: site.yml against the emulator through Molecule.

`molecule test -s default` runs destroy, syntax, create (starts the emulator), converge (the same
site.yml), idempotence, verify (through the Kubernetes API) and destroy (stops the emulator).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, VENV_BIN, kubectl

from llmd_emulator.testing import endpoints_of

# The scenarios live in molecule/; molecule would look in extensions/molecule of a collection.
MOLECULE_GLOB = "molecule/*/molecule.yml"


@pytest.fixture
def molecule(ansible_env, short_tmp):
    """molecule(*args) runs molecule in the checkout with a private ephemeral directory.

    Short, because $TMPDIR lies below it (molecule.yml) and ansible-core binds a socket there.
    """
    ephemeral = short_tmp / "molecule"
    env = {
        **ansible_env,
        "MOLECULE_GLOB": MOLECULE_GLOB,
        "MOLECULE_EPHEMERAL_DIRECTORY": str(ephemeral),
        "NO_COLOR": "1",
        # Emulated time 333 times faster than wall time (create.yml's default is 100 times).
        "LLMD_MOLECULE_TIME_SCALE": "0.003",
    }

    def run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(VENV_BIN / "molecule"), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    run.ephemeral = ephemeral
    yield run
    # Whatever happened (a timeout included), no emulator outlives the test.
    subprocess.run(
        [sys.executable, "-m", "llmd_emulator", "stop", "--state-dir", str(ephemeral / "emulator")],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT / "tests" / "emulator")},
        capture_output=True,
        timeout=60,
        check=False,
    )


def succeeds(molecule, action: str) -> str:
    """molecule <action> -s default, which must succeed; its output."""
    proc = molecule(action, "-s", "default", timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert f"default > {action}: Executed: Successful" in output, output
    return output


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains text."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


@pytest.mark.parametrize("scenario", ["default", "kind"])
def test_molecule_syntax(molecule, scenario):
    proc = molecule("syntax", "-s", scenario, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{scenario} > syntax: Executed: Successful" in proc.stdout + proc.stderr


def test_kind_scenario_playbooks_parse(playbook):
    # molecule/kind cannot run here (no Docker): its own create and destroy playbooks, and the
    # shared ones with its inventory, are syntax-checked (molecule syntax checks converge only).
    books = ["create.yml", "destroy.yml", "../shared/converge.yml", "../shared/verify.yml"]
    run = playbook(
        "--syntax-check",
        "-i",
        "molecule/kind/inventory",
        *[f"molecule/kind/{book}" for book in books],
    )
    assert run.rc == 0, run.output


def test_molecule_create_converge_verify_destroy(molecule):
    # `molecule test` runs these plus idempotence, a second converge that test_sandbox.py already
    # runs (site.yml on inventories/sandbox, changed=0 and no object written): the suite runs
    # the scenario's own steps once each.
    outputs = []
    for action in ("create", "converge", "verify"):
        outputs.append(succeeds(molecule, action))
    # verify checked every phase site.yml has, the model and its NetworkPolicies among them.
    assert "model: the LLMInferenceService is Ready" in outputs[2], outputs[2]
    assert "netpol: the three NetworkPolicies of the model namespace exist" in outputs[2]
    # ... and fails, naming the check, when what a phase made is gone.
    emulator = endpoints_of(molecule.ephemeral / "emulator")
    (policy, *_others) = [
        o["metadata"]["name"]
        for o in emulator.objects("NetworkPolicy", "llm-d-inference-scheduling")
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") == "llmd.gke"
    ]
    kubectl(emulator, "-n", "llm-d-inference-scheduling", "delete", "networkpolicy", policy)
    broken = molecule("verify", "-s", "default", timeout=600)
    output = " ".join((broken.stdout + broken.stderr).split())
    assert broken.returncode != 0, output
    check = "netpol: the three NetworkPolicies of the model namespace exist"
    assert f"{check}: found 2, want at least 3" in output, output
    succeeds(molecule, "destroy")
    # destroy stopped the emulator the scenario started.
    assert processes_mentioning(str(molecule.ephemeral / "emulator")) == []
