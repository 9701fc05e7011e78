"""Run the real ansible-playbook against this checkout with an isolated environment."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

# Variables from the user's shell that would change what preflight finds.
AMBIENT = (
    "GCP_PROJECT",
    "GCP_AUTH_KIND",
    "GCP_SERVICE_ACCOUNT_FILE",
    "GCP_ACCESS_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "HF_TOKEN",
    "REGISTRY_AUTH_FILE",
    "XDG_CONFIG_HOME",
    "CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER",
    "ANSIBLE_CONFIG",
    "ANSIBLE_INVENTORY",
)


@dataclass
class Run:
    rc: int
    output: str

    def __contains__(self, text: str) -> bool:
        # Ansible folds long YAML lines: compare with whitespace normalised.
        return " ".join(text.split()) in " ".join(self.output.split())


@pytest.fixture
def ansible_env(tmp_path):
    """An environment with no ambient credentials and private Ansible/TMP directories."""
    env = {k: v for k, v in os.environ.items() if k not in AMBIENT}
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    env.update(
        HOME=str(home),
        TMPDIR=str(tmp_path),
        CLOUDSDK_CONFIG=str(home / "gcloud"),
        NO_GCE_CHECK="True",  # google-auth must not probe a metadata server from tests
        ANSIBLE_HOME=str(tmp_path / "ansible"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"),
        ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-remote"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


@pytest.fixture
def playbook(ansible_env):
    """playbook(*args, env=None) runs ansible-playbook in the checkout and returns a Run."""

    def run(*args: str, env: dict | None = None, timeout: int = 300) -> Run:
        proc = subprocess.run(
            [str(VENV_BIN / "ansible-playbook"), *args],
            cwd=ROOT,
            env={**ansible_env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Run(proc.returncode, proc.stdout + proc.stderr)

    return run
