"""site.yml's cluster and tpu phases on the sandbox: the TPU pool is started, the run goes on,
and the wait before the model phase shows progress; the TPU node check fails on a wrong node.
A run killed during the cluster create or the TPU pool create, then started again, waits for
the running Operation (found by GKE's real links: project number, zones/) instead of sending a
second create, and no busy answer (400 FAILED_PRECONDITION) reaches the user."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import requests
from conftest import ROOT, VENV_BIN, kubectl, recap

PROGRESS = re.compile(r"CREATE_NODE_POOL operation-\S+ (PENDING|RUNNING), \d+ s elapsed")
PLATFORM = "operators,kserve,gateway,model,netpol,verify,bench"
PROGRESS_ENV = {"LLMD_GKE_PROGRESS_INTERVAL": "2"}
OPERATIONS = "/v1/projects/llmd-sandbox/locations/-/operations"


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


def kill_site_during(emulator, ansible_env, gateway_port, op_type: str, known: int) -> str:
    """Start site.yml (cluster and tpu phases), kill it (its whole process group, as Ctrl-C
    would) while the new ``op_type`` Operation runs; return what it printed."""
    extra = {
        "llmd_gke_api_endpoint": emulator.gke_url,
        "llmd_compute_api_endpoint": emulator.gke_url + "/compute/",
        "llmd_quotas_api_endpoint": emulator.gke_url + "/cloudquotas/",
        "llmd_gcp_access_token": emulator.token,
        "llmd_kubeconfig": str(Path(emulator.state_dir) / "llmd-kubeconfig.yaml"),
        "llmd_gateway_port": gateway_port,
    }
    command = [str(VENV_BIN / "ansible-playbook"), "site.yml", "-i", "inventories/sandbox"]
    command += ["-e", json.dumps(extra), "--skip-tags", PLATFORM]
    with subprocess.Popen(
        command,
        cwd=ROOT,
        env={**ansible_env, **PROGRESS_ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            deadline = time.monotonic() + 120
            while len(operations(emulator, op_type)) <= known:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, f"no {op_type} started"
                time.sleep(0.2)
            time.sleep(2.5)  # past a progress slice: the module runs again, then dies
            assert operations(emulator, op_type)[-1]["status"] != "DONE"
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _errors = proc.communicate(timeout=30)
    return output


def test_a_killed_run_resumes_the_cluster_create_and_waits_with_progress(
    site, sandbox_emulator, ansible_env, sandbox_gateway_port
):
    # Creates outlast several 2 s progress slices (4000 and 1500 emulated s = 40 and 15 s): the
    # cluster create still runs when the next run, after its preflight, gets to it.
    # The platform phases that run meanwhile (about a minute here) are skipped, so that the wait
    # is seen.
    sandbox_emulator.admin_post(
        "/config",
        {"gke": {"durations": {"CREATE_CLUSTER": 4000, "CREATE_TPU_NODE_POOL": 1500}}},
    )
    killed = kill_site_during(
        sandbox_emulator, ansible_env, sandbox_gateway_port, "CREATE_CLUSTER", 0
    )
    assert "PLAY RECAP" not in killed
    (create,) = operations(sandbox_emulator, "CREATE_CLUSTER")
    # GKE's links carry the project number and zones/, not what the module asked for.
    assert "/projects/llmd-sandbox/" not in create["targetLink"]
    assert "/zones/europe-west4-a/clusters/llmd-sandbox" in create["targetLink"]

    run = site("--skip-tags", PLATFORM, env=PROGRESS_ENV)
    assert run.rc == 0, run.output
    # The second run waited for the first run's create: one create, nothing refused.
    assert [o["name"] for o in operations(sandbox_emulator, "CREATE_CLUSTER")] == [create["name"]]
    assert len(operations(sandbox_emulator, "CREATE_NODE_POOL")) == 1
    assert "FAILED_PRECONDITION" not in run.output and "incompatible operation" not in run.output
    assert f"CREATE_CLUSTER {create['name']} RUNNING" in run.output
    start, _sep, ready = run.output.partition("PLAY [TPU node pool (ready)]")
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
    site, sandbox_emulator, ansible_env, sandbox_gateway_port
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
    # 3500 emulated s = 35 s: still running when the next run's tpu plays get there.
    sandbox_emulator.admin_post("/config", {"gke": {"durations": {"CREATE_TPU_NODE_POOL": 3500}}})
    before = len(operations(sandbox_emulator, "CREATE_NODE_POOL"))
    kill_site_during(
        sandbox_emulator, ansible_env, sandbox_gateway_port, "CREATE_NODE_POOL", before
    )
    create = operations(sandbox_emulator, "CREATE_NODE_POOL")[-1]
    run = site("--skip-tags", PLATFORM, env=PROGRESS_ENV)
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
