"""gke_nodepool: validation before any call, the create body, the user-facing comparison, the
immutable fields, the update calls and the status check (no API involved)."""

import pytest

from ansible_collections.llmd.gke.plugins.module_utils.gke_nodepool import (
    IMMUTABLE,
    NodePoolError,
    NodePoolRunner,
    actual_fields,
    build_create_body,
    comparable,
    create_view,
    max_chips_of,
    plan,
    status_failure,
    update_requests,
    validate,
    wanted_fields,
)
from ansible_collections.llmd.gke.plugins.module_utils.gke_ops import GROUP_URL_RE

PATH = "projects/p/locations/europe-west4-a/clusters/c/nodePools/tpu"


def params(**options):
    """Module parameters as AnsibleModule gives them (defaults filled in)."""
    base = {
        "name": "tpu",
        "state": "present",
        "location": "europe-west4-a",
        "cluster": "c",
        "machine_type": "ct6e-standard-4t",
        "topology": "2x2",
        "node_count": None,
        "autoscaling": None,
        "spot": None,
        "node_locations": None,
        "labels": None,
        "taints": None,
        "disk_size_gb": None,
        "disk_type": None,
        "service_account": None,
        "allow_recreate": False,
        "wait": True,
        "wait_timeout": 60,
        "poll_interval": 1,
        "progress_interval": 0,
    }
    base.update(options)
    return base


def scaling(min_nodes=0, max_nodes=3, enabled=True, location_policy=None):
    return {
        "enabled": enabled,
        "min_nodes": min_nodes,
        "max_nodes": max_nodes,
        "location_policy": location_policy,
    }


def api_pool(**overrides):
    """A NodePool as GKE returns it (zero and false values omitted, as proto3 JSON does)."""
    pool = {
        "name": "tpu",
        "config": {
            "machineType": "ct6e-standard-4t",
            "diskSizeGb": 100,
            "diskType": "hyperdisk-balanced",
            "serviceAccount": "default",
        },
        "initialNodeCount": 1,
        "autoscaling": {"enabled": True, "maxNodeCount": 3, "locationPolicy": "BALANCED"},
        "locations": ["europe-west4-a"],
        "status": "RUNNING",
    }
    pool.update(overrides)
    return pool


# ------------------------------------------------------------------------------------ validate
@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"machine_type": "ct6e-standard-8t", "topology": "2x2"}, "2x2 is not offered on"),
        ({"machine_type": "n1-standard-4"}, "is not a TPU v6e type"),
        ({"topology": "2xx"}, "not of the form AxB"),
        ({"autoscaling": scaling(3, 1)}, "minimum 3 is greater than the maximum 1"),
        ({"autoscaling": scaling(max_nodes=None)}, "max_nodes is required"),
        ({"topology": "4x4", "node_count": 1}, "the node count must be 4"),
        ({"topology": "2x4", "node_count": 3}, "the node count must be 2"),
        ({"topology": "4x4", "autoscaling": scaling(1, 4)}, "scales as one unit"),
        ({"node_count": 5, "autoscaling": scaling(0, 3)}, "outside the autoscaling range"),
        ({"node_count": -1}, "negative"),
        (
            {"labels": {"cloud.google.com/gke-tpu-topology": "4x4"}},
            "cloud.google.com/gke-tpu-topology collide",
        ),
        ({"labels": {"node.kubernetes.io/role": "x"}}, "collide"),
        ({"labels": {"team": None}}, "need a string value"),
        (
            {"taints": [{"key": "google.com/tpu", "value": "present", "effect": "NO_SCHEDULE"}]},
            "GKE adds google.com/tpu",
        ),
        (
            {
                "taints": [
                    {"key": "a", "value": "1", "effect": "NO_SCHEDULE"},
                    {"key": "a", "value": "2", "effect": "NO_SCHEDULE"},
                ]
            },
            "listed twice",
        ),
        (
            {
                "topology": "2x4",
                "node_count": 2,
                "node_locations": ["europe-west4-a", "europe-west4-b"],
            },
            "lives in one zone",
        ),
        ({"node_locations": []}, "one or more zones"),
        ({"name": "Bad_Name"}, "Invalid node pool name"),
        ({"disk_size_gb": 5}, "at least 10"),
    ],
)
def test_invalid_requests_are_refused_with_the_reason(options, reason):
    with pytest.raises(NodePoolError, match=reason):
        validate(params(**options))


def test_absent_needs_no_shape():
    assert validate(params(state="absent", topology=None, machine_type="anything")) is None


