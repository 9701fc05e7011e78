"""`make sandbox`: the deployment end to end against the emulator, then a short summary.

Starts the emulator (tests/emulator) in the background, runs site.yml with inventories/sandbox
and the emulator's endpoints, prints what was created, the gateway URL and where the results
are, and stops the emulator whatever happened. Exit status: that of ansible-playbook.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "emulator"))
sys.path.insert(0, str(ROOT / "tests" / "tools"))

import upstream  # noqa: E402

from llmd_emulator.testing import running_emulator  # noqa: E402

# As in inventories/sandbox/group_vars/all/main.yml.
SANDBOX_PROJECT = "llmd-sandbox"
SANDBOX_ZONE = "europe-west4-a"
SANDBOX_TPU_POOL = "tpu-v6e-pool"
RECAP = re.compile(r"^localhost\s+:\s+(.*)$", re.MULTILINE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_site(endpoints, results: Path, extra_args: list[str]) -> tuple[int, str, float]:
    env = dict(os.environ)
    for var in (
        "GCP_PROJECT",
        "GCP_AUTH_KIND",
        "GCP_ACCESS_TOKEN",
        "GOOGLE_APPLICATION_CREDENTIALS",
    ):
        env.pop(var, None)
    # A short private $TMPDIR: ansible-core binds a Unix socket below it, and the results
    # directory may sit too deep for one (the path of a socket is limited to about 107 bytes).
    tmp = Path(tempfile.mkdtemp(prefix="llmd-sandbox-"))
    env.update(TMPDIR=str(tmp), ANSIBLE_NOCOLOR="1", NO_GCE_CHECK="True")
    command = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "site.yml",
        "-i",
        "inventories/sandbox",
        "-e",
        json.dumps(
            {
                "llmd_gke_api_endpoint": endpoints.gke_url,
                "llmd_compute_api_endpoint": endpoints.gke_url + "/compute/",
                "llmd_quotas_api_endpoint": endpoints.gke_url + "/cloudquotas/",
                # The emulated GKE takes any token; its Kubernetes API only its own, which
                # stands for the Google access token a real cluster accepts.
                "llmd_gcp_access_token": endpoints.token,
                "llmd_kubeconfig": str(results / "kubeconfig.yaml"),
                "tpu_timing_file": str(results / "tpu-timing.json"),
                # The emulated Istio binds the Gateway's listener port itself on 127.0.0.1.
                "llmd_gateway_port": free_port(),
                # The real pinned charts, CRD manifests and KServe tree (tests/tools/upstream.py:
                # $LLMD_UPSTREAM_DIR, ../shared/upstream, or fetched at the pinned commits).
                **upstream.ansible_vars(),
            }
        ),
        *extra_args,
    ]
    started = time.monotonic()
    lines = []
    try:
        with subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as proc:
            for line in proc.stdout:
                sys.stdout.write(line)
                lines.append(line)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    output = "".join(lines)
    (results / "site.log").write_text(output)
    return proc.returncode, output, time.monotonic() - started


def gke_clusters(endpoints, project: str, location: str) -> list[dict]:
    url = f"{endpoints.gke_url}/v1/projects/{project}/locations/{location}/clusters"
    request = urllib.request.Request(url, headers={"Authorization": "Bearer sandbox"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response).get("clusters", [])


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def tpu_pool_timing(endpoints, results: Path, pool: str) -> str | None:
    """How long the TPU pool's creation took and how much of it the run did not wait for.

    The create Operation's start and end come from the emulated GKE; the time site.yml spent
    blocked on it comes from the tpu role (tpu_timing_file): the rest ran alongside the phases
    between tpu.yml and tpu_ready.yml.
    """
    timing_file = results / "tpu-timing.json"
    if not timing_file.is_file():
        return None
    waited = float(json.loads(timing_file.read_text()).get("waited_seconds") or 0)
    url = f"{endpoints.gke_url}/v1/projects/{SANDBOX_PROJECT}/locations/{SANDBOX_ZONE}/operations"
    request = urllib.request.Request(url, headers={"Authorization": "Bearer sandbox"})
    with urllib.request.urlopen(request, timeout=30) as response:
        operations = json.load(response).get("operations", [])
    creates = [
        op
        for op in operations
        if op.get("operationType") == "CREATE_NODE_POOL"
        and op.get("targetLink", "").endswith("/nodePools/" + pool)
        and op.get("endTime")
    ]
    if not creates:
        return f"TPU pool {pool}: already there, nothing to create; waited {waited:.1f} s"
    took = (_when(creates[-1]["endTime"]) - _when(creates[-1]["startTime"])).total_seconds()
    saved = max(took - waited, 0.0)
    return (
        f"TPU pool {pool}: creation took {took:.1f} s, site.yml waited {waited:.1f} s for it; "
        f"{saved:.1f} s ({100 * saved / took if took else 0:.0f}%) ran alongside the phases "
        "between tpu and tpu_ready (emulated time is compressed by --time-scale)"
    )


def summarise(state: dict, clusters: list, recap: str, seconds: float, results: Path) -> str:
    objects = state.get("objects", [])
    kinds = collections.Counter(o["kind"] for o in objects)
    lines = ["", "== sandbox summary", f"site.yml: {recap} ({seconds:.0f} s)"]
    for cluster in clusters:
        pools = ", ".join(
            f"{p['name']} ({p.get('status')}, {p.get('initialNodeCount', '?')} nodes)"
            for p in cluster.get("nodePools", [])
        )
        lines.append(f"GKE cluster {cluster['name']}: {cluster.get('status')}; pools: {pools}")
    if state.get("tpu_timing"):
        lines.append(state["tpu_timing"])
    if kinds:
        lines.append(
            "Kubernetes objects: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        )
    for gateway in (o for o in objects if o["kind"] == "Gateway"):
        addresses = (gateway.get("status") or {}).get("addresses") or []
        listeners = gateway.get("spec", {}).get("listeners") or [{}]
        if addresses:
            port = listeners[0].get("port", 80)
            lines.append(f"Gateway URL: http://{addresses[0]['value']}:{port}")
    lines.append(f"Results: {results} (site.log, state.json, emulator.log)")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "sandbox-results")
    parser.add_argument("--time-scale", type=float, default=0.01)
    parser.add_argument("ansible_args", nargs="*", help="extra ansible-playbook arguments")
    args = parser.parse_args()
    results = args.results.resolve()
    shutil.rmtree(results, ignore_errors=True)
    results.mkdir(parents=True)
    with running_emulator(results / "emulator", time_scale=args.time_scale) as endpoints:
        endpoints.admin_post("/config", {"gateway": {"bind_exact_ports": True}})
        rc, output, seconds = run_site(endpoints, results, args.ansible_args)
        state = endpoints.state()
        clusters = gke_clusters(endpoints, SANDBOX_PROJECT, SANDBOX_ZONE)
        state["gke_clusters"] = clusters
        state["tpu_timing"] = tpu_pool_timing(endpoints, results, SANDBOX_TPU_POOL)
        (results / "state.json").write_text(json.dumps(state, indent=1))
        shutil.copyfile(endpoints.log_file, results / "emulator.log")
    recaps = RECAP.findall(output)
    print(
        summarise(state, clusters, recaps[-1].strip() if recaps else "no recap", seconds, results)
    )
    return rc


if __name__ == "__main__":
    sys.exit(main())
