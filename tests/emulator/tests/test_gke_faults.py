"""Injected faults, the Operation release test control, Compute machineTypes/regions and Cloud
Quotas, against the real emulator."""

from __future__ import annotations

import time

import pytest
import requests
from support import cluster_body

QUOTAS = "/cloudquotas/v1/projects/proj/locations/global/services"
COMPUTE = "/compute/v1/projects/proj"


@pytest.fixture
def faults(gke):
    """POST faults to the admin API; all are cleared afterwards."""
    url = f"{gke.endpoints.admin_url}/faults"
    added = []

    def add(**spec) -> dict:
        response = requests.post(url, json=spec, timeout=10)
        assert response.status_code == 201, response.text
        added.append(response.json()["faults"][0])
        return added[-1]

    yield add
    for fault in added:
        assert requests.delete(f"{url}/{fault['id']}", timeout=10).status_code == 200


def admin_faults(gke) -> dict[int, dict]:
    response = requests.get(f"{gke.endpoints.admin_url}/faults", timeout=10)
    return {f["id"]: f for f in response.json()["faults"]}


def test_http_faults_fire_the_given_number_of_times(gke, faults, valid_cluster):
    fault = faults(method="POST", path=r"/nodePools/default-pool:setSize$", status=429, times=2)
    for _attempt in range(2):
        response = gke.call(
            "POST", "/clusters/valid/nodePools/default-pool:setSize", {"nodeCount": 2}
        )
        assert response.status_code == 429
        assert response.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    listed = admin_faults(gke)[fault["id"]]
    assert listed["hits"] == 2 and listed["times"] == 2
    gke.wait(gke.post("/clusters/valid/nodePools/default-pool:setSize", {"nodeCount": 2}))
    assert admin_faults(gke)[fault["id"]]["hits"] == 2


@pytest.mark.parametrize(
    ("status", "grpc", "text"),
    [
        (503, "UNAVAILABLE", "unavailable"),
        (403, "PERMISSION_DENIED", "Insufficient regional quota to satisfy request"),
        (400, "FAILED_PRECONDITION", "Please wait and try again once it is done."),
    ],
)
@pytest.mark.usefixtures("valid_cluster")
def test_http_fault_kinds_use_googles_error_format(gke, faults, status, grpc, text):
    faults(method="GET", path="/clusters/valid$", status=status)
    response = gke.call("GET", "/clusters/valid")
    assert response.status_code == status
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (status, grpc)
    assert text in error["message"]
    assert gke.call("GET", "/clusters/valid/nodePools").status_code == 200  # path regex


def test_fault_message_and_method_filter(gke, faults, valid_cluster):
    message = 'Insufficient regional quota to satisfy request: resource "TPUS_PER_TPU_FAMILY".'
    faults(method="POST", path="/nodePools$", status=403, message=message, times=1)
    assert gke.call("GET", "/clusters/valid/nodePools").status_code == 200
    response = gke.call("POST", "/clusters/valid/nodePools", {"nodePool": {"name": "q"}})
    assert response.json()["error"]["message"] == message


def test_operation_stockout_leaves_the_pool_in_error(gke, faults, valid_cluster):
    faults(path="/nodePools$", operation_error={"code": 8}, times=1)
    pool = {
        "name": "stockout",
        "initialNodeCount": 1,
        "config": {"machineType": "ct6e-standard-4t"},
    }
    op = gke.wait(gke.post("/clusters/valid/nodePools", {"nodePool": pool}))
    assert op["error"]["code"] == 8
    assert op["error"]["message"] == (
        'The zone "projects/proj/zones/europe-west4-a" does not have enough resources available '
        "to fulfill the request. Try a different zone, or try again later."
    )
    assert gke.get("/clusters/valid/nodePools/stockout")["status"] == "ERROR"
    assert not gke.nodes(pool="stockout")
    gke.wait(gke.delete("/clusters/valid/nodePools/stockout"))