@pytest.mark.parametrize(
    ("options", "count"),
    [
        ({}, 1),  # single-host: one slice
        ({"topology": "4x4"}, 4),  # multi-host: the slice's VMs
        ({"autoscaling": scaling(2, 5)}, 2),  # moved into the autoscaling range
        ({"autoscaling": scaling(0, 3)}, 1),
        ({"topology": "4x4", "autoscaling": scaling(0, 4)}, 4),
        ({"node_count": 0, "autoscaling": scaling(0, 3)}, 0),
    ],
)
def test_default_node_count(options, count):
    assert validate(params(**options)).node_count == count


def test_runner_refuses_bad_input_before_building_a_client():
    built = []

    def factory():
        built.append(True)
        raise AssertionError("no client may be built for an invalid request")

    with pytest.raises(NodePoolError, match="2x2 is not offered"):
        NodePoolRunner(params(machine_type="ct6e-standard-8t"), factory)
    assert built == []


# ------------------------------------------------------------------------------- create body
def test_single_host_body_has_no_placement_and_only_what_was_set():
    body = build_create_body(validate(params(autoscaling=scaling(0, 3))))["nodePool"]
    assert body == {
        "name": "tpu",
        "config": {"machineType": "ct6e-standard-4t"},
        "initialNodeCount": 1,
        "autoscaling": {"enabled": True, "minNodeCount": 0, "maxNodeCount": 3},
    }


def test_multi_host_body_has_compact_placement_and_the_vm_count():
    body = build_create_body(validate(params(topology="4x4", node_count=4)))["nodePool"]
    assert body["placementPolicy"] == {"type": "COMPACT", "tpuTopology": "4x4"}
    assert body["initialNodeCount"] == 4
    assert "autoscaling" not in body


def test_body_carries_every_user_setting_in_api_terms():
    request = validate(
        params(
            machine_type="ct6e-standard-8t",
            topology="2x4",
            node_count=2,
            spot=True,
            labels={"team.example.com/owner": "inference", "tier": 1, "preemptible": False},
            taints=[{"key": "dedicated", "value": "llm", "effect": "NO_EXECUTE"}],
            node_locations=["europe-west4-a"],
            disk_size_gb=200,
            disk_type="hyperdisk-balanced",
            service_account="nodes@p.iam.gserviceaccount.com",
            autoscaling=scaling(1, 4, location_policy="ANY"),
        )
    )
    body = build_create_body(request)["nodePool"]
    assert body["config"] == {
        "machineType": "ct6e-standard-8t",
        "labels": {"team.example.com/owner": "inference", "tier": "1", "preemptible": "false"},
        "taints": [{"key": "dedicated", "value": "llm", "effect": "NO_EXECUTE"}],
        "spot": True,
        "diskSizeGb": 200,
        "diskType": "hyperdisk-balanced",
        "serviceAccount": "nodes@p.iam.gserviceaccount.com",
    }
    assert body["locations"] == ["europe-west4-a"]
    assert body["autoscaling"] == {
        "enabled": True,
        "minNodeCount": 1,
        "maxNodeCount": 4,
        "locationPolicy": "ANY",
    }
    assert "placementPolicy" not in body  # 2x4 on ct6e-standard-8t is single-host


def test_create_view_shows_the_effective_size_and_autoscaling():
    view = create_view(validate(params()))
    assert view == {
        "machine_type": "ct6e-standard-4t",
        "topology": "2x2",
        "node_count": 1,
        "autoscaling": {"enabled": False},
    }


# ------------------------------------------------------------------------------ actual fields
def test_actual_fields_fill_in_what_gke_omits_and_drop_the_tpu_taint():
    pool = api_pool(
        config={
            "machineType": "ct6e-standard-4t",
            "taints": [
                {"key": "google.com/tpu", "value": "present", "effect": "NO_SCHEDULE"},
                {"key": "dedicated", "effect": "NO_SCHEDULE"},
            ],
        }
    )
    actual = actual_fields(pool)
    assert actual["autoscaling"] == {
        "enabled": True,
        "min_nodes": 0,
        "max_nodes": 3,
        "location_policy": "BALANCED",
    }
    assert actual["spot"] is False
    assert actual["labels"] == {}
    assert actual["taints"] == [{"key": "dedicated", "value": "", "effect": "NO_SCHEDULE"}]
    assert actual["topology"] == "2x2"  # single-host: from the machine type
    assert actual["service_account"] == "default"
    assert actual["node_count"] == 1  # initialNodeCount without instance group sizes


