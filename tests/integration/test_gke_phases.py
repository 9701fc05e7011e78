"""site.yml's cluster and tpu phases on the sandbox: the TPU pool is started, the run goes on,
and the wait before the model phase shows progress; the TPU node check fails on a wrong node.
A run killed during the cluster create or the TPU pool create, then started again, waits for
the running Operation (found by GKE's real links: project number, zones/) instead of sending a
second create, and no busy answer (400 FAILED_PRECONDITION) reaches the user.

The killed-run tests hold the Operations with a very long emulated duration and end them with the
emulator's release control once the second run has printed what the test waits for, instead of
sleeping out a margin."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable

import pytest
import requests
from conftest import ROOT, Run, kubectl, recap

from llmd_emulator.gke import DURATIONS

PROGRESS = re.compile(r"CREATE_NODE_POOL operation-\S+ (PENDING|RUNNING), \d+ s elapsed")
PLATFORM = "operators,kserve,gateway,model,netpol,verify,bench"
PROGRESS_ENV = {"LLMD_GKE_PROGRESS_INTERVAL": "2"}
OPERATIONS = "/v1/projects/llmd-sandbox/locations/-/operations"
READY_PLAY = "PLAY [TPU node pool (ready)]"
HELD = 10**6  # emulated s (almost 3 hours at the module's time scale): until released
# The operationType of the Operations a gke.durations key times.
OPERATION_TYPES = {"CREATE_TPU_NODE_POOL": "CREATE_NODE_POOL"}


def operations(emulator, op_type: str) -> list[dict]:
    """The emulated GKE's Operations of one type on the sandbox cluster, oldest first."""
    answer = requests.get(
        emulator.gke_url + OPERATIONS, headers={"Authorization": "Bearer t"}, timeout=10
    ).json()
    return [
        o
        for o in answer["operations"]
        if o["operationType"] == op_type and "/clusters/llmd-sandbox" in o["targetLink"]
    ]


def release(emulator, op_type: str, name: str | None = None) -> requests.Response:
    """End the running Operations of op_type (that one, with name) now, as after their
    duration (the emulator's test control)."""
    body = {"operationType": op_type, **({"name": name} if name else {})}
    return requests.post(f"{emulator.admin_url}/gke/operations/release", json=body, timeout=10)


@pytest.fixture
def hold(sandbox_emulator):
    """hold(*keys) sets those gke.durations to HELD for one test; afterwards they are the
    defaults again and whatever still runs of them is released."""
    held: list[str] = []

    def set_held(*keys: str) -> None:
        sandbox_emulator.admin_post("/config", {"gke": {"durations": dict.fromkeys(keys, HELD)}})
        held.extend(keys)

    yield set_held
    defaults = {key: DURATIONS[key] for key in held}
    sandbox_emulator.admin_post("/config", {"gke": {"durations": defaults}})
    for key in held:
        release(sandbox_emulator, OPERATION_TYPES.get(key, key))  # 404 when none runs


class Watched:
    """A run started with subprocess.Popen in its own process group, its output read by a
    thread as it comes (the pipe never fills), so that the test acts on what it printed while
    it runs. Leaving the with block kills what still runs."""

    def __init__(self, command: list[str], env: dict) -> None:
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            # Ansible's display does not flush: unbuffered, each line arrives as printed.
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._lines: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def wait_until(self, seen: Callable[[str], bool], what: str, timeout: float = 180) -> None:
        """Wait until seen(output so far) holds; fail with the output when the run ends first
        or after timeout seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not seen(output := "".join(self._lines)):
                assert not self._ended, f"the run ended before {what}:\n{output}"
                left = deadline - time.monotonic()
                assert left > 0, f"no {what} after {timeout} s:\n{output}"
                self._changed.wait(left)

    def end(self, timeout: float = 300) -> Run:
        """Wait for the run to end; its exit code and whole output."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the run still runs after {timeout} s:\n{self.output}") from None
        self._reader.join(30)
        return Run(code, self.output)

    def __enter__(self) -> Watched:
        return self

    def __exit__(self, *_exc) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self._reader.join(30)
        self.proc.stdout.close()


