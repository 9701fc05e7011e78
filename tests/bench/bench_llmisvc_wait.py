"""Benchmark of llmd.gke.llmisvc_wait's waiting: how fast Ready is noticed, how many API calls.

Runs the module's waiting code (module_utils.llmisvc.LlmisvcWaiter) in this process against the
emulator, with the KubeClient wrapped to count every API request (LIST, WATCH, GET, log read;
the emulator's admin API does not count requests).

1. Latency: an LLMInferenceService whose vLLM pod is held unready (scenario
   ``operator-held:<name>-kserve``) is waited for; after a while the scenario is removed and
   the emulator flips Ready. An independent watch stream timestamps the Ready=True event; the
   benchmark reports how long after it the waiter returned (goal: under 1 s).
2. Bounded calls: the same held object is waited for ``--long`` seconds in one call, then in
   progress slices of ``--slice`` seconds (as the action plugin runs the module); the counts
   must not grow with the number of events, only with the number of slices.

    PYTHONPATH=tests/emulator .venv/bin/python tests/bench/bench_llmisvc_wait.py [--long 30]

Exits 1 when Ready was noticed later than 1 s or the calls were not bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "emulator"))
sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import (  # noqa: E402
    Deadline,
    KubeClient,
    Resource,
    Watcher,
)
from ansible_collections.llmd.gke.plugins.module_utils.llmisvc import (  # noqa: E402
    LlmisvcWaiter,
    is_ready,
    llmisvcs,
    read_pod_log,
    result_of,
)
from llmd_emulator.testing import (  # noqa: E402
    SERVING_CRDS,
    gateway,
    kserve_presets,
    kserve_root,
    llm_inference_service,
    namespace,
    running_emulator,
)

KUBECTL = str(Path(sys.executable).parent / "kubectl")
NS = "bench"


class CountingClient(KubeClient):
    """A KubeClient that counts its requests by kind."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.counts: Counter = Counter()
        self.lock = threading.Lock()

    def _count(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1

    def list(self, *args, **kwargs):
        self._count("list")
        return super().list(*args, **kwargs)

    def watch(self, *args, **kwargs):
        self._count("watch")
        return super().watch(*args, **kwargs)

    def get(self, *args, **kwargs):
        self._count("get")
        return super().get(*args, **kwargs)


def apply(kubeconfig: str, objects: list[dict]) -> None:
    subprocess.run(
        [KUBECTL, "--kubeconfig", kubeconfig, "apply", "-f", "-"],
        input="\n---\n".join(json.dumps(o) for o in objects),
        text=True,
        check=True,
        capture_output=True,
    )


def setup(kubeconfig: str) -> None:
    apply(kubeconfig, list(SERVING_CRDS))
    apply(kubeconfig, [*kserve_presets(kserve_root()), namespace(NS)])
    apply(kubeconfig, [gateway()])


def llmisvc(name: str) -> dict:
    return llm_inference_service(name, NS)


def counting_waiter(kubeconfig: str, name: str) -> tuple[CountingClient, LlmisvcWaiter]:
    client = CountingClient(kubeconfig)

    def read_log(*args, **kwargs):
        client._count("log")
        return read_pod_log(client, *args, **kwargs)

    return client, LlmisvcWaiter(client, name, NS, read_log=read_log)


def wait_until_held(kubeconfig: str, name: str, seconds: float = 60) -> None:
    """Until the vLLM container runs (unready, held by the scenario)."""
    client = KubeClient(kubeconfig)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pods = client.list(Resource("v1", "pods", NS), f"app.kubernetes.io/name={name}")["items"]
        for pod in pods:
            for cs in pod.get("status", {}).get("containerStatuses") or ():
                if cs.get("name") == "main" and "running" in (cs.get("state") or {}):
                    return
        time.sleep(0.2)
    raise SystemExit(f"the pod of {name} did not start")


def bench_latency(endpoints, kubeconfig: str, hold: float) -> float:
    name = "latency"
    endpoints.admin_post("/scenario", {"add": [f"operator-held:{name}-kserve"]})
    apply(kubeconfig, [llmisvc(name)])
    wait_until_held(kubeconfig, name)
    client, waiter = counting_waiter(kubeconfig, name)
    seen: dict = {}

    def observe() -> None:  # an independent watch: when did Ready=True reach a client?
        watcher = Watcher(
            KubeClient(kubeconfig), llmisvcs(NS), field_selector=f"metadata.name={name}"
        )
        for snapshot in watcher.snapshots(Deadline(hold + 60)):
            if any(is_ready(obj) for obj in snapshot.values()):
                seen["ready"] = time.monotonic()
                return

    observer = threading.Thread(target=observe, daemon=True)
    observer.start()
    result: dict = {}

    def run() -> None:
        result["outcome"] = waiter.wait(hold + 60)
        result["returned"] = time.monotonic()

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    time.sleep(hold)
    released = time.monotonic()
    endpoints.admin_post("/scenario", {"remove": [f"operator-held:{name}-kserve"]})
    runner.join(hold + 60)
    observer.join(5)
    outcome = result["outcome"]
    latency = result["returned"] - seen.get("ready", released)
    print(
        f"latency: outcome {outcome.status}; Ready=True event seen by an independent watch "
        f"{seen.get('ready', released) - released:.3f} s after the release; waiter returned "
        f"{latency:.3f} s after that event; calls during {hold:.0f} s held + release: "
        f"{dict(client.counts)}"
    )
    return latency


def bench_calls(endpoints, kubeconfig: str, long: float, slice_seconds: float) -> bool:
    name = "long"
    endpoints.admin_post("/scenario", {"add": [f"operator-held:{name}-kserve"]})
    apply(kubeconfig, [llmisvc(name)])
    wait_until_held(kubeconfig, name)
    client, waiter = counting_waiter(kubeconfig, name)
    outcome = waiter.wait(long)
    one_call = dict(client.counts)
    print(f"one call, {long:.0f} s: outcome {outcome.status}; API calls {one_call}")

    client, waiter = counting_waiter(kubeconfig, name)
    start, slices = time.monotonic(), 0
    while time.monotonic() - start < long:
        remaining = max(1, int(long - (time.monotonic() - start)))
        outcome = waiter.wait(remaining, slice_seconds)
        result_of(waiter, outcome, with_children=outcome.status != "pending")  # as the module
        slices += 1
    sliced = dict(client.counts)
    total = sum(sliced.values())
    print(
        f"{slices} slices of {slice_seconds:.0f} s, {long:.0f} s: API calls {sliced} "
        f"({total / slices:.1f} per slice, {total * 60 / long:.0f} per minute)"
    )
    endpoints.admin_post("/scenario", {"remove": [f"operator-held:{name}-kserve"]})
    # Bounded: 3 watched resources -> at most LIST + WATCH each (+1 resume) per slice, plus
    # one log read per slice; the single call: one LIST and a few WATCHes per resource.
    bounded_one = sum(one_call.values()) <= 3 * (2 + int(long // 290) + 1)
    bounded_sliced = total <= slices * (3 * 3 + 1) + 4
    return bounded_one and bounded_sliced


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", type=float, default=30.0, help="seconds of the long wait")
    parser.add_argument("--slice", type=float, default=5.0, help="seconds of a progress slice")
    parser.add_argument("--hold", type=float, default=5.0, help="seconds held before Ready")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as state,
        running_emulator(Path(state), time_scale=0.01) as endpoints,
    ):
        kubeconfig = endpoints.kubeconfig
        os.environ.pop("KUBECONFIG", None)
        setup(kubeconfig)
        latency = bench_latency(endpoints, kubeconfig, args.hold)
        bounded = bench_calls(endpoints, kubeconfig, args.long, args.slice)
    ok = latency < 1.0 and bounded
    print(
        f"RESULT {'PASS' if ok else 'FAIL'}: Ready noticed {latency:.3f} s after the flip "
        f"(goal < 1 s); API calls bounded: {bounded}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
