# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prefix-cache routing check: requests in groups that share a long prefix, then the endpoint
picker's (EPP's) routing decisions read from its log and joined to the requests by x-request-id.

A request is a *follow-up* when an earlier request of its group was sent before it. The EPP
routes a follow-up to the pod that holds the group's prefix in its KV cache: the decision says
so (`prefixHit`), and the follow-up lands on the pod of the group's first request (affinity).
The first request of a group is a miss by construction. The check reports the hit ratio among
follow-ups, the pods chosen per group and the latency of hits and misses.

EPP decision lines: JSON objects (after an optional log timestamp) with a request id under
`x-request-id` (or `requestId`, `request_id`) and the target pod under `targetPod` (or `pod`,
`endpoint`, `targetEndpoint`); `prefixHit` when the scheduler logs it. The llm-d EPP logs its
decisions at debug verbosity (`-v=4` or more); with another format the check finds no decision
and says so.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict

from ansible_collections.llmd.gke.plugins.module_utils.bench_stats import summarize

ID_KEYS = ("x-request-id", "requestId", "request_id", "x_request_id")
POD_KEYS = ("targetPod", "pod", "endpoint", "targetEndpoint")


def parse_decisions(lines, wanted: set[str] | None = None) -> dict[str, dict]:
    """{request id: {"pod", "hit"}} from EPP log lines (the last decision per id wins)."""
    found: dict[str, dict] = {}
    for line in lines:
        start = line.find("{")
        if start < 0:
            continue
        try:
            entry = json.loads(line[start:])
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        ident = next((entry[k] for k in ID_KEYS if entry.get(k)), None)
        pod = next((entry[k] for k in POD_KEYS if entry.get(k)), None)
        if not ident or not pod or (wanted is not None and ident not in wanted):
            continue
        hit = entry.get("prefixHit")
        found[str(ident)] = {
            "pod": str(pod).rsplit("/", 1)[-1],
            "hit": hit if isinstance(hit, bool) else None,
        }
    return found


def analyse(records: list[dict], decisions: dict[str, dict]) -> dict:
    """The check's result from the successful requests and the decisions found for them."""
    by_group: dict = defaultdict(list)
    for record in records:
        if record.get("warmup") or record.get("error"):
            continue
        by_group[record.get("prefix_group")].append(record)
    groups, hit_latency, miss_latency, ttft_hit, ttft_miss = [], [], [], [], []
    follow_ups = hits = same_pod = decided = 0
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
            if index == 0:
                hit = False
            else:
                follow_ups += 1
                same = pod == first_pod
                same_pod += same
                hit = decision["hit"] if decision["hit"] is not None else same
            hits += hit
            entry["hits" if hit else "misses"] += 1
            (hit_latency if hit else miss_latency).append(record.get("e2e_ms"))
            if record.get("ttft_ms") is not None:
                (ttft_hit if hit else ttft_miss).append(record["ttft_ms"])
        groups.append(entry)
    reported = any(d.get("hit") is not None for d in decisions.values())
    return {
        "requests": sum(len(v) for v in by_group.values()),
        "decisions_found": decided,
        "follow_ups": follow_ups,
        "hits": hits,
        "hit_ratio": round(hits / follow_ups, 4) if follow_ups else None,
        "affinity": round(same_pod / follow_ups, 4) if follow_ups else None,
        "hit_source": "epp prefixHit" if reported else "same pod as the group's first request",
        "pods": dict(sorted(pods.items())),
        "groups": groups,
        "latency_ms": {
            "hit": summarize([x for x in hit_latency if x is not None]),
            "miss": summarize([x for x in miss_latency if x is not None]),
        },
        "ttft_ms": {"hit": summarize(ttft_hit), "miss": summarize(ttft_miss)},
    }


def verdict(result: dict, min_hit_ratio: float, require_decisions: bool) -> str | None:
    """Why the check fails, or None."""
    if result["requests"] == 0:
        return "no request succeeded, so there is no routing decision to check"
    if result["decisions_found"] == 0:
        if not require_decisions:
            return None
        return (
            "no routing decision for these requests was found in the endpoint picker's log. The "
            "llm-d EPP logs its decisions at debug verbosity: add -v=4 to its args (the "
            "scheduler's template), or set require_decisions=false to only send the requests"
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
