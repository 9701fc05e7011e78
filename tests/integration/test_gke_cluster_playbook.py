"""llmd.gke.gke_cluster through the real ansible-playbook against the GKE emulator.

One emulator for the file (compressed time). Clusters the tests only need to exist are created
with plain REST calls (hand-written bodies, independent of the module's code); everything the
module does goes through ansible-playbook. Each playbook registers its tasks' results and writes
them to a JSON file (that task never counts as changed), so tests assert on the results as well
as on the PLAY RECAP and the emulator's state.
"""

from __future__ import annotations

import time
import urllib.request
from itertools import pairwise

import pytest
import requests
from conftest import recap, running_emulator, tasks_runner

PROJECT = "llmd-it"
ZONE = "europe-west4-a"
TOKEN = "ya29.gke-cluster-integration-token"
PARENT = f"projects/{PROJECT}/locations/{ZONE}"

# The guide's cluster, as the cluster role asks for it.
GUIDE = {
    "location": ZONE,
    "version": "1.34",
    "release_channel": "REGULAR",
    "default_pool": {
        "machine_type": "n1-standard-4",
        "node_count": 2,
        "autoscaling": {"enabled": True, "min_nodes": 2, "max_nodes": 4},
        "secure_boot": True,
        "integrity_monitoring": True,
    },
    "ip_alias": True,
    "network_policy": True,
    "gce_pd_csi_driver": True,
    "workload_identity": True,
    "shielded_nodes": True,
}


def guide(**changes) -> dict:
    """The guide's options with some changed."""
    return {**GUIDE, **changes}


def guide_pool(**changes) -> dict:
    return {**GUIDE["default_pool"], **changes}


@pytest.fixture(scope="module")
def gke(tmp_path_factory):
    with running_emulator(tmp_path_factory.mktemp("gke-cluster"), time_scale=0.005) as endpoints:
        endpoints.admin_post(
            "/config",
            {
                "gke": {
                    "durations": {
                        "CREATE_CLUSTER": 200,
                        "DELETE_CLUSTER": 100,
                        "UPDATE_CLUSTER": 40,
                        "UPGRADE_MASTER": 100,
                        "SET_NODE_POOL_SIZE": 40,
                    }
                }
            },
        )
        yield endpoints


@pytest.fixture(autouse=True)
def no_faults_left(gke):
    yield
    request = urllib.request.Request(gke.admin_url + "/faults", method="DELETE")
    with urllib.request.urlopen(request, timeout=30):
        pass


# --------------------------------------------------------------------------- helpers
class Api:
    """Plain REST calls to the emulated GKE API (setup and state checks)."""

    def __init__(self, endpoints) -> None:
        self.root = endpoints.gke_url.rstrip("/") + "/v1/"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {TOKEN}"

    def call(self, method: str, path: str, body=None) -> dict:
        response = self.session.request(method, self.root + path, json=body, timeout=30)
        assert response.status_code < 400, response.text
        return response.json()

    def cluster(self, name: str, location: str = ZONE) -> dict | None:
        path = f"projects/{PROJECT}/locations/{location}/clusters/{name}"
        response = self.session.get(self.root + path, timeout=30)
        return None if response.status_code == 404 else response.json()

    def names(self) -> list[str]:
        return [c["name"] for c in self.call("GET", f"{PARENT}/clusters").get("clusters", [])]

    def operations(self) -> list[dict]:
        return self.call("GET", f"{PARENT}/operations").get("operations", [])

    def wait(self, operation: dict) -> dict:
        deadline = time.monotonic() + 60
        while operation["status"] != "DONE":
            assert time.monotonic() < deadline, operation
            time.sleep(0.2)
            operation = self.call("GET", f"{PARENT}/operations/{operation['name']}")
        assert not operation.get("error"), operation
        return operation

    def create(self, cluster: dict) -> dict:
        self.wait(self.call("POST", f"{PARENT}/clusters", {"cluster": cluster}))
        return self.cluster(cluster["name"])


@pytest.fixture
def api(gke):
    return Api(gke)


