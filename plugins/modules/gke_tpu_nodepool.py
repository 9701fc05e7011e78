#!/usr/bin/python
# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gke_tpu_nodepool
short_description: Create, update or delete a TPU v6e node pool in a GKE cluster
version_added: 0.1.0
description:
  - Manages a node pool of TPU v6e slices (C(ct6e-standard-*) machine types) in an existing GKE
    cluster, through the GKE REST API v1.
  - Checks the machine type, the topology, the node counts and the autoscaling range against the
    v6e table (the same one as M(llmd.gke.tpu_slice_info)) before any API call, and fails with
    the reason when they do not form a pool GKE accepts.
  - Single-host slices (C(1x1), C(2x2), C(2x4) on C(ct6e-standard-8t)) are created without a
    placement policy; multi-host slices get C(placementPolicy) C(COMPACT) with the topology, and
    their node count must equal the slice's VM count.
  - Compares only the options you set with the existing pool, in the terms of these options.
    Updates what GKE can change in place (size, autoscaling, labels, taints, node locations), one
    change per API call, each waited for before the next.
  - Refuses a change of O(machine_type), O(topology), O(spot), O(disk_size_gb), O(disk_type) or
    O(service_account) and names the fields, changing nothing, unless O(allow_recreate=true).
  - A pool in C(ERROR) or C(RUNNING_WITH_ERROR) fails the module with GKE's conditions (what it
    says about the pool's state) and what to do.
  - When GKE answers that another Operation holds the cluster (either of its wordings), the
    module waits for that Operation within O(wait_timeout), then sends its change.
  - A create that meets a TPU stock-out (C(GCE_STOCKOUT)) fails within a poll or two with the
    zones reported with TPU v6e and the ways out. GKE itself keeps retrying that create for tens
    of minutes, cannot cancel it, and keeps the cluster locked until its retries end.
  - The collection's action plugin for this module prints the Operation's status and the elapsed
    time every 25 seconds while it waits (TPU pool creation takes minutes).
author:
  - llmd.gke maintainers (@llmd)
extends_documentation_fragment:
  - llmd.gke.gcp_auth
  - llmd.gke.gke
  - llmd.gke.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the pool and predicts RV(ignore:changed) and the diff; makes no mutating call and
        does not wait for Operations already running.
  diff_mode:
    support: full
    details:
      - Before and after of the options you set that differ (all of them for a create; the pool's
        fields for a delete).
