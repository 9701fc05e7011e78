"""The pure logic of gke_cluster: validation, request bodies, wanted/actual, updates, results."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.llmd.gke.plugins.module_utils import gke_cluster as gc
from ansible_collections.llmd.gke.plugins.module_utils.gke_ops import differences

PROJECT = "proj"


def params(**overrides) -> dict:
    """Module parameters as AnsibleModule gives them (every option present, None if unset)."""
    base = {name: None for name in gc.CLUSTER_ARG_SPEC}
    base.update(
        location="europe-west4-a",
        name="llmd-tpu",
        state="present",
        version="1.34",
        release_channel="REGULAR",
        default_pool={
            "name": "default-pool",
            "machine_type": "n1-standard-4",
            "node_count": 2,
            "autoscaling": {"enabled": True, "min_nodes": 2, "max_nodes": 4},
            "disk_size_gb": None,
            "disk_type": None,
            "secure_boot": True,
            "integrity_monitoring": True,
        },
        ip_alias=True,
        network_policy=True,
        gce_pd_csi_driver=True,
        workload_identity=True,
        shielded_nodes=True,
    )
    base.update(overrides)
    return base


def pool_params(**overrides) -> dict:
    pool = copy.deepcopy(params()["default_pool"])
    pool.update(overrides)
    return pool


def api_cluster(**overrides) -> dict:
    """The cluster as the API returns it after creating params()."""
    cluster = {
        "name": "llmd-tpu",
        "location": "europe-west4-a",
        "locations": ["europe-west4-a"],
        "status": "RUNNING",
        "currentMasterVersion": "1.34.1-gke.1829001",
        "currentNodeCount": 2,
        "releaseChannel": {"channel": "REGULAR"},
        "network": "default",
        "subnetwork": "default",
        "ipAllocationPolicy": {"useIpAliases": True},
        "addonsConfig": {
            "httpLoadBalancing": {},
            "networkPolicyConfig": {"disabled": False},
            "gcePersistentDiskCsiDriverConfig": {"enabled": True},
        },
        "networkPolicy": {"enabled": True, "provider": "CALICO"},
        "workloadIdentityConfig": {"workloadPool": "proj.svc.id.goog"},
        "shieldedNodes": {"enabled": True},
        "resourceLabels": {"goog-terraform-provisioned": "true"},
        "labelFingerprint": "abcd1234",
        "endpoint": "34.90.1.2",
        "masterAuth": {
            "clusterCaCertificate": "LS0tLS1CRUdJTi...",
            "password": "hunter2",
            "clientKey": "a-private-key",
            "clientCertificate": "a-client-cert",
            "username": "admin",
        },
        "nodePools": [
            {
                "name": "default-pool",
                "locations": ["europe-west4-a"],
                "initialNodeCount": 2,
                "config": {
                    "machineType": "n1-standard-4",
                    "diskSizeGb": 100,
                    "diskType": "pd-balanced",
                    "shieldedInstanceConfig": {
                        "enableSecureBoot": True,
                        "enableIntegrityMonitoring": True,
                    },
                },
                "autoscaling": {"enabled": True, "minNodeCount": 2, "maxNodeCount": 4},
            }
        ],
    }
    cluster.update(overrides)
    return cluster


def changes(p: dict, cluster: dict, sizes=None) -> list[str]:
    return differences(gc.wanted_state(p, PROJECT), gc.actual_state(cluster, p, PROJECT, sizes))


# --------------------------------------------------------------------------- validation
def test_the_guide_settings_are_valid():
    assert gc.validate(params()) == []
    assert gc.validate(params(location="europe-west4", node_locations=None)) == []


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"location": "europe"}, "neither a zone"),
        ({"location": "Europe-West4-a"}, "neither a zone"),
        ({"name": "Bad_Name"}, "not a valid cluster name"),
        ({"name": "a" * 41}, "not a valid cluster name"),
        ({"version": "v1.34"}, "not a GKE version"),
        ({"node_locations": []}, "must not be empty"),
        ({"node_locations": ["us-central1-b"]}, "not zones of the region europe-west4"),
        ({"node_locations": ["europe-west4-b"]}, "must include the cluster's zone"),
        ({"labels": {"Team": "a"}}, "not a valid GCP label"),
        ({"labels": {"team": "A B"}}, "not a valid GCP label"),
        ({"default_pool": pool_params(name="Pool")}, "default_pool.name"),
        ({"default_pool": pool_params(node_count=-1)}, "0 or more"),
        ({"default_pool": pool_params(disk_size_gb=5)}, "at least 10"),
        (
            {"default_pool": pool_params(autoscaling={"enabled": True, "min_nodes": 3})},
            "needs min_nodes and max_nodes",
        ),
        (
            {
                "default_pool": pool_params(
                    autoscaling={"enabled": True, "min_nodes": 3, "max_nodes": 1}
                )
            },
            "min_nodes (3) is greater than max_nodes (1)",
        ),
        (
            {
                "default_pool": pool_params(
                    autoscaling={"enabled": True, "min_nodes": 0, "max_nodes": 0}
                )
            },
            "max_nodes >= 1",
        ),
        (
            {"default_pool": pool_params(node_count=9)},
            "node_count (9) is outside the autoscaling range 2..4",
        ),
    ],
)
def test_bad_options_are_refused_with_the_reason(overrides, reason):
    problems = gc.validate(params(**overrides))
    assert any(reason in p for p in problems), problems


def test_disabled_autoscaling_needs_no_bounds_and_absent_needs_only_location_and_name():
    off = pool_params(node_count=9, autoscaling={"enabled": False, "min_nodes": None})
    assert gc.validate(params(default_pool=off)) == []
    assert gc.validate(params(state="absent", version="nonsense", labels={"X": "y"})) == []
    assert gc.validate(params(state="absent", name="Bad")) != []


def test_bad_input_fails_before_any_api_call():
    class Failed(Exception):
        pass

    class Module:
        check_mode = False

        def __init__(self, p):
            self.params = p

        def fail_json(self, **result):
            raise Failed(result)

    class NoApi:
        def __getattr__(self, name):
            raise AssertionError(f"the API was used: {name}")

    bad = params(
        default_pool=pool_params(autoscaling={"enabled": True, "min_nodes": 5, "max_nodes": 1})
    )
    with pytest.raises(Failed) as failed:
        gc.GkeCluster(Module(bad), client=NoApi())
    result = failed.value.args[0]
    assert result["changed"] is False
    assert "min_nodes (5) is greater than max_nodes (1)" in result["msg"]


# --------------------------------------------------------------------------- versions
@pytest.mark.parametrize(
    ("wanted", "current", "match"),
    [
        ("1.34", "1.34.1-gke.1829001", True),
        ("1.34.1", "1.34.1-gke.1829001", True),
        ("1.34.1-gke.1829001", "1.34.1-gke.1829001", True),
        ("1.3", "1.34.1-gke.1829001", False),
        ("1.34", "1.35.0-gke.1", False),
        ("1.34.1", "1.34.10-gke.1", False),
        ("1.34", None, False),
    ],
)
def test_version_matches_by_prefix(wanted, current, match):
    assert gc.version_matches(wanted, current) is match


@pytest.mark.parametrize(
    ("wanted", "current", "down"),
    [
        ("1.33", "1.34.1-gke.1829001", True),
        ("1.34", "1.34.1-gke.1829001", False),
        ("1.34.0", "1.34.1-gke.1829001", False),  # a patch, not a minor
        ("1.35", "1.34.1-gke.1829001", False),
        ("latest", "1.34.1-gke.1829001", False),
    ],
)
def test_only_a_lower_minor_version_is_a_downgrade(wanted, current, down):
    assert gc.is_downgrade(wanted, current) is down


# --------------------------------------------------------------------------- create body
def test_create_body_has_the_guide_settings_and_the_default_pool_in_node_pools():
    body = gc.create_body(params(labels={"team": "ml", "tier": 1}), PROJECT)
    assert "nodeConfig" not in body and "initialNodeCount" not in body
    assert body == {
        "name": "llmd-tpu",
        "initialClusterVersion": "1.34",
        "releaseChannel": {"channel": "REGULAR"},
        "ipAllocationPolicy": {"useIpAliases": True},
        "addonsConfig": {
            "networkPolicyConfig": {"disabled": False},
            "gcePersistentDiskCsiDriverConfig": {"enabled": True},
        },
        "networkPolicy": {"enabled": True, "provider": "CALICO"},
        "workloadIdentityConfig": {"workloadPool": "proj.svc.id.goog"},
        "shieldedNodes": {"enabled": True},
        "resourceLabels": {"team": "ml", "tier": "1"},
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


def test_create_body_sends_only_what_is_set():
    body = gc.create_body(
        params(
            version=None,
            release_channel=None,
            default_pool=None,
            ip_alias=None,
            network_policy=False,
            gce_pd_csi_driver=None,
            workload_identity=False,
            shielded_nodes=None,
            network="projects/p/global/networks/vpc",
            node_locations=["europe-west4-a", "europe-west4-b"],
        ),
        PROJECT,
    )
    assert body == {
        "name": "llmd-tpu",
        "locations": ["europe-west4-a", "europe-west4-b"],
        "network": "projects/p/global/networks/vpc",
        "addonsConfig": {"networkPolicyConfig": {"disabled": True}},
        "nodePools": [{"name": "default-pool", "initialNodeCount": 3}],
    }


@pytest.mark.parametrize(
    ("pool", "count"),
    [
        ({"node_count": 5, "autoscaling": None}, 5),
        ({"node_count": None, "autoscaling": None}, 3),
        ({"node_count": None, "autoscaling": {"enabled": True, "min_nodes": 2, "max_nodes": 4}}, 2),
        ({"node_count": None, "autoscaling": {"enabled": True, "min_nodes": 0, "max_nodes": 4}}, 1),
    ],
)
def test_initial_node_count_defaults(pool, count):
    assert gc.pool_body(pool_params(**pool))["initialNodeCount"] == count


# --------------------------------------------------------------------------- wanted / actual
def test_the_cluster_created_from_the_options_matches_them():
    assert changes(params(), api_cluster()) == []


def test_wanted_state_speaks_the_options_terms():
    wanted = gc.wanted_state(params(network="projects/p/global/networks/vpc"), PROJECT)
    assert wanted["version"] == "1.34"
    assert wanted["network"] == "vpc"
    assert wanted["default_pool.autoscaling.max_nodes"] == 4
    # With autoscaling on, node_count is only the initial size.
    assert wanted["default_pool.node_count"] is None
    assert wanted["labels"] is None and wanted["subnetwork"] is None
    off = gc.wanted_state(
        params(default_pool=pool_params(node_count=3, autoscaling={"enabled": False})), PROJECT
    )
    assert off["default_pool.node_count"] == 3
    assert off["default_pool.autoscaling.enabled"] is False
    assert off["default_pool.autoscaling.max_nodes"] is None
    assert gc.wanted_state(params(version="latest"), PROJECT)["version"] is None


def test_actual_state_maps_the_api_resource():
    cluster = api_cluster(
        releaseChannel={},
        network="projects/p/global/networks/default",
        resourceLabels={"team": "ml", "goog-k8s-cluster": "x"},
    )
    actual = gc.actual_state(cluster, params(version="1.34.1"), PROJECT, {"europe-west4-a": 2})
    assert actual["version"] == "1.34.1"
    assert actual["release_channel"] == "UNSPECIFIED"
    assert actual["network"] == "default"
    assert actual["labels"] == {"team": "ml"}
    assert actual["default_pool.autoscaling.min_nodes"] == 2
    assert actual["default_pool.node_count"] == 2
    other = gc.actual_state(cluster, params(version="1.33"), PROJECT)
    assert other["version"] == "1.34.1-gke.1829001"


@pytest.mark.parametrize(
    ("key", "cluster_change", "param_change"),
    [
        ("version", {"currentMasterVersion": "1.33.5-gke.1201000"}, {}),
        ("release_channel", {"releaseChannel": {"channel": "STABLE"}}, {}),
        (
            "workload_identity",
            {"workloadIdentityConfig": {"workloadPool": "other.svc.id.goog"}},
            {},
        ),
        ("network_policy", {"networkPolicy": {"enabled": False}}, {}),
        ("shielded_nodes", {"shieldedNodes": {}}, {}),
        ("ip_alias", {"ipAllocationPolicy": {}}, {}),
        ("labels", {}, {"labels": {"team": "ml"}}),
        ("node_locations", {}, {"node_locations": ["europe-west4-a", "europe-west4-b"]}),
    ],
)
def test_each_differing_field_is_found(key, cluster_change, param_change):
    assert changes(params(**param_change), api_cluster(**cluster_change)) == [key]


def test_default_pool_differences_and_unset_fields_are_not_compared():
    p = params(
        default_pool=pool_params(autoscaling={"enabled": True, "min_nodes": 2, "max_nodes": 5})
    )
    assert changes(p, api_cluster()) == ["default_pool.autoscaling.max_nodes"]
    unset = params(
        version=None,
        release_channel=None,
        default_pool=None,
        ip_alias=None,
        network_policy=None,
        gce_pd_csi_driver=None,
        workload_identity=None,
        shielded_nodes=None,
    )
    assert changes(unset, api_cluster(releaseChannel={}, shieldedNodes={})) == []


def test_node_count_is_the_instance_groups_size():
    p = params(default_pool=pool_params(node_count=3, autoscaling={"enabled": False}))
    cluster = api_cluster()
    cluster["nodePools"][0]["autoscaling"] = {}
    assert gc.node_count_of({"europe-west4-a": 3}) == 3
    assert gc.node_count_of({"b": 2, "a": 1}) == {"a": 1, "b": 2}
    assert gc.node_count_of({}) is None
    assert changes(p, cluster, {"europe-west4-a": 3}) == []
    assert changes(p, cluster, {"europe-west4-a": 1}) == ["default_pool.node_count"]
    # Without sizes the size is unknown (the cluster's currentNodeCount is deprecated: unread).
    assert cluster["currentNodeCount"] == 2
    assert gc.actual_state(cluster, p, PROJECT)["default_pool.node_count"] is None


def test_immutable_fields_are_singled_out():
    keys = ["default_pool.machine_type", "ip_alias", "release_channel", "version", "subnetwork"]
    assert gc.immutable_changes(keys) == ["default_pool.machine_type", "ip_alias", "subnetwork"]
    p = params(default_pool=pool_params(disk_type="pd-ssd", secure_boot=False))
    assert gc.immutable_changes(changes(p, api_cluster())) == [
        "default_pool.disk_type",
        "default_pool.secure_boot",
    ]


# --------------------------------------------------------------------------- updates
def plan(p: dict, cluster: dict) -> list[dict]:
    wanted = gc.wanted_state(p, PROJECT)
    keys = differences(wanted, gc.actual_state(cluster, p, PROJECT))
    return gc.plan_updates(keys, wanted, cluster, p, PROJECT)


def test_every_updatable_field_is_one_request_in_gke_order():
    p = params(
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
    assert [u["what"] for u in updates] == [
        "desiredMasterVersion",
        "desiredReleaseChannel",
        "desiredWorkloadIdentityConfig",
        "desiredShieldedNodes",
        "desiredAddonsConfig",
        "setNetworkPolicy",
        "desiredNodePoolAutoscaling",
        "desiredLocations",
        "setResourceLabels",
    ]
    for update in updates:
        if update["method"] == "PUT":
            assert update["suffix"] == ""
            fields = set(update["body"]["update"]) - {"desiredNodePoolId"}
            assert fields == {update["what"]}, "GKE takes one field per update"
    by_what = {u["what"]: u for u in updates}
    assert by_what["desiredMasterVersion"]["body"] == {"update": {"desiredMasterVersion": "1.34"}}
    assert by_what["desiredWorkloadIdentityConfig"]["body"]["update"] == {
        "desiredWorkloadIdentityConfig": {"workloadPool": "proj.svc.id.goog"}
    }
    # The other add-ons stay as they are.
    assert by_what["desiredAddonsConfig"]["body"]["update"]["desiredAddonsConfig"] == {
        "httpLoadBalancing": {},
        "gcePersistentDiskCsiDriverConfig": {"enabled": True},
        "networkPolicyConfig": {"disabled": False},
    }
    assert by_what["desiredAddonsConfig"]["fields"] == ["gce_pd_csi_driver", "network_policy"]
    assert by_what["setNetworkPolicy"] == {
        "fields": ["network_policy"],
        "what": "setNetworkPolicy",
        "method": "POST",
        "suffix": ":setNetworkPolicy",
        "body": {"networkPolicy": {"enabled": True, "provider": "CALICO"}},
    }
    assert by_what["desiredNodePoolAutoscaling"]["body"] == {
        "update": {
            "desiredNodePoolId": "default-pool",
            "desiredNodePoolAutoscaling": {"enabled": True, "minNodeCount": 1, "maxNodeCount": 6},
        }
    }
    assert by_what["desiredNodePoolAutoscaling"]["fields"] == [
        "default_pool.autoscaling.max_nodes",
        "default_pool.autoscaling.min_nodes",
    ]
    assert by_what["desiredLocations"]["body"]["update"]["desiredLocations"] == [
        "europe-west4-a",
        "europe-west4-b",
    ]
    # Google's goog-* labels are kept; the fingerprint guards against a concurrent change.
    assert by_what["setResourceLabels"]["body"] == {
        "resourceLabels": {"goog-terraform-provisioned": "true", "team": "ml"},
        "labelFingerprint": "abcd1234",
    }


def test_disabling_network_policy_stops_enforcement_before_the_add_on():
    updates = plan(params(network_policy=False), api_cluster())
    assert [u["what"] for u in updates] == ["setNetworkPolicy", "desiredAddonsConfig"]
    assert updates[0]["body"] == {"networkPolicy": {"enabled": False}}
    assert updates[1]["body"]["update"]["desiredAddonsConfig"]["networkPolicyConfig"] == {
        "disabled": True
    }


def test_enabling_enforcement_with_the_add_on_already_on_is_one_request():
    cluster = api_cluster(networkPolicy={"enabled": False})
    assert [u["what"] for u in plan(params(), cluster)] == ["setNetworkPolicy"]


def test_size_and_autoscaling_off_for_a_named_pool():
    p = params(
        default_pool=pool_params(name="system", node_count=3, autoscaling={"enabled": False})
    )
    cluster = api_cluster()
    cluster["nodePools"][0]["name"] = "system"
    wanted = gc.wanted_state(p, PROJECT)
    actual = gc.actual_state(cluster, p, PROJECT, {"europe-west4-a": 2})
    keys = differences(wanted, actual)
    assert keys == ["default_pool.autoscaling.enabled", "default_pool.node_count"]
    updates = gc.plan_updates(keys, wanted, cluster, p, PROJECT)
    assert [(u["method"], u["suffix"], u["body"]) for u in updates] == [
        (
            "PUT",
            "",
            {
                "update": {
                    "desiredNodePoolId": "system",
                    "desiredNodePoolAutoscaling": {"enabled": False},
                }
            },
        ),
        ("POST", "/nodePools/system:setSize", {"nodeCount": 3}),
    ]


def test_nothing_to_do_plans_nothing():
    assert plan(params(), api_cluster()) == []


# --------------------------------------------------------------------------- results
def test_results_keep_the_ca_and_drop_master_auth_secrets():
    cluster = api_cluster()
    result = gc.facts(cluster)
    auth = result["cluster"]["masterAuth"]
    assert auth == {"clusterCaCertificate": "LS0tLS1CRUdJTi...", "username": "admin"}
    assert cluster["masterAuth"]["password"] == "hunter2", "the input must not change"
    assert result["ca_certificate"] == "LS0tLS1CRUdJTi..."
    assert result["endpoint"] == "34.90.1.2"
    assert result["version"] == "1.34.1-gke.1829001"
    assert result["node_pools"] == ["default-pool"]
    assert gc.facts(None)["cluster"] is None


def test_an_error_is_a_problem_and_degraded_a_warning_with_the_conditions():
    assert gc.status_problem(api_cluster()) is None and gc.status_warning(api_cluster()) is None
    conditions = [{"canonicalCode": "RESOURCE_EXHAUSTED", "message": "Quota exceeded."}]
    broken = api_cluster(status="ERROR", statusMessage="deprecated text", conditions=conditions)
    assert gc.status_problem(broken) == "Cluster llmd-tpu is ERROR: Quota exceeded."
    degraded = api_cluster(status="DEGRADED", conditions=conditions)
    assert gc.status_problem(degraded) is None
    assert gc.status_warning(degraded) == (
        "Cluster llmd-tpu is DEGRADED: it serves, but GKE reports Quota exceeded. Check the "
        "cluster in the Google Cloud console."
    )
    assert "GKE gave no condition" in gc.status_problem(api_cluster(status="ERROR"))


def test_argument_spec_joins_auth_wait_and_cluster_options():
    spec = gc.argument_spec()
    for name in ("auth_kind", "access_token", "api_endpoint", "wait_timeout", "location", "name"):
        assert name in spec
    assert spec["access_token"].get("no_log") is True
