#!/usr/bin/python
# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gcp_capacity_info
short_description: Check that a zone can hold the cluster and the TPU pool before creating them
version_added: 0.1.0
description:
  - Reads Google Cloud, changes nothing, and reports for each check whether it is C(ok), a
    C(problem) (creating the resources would fail; the message says how to fix it) or a
    C(warning) (it could not be checked; the message says what to check by hand).
  - Machine types - the zone offers each one (Compute Engine C(machineTypes.get)). When it does
    not, the message names the zones that do (Compute Engine aggregated machine type list).
  - TPU chip quota - the region's quota of TPU chips for the machine type's family (for example
    C(CT6E)) covers the pool's maximum, read from the Cloud Quotas API. The quota ids are not
    documented as stable; an id that is not found, or no permission to read quotas, is a
    warning, not a problem. Cloud Quotas gives limits, not usage; chips used elsewhere in the
    region count against the limit too.
  - External IP addresses - at least O(external_ips) are free in the region
    (Compute Engine C(regions.get), quota C(IN_USE_ADDRESSES) limit minus usage).
  - Never fails for what it finds, so a caller can report every problem at once. Credentials that
    cannot be loaded or rejected, and an endpoint that cannot be reached, are problems too. It
    fails only for options that make no check possible (a malformed zone or endpoint).
  - Missing permissions are warnings. Reading needs C(compute.machineTypes.get),
    C(compute.machineTypes.list), C(compute.regions.get) (roles/compute.viewer) and
    C(cloudquotas.quotas.get) (roles/cloudquotas.viewer).
author:
  - llmd.gke maintainers (@llmd)
extends_documentation_fragment:
  - llmd.gke.gcp_auth
  - llmd.gke.attributes
  - llmd.gke.attributes.info_module
options:
  zone:
    description:
      - The zone of the cluster and of the TPU pool, for example V(europe-west4-a). Quotas are
        read for its region.
    type: str
    required: true
  machine_types:
    description:
      - Machine types the zone must offer. The TPU machine type of O(tpu) is checked too.
    type: list
    elements: str
    default: []
  tpu:
    description:
      - The TPU node pool whose chip quota to check. Omit it to skip the quota check.
    type: dict
    suboptions:
      machine_type:
        description:
          - TPU machine type, for example V(ct6e-standard-4t). Its family (V(CT6E)) is the
            C(tpu_family) dimension of the quota.
        type: str
        required: true
      chips:
        description:
          - Chips the pool may hold at most (maximum node count x chips per node); the quota
            must cover them.
        type: int
        required: true
      spot:
        description:
          - Whether the pool uses Spot VMs, which count against the preemptible TPU quota.
        type: bool
        default: false
      quota_id:
        description:
          - The Cloud Quotas quota id to read (service C(compute.googleapis.com)).
          - By default V(TPUS-PER-TPU-FAMILY-per-project-region), or for Spot VMs
            V(PREEMPTIBLE-TPUS-PER-TPU-FAMILY-per-project-region) then
            V(PREEMPTIBLE-TPU-V6E-per-project-region) (the first that exists). These ids are not
            confirmed by Google's documentation; C(gcloud beta quotas info list
            --service=compute.googleapis.com) lists the real ones.
        type: str
  external_ips:
    description:
      - External IP addresses that must be free in the region. V(0) skips the check.
    type: int
    default: 2
  compute_api_endpoint:
    description:
      - Root URL of the Compute Engine API (a proxy, a test server), with or without a trailing
        C(v1/).
      - If not set, the value of the E(CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE) environment
        variable is used, else C(https://compute.googleapis.com/compute/).
    type: str
  quotas_api_endpoint:
    description:
      - Root URL of the Cloud Quotas API, with or without a trailing C(v1/).
      - If not set, the value of the E(CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDQUOTAS) environment
        variable is used, else C(https://cloudquotas.googleapis.com/).
    type: str
notes:
  - Warnings are also emitted as Ansible warnings, so they show in the output.
  - Calls answered 429, 502, 503 or 504 are retried a few times (within about 30 seconds).
"""

EXAMPLES = r"""
- name: Check the zone, the TPU chip quota and the external IPs before creating anything
  llmd.gke.gcp_capacity_info:
    project: my-project
    zone: europe-west4-a
    machine_types: [n1-standard-4]
    tpu:
      machine_type: ct6e-standard-4t
      chips: 12  # 3 nodes x 4 chips
      spot: false
  register: capacity

- name: Stop with every problem and its fix
  ansible.builtin.fail:
    msg: "{{ capacity.problems }}"
  when: capacity.problems | length > 0
"""

RETURN = r"""
checks:
  description: Every check made, in order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: C(machine_type), C(tpu_quota), C(external_ips) or C(credentials).
      type: str
      sample: tpu_quota
    status:
      description: C(ok), C(problem) or C(warning).
      type: str
      sample: ok
    message:
      description: What was found and, unless C(ok), what to do.
      type: str
      sample: "TPU chip quota TPUS-PER-TPU-FAMILY-per-project-region (CT6E) in europe-west4 is 64: it covers the pool's maximum of 12 chips ..."
    details:
      description: The figures behind the message (machine type, limit, usage, chips needed, Google's error...).
      type: dict
      sample: {"chips_needed": 12, "limit": 64, "quota_id": "TPUS-PER-TPU-FAMILY-per-project-region", "region": "europe-west4"}
problems:
  description: The message of each problem, with its fix. Empty when creating the resources can go ahead.
  returned: always
  type: list
  elements: str
  sample: ["Only 1 external IP addresses are free in europe-west4 (IN_USE_ADDRESSES: 7 of 8 in use); the deployment needs at least 2. ..."]
warnings:
  description:
    - The message of each check that could not be made (Ansible shows them as warnings), saying
      what to check by hand.
  returned: when a check could not be made
  type: list
  elements: str
  sample: ["Could not check the TPU chip quota for CT6E in europe-west4: no permission to read quota ..."]
project:
  description: The project checked.
  returned: always
  type: str
  sample: my-project
region:
  description: The region of the zone, where the quotas were read.
  returned: always
  type: str
  sample: europe-west4
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.gke.plugins.module_utils.gcp_auth import (
    GCP_AUTH_ARG_SPEC,
    GCP_AUTH_MUTUALLY_EXCLUSIVE,
)
from ansible_collections.llmd.gke.plugins.module_utils.gcp_capacity import (
    CAPACITY_ARG_SPEC,
    CapacityOptionError,
    check_capacity,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(GCP_AUTH_ARG_SPEC, **CAPACITY_ARG_SPEC),
        mutually_exclusive=GCP_AUTH_MUTUALLY_EXCLUSIVE,
        supports_check_mode=True,
    )
    try:
        result = check_capacity(module.params, module)
    except CapacityOptionError as exc:
        module.fail_json(msg=f"Invalid options: {exc}")
    for warning in result["warnings"]:
        module.warn(warning)
    module.exit_json(changed=False, **{k: v for k, v in result.items() if k != "warnings"})


if __name__ == "__main__":
    main()
