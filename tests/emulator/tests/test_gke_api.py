"""GKE API stand-in against the real background emulator: clusters, pools, Nodes, operations."""

from __future__ import annotations

import base64
import copy
import re
import time

import pytest
from kubernetes import client as k8s
from support import POOL_LABEL, cluster_body

from llmd_emulator.gke import project_number

TPU_POOL = {
    "name": "tpu-v6e-pool",
    "initialNodeCount": 1,
    "locations": ["europe-west4-a"],
    "config": {
        "machineType": "ct6e-standard-4t",
        "labels": {"team": "llm"},
        "taints": [{"key": "dedicated", "value": "llm", "effect": "NO_SCHEDULE"}],
    },
    "autoscaling": {"enabled": True, "minNodeCount": 0, "maxNodeCount": 3},
}


def test_cluster_create_gives_a_working_kubernetes_endpoint(gke, tmp_path):
    op = gke.post("/clusters", cluster_body("alpha"))
    assert op["operationType"] == "CREATE_CLUSTER"
    assert op["status"] in ("PENDING", "RUNNING")
    # GKE's links: the project NUMBER and zones/<zone> for a zonal cluster (not what was asked).
    number = project_number("proj")
    assert op["targetLink"] == f"{gke.url}/v1/projects/{number}/zones/europe-west4-a/clusters/alpha"
    assert op["selfLink"] == (
        f"{gke.url}/v1/projects/{number}/zones/europe-west4-a/operations/{op['name']}"
    )
    assert op["location"] == op["zone"] == "europe-west4-a"
    provisioning = gke.get("/clusters/alpha")
    assert provisioning["status"] == "PROVISIONING"
    assert provisioning["nodePools"][0]["status"] == "PROVISIONING"

    running = gke.get(f"/operations/{op['name']}")
    assert {m["name"] for m in running["progress"]["metrics"]} == {"progress", "progress scale"}
    done = gke.wait(op)  # polls the selfLink: the project number is accepted in paths
    assert "error" not in done and done["endTime"] >= done["startTime"]
    assert "progress" not in done
    cluster = gke.get("/clusters/alpha")
    assert cluster["status"] == "RUNNING"
    assert cluster["currentMasterVersion"].startswith("1.34.")
    assert cluster["currentNodeCount"] == 2
    assert cluster["locations"] == ["europe-west4-a"] == [cluster["location"]]
    assert cluster["workloadIdentityConfig"] == {"workloadPool": "proj.svc.id.goog"}
    pool = cluster["nodePools"][0]
    assert pool["status"] == "RUNNING"
    assert pool["config"]["shieldedInstanceConfig"]["enableSecureBoot"] is True
    assert pool["instanceGroupUrls"] and pool["selfLink"].endswith("/nodePools/default-pool")
    assert ":" in cluster["endpoint"] and "//" not in cluster["endpoint"]
    assert [c["name"] for c in gke.get("/clusters")["clusters"]].count("alpha") == 1

    # What `gcloud container clusters get-credentials` builds: https://endpoint + CA + token.
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(base64.b64decode(cluster["masterAuth"]["clusterCaCertificate"]))
    config = k8s.Configuration()
    config.host = f"https://{cluster['endpoint']}"
    config.ssl_ca_cert = str(ca_file)
    config.api_key = {"authorization": f"Bearer {gke.endpoints.token}"}
    with k8s.ApiClient(config) as api:
        nodes = k8s.CoreV1Api(api).list_node(label_selector=f"{POOL_LABEL}=default-pool").items
    names = sorted(n.metadata.name for n in nodes if n.metadata.name.startswith("gke-alpha-"))
    assert len(names) == 2
    node = next(n for n in nodes if n.metadata.name == names[0])
    labels = node.metadata.labels
    assert labels["node.kubernetes.io/instance-type"] == "n1-standard-4"
    assert labels["cloud.google.com/machine-family"] == "n1"
    assert labels["topology.kubernetes.io/zone"] == "europe-west4-a"
    assert labels["topology.kubernetes.io/region"] == "europe-west4"
    assert labels["kubernetes.io/hostname"] == names[0]
    assert not node.spec.taints
    assert node.status.capacity["cpu"] == "4" and "google.com/tpu" not in node.status.capacity
    assert node.status.node_info.kubelet_version == f"v{cluster['currentNodeVersion']}"
    ready = next(c for c in node.status.conditions if c.type == "Ready")
    assert ready.status == "True"

    gke.wait(gke.delete("/clusters/alpha"))
    assert gke.call("GET", "/clusters/alpha").status_code == 404
    assert not gke.nodes(prefix="gke-alpha-")


