#!/usr/bin/python
# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pull_secret
short_description: A registry pull secret in several namespaces, creating the namespaces
version_added: 0.1.0
description:
  - Creates each namespace of O(namespaces) that does not exist (created, not applied; controllers
    label namespaces, a server-side apply of a bare Namespace would take nothing and fight over
    nothing), then server-side applies the Secret O(name) of type
    C(kubernetes.io/dockerconfigjson) in each of them, with the field manager O(field_manager)
    and C(force), as C(kubernetes.core.k8s) does with C(apply=true) and C(server_side_apply).
    One module run for all of it.
  - A Secret is changed when it is new, or when its type, data, labels or annotations differ
    after the apply. RV(versions) gives the C(uid/resourceVersion) of each Secret, never its
    content, so that a caller restarts what pulls with it only when it changed.
  - The Secret's content (O(dockerconfigjson), the JSON it decodes to, each registry's auth and
    password) is never returned or logged; an API error on the Secret is reported with its status
    and reason only. The diff (C(--diff)) shows the namespaces.
author:
  - llmd.gke maintainers (@llmd)
extends_documentation_fragment:
  - llmd.gke.attributes
  - llmd.gke.kubeconfig
attributes:
  check_mode:
    support: full
    details:
      - The requests are sent with C(dryRun=All). A Secret in a namespace that does not exist yet
        cannot be dry-run, so it counts as a change.
  diff_mode:
    support: partial
    details:
      - The namespaces before and after; never the Secret's content.
options:
  name:
    description:
      - Name of the Secret.
    type: str
    required: true
  namespaces:
    description:
      - Namespaces that get the Secret; missing ones are created.
    type: list
    elements: str
    required: true
  dockerconfigjson:
    description:
      - The base64-encoded C(.dockerconfigjson) of the Secret (a JSON object with C(auths)).
    type: str
    required: true
  labels:
    description:
      - Labels of the Secret.
    type: dict
    default: {app.kubernetes.io/managed-by: llmd.gke}
  field_manager:
    description:
      - Field manager of the server-side apply.
    type: str
    default: llmd-gke
seealso:
  - module: llmd.gke.registry_auth_info
"""

EXAMPLES = r"""
- name: Pull secret in two namespaces
  llmd.gke.pull_secret:
    kubeconfig: "{{ llmd_kubeconfig }}"
    name: redhat-pull-secret
    namespaces: [opendatahub, istio-system]
    dockerconfigjson: "{{ {'auths': {'registry.redhat.io': {'auth': auth}}} | to_json | b64encode }}"
  register: pull_secret
"""

RETURN = r"""
new_namespaces:
  description: Namespaces created (in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: [opendatahub]
changed_namespaces:
  description: >-
    Namespaces whose Secret was created or changed (in check mode: would be, and every new
    namespace).
  returned: always
  type: list
  elements: str
  sample: [opendatahub]
versions:
  description: >-
    C(uid/resourceVersion) of the Secret in each namespace it was applied to (not the namespaces
    created in check mode).
  returned: always
  type: dict
  sample: {opendatahub: "0b7c.../4711"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import (
    KUBE_ARG_SPEC,
    KubeError,
    module_client,
)
from ansible_collections.llmd.gke.plugins.module_utils.pull_secret import (
    ensure_pull_secret,
    secret_forms,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **KUBE_ARG_SPEC,
            name=dict(type="str", required=True),
            namespaces=dict(type="list", elements="str", required=True),
            dockerconfigjson=dict(type="str", required=True, no_log=True),
            labels=dict(type="dict", default={"app.kubernetes.io/managed-by": "llmd.gke"}),
            field_manager=dict(type="str", default="llmd-gke"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    # Whatever form of the content an answer could quote is censored from the output too.
    module.no_log_values.update(secret_forms(params["dockerconfigjson"]))
    if not params["namespaces"]:
        module.fail_json(msg="namespaces is empty: give the namespaces that need the Secret")
    client = module_client(module)
    try:
        result = ensure_pull_secret(
            client,
            name=params["name"],
            namespaces=params["namespaces"],
            data=params["dockerconfigjson"],
            labels=params["labels"],
            field_manager=params["field_manager"],
            check_mode=module.check_mode,
        )
    except KubeError as exc:
        module.fail_json(msg=str(exc), reason=exc.reason, hint=exc.hint)
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
