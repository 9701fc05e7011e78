"""The GKE stand-in answers in Google's own formats: request bodies checked against the request
schema of Google's discovery document (google-api-python-client), both busy wordings, 409, and
the TPU stock-out scenario (gke-tpu-stockout)."""

from __future__ import annotations

import time

import pytest
from support import cluster_body

from llmd_emulator import discovery


def test_unknown_fields_are_refused_in_googles_words(gke, valid_cluster):
    assert discovery.available(), "google-api-python-client (requirements-dev.txt) is missing"
    body = cluster_body("schema1")
    body["cluster"]["nodePools"][0]["config"]["preemptable"] = True
    answer = gke.call("POST", "/clusters", body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"] == (
        'Invalid JSON payload received. Unknown name "preemptable" at '
        "'cluster.node_pools[0].config': Cannot find field."
    )
    top = gke.call("POST", "/clusters", {"cluster": {"name": "x"}, "clusterName": "x"})
    assert top.json()["error"]["message"] == (
        'Invalid JSON payload received. Unknown name "clusterName": Cannot find field.'
    )
    wrong_type = gke.call(
        "POST",
        f"/clusters/{valid_cluster}/nodePools/default-pool:setSize",
        {"nodeCount": "three"},
    )
    assert wrong_type.status_code == 400
    assert "Invalid value at 'node_count'" in wrong_type.json()["error"]["message"]
    assert gke.call("GET", "/clusters/schema1").status_code == 404  # nothing was created


def test_both_busy_wordings_and_already_exists(gke):
    op = gke.post("/clusters", cluster_body("busy1"))
    # A cluster Operation: "Operation X is currently <verb> cluster C. Please wait ...".
    busy = gke.call("POST", "/clusters/busy1/nodePools", {"nodePool": {"name": "np"}})
    assert busy.status_code == 400
    assert busy.json()["error"] == {
        "code": 400,
        "status": "FAILED_PRECONDITION",
        "message": f"Operation {op['name']} is currently creating cluster busy1. Please wait "
        "and try again once it is done.",
        "details": [],
    }
    again = gke.call("POST", "/clusters", cluster_body("busy1"))
    assert again.status_code == 409
    assert again.json()["error"]["status"] == "ALREADY_EXISTS"
    gke.wait(op)


def test_tpu_stockout_keeps_the_create_running_and_the_cluster_locked(gke):
    gke.wait(gke.post("/clusters", cluster_body("stock")))
    gke.admin("POST", "/config", {"gke": {"durations": {"STOCKOUT_GIVE_UP": 1000}}})
    assert gke.admin("POST", "/scenario", {"add": ["gke-tpu-stockout"]}).status_code == 200
    try:
        pool = {"name": "tpu", "initialNodeCount": 1, "config": {"machineType": "ct6e-standard-4t"}}
        op = gke.post("/clusters/stock/nodePools", {"nodePool": pool})
        deadline = time.monotonic() + 10
        while "nodepoolConditions" not in op:
            assert time.monotonic() < deadline, op
            time.sleep(0.02)
            op = gke.get(f"/operations/{op['name']}")
        assert op["status"] == "RUNNING"
        (condition,) = op["nodepoolConditions"]
        assert condition["code"] == "GCE_STOCKOUT"
        assert condition["canonicalCode"] == "RESOURCE_EXHAUSTED"
        assert "[GCE_STOCKOUT]" in op["detail"] and "europe-west4-a" in op["detail"]
        listed = gke.get("/clusters/stock/nodePools/tpu")
        assert listed["status"] == "PROVISIONING"
        assert listed["conditions"][0]["code"] == "GCE_STOCKOUT"
        # GKE holds the cluster while it retries: every other mutation is refused.
        other = gke.call("POST", "/clusters/stock/nodePools/default-pool:setSize", {"nodeCount": 3})
        assert other.status_code == 400
        assert other.json()["error"]["message"] == (
            f"Cluster is running incompatible operation {op['name']}."
        )
        done = gke.wait(op)
        assert done["error"]["code"] == 8 and "GCE_STOCKOUT" in done["error"]["message"]
        assert gke.get("/clusters/stock/nodePools/tpu")["status"] == "ERROR"
    finally:
        gke.admin("POST", "/scenario", {"remove": ["gke-tpu-stockout"]})


@pytest.mark.parametrize(
    ("schema", "read"),
    [
        ("Operation", ["progress", "detail", "location", "nodepoolConditions", "error"]),
        ("NodePool", ["conditions", "status", "version", "instanceGroupUrls"]),
    ],
)
def test_the_fields_the_emulator_writes_exist_in_googles_schema(schema, read):
    assert set(read) <= discovery.fields_of("container", schema)


def test_compute_refuses_a_query_parameter_its_method_does_not_list(gke):
    base = "/compute/v1/projects/proj/aggregated/machineTypes"
    listed = gke.call("GET", f"{base}?filter=name%20%3D%20ct6e-standard-4t", absolute=True)
    assert listed.status_code == 200
    assert "zones/europe-west4-a" in listed.json()["items"]
    # returnPartialSuccess is not (or no longer) a parameter of machineTypes.aggregatedList.
    refused = gke.call("GET", f"{base}?returnPartialSuccess=true", absolute=True)
    assert refused.status_code == 400
    assert 'Unknown name "returnPartialSuccess"' in refused.json()["error"]["message"]