options:
  location:
    description:
      - The cluster's location, a zone (V(europe-west4-a)) or a region (V(europe-west4)), as the
        cluster was created.
    type: str
    required: true
    aliases: [zone]
  cluster:
    description:
      - Name of the existing cluster.
    type: str
    required: true
  name:
    description:
      - Name of the node pool (1 to 40 lowercase letters, digits and C(-), starting with a letter).
    type: str
    required: true
  state:
    description:
      - V(present) creates the pool or brings it to the options; V(absent) deletes it.
    type: str
    default: present
    choices: [present, absent]
  machine_type:
    description:
      - TPU v6e machine type; the number is the chips per VM (node).
    type: str
    default: ct6e-standard-4t
  topology:
    description:
      - Slice topology, for example V(2x2) (4 chips on one C(ct6e-standard-4t) VM) or V(4x4)
        (4 VMs of C(ct6e-standard-4t)). Required with O(state=present).
      - It must be a topology the v6e table offers on O(machine_type).
    type: str
  node_count:
    description:
      - Nodes per zone. Without autoscaling it is the pool's fixed size, and a different value
        resizes the pool.
      - With autoscaling enabled it is only the initial size of a new pool and is never compared
        afterwards (the cluster autoscaler changes the size); it must lie in the autoscaling range.
      - For a multi-host slice it must equal the slice's VM count (or be 0).
      - Default for a new pool is the slice's VM count (1 for single-host), moved into the
        autoscaling range when needed; not compared with an existing pool unless set.
    type: int
  autoscaling:
    description:
      - Cluster autoscaler settings of the pool (counts per zone). Not compared when not set.
      - A multi-host slice scales as one unit, between 0 (or the VM count) and the VM count.
    type: dict
    suboptions:
      enabled:
        description:
          - Whether the pool autoscales. V(false) turns autoscaling off (the size is then kept).
        type: bool
        default: true
      min_nodes:
        description:
          - Minimum nodes per zone.
        type: int
        default: 0
      max_nodes:
        description:
          - Maximum nodes per zone. Required when O(autoscaling.enabled=true).
        type: int
      location_policy:
        description:
          - How the autoscaler spreads nodes over zones. Not sent or compared when not set.
        type: str
        choices: [BALANCED, ANY]
  spot:
    description:
      - Use Spot VMs. A new pool uses standard VMs when not set. Cannot change in place.
    type: bool
  node_locations:
    description:
      - Zones of the pool's nodes; the cluster's zones when not set. Must offer the machine type.
      - A multi-host slice lives in one zone.
    type: list
    elements: str
  labels:
    description:
      - Kubernetes labels of the pool's nodes (all of them; V({}) removes every label set before).
      - Keys of GKE and Kubernetes (C(cloud.google.com/gke-*), C(*kubernetes.io/*), C(*k8s.io/*))
        are refused; GKE sets C(cloud.google.com/gke-tpu-accelerator) and
        C(cloud.google.com/gke-tpu-topology) on TPU nodes itself.
    type: dict
  taints:
    description:
      - Kubernetes taints of the pool's nodes (all of them; V([]) removes every taint set before).
      - GKE adds C(google.com/tpu=present:NoSchedule) to TPU nodes itself; do not list it.
    type: list
    elements: dict
    suboptions:
      key:
        description: Taint key.
        type: str
        required: true
      value:
        description: Taint value.
        type: str
        default: ''
      effect:
        description: Taint effect.
        type: str
        required: true
        choices: [NO_SCHEDULE, PREFER_NO_SCHEDULE, NO_EXECUTE]
  disk_size_gb:
    description:
      - Boot disk size of each node in GB (at least 10). GKE's default when not set. Cannot
        change in place.
    type: int
  disk_type:
    description:
      - Boot disk type, for example V(hyperdisk-balanced). GKE's default when not set. Cannot
        change in place.
    type: str
  service_account:
    description:
      - E-mail of the service account of the nodes; the Compute Engine default one when not set.
        Cannot change in place.
    type: str
  allow_recreate:
    description:
      - When a field that GKE cannot change in place differs, delete the pool and create it again
        with the options. Deleting a TPU pool evicts every pod running on it.
      - With V(false) such a difference fails the module and nothing is changed.
    type: bool
    default: false
notes:
  - GKE runs one Operation at a time on a cluster; the module waits for the Operations already
    running on the pool before comparing, so a run interrupted by a timeout can simply be repeated.
  - The current size of a pool is read from the Compute Engine instance group managers the pool
    names (C(compute.instanceGroupManagers.get)); when they cannot be read the module warns and
    compares O(node_count) with the pool's initial node count. The environment variable
    E(CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE) overrides the Compute Engine endpoint.
  - Updates each take one Operation. With O(wait=false) the module still waits between two
    updates (GKE accepts one at a time) but not for the last one.
  - A 409 on create (the pool was created meanwhile) adopts the existing pool when it matches the
    options (RV(adopted=true)), and fails naming the differing fields otherwise.
seealso:
  - module: llmd.gke.tpu_slice_info
  - name: TPU v6e in GKE
    description: Machine types and topologies of TPU v6e.
    link: https://cloud.google.com/tpu/docs/v6e
"""

EXAMPLES = r"""
- name: Single-host v6e pool, 2x2 per node, autoscaling 0..3
  llmd.gke.gke_tpu_nodepool:
    project: my-project
    location: europe-west4-a
    cluster: llmd-tpu
    name: tpu-v6e-pool
    machine_type: ct6e-standard-4t
    topology: 2x2
    node_count: 1
    autoscaling:
      min_nodes: 0
      max_nodes: 3
  register: tpu_pool

- name: Show the chips the pool holds now and at most
  ansible.builtin.debug:
    msg: "{{ tpu_pool.total_chips }} chips now, at most {{ tpu_pool.max_chips }}"

- name: Multi-host 4x4 slice (4 VMs of 4 chips) on Spot VMs with a workload taint
  llmd.gke.gke_tpu_nodepool:
    project: my-project
    location: europe-west4-a
    cluster: llmd-tpu
    name: tpu-4x4
    topology: 4x4
    node_count: 4
    spot: true
    labels:
      team.example.com/owner: inference
    taints:
      - key: team.example.com/dedicated
        value: inference
        effect: NO_SCHEDULE

- name: Start the creation and go on (wait for it later with wait true)
  llmd.gke.gke_tpu_nodepool:
    project: my-project
    location: europe-west4-a
    cluster: llmd-tpu
    name: tpu-v6e-pool
    topology: 2x2
    wait: false

- name: Move the pool to Spot VMs, which needs a new pool
  llmd.gke.gke_tpu_nodepool:
    project: my-project
    location: europe-west4-a
    cluster: llmd-tpu
    name: tpu-v6e-pool
    topology: 2x2
    spot: true
    allow_recreate: true

- name: Delete the pool
  llmd.gke.gke_tpu_nodepool:
    project: my-project
    location: europe-west4-a
    cluster: llmd-tpu
    name: tpu-v6e-pool
    state: absent
"""

RETURN = r"""
node_pool:
  description:
    - The GKE NodePool resource as the API returns it, after the change; null when absent or in
      check mode before a create. Contains no secret.
  returned: always
  type: dict
  sample:
    name: tpu-v6e-pool
    config: {machineType: ct6e-standard-4t, diskSizeGb: 100}
    initialNodeCount: 1
    autoscaling: {enabled: true, maxNodeCount: 3}
    locations: [europe-west4-a]
    status: RUNNING
status:
  description: Status of the pool (C(PROVISIONING), C(RUNNING), C(RECONCILING), C(STOPPING)...), null when absent.
  returned: always
  type: str
  sample: RUNNING
chips_per_node:
  description: C(google.com/tpu) chips of each node.
  returned: always
  type: int
  sample: 4
nodes:
  description: Current number of nodes of the pool (all zones), null when unknown or absent.
  returned: always
  type: int
  sample: 1
total_chips:
  description: RV(nodes) x RV(chips_per_node), null when the node count is unknown.
  returned: always
  type: int
  sample: 4
max_chips:
  description:
    - Chips the pool may hold at most (max nodes per zone x zones x chips per node; without
      autoscaling, its nodes); what the TPU quota must cover.
  returned: always
  type: int
  sample: 12
slice:
  description: The pool's TPU slice, as M(llmd.gke.tpu_slice_info) returns it.
  returned: always
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
      description: C(placementPolicy.tpuTopology) sent to GKE; null for single-host slices.
      type: str
      sample: null
    node_selector:
      description: Node labels that select this slice's nodes.
      type: dict
      sample: {"cloud.google.com/gke-tpu-accelerator": "tpu-v6e-slice", "cloud.google.com/gke-tpu-topology": "2x2"}
operation:
  description: The last GKE Operation the run started or waited for (name, type, status, error...).
  returned: when there was one
  type: dict
  sample:
    name: operation-1767000000000-abcd1234
    operationType: CREATE_NODE_POOL
    status: DONE
    targetLink: https://container.googleapis.com/v1/projects/my-project/locations/europe-west4-a/clusters/llmd-tpu/nodePools/tpu-v6e-pool
pending:
  description:
    - True when O(progress_interval) ran out while the Operation still runs; run the module
      again with the same options to go on waiting (the action plugin does so).
  returned: always
  type: bool
  sample: false
elapsed:
  description: Seconds this run spent before returning RV(pending=true).
  returned: when pending
  type: float
  sample: 25.1
waited_seconds:
  description: Seconds this run spent waiting for Operations.
  returned: always
  type: float
  sample: 312.4
adopted:
  description: True when the create answered 409 and the existing pool, which matches the options, was adopted.
  returned: always
  type: bool
  sample: false
recreated:
  description: True when the pool was deleted and created again (O(allow_recreate=true)).
  returned: when recreated
  type: bool
  sample: true
recreate:
  description: In check mode, true when the predicted change is a delete and create.
  returned: check mode, when a change is predicted on an existing pool
  type: bool
  sample: false
immutable:
  description: The fields that differ and GKE cannot change in place.
  returned: failure, when an immutable field differs
  type: list
  elements: str
  sample: [spot]
differences:
  description: All the fields that differ from the existing pool.
  returned: failure, when the pool cannot be brought to the options
  type: list
  elements: str
  sample: [spot, labels]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.gke.plugins.module_utils.gcp import GcpApiError, GcpClient, GcpTimeout
from ansible_collections.llmd.gke.plugins.module_utils.gcp_auth import (
    GCP_AUTH_ARG_SPEC,
    GCP_AUTH_MUTUALLY_EXCLUSIVE,
    GcpAuthError,
)
from ansible_collections.llmd.gke.plugins.module_utils.gke_nodepool import (
    NODEPOOL_ARG_SPEC,
    NODEPOOL_REQUIRED_IF,
    NodePoolError,
    NodePoolRunner,
)
from ansible_collections.llmd.gke.plugins.module_utils.gke_ops import GKE_COMMON_ARG_SPEC, fail_gcp


def main():
    module = AnsibleModule(
        argument_spec=dict(**GCP_AUTH_ARG_SPEC, **GKE_COMMON_ARG_SPEC, **NODEPOOL_ARG_SPEC),
        mutually_exclusive=GCP_AUTH_MUTUALLY_EXCLUSIVE,
        required_if=NODEPOOL_REQUIRED_IF,
        supports_check_mode=True,
    )
    runner = None
    try:
        runner = NodePoolRunner(
            module.params,
            lambda: GcpClient(module.params, module),
            check_mode=module.check_mode,
            warn=module.warn,
        )
        result = runner.run()
    except NodePoolError as exc:
        details = dict(exc.details)
        details.setdefault("changed", bool(runner and runner.mutated))
        module.fail_json(msg=str(exc), **details)
    except (GcpApiError, GcpTimeout) as exc:
        extra = {"changed": bool(runner and runner.mutated)}
        if runner is not None and runner.diff is not None:
            extra["diff"] = runner.diff
        fail_gcp(module, exc, runner.waiter if runner else None, **extra)
    except GcpAuthError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
