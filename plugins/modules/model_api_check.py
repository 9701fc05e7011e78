#!/usr/bin/python
# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: model_api_check
short_description: Smoke-test the OpenAI-compatible API of a served model through the gateway
version_added: 0.1.0
description:
  - Sends C(GET /v1/models), C(POST /v1/completions) and C(POST /v1/chat/completions) to a model
    served behind the inference gateway and checks that the model list names O(model) and that both
    completions return text and usage.
  - On failure the message gives the HTTP status, an excerpt of the body and the likely cause, told
    apart by what answered - Envoy's own 404 (no HTTPRoute matches the path), 503 (no healthy
    upstream - no Ready vLLM endpoint, an empty InferencePool or an unreachable endpoint picker),
    vLLM's C(NotFoundError) (the model name is not the served one), vLLM's C(Not Found) (a wrong URL
    prefix), refused connections (gateway address not reachable from here).
  - Answers that are transient right after a deployment (Envoy's 404 and 503, 502, 504, no answer)
    are retried every O(retry_interval) seconds until O(wait_timeout) on the monotonic clock. A model
    name mismatch fails at once.
  - Changes nothing, so it also runs in check mode (it does send the requests).
author:
  - llmd.gke maintainers (@llmd)
extends_documentation_fragment:
  - llmd.gke.attributes
  - llmd.gke.attributes.info_module
options:
  url:
    description:
      - Base URL of the model, without C(/v1), for example
        C(http://203.0.113.10/llm-d-inference-scheduling/qwen2-3b-pattern1) (the gateway URL followed
        by C(/<namespace>/<LLMInferenceService name>)).
    type: str
    required: true
  model:
    description:
      - The model name the requests ask for and C(/v1/models) must list (vLLM's
        C(--served-model-name)).
    type: str
    required: true
  checks:
    description:
      - Which checks to run, always in the order C(models), C(completions), C(chat).
    type: list
    elements: str
    choices: [models, completions, chat]
    default: [models, completions, chat]
  prompt:
    description:
      - Prompt of the completion, and user message of the chat completion.
    type: str
    default: Say hello in one short sentence.
  max_tokens:
    description:
      - C(max_tokens) of the completions.
    type: int
    default: 16
  timeout:
    description:
      - Seconds one request may take.
    type: int
    default: 60
  wait_timeout:
    description:
      - Seconds, on the monotonic clock, during which transient answers are retried. C(0) tries once.
    type: int
    default: 120
  retry_interval:
    description:
      - Seconds between two tries of a transient answer.
    type: int
    default: 3
  api_key:
    description:
      - Sent as C(Authorization - Bearer <api_key>) when the gateway or vLLM requires one. Never
        returned or logged.
    type: str
  headers:
    description:
      - Extra request headers. Their values are never returned; a value that appears in an answer
        is replaced by C(********).
    type: dict
    default: {}
  validate_certs:
    description:
      - Verify the server certificate of an C(https) URL.
    type: bool
    default: true
  ca_path:
    description:
      - CA bundle (PEM) to verify the server certificate of an C(https) URL with.
    type: path
notes:
  - Each completion generates up to O(max_tokens) tokens on the model server.
seealso:
  - module: llmd.gke.gateway_ip
  - module: llmd.gke.prefix_cache_check
  - module: llmd.gke.bench_run
"""

EXAMPLES = r"""
- name: Smoke-test the model through the gateway
  llmd.gke.model_api_check:
    url: "{{ gateway_url }}/llm-d-inference-scheduling/qwen2-3b-pattern1"
    model: Qwen/Qwen2.5-3B-Instruct

- name: Only the model list, once (no retry)
  llmd.gke.model_api_check:
    url: "{{ gateway_url }}/llm-d-inference-scheduling/qwen2-3b-pattern1"
    model: Qwen/Qwen2.5-3B-Instruct
    checks: [models]
    wait_timeout: 0
"""

RETURN = r"""
models:
  description: What C(GET /v1/models) answered.
  returned: when the check ran
  type: dict
  sample: {"status": 200, "elapsed_ms": 12.5, "models": ["Qwen/Qwen2.5-3B-Instruct"]}
completions:
  description: What C(POST /v1/completions) answered - status, time, an excerpt of the text,
    C(finish_reason), C(usage) and the model named in the answer.
  returned: when the check ran
  type: dict
  sample:
    status: 200
    elapsed_ms: 410.2
    text: " Hello! How can I help?"
    finish_reason: stop
    usage: {"prompt_tokens": 8, "completion_tokens": 7, "total_tokens": 15}
    model: Qwen/Qwen2.5-3B-Instruct
chat:
  description: What C(POST /v1/chat/completions) answered, as RV(completions).
  returned: when the check ran
  type: dict
failed_check:
  description: The check that failed; its entry then has C(status), C(body) (an excerpt) and C(cause).
  returned: failure
  type: str
  sample: completions
attempts:
  description: Requests sent, retries included.
  returned: always
  type: int
  sample: 3
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.gke.plugins.module_utils.model_api import ApiChecker, ApiFailure


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            model=dict(type="str", required=True),
            checks=dict(
                type="list",
                elements="str",
                choices=["models", "completions", "chat"],
                default=["models", "completions", "chat"],
            ),
            prompt=dict(type="str", default="Say hello in one short sentence."),
            max_tokens=dict(type="int", no_log=False, default=16),
            timeout=dict(type="int", default=60),
            wait_timeout=dict(type="int", default=120),
            retry_interval=dict(type="int", default=3),
            api_key=dict(type="str", no_log=True),
            headers=dict(type="dict", default={}),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not params["url"].startswith(("http://", "https://")):
        module.fail_json(msg=f"url must start with http:// or https://, got {params['url']!r}")
    for option, low in (
        ("max_tokens", 1),
        ("timeout", 1),
        ("wait_timeout", 0),
        ("retry_interval", 1),
    ):
        if params[option] < low:
            module.fail_json(msg=f"{option} must be at least {low}, got {params[option]}")
    headers = {str(k): str(v) for k, v in params["headers"].items()}
    if params["api_key"]:
        headers["Authorization"] = f"Bearer {params['api_key']}"
    secrets = tuple(headers.values()) + ((params["api_key"],) if params["api_key"] else ())
    for secret in secrets:
        module.no_log_values.add(secret)
    checker = ApiChecker(
        params["url"],
        params["model"],
        prompt=params["prompt"],
        max_tokens=params["max_tokens"],
        timeout=params["timeout"],
        wait_timeout=params["wait_timeout"],
        retry_interval=params["retry_interval"],
        headers=headers,
        validate_certs=params["validate_certs"],
        ca_path=params["ca_path"],
        secrets=secrets,
    )
    try:
        results = checker.run(params["checks"])
    except ApiFailure as exc:
        module.fail_json(msg=exc.message, changed=False, **exc.result)
    module.exit_json(changed=False, attempts=checker.attempts, **results)


if __name__ == "__main__":
    main()
