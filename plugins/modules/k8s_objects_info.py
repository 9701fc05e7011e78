#!/usr/bin/python
# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_objects_info
short_description: Read several Kubernetes objects, lists and API group versions in one run
version_added: 0.1.0
description:
  - Reads, in one module run, each query of O(objects) (one object by name, or a list by
    namespace and selectors) and which kinds each group version of O(api_versions) serves. Every
    task of C(kubernetes.core) costs a Python start, the kubernetes client's import and discovery;
    a role that needs several reads in a row asks them here once.
  - Each query is answered as C(kubernetes.core.k8s_info) answers it, in the order given
    (RV(results)), with C(resources) (empty when nothing matched) and C(api_found) (false when the
    API does not serve the kind; discovery is asked only after a 404, to tell an absent object from
    a kind whose CRD is absent or not yet Established).
  - Requests go straight to the resource paths (C(/api/v1/...), C(/apis/<group>/<version>/...))
    with the plural of the kind; give O(objects[].plural) when the usual English rules do not make
    it.
  - Secrets are returned redacted; C(data) keeps only the keys named in O(objects[].secret_keys)
    (none by default), and C(stringData), C(metadata.managedFields) and the
    C(kubectl.kubernetes.io/last-applied-configuration) annotation are dropped.
  - Reads only; always returns C(changed=false). Never returns or logs a credential from the
    kubeconfig.
author:
  - llmd.gke maintainers (@llmd)
extends_documentation_fragment:
  - llmd.gke.attributes
  - llmd.gke.attributes.info_module
  - llmd.gke.kubeconfig
options:
  objects:
    description:
      - The reads, answered in this order.
    type: list
    elements: dict
    default: []
    suboptions:
      api_version:
        description:
          - API version of the kind, for example C(v1), C(apps/v1) or C(gateway.networking.k8s.io/v1).
        type: str
        required: true
      kind:
        description:
          - Kind to read.
        type: str
        required: true
      name:
        description:
          - Name of the one object to read. Without it, the objects are listed.
        type: str
      namespace:
        description:
          - Namespace of the object or the list; omit for cluster-scoped kinds, or to list a
            namespaced kind in every namespace.
        type: str
      label_selectors:
        description:
          - Label selectors of a list (joined with commas), for example C(app=x).
        type: list
        elements: str
        default: []
      field_selectors:
        description:
          - Field selectors of a list (joined with commas), for example C(status.phase=Running).
        type: list
        elements: str
        default: []
      plural:
        description:
          - Resource name of the kind in the API path. Defaults to the lower-case kind made plural
            by the usual English rules (C(GatewayClass) -> C(gatewayclasses),
            C(NetworkPolicy) -> C(networkpolicies)).
        type: str
      wait:
        description:
          - Wait, with a watch, up to O(wait_timeout) seconds for the named object to exist. When it
            does not, the result has no resources and C(timed_out=true); the module does not fail.
        type: bool
        default: false
      secret_keys:
        description:
          - For a Secret, the keys of C(data) to return (for example C(ca.crt)); the others are
            dropped.
        type: list
        elements: str
        default: []
  api_versions:
    description:
      - Group versions whose served kinds to return in RV(apis), for example C(cert-manager.io/v1)
        or C(v1).
    type: list
    elements: str
    default: []
  wait_timeout:
    description:
      - Seconds to wait for each object with O(objects[].wait=true).
    type: int
    default: 120
  fail_on_not_served:
    description:
      - Fail, naming each kind and the CRD that would serve it, when a query's kind is not served.
        With V(false) its result has C(api_found=false).
    type: bool
    default: false
notes:
  - A list of a namespaced kind in a namespace that does not exist is empty, as the API answers it.
seealso:
  - module: llmd.gke.k8s_ready_info
"""

EXAMPLES = r"""
- name: Read the GatewayClass, the CA certificate and the Deployment Istio creates
  llmd.gke.k8s_objects_info:
    kubeconfig: "{{ llmd_kubeconfig }}"
    objects:
      - api_version: gateway.networking.k8s.io/v1
        kind: GatewayClass
        name: istio
      - api_version: v1
        kind: Secret
        name: opendatahub-ca
        namespace: cert-manager
        secret_keys: [ca.crt, tls.crt]
  register: reads