def test_actual_topology_of_a_multi_host_pool_comes_from_the_placement_policy():
    pool = api_pool(placementPolicy={"type": "COMPACT", "tpuTopology": "4x4"})
    assert actual_fields(pool)["topology"] == "4x4"


@pytest.mark.parametrize(
    ("sizes", "count"),
    [
        ({"europe-west4-a": 2}, 2),
        ({"europe-west4-a": 2, "europe-west4-b": 2}, 2),
        ({"europe-west4-a": 2, "europe-west4-b": 1}, {"europe-west4-a": 2, "europe-west4-b": 1}),
        (None, 1),
    ],
)
def test_node_count_is_per_zone_from_the_instance_groups(sizes, count):
    assert actual_fields(api_pool(), sizes)["node_count"] == count


# ---------------------------------------------------------------------------------- comparing
def test_a_pool_as_requested_has_no_difference():
    request = validate(
        params(node_count=1, autoscaling=scaling(0, 3), labels={}, taints=[], spot=False)
    )
    keys, immutable, diff = plan(wanted_fields(request), actual_fields(api_pool()))
    assert (keys, immutable) == ([], [])
    assert diff == {"before": {}, "after": {}}


def test_unset_options_are_not_compared():
    pool = api_pool(config={"machineType": "ct6e-standard-4t", "spot": True, "labels": {"a": "b"}})
    keys, _immutable, _diff = plan(wanted_fields(validate(params())), actual_fields(pool))
    assert keys == []


def test_node_count_is_not_compared_while_the_pool_autoscales():
    # wanted autoscaling on: the autoscaler owns the size
    request = validate(params(node_count=1, autoscaling=scaling(0, 3)))
    keys, _imm, _diff = plan(wanted_fields(request), actual_fields(api_pool(), {"z": 3}))
    assert keys == []
    # autoscaling not set by the user, on in the pool: same
    keys, _imm, _diff = plan(
        wanted_fields(validate(params(node_count=1))), actual_fields(api_pool(), {"z": 3})
    )
    assert keys == []


def test_node_count_is_compared_without_autoscaling():
    request = validate(params(node_count=2, autoscaling=scaling(enabled=False)))
    pool = api_pool(autoscaling={})
    keys, immutable, diff = plan(wanted_fields(request), actual_fields(pool, {"z": 1}))
    assert keys == ["node_count"]
    assert immutable == []
    assert diff == {"before": {"node_count": 1}, "after": {"node_count": 2}}


def test_autoscaling_compares_only_what_the_user_set():
    wanted = wanted_fields(validate(params(autoscaling=scaling(0, 4))))
    keys, _imm, diff = plan(wanted, actual_fields(api_pool()))
    assert keys == ["autoscaling"]
    assert diff["before"]["autoscaling"] == {"enabled": True, "min_nodes": 0, "max_nodes": 3}
    assert diff["after"]["autoscaling"] == {"enabled": True, "min_nodes": 0, "max_nodes": 4}
    # turning it off compares only "enabled"
    wanted, actual = comparable(
        wanted_fields(validate(params(autoscaling=scaling(5, 9, enabled=False)))),
        actual_fields(api_pool(autoscaling={})),
    )
    assert wanted["autoscaling"] == actual["autoscaling"] == {"enabled": False}


@pytest.mark.parametrize(
    ("options", "pool_overrides", "expected"),
    [
        ({"spot": True}, {}, ["spot"]),
        (
            {"machine_type": "ct6e-standard-8t", "topology": "2x4"},
            {},
            ["machine_type", "topology"],
        ),
        ({"topology": "2x4", "node_count": 2}, {}, ["topology"]),
        ({"disk_size_gb": 200}, {}, ["disk_size_gb"]),
        ({"disk_type": "pd-ssd"}, {}, ["disk_type"]),
        ({"service_account": "n@p.iam.gserviceaccount.com"}, {}, ["service_account"]),
    ],
)
def test_immutable_differences_are_named(options, pool_overrides, expected):
    request = validate(params(**options))
    keys, immutable, diff = plan(wanted_fields(request), actual_fields(api_pool(**pool_overrides)))
    assert immutable == expected
    assert set(immutable) <= set(IMMUTABLE)
    assert set(diff["before"]) == set(keys)


def test_labels_taints_and_locations_are_updatable_not_immutable():
    request = validate(
        params(
            labels={"a": "b"},
            taints=[{"key": "k", "value": "v", "effect": "NO_SCHEDULE"}],
            node_locations=["europe-west4-b"],
        )
    )
    keys, immutable, _diff = plan(wanted_fields(request), actual_fields(api_pool()))
    assert keys == ["labels", "node_locations", "taints"]
    assert immutable == []


