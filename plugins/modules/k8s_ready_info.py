#!/usr/bin/python
# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_ready_info
short_description: Wait until Kubernetes objects report a status condition, naming those that do not
version_added: 0.1.0
description:
  - A readiness gate. Waits, with Kubernetes watches and one deadline on the monotonic clock, until
    every object in O(resources) has the wanted status condition (for example C(Available=True) on a
    Deployment, C(Established=True) on a CustomResourceDefinition, C(Ready=True) on a Sail C(Istio)).
  - An object also counts as not ready while its controller has not observed its current generation
    (C(status.observedGeneration) lower than C(metadata.generation)), so a stale condition left over
    from before an update does not pass the gate.
  - When the deadline passes, the remaining objects are read once and the module fails with a message
    naming each object that is not ready and why (absent, kind not served, condition missing, or the
    condition's status with its reason and message).
  - Reads only; always returns C(changed=false). Never returns or logs a credential from the kubeconfig.
author:
  - llmd.gke maintainers (@llmd)
extends_documentation_fragment:
  - llmd.gke.attributes
  - llmd.gke.attributes.info_module
  - llmd.gke.kubeconfig
options:
  resources:
    description:
      - The objects that must be ready, checked in this order.
    type: list
    elements: dict
    required: true
    suboptions:
      api_version:
        description:
          - API version of the object, for example C(apps/v1) or C(sailoperator.io/v1).
        type: str
        required: true
      kind:
        description:
          - Kind of the object.
        type: str
        required: true
      name:
        description:
          - Name of the object.
        type: str
        required: true
      namespace:
        description:
          - Namespace of the object; omit for cluster-scoped objects.
        type: str
      condition:
        description:
          - Type of the status condition to check.
          - Defaults to C(Available) for a Deployment, C(Established) for a
            CustomResourceDefinition, C(Ready) for a StatefulSet, a Pod or an C(Istio); required for
            other kinds.
        type: str
      status:
        description:
          - Status the condition must have.
        type: str
        default: "True"
        choices: ["True", "False", "Unknown"]
      plural:
        description:
          - Resource name of the kind in the API path. Defaults to the lower-case kind made plural by
            the usual English rules (C(Istio) -> C(istios), C(NetworkPolicy) -> C(networkpolicies)).
        type: str
  timeout:
    description:
      - Seconds to wait for all the objects together, on the monotonic clock. C(0) reads each
        object once.
    type: int
    default: 300
  fail_on_not_ready:
    description:
      - Fail when an object is not ready at the deadline. With V(false) the module returns
        RV(ready=false) and the list instead.
    type: bool
    default: true
notes:
  - A kind the API does not serve (its CRD is absent or not yet established) is read again every two
    seconds until the deadline.
seealso:
  - module: llmd.gke.gateway_ip
"""

EXAMPLES = r"""
- name: The operators and their operands are ready
  llmd.gke.k8s_ready_info:
    kubeconfig: "{{ llmd_kubeconfig }}"
    timeout: 600
    resources:
      - api_version: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        name: istios.sailoperator.io
      - api_version: apps/v1
        kind: Deployment
        name: servicemesh-operator3
        namespace: istio-system
      - api_version: sailoperator.io/v1
        kind: Istio
        name: default
      - api_version: apps/v1
        kind: Deployment
        name: cert-manager-webhook
        namespace: cert-manager

- name: Report without failing
  llmd.gke.k8s_ready_info:
    timeout: 0
    fail_on_not_ready: false
    resources:
      - api_version: apps/v1
        kind: Deployment
        name: kserve-controller-manager
        namespace: opendatahub
  register: gate
"""

RETURN = r"""
ready:
  description: Whether every object was ready.
  returned: always
  type: bool
  sample: false
not_ready:
  description: One line per object that is not ready, naming it and the cause.
  returned: always
  type: list
  elements: str
  sample:
    - "Deployment cert-manager-operator/cert-manager-operator-controller-manager: Available is False
      (MinimumReplicasUnavailable; Deployment does not have minimum availability.)"
resources:
  description: The verdict on each object, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    api_version:
      description: API version of the object.
      type: str
    kind:
      description: Kind of the object.
      type: str
    name:
      description: Name of the object.
      type: str
    namespace:
      description: Namespace of the object (null when cluster-scoped).
      type: str
    condition_type:
      description: The condition type checked.
      type: str
    ready:
      description: Whether the object was ready.
      type: bool
    reason:
      description: >-
        C(Ready), C(NotFound), C(KindNotServed), C(NoCondition), C(ConditionNotMet) or
        C(NotObserved).
      type: str
    message:
      description: What was seen.
      type: str
    condition:
      description: The last condition seen (type, status, reason, message...), or null.
      type: dict
  sample:
    - api_version: sailoperator.io/v1
      kind: Istio
      name: default
      namespace: null
      condition_type: Ready
      ready: true
      reason: Ready
      message: Ready is True
      condition: {type: Ready, status: "True", reason: Healthy}
elapsed:
  description: Seconds spent waiting.
  returned: always
  type: float
  sample: 12.5
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.gke.plugins.module_utils.k8s_ready import (
    Target,
    TargetError,
    wait_ready,
)
from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import (
    KUBE_ARG_SPEC,
    KubeError,
    module_client,
)

RESOURCE_SPEC = dict(
    api_version=dict(type="str", required=True),
    kind=dict(type="str", required=True),
    name=dict(type="str", required=True),
    namespace=dict(type="str"),
    condition=dict(type="str"),
    status=dict(type="str", default="True", choices=["True", "False", "Unknown"]),
    plural=dict(type="str"),
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **KUBE_ARG_SPEC,
            resources=dict(type="list", elements="dict", required=True, options=RESOURCE_SPEC),
            timeout=dict(type="int", default=300),
            fail_on_not_ready=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["timeout"] < 0:
        module.fail_json(msg=f"timeout must be 0 or more seconds, got {params['timeout']}")
    try:
        targets = [Target.from_dict(item, i) for i, item in enumerate(params["resources"])]
    except TargetError as exc:
        module.fail_json(msg=str(exc))
    client = module_client(module)
    try:
        result = wait_ready(client, targets, params["timeout"])
    except KubeError as exc:
        module.fail_json(msg=str(exc), reason=exc.reason, hint=exc.hint)
    if not result.ready and params["fail_on_not_ready"]:
        module.fail_json(msg=result.message(params["timeout"]), changed=False, **result.as_dict())
    module.exit_json(changed=False, **result.as_dict())


if __name__ == "__main__":
    main()
