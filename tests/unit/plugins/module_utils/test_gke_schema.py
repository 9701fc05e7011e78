"""The GKE modules against Google's own API schema: the discovery documents shipped by
google-api-python-client (a test dependency). Every request body the modules can build validates
against its request schema; every response field they read exists in the response schema and is
not deprecated."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from test_gke_cluster import api_cluster, plan, pool_params
from test_gke_cluster import params as cluster_params
from test_gke_nodepool import api_pool, scaling
from test_gke_nodepool import params as pool_module_params

from ansible_collections.llmd.gke.plugins.module_utils import gke_cluster as gc
from ansible_collections.llmd.gke.plugins.module_utils.gke_nodepool import (
    UPDATE_ORDER,
    build_create_body,
    update_requests,
    validate,
    wanted_fields,
)

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "tests" / "emulator"))
from llmd_emulator import discovery  # noqa: E402

PLUGINS = ROOT / "plugins" / "module_utils"
PATH = "projects/proj/locations/europe-west4-a/clusters/c/nodePools/tpu"
# The request schema of each call the modules make (container.v1.json, projects.locations.*).
REQUESTS = {
    ("POST", ""): "CreateClusterRequest",
    ("PUT", ""): "UpdateClusterRequest",
    ("POST", ":setNetworkPolicy"): "SetNetworkPolicyRequest",
    ("POST", ":setResourceLabels"): "SetLabelsRequest",
    ("POST", ":setSize"): "SetNodePoolSizeRequest",
    ("POST", ":setAutoscaling"): "SetNodePoolAutoscalingRequest",
    ("PUT", "/nodePools/"): "UpdateNodePoolRequest",
}


@pytest.fixture(autouse=True, scope="module")
def documents():
    if not discovery.available():  # pragma: no cover - the package is in requirements-dev.txt
        pytest.fail("google-api-python-client (requirements-dev.txt) is not installed")


def check(schema: str, body: dict) -> None:
    try:
        discovery.check_request("container", schema, body)
    except discovery.SchemaError as exc:
        pytest.fail(f"{schema}: {exc}\n{body}")


def test_the_checker_finds_an_unknown_field():
    with pytest.raises(discovery.SchemaError, match='Unknown name "preemptable"'):
        discovery.check_request(
            "container", "CreateNodePoolRequest", {"nodePool": {"config": {"preemptable": True}}}
        )


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"labels": {"team": "ml"}, "node_locations": ["europe-west4-a", "europe-west4-b"]},
        {"location": "europe-west4", "release_channel": "STABLE", "network_policy": False},
    ],
)
def test_every_cluster_create_body_fits_create_cluster_request(overrides):
    check("CreateClusterRequest", {"cluster": gc.create_body(cluster_params(**overrides), "proj")})


def test_every_cluster_update_body_fits_its_request_schema():
    p = cluster_params(
        version="1.34",
        release_channel="STABLE",
        workload_identity=True,
        shielded_nodes=True,
        network_policy=True,
        gce_pd_csi_driver=True,
        node_locations=["europe-west4-a", "europe-west4-b"],
        labels={"team": "ml"},
        default_pool=pool_params(autoscaling={"enabled": True, "min_nodes": 1, "max_nodes": 6}),
    )
    cluster = api_cluster(
        currentMasterVersion="1.33.5-gke.1201000",
        workloadIdentityConfig={},
        shieldedNodes={"enabled": False},
        addonsConfig={"httpLoadBalancing": {}},
        networkPolicy={},
    )
    updates = plan(p, cluster)
    assert len(updates) == 9
    for update in updates:
        suffix = update["suffix"]
        key = (update["method"], "/nodePools/" if "/nodePools/" in suffix else suffix)
        if key == ("POST", "/nodePools/"):
            key = ("POST", suffix[suffix.index(":") :])
        check(REQUESTS[key], update["body"])


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"topology": "4x4", "node_count": 4, "spot": True},
        {
            "autoscaling": scaling(0, 3, location_policy="ANY"),
            "labels": {"team": "ml"},
            "taints": [{"key": "k", "value": "v", "effect": "NO_SCHEDULE"}],
            "disk_size_gb": 200,
            "disk_type": "hyperdisk-balanced",
            "service_account": "sa@proj.iam.gserviceaccount.com",
            "node_locations": ["europe-west4-a"],
        },
    ],
)
def test_every_node_pool_create_body_fits_create_node_pool_request(options):
    check("CreateNodePoolRequest", build_create_body(validate(pool_module_params(**options))))


def test_every_node_pool_update_fits_its_schema_and_repeats_version_and_image_type():
    wanted = wanted_fields(
        validate(
            pool_module_params(
                node_count=2,
                autoscaling=scaling(enabled=False),
                labels={"a": "b"},
                taints=[{"key": "k", "value": "v", "effect": "NO_SCHEDULE"}],
                node_locations=["europe-west4-a"],
            )
        )
    )
    pool = api_pool(version="1.33.5-gke.1201000")
    pool["config"]["imageType"] = "COS_CONTAINERD"
    calls = update_requests(list(UPDATE_ORDER), wanted, PATH, pool)
    assert len(calls) == len(UPDATE_ORDER)
    for _key, method, path, body in calls:
        suffix = path[len(PATH) :]
        schema = REQUESTS[("PUT", "/nodePools/")] if method == "PUT" else REQUESTS[(method, suffix)]
        check(schema, body)
        if method == "PUT":
            # Required by UpdateNodePoolRequest; the pool's own values, never "-" (= upgrade).
            assert body["nodeVersion"] == "1.33.5-gke.1201000"
            assert body["imageType"] == "COS_CONTAINERD"


# What the modules read from GKE's answers, by schema (dotted paths below the schema).
READ = {
    "Operation": [
        "name",
        "operationType",
        "status",
        "detail",
        "targetLink",
        "selfLink",
        "location",
        "startTime",
        "endTime",
        "error",
    ],
    "Cluster": [
        "name",
        "status",
        "conditions",
        "location",
        "locations",
        "selfLink",
        "endpoint",
        "masterAuth.clusterCaCertificate",
        "currentMasterVersion",
        "nodePools",
        "releaseChannel.channel",
        "resourceLabels",
        "labelFingerprint",
        "network",
        "subnetwork",
        "ipAllocationPolicy.useIpAliases",
        "networkPolicy.enabled",
        "networkPolicy.provider",
        "addonsConfig.networkPolicyConfig.disabled",
        "addonsConfig.gcePersistentDiskCsiDriverConfig.enabled",
        "workloadIdentityConfig.workloadPool",
        "shieldedNodes.enabled",
        "controlPlaneEndpointsConfig.ipEndpointsConfig.privateEndpoint",
    ],
    "NodePool": [
        "name",
        "status",
        "conditions",
        "version",
        "locations",
        "initialNodeCount",
        "instanceGroupUrls",
        "autoscaling.enabled",
        "autoscaling.minNodeCount",
        "autoscaling.maxNodeCount",
        "autoscaling.locationPolicy",
        "placementPolicy.tpuTopology",
        "config.machineType",
        "config.imageType",
        "config.labels",
        "config.taints",
        "config.spot",
        "config.diskSizeGb",
        "config.diskType",
        "config.serviceAccount",
        "config.shieldedInstanceConfig.enableSecureBoot",
        "config.shieldedInstanceConfig.enableIntegrityMonitoring",
    ],
    "StatusCondition": ["message", "canonicalCode"],
}


def resolve(schema: str, dotted: str) -> dict:
    spec = {"$ref": schema}
    for part in dotted.split("."):
        while "$ref" in spec:
            spec = discovery.schema("container", spec["$ref"])
        if spec.get("type") == "array":
            spec = spec["items"]
            while "$ref" in spec:
                spec = discovery.schema("container", spec["$ref"])
        properties = spec.get("properties") or {}
        assert part in properties, f"{schema}.{dotted}: no field {part!r} in Google's schema"
        spec = properties[part]
        assert not spec.get("deprecated"), f"{schema}.{dotted} is deprecated in Google's schema"
    return spec


@pytest.mark.parametrize(
    ("schema", "dotted"), [(s, f) for s, fields in READ.items() for f in fields]
)
def test_every_field_read_exists_and_is_not_deprecated(schema, dotted):
    resolve(schema, dotted)


def deprecated_everywhere() -> set[str]:
    """Names deprecated in every response schema that defines them (Operation, Cluster, ...)."""
    seen: dict[str, list[bool]] = {}
    for name in (
        "Operation",
        "Cluster",
        "NodePool",
        "PrivateClusterConfig",
        "IPEndpointsConfig",
        "StatusCondition",
    ):
        for field, spec in (discovery.schema("container", name).get("properties") or {}).items():
            seen.setdefault(field, []).append(bool(spec.get("deprecated")))
    return {field for field, flags in seen.items() if all(flags)}


def test_no_module_reads_a_field_that_google_deprecated():
    deprecated = deprecated_everywhere()
    assert {"statusMessage", "zone", "currentNodeCount"} <= deprecated
    found = []
    for name in ("gcp.py", "gke_ops.py", "gke_cluster.py", "gke_nodepool.py", "gke_kubeconfig.py"):
        source = (PLUGINS / name).read_text()
        # Reads from API answers; params.get(...) and aliases=[...] are the module's options.
        pattern = (
            r"""(?:(?<!params)\.get\(\s*|(?<!aliases=)\[\s*)"([A-Za-z][A-Za-z0-9]*)"\s*[\],)]"""
        )
        for key in re.findall(pattern, source):
            if key in deprecated:
                found.append(f"{name}: {key}")
    # "code" is StatusCondition's deprecated field but also google.rpc.Status's (Operation.error).
    assert [f for f in found if not f.endswith(": code")] == []
