#!/usr/bin/python
# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: bench_run
short_description: Load benchmark of an OpenAI-compatible endpoint, with SLO gates and reports
version_added: 0.1.0
description:
  - Sends load to C(<url>/v1/completions) or C(<url>/v1/chat/completions) of an OpenAI-compatible
    server (vLLM behind the inference gateway) from the control node, with an aiohttp client
    (HTTP/1.1 keep-alive, one connection pool), and measures request and token throughput,
    end-to-end latency, time to first token (TTFT), time per output token (TPOT) and
    inter-token latency (ITL), with their p50, p90, p95 and p99.
  - "Load: a fixed concurrency (closed loop: O(levels) workers, each sending its next request
    when its previous one ends) or a request rate with constant or Poisson arrivals (open loop,
    capped at O(max_concurrency) in flight). O(levels) is a sweep: one result per level, in order."
  - A level ends after O(requests) measured requests or O(duration) seconds, whichever comes
    first, then waits for the requests in flight. Warm-up requests (O(warmup_requests),
    O(warmup_seconds)) run first at the level's load and are left out of every number.
  - Every non-2xx answer, timeout, connection error and unparseable answer is an error, counted by
    kind (C(http_<status>), C(timeout), C(connection), C(invalid_response)); errors never enter
    the latency statistics. A level stops when its error rate passes O(max_error_rate) (after
    O(error_stop_min_requests) answers); later levels do not run and the task fails (see
    O(fail_on_error_stop)), with the error counts, the first error of each kind and a hint.
  - SLO gates (O(slo)) are checked on every level; a miss fails the task with a table (level,
    metric, bound, measured, verdict), after the outputs are written.
  - With O(results_dir), writes C(summary.json), C(requests.csv) (one row per request, warm-up
    rows flagged), C(report.md) (tables per level, the SLO table, the method) and two PNG plots,
    C(latency_distribution.png) and C(throughput_latency.png). Without it nothing is written.
  - Every request carries a unique C(x-request-id) header, C(<run_id>-<level index>-<sequence>),
    kept in the per-request records with the gateway's C(x-gateway-destination-endpoint) answer
    header, so requests can be matched with the endpoint picker's log lines.
  - Not idempotent - every run sends load and returns C(changed=true).
author:
  - llmd.gke maintainers (@llmd)
extends_documentation_fragment:
  - llmd.gke.attributes
attributes:
  check_mode:
    support: full
    details:
      - Sends nothing and writes nothing; validates the options, builds the prompt set and returns
        the plan (RV(plan)) with C(changed=false).
  diff_mode:
    support: none