def test_taint_order_does_not_matter():
    taints = [
        {"key": "b", "value": "", "effect": "NO_SCHEDULE"},
        {"key": "a", "value": "x", "effect": "NO_EXECUTE"},
    ]
    pool = api_pool(config={"machineType": "ct6e-standard-4t", "taints": list(reversed(taints))})
    keys, _imm, _diff = plan(wanted_fields(validate(params(taints=taints))), actual_fields(pool))
    assert keys == []


# ------------------------------------------------------------------------------------ updates
def test_update_calls_one_field_each_autoscaling_before_size():
    wanted = wanted_fields(
        validate(
            params(
                node_count=2,
                autoscaling=scaling(enabled=False),
                labels={"a": "b"},
                taints=[{"key": "k", "value": "v", "effect": "NO_SCHEDULE"}],
                node_locations=["europe-west4-a"],
            )
        )
    )
    calls = update_requests(
        ["autoscaling", "labels", "node_count", "node_locations", "taints"], wanted, PATH
    )
    taint = {"key": "k", "value": "v", "effect": "NO_SCHEDULE"}
    assert calls == [
        ("labels", "PUT", PATH, {"labels": {"labels": {"a": "b"}}}),
        ("taints", "PUT", PATH, {"taints": {"taints": [taint]}}),
        ("node_locations", "PUT", PATH, {"locations": ["europe-west4-a"]}),
        ("autoscaling", "POST", f"{PATH}:setAutoscaling", {"autoscaling": {"enabled": False}}),
        ("node_count", "POST", f"{PATH}:setSize", {"nodeCount": 2}),
    ]


def test_autoscaling_update_body():
    wanted = wanted_fields(validate(params(autoscaling=scaling(1, 4, location_policy="ANY"))))
    ((_key, _method, _path, body),) = update_requests(["autoscaling"], wanted, PATH)
    assert body == {
        "autoscaling": {
            "enabled": True,
            "minNodeCount": 1,
            "maxNodeCount": 4,
            "locationPolicy": "ANY",
        }
    }


# ------------------------------------------------------------------------------ status, chips
def test_failed_status_carries_the_message_and_a_hint():
    stockout = (
        'The zone "projects/p/zones/europe-west4-a" does not have enough resources available '
        "to fulfill the request."
    )
    conditions = [
        {"code": "GCE_STOCKOUT", "canonicalCode": "RESOURCE_EXHAUSTED", "message": stockout}
    ]
    error = status_failure(api_pool(status="ERROR", conditions=conditions), "europe-west4-a")
    assert "is ERROR" in str(error) and stockout in str(error)
    assert "stock-out" in str(error)
    assert error.details["status"] == "ERROR"
    error = status_failure(api_pool(status="RUNNING_WITH_ERROR"))
    assert "RUNNING_WITH_ERROR" in str(error) and "could not be created or repaired" in str(error)
    assert status_failure(api_pool(status="RUNNING")) is None
    assert status_failure(api_pool(status="PROVISIONING")) is None


def test_max_chips():
    request = validate(params(autoscaling=scaling(0, 3)))
    assert max_chips_of(None, request, request.tpu, None) == 12
    two_zones = api_pool(locations=["europe-west4-a", "europe-west4-b"])
    assert max_chips_of(two_zones, request, request.tpu, None) == 24
    fixed = api_pool(autoscaling={}, initialNodeCount=1)
    assert max_chips_of(fixed, request, request.tpu, {"europe-west4-a": 2}) == 8
    assert max_chips_of(fixed, request, request.tpu, None) == 4


@pytest.mark.parametrize(
    ("url", "root", "path"),
    [
        (
            "https://www.googleapis.com/compute/v1/projects/p/zones/europe-west4-a/"
            "instanceGroupManagers/gke-c-tpu-1234-grp",
            "https://www.googleapis.com/compute/",
            "projects/p/zones/europe-west4-a/instanceGroupManagers/gke-c-tpu-1234-grp",
        ),
        (
            "http://127.0.0.1:8080/compute/v1/projects/p/zones/z-a/instanceGroups/g-grp",
            "http://127.0.0.1:8080/compute/",
            "projects/p/zones/z-a/instanceGroups/g-grp",
        ),
    ],
)
def test_instance_group_urls(url, root, path):
    match = GROUP_URL_RE.match(url)
    assert (match.group("root"), match.group("path")) == (root, path)
