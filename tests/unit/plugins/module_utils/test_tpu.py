"""The TPU v6e table: each reference row accepted, mismatches rejected with the reason."""

import pytest

from ansible_collections.llmd.gke.plugins.module_utils.tpu import (
    TpuShapeError,
    check_node_counts,
    max_chips,
    resolve_slice,
    topology_chips,
)

# The reference table (cloud.google.com/tpu/docs/v6e): topology, chips, VMs, machine type.
REFERENCE_ROWS = [
    ("1x1", 1, 1, "ct6e-standard-1t"),
    ("2x2", 4, 1, "ct6e-standard-4t"),
    ("2x4", 8, 1, "ct6e-standard-8t"),
    ("2x4", 8, 2, "ct6e-standard-4t"),
    ("4x4", 16, 4, "ct6e-standard-4t"),
    ("4x8", 32, 8, "ct6e-standard-4t"),
    ("8x8", 64, 16, "ct6e-standard-4t"),
    ("8x16", 128, 32, "ct6e-standard-4t"),
    ("16x16", 256, 64, "ct6e-standard-4t"),
]


@pytest.mark.parametrize(("topology", "chips", "vms", "machine_type"), REFERENCE_ROWS)
def test_every_reference_row_is_accepted(topology, chips, vms, machine_type):
    tpu = resolve_slice(machine_type, topology)
    assert tpu.chips_per_slice == chips == topology_chips(topology)
    assert tpu.nodes_per_slice == vms
    assert tpu.multi_host is (vms > 1)
    assert tpu.chips_per_node * vms == chips
    # A full slice of nodes is always a valid pool, with and without autoscaling.
    check_node_counts(tpu, vms)
    check_node_counts(tpu, vms, autoscaling=True, min_nodes=0, max_nodes=vms)


@pytest.mark.parametrize(("topology", "_chips", "vms", "machine_type"), REFERENCE_ROWS)
def test_single_host_sends_no_topology_multi_host_does(topology, _chips, vms, machine_type):
    tpu = resolve_slice(machine_type, topology)
    assert tpu.api_tpu_topology == (topology if vms > 1 else None)


def test_guide_pool_and_its_derived_values():
    tpu = resolve_slice("ct6e-standard-4t", "2x2")
    check_node_counts(tpu, 1, autoscaling=True, min_nodes=0, max_nodes=3)
    data = tpu.as_dict()
    assert data["node_selector"] == {
        "cloud.google.com/gke-tpu-accelerator": "tpu-v6e-slice",
        "cloud.google.com/gke-tpu-topology": "2x2",
    }
    assert data["chips_per_node"] == 4
    assert max_chips(tpu, 1, autoscaling=True, max_nodes=3) == 12
    assert max_chips(tpu, 2, autoscaling=False, max_nodes=3) == 8


@pytest.mark.parametrize(
    ("machine_type", "default_topology"),
    [("ct6e-standard-1t", "1x1"), ("ct6e-standard-4t", "2x2"), ("ct6e-standard-8t", "2x4")],
)
def test_default_topology_is_single_host(machine_type, default_topology):
    tpu = resolve_slice(machine_type)
    assert (tpu.topology, tpu.multi_host) == (default_topology, False)


@pytest.mark.parametrize(
    ("machine_type", "topology", "reason"),
    [
        ("ct6e-standard-8t", "2x2", "topology 2x2 is not offered on ct6e-standard-8t (valid: 2x4)"),
        ("ct6e-standard-1t", "2x2", "2x2 is offered on ct6e-standard-4t"),
        ("ct6e-standard-8t", "4x4", "4x4 is offered on ct6e-standard-4t"),
        ("ct6e-standard-4t", "3x3", "topology 3x3 is not offered on ct6e-standard-4t"),
        ("ct6e-standard-4t", "two", "is not of the form AxB"),
        ("ct5lp-hightpu-4t", "2x2", "'ct5lp-hightpu-4t' is not a TPU v6e type"),
        ("n1-standard-4", None, "is not a TPU v6e type; known: ct6e-standard-1t"),
    ],
)
def test_mismatched_shapes_are_rejected_with_the_reason(machine_type, topology, reason):
    with pytest.raises(TpuShapeError) as err:
        resolve_slice(machine_type, topology)
    assert reason in str(err.value)


@pytest.mark.parametrize(
    ("topology", "node_count", "scaling", "reason"),
    [
        ("4x4", 3, None, "multi-host with 4 VMs: the node count must be 4 (or 0), not 3"),
        ("2x4", 1, None, "the node count must be 2 (or 0), not 1"),
        ("4x4", 4, (0, 8), "scales as one unit: autoscaling must be 0..4 or 4..4, not 0..8"),
        ("4x4", 4, (2, 4), "not 2..4"),
        ("2x2", 1, (3, 1), "autoscaling minimum 3 is greater than the maximum 1"),
        ("2x2", 5, (0, 3), "node count 5 is outside the autoscaling range 0..3"),
        ("2x2", -1, None, "node count -1 is negative"),
        ("2x2", 0, (-1, 2), "autoscaling minimum -1 is negative"),
    ],
)
def test_bad_node_counts_are_rejected_with_the_reason(topology, node_count, scaling, reason):
    machine_type = "ct6e-standard-4t"
    tpu = resolve_slice(machine_type, topology)
    kwargs = {}
    if scaling:
        kwargs = {"autoscaling": True, "min_nodes": scaling[0], "max_nodes": scaling[1]}
    with pytest.raises(TpuShapeError) as err:
        check_node_counts(tpu, node_count, **kwargs)
    assert reason in str(err.value)


def test_single_host_pool_may_hold_many_slices():
    tpu = resolve_slice("ct6e-standard-4t", "2x2")
    check_node_counts(tpu, 7, autoscaling=True, min_nodes=0, max_nodes=10)


def test_topology_is_case_insensitive():
    assert resolve_slice("ct6e-standard-4t", "2X2").topology == "2x2"