def test_tpu_pool_nodes_resize_update_and_delete(gke):
    gke.wait(gke.post("/clusters", cluster_body("beta")))
    op = gke.post("/clusters/beta/nodePools", {"nodePool": TPU_POOL})
    assert op["operationType"] == "CREATE_NODE_POOL"

    # One mutation at a time per cluster, in GKE's words.
    busy = gke.call("POST", "/clusters/beta/nodePools/default-pool:setSize", {"nodeCount": 3})
    assert busy.status_code == 400
    error = busy.json()["error"]
    assert error["status"] == "FAILED_PRECONDITION"
    assert error["message"] == (
        f"Operation {op['name']} is currently creating a node pool for cluster beta. "
        "Please wait and try again once it is done."
    )

    assert "error" not in gke.wait(op)
    pool = gke.get("/clusters/beta/nodePools/tpu-v6e-pool")
    assert pool["status"] == "RUNNING" and pool["version"].startswith("1.34.")
    (node,) = gke.nodes(pool="tpu-v6e-pool", prefix="gke-beta-")
    labels = node["metadata"]["labels"]
    assert labels["cloud.google.com/gke-tpu-accelerator"] == "tpu-v6e-slice"
    assert labels["cloud.google.com/gke-tpu-topology"] == "2x2"
    assert labels["cloud.google.com/machine-family"] == "ct6e"
    assert labels["team"] == "llm"
    assert {"key": "google.com/tpu", "value": "present", "effect": "NoSchedule"} in node["spec"][
        "taints"
    ]
    assert {"key": "dedicated", "value": "llm", "effect": "NoSchedule"} in node["spec"]["taints"]
    assert node["status"]["capacity"]["google.com/tpu"] == "4"
    assert node["status"]["allocatable"]["google.com/tpu"] == "4"

    op = gke.post("/clusters/beta/nodePools/tpu-v6e-pool:setSize", {"nodeCount": 3})
    assert op["operationType"] == "SET_NODE_POOL_SIZE"
    # Other node pool Operations: the second wording.
    busy = gke.call("POST", "/clusters/beta/nodePools/default-pool:setSize", {"nodeCount": 3})
    assert busy.json()["error"]["message"] == (
        f"Cluster is running incompatible operation {op['name']}."
    )
    assert gke.get("/clusters/beta/nodePools/tpu-v6e-pool")["status"] == "RECONCILING"
    gke.wait(op)
    assert len(gke.nodes(pool="tpu-v6e-pool", prefix="gke-beta-")) == 3
    gke.wait(gke.post("/clusters/beta/nodePools/tpu-v6e-pool:setSize", {"nodeCount": 1}))
    assert [n["metadata"]["name"] for n in gke.nodes(pool="tpu-v6e-pool", prefix="gke-beta-")] == [
        node["metadata"]["name"]
    ]

    update = {"labels": {"labels": {"tier": "gold"}}, "taints": {"taints": []}}
    # UpdateNodePoolRequest requires nodeVersion and imageType.
    refused = gke.call("PUT", "/clusters/beta/nodePools/tpu-v6e-pool", update)
    assert refused.status_code == 400
    assert "nodeVersion and imageType must be specified" in refused.json()["error"]["message"]
    update.update(nodeVersion=pool["version"], imageType=pool["config"]["imageType"])
    op = gke.call("PUT", "/clusters/beta/nodePools/tpu-v6e-pool", update).json()
    assert op["operationType"] == "UPGRADE_NODES"
    gke.wait(op)
    (relabelled,) = gke.nodes(pool="tpu-v6e-pool", prefix="gke-beta-")
    assert relabelled["metadata"]["name"] == node["metadata"]["name"]  # same version: no rebuild
    node = relabelled
    assert node["metadata"]["labels"]["tier"] == "gold"
    assert "team" not in node["metadata"]["labels"]
    assert node["spec"]["taints"] == [
        {"key": "google.com/tpu", "value": "present", "effect": "NoSchedule"}
    ]
    pool = gke.get("/clusters/beta/nodePools/tpu-v6e-pool")
    assert pool["config"]["labels"] == {"tier": "gold"} and pool["config"]["taints"] == []

    op = gke.post(
        "/clusters/beta/nodePools/tpu-v6e-pool:setAutoscaling",
        {"autoscaling": {"enabled": True, "minNodeCount": 2, "maxNodeCount": 2}},
    )
    gke.wait(op)
    assert len(gke.nodes(pool="tpu-v6e-pool", prefix="gke-beta-")) == 2

    op = gke.delete("/clusters/beta/nodePools/tpu-v6e-pool")
    assert op["operationType"] == "DELETE_NODE_POOL"
    assert gke.get("/clusters/beta/nodePools/tpu-v6e-pool")["status"] == "STOPPING"
    gke.wait(op)
    assert gke.call("GET", "/clusters/beta/nodePools/tpu-v6e-pool").status_code == 404
    assert not gke.nodes(pool="tpu-v6e-pool", prefix="gke-beta-")
    assert len(gke.nodes(pool="default-pool", prefix="gke-beta-")) == 2


