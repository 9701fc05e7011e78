#!/usr/bin/python
# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gke_cluster
short_description: Create, update or delete a GKE Standard cluster and its default node pool
version_added: 0.1.0
description:
  - Creates a zonal (O(location) is a zone) or regional (O(location) is a region) GKE Standard
    cluster with its default node pool, through the GKE REST API v1.
  - On an existing cluster, compares only the options you set with the cluster, in the terms of
    the options (O(version=1.34) matches the running version C(1.34.1-gke.1829001)), and changes
    what differs. GKE takes one change per update request, so the module sends them one after
    the other and waits for each Operation.
  - Fields GKE cannot change in place (O(ip_alias), O(network), O(subnetwork), the location, the
    default pool's machine type, disk and shielded instance settings) are never changed; the
    module fails, names the fields and changes nothing. There is no option to recreate a
    cluster (deleting a cluster deletes its workloads and data); delete it with
    O(state=absent) and create it again if you mean it.
  - First waits for Operations already running on the cluster or its node pools (for example
    the create started by an interrupted run), so a new run never starts a second change.
  - A cluster in C(ERROR) is a failure that shows GKE's conditions (what it says about the
    state). A C(DEGRADED) cluster serves, so the module goes on with a warning naming them.
author:
  - llmd.gke maintainers (@llmd)
