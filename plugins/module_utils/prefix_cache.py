# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prefix-cache routing check: requests in groups that share a long prefix, then the endpoint
picker's (EPP's) routing decisions read from its log, joined to the requests by request id and
mapped to pods through the pods' IPs.

A request is a *follow-up* when an earlier request of its group was sent before it. The EPP's
prefix-cache scorer routes a follow-up to the pod that holds the group's prefix in its KV cache,
the pod of the group's first request: such a follow-up is a hit. The first request of a group is
a miss by construction. The check reports the hit ratio among follow-ups, the pods chosen per
group and the latency of hits and misses.

What the evidence is, from the upstream sources (docs/conformance.md, EPP section):

- The EPP (gateway-api-inference-extension v1.2.x `requestcontrol/director.go`, which
  llm-d-inference-scheduler release-v0.4 builds on) logs one line per routed request,
  `Request handled`, at verbosity 3 (`logging.VERBOSE`), with `endpoint` = `IP:port` of the
  chosen endpoints joined by commas (the first one is where the gateway sends the request) and
  the request id under `x-request-id` (the logger context of `handlers/server.go`). With
  `--zap-encoder json` each line is one zap JSON object. At the default verbosity 2 there is no
  per-request line at all.
- The id the EPP logs is the `x-request-id` header as the gateway forwards it. Istio's gateway
  (use_remote_address, no preserve_external_request_id) replaces a client's id with its own, and
  vLLM builds the answer's `id` from that header (`cmpl-<x-request-id>`), so the answer's `id`
  is the join key; the client's own id is the fallback (a gateway that keeps it).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict

from ansible_collections.llmd.gke.plugins.module_utils.bench_stats import summarize

DECISION_MSG = "Request handled"
ID_KEY = "x-request-id"
ENDPOINT_KEY = "endpoint"
DECISION_VERBOSITY = 3  # logging.VERBOSE in gateway-api-inference-extension
DEFAULT_VERBOSITY = 2  # logging.DEFAULT: the EPP's -v default
ANSWER_ID_PREFIXES = ("chatcmpl-", "cmpl-")
_FLAG = re.compile(r"^--?(v|zap-log-level)(?:=(.*))?$")


def epp_verbosity(args) -> int:
    """The verbosity an EPP runs at, from its container args (the last -v wins, as Go's flag does).

    `--zap-log-level` overrides `-v` when given (runner.go initLogging): a number is the
    verbosity, `debug` is 1 and `info` 0 in zap's scale.
    """
    verbosity, zap_level = DEFAULT_VERBOSITY, None
    items = [str(a) for a in args or ()]
    for index, arg in enumerate(items):
        match = _FLAG.match(arg)
        if not match:
            continue
        value = match.group(2)
        if value is None:
            value = items[index + 1] if index + 1 < len(items) else ""
        if match.group(1) == "v":
            verbosity = int(value) if value.lstrip("-").isdigit() else verbosity
        elif value.isdigit():
            zap_level = int(value)
        else:
            zap_level = {"debug": 1, "info": 0}.get(value.lower(), -1)
    return zap_level if zap_level is not None else verbosity


def split_endpoint(endpoint: str) -> tuple[str, str]:
    """(host, port) of `IP:port` as Go's net.JoinHostPort writes it (`[v6]:port` for IPv6)."""
    endpoint = endpoint.strip()
    if endpoint.startswith("["):
        host, _sep, rest = endpoint[1:].partition("]")
        return host, rest.lstrip(":")
    host, _sep, port = endpoint.rpartition(":")
    return (host, port) if host else (endpoint, "")


def parse_decisions(lines) -> dict[str, list[str]]:
    """{request id: [endpoint, ...]} from the EPP's `Request handled` lines (last one per id).

    Other lines (other messages, text lines, lines without an endpoint) are skipped.
    """
    found: dict[str, list[str]] = {}
    for line in lines:
        start = line.find("{")
        if start < 0 or DECISION_MSG not in line:
            continue
        try:
            entry = json.loads(line[start:])
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("msg") != DECISION_MSG:
            continue
        ident, endpoint = entry.get(ID_KEY), entry.get(ENDPOINT_KEY)
        if not ident or not isinstance(endpoint, str) or not endpoint:
            continue
        found[str(ident)] = [e.strip() for e in endpoint.split(",") if e.strip()]
    return found


def served_id(record: dict) -> str:
    """The id the EPP logged for a request: from the answer's `id`, else the client's id."""
    answer = record.get("response_id")
    if isinstance(answer, str):
        for prefix in ANSWER_ID_PREFIXES:
            if answer.startswith(prefix) and len(answer) > len(prefix):
                return answer[len(prefix) :]
    return record["request_id"]


