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
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "emulator"))

from llmd_emulator.testing import running_emulator  # noqa: E402

# As in inventories/sandbox/group_vars/all/main.yml.
SANDBOX_PROJECT = "llmd-sandbox"
SANDBOX_ZONE = "europe-west4-a"
RECAP = re.compile(r"^localhost\s+:\s+(.*)$", re.MULTILINE)


def run_site(endpoints, results: Path, extra_args: list[str]) -> tuple[int, str, float]:
    env = dict(os.environ)
    for var in (
        "GCP_PROJECT",
        "GCP_AUTH_KIND",
        "GCP_ACCESS_TOKEN",
        "GOOGLE_APPLICATION_CREDENTIALS",
    ):
        env.pop(var, None)
    tmp = results / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
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
                "llmd_kubeconfig": endpoints.kubeconfig,
            }
        ),
        *extra_args,
    ]
    started = time.monotonic()
    lines = []
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            lines.append(line)
    output = "".join(lines)
    (results / "site.log").write_text(output)
    return proc.returncode, output, time.monotonic() - started


def gke_clusters(endpoints, project: str, location: str) -> list[dict]:
    url = f"{endpoints.gke_url}/v1/projects/{project}/locations/{location}/clusters"
    request = urllib.request.Request(url, headers={"Authorization": "Bearer sandbox"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response).get("clusters", [])


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
        rc, output, seconds = run_site(endpoints, results, args.ansible_args)
        state = endpoints.state()
        clusters = gke_clusters(endpoints, SANDBOX_PROJECT, SANDBOX_ZONE)
        state["gke_clusters"] = clusters
        (results / "state.json").write_text(json.dumps(state, indent=1))
        shutil.copyfile(endpoints.log_file, results / "emulator.log")
    recaps = RECAP.findall(output)
    print(
        summarise(state, clusters, recaps[-1].strip() if recaps else "no recap", seconds, results)
    )
    return rc


if __name__ == "__main__":
    sys.exit(main())
