#!/usr/bin/python
# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: prefix_cache_check
short_description: Check that the llm-d endpoint picker routes requests sharing a prefix to the same pod
version_added: 0.1.0
description:
  - Sends O(groups) groups of O(requests_per_group) completions through the gateway; the prompts of
    a group share a prefix of O(prefix_tokens) words and differ after it. Every request carries its
    own C(x-request-id).
  - Then reads the log of the endpoint picker (EPP) pods of the LLMInferenceService, finds its
    C(Request handled) line for each request, maps the endpoint it names (C(IP:port), the first one
    when it names several) to a pod through the pods' C(status.podIP), and reports the
    prefix-cache hit ratio among follow-up requests (every request of a group but the first), the
    pods chosen per group and the latency of hits and misses.
  - A hit is a follow-up routed to the pod of its group's first request (no upstream EPP logs
    whether its prefix-cache scorer matched, except at trace verbosity).
  - The EPP logs C(Request handled) at verbosity 3 (C(--v=3)); KServe runs it at the default 2,
    where it logs nothing per request. The model phase sets it (C(model_epp_verbosity)). The
    module reads the verbosity from the EPP pod's args and names it when it is too low.
  - The line carries the C(x-request-id) the gateway forwarded. Istio's gateway replaces a
    client's id with its own, so the request is found by the id vLLM puts in its answer
    (C(cmpl-<x-request-id>)), else by the id the module sent. Waits up to O(log_wait) seconds for
    the lines to appear.
  - Uses the load engine of M(llmd.gke.bench_run) to send the requests (C(max_concurrency) of them
    at a time).
  - Not idempotent in the usual sense - it sends requests every time, and reports C(changed=false)
    because it changes nothing. In check mode it sends nothing and returns the plan.
author:
  - llmd.gke maintainers (@llmd)
extends_documentation_fragment:
  - llmd.gke.attributes
  - llmd.gke.kubeconfig
attributes:
  check_mode:
    support: full
    details:
      - Sends no request and returns RV(plan).
  diff_mode:
    support: none
options:
  url:
    description:
      - Base URL of the model, without C(/v1) (the gateway URL followed by
        C(/<namespace>/<LLMInferenceService name>)).
    type: str
    required: true
  model:
    description:
      - The served model name the requests ask for.
    type: str
    required: true
  name:
    description:
      - Name of the LLMInferenceService; its EPP Deployment is C(<name>-kserve-router-scheduler)
        unless O(epp_deployment) is given.
    type: str
    required: true
  namespace:
    description:
      - Namespace of the LLMInferenceService and its EPP.
    type: str
    required: true
  epp_deployment:
    description:
      - Name of the EPP Deployment whose pods' logs hold the routing decisions.
    type: str
  epp_container:
    description:
      - Container of the EPP pods that logs the decisions (its args give the verbosity).
    type: str
    default: main
  groups:
    description:
      - Number of prompt groups; each has its own shared prefix.
    type: int
    default: 4
  requests_per_group:
    description:
      - Requests per group (at least 2 - the first one of a group cannot hit).
    type: int
    default: 5
  prefix_tokens:
    description:
      - Length of the shared prefix, in words (longer than the EPP's hash block size, 64 tokens by
        default in llm-d).
    type: int
    default: 256
  suffix_tokens:
    description:
      - Length of the part of each prompt after the shared prefix, in words.
    type: int
    default: 16
  max_tokens:
    description:
      - C(max_tokens) of each completion.
    type: int
    default: 8
  max_concurrency:
    description:
      - Requests in flight at once.
    type: int
    default: 2
  timeout:
    description:
      - Seconds one request may take.
    type: int
    default: 60
  log_wait:
    description:
      - Seconds, on the monotonic clock, to wait for the decisions to appear in the EPP log.
    type: int
    default: 30
  min_hit_ratio:
    description:
      - The check fails when the hit ratio among follow-up requests is lower.
    type: float
    default: 0.8
  require_decisions:
    description:
      - Fail when the EPP log holds no decision for the requests (an EPP that does not log them).
        With C(false) the module then only reports the requests.
    type: bool
    default: true
  seed:
    description:
      - Seed of the prompt generator (same seed, same prompts). A fixed seed repeats the same
        prefixes, which the EPP may still hold from an earlier run; the default varies it.
    type: int
  api_key:
    description:
      - Sent as a bearer token when the gateway requires one. Never returned or logged.
    type: str
notes:
  - With one replica every request goes to the same pod; the check is most telling with the guide's
    pattern 3 (three replicas), where a wrong scorer spreads a group over pods.
seealso:
  - module: llmd.gke.bench_run
  - module: llmd.gke.model_api_check