options:
  location:
    description:
      - Zone (C(europe-west4-a), a zonal cluster) or region (C(europe-west4), a regional
        cluster) of the cluster. It cannot change; if a cluster of this name exists in another
        location of the project, the module fails instead of creating a second one.
    type: str
    required: true
  name:
    description:
      - Name of the cluster (1-40 lowercase letters, digits and C(-), starting with a letter).
    type: str
    required: true
  state:
    description:
      - V(present) creates the cluster or brings the options you set to their values.
      - V(absent) deletes the cluster with its node pools. Nothing happens if it does not exist.
    type: str
    choices: [present, absent]
    default: present
  version:
    description:
      - Kubernetes version of the control plane, for example V(1.34), V(1.34.1) or
        V(1.34.1-gke.1829001). Compared by prefix with the running version.
      - A higher version upgrades the control plane (the nodes follow with GKE's auto-upgrade).
        A lower minor version than the running one (GKE upgrades clusters of a release channel
        on its own) changes nothing and gives a warning, as GKE cannot downgrade.
      - V(latest) and V(-) are only used at creation and never compared.
    type: str
  release_channel:
    description:
      - GKE release channel. V(UNSPECIFIED) means no channel.
    type: str
    choices: [RAPID, REGULAR, STABLE, UNSPECIFIED]
  node_locations:
    description:
      - Zones of the nodes, in the region of O(location). For a zonal cluster the list must
        include O(location).
      - Changing it adds or removes nodes in every node pool.
    type: list
    elements: str
  default_pool:
    description:
      - The cluster's default node pool (created with the cluster, in C(nodePools)).
      - For a regional cluster or several O(node_locations), node counts are per zone.
    type: dict
    suboptions:
      name:
        description:
          - Name of the pool.
        type: str
        default: default-pool
      machine_type:
        description:
          - Compute Engine machine type of the nodes, for example V(n1-standard-4). Cannot
            change.
        type: str
      node_count:
        description:
          - Number of nodes per zone.
          - With O(default_pool.autoscaling.enabled=true) it is only the initial size and is
            never compared. Without autoscaling the pool is resized to it, when the API tells
            the pool's size (while it is the cluster's only node pool; otherwise the module
            warns and leaves the size alone).
          - Default at creation, when not set, O(default_pool.autoscaling.min_nodes) (at least
            1) with autoscaling, else 3.
        type: int
      autoscaling:
        description:
          - Cluster autoscaler settings of the pool.
        type: dict
        suboptions:
          enabled:
            description:
              - Whether the cluster autoscaler resizes the pool.
            type: bool
            default: true
          min_nodes:
            description:
              - Minimum number of nodes per zone. Required when enabled.
            type: int
          max_nodes:
            description:
              - Maximum number of nodes per zone. Required when enabled.
            type: int
      disk_size_gb:
        description:
          - Boot disk size of the nodes in GB (10 or more). Cannot change.
        type: int
      disk_type:
        description:
          - Boot disk type of the nodes, for example V(pd-balanced). Cannot change.
        type: str
      secure_boot:
        description:
          - Shielded VM secure boot of the nodes. Cannot change.
        type: bool
      integrity_monitoring:
        description:
          - Shielded VM integrity monitoring of the nodes. Cannot change.
        type: bool
  ip_alias:
    description:
      - VPC-native cluster (alias IP ranges). Cannot change.
    type: bool
  network:
    description:
      - VPC network of the cluster (name or resource path). Cannot change.
    type: str
  subnetwork:
    description:
      - Subnetwork of the cluster (name or resource path). Cannot change.
    type: str
  network_policy:
    description:
      - Kubernetes NetworkPolicy enforcement (Calico), that is the NetworkPolicy add-on and the
        enforcement. When enabling on an existing cluster the add-on is enabled first; when
        disabling, enforcement is disabled first. Both recreate the nodes on GKE.
    type: bool
  gce_pd_csi_driver:
    description:
      - The Compute Engine persistent disk CSI driver add-on (GcePersistentDiskCsiDriver).
    type: bool
  workload_identity:
    description:
      - Workload Identity with the pool C(PROJECT.svc.id.goog) of the project.
      - Enabling it on an existing cluster does not change the metadata mode of existing node
        pools.
    type: bool
  shielded_nodes:
    description:
      - Shielded GKE nodes.
    type: bool
  labels:
    description:
      - Resource labels of the cluster (C(resourceLabels)). When set, the cluster gets exactly
        these labels (Google's own C(goog-) labels are kept and never compared).
    type: dict
extends_documentation_fragment:
  - llmd.gke.gcp_auth
  - llmd.gke.gke
  - llmd.gke.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the cluster and returns the predicted C(changed) and diff; sends no change.
  diff_mode:
    support: full
    details:
      - Before and after of the options you set that differ, keyed by option name
        (C(default_pool.autoscaling.max_nodes)...). Before is empty when the cluster does not
        exist.
notes:
  - A 409 ALREADY_EXISTS on create (the cluster appeared between the read and the create) adopts
    the existing cluster when it matches the options (RV(adopted=true), C(changed=false)) and
    fails with the differing fields otherwise.
  - Network policy uses the C(setNetworkPolicy) method and labels C(setResourceLabels); the other
    changes use C(clusters.update), and the default pool's size C(nodePools.setSize).
seealso:
  - name: GKE REST API, clusters
    description: The API this module calls.
    link: https://cloud.google.com/kubernetes-engine/docs/reference/rest/v1/projects.locations.clusters
"""

EXAMPLES = r"""
- name: Zonal cluster for TPU v6e serving (the guide's settings)
  llmd.gke.gke_cluster:
    project: my-project
    location: europe-west4-a
    name: llmd-tpu
    version: "1.34"
    release_channel: REGULAR
    default_pool:
      machine_type: n1-standard-4
      node_count: 2
      autoscaling:
        min_nodes: 2
        max_nodes: 4
      secure_boot: true
      integrity_monitoring: true
    ip_alias: true
    network_policy: true
    gce_pd_csi_driver: true
    workload_identity: true
    shielded_nodes: true
  register: cluster

- name: Show where the API server is
  ansible.builtin.debug:
    msg: "{{ cluster.endpoint }} runs Kubernetes {{ cluster.version }}"

- name: Start the creation and go on (a later run with wait true waits for it)
  llmd.gke.gke_cluster:
    location: europe-west4
    name: regional
    default_pool:
      machine_type: e2-standard-4
      node_count: 1
    wait: false

- name: Delete the cluster
  llmd.gke.gke_cluster:
    location: europe-west4-a
    name: llmd-tpu
    state: absent
"""

RETURN = r"""
cluster:
  description:
    - The GKE Cluster resource as the API returns it, without master auth secrets (password,
      client key and certificate); C(masterAuth.clusterCaCertificate) stays.
    - Null when the cluster does not exist (after a delete, or in check mode before a create).
  returned: always
  type: dict
  sample: {"name": "llmd-tpu", "status": "RUNNING", "currentMasterVersion": "1.34.1-gke.1829001"}
endpoint:
  description: IP address (or host) of the Kubernetes API server.
  returned: always
  type: str
  sample: 34.90.1.2
ca_certificate:
  description: The cluster's CA certificate, base64-encoded PEM as the API gives it.
  returned: always
  type: str
status:
  description: Status of the cluster (RUNNING, PROVISIONING, RECONCILING...).
  returned: always
  type: str
  sample: RUNNING
version:
  description: Version of the control plane (C(currentMasterVersion)).
  returned: always
  type: str
  sample: 1.34.1-gke.1829001
location:
  description: Location of the cluster.
  returned: always
  type: str
  sample: europe-west4-a
node_pools:
  description: Names of the cluster's node pools.
  returned: always
  type: list
  elements: str
  sample: [default-pool, tpu-v6e-pool]
changed_fields:
  description: The options that differed (and were changed, unless in check mode or failed).
  returned: always
  type: list
  elements: str
  sample: [default_pool.autoscaling.max_nodes]
operation:
  description: The last GKE Operation seen (name, operationType, status, targetLink, times, error).
  returned: always
  type: dict
  sample: {"name": "operation-1234", "operationType": "CREATE_CLUSTER", "status": "DONE"}
pending:
  description:
    - True when an Operation still runs at the module's return (O(wait=false), or the
      O(progress_interval) slice ran out).
  returned: always
  type: bool
  sample: false
waited_seconds:
  description: Seconds spent waiting for Operations.
  returned: always
  type: float
  sample: 312.4
adopted:
  description: True when a create met 409 and the existing, matching cluster was adopted.
  returned: always
  type: bool
  sample: false
elapsed:
  description: Seconds since the module started, when it returns pending.
  returned: when pending
  type: float
immutable_fields:
  description: The fields that cannot change in place and differ.
  returned: on failure, when such fields differ
  type: list
  elements: str
  sample: [ip_alias]
differing_fields:
  description: The fields in which a cluster met on a 409 differs from the options.
  returned: on failure after a 409
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.gke.plugins.module_utils.gke_cluster import (
    MUTUALLY_EXCLUSIVE,
    GkeCluster,
    argument_spec,
)


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=MUTUALLY_EXCLUSIVE,
        supports_check_mode=True,
    )
    GkeCluster(module).run()


if __name__ == "__main__":
    main()