def release_once_waited_on(run: Watched, emulator, op_type: str, name: str) -> None:
    """Release the Operation once the run has printed that it waits for it (its progress line)."""
    run.wait_until(
        lambda out: f"{op_type} {name} RUNNING" in out, f"progress line of the running {op_type}"
    )
    released = release(emulator, op_type, name)
    assert released.ok, released.text


def kill_site_during(site_command, emulator, op_type: str, known: int) -> str:
    """Start site.yml (cluster and tpu phases), kill it (its whole process group, as Ctrl-C
    would) while the new ``op_type`` Operation runs; return what it printed."""
    with Watched(*site_command("--skip-tags", PLATFORM, env=PROGRESS_ENV)) as run:
        deadline = time.monotonic() + 120
        while len(operations(emulator, op_type)) <= known:
            assert run.proc.poll() is None, run.output
            assert time.monotonic() < deadline, f"no {op_type} started"
            time.sleep(0.2)
        time.sleep(2.5)  # past a progress slice: the module runs again, then dies
        assert operations(emulator, op_type)[-1]["status"] != "DONE"
    return run.output


def test_a_killed_run_resumes_the_cluster_create_and_waits_with_progress(
    sandbox_emulator, site_command, hold
):
    # Both creates run until the test releases them: the cluster create still runs when the
    # next run, after its preflight, gets to it. The platform phases that would run meanwhile
    # are skipped, so that the wait is seen.
    hold("CREATE_CLUSTER", "CREATE_TPU_NODE_POOL")
    killed = kill_site_during(site_command, sandbox_emulator, "CREATE_CLUSTER", 0)
    assert "PLAY RECAP" not in killed
    (create,) = operations(sandbox_emulator, "CREATE_CLUSTER")
    # GKE's links carry the project number and zones/, not what the module asked for.
    assert "/projects/llmd-sandbox/" not in create["targetLink"]
    assert "/zones/europe-west4-a/clusters/llmd-sandbox" in create["targetLink"]

    with Watched(*site_command("--skip-tags", PLATFORM, env=PROGRESS_ENV)) as second:
        release_once_waited_on(second, sandbox_emulator, "CREATE_CLUSTER", create["name"])
        second.wait_until(
            lambda out: len(PROGRESS.findall(out.partition(READY_PLAY)[2])) >= 2,
            "two progress lines of the pool create in the ready play",
        )
        released = release(sandbox_emulator, "CREATE_NODE_POOL")
        assert released.ok, released.text
        run = second.end()
    assert run.rc == 0, run.output
    # The second run waited for the first run's create: one create, nothing refused.
    assert [o["name"] for o in operations(sandbox_emulator, "CREATE_CLUSTER")] == [create["name"]]
    assert len(operations(sandbox_emulator, "CREATE_NODE_POOL")) == 1
    assert "FAILED_PRECONDITION" not in run.output and "incompatible operation" not in run.output
    assert f"CREATE_CLUSTER {create['name']} RUNNING" in run.output
    start, _sep, ready = run.output.partition(READY_PLAY)
    # The start play returned while GKE was still creating the pool ...
    flat = " ".join(start.split())  # Ansible folds long lines
    assert "(started in GCP; the run waits for it before the model phase)" in flat, run.output
    assert not PROGRESS.search(start), run.output
    # ... and the ready play waited for it, printing the Operation's status as it went.
    assert len(PROGRESS.findall(ready)) >= 2, run.output
    assert "TPU pool tpu-v6e-pool RUNNING: 1 node(s) x 4 chips (tpu-v6e-slice, 2x2)" in run
    pools = sandbox_emulator.admin_get("/state")["objects"]
    nodes = [
        o
        for o in pools
        if o["kind"] == "Node"
        and o["metadata"]["labels"].get("cloud.google.com/gke-nodepool") == "tpu-v6e-pool"
    ]
    assert len(nodes) == 1