"""

EXAMPLES = r"""
- name: Requests that share a prefix reach the pod that caches it
  llmd.gke.prefix_cache_check:
    kubeconfig: "{{ llmd_kubeconfig }}"
    url: "{{ gateway_url }}/llm-d-inference-scheduling/qwen2-3b-pattern1"
    model: Qwen/Qwen2.5-3B-Instruct
    name: qwen2-3b-pattern1
    namespace: llm-d-inference-scheduling
    groups: 6
    requests_per_group: 5
    min_hit_ratio: 0.9
"""

RETURN = r"""
plan:
  description: What the check sends (also in check mode).
  returned: always
  type: dict
  sample: {"groups": 4, "requests_per_group": 5, "requests": 20, "prefix_tokens": 256}
requests:
  description: Requests that succeeded.
  returned: success
  type: int
  sample: 20
errors:
  description: Failed requests by kind (C(http_503), C(timeout), C(connection)...).
  returned: success
  type: dict
  sample: {}
decisions_found:
  description: Requests whose routing decision was found in the EPP log.
  returned: success
  type: int
  sample: 20
follow_ups:
  description: Requests after the first of their group, with a decision found.
  returned: success
  type: int
  sample: 16
hits:
  description: Follow-ups that hit the prefix cache.
  returned: success
  type: int
  sample: 16
hit_ratio:
  description: hits / follow_ups (null without follow-ups).
  returned: success
  type: float
  sample: 1.0
affinity:
  description: Share of follow-ups routed to the pod of their group's first request (the hit
    ratio, since a hit is told by the pod).
  returned: success
  type: float
  sample: 1.0