def cluster_body(name: str, **extra) -> dict:
    """A cluster as the guide's settings would create it, written out by hand."""
    body = {
        "name": name,
        "initialClusterVersion": "1.34",
        "releaseChannel": {"channel": "REGULAR"},
        "ipAllocationPolicy": {"useIpAliases": True},
        "addonsConfig": {
            "networkPolicyConfig": {"disabled": False},
            "gcePersistentDiskCsiDriverConfig": {"enabled": True},
        },
        "networkPolicy": {"enabled": True, "provider": "CALICO"},
        "workloadIdentityConfig": {"workloadPool": f"{PROJECT}.svc.id.goog"},
        "shieldedNodes": {"enabled": True},
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
    body.update(extra)
    return body


@pytest.fixture
def run(gke, playbook, tmp_path):
    """run(tasks, *ansible_args) -> (Run, [registered results]): one play on localhost."""

    defaults = {
        "llmd.gke.gke_cluster": {
            "api_endpoint": gke.gke_url,
            "auth_kind": "accesstoken",
            "access_token": TOKEN,
            "project": PROJECT,
            "poll_interval": 1,
            "wait_timeout": 120,
        }
    }
    return tasks_runner(playbook, tmp_path, name="gke_cluster", module_defaults=defaults)


def cluster_task(name: str, **options) -> dict:
    return {"name": f"Cluster {name}", "llmd.gke.gke_cluster": dict(options, name=name)}


def add_faults(gke, *specs: dict) -> None:
    gke.admin_post("/faults", list(specs))


def fault_hits(gke) -> list[int]:
    return [f["hits"] for f in gke.admin_get("/faults")["faults"]]


# --------------------------------------------------------------------------- tests
def test_four_step_idempotence_then_delete(run, api):
    task = cluster_task("it-main", **guide())

    check, [result] = run([task], "--check")
    assert result["changed"] is True and not result.get("failed"), check.output
    assert recap(check)["changed"] == 1
    assert "it-main" not in api.names(), "check mode created the cluster"
    assert result["cluster"] is None and result["endpoint"] is None

    first, [result] = run([task])
    assert recap(first)["changed"] == 1 and recap(first)["ignored"] == 0, first.output
    cluster = api.cluster("it-main")
    assert cluster["status"] == "RUNNING"
    assert result["status"] == "RUNNING"
    assert result["endpoint"] == cluster["endpoint"]
    assert result["ca_certificate"] == cluster["masterAuth"]["clusterCaCertificate"]
    assert result["version"].startswith("1.34.")
    assert result["node_pools"] == ["default-pool"]
    assert result["operation"]["operationType"] == "CREATE_CLUSTER"
    assert result["operation"]["status"] == "DONE"
    assert "version" in result["changed_fields"]
    # What the emulator got: the guide's settings, the default pool in nodePools.
    pool = cluster["nodePools"][0]
    assert pool["config"]["machineType"] == "n1-standard-4"
    assert pool["autoscaling"] == {"enabled": True, "minNodeCount": 2, "maxNodeCount": 4}
    assert pool["config"]["shieldedInstanceConfig"] == {
        "enableSecureBoot": True,
        "enableIntegrityMonitoring": True,
    }
    assert cluster["addonsConfig"]["gcePersistentDiskCsiDriverConfig"]["enabled"] is True
    assert cluster["addonsConfig"]["networkPolicyConfig"]["disabled"] is False
    assert cluster["networkPolicy"] == {"enabled": True, "provider": "CALICO"}
    assert cluster["workloadIdentityConfig"]["workloadPool"] == f"{PROJECT}.svc.id.goog"
    assert cluster["ipAllocationPolicy"]["useIpAliases"] is True
    assert cluster["shieldedNodes"]["enabled"] is True
    assert cluster["releaseChannel"]["channel"] == "REGULAR"
    operations = len(api.operations())

    again, [result] = run([task])
    assert recap(again)["changed"] == 0 and recap(again)["ignored"] == 0, again.output
    assert result["changed"] is False and result["changed_fields"] == []

    recheck, [result] = run([task], "--check")
    assert recap(recheck)["changed"] == 0 and recap(recheck)["ignored"] == 0, recheck.output
    assert len(api.operations()) == operations, "a run without change started an Operation"

    gone = cluster_task("it-main", location=ZONE, state="absent")
    deleted, results = run([gone, gone])
    assert [r["changed"] for r in results] == [True, False], deleted.output
    assert not any(r.get("failed") for r in results)
    assert "it-main" not in api.names()


def test_diff_shows_the_changed_fields_and_updates_one_by_one(run, api):
    api.create(
        cluster_body(
            "it-update",
            initialClusterVersion="1.33",
            addonsConfig={"gcePersistentDiskCsiDriverConfig": {"enabled": True}},
            networkPolicy={"enabled": False},
            resourceLabels={"team": "a", "goog-managed": "x"},
        )
    )
    task = cluster_task(
        "it-update",
        **guide(
            labels={"team": "b"},
            release_channel="STABLE",
            default_pool=guide_pool(autoscaling={"min_nodes": 2, "max_nodes": 5}),
        ),
    )
    expected = [
        "default_pool.autoscaling.max_nodes",
        "labels",
        "network_policy",
        "release_channel",
        "version",
    ]

    preview, [result] = run([task], "--check", "--diff")
    assert result["changed"] is True and result["changed_fields"] == expected, preview.output
    # The diff (YAML result format of ansible.cfg): before/after of the differing fields only.
    for line in (
        "- default_pool.autoscaling.max_nodes: 4",
        "+ default_pool.autoscaling.max_nodes: 5",
        "- release_channel: REGULAR",
        "+ release_channel: STABLE",
        "- version: 1.33.5-gke.1201000",
        "+ version: '1.34'",
    ):
        assert line in preview, preview.output
    assert "workload_identity" not in preview.output
    assert api.cluster("it-update")["currentMasterVersion"].startswith("1.33.")

    applied, (result, again) = run([task, task], "--diff")
    assert result["changed"] is True and result["changed_fields"] == expected, applied.output
    assert again["changed"] is False and again["changed_fields"] == []
    assert recap(applied)["changed"] == 1 and recap(applied)["ignored"] == 0
    assert "+ version: '1.34'" in applied, applied.output
    cluster = api.cluster("it-update")
    assert cluster["currentMasterVersion"].startswith("1.34.")
    assert cluster["releaseChannel"] == {"channel": "STABLE"}
    assert cluster["addonsConfig"]["networkPolicyConfig"] == {"disabled": False}
    assert cluster["addonsConfig"]["gcePersistentDiskCsiDriverConfig"] == {"enabled": True}
    assert cluster["networkPolicy"] == {"enabled": True, "provider": "CALICO"}
    assert cluster["nodePools"][0]["autoscaling"]["maxNodeCount"] == 5
    assert cluster["resourceLabels"] == {"team": "b", "goog-managed": "x"}
    # One Operation per change, each done before the next one started.
    mine = [
        o
        for o in api.operations()
        if o["targetLink"].endswith("/it-update") and o["operationType"] != "CREATE_CLUSTER"
    ]
    assert len(mine) == 6  # master, channel, add-on, policy, autoscaling, labels
    spans = sorted((o["startTime"], o["endTime"]) for o in mine)
    assert all(done <= nxt for (_start, done), (nxt, _end) in pairwise(spans))


def test_node_count_without_autoscaling_resizes_the_default_pool(run, api, gke):
    api.create(
        cluster_body(
            "it-size",
            nodePools=[
                {"name": "system", "initialNodeCount": 1, "config": {"machineType": "e2-medium"}}
            ],
        )
    )
    task = cluster_task(
        "it-size",
        location=ZONE,
        default_pool={"name": "system", "machine_type": "e2-medium", "node_count": 3},
    )
    outcome, results = run([task, task])
    assert [r["changed"] for r in results] == [True, False], outcome.output
    assert results[0]["changed_fields"] == ["default_pool.node_count"]
    nodes = [
        n
        for n in gke.objects("Node")
        if n["metadata"]["labels"]["cloud.google.com/gke-nodepool"] == "system"
        and "it-size" in n["metadata"]["name"]
    ]
    assert len(nodes) == 3


def test_immutable_fields_and_bad_input_change_nothing(run, api):
    api.create(cluster_body("it-frozen"))
    operations = len(api.operations())
    tasks = [
        cluster_task("it-frozen", **guide(ip_alias=False)),
        cluster_task(
            "it-frozen",
            **guide(
                default_pool=guide_pool(machine_type="n1-standard-8"), release_channel="STABLE"
            ),
        ),
        cluster_task("it-frozen", **guide(location="europe-west4")),
        cluster_task(
            "it-frozen", **guide(default_pool={"autoscaling": {"min_nodes": 3, "max_nodes": 1}})
        ),
        cluster_task("it-frozen", **guide(node_locations=["us-central1-b"])),
        cluster_task("it-frozen", **guide(version="1.33")),
    ]
    outcome, results = run(tasks)
    *refused, older = results
    assert all(r.get("failed") for r in refused), outcome.output
    assert not any(r["changed"] for r in results)
    alias, machine, moved, bounds, zones = refused
    assert alias["immutable_fields"] == ["ip_alias"]
    assert "Cannot change ip_alias" in alias["msg"] and "Nothing was changed" in alias["msg"]
    assert alias["diff"] == {"before": {"ip_alias": True}, "after": {"ip_alias": False}}
    assert machine["immutable_fields"] == ["default_pool.machine_type"]
    assert moved["immutable_fields"] == ["location"]
    assert f"exists in {ZONE}" in moved["msg"]
    assert "min_nodes (3) is greater than max_nodes (1)" in bounds["msg"]
    assert "not zones of the region europe-west4" in zones["msg"]
    # A lower minor version than the running one (release channels upgrade) is only a warning.
    assert not older.get("failed") and older["changed_fields"] == []
    assert any("cannot downgrade" in w for w in older["warnings"]), older
    cluster = api.cluster("it-frozen")
    assert cluster["currentMasterVersion"].startswith("1.34.")
    assert cluster["ipAllocationPolicy"]["useIpAliases"] is True
    assert cluster["releaseChannel"]["channel"] == "REGULAR"
    assert len(api.operations()) == operations
    assert api.cluster("it-frozen", "europe-west4") is None


def test_retried_faults_quota_and_operation_error(run, api, gke):
    add_faults(
        gke,
        {"method": "POST", "path": r"/europe-west4-a/clusters$", "status": 429, "times": 1},
        {"method": "POST", "path": r"/europe-west4-a/clusters$", "status": 503, "times": 1},
        {"method": "POST", "path": r"/europe-west4-a/clusters$", "status": 400, "times": 1},
        {"method": "POST", "path": r"/europe-west4-b/clusters$", "status": 403},
        {
            "method": "POST",
            "path": r"/europe-west4-c/clusters$",
            "operation_error": {"code": 13, "message": "Boot disk of node went missing."},
            "times": 1,
        },
    )
    small = {"default_pool": {"machine_type": "e2-medium", "node_count": 1}}
    tasks = [
        cluster_task("it-retry", location="europe-west4-a", **small),
        cluster_task("it-quota", location="europe-west4-b", **small),
        cluster_task("it-broken", location="europe-west4-c", **small),
        cluster_task("it-broken", location="europe-west4-c", **small),
    ]
    outcome, (retried, quota, broken, rerun) = run(tasks)
    assert retried["changed"] is True and not retried.get("failed"), outcome.output
    assert retried["status"] == "RUNNING"
    assert fault_hits(gke)[:3] == [1, 1, 1]

    assert quota["failed"] and not quota["changed"]
    assert "Insufficient regional quota" in quota["msg"]
    assert "Quota is too low: request a quota increase" in quota["msg"]
    assert api.cluster("it-quota", "europe-west4-b") is None

    assert broken["failed"] and broken["changed"] is True
    assert "Boot disk of node went missing." in broken["msg"]
    assert broken["operation"]["operationType"] == "CREATE_CLUSTER"
    assert rerun["failed"] and not rerun["changed"]
    assert "is ERROR: Boot disk of node went missing." in rerun["msg"]


def test_conflict_adopts_a_matching_cluster_and_reports_a_differing_one(run, api, gke):
    api.create(cluster_body("it-same"))
    api.create(cluster_body("it-other"))
    operations = len(api.operations())
    # The first read answers 404, as if the cluster appeared between the read and the create.
    add_faults(
        gke,
        {"method": "GET", "path": r"/clusters/it-same$", "status": 404, "times": 1},
        {"method": "GET", "path": r"/clusters/it-other$", "status": 404, "times": 1},
    )
    other = guide(default_pool=guide_pool(machine_type="e2-medium"))
    outcome, (same, differs) = run(
        [cluster_task("it-same", **guide()), cluster_task("it-other", **other)]
    )
    assert fault_hits(gke) == [1, 1]
    assert same["adopted"] is True and same["changed"] is False, outcome.output
    assert not same.get("failed") and same["status"] == "RUNNING"
    assert differs["failed"] and differs["changed"] is False
    assert differs["differing_fields"] == ["default_pool.machine_type"]
    assert "409 ALREADY_EXISTS" in differs["msg"] and "default_pool.machine_type" in differs["msg"]
    assert len(api.operations()) == operations


def test_wait_false_returns_pending_and_the_next_run_waits_without_a_second_create(run, api, gke):
    # A create long enough (5 s) to be still running when the second task starts.
    gke.admin_post("/config", {"gke": {"durations": {"CREATE_CLUSTER": 1000}}})
    small = {"location": ZONE, "default_pool": {"machine_type": "e2-medium", "node_count": 1}}
    try:
        outcome, (started, waited) = run(
            [
                cluster_task("it-later", wait=False, **small),
                cluster_task("it-later", **small),
            ]
        )
    finally:
        gke.admin_post("/config", {"gke": {"durations": {"CREATE_CLUSTER": 200}}})
    assert started["changed"] is True and started["pending"] is True, outcome.output
    assert started["status"] == "PROVISIONING"
    assert started["operation"]["operationType"] == "CREATE_CLUSTER"
    assert waited["changed"] is False and waited["pending"] is False
    assert waited["status"] == "RUNNING" and waited["waited_seconds"] > 0
    assert waited["operation"]["name"] == started["operation"]["name"]
    creates = [
        o
        for o in api.operations()
        if o["operationType"] == "CREATE_CLUSTER" and o["targetLink"].endswith("/it-later")
    ]
    assert len(creates) == 1