options:
  url:
    description:
      - Base URL of the server, with any path prefix, for example
        C(http://10.0.0.5/llm-d-inference-scheduling/qwen2-3b-pattern1).
      - The module appends C(/v1/completions) or C(/v1/chat/completions); a trailing C(/v1) in
        O(url) is not repeated.
      - A C(user:password@) part is left out of RV(plan) and the reports, but the task's own
        arguments still show it; pass secrets with O(api_key) or O(headers).
    type: str
    required: true
  model:
    description:
      - The served model name sent as C(model) (C(GET <url>/v1/models) lists it).
    type: str
    required: true
  api:
    description:
      - C(completions) sends C(prompt) to C(/v1/completions); C(chat) sends C(messages) to
        C(/v1/chat/completions).
    type: str
    choices: [completions, chat]
    default: completions
  stream:
    description:
      - Ask for a server-sent-events stream (C(stream=true) with C(stream_options.include_usage)
        and vLLM's C(stream_options.continuous_usage_stats), which puts the token count in every
        chunk). TTFT, TPOT and ITL are measured only on streams.
      - When false, end-to-end latency and token counts (from C(usage)) only.
    type: bool
    default: true
  max_tokens:
    description:
      - C(max_tokens) of every request (a prompt file line may set its own).
    type: int
    default: 64
  ignore_eos:
    description:
      - Send vLLM's C(ignore_eos=true), so every answer has exactly O(max_tokens) tokens.
      - Set false for servers that reject unknown fields.
    type: bool
    default: true
  extra_body:
    description:
      - 'Fields merged into every request body, for example C({"temperature": 0}).'
    type: dict
  api_key:
    description:
      - 'Sent as C(Authorization: Bearer <api_key>). Never returned or logged.'
    type: str
  headers:
    description:
      - Extra request headers. Their values are treated as secrets - never returned, and masked
        wherever they would appear in the output.
    type: dict
  load:
    description:
      - C(concurrency) - O(levels) are numbers of requests in flight (closed loop).
      - C(rate) - O(levels) are request rates in requests per second (open loop, see O(arrival)).
    type: str
    choices: [concurrency, rate]
    default: concurrency
  levels:
    description:
      - The load levels, run in this order, one result each (whole numbers for
        O(load=concurrency)).
    type: list
    elements: float
    default: [1]
  arrival:
    description:
      - With O(load=rate), the gaps between sends - C(constant) (1/rate) or C(poisson)
        (exponential, seeded with O(seed) and the level, so reproducible).
    type: str
    choices: [constant, poisson]
    default: constant
  max_concurrency:
    description:
      - With O(load=rate), the most requests in flight; an arrival that finds them all busy waits
        for a slot, and the delay shows in C(max_schedule_lag_ms) and
        C(capped_arrivals) of RV(levels). Also the size of the connection pool in rate mode.
    type: int
    default: 256
  duration:
    description:
      - Seconds per level, from the level's first measured send; no request is sent after it.
      - Set O(duration), O(requests) or both (whichever comes first ends the level).
    type: float
  requests:
    description:
      - Measured requests per level (warm-up not counted). Exactly this many are sent unless
        O(duration) or an error stop ends the level first.
    type: int
  warmup_requests:
    description:
      - Requests sent first at each level and left out of the results (flagged C(warmup) in the
        CSV).
    type: int
    default: 0
  warmup_seconds:
    description:
      - Seconds from each level's start during which requests are warm-up. With
        O(warmup_requests) too, warm-up lasts until both are done.
    type: float
    default: 0
  timeout:
    description:
      - Seconds for one request, from send to the last byte of the answer; past it, the request
        is an error of kind C(timeout).
    type: float
    default: 60
  max_error_rate:
    description:
      - Stop a level (and the sweep) when the share of failed answers passes this (0 to 1).
    type: float
    default: 0.5
  error_stop_min_requests:
    description:
      - Answers a level needs (warm-up included) before O(max_error_rate) is checked.
    type: int
    default: 20
  fail_on_error_stop:
    description:
      - Fail the task when a level stopped on O(max_error_rate). When false, the results up to the
        stop are returned and RV(stopped_early) says why.
    type: bool
    default: true
  prompts:
    description:
      - The prompt set. Requests cycle through it in order (request I(i) of a level uses prompt
        I(i) modulo its size).
      - Lengths are counted in whitespace-separated words, because no tokenizer is available on
        the control node; the server's C(usage.prompt_tokens) gives the real count.
    type: dict
    suboptions:
      source:
        description:
          - C(synthetic) - seeded prompts of common English words, with length control and
            shared-prefix groups.
          - 'C(file) - a JSONL file, one object per line, C({"prompt": "..."}) or
            C({"messages": [...]}), optionally with C("max_tokens"). With O(api=completions), a
            C(messages) line is sent as its contents joined by newlines; with O(api=chat), a
            C(prompt) line as one user message.'
        type: str
        choices: [synthetic, file]
        default: synthetic
      path:
        description:
          - The JSONL file, with O(prompts.source=file).
        type: path
      count:
        description:
          - Number of prompts. Synthetic - defaults to 100. File - the first O(prompts.count)
            lines (default all).
        type: int
      input_tokens:
        description:
          - Synthetic prompt length, in words (including the shared prefix).
        type: int
        default: 128
      input_tokens_spread:
        description:
          - Synthetic lengths vary uniformly by up to this many words either side of
            O(prompts.input_tokens).
        type: int
        default: 0
      prefix_groups:
        description:
          - Number of groups of synthetic prompts that share a prefix (prompt I(i) is in group
            I(i) modulo O(prompts.prefix_groups), so groups alternate). C(0) - no shared prefix.
        type: int
        default: 0
      prefix_tokens:
        description:
          - Length in words of each group's shared prefix; below the shortest prompt, so that
            every prompt keeps a suffix of its own.
        type: int
        default: 0
  seed:
    description:
      - Seed of the synthetic prompts and of the Poisson arrivals; the same seed gives the same
        prompts and send schedule.
    type: int
    default: 0
  run_id:
    description:
      - First part of every C(x-request-id). Defaults to 8 random hex digits.
    type: str
  slo:
    description:
      - "Service level objectives, each checked on every level: O(slo[].metric) with O(slo[].max)
        or O(slo[].min)."
    type: list
    elements: dict
    suboptions:
      metric:
        description:
          - One of C(request_throughput), C(output_token_throughput), C(total_token_throughput),
            C(error_rate), or C(<latency>.<statistic>) where C(<latency>) is C(e2e_latency_ms),
            C(ttft_ms), C(tpot_ms) or C(itl_ms) and C(<statistic>) is C(mean), C(min), C(p50),
            C(p90), C(p95), C(p99) or C(max). A level without data for the metric (for example
            TTFT without streaming) misses.
        type: str
        required: true
      max:
        description:
          - Upper bound (inclusive).
        type: float
      min:
        description:
          - Lower bound (inclusive).
        type: float
  fail_on_slo:
    description:
      - Fail the task when an SLO check misses (outputs are written first).
    type: bool
    default: true
  results_dir:
    description:
      - Directory (created if needed) for C(summary.json), C(requests.csv), C(report.md),
        C(latency_distribution.png) and C(throughput_latency.png). Files of an earlier run there
        are replaced.
      - The plots need matplotlib; without it they are skipped with a warning.
    type: path
  return_records:
    description:
      - Also return the per-request records (RV(records)); they can be large.
    type: bool
    default: false
notes:
  - "Metrics: request throughput is completed requests over the span from the level's first
    measured send to its last measured completion. TTFT is the time to the first chunk that
    carries content. A chunk that carries k tokens counts as k inter-token intervals of gap/k
    (the first chunk excluded); k comes from the per-chunk usage when the server sends it, else
    the final token count is spread over the chunks. TPOT is (e2e - TTFT) / (output tokens - 1).
    Percentiles use linear interpolation between closest ranks (Hyndman and Fan type 7, numpy's
    default)."
  - Only the first choice is read (C(n=1)).
  - Workers of a concurrency level start 1 ms apart (at most 0.1 s in all), not all at once.
  - Runs on the control node (or wherever the task is delegated); that host needs aiohttp and,
    for the plots, matplotlib.
requirements:
  - aiohttp
  - matplotlib (optional, for the plots)
seealso:
  - name: vLLM OpenAI-compatible server
    description: The completions and chat APIs, streaming and usage options.
    link: https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html
"""

EXAMPLES = r"""
- name: Concurrency sweep through the inference gateway, with SLO gates and reports
  llmd.gke.bench_run:
    url: "{{ gateway_url }}/llm-d-inference-scheduling/qwen2-3b-pattern1"
    model: Qwen/Qwen2.5-3B-Instruct
    levels: [1, 8, 32]
    requests: 200
    warmup_requests: 20
    max_tokens: 128
    prompts:
      input_tokens: 256
      input_tokens_spread: 32
    slo:
      - metric: error_rate
        max: 0.01
      - metric: e2e_latency_ms.p95
        max: 8000
      - metric: ttft_ms.p95
        max: 1000
    results_dir: "{{ playbook_dir }}/results/bench"

- name: Poisson arrivals at 5 and 10 requests/s for 60 s each, chat API, prompts from a file
  llmd.gke.bench_run:
    url: http://10.0.0.5/llm-d-inference-scheduling/qwen2-3b-pattern1
    model: Qwen/Qwen2.5-3B-Instruct
    api: chat
    load: rate
    arrival: poisson
    levels: [5, 10]
    duration: 60
    warmup_seconds: 10
    seed: 7
    prompts:
      source: file
      path: prompts.jsonl

- name: Shared-prefix prompts (8 groups, 200-word prefixes) for a prefix-cache test
  llmd.gke.bench_run:
    url: "{{ model_url }}"
    model: Qwen/Qwen2.5-3B-Instruct
    levels: [16]
    requests: 400
    prompts:
      count: 64
      input_tokens: 300
      prefix_groups: 8
      prefix_tokens: 200
    return_records: true
  register: prefix_run
"""

RETURN = r"""
plan:
  description: What the run does (check mode returns only this) - endpoint, model, api, stream,
    load, levels with their bounds, prompt set statistics, seed, header names (never values).
  returned: always
  type: dict
  sample:
    endpoint: http://10.0.0.5/llm-d-inference-scheduling/qwen2-3b-pattern1/v1/completions
    load: concurrency
    levels: [{"label": "concurrency=8", "level": 8, "requests": 200, "duration_s": null, "warmup_requests": 20}]
    prompts: {"source": "synthetic", "count": 100, "input_words": {"min": 224, "mean": 256.1, "max": 288}}
slo_gates:
  description: The SLO entries as checked (check mode).
  returned: check mode
  type: list
  elements: dict
run_id:
  description: The run's id, first part of every C(x-request-id).
  returned: when the load ran
  type: str
  sample: 3fa2c91b
percentile_method:
  description: How the percentiles are computed.
  returned: when the load ran
  type: str
levels:
  description:
    - One result per level that ran. Latency summaries (C(e2e_latency_ms), C(ttft_ms),
      C(tpot_ms), C(itl_ms)) hold C(count), C(mean), C(min), C(p50), C(p90), C(p95), C(p99),
      C(max) in milliseconds, or are null without data (TTFT, TPOT and ITL need O(stream)).
    - Counts - C(sent), C(completed), C(failed), C(errors) (by kind), C(error_rate),
      C(warmup_sent); throughputs over C(duration_s) - C(request_throughput),
      C(output_token_throughput), C(total_token_throughput); C(error_samples) (first answer or
      exception of each error kind, redacted); C(stopped_early) (null or the reason);
      C(max_schedule_lag_ms) and C(capped_arrivals) in rate mode.
  returned: when the load ran
  type: list
  elements: dict
  sample:
    - label: concurrency=20
      load: concurrency
      level: 20
      sent: 200
      completed: 200
      failed: 0
      errors: {}
      error_rate: 0.0
      duration_s: 8.02
      request_throughput: 24.94
      e2e_latency_ms: {"count": 200, "mean": 802.1, "min": 800.9, "p50": 801.8, "p90": 803.0, "p95": 803.4, "p99": 804.9, "max": 806.0}
      stopped_early: null
stopped_early:
  description: Null, or the level and reason of an error-rate stop.
  returned: when the load ran
  type: str
levels_not_run:
  description: Levels skipped after an error-rate stop.
  returned: when the load ran
  type: list
  elements: float
slo:
  description: One row per level and SLO entry - level, metric, bound, measured, passed, verdict.
  returned: when the load ran
  type: list
  elements: dict
  sample: [{"level": "concurrency=20", "metric": "e2e_latency_ms.p95", "bound": "<= 900", "measured": 803.4, "passed": true, "verdict": "pass"}]
slo_passed:
  description: Whether every SLO check passed (true without O(slo)).
  returned: when the load ran
  type: bool
files:
  description: Paths written under O(results_dir).
  returned: when the load ran
  type: list
  elements: str
records:
  description:
    - One dict per request - request_id, level_index, level, warmup, prefix_group, scheduled_s,
      start_s (seconds from the run's start), status, error (kind or null), e2e_ms, ttft_ms,
      tpot_ms, itl_mean_ms, input_tokens, output_tokens, endpoint
      (C(x-gateway-destination-endpoint)).
  returned: when O(return_records) is true and the load ran
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.llmd.gke.plugins.module_utils.bench_engine import (
    AIOHTTP_IMPORT_ERROR,
    HAS_AIOHTTP,
)
from ansible_collections.llmd.gke.plugins.module_utils.bench_report import bench

PROMPT_OPTIONS = dict(
    source=dict(type="str", choices=["synthetic", "file"], default="synthetic"),
    path=dict(type="path"),
    count=dict(type="int"),
    input_tokens=dict(type="int", default=128, no_log=False),
    input_tokens_spread=dict(type="int", default=0, no_log=False),
    prefix_groups=dict(type="int", default=0),
    prefix_tokens=dict(type="int", default=0, no_log=False),
)
SLO_OPTIONS = dict(
    metric=dict(type="str", required=True),
    max=dict(type="float"),
    min=dict(type="float"),
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            model=dict(type="str", required=True),
            api=dict(type="str", choices=["completions", "chat"], default="completions"),
            stream=dict(type="bool", default=True),
            max_tokens=dict(type="int", default=64, no_log=False),
            ignore_eos=dict(type="bool", default=True),
            extra_body=dict(type="dict"),
            api_key=dict(type="str", no_log=True),
            headers=dict(type="dict", no_log=True),
            load=dict(type="str", choices=["concurrency", "rate"], default="concurrency"),
            levels=dict(type="list", elements="float", default=[1]),
            arrival=dict(type="str", choices=["constant", "poisson"], default="constant"),
            max_concurrency=dict(type="int", default=256),
            duration=dict(type="float"),
            requests=dict(type="int"),
            warmup_requests=dict(type="int", default=0),
            warmup_seconds=dict(type="float", default=0),
            timeout=dict(type="float", default=60),
            max_error_rate=dict(type="float", default=0.5),
            error_stop_min_requests=dict(type="int", default=20),
            fail_on_error_stop=dict(type="bool", default=True),
            prompts=dict(type="dict", options=PROMPT_OPTIONS, apply_defaults=True),
            seed=dict(type="int", default=0),
            run_id=dict(type="str"),
            slo=dict(type="list", elements="dict", options=SLO_OPTIONS),
            fail_on_slo=dict(type="bool", default=True),
            results_dir=dict(type="path"),
            return_records=dict(type="bool", default=False),
        ),
        required_one_of=[("duration", "requests")],
        supports_check_mode=True,
    )
    if not HAS_AIOHTTP:
        module.fail_json(msg=missing_required_lib("aiohttp"), exception=AIOHTTP_IMPORT_ERROR)
    try:
        failure, result, warnings = bench(module.params, module.check_mode)
    except (ValueError, OSError) as exc:
        module.fail_json(msg=str(exc))
    for warning in warnings:
        module.warn(warning)
    if failure:
        module.fail_json(msg=failure, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