def test_a_run_killed_during_the_tpu_pool_create_waits_for_it_when_started_again(
    sandbox_emulator, site_command, hold
):
    pool = "/v1/projects/llmd-sandbox/locations/europe-west4-a/clusters/llmd-sandbox/nodePools"
    headers = {"Authorization": "Bearer t"}
    gone = requests.delete(
        f"{sandbox_emulator.gke_url}{pool}/tpu-v6e-pool", headers=headers, timeout=10
    )
    assert gone.status_code == 200, gone.text
    deadline = time.monotonic() + 30
    while requests.get(
        f"{sandbox_emulator.gke_url}{pool}/tpu-v6e-pool", headers=headers, timeout=10
    ).ok:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    # The pool create runs until released: still running when the next run's tpu plays get there.
    hold("CREATE_TPU_NODE_POOL")
    before = len(operations(sandbox_emulator, "CREATE_NODE_POOL"))
    kill_site_during(site_command, sandbox_emulator, "CREATE_NODE_POOL", before)
    create = operations(sandbox_emulator, "CREATE_NODE_POOL")[-1]
    with Watched(*site_command("--skip-tags", PLATFORM, env=PROGRESS_ENV)) as second:
        release_once_waited_on(second, sandbox_emulator, "CREATE_NODE_POOL", create["name"])
        run = second.end()
    assert run.rc == 0, run.output
    assert len(operations(sandbox_emulator, "CREATE_NODE_POOL")) == before + 1
    assert f"CREATE_NODE_POOL {create['name']} RUNNING" in run.output
    assert "TPU pool tpu-v6e-pool RUNNING: 1 node(s) x 4 chips (tpu-v6e-slice, 2x2)" in run
    assert "FAILED_PRECONDITION" not in run.output


def test_a_tpu_node_without_its_taint_fails_the_tpu_phase(site, sandbox_emulator):
    node = kubectl(
        sandbox_emulator,
        "get",
        "nodes",
        "-l",
        "cloud.google.com/gke-nodepool=tpu-v6e-pool",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    )
    assert node
    kubectl(sandbox_emulator, "taint", "nodes", node, "google.com/tpu-")
    try:
        run = site("--tags", "tpu")
        assert run.rc != 0, run.output
        assert recap(run)["failed"] == 1
        assert f"Node {node}: the taint google.com/tpu=present:NoSchedule is missing" in run
    finally:
        kubectl(sandbox_emulator, "taint", "nodes", node, "google.com/tpu=present:NoSchedule")
    again = site("--tags", "tpu")
    assert again.rc == 0, again.output
    assert recap(again)["changed"] == 0, again.output


def test_a_stockout_fails_the_tpu_phase_while_gke_still_retries(site, sandbox_emulator):
    # Last in this module: the cluster stays locked by the create GKE keeps retrying.
    pools = "/v1/projects/llmd-sandbox/locations/europe-west4-a/clusters/llmd-sandbox/nodePools"
    url = f"{sandbox_emulator.gke_url}{pools}/tpu-v6e-pool"
    headers = {"Authorization": "Bearer t"}
    assert requests.delete(url, headers=headers, timeout=10).status_code == 200
    deadline = time.monotonic() + 30
    while requests.get(url, headers=headers, timeout=10).ok:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    # GKE gives up after 6000 emulated s (60 s here; tens of minutes on GKE).
    sandbox_emulator.admin_post("/config", {"gke": {"durations": {"STOCKOUT_GIVE_UP": 6000}}})
    sandbox_emulator.admin_post("/scenario", {"add": ["gke-tpu-stockout"]})
    try:
        run = site("--tags", "tpu")
    finally:
        sandbox_emulator.admin_post("/scenario", {"remove": ["gke-tpu-stockout"]})
    assert run.rc != 0, run.output
    assert recap(run)["failed"] == 1
    assert "[GCE_STOCKOUT]" in run.output and "Try another zone" in run
    assert "keeps the cluster locked until its own retries end" in run
    create = operations(sandbox_emulator, "CREATE_NODE_POOL")[-1]
    assert create["status"] == "RUNNING", "the run waited for GKE to give up"