def test_pool_running_with_error_and_invalid_argument_on_cluster(gke, faults, valid_cluster):
    faults(path="/nodePools$", pool_status="RUNNING_WITH_ERROR", message="2 of 3 VMs failed")
    pool = {"name": "partial", "initialNodeCount": 1, "config": {"machineType": "e2-standard-4"}}
    op = gke.wait(gke.post("/clusters/valid/nodePools", {"nodePool": pool}))
    assert "error" not in op
    partial = gke.get("/clusters/valid/nodePools/partial")
    assert (partial["status"], partial["statusMessage"]) == (
        "RUNNING_WITH_ERROR",
        "2 of 3 VMs failed",
    )
    assert len(gke.nodes(pool="partial")) == 1
    gke.wait(gke.delete("/clusters/valid/nodePools/partial"))

    faults(method="POST", path="/clusters$", operation_error={"code": 3, "message": "bad shape"})
    op = gke.wait(gke.post("/clusters", {"cluster": {"name": "broken", "initialNodeCount": 1}}))
    assert op["error"] == {"code": 3, "message": "bad shape", "details": []}
    broken = gke.get("/clusters/broken")
    assert broken["status"] == "ERROR" and broken["statusMessage"] == "bad shape"
    assert "endpoint" not in broken
    gke.wait(gke.delete("/clusters/broken"))


def test_admin_rejects_malformed_faults(gke):
    url = f"{gke.endpoints.admin_url}/faults"
    before = admin_faults(gke)
    for spec in ({"path": "x"}, {"status": 200}, {"status": 429, "bogus": 1}, ["not-a-dict"]):
        assert requests.post(url, json=spec, timeout=10).status_code == 400
    assert admin_faults(gke) == before
    assert requests.delete(f"{url}/999999", timeout=10).status_code == 404


def test_preset_fault_from_config(gke):
    response = gke.call("GET", f"{QUOTAS}/tpu.googleapis.com/quotaInfos", absolute=True)
    assert response.status_code == 403
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"


def test_machine_types_per_zone(gke):
    response = gke.call(
        "GET", f"{COMPUTE}/zones/europe-west4-a/machineTypes/ct6e-standard-4t", absolute=True
    )
    assert response.status_code == 200
    machine = response.json()
    assert (machine["guestCpus"], machine["zone"], machine["name"]) == (
        180,
        "europe-west4-a",
        "ct6e-standard-4t",
    )
    assert (
        gke.call(
            "GET", f"{COMPUTE}/zones/us-west1-a/machineTypes/ct6e-standard-4t", absolute=True
        ).status_code
        == 404
    )
    n1 = gke.call("GET", f"{COMPUTE}/zones/us-west1-a/machineTypes/n1-standard-4", absolute=True)
    assert (n1.json()["guestCpus"], n1.json()["memoryMb"]) == (4, 15360)
    listed = gke.call("GET", f"{COMPUTE}/zones/us-west1-a/machineTypes", absolute=True).json()
    names = {m["name"] for m in listed["items"]}
    assert "n1-standard-4" in names and "ct6e-standard-4t" not in names


def test_region_quotas_count_emulated_nodes(gke, valid_cluster):
    region = gke.call("GET", f"{COMPUTE}/regions/europe-west4", absolute=True).json()
    quotas = {q["metric"]: q for q in region["quotas"]}
    nodes = [
        n
        for n in gke.nodes()
        if n["metadata"]["labels"]["topology.kubernetes.io/region"] == "europe-west4"
    ]
    assert quotas["INSTANCES"]["usage"] == len(nodes) >= 2
    assert quotas["CPUS"]["usage"] == sum(int(n["status"]["capacity"]["cpu"]) for n in nodes)
    assert quotas["IN_USE_ADDRESSES"]["limit"] == 575
    assert quotas["CPUS"]["limit"] == 96  # from the config
    assert gke.call("GET", f"{COMPUTE}/regions/nowhere", absolute=True).status_code == 404


def test_cloud_quotas_quota_info(gke):
    url = f"{QUOTAS}/compute.googleapis.com/quotaInfos/TPUS-PER-TPU-FAMILY-per-project-region"
    info = gke.call("GET", url, absolute=True).json()
    assert info["quotaId"] == "TPUS-PER-TPU-FAMILY-per-project-region"
    assert info["dimensions"] == ["region", "tpu_family"]
    values = {
        (d["dimensions"].get("region"), d["dimensions"].get("tpu_family")): d["details"]["value"]
        for d in info["dimensionsInfos"]
    }
    assert values[("europe-west4", "CT6E")] == "8"  # from the config
    assert values[("us-east5", "CT6E")] == "64"
    missing = gke.call("GET", f"{QUOTAS}/compute.googleapis.com/quotaInfos/NOPE", absolute=True)
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"


