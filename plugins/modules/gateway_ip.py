#!/usr/bin/python
# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gateway_ip
short_description: Wait for a Gateway API Gateway's address and return its base URL
version_added: 0.1.0
description:
  - Watches a C(gateway.networking.k8s.io/v1) Gateway (by default C(opendatahub/inference-gateway))
    until its C(Programmed) condition is C(True) for the current generation and it has an address in
    C(status.addresses) (type C(IPAddress) or C(Hostname)), then returns the address, the listener
    port and the base URL. Waits with a Kubernetes watch, not by polling, and never longer than
    O(timeout).
  - Until the load balancer has an address, Istio keeps C(Programmed) C(False) with reason
    C(AddressNotAssigned). On timeout the module fails with the last conditions and a hint chosen
    from them (load balancer not provisioned, Gateway rejected, GatewayClass missing, no controller
    reconciling the Gateway because istiod is not running).
  - Istio's C(Programmed) does not include the readiness of the gateway's pod (it can be C(True) while
    the pod is in C(ErrImagePull)). With O(check_pod), the module then waits up to O(pod_timeout)
    for the pods labelled C(gateway.networking.k8s.io/gateway-name=<name>) in the Gateway's namespace
    to be Ready, returns RV(pod_ready) and warns when they are not. It does not fail for that.
  - The URL is built from the Gateway's address and the listener's C(port) (C(spec.listeners[].port)),
    which is where the load balancer Service of an Istio gateway listens on GKE.
  - Reads only. Never returns or logs a credential from the kubeconfig.
author:
  - llmd.gke maintainers (@llmd)
extends_documentation_fragment:
  - llmd.gke.attributes
  - llmd.gke.attributes.info_module
  - llmd.gke.kubeconfig
options:
  name:
    description:
      - Name of the Gateway.
    type: str
    default: inference-gateway
  namespace:
    description:
      - Namespace of the Gateway.
    type: str
    default: opendatahub
  listener:
    description:
      - Name of the listener whose port goes into the URL.
      - Defaults to the first listener with protocol C(HTTP), else the first with C(HTTPS), else the
        first listener. The module fails at once when the named listener does not exist.
    type: str
  scheme:
    description:
      - URL scheme. Defaults to C(https) for an C(HTTPS) or C(TLS) listener, else C(http).
    type: str
    choices: [http, https]
  timeout:
    description:
      - Seconds to wait for the Gateway to be Programmed with an address, on the monotonic clock.
      - C(0) reads the current state once.
      - The pod check (O(pod_timeout)) never extends the whole run beyond this.
    type: int
    default: 600
  check_pod:
    description:
      - Check the readiness of the gateway's pods once the Gateway is Programmed.
    type: bool
    default: true
  pod_timeout:
    description:
      - Seconds to wait, after the Gateway is Programmed, for its pods to be Ready before warning.
      - C(0) checks once.
    type: int
    default: 60
