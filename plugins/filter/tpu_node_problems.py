# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: tpu_node_problems
short_description: What is wrong with the Nodes of a TPU node pool
version_added: 0.1.0
author:
  - llmd.gke maintainers (@llmd)
description:
  - Checks each Node (as kubernetes.core.k8s_info returns it) against the TPU slice the pool
    should have, and returns one message per problem; an empty list means every Node is right.
  - A Node must be Ready, carry the labels C(cloud.google.com/gke-tpu-accelerator) and
    C(cloud.google.com/gke-tpu-topology) with the slice's values, the taint
    C(google.com/tpu=present:NoSchedule), and C(google.com/tpu) capacity equal to the chips per
    node.
options:
  _input:
    description: Node objects.
    type: list
    elements: dict
    required: true
  tpu:
    description:
      - The slice, as the C(slice) returned by M(llmd.gke.tpu_slice_info) (keys accelerator,
        topology, chips_per_node, machine_type).
    type: dict
    required: true
  lasting_only:
    description:
      - Leave out what may still fix itself (a Node not Ready yet, chips not registered yet), to
        stop waiting at once on a problem that waiting will not fix.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Fail when a TPU node is not what the pool should give
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems }}"
  vars:
    problems: "{{ nodes.resources | llmd.gke.tpu_node_problems(preflight_tpu_slice) }}"
"""

RETURN = r"""
_value:
  description: One message per problem, naming the Node and what to check.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.llmd.gke.plugins.module_utils.tpu import node_problems


def tpu_node_problems(nodes, tpu, lasting_only=False):
    if not isinstance(tpu, dict) or not {"accelerator", "topology", "chips_per_node"} <= set(tpu):
        raise AnsibleFilterError(
            "tpu_node_problems needs the TPU slice (accelerator, topology, chips_per_node) as "
            "returned by llmd.gke.tpu_slice_info"
        )
    if not isinstance(nodes, list):
        raise AnsibleFilterError("tpu_node_problems expects a list of Node objects")
    return node_problems(nodes, tpu, lasting_only=bool(lasting_only))


class FilterModule:
    def filters(self):
        return {"tpu_node_problems": tpu_node_problems}
