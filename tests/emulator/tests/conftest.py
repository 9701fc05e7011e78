"""Shared fixtures: a real background emulator per test module (helpers are in support.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support import GkeClient, cluster_body, running_gke, tool_env  # noqa: E402

from llmd_emulator.testing import Endpoints, running_emulator  # noqa: E402

TIME_SCALE = 0.01


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    """A fresh emulator for the test module (time scale 0.01)."""
    with running_emulator(tmp_path_factory.mktemp("emulator"), time_scale=TIME_SCALE) as endpoints:
        yield endpoints


@pytest.fixture
def ansible_env(tmp_path: Path, emulator: Endpoints) -> dict[str, str]:
    """Environment for ansible-playbook, kubectl and helm against the module's emulator."""
    return tool_env(tmp_path, emulator.kubeconfig)


@pytest.fixture(scope="module")
def gke(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GkeClient]:
    """A fresh emulator with the GKE tests' configuration (support.GKE_CONFIG) and its client."""
    with running_gke(tmp_path_factory.mktemp("gke-emulator")) as client:
        yield client


@pytest.fixture(scope="module")
def valid_cluster(gke: GkeClient) -> str:
    """A RUNNING cluster shared by the tests of the module."""
    gke.wait(gke.post("/clusters", cluster_body("valid")))
    return "valid"
