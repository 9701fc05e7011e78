#!/usr/bin/python
# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tpu_slice_info
short_description: Validate a TPU v6e node pool shape and describe the slice
version_added: 0.1.0
description:
  - Checks that a TPU machine type, topology and node counts form a node pool GKE accepts,
    using the same table as M(llmd.gke.gke_tpu_nodepool), and returns what follows from it
    (chips per node, VMs per slice, the node selector GKE labels the nodes with).
  - Sends nothing anywhere. Fails with the reason when the shape is not valid.
author:
  - llmd.gke maintainers (@llmd)
extends_documentation_fragment:
  - llmd.gke.attributes
  - llmd.gke.attributes.info_module
options:
  machine_type:
    description:
      - TPU v6e machine type, for example V(ct6e-standard-4t).
    type: str
    required: true
  topology:
    description:
      - Slice topology, for example V(2x2). Defaults to the single-host topology of O(machine_type).
    type: str
  node_count:
    description:
      - Initial number of nodes in the pool.
    type: int
    default: 1
  autoscaling:
    description:
      - Autoscaling settings of the pool.
    type: dict
    suboptions:
      enabled:
        description: Whether the pool autoscales.
        type: bool
        default: false
      min_nodes:
        description: Minimum number of nodes.
        type: int
        default: 0
      max_nodes:
        description: Maximum number of nodes.
        type: int
        default: 1
"""

EXAMPLES = r"""
- name: Check the guide's single-host pool (ct6e-standard-4t, 2x2, 1 node, autoscaling 0..3)
  llmd.gke.tpu_slice_info:
    machine_type: ct6e-standard-4t
    topology: 2x2
    node_count: 1
    autoscaling:
      enabled: true
      min_nodes: 0
      max_nodes: 3
  register: tpu

- name: Use the chips per node in a workload
  ansible.builtin.debug:
    msg: "google.com/tpu: {{ tpu.slice.chips_per_node }}"
"""

RETURN = r"""
slice:
  description: The validated slice and what GKE derives from it.
  returned: success
  type: dict
  contains:
    accelerator:
      description: Value of the C(cloud.google.com/gke-tpu-accelerator) node label.
      type: str
      sample: tpu-v6e-slice
    machine_type:
      description: The machine type.
      type: str
      sample: ct6e-standard-4t
    topology:
      description: Value of the C(cloud.google.com/gke-tpu-topology) node label.
      type: str
      sample: 2x2
    chips_per_node:
      description: C(google.com/tpu) capacity of each node.
      type: int
      sample: 4
    nodes_per_slice:
      description: VMs (nodes) in one slice.
      type: int
      sample: 1
    chips_per_slice:
      description: Chips in one slice.
      type: int
      sample: 4
    multi_host:
      description: Whether one slice spans several nodes.
      type: bool
      sample: false
    api_tpu_topology:
      description:
        - C(placementPolicy.tpuTopology) to send to GKE; null for single-host slices, which the
          API rejects it for.
      type: str
      sample: null
    node_selector:
      description: Node labels that select this slice's nodes.
      type: dict
      sample: {"cloud.google.com/gke-tpu-accelerator": "tpu-v6e-slice", "cloud.google.com/gke-tpu-topology": "2x2"}
max_chips:
  description: Chips the pool may hold at most (max nodes x chips per node); what the quota must cover.
  returned: success
  type: int
  sample: 12
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.gke.plugins.module_utils.tpu import (
    TpuShapeError,
    check_node_counts,
    max_chips,
    resolve_slice,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            machine_type=dict(type="str", required=True),
            topology=dict(type="str"),
            node_count=dict(type="int", default=1),
            autoscaling=dict(
                type="dict",
                options=dict(
                    enabled=dict(type="bool", default=False),
                    min_nodes=dict(type="int", default=0),
                    max_nodes=dict(type="int", default=1),
                ),
            ),
        ),
        supports_check_mode=True,
    )
    params = module.params
    scaling = params["autoscaling"] or {"enabled": False, "min_nodes": None, "max_nodes": None}
    try:
        tpu = resolve_slice(params["machine_type"], params["topology"])
        check_node_counts(
            tpu,
            params["node_count"],
            autoscaling=scaling["enabled"],
            min_nodes=scaling["min_nodes"],
            max_nodes=scaling["max_nodes"],
        )
    except TpuShapeError as exc:
        module.fail_json(msg=f"Invalid TPU node pool shape: {exc}")
    module.exit_json(
        changed=False,
        slice=tpu.as_dict(),
        max_chips=max_chips(tpu, params["node_count"], scaling["enabled"], scaling["max_nodes"]),
    )


if __name__ == "__main__":
    main()
