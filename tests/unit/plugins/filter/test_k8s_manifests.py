"""llmd.gke.k8s_manifests: the mappings of a YAML stream as plain JSON values."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmd.gke.plugins.filter.k8s_manifests import FilterModule, k8s_manifests

STREAM = """\
# a comment before the first document
apiVersion: v1
kind: Namespace
metadata:
  name: one
---
---
- not
- a mapping
---
{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "two", "namespace": "one"},
 "data": {"when": "x"}}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: three
  annotations:
    stamp: 2026-01-02T03:04:05Z
    day: 2026-01-02
data:
  count: "3"
"""


def test_the_mappings_in_order_as_plain_json() -> None:
    docs = k8s_manifests(STREAM)
    assert [d["metadata"]["name"] for d in docs] == ["one", "two", "three"]
    # What the API server reads: JSON values, unquoted timestamps as their text.
    assert docs[2]["metadata"]["annotations"] == {
        "stamp": "2026-01-02T03:04:05+00:00",
        "day": "2026-01-02",
    }
    assert json.loads(json.dumps(docs)) == docs
    assert docs[1]["data"] == {"when": "x"} and docs[2]["data"] == {"count": "3"}
    assert FilterModule().filters()["k8s_manifests"] is k8s_manifests


def test_empty_and_wrong_input() -> None:
    assert k8s_manifests("") == []
    assert k8s_manifests("---\n# nothing\n") == []
    with pytest.raises(AnsibleFilterError, match="not YAML"):
        k8s_manifests("a: [b\n")
    with pytest.raises(AnsibleFilterError, match="expects the YAML text, got list"):
        k8s_manifests([{"kind": "Namespace"}])
