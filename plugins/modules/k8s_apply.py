#!/usr/bin/python
# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_apply
short_description: Server-side apply of many Kubernetes objects in one run, optionally waiting for a condition
version_added: 0.1.0
description:
  - Server-side applies each object of O(definitions), in order, as C(kubernetes.core.k8s) does
    with C(apply=true) and C(server_side_apply) (a PATCH C(application/apply-patch+yaml) with the
    field manager O(field_manager) and C(force) when O(force_conflicts)), in one module run on raw
    JSON. For large objects such as CustomResourceDefinitions it is cheaper, as
    nothing is wrapped in the dynamic client's objects and nothing big is returned.
  - An object is changed when the API server's answer differs from what existed, other than in
    C(metadata.generation) and C(metadata.resourceVersion) alone (kubernetes.core's rule).
  - The resource name and scope of each kind come from the discovery document of its group version;
    a kind the API does not serve fails the module naming it (and its CRD).
  - With O(wait), waits (watches, one deadline of O(wait_timeout) seconds for all) until each object
    has the status condition O(wait_condition); the objects whose apply answer already has it are
    not read again. On timeout it fails naming each object that is not ready and why.
  - A Secret's data is never shown in the diff or the result, and an API error on a Secret is
    reported with its status and reason only.
author:
  - llmd.gke maintainers (@llmd)
extends_documentation_fragment:
  - llmd.gke.attributes
  - llmd.gke.kubeconfig
attributes:
  check_mode:
    support: full
    details:
      - Every apply is sent with C(dryRun=All); nothing is waited for.
  diff_mode:
    support: full
    details:
      - For each changed object, the parts that differ (the whole object when it is new); a
        Secret's values are hidden.
options:
  definitions:
    description:
      - The objects to apply (whole manifests with C(apiVersion), C(kind) and C(metadata.name)),
        after those of O(src) and O(manifests).
    type: list
    elements: dict
    default: []
  src:
    description:
      - Multi-document YAML files to apply, read by the module on the host it runs on (the
        controller, for the plays of this collection), in the order given, before O(manifests)
        and O(definitions). Megabytes of CRDs cost the controller seconds to template and send as
        O(definitions); as paths they cost nothing there.
    type: list
    elements: path
    default: []
  manifests:
    description:
      - Multi-document YAML text to apply (for example a C(kubectl kustomize) output), after
        O(src) and before O(definitions).
    type: str
  only_kinds:
    description:
      - Apply only the documents of these kinds from O(src) and O(manifests) (all when empty).
    type: list
    elements: str
    default: []
  skip_names:
    description:
      - Leave out the documents of O(src) and O(manifests) with these C(metadata.name).
    type: list
    elements: str
    default: []
  namespace:
    description:
      - Namespace of the namespaced objects that name none.
    type: str
  field_manager:
    description:
      - Field manager of the server-side apply.
    type: str
    default: llmd-gke
  force_conflicts:
    description:
      - Take the fields other managers own (C(force=true)).
    type: bool
    default: true
  wait:
    description:
      - Wait for O(wait_condition) on each object after the applies (not in check mode).
    type: bool
    default: false
  wait_condition:
    description:
      - The status condition to wait for.
    type: dict
    suboptions:
      type:
        description:
          - Condition type, for example C(Established) or C(Available).
        type: str
        required: true
      status:
        description:
          - Status the condition must have.
        type: str
        default: "True"
        choices: ["True", "False", "Unknown"]
  wait_timeout:
    description:
      - Seconds to wait for all the objects together.
    type: int
    default: 120
seealso:
  - module: llmd.gke.k8s_ready_info
"""

EXAMPLES = r"""
- name: CRDs, until Established
  llmd.gke.k8s_apply:
    kubeconfig: "{{ llmd_kubeconfig }}"
    definitions: "{{ lookup('ansible.builtin.file', 'crds.yaml') | ansible.builtin.from_yaml_all | list }}"
    wait: "{{ not ansible_check_mode }}"
    wait_condition:
      type: Established
    wait_timeout: 300

- name: One object, noting whether it was created
  llmd.gke.k8s_apply:
    definitions:
      - apiVersion: v1
        kind: ConfigMap
        metadata: {name: settings, namespace: demo}
        data: {mode: fast}
  register: applied
"""

RETURN = r"""
results:
  description: What happened to each object, in the order given.
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
    method:
      description: C(create), C(update) or C(unchanged) (in check mode, what would be).
      type: str
    changed:
      description: Whether the object was created or changed.
      type: bool
  sample:
    - {api_version: v1, kind: ConfigMap, name: settings, namespace: demo, method: create, changed: true}
not_ready:
  description: With O(wait), one line per object without the condition at the deadline.
  returned: when O(wait) and not in check mode
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.llmd.gke.plugins.module_utils.k8s_apply import (
    HAS_YAML,
    Applier,
    ApplyError,
    apply_all,
    diff_of,
    gather,
    wait_applied,
)
from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import (
    KUBE_ARG_SPEC,
    KubeError,
    module_client,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **KUBE_ARG_SPEC,
            definitions=dict(type="list", elements="dict", default=[]),
            src=dict(type="list", elements="path", default=[]),
            manifests=dict(type="str"),
            only_kinds=dict(type="list", elements="str", default=[]),
            skip_names=dict(type="list", elements="str", default=[]),
            namespace=dict(type="str"),
            field_manager=dict(type="str", default="llmd-gke"),
            force_conflicts=dict(type="bool", default=True),
            wait=dict(type="bool", default=False),
            wait_condition=dict(
                type="dict",
                options=dict(
                    type=dict(type="str", required=True),
                    status=dict(type="str", default="True", choices=["True", "False", "Unknown"]),
                ),
            ),
            wait_timeout=dict(type="int", default=120),
        ),
        supports_check_mode=True,
    )
    params = module.params
    waiting = params["wait"] and not module.check_mode
    if waiting and not (params["wait_condition"] or {}).get("type"):
        module.fail_json(msg="wait needs wait_condition.type (for example Established)")
    if (params["src"] or params["manifests"]) and not HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"))
    try:
        definitions = gather(
            params["src"],
            params["manifests"],
            params["only_kinds"],
            params["skip_names"],
            params["definitions"],
        )
    except ApplyError as exc:
        module.fail_json(msg=str(exc))
    client = module_client(module)
    applier = Applier(
        client,
        params["field_manager"],
        force=params["force_conflicts"],
        check_mode=module.check_mode,
        default_namespace=params["namespace"],
    )
    try:
        applied = apply_all(applier, definitions)
    except (ApplyError, KubeError) as exc:
        module.fail_json(msg=str(exc), **(exc.to_dict() if isinstance(exc, KubeError) else {}))
    result = {
        "changed": any(item.changed for item in applied),
        "results": [item.as_dict() for item in applied],
    }
    if module._diff:
        result["diff"] = [diff_of(item) for item in applied if item.changed]
    if waiting:
        condition = params["wait_condition"]
        try:
            gate = wait_applied(
                client, applied, condition["type"], condition["status"], params["wait_timeout"]
            )
        except KubeError as exc:
            module.fail_json(msg=str(exc), **result)
        result["not_ready"] = [verdict.line() for verdict in gate.not_ready]
        if not gate.ready:
            module.fail_json(msg=gate.message(params["wait_timeout"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