def release(gke, body) -> requests.Response:
    """The admin test control: end the unfinished Operations of a type (and name) now."""
    return requests.post(f"{gke.endpoints.admin_url}/gke/operations/release", json=body, timeout=10)


def test_a_held_operation_ends_as_after_its_duration_when_released(gke):
    gke.wait(gke.post("/clusters", cluster_body("held")))
    n1 = {"initialNodeCount": 1, "config": {"machineType": "n1-standard-4"}}
    timed = gke.wait(gke.post("/clusters/held/nodePools", {"nodePool": {"name": "timed", **n1}}))
    nothing = release(gke, {"operationType": "CREATE_NODE_POOL"})
    assert nothing.status_code == 404
    assert nothing.json() == {"error": "no unfinished CREATE_NODE_POOL Operation to release"}

    gke.admin("POST", "/config", {"gke": {"durations": {"CREATE_NODE_POOL": 10**6}}})
    try:
        op = gke.post("/clusters/held/nodePools", {"nodePool": {"name": "kept", **n1}})
        time.sleep(0.4)  # 200 emulated s: past the default 90 s
        assert gke.get(f"/operations/{op['name']}")["status"] == "RUNNING"
        # A name filters; a wrong one or a malformed body releases nothing.
        wrong = release(gke, {"operationType": "CREATE_NODE_POOL", "name": "operation-1-x"})
        assert wrong.status_code == 404 and "operation-1-x" in wrong.json()["error"]
        other_type = release(gke, {"operationType": "DELETE_NODE_POOL", "name": op["name"]})
        assert other_type.status_code == 404
        for body in ({"name": op["name"]}, ["CREATE_NODE_POOL"], {"operationType": 1}):
            assert release(gke, body).status_code == 400
        assert gke.get(f"/operations/{op['name']}")["status"] == "RUNNING"

        answer = release(gke, {"operationType": "CREATE_NODE_POOL", "name": op["name"]})
        assert answer.status_code == 200 and answer.json() == {"released": [op["name"]]}
        done = gke.wait(op, timeout=2)  # 1000 emulated s: far less than its duration
    finally:
        gke.admin("POST", "/config", {"gke": {"durations": {"CREATE_NODE_POOL": 90}}})
    # The same end as the Operation that ran its duration: fields, pool and Nodes.
    assert done["status"] == "DONE" and "error" not in done
    assert set(done) == set(timed) and done["endTime"] >= done["startTime"]
    kept = gke.get("/clusters/held/nodePools/kept")
    same = gke.get("/clusters/held/nodePools/timed")
    assert kept["status"] == same["status"] == "RUNNING"
    assert set(kept) == set(same)
    assert len(gke.nodes(pool="kept", prefix="gke-held-")) == 1
    assert len(gke.nodes(pool="timed", prefix="gke-held-")) == 1
    assert release(gke, {"operationType": "CREATE_NODE_POOL"}).status_code == 404
    gke.wait(gke.delete("/clusters/held"))


def test_a_released_stockout_ends_as_when_gke_gives_up(gke):
    gke.wait(gke.post("/clusters", cluster_body("gives-up")))
    gke.admin("POST", "/config", {"gke": {"durations": {"STOCKOUT_GIVE_UP": 10**6}}})
    assert gke.admin("POST", "/scenario", {"add": ["gke-tpu-stockout"]}).status_code == 200
    try:
        pool = {"name": "tpu", "initialNodeCount": 1, "config": {"machineType": "ct6e-standard-4t"}}
        op = gke.post("/clusters/gives-up/nodePools", {"nodePool": pool})
        deadline = time.monotonic() + 10
        while "nodepoolConditions" not in op:  # the stock-out has begun
            assert time.monotonic() < deadline, op
            time.sleep(0.02)
            op = gke.get(f"/operations/{op['name']}")
        assert release(gke, {"operationType": "CREATE_NODE_POOL"}).json() == {
            "released": [op["name"]]
        }
        done = gke.wait(op, timeout=2)
    finally:
        gke.admin("POST", "/scenario", {"remove": ["gke-tpu-stockout"]})
        gke.admin("POST", "/config", {"gke": {"durations": {"STOCKOUT_GIVE_UP": 2700}}})
    assert done["error"]["code"] == 8 and "GCE_STOCKOUT" in done["error"]["message"]
    assert gke.get("/clusters/gives-up/nodePools/tpu")["status"] == "ERROR"
    gke.wait(gke.delete("/clusters/gives-up"))