- name: Use the answers
  ansible.builtin.debug:
    msg: >-
      Gateway API served: {{ reads.results[0].api_found }};
      CA present: {{ reads.results[1].resources | length > 0 }}

- name: The namespaces, and the kinds two group versions serve
  llmd.gke.k8s_objects_info:
    objects:
      - api_version: v1
        kind: Namespace
    api_versions: [v1, cert-manager.io/v1]
  register: survey

- name: Wait up to a minute for a ServiceAccount a controller creates
  llmd.gke.k8s_objects_info:
    wait_timeout: 60
    objects:
      - api_version: v1
        kind: ServiceAccount
        name: inference-gateway-istio
        namespace: opendatahub
        wait: true
  register: sa
"""

RETURN = r"""
results:
  description: The answer to each query of O(objects), in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    api_version:
      description: API version of the query.
      type: str
    kind:
      description: Kind of the query.
      type: str
    name:
      description: Name of the query's object (null for a list).
      type: str
    namespace:
      description: Namespace of the query (null when none).
      type: str
    plural:
      description: Resource name used in the API path.
      type: str
    api_found:
      description: Whether the API serves the kind.
      type: bool
    resources:
      description: The objects found (Secrets redacted), empty when none.
      type: list
      elements: dict
    waited:
      description: True when the query waited for its object.
      type: bool
      returned: when O(objects[].wait=true)
    timed_out:
      description: True when the object did not exist within O(wait_timeout).
      type: bool
      returned: when O(objects[].wait=true)
  sample:
    - api_version: gateway.networking.k8s.io/v1
      kind: GatewayClass
      name: istio
      namespace: null
      plural: gatewayclasses
      api_found: true
      resources:
        - apiVersion: gateway.networking.k8s.io/v1
          kind: GatewayClass
          metadata: {name: istio}
          spec: {controllerName: istio.io/gateway-controller}
apis:
  description: >-
    For each group version of O(api_versions), the kinds it serves (sorted; empty when the group
    version is not served). Subresources are left out.
  returned: always
  type: dict
  sample:
    v1: [ConfigMap, Namespace, Secret]
    cert-manager.io/v1: [Certificate, CertificateRequest, ClusterIssuer, Issuer]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.gke.plugins.module_utils.k8s_objects import (
    Query,
    QueryError,
    Reader,
    not_served_message,
)
from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import (
    KUBE_ARG_SPEC,
    KubeError,
    module_client,
)

OBJECT_SPEC = dict(
    api_version=dict(type="str", required=True),
    kind=dict(type="str", required=True),
    name=dict(type="str"),
    namespace=dict(type="str"),
    label_selectors=dict(type="list", elements="str", default=[]),
    field_selectors=dict(type="list", elements="str", default=[]),
    plural=dict(type="str"),
    wait=dict(type="bool", default=False),
    secret_keys=dict(type="list", elements="str", default=[], no_log=False),
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **KUBE_ARG_SPEC,
            objects=dict(type="list", elements="dict", default=[], options=OBJECT_SPEC),
            api_versions=dict(type="list", elements="str", default=[]),
            wait_timeout=dict(type="int", default=120),
            fail_on_not_served=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["wait_timeout"] < 0:
        module.fail_json(
            msg=f"wait_timeout must be 0 or more seconds, got {params['wait_timeout']}"
        )
    try:
        queries = [Query.from_dict(item, i) for i, item in enumerate(params["objects"])]
    except QueryError as exc:
        module.fail_json(msg=str(exc))
    client = module_client(module)
    reader = Reader(client, params["wait_timeout"])
    try:
        results = [reader.read(query) for query in queries]
        apis = reader.served_kinds(params["api_versions"])
    except KubeError as exc:
        module.fail_json(msg=str(exc), reason=exc.reason, hint=exc.hint)
    if params["fail_on_not_served"] and not all(r["api_found"] for r in results):
        module.fail_json(msg=not_served_message(results), changed=False, results=results, apis=apis)
    module.exit_json(changed=False, results=results, apis=apis)


if __name__ == "__main__":
    main()
