"""prefix_cache: EPP decision lines joined to requests; hit ratio, affinity, latency; verdicts."""

from __future__ import annotations

import json

from ansible_collections.llmd.gke.plugins.module_utils.prefix_cache import (
    analyse,
    parse_decisions,
    verdict,
)


def line(request_id, pod, hit=None, stamp="2026-11-28T00:00:00.000000000Z ", **extra):
    entry = {"msg": "request scheduled", "x-request-id": request_id, "targetPod": f"ns/{pod}"}
    if hit is not None:
        entry["prefixHit"] = hit
    return stamp + json.dumps({**entry, **extra})


def record(request_id, group, start, e2e, *, ttft=None, error=None, warmup=False):
    return {
        "request_id": request_id,
        "prefix_group": group,
        "start_s": start,
        "e2e_ms": e2e,
        "ttft_ms": ttft,
        "error": error,
        "warmup": warmup,
    }


def test_parse_keeps_decisions_of_the_wanted_requests_in_any_key_spelling():
    lines = [
        "plain text line, no JSON",
        line("a", "pod-1", True),
        "2026-11-28T00:00:01Z " + json.dumps({"requestId": "b", "pod": "pod-2"}),
        json.dumps({"request_id": "c", "endpoint": "10.0.0.3:8000"}),
        line("zzz", "pod-9", False),  # another client's request
        '{"x-request-id": "d"}',  # no target: not a decision
        "{not json",
    ]
    found = parse_decisions(lines, {"a", "b", "c", "d"})
    assert found == {
        "a": {"pod": "pod-1", "hit": True},
        "b": {"pod": "pod-2", "hit": None},
        "c": {"pod": "10.0.0.3:8000", "hit": None},
    }


def test_follow_ups_that_hit_on_one_pod_per_group():
    records = [
        record("g0-0", 0, 0.0, 120, ttft=50),
        record("g1-0", 1, 0.01, 125, ttft=52),
        record("g0-1", 0, 0.2, 80, ttft=20),
        record("g1-1", 1, 0.21, 82, ttft=21),
        record("g0-2", 0, 0.4, 78, ttft=19),
        record("w", 0, -1.0, 500, warmup=True),  # warm-up: left out
        record("e", 1, 0.5, None, error="http_503"),  # failed: left out
    ]
    decisions = parse_decisions(
        [
            line("g0-0", "pod-a", False),
            line("g1-0", "pod-b", False),
            line("g0-1", "pod-a", True),
            line("g1-1", "pod-b", True),
            line("g0-2", "pod-a", True),
        ]
    )
    result = analyse(records, decisions)
    assert result["requests"] == 5 and result["decisions_found"] == 5
    assert (result["follow_ups"], result["hits"], result["hit_ratio"]) == (3, 3, 1.0)
    assert result["affinity"] == 1.0 and result["hit_source"] == "epp prefixHit"
    assert result["pods"] == {"pod-a": 3, "pod-b": 2}
    assert result["groups"] == [
        {"group": 0, "requests": 3, "pods": ["pod-a"], "hits": 2, "misses": 1},
        {"group": 1, "requests": 2, "pods": ["pod-b"], "hits": 1, "misses": 1},
    ]
    assert result["latency_ms"]["hit"]["count"] == 3
    assert result["latency_ms"]["hit"]["p50"] == 80
    assert result["latency_ms"]["miss"]["mean"] == 122.5
    assert result["ttft_ms"]["hit"]["max"] == 21
    assert verdict(result, 0.8, True) is None


def test_without_prefix_hit_in_the_log_a_hit_is_the_pod_of_the_first_request():
    records = [record(f"r{i}", 0, i * 0.1, 100) for i in range(4)]
    decisions = parse_decisions(
        [line("r0", "pod-a"), line("r1", "pod-a"), line("r2", "pod-b"), line("r3", "pod-a")]
    )
    result = analyse(records, decisions)
    assert result["hit_source"] == "same pod as the group's first request"
    assert (result["hits"], result["follow_ups"], result["hit_ratio"]) == (2, 3, 0.6667)
    assert result["groups"][0]["pods"] == ["pod-a", "pod-b"]
    problem = verdict(result, 0.8, True)
    assert problem.startswith("prefix-cache hit ratio 0.67 is below 0.80")
    assert "group 0: pod-a/pod-b" in problem


def test_the_first_request_of_a_group_never_counts_as_a_hit():
    # The EPP may still hold the prefix from an earlier run and log a hit for the first request.
    records = [record("r0", 0, 0.0, 100), record("r1", 0, 0.1, 90)]
    result = analyse(records, parse_decisions([line("r0", "p", True), line("r1", "p", True)]))
    assert (result["follow_ups"], result["hits"]) == (1, 1)
    assert result["groups"][0] == {"group": 0, "requests": 2, "pods": ["p"], "hits": 1, "misses": 1}


def test_verdicts_without_decisions_or_requests():
    records = [record("r0", 0, 0.0, 100), record("r1", 0, 0.1, 90)]
    none_found = analyse(records, {})
    assert none_found["decisions_found"] == 0 and none_found["hit_ratio"] is None
    assert "-v=4" in verdict(none_found, 0.8, True)
    assert verdict(none_found, 0.8, False) is None
    nothing = analyse([record("r0", 0, 0.0, None, error="timeout")], {})
    assert nothing["requests"] == 0
    assert verdict(nothing, 0.8, False).startswith("no request succeeded")