hit_source:
  description: How a hit was told - always C(same pod as the group's first request).
  returned: success
  type: str
epp_verbosity:
  description: The EPP's log verbosity read from its pod's args (2 when they set none).
  returned: success
  type: int
  sample: 3
unmapped_endpoints:
  description: Endpoints of decisions that no pod IP of the namespace explains (reported as pods
    under their C(IP:port)).
  returned: success
  type: list
  elements: str
pods:
  description: Requests routed to each pod (by name, from the endpoint's IP).
  returned: success
  type: dict
  sample: {"qwen2-3b-pattern1-kserve-6d9f-abcde": 20}
groups:
  description: Per group - requests, pods chosen (in order), hits, misses.
  returned: success
  type: list
  elements: dict
latency_ms:
  description: End-to-end latency statistics of hits and of misses (count, mean, min, p50, p90, p95,
    p99, max; percentiles by linear interpolation).
  returned: success
  type: dict
ttft_ms:
  description: Time to first token of hits and misses (streamed requests only; else null entries).
  returned: success
  type: dict
epp_pods:
  description: The EPP pods whose logs were read.
  returned: success
  type: list
  elements: str
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.gke.plugins.module_utils import bench_engine
from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import (
    KUBE_ARG_SPEC,
    KubeError,
    Resource,
    module_client,
)
from ansible_collections.llmd.gke.plugins.module_utils.llmisvc import read_pod_log
from ansible_collections.llmd.gke.plugins.module_utils.prefix_cache import (
    analyse,
    attribute,
    epp_verbosity,
    parse_decisions,
    served_id,
    verdict,
)


def epp_pods(client, namespace: str, deployment: str, container: str) -> tuple[list[str], int]:
    """The EPP Deployment's pods and the verbosity of their container."""
    obj = client.get(Resource("apps/v1", "deployments", namespace), deployment)
    if obj is None:
        raise KubeError(
            f"the EPP Deployment {namespace}/{deployment} does not exist",
            reason="NotFound",
            hint="Check the LLMInferenceService has a router with a scheduler (spec.router."
            "scheduler), or give epp_deployment",
        )
    labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    pods = client.list(Resource("v1", "pods", namespace), label_selector=selector or None)
    items = pods.get("items") or []
    containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
        "containers"
    ) or []
    if items:  # a pod's args (what it runs), else the Deployment's
        containers = (items[0].get("spec") or {}).get("containers") or containers
    args = next((c.get("args") for c in containers if c.get("name") == container), None)
    return sorted(p["metadata"]["name"] for p in items), epp_verbosity(args)


def pod_ips(client, namespace: str) -> dict[str, str]:
    """{status.podIP: pod name} of the namespace's pods (the model servers among them)."""
    pods = client.list(Resource("v1", "pods", namespace))
    found = {}
    for pod in pods.get("items") or ():
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue  # its IP may already be another pod's
        for entry in (pod.get("status") or {}).get("podIPs") or [
            {"ip": (pod.get("status") or {}).get("podIP")}
        ]:
            if entry.get("ip"):
                found[entry["ip"]] = pod["metadata"]["name"]
    return found


def read_decisions(client, params, pods: list[str], wanted: set[str]) -> tuple[dict, int]:
    """The decisions for the wanted ids, and how many decision lines there were in all."""
    deadline = time.monotonic() + params["log_wait"]
    while True:
        lines: list[str] = []
        for pod in pods:
            lines += read_pod_log(client, params["namespace"], pod, params["epp_container"], None)
        every = parse_decisions(lines)
        found = {k: v for k, v in every.items() if k in wanted}
        if len(found) >= len(wanted) or time.monotonic() + 1 > deadline:
            return found, len(every)
        time.sleep(1)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **KUBE_ARG_SPEC,
            url=dict(type="str", required=True),
            model=dict(type="str", required=True),
            name=dict(type="str", required=True),
            namespace=dict(type="str", required=True),
            epp_deployment=dict(type="str"),
            epp_container=dict(type="str", default="main"),
            groups=dict(type="int", default=4),
            requests_per_group=dict(type="int", default=5),
            prefix_tokens=dict(type="int", no_log=False, default=256),
            suffix_tokens=dict(type="int", no_log=False, default=16),
            max_tokens=dict(type="int", no_log=False, default=8),
            max_concurrency=dict(type="int", default=2),
            timeout=dict(type="int", default=60),
            log_wait=dict(type="int", default=30),
            min_hit_ratio=dict(type="float", default=0.8),
            require_decisions=dict(type="bool", default=True),
            seed=dict(type="int"),
            api_key=dict(type="str", no_log=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    lows = {"groups": 1, "requests_per_group": 2, "prefix_tokens": 1, "suffix_tokens": 1}
    lows.update(max_tokens=1, max_concurrency=1, timeout=1, log_wait=0)
    for option, low in lows.items():
        if params[option] < low:
            module.fail_json(msg=f"{option} must be at least {low}, got {params[option]}")
    if not 0 <= params["min_hit_ratio"] <= 1:
        module.fail_json(msg=f"min_hit_ratio must be within 0..1, got {params['min_hit_ratio']}")
    if not params["url"].startswith(("http://", "https://")):
        module.fail_json(msg=f"url must start with http:// or https://, got {params['url']!r}")
    count = params["groups"] * params["requests_per_group"]
    seed = params["seed"] if params["seed"] is not None else time.time_ns() % 2**31
    plan = {
        "groups": params["groups"],
        "requests_per_group": params["requests_per_group"],
        "requests": count,
        "prefix_tokens": params["prefix_tokens"],
        "suffix_tokens": params["suffix_tokens"],
        "max_concurrency": params["max_concurrency"],
        "seed": seed,
    }
    if module.check_mode:
        module.exit_json(changed=False, plan=plan, msg="check mode: no request sent")
    deployment = params["epp_deployment"] or f"{params['name']}-kserve-router-scheduler"
    client = module_client(module)
    try:
        pods, verbosity = epp_pods(client, params["namespace"], deployment, params["epp_container"])
    except KubeError as exc:
        module.fail_json(msg=str(exc), reason=exc.reason, hint=exc.hint, plan=plan)
    if not pods:
        module.fail_json(msg=f"the EPP Deployment {params['namespace']}/{deployment} has no pod")
    spec = {
        "url": params["url"],
        "model": params["model"],
        "api": "completions",
        "stream": False,
        "max_tokens": params["max_tokens"],
        "load": "concurrency",
        "levels": [params["max_concurrency"]],
        "requests": count,
        "timeout": params["timeout"],
        "max_error_rate": 1.0,
        "seed": seed,
        "api_key": params["api_key"],
        "prompts": {
            "source": "synthetic",
            "count": count,
            "input_tokens": params["prefix_tokens"] + params["suffix_tokens"],
            "prefix_groups": params["groups"],
            "prefix_tokens": params["prefix_tokens"],
        },
        "return_records": True,
    }
    try:
        outcome = bench_engine.run(spec)
    except bench_engine.BenchError as exc:
        module.fail_json(msg=f"cannot send the requests: {exc}", plan=plan)
    records = outcome["records"]
    level = outcome["levels"][0]
    sent = [r for r in records if not r.get("error") and not r.get("warmup")]
    wanted = {served_id(r) for r in sent}
    decisions, lines = {}, 0
    try:
        if wanted:
            decisions, lines = read_decisions(client, params, pods, wanted)
        ips = pod_ips(client, params["namespace"]) if decisions else {}
    except KubeError as exc:
        module.fail_json(msg=str(exc), reason=exc.reason, hint=exc.hint, plan=plan)
    attributed, unmapped = attribute(sent, decisions, ips)
    result = analyse(records, attributed)
    result.update(
        plan=plan,
        errors=level["errors"],
        epp_pods=pods,
        epp_verbosity=verbosity,
        unmapped_endpoints=unmapped,
    )
    problem = verdict(
        result, params["min_hit_ratio"], params["require_decisions"], verbosity, lines
    )
    if problem:
        module.fail_json(
            msg=f"prefix-cache routing check failed: {problem}", changed=False, **result
        )
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
