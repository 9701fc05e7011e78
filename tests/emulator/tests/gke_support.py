"""Helpers for the gke tests: the real background emulator and a google-auth GKE client."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from google.auth.transport.requests import AuthorizedSession
from google.oauth2.credentials import Credentials

EMULATOR_DIR = Path(__file__).resolve().parents[1]
POOL_LABEL = "cloud.google.com/gke-nodepool"
# Emulated seconds last 2 ms: creating a cluster (300 s) takes 0.6 s. Idle Nodes stay 10 s unless
# a test lowers AUTOSCALE_DOWN through the admin API.
TIME_SCALE = 0.002
CONFIG = {
    "gke": {
        "durations": {"AUTOSCALE_DOWN": 5000},
        "region_quotas": {"europe-west4": {"CPUS": 96}},
        "quotas": {
            "compute.googleapis.com": {
                "TPUS-PER-TPU-FAMILY-per-project-region": {
                    "values": [
                        {"dimensions": {"region": "europe-west4", "tpu_family": "CT6E"}, "value": 8}
                    ]
                }
            }
        },
    },
    "faults": [
        {"method": "GET", "path": "/services/tpu.googleapis.com/quotaInfos$", "status": 403}
    ],
}


class GkeClient:
    """GKE REST calls with google-auth (bearer token), plus Node reads from the Kubernetes API."""

    def __init__(self, endpoints: dict, project: str = "proj", location: str = "europe-west4-a"):
        self.endpoints = endpoints
        self.url = endpoints["gke_url"]
        self.prefix = f"/v1/projects/{project}/locations/{location}"
        self.session = AuthorizedSession(Credentials(token="test-token"))
        self.k8s = requests.Session()
        self.k8s.headers["Authorization"] = f"Bearer {endpoints['token']}"

    def call(
        self, method: str, path: str, body: Any = None, *, absolute: bool = False, auth: bool = True
    ) -> requests.Response:
        """A request to prefix + path (or to path when absolute); auth=False sends no token."""
        url = self.url + (path if absolute else self.prefix + path)
        sender = self.session.request if auth else requests.request
        return sender(method, url, json=body, timeout=10)

    def _ok(self, method: str, path: str, body: Any = None) -> dict:
        response = self.call(method, path, body)
        assert response.status_code == 200, response.text
        return response.json()

    def get(self, path: str) -> dict:
        return self._ok("GET", path)

    def post(self, path: str, body: Any) -> dict:
        return self._ok("POST", path, body)

    def delete(self, path: str) -> dict:
        return self._ok("DELETE", path)

    def wait(self, op: dict, timeout: float = 10) -> dict:
        """Poll the Operation's selfLink until DONE."""
        deadline = time.monotonic() + timeout
        while op["status"] != "DONE":
            assert time.monotonic() < deadline, f"operation still {op['status']}: {op}"
            time.sleep(0.02)
            response = self.session.get(op["selfLink"], timeout=10)
            assert response.status_code == 200, response.text
            op = response.json()
        return op

    def nodes(self, pool: str | None = None, prefix: str = "") -> list[dict]:
        """Nodes from the Kubernetes API, by pool label and name prefix, sorted by name."""
        params = {"labelSelector": f"{POOL_LABEL}={pool}"} if pool else {}
        url = f"{self.endpoints['k8s_url']}/api/v1/nodes"
        # verify per request: a session-level path loses to REQUESTS_CA_BUNDLE
        response = self.k8s.get(url, params=params, verify=self.endpoints["ca_file"], timeout=10)
        assert response.status_code == 200, response.text
        return sorted(
            (n for n in response.json()["items"] if n["metadata"]["name"].startswith(prefix)),
            key=lambda n: n["metadata"]["name"],
        )

    def admin(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(method, self.endpoints["admin_url"] + path, json=body, timeout=10)


@contextlib.contextmanager
def running_gke(state: Path) -> Iterator[GkeClient]:
    """A background emulator with CONFIG (start/stop through the CLI) and a client for it."""
    config = state / "config.json"
    config.write_text(json.dumps(CONFIG))
    env = dict(os.environ, PYTHONPATH=str(EMULATOR_DIR))
    command = [sys.executable, "-m", "llmd_emulator"]
    start = [*command, "start", "--state-dir", str(state), "--time-scale", str(TIME_SCALE)]
    subprocess.run([*start, "--config", str(config)], env=env, check=True, timeout=60)
    try:
        yield GkeClient(json.loads((state / "endpoints.json").read_text()))
    finally:
        stop = [*command, "stop", "--state-dir", str(state)]
        subprocess.run(stop, env=env, check=False, timeout=60)


def cluster_body(name: str, **extra: Any) -> dict:
    """The cluster the collection creates: default pool n1-standard-4 x2 autoscaling 2..4."""
    cluster = {
        "name": name,
        "initialClusterVersion": "1.34",
        "releaseChannel": {"channel": "REGULAR"},
        "ipAllocationPolicy": {"useIpAliases": True},
        "networkPolicy": {"enabled": True, "provider": "CALICO"},
        "workloadIdentityConfig": {"workloadPool": "proj.svc.id.goog"},
        "nodePools": [
            {
                "name": "default-pool",
                "initialNodeCount": 2,
                "config": {
                    "machineType": "n1-standard-4",
                    "shieldedInstanceConfig": {
                        "enableSecureBoot": True,
                        "enableIntegrityMonitoring": True,
                    },
                },
                "autoscaling": {"enabled": True, "minNodeCount": 2, "maxNodeCount": 4},
            }
        ],
    }
    cluster.update(extra)
    return {"cluster": cluster}