notes:
  - The URL has no port when it is the scheme's default (C(80) for C(http), C(443) for C(https)),
    for example C(http://34.1.2.3) or C(http://34.1.2.3:8080). IPv6 addresses are bracketed.
  - The listener port is the port clients use on GKE, where the Gateway's C(LoadBalancer) Service
    exposes the listener ports. The sandbox's emulated gateway serves on its listener port only
    when the emulator binds exact ports (emulator config C(gateway.bind_exact_ports)); otherwise
    it binds a random local port, which the Gateway status cannot express.
  - Fails at once, without waiting, when the Gateway does not exist or the cluster does not serve
    the Gateway API.
seealso:
  - name: Gateway API status
    description: Gateway conditions (Accepted, Programmed) and addresses.
    link: https://gateway-api.sigs.k8s.io/reference/spec/#gatewaystatus
"""

EXAMPLES = r"""
- name: Wait for the inference gateway's external address
  llmd.gke.gateway_ip:
    kubeconfig: "{{ llmd_kubeconfig }}"
  register: gateway

- name: Call the model through the gateway
  ansible.builtin.uri:
    url: "{{ gateway.url }}/llm-d-inference-scheduling/qwen2-3b-pattern1/v1/models"

- name: Another Gateway, its HTTPS listener, a shorter wait and no pod check
  llmd.gke.gateway_ip:
    name: public
    namespace: ingress
    listener: https
    timeout: 120
    check_pod: false
"""

RETURN = r"""
address:
  description: The Gateway's address (the first C(IPAddress) or C(Hostname) entry of C(status.addresses)).
  returned: success
  type: str
  sample: 34.90.12.34
address_type:
  description: Type of RV(address), C(IPAddress) or C(Hostname).
  returned: success
  type: str
  sample: IPAddress
addresses:
  description: All entries of C(status.addresses) (C(type), C(value)).
  returned: success, and on failure when the Gateway exists
  type: list
  elements: dict
  sample: [{"type": "IPAddress", "value": "34.90.12.34"}]
listener:
  description: Name of the listener whose port is in the URL.
  returned: success
  type: str
  sample: http
port:
  description: Port of that listener (C(spec.listeners[].port)).
  returned: success
  type: int
  sample: 80
scheme:
  description: Scheme of RV(url).
  returned: success
  type: str
  sample: http
url:
  description: Base URL of the Gateway, without a trailing slash and without the scheme's default port.
  returned: success
  type: str
  sample: http://34.90.12.34
gateway_class:
  description: The Gateway's C(spec.gatewayClassName).
  returned: success, and on failure when the Gateway exists
  type: str
  sample: istio
conditions:
  description: The Gateway's C(status.conditions) (last seen when the module fails).
  returned: success, and on failure when the Gateway exists
  type: list
  elements: dict
  sample:
    - type: Programmed
      status: "False"
      reason: AddressNotAssigned
      message: "Assigned to service(s) inference-gateway-istio.opendatahub.svc.cluster.local:80, but failed to assign to all requested addresses"
listeners:
  description: The Gateway's C(status.listeners) (name, attachedRoutes, supportedKinds, conditions).
  returned: success, and on failure when the Gateway exists
  type: list
  elements: dict
pod_ready:
  description:
    - Whether all current pods of the gateway are Ready (and there is at least one).
    - Null when O(check_pod) is false or the pods could not be read.
  returned: success
  type: bool
  sample: true
pods:
  description: The gateway's pods (name, phase, ready, reasons of waiting or terminated containers).
  returned: success
  type: list
  elements: dict
  sample: [{"name": "inference-gateway-istio-5d8f7-abcde", "phase": "Pending", "ready": false, "reasons": ["ImagePullBackOff"]}]
elapsed:
  description: Seconds the module waited.
  returned: success, and on failure after reading the Gateway
  type: float
  sample: 42.3
reason:
  description:
    - Why the Gateway is not usable, when the module fails.
    - One of C(NotFound), C(NoStatus) (no controller wrote a status), C(NotAccepted), C(Stale),
      C(NoAddress), C(ListenerNotProgrammed), the C(Programmed) condition's reason (for example
      C(AddressNotAssigned)), or the API error's reason.
  returned: failure
  type: str
  sample: AddressNotAssigned
hint:
  description: What to do about it.
  returned: failure
  type: str
  sample: "The load balancer has no address yet: see 'kubectl get svc -n opendatahub inference-gateway-istio' (EXTERNAL-IP <pending>) ..."
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.gke.plugins.module_utils.gateway_status import (
    GatewayFailure,
    wait_gateway,
)
from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import (
    KUBE_ARG_SPEC,
    module_client,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **KUBE_ARG_SPEC,
            name=dict(type="str", default="inference-gateway"),
            namespace=dict(type="str", default="opendatahub"),
            listener=dict(type="str"),
            scheme=dict(type="str", choices=["http", "https"]),
            timeout=dict(type="int", default=600),
            check_pod=dict(type="bool", default=True),
            pod_timeout=dict(type="int", default=60),
        ),
        supports_check_mode=True,
    )
    params = module.params
    for option in ("timeout", "pod_timeout"):
        if params[option] < 0:
            module.fail_json(msg=f"{option} must be 0 or more seconds, got {params[option]}")
    for option in ("name", "namespace"):
        if not params[option]:
            module.fail_json(msg=f"{option} must not be empty")
    client = module_client(module)
    try:
        info = wait_gateway(
            client,
            params["name"],
            params["namespace"],
            listener=params["listener"],
            scheme=params["scheme"],
            timeout=params["timeout"],
            check_pod=params["check_pod"],
            pod_timeout=params["pod_timeout"],
        )
    except GatewayFailure as exc:
        module.fail_json(msg=exc.message, **exc.result)
    for warning in info.warnings:
        module.warn(warning)
    module.exit_json(changed=False, **info.as_dict())


if __name__ == "__main__":
    main()
