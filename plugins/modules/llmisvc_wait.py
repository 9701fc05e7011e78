#!/usr/bin/python
# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: llmisvc_wait
short_description: Wait until a KServe LLMInferenceService is Ready, or say why it will not be
version_added: 0.1.0
description:
  - Waits until the LLMInferenceService O(name) (C(serving.kserve.io/v1alpha1)) in O(namespace)
    reports C(Ready=True) for its current generation, and returns its URL, its conditions, the
    objects KServe created for it (RV(children)) and a timeline of the start-up stages.
  - Waits with Kubernetes watches (the LLMInferenceService, its pods and the namespace's Events),
    not by polling, so Ready is noticed as soon as the controller writes it and the API calls
    grow only with the number of progress slices (a few per O(progress_interval)), not with the
    number of changes.
  - Fails fast, long before O(timeout), when the workload is clearly broken, with the cause, a
    hint and the pod (RV(diagnosis)) - an image that cannot be pulled (C(ImagePullBackOff), or
    C(ErrImagePull) with an authentication or not-found error), a container in
    C(CrashLoopBackOff) (with the last lines of its log, redacted; a Hugging Face 401 or 403 in
    them points at the token or the model's access), an C(OOMKilled) container, a missing Secret
    (C(CreateContainerConfigError)), a pod that is C(Unschedulable) (the scheduler's message; see
    O(unschedulable_grace)), or a condition of the LLMInferenceService that is C(False) with a
    terminal reason (for example C(CombineBaseError)).
  - A pod that is Pending while the cluster autoscaler adds a node for it (event
    C(TriggeredScaleUp)) is not a failure.
  - On timeout it fails with the last state - conditions, children, timeline, pods and, when
    something looked wrong, the diagnosis.
  - Prints a progress line (stage and elapsed time) every O(progress_interval) seconds during the
    wait, through the collection's action plugin.
  - Reads only; always returns C(changed=false). No Hugging Face token, bearer token or value of
    O(redact_values) appears in what it returns.
author:
  - llmd.gke maintainers (@llmd)
extends_documentation_fragment:
  - llmd.gke.attributes
  - llmd.gke.attributes.info_module
  - llmd.gke.kubeconfig
options:
  name:
    description:
      - Name of the LLMInferenceService.
    type: str
    required: true
  namespace:
    description:
      - Namespace of the LLMInferenceService.
    type: str
    default: llm-d-inference-scheduling
  timeout:
    description:
      - Seconds to wait in all, on the monotonic clock, across the progress slices.
      - C(0) reads the current state once.
    type: int
    default: 1200
  progress_interval:
    description:
      - Seconds between progress lines. The action plugin runs the module in slices of this length
        and prints the stage and the elapsed time between them.
      - The environment variable E(LLMD_LLMISVC_PROGRESS_INTERVAL) on the controller replaces it.
      - C(0) waits in one call, without progress lines.
    type: int
    default: 25
  log_lines:
    description:
      - Number of log lines of a failing container returned in C(log_tail) of RV(diagnosis).
      - C(0) reads no log.
    type: int
    default: 25
  fail_fast:
    description:
      - Fail as soon as the workload is clearly broken.
      - When false, wait until Ready or O(timeout); the diagnosis is still returned on timeout.
    type: bool
    default: true
  unschedulable_grace:
    description:
      - Seconds a pod may stay C(Unschedulable) without a C(TriggeredScaleUp) event of the cluster
        autoscaler before the module fails.
      - A C(NotTriggerScaleUp) or C(FailedScaleUp) event fails at once.
    type: int
    default: 60
  pull_secret:
    description:
      - Name of the image pull secret the hint of an image pull failure names.
    type: str
    default: redhat-pull-secret
  hf_secret:
    description:
      - Name of the Secret holding the Hugging Face token, named by the hints.
    type: str
    default: hf-token
  redact_values:
    description:
      - Values (for example the Hugging Face token) removed from everything returned, in addition
        to what looks like a Hugging Face or bearer token.
    type: list
    elements: str
    default: []
notes:
  - The children are those KServe release-v0.15 creates for an LLMInferenceService C(n) -
    Deployment C(n-kserve), HTTPRoute C(n-kserve-route), InferencePool C(n-inference-pool)
    (C(inference.networking.k8s.io/v1)) and the endpoint picker Deployment
    C(n-kserve-router-scheduler). An InferencePool has no C(Programmed) condition; C(accepted)
    reports C(Accepted) on its parents.
  - The timeline comes from the objects themselves (creation time, pod conditions, events,
    container start times) and from vLLM's log lines, so every progress slice derives it again.
    Log lines are read with C(timestamps=true); without server timestamps, vLLM's own
    C(MM-DD HH:MM:SS) stamp is taken as UTC.
  - The API calls are one LIST and one WATCH per watched resource and slice (a watch that ends is
    resumed from its resourceVersion), one log read per slice while the container runs, and one
    GET per child at the end.
seealso:
  - module: llmd.gke.k8s_ready_info
  - name: KServe LLMInferenceService
    description: The LLMInferenceService API (serving.kserve.io/v1alpha1).
    link: https://github.com/kserve/kserve
"""

EXAMPLES = r"""
- name: Wait for the model to be served
  llmd.gke.llmisvc_wait:
    kubeconfig: "{{ llmd_kubeconfig }}"
    name: "{{ llmd_model_service_name }}"
    namespace: "{{ llmd_model_namespace }}"
    timeout: 1800
    redact_values:
      - "{{ llmd_hf_token }}"
  register: model

- name: Show how long each stage took
  ansible.builtin.debug:
    msg: "{{ model.timeline | map(attribute='stage') | zip(model.timeline | map(attribute='duration')) }}"

- name: Wait without failing early, to see every stage of a slow start
  llmd.gke.llmisvc_wait:
    name: qwen2-3b-pattern1
    fail_fast: false
    progress_interval: 60
"""

RETURN = r"""
ready:
  description: Whether the LLMInferenceService is Ready at its current generation.
  returned: always
  type: bool
  sample: true
url:
  description: C(status.url) of the LLMInferenceService (through the gateway), or null.
  returned: always
  type: str
  sample: http://34.90.12.34/llm-d-inference-scheduling/qwen2-3b-pattern1
conditions:
  description: The LLMInferenceService's conditions (C(type), C(status), C(reason), C(message), C(lastTransitionTime)).
  returned: always
  type: list
  elements: dict
  sample: [{"type": "Ready", "status": "True", "reason": "", "message": ""}]
children:
  description:
    - The objects KServe created, by role - C(workload) and C(scheduler) (Deployments -
      C(replicas), C(ready_replicas), C(available), C(conditions)), C(route) (HTTPRoute -
      C(parents), C(accepted), C(resolved_refs)) and C(pool) (InferencePool - C(parents),
      C(accepted)). Each has C(kind), C(name) and C(exists).
  returned: unless pending
  type: dict
  sample:
    workload:
      kind: Deployment
      name: qwen2-3b-pattern1-kserve
      exists: true
      replicas: 1
      ready_replicas: 1
      available: true
    route:
      kind: HTTPRoute
      name: qwen2-3b-pattern1-kserve-route
      exists: true
      accepted: true
      resolved_refs: true
timeline:
  description:
    - Start-up stages reached, in order - C(created), C(scaling_up), C(scheduled),
      C(image_pulled), C(container_started), C(model_loading), C(compiling), C(server_starting),
      C(ready) - each with C(at) (UTC), C(offset) (seconds since creation) and C(duration)
      (seconds until the next stage; null for the last).
  returned: always
  type: list
  elements: dict
  sample:
    - {"stage": "created", "at": "2026-11-27T21:00:00Z", "offset": 0.0, "duration": 4.0}
    - {"stage": "ready", "at": "2026-11-27T21:13:10Z", "offset": 790.0, "duration": null}
stage:
  description: The current stage in words (as printed by the progress lines).
  returned: always
  type: str
  sample: "pod qwen2-3b-pattern1-kserve-6b7c9-x2x4q Running: compiling the model (XLA)"
pods:
  description:
    - The last state of the workload and endpoint picker pods (C(name), C(component), C(phase),
      C(node), C(ready), C(scheduled), C(containers) with C(state), C(reason), C(restart_count),
      C(last_terminated_reason)).
  returned: always
  type: list
  elements: dict
elapsed:
  description: Seconds waited (in all, across the progress slices).
  returned: always
  type: float
  sample: 790.4
diagnosis:
  description:
    - Why the LLMInferenceService will not become Ready - C(cause), C(hint), C(reason) (for example
      C(ImagePullBackOff), C(CrashLoopBackOff), C(HuggingFace401), C(HuggingFace403),
      C(InvalidCommandLine) (bash or vLLM refuse the command line), C(ProbeKilled) (the kubelet
      restarts vLLM on a failed liveness or startup probe),
      C(OOMKilled), C(Unschedulable), or the terminal condition reason), C(pod), C(container),
      C(message) and C(log_tail) (the last O(log_lines) log lines, redacted).
  returned: when the module fails fast, and on timeout when something looked wrong
  type: dict
  sample:
    cause: >-
      container main of pod qwen-kserve-6b7c9-x2x4q keeps crashing (CrashLoopBackOff, 2 restarts,
      last exit code 1, Error); the Hugging Face Hub refused the token (401)
    hint: "The Hugging Face token was refused: check that Secret hf-token ..."
    reason: HuggingFace401
hint:
  description: What to do, when the module fails.
  returned: failure
  type: str
pending:
  description: True when one progress slice ended before Ready (the action plugin calls the module again).
  returned: when a slice ends
  type: bool
wait_calls:
  description: Number of module calls (progress slices) the wait took.
  returned: always
  type: int
  sample: 32
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import (
    KUBE_ARG_SPEC,
    KubeError,
    condition,
    module_client,
)
from ansible_collections.llmd.gke.plugins.module_utils.llmisvc import LlmisvcWaiter, result_of


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **KUBE_ARG_SPEC,
            name=dict(type="str", required=True),
            namespace=dict(type="str", default="llm-d-inference-scheduling"),
            timeout=dict(type="int", default=1200),
            progress_interval=dict(type="int", default=25),
            log_lines=dict(type="int", default=25),
            fail_fast=dict(type="bool", default=True),
            unschedulable_grace=dict(type="int", default=60),
            pull_secret=dict(type="str", default="redhat-pull-secret", no_log=False),
            hf_secret=dict(type="str", default="hf-token", no_log=False),
            redact_values=dict(type="list", elements="str", default=[], no_log=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    for option in ("timeout", "progress_interval", "log_lines", "unschedulable_grace"):
        if params[option] < 0:
            module.fail_json(msg=f"{option} must be 0 or more, got {params[option]}")
    for option in ("name", "namespace"):
        if not params[option]:
            module.fail_json(msg=f"{option} must not be empty")
    what = f"LLMInferenceService {params['namespace']}/{params['name']}"
    client = module_client(module)
    waiter = LlmisvcWaiter(
        client,
        params["name"],
        params["namespace"],
        log_lines=params["log_lines"],
        fail_fast=params["fail_fast"],
        unschedulable_grace=params["unschedulable_grace"],
        pull_secret=params["pull_secret"],
        hf_secret=params["hf_secret"],
        redact_values=params["redact_values"],
    )
    try:
        outcome = waiter.wait(params["timeout"], params["progress_interval"] or None)
        result = result_of(waiter, outcome, with_children=outcome.status != "pending")
    except KubeError as exc:
        hint = exc.hint
        if exc.status == 404:
            hint = (
                "The cluster does not serve serving.kserve.io/v1alpha1 LLMInferenceService: "
                "install KServe's LLMInferenceService controller and CRDs (the kserve phase)"
            )
        module.fail_json(msg=waiter.redact(f"{what}: {exc.message}"), reason=exc.reason, hint=hint)
    for warning in waiter.warnings:
        module.warn(waiter.redact(warning))
    if outcome.status == "pending":
        module.exit_json(changed=False, pending=True, **result)
    if outcome.status == "ready":
        module.exit_json(changed=False, **result)
    if outcome.status == "missing":
        module.fail_json(
            msg=f"{what} does not exist",
            hint="Create it first (the model phase), or check name and namespace",
            **result,
        )
    diagnosis = result.get("diagnosis")
    if outcome.status == "failed":
        module.fail_json(
            msg=f"{what} will not become Ready: {diagnosis['cause']}",
            hint=diagnosis["hint"],
            **result,
        )
    ready = condition(outcome.svc, "Ready") or {}
    why = ", ".join(x for x in (ready.get("reason"), ready.get("message")) if x) or "no reason"
    module.fail_json(
        msg=waiter.redact(
            f"{what} is not Ready after {params['timeout']} s: {result['stage']}; Ready is "
            f"{ready.get('status', 'missing')} ({why})"
        ),
        hint=(diagnosis or {}).get("hint")
        or "See conditions, pods and timeline for the last state; a vLLM start on TPU takes "
        "12-15 minutes (raise timeout if it was still compiling)",
        **result,
    )


if __name__ == "__main__":
    main()
