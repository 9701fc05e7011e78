"""gke_ops.OperationWaiter against the emulator answering in Google's formats (no mocks):
Operations found by their real links, busy answers in both wordings waited for, stock-outs
failing fast."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from ansible_collections.llmd.gke.plugins.module_utils.gcp import GcpApiError, GcpClient
from ansible_collections.llmd.gke.plugins.module_utils.gke_ops import (
    OperationWaiter,
    split_path,
    stockout_in,
    targets,
)

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "tests" / "emulator"))
from llmd_emulator.testing import running_emulator  # noqa: E402

PROJECT = "proj"
LOCATION = "europe-west4-a"
PREFIX = f"projects/{PROJECT}/locations/{LOCATION}"
TIME_SCALE = 0.01
FAST = dict(max_retries=4, backoff_base=0.01, backoff_max=0.05, retry_budget=5.0)
TPU_POOL = {"name": "tpu", "initialNodeCount": 1, "config": {"machineType": "ct6e-standard-4t"}}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    with running_emulator(tmp_path_factory.mktemp("ops-emulator"), time_scale=TIME_SCALE) as ep:
        ep.admin_post(
            "/config",
            {
                "gke": {
                    "durations": {
                        "CREATE_CLUSTER": 150,  # 1.5 s: outlasts a poll interval
                        "CREATE_TPU_NODE_POOL": 150,
                        "SET_NODE_POOL_SIZE": 10,
                        "STOCKOUT_ONSET": 100,
                        "STOCKOUT_GIVE_UP": 6000,
                    }
                }
            },
        )
        yield ep


@pytest.fixture
def client(emulator, monkeypatch):
    monkeypatch.delenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER", raising=False)
    params = {
        "auth_kind": "accesstoken",
        "access_token": "ya29.unit-test-token",
        "project": PROJECT,
        "location": LOCATION,
        "api_endpoint": emulator.gke_url,
    }
    return GcpClient(params, **FAST)


def waiter_for(client, **options) -> OperationWaiter:
    params = {"wait_timeout": 60, "poll_interval": 1, "progress_interval": 0, **options}
    return OperationWaiter(client, params)


REAL = "https://container.googleapis.com/v1/projects/805818759045"
OWN = "https://h/v1/projects"
C = "locations/us-east1-b/clusters/c"


@pytest.mark.parametrize(
    ("link", "path", "found"),
    [
        # gcloud's own output: project number and zones/<zone> for a zonal node pool.
        (f"{REAL}/zones/us-east1-b/clusters/c/nodePools/np", C, 1),
        (f"{REAL}/zones/us-east1-b/clusters/c/nodePools/np", f"{C}/nodePools/np", 1),
        (f"{REAL}/locations/us-east1/clusters/c", "locations/us-east1/clusters/c", 1),
        (f"{REAL}/zones/us-east1-b/clusters/c2", C, 0),
        (f"{REAL}/zones/us-east1-c/clusters/c", C, 0),
        (f"{REAL}/zones/us-east1-b/clusters/c", f"{C}/nodePools/np", 0),
        (f"{OWN}/my-project/locations/us-east1-b/clusters/c", C, 1),
        (f"{OWN}/other-project/zones/us-east1-b/clusters/c", C, 0),
    ],
)
def test_an_operation_targets_its_resource_whatever_link_form(link, path, found):
    operation = {"targetLink": link}
    assert targets(operation, "my-project", f"projects/my-project/{path}") is bool(found)


def test_split_path():
    assert split_path(f"{REAL}/zones/z-1/clusters/c/nodePools/np") == (
        "805818759045",
        "z-1",
        "clusters/c/nodePools/np",
    )
    assert split_path("https://h/v1/other") is None


def test_a_running_create_is_found_by_its_real_links(emulator, client):
    # The emulator writes the project number and zones/ (as GKE does); the old comparison of
    # projects/<id>/locations/<l>/... with the targetLink never found a running Operation.
    op = client.post(f"{PREFIX}/clusters", {"cluster": {"name": "found", "initialNodeCount": 1}})
    assert "/projects/proj/" not in op["targetLink"] and "/zones/" in op["targetLink"]
    waiter = waiter_for(client)
    running = waiter.running_on(PROJECT, LOCATION, f"{PREFIX}/clusters/found")
    assert [o["name"] for o in running] == [op["name"]]
    assert waiter.running_on(PROJECT, LOCATION, f"{PREFIX}/clusters/foun") == []
    waiter.wait_all(running)
    assert waiter.running_on(PROJECT, LOCATION, f"{PREFIX}/clusters/found") == []


def test_busy_answers_in_both_wordings_are_waited_for_then_sent(emulator, client):
    create = client.post(f"{PREFIX}/clusters", {"cluster": {"name": "busy", "initialNodeCount": 1}})
    waiter = waiter_for(client)
    cluster = f"{PREFIX}/clusters/busy"
    # "Operation X is currently creating cluster busy. Please wait ..."
    with pytest.raises(GcpApiError, match="is currently creating cluster busy. Please wait"):
        client.request("POST", f"{cluster}/nodePools", {"nodePool": TPU_POOL}, retry_busy=False)
    pool_op = waiter.send(
        "POST", f"{cluster}/nodePools", {"nodePool": TPU_POOL}, project=PROJECT, location=LOCATION
    )
    assert pool_op["operationType"] == "CREATE_NODE_POOL"
    assert client.get(f"{PREFIX}/operations/{create['name']}")["status"] == "DONE"
    waiter.wait(pool_op)
    first = client.post(f"{cluster}/nodePools/default-pool:setSize", {"nodeCount": 1})
    # "Cluster is running incompatible operation X." (a resize holds the cluster)
    with pytest.raises(GcpApiError, match=f"running incompatible operation {first['name']}"):
        client.request(
            "POST", f"{cluster}/nodePools/default-pool:setSize", {"nodeCount": 2}, retry_busy=False
        )
    resize = waiter.send(
        "POST",
        f"{cluster}/nodePools/default-pool:setSize",
        {"nodeCount": 2},
        project=PROJECT,
        location=LOCATION,
    )
    assert resize["operationType"] == "SET_NODE_POOL_SIZE"
    assert client.get(f"{PREFIX}/operations/{first['name']}")["status"] == "DONE"
    assert waiter.waited > 0
    waiter.wait(resize)


def test_without_wait_a_busy_answer_is_not_waited_for(emulator, client):
    op = client.post(f"{PREFIX}/clusters", {"cluster": {"name": "nowait", "initialNodeCount": 1}})
    waiter = waiter_for(client)
    client.retry_budget = 0.2
    with pytest.raises(GcpApiError) as err:
        waiter.send(
            "POST",
            f"{PREFIX}/clusters/nowait/nodePools",
            {"nodePool": TPU_POOL},
            project=PROJECT,
            location=LOCATION,
            wait=False,
        )
    assert err.value.grpc_status == "FAILED_PRECONDITION"
    waiter.wait(op)


def test_a_stockout_fails_fast_with_the_zones_and_the_lock(emulator, client):
    waiter = waiter_for(client)
    waiter.wait(
        client.post(f"{PREFIX}/clusters", {"cluster": {"name": "stock", "initialNodeCount": 1}})
    )
    emulator.admin_post("/scenario", {"add": ["gke-tpu-stockout"]})
    try:
        op = client.post(f"{PREFIX}/clusters/stock/nodePools", {"nodePool": TPU_POOL})
        start = time.monotonic()
        with pytest.raises(GcpApiError) as err:
            waiter.wait(op)
        took = time.monotonic() - start
    finally:
        emulator.admin_post("/scenario", {"remove": ["gke-tpu-stockout"]})
    onset = 100 * TIME_SCALE
    # Within two poll intervals (1 s) of the onset, far before GKE gives up (60 s here).
    assert took < onset + 2.5, took
    error = err.value
    assert error.grpc_status == "RESOURCE_EXHAUSTED"
    assert "[GCE_STOCKOUT]" in error.message and "europe-west4-a" in error.message
    assert "us-east5-a" in error.hint and "europe-west4-a," not in error.hint
    assert "reservation" in error.hint and "smaller slice" in error.hint
    assert "keeps the cluster locked" in error.hint and "cannot be cancelled" in error.hint
    assert error.operation["status"] == "RUNNING"


def test_stockout_is_read_from_detail_or_the_pool_conditions_not_deprecated_fields():
    message = "Current errors: [GCE_STOCKOUT]: The zone 'projects/p/zones/z' does not have enough"
    assert stockout_in({"detail": message}) == message
    pool = {"conditions": [{"canonicalCode": "RESOURCE_EXHAUSTED", "message": message}]}
    assert stockout_in({}, pool) == message
    assert stockout_in({"statusMessage": message}) is None  # deprecated: not read
    quota = {"conditions": [{"canonicalCode": "RESOURCE_EXHAUSTED", "message": "quota"}]}
    assert stockout_in({}, quota) is None
