"""site.yml's cluster and tpu phases on the sandbox: the TPU pool is started, the run goes on,
and the wait before the model phase shows progress; the TPU node check fails on a wrong node."""

from __future__ import annotations

import re

from conftest import kubectl, recap

PROGRESS = re.compile(r"CREATE_NODE_POOL operation-\S+ (PENDING|RUNNING), \d+ s elapsed")


def test_the_tpu_pool_starts_early_and_is_waited_for_with_progress(site, sandbox_emulator):
    # 1500 emulated s = 15 s here: long enough for progress lines every 2 s. The platform phases
    # that run meanwhile (about a minute here) are skipped, so that the wait is seen.
    sandbox_emulator.admin_post("/config", {"gke": {"durations": {"CREATE_TPU_NODE_POOL": 1500}}})
    run = site(
        "--skip-tags",
        "operators,kserve,gateway,model,netpol,verify,bench",
        env={"LLMD_GKE_PROGRESS_INTERVAL": "2"},
    )
    assert run.rc == 0, run.output
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