def test_multi_host_slice_and_zonal_paths(gke):
    gke.wait(gke.post("/clusters", {"cluster": {"name": "gamma", "initialNodeCount": 1}}))
    cluster = gke.get("/clusters/gamma")
    assert [p["name"] for p in cluster["nodePools"]] == ["default-pool"]
    assert cluster["nodeConfig"]["machineType"] == "e2-medium"
    pool = {
        "name": "slice",
        "initialNodeCount": 4,
        "config": {"machineType": "ct6e-standard-4t"},
        "placementPolicy": {"type": "COMPACT", "tpuTopology": "4x4"},
    }
    gke.wait(gke.post("/clusters/gamma/nodePools", {"nodePool": pool}))
    nodes = gke.nodes(pool="slice", prefix="gke-gamma-")
    assert len(nodes) == 4
    assert {n["metadata"]["labels"]["cloud.google.com/gke-tpu-topology"] for n in nodes} == {"4x4"}

    # The older zonal form reaches the same resources.
    zonal = "/v1/projects/proj/zones/europe-west4-a/clusters/gamma"
    assert gke.call("GET", zonal, absolute=True).json()["name"] == "gamma"
    op = gke.call("POST", f"{zonal}/nodePools/slice/setSize", {"nodeCount": 0}, absolute=True)
    gke.wait(op.json())
    assert not gke.nodes(pool="slice", prefix="gke-gamma-")
    ops = gke.call("GET", "/v1/projects/proj/locations/-/operations", absolute=True).json()
    assert {"CREATE_CLUSTER", "CREATE_NODE_POOL", "SET_NODE_POOL_SIZE"} <= {
        o["operationType"] for o in ops["operations"] if "/clusters/gamma" in o["targetLink"]
    }