def attribute(
    records: list[dict], decisions: dict[str, list[str]], pod_ips: dict[str, str]
) -> tuple[dict[str, dict], list[str]]:
    """{client request id: {"pod", "endpoint"}} and the endpoints no pod IP explains.

    The gateway sends a request to the first endpoint of its decision; its pod is the pod whose
    `status.podIP` is that endpoint's host.
    """
    attributed: dict[str, dict] = {}
    unknown: list[str] = []
    for record in records:
        endpoints = decisions.get(served_id(record))
        if not endpoints:
            continue
        host, _port = split_endpoint(endpoints[0])
        pod = pod_ips.get(host)
        if pod is None:
            if endpoints[0] not in unknown:
                unknown.append(endpoints[0])
            pod = endpoints[0]
        attributed[record["request_id"]] = {"pod": pod, "endpoint": endpoints[0]}
    return attributed, unknown


def analyse(records: list[dict], decisions: dict[str, dict]) -> dict:
    """The check's result from the successful requests and their attributed decisions."""
    by_group: dict = defaultdict(list)
    for record in records:
        if record.get("warmup") or record.get("error"):
            continue
        by_group[record.get("prefix_group")].append(record)
    groups, hit_latency, miss_latency, ttft_hit, ttft_miss = [], [], [], [], []
    follow_ups = hits = decided = 0
    pods: Counter = Counter()
    for group in sorted(by_group, key=lambda g: (g is None, g)):
        members = sorted(by_group[group], key=lambda r: r.get("start_s") or 0.0)
        first_pod = (decisions.get(members[0]["request_id"]) or {}).get("pod")
        entry = {"group": group, "requests": len(members), "pods": [], "hits": 0, "misses": 0}
        for index, record in enumerate(members):
            decision = decisions.get(record["request_id"])
            if decision is None:
                continue
            decided += 1
            pod = decision["pod"]
            pods[pod] += 1
            if pod not in entry["pods"]:
                entry["pods"].append(pod)
            hit = False
            if index > 0:
                follow_ups += 1
                hit = first_pod is not None and pod == first_pod
            hits += hit
            entry["hits" if hit else "misses"] += 1
            (hit_latency if hit else miss_latency).append(record.get("e2e_ms"))
            if record.get("ttft_ms") is not None:
                (ttft_hit if hit else ttft_miss).append(record["ttft_ms"])
        groups.append(entry)
    ratio = round(hits / follow_ups, 4) if follow_ups else None
    return {
        "requests": sum(len(v) for v in by_group.values()),
        "decisions_found": decided,
        "follow_ups": follow_ups,
        "hits": hits,
        "hit_ratio": ratio,
        "affinity": ratio,
        "hit_source": "same pod as the group's first request",
        "pods": dict(sorted(pods.items())),
        "groups": groups,
        "latency_ms": {
            "hit": summarize([x for x in hit_latency if x is not None]),
            "miss": summarize([x for x in miss_latency if x is not None]),
        },
        "ttft_ms": {"hit": summarize(ttft_hit), "miss": summarize(ttft_miss)},
    }


def verdict(
    result: dict,
    min_hit_ratio: float,
    require_decisions: bool,
    verbosity: int | None = None,
    decision_lines: int = 0,
) -> str | None:
    """Why the check fails, or None.

    `verbosity` is the EPP's, read from its pod's args (None: not known); `decision_lines` counts
    the `Request handled` lines found for any request.
    """
    if result["requests"] == 0:
        return "no request succeeded, so there is no routing decision to check"
    if result["decisions_found"] == 0:
        if not require_decisions:
            return None
        if verbosity is not None and verbosity < DECISION_VERBOSITY:
            return (
                f"the endpoint picker runs at log verbosity {verbosity} and logs its routing "
                f"decisions ('{DECISION_MSG}', with the endpoint) only at {DECISION_VERBOSITY} or "
                f"more: set model_epp_verbosity: {DECISION_VERBOSITY} (the model phase then "
                "renders the scheduler's full arguments with --v), or "
                "verify_prefix_require_decisions: false to only send the requests"
            )
        if decision_lines:
            return (
                f"the endpoint picker logged {decision_lines} '{DECISION_MSG}' lines, none with "
                "the request id of these requests: the id the gateway forwards is neither the "
                "client's x-request-id nor the one in the answer's id. Check that the model "
                "server is vLLM (its answer id is cmpl-<x-request-id>), or set "
                "verify_prefix_require_decisions: false"
            )
        return (
            f"no '{DECISION_MSG}' line of the endpoint picker names these requests (the EPP logs "
            f"it at verbosity {DECISION_VERBOSITY} or more; its log may also have rotated): set "
            f"model_epp_verbosity: {DECISION_VERBOSITY}, or verify_prefix_require_decisions: "
            "false to only send the requests"
        )
    ratio = result["hit_ratio"]
    if ratio is not None and ratio < min_hit_ratio:
        spread = ", ".join(
            f"group {g['group']}: {'/'.join(g['pods'])}" for g in result["groups"] if g["pods"]
        )
        return (
            f"prefix-cache hit ratio {ratio:.2f} is below {min_hit_ratio:.2f}: requests that share "
            f"a prefix were not routed to the pod that holds it ({spread}). Check that the EPP "
            "runs the prefix-cache scorer (its EndpointPickerConfig) and that its block size fits "
            "the prefix length"
        )
    return None
