"""TPU node verification: each missing label, taint, capacity or readiness is reported."""

import copy

import pytest

from ansible_collections.llmd.gke.plugins.module_utils.tpu import node_problems, resolve_slice

SLICE = resolve_slice("ct6e-standard-4t", "2x2").as_dict()

GOOD = {
    "metadata": {
        "name": "gke-tpu-0",
        "labels": {
            "cloud.google.com/gke-tpu-accelerator": "tpu-v6e-slice",
            "cloud.google.com/gke-tpu-topology": "2x2",
        },
    },
    "spec": {"taints": [{"key": "google.com/tpu", "value": "present", "effect": "NoSchedule"}]},
    "status": {
        "capacity": {"google.com/tpu": "4", "cpu": "180"},
        "conditions": [{"type": "Ready", "status": "True"}],
    },
}


def test_a_right_node_has_no_problem():
    assert SLICE["accelerator"] == "tpu-v6e-slice"
    assert node_problems([GOOD, GOOD], SLICE) == []


def test_no_node_no_problem():
    assert node_problems([], SLICE) == []


def _broken(path, value):
    node = copy.deepcopy(GOOD)
    target = node
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return node


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("metadata", "labels", "cloud.google.com/gke-tpu-topology"), "2x4", "gke-tpu-topology"),
        (("metadata", "labels", "cloud.google.com/gke-tpu-accelerator"), None, "accelerator"),
        (("spec", "taints"), [], "google.com/tpu=present:NoSchedule is missing"),
        (
            ("spec", "taints"),
            [{"key": "google.com/tpu", "value": "present", "effect": "PreferNoSchedule"}],
            "is missing",
        ),
        (("status", "capacity", "google.com/tpu"), "8", "expected 4"),
        (("status", "capacity", "google.com/tpu"), None, "capacity google.com/tpu is None"),
        (("status", "conditions"), [{"type": "Ready", "status": "False"}], "is not Ready"),
    ],
)
def test_each_defect_is_reported_with_the_node_name(path, value, expected):
    problems = node_problems([GOOD, _broken(path, value)], SLICE)
    assert len(problems) == 1, problems
    assert problems[0].startswith("Node gke-tpu-0")
    assert expected in problems[0]


@pytest.mark.parametrize(
    ("path", "value", "lasting"),
    [
        (("spec", "taints"), [], True),
        (("metadata", "labels", "cloud.google.com/gke-tpu-topology"), "2x4", True),
        (("status", "capacity", "google.com/tpu"), "8", True),
        (("status", "capacity", "google.com/tpu"), None, False),
        (("status", "capacity", "google.com/tpu"), "0", False),
        (("status", "conditions"), [], False),
    ],
)
def test_lasting_only_leaves_out_what_waiting_may_fix(path, value, lasting):
    node = _broken(path, value)
    assert len(node_problems([node], SLICE)) == 1
    assert len(node_problems([node], SLICE, lasting_only=True)) == (1 if lasting else 0)