def _pool(name: str, machine: str = "ct6e-standard-4t", **extra) -> dict:
    return {"name": name, "initialNodeCount": 1, "config": {"machineType": machine}, **extra}


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "/clusters",
            cluster_body("bad1", initialNodeCount=2),
            "must not be set when Cluster.node_pools is specified",
        ),
        ("/clusters", cluster_body("Bad_Name"), 'Invalid value for field "cluster.name"'),
        (
            "/clusters/valid/nodePools",
            {"nodePool": _pool("p1", placementPolicy={"tpuTopology": "2x2"})},
            "TPU topology can't be specified with single-host TPU slice pool",
        ),
        (
            "/clusters/valid/nodePools",
            {"nodePool": _pool("p2", placementPolicy={"tpuTopology": "2x4"})},
            "multi-host TPU slice with topology 2x4 on ct6e-standard-4t needs exactly 2 nodes",
        ),
        (
            "/clusters/valid/nodePools",
            {
                "nodePool": _pool(
                    "p3",
                    machine="e2-standard-4",
                    autoscaling={"enabled": True, "minNodeCount": 3, "maxNodeCount": 1},
                )
            },
            "minNodeCount (3) must not be greater than maxNodeCount (1)",
        ),
        (
            "/clusters/valid/nodePools",
            {"nodePool": _pool("p4", locations=["europe-west4-b"])},
            'Machine type "ct6e-standard-4t" is not available in zone "europe-west4-b"',
        ),
        (
            "/clusters/valid/nodePools",
            {"nodePool": _pool("p5", machine="n9-imaginary-4")},
            'Machine type "n9-imaginary-4" is not available',
        ),
        (
            "/clusters/valid/nodePools",
            {"nodePool": _pool("p6"), "initialNodeCount": 1},
            'Unknown name "initialNodeCount"',
        ),
    ],
)
def test_validation_errors(gke, valid_cluster, path, body, message):
    response = gke.call("POST", path, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT"
    assert message in error["message"]
    assert gke.get("/clusters/valid")["status"] == "RUNNING"


def test_conflicts_not_found_and_auth(gke, valid_cluster):
    again = gke.call("POST", "/clusters", cluster_body("valid"))
    assert again.status_code == 409
    assert again.json()["error"] == {
        "code": 409,
        "message": "Already exists: projects/proj/locations/europe-west4-a/clusters/valid.",
        "status": "ALREADY_EXISTS",
        "details": [],
    }
    pool_again = gke.call("POST", "/clusters/valid/nodePools", {"nodePool": _pool("default-pool")})
    assert pool_again.status_code == 409
    missing = gke.call("GET", "/clusters/nope")
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"
    assert gke.call("GET", "/clusters/valid/nodePools/nope").status_code == 404
    assert gke.call("GET", "/operations/operation-123-nope").status_code == 404
    anonymous = gke.call("GET", "/clusters/valid", auth=False)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["status"] == "UNAUTHENTICATED"


def test_autoscaler_adds_a_tpu_node_for_a_pending_pod_and_removes_it_when_idle(gke, k8s_api):
    gke.wait(gke.post("/clusters", {"cluster": {"name": "delta", "initialNodeCount": 1}}))
    pool = dict(_pool("tpu-auto"), initialNodeCount=0)
    pool["autoscaling"] = {"enabled": True, "minNodeCount": 0, "maxNodeCount": 1}
    gke.wait(gke.post("/clusters/delta/nodePools", {"nodePool": pool}))
    assert not gke.nodes(pool="tpu-auto")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "vllm-tpu", "namespace": "default"},
        "spec": {
            "nodeSelector": {
                "cloud.google.com/gke-tpu-accelerator": "tpu-v6e-slice",
                "cloud.google.com/gke-tpu-topology": "2x2",
            },
            "tolerations": [
                {"key": "google.com/tpu", "operator": "Exists", "effect": "NoSchedule"}
            ],
            "containers": [
                {
                    "name": "vllm",
                    "image": "vllm",
                    "resources": {
                        "limits": {"google.com/tpu": "4"},
                        "requests": {"google.com/tpu": "4"},
                    },
                }
            ],
        },
    }
    # 8 chips: no Node fits, and a new Node of the pool (4 chips per VM) would not either
    big = copy.deepcopy(pod)
    big["metadata"]["name"] = "vllm-big"
    big["spec"]["containers"][0]["resources"] = {"limits": {"google.com/tpu": "8"}}
    k8s_api.create_namespaced_pod("default", big)
    refused = _event(k8s_api, "vllm-big", "NotTriggerScaleUp")
    # reasons counted per node group; other tests' autoscaled pools add their own reasons
    assert refused.message.startswith("pod didn't trigger scale-up: ")
    reasons = refused.message.removeprefix("pod didn't trigger scale-up: ").split(", ")
    assert "1 Insufficient google.com/tpu" in reasons, refused.message
    assert refused.source.component == "cluster-autoscaler" and refused.type == "Normal"
    pending = _event(k8s_api, "vllm-big", "FailedScheduling")
    # the Nodes there are (the default pools of this module's clusters) have no TPU label
    assert re.match(
        r"0/(\d+) nodes are available: \1 node\(s\) didn't match Pod's node affinity/selector\. ",
        pending.message,
    ), pending.message
    k8s_api.create_namespaced_pod("default", pod)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        bound = k8s_api.read_namespaced_pod("vllm-tpu", "default").spec.node_name
        if bound:
            break
        time.sleep(0.1)
    (node,) = gke.nodes(pool="tpu-auto")
    assert bound == node["metadata"]["name"]
    (group,) = gke.get("/clusters/delta/nodePools/tpu-auto")["instanceGroupUrls"]
    mig = group.rsplit("/", 1)[1]
    triggered = _event(k8s_api, "vllm-tpu", "TriggeredScaleUp")
    assert triggered.message == (
        "pod triggered scale-up: [{https://www.googleapis.com/compute/v1/projects/proj/zones/"
        f"europe-west4-a/instanceGroups/{mig} 0->1 (max: 1)}}]"
    )
    # the pool is at its maximum now: a second 4-chip pod is a skipped node group
    second = copy.deepcopy(pod)
    second["metadata"]["name"] = "vllm-second"
    k8s_api.create_namespaced_pod("default", second)
    at_max = _event(k8s_api, "vllm-second", "NotTriggerScaleUp")
    assert at_max.message.startswith("pod didn't trigger scale-up: ")
    assert "max node group size reached" in at_max.message
    assert "Insufficient" not in at_max.message
    for name in ("vllm-big", "vllm-second"):
        k8s_api.delete_namespaced_pod(name, "default", grace_period_seconds=0)
    k8s_api.delete_namespaced_pod("vllm-tpu", "default", grace_period_seconds=0)
    idle = gke.admin("POST", "/config", {"gke": {"durations": {"AUTOSCALE_DOWN": 100}}})
    assert idle.status_code == 200
    try:
        deadline = time.monotonic() + 15
        while gke.nodes(pool="tpu-auto") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not gke.nodes(pool="tpu-auto")
    finally:
        gke.admin("POST", "/config", {"gke": {"durations": {"AUTOSCALE_DOWN": 5000}}})


def _event(k8s_api, pod: str, reason: str, timeout: float = 15):
    """The pod's event with that reason, once it is recorded."""
    deadline = time.monotonic() + timeout
    while True:
        events = k8s_api.list_namespaced_event(
            "default", field_selector=f"involvedObject.name={pod}"
        ).items
        found = [e for e in events if e.reason == reason]
        if found:
            return found[0]
        assert time.monotonic() < deadline, [(e.reason, e.message) for e in events]
        time.sleep(0.05)


@pytest.fixture
def k8s_api(gke):
    config = k8s.Configuration()
    config.host = gke.endpoints.k8s_url
    config.ssl_ca_cert = gke.endpoints.ca_file
    config.api_key = {"authorization": f"Bearer {gke.endpoints.token}"}
    with k8s.ApiClient(config) as api:
        yield k8s.CoreV1Api(api)
