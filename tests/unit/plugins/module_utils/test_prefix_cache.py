"""prefix_cache: the EPP's real `Request handled` lines joined to requests, endpoints mapped to
pods; hit ratio, affinity, latency; verdicts.

The lines are built as gateway-api-inference-extension v1.2.1 writes them with
`--zap-encoder json` (controller-runtime zap, production encoder keys, RFC 3339 time, caller; a
V(3) line has level `Level(-3)`; the logger's values come before the call's, and zap writes a key
twice when both set it): requestcontrol/director.go prepareRequest, handlers/server.go Process.
"""

from __future__ import annotations

import json

from ansible_collections.llmd.gke.plugins.module_utils.prefix_cache import (
    analyse,
    attribute,
    epp_verbosity,
    parse_decisions,
    served_id,
    split_endpoint,
    verdict,
)

MODEL = "Qwen/Qwen2.5-3B-Instruct"


def zap(msg: str, caller: str, fields: list[tuple]) -> str:
    head = [("level", "Level(-3)"), ("ts", "2026-12-06T12:00:00Z"), ("caller", caller)]
    pairs = head + [("msg", msg)] + fields
    return "{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in pairs) + "}"


def context(request_id: str) -> list[tuple]:
    return [
        ("x-request-id", request_id),
        ("objectiveKey", ""),
        ("incomingModelName", MODEL),
        ("targetModelName", MODEL),
        ("priority", 0),
    ]


def handled(request_id: str, *endpoints: str) -> str:
    """The director's V(3) line: endpoint = the chosen endpoints joined by commas."""
    return zap(
        "Request handled",
        "requestcontrol/director.go:266",
        context(request_id)
        + [
            ("objectiveKey", ""),
            ("incomingModelName", MODEL),
            ("targetModel", MODEL),
            ("endpoint", ",".join(endpoints)),
        ],
    )


def scorer(request_id: str) -> str:
    return zap(
        "Running scorer plugin",
        "framework/scheduler_profile.go:160",
        context(request_id) + [("plugin", "prefix-cache-scorer/prefix-cache-scorer")],
    )


def generated(request_id: str) -> str:
    usage = {"prompt_tokens": 272, "completion_tokens": 8, "total_tokens": 280}
    return zap(
        "Response generated",
        "handlers/response.go:61",
        [("x-request-id", request_id), ("usage", usage)],
    )


def record(request_id, group, start, e2e, *, ttft=None, error=None, warmup=False, answer=None):
    return {
        "request_id": request_id,
        "response_id": answer,
        "prefix_group": group,
        "start_s": start,
        "e2e_ms": e2e,
        "ttft_ms": ttft,
        "error": error,
        "warmup": warmup,
    }


IPS = {"10.8.0.11": "svc-kserve-a", "10.8.0.12": "svc-kserve-b", "10.8.0.13": "svc-kserve-c"}


def test_parse_reads_request_handled_lines_only():
    lines = [
        "plain text line, no JSON",
        "{not json",
        scorer("gw-1"),  # same request, another message
        handled("gw-1", "10.8.0.11:8000"),
        generated("gw-1"),
        handled("other-client", "10.8.0.12:8000"),  # another client's request
        handled("gw-2", "10.8.0.12:8000", "10.8.0.11:8000"),  # two endpoints in one line
        handled("gw-3", "[fd00:10:8::13]:8000"),  # IPv6, as net.JoinHostPort writes it
        zap("Request handled", "requestcontrol/director.go:266", context("gw-4")),  # no endpoint
        # the log shipper's prefix before the JSON object is tolerated
        "2026-12-06T12:00:01.000000000Z stderr F " + handled("gw-5", "10.8.0.13:8000"),
    ]
    assert parse_decisions(lines) == {
        "gw-1": ["10.8.0.11:8000"],
        "other-client": ["10.8.0.12:8000"],
        "gw-2": ["10.8.0.12:8000", "10.8.0.11:8000"],
        "gw-3": ["[fd00:10:8::13]:8000"],
        "gw-5": ["10.8.0.13:8000"],
    }
    # zap writes objectiveKey and incomingModelName twice; the line still parses
    assert handled("x", "10.8.0.11:8000").count('"incomingModelName"') == 2


def test_split_endpoint_follows_join_host_port():
    assert split_endpoint("10.8.0.11:8000") == ("10.8.0.11", "8000")
    assert split_endpoint("[fd00:10:8::13]:8000") == ("fd00:10:8::13", "8000")
    assert split_endpoint("10.8.0.11") == ("10.8.0.11", "")


def test_the_answer_id_is_the_id_the_gateway_forwarded():
    # Istio's gateway replaces the client's x-request-id; vLLM answers cmpl-<x-request-id>.
    assert served_id(record("client-1", 0, 0, 1, answer="cmpl-7f3c-aa")) == "7f3c-aa"
    assert served_id(record("client-1", 0, 0, 1, answer="chatcmpl-7f3c-aa")) == "7f3c-aa"
    assert served_id(record("client-1", 0, 0, 1)) == "client-1"  # no answer id
    assert served_id(record("client-1", 0, 0, 1, answer="cmpl-")) == "client-1"
    assert served_id(record("client-1", 0, 0, 1, answer="resp-9")) == "client-1"


def test_attribution_by_answer_id_first_endpoint_and_pod_ip():
    records = [
        record("c-0", 0, 0.0, 100, answer="cmpl-gw-a"),
        record("c-1", 0, 0.1, 90, answer="cmpl-gw-b"),
        record("c-2", 1, 0.2, 95, answer="cmpl-gw-c"),
        record("c-3", 1, 0.3, 95),  # no answer id: found by the client's id
        record("c-4", 1, 0.4, 95, answer="cmpl-gw-e"),  # its line is missing
    ]
    decisions = parse_decisions(
        [
            handled("gw-a", "10.8.0.11:8000"),
            handled("gw-b", "10.8.0.11:8000", "10.8.0.12:8000"),  # served by the first
            handled("gw-c", "10.8.0.99:8000"),  # no pod has this IP
            handled("c-3", "10.8.0.12:8000"),
            handled("c-0", "10.8.0.13:8000"),  # the client's id reused by someone else
        ]
    )
    attributed, unknown = attribute(records, decisions, IPS)
    assert attributed == {
        "c-0": {"pod": "svc-kserve-a", "endpoint": "10.8.0.11:8000"},
        "c-1": {"pod": "svc-kserve-a", "endpoint": "10.8.0.11:8000"},
        "c-2": {"pod": "10.8.0.99:8000", "endpoint": "10.8.0.99:8000"},
        "c-3": {"pod": "svc-kserve-b", "endpoint": "10.8.0.12:8000"},
    }
    assert unknown == ["10.8.0.99:8000"]


def pattern3_log(groups: int, per_group: int) -> tuple[list[dict], list[str]]:
    """Three replicas: group g on pod g % 3, every request answered with a gateway id, the log
    interleaved with scorer lines, response lines and another client's requests."""
    records, lines = [], []
    ips = list(IPS)
    for seq in range(per_group):
        for group in range(groups):
            client, gateway = f"run-0-{group}-{seq}", f"uuid-{group}-{seq}"
            records.append(
                record(
                    client, group, seq + group / 10, 100 - 20 * (seq > 0), answer=f"cmpl-{gateway}"
                )
            )
            lines += [
                scorer(gateway),
                handled(gateway, f"{ips[group % 3]}:8000"),
                generated(gateway),
            ]
            lines.append(handled(f"stranger-{group}-{seq}", f"{ips[(group + 1) % 3]}:8000"))
    return records, lines


def test_pattern_3_groups_spread_and_each_kept_on_its_pod():
    records, lines = pattern3_log(groups=4, per_group=5)
    attributed, unknown = attribute(records, parse_decisions(lines), IPS)
    assert unknown == [] and len(attributed) == 20
    result = analyse(records, attributed)
    assert result["requests"] == 20 and result["decisions_found"] == 20
    assert (result["follow_ups"], result["hits"], result["hit_ratio"]) == (16, 16, 1.0)
    assert result["affinity"] == 1.0
    assert result["pods"] == {"svc-kserve-a": 10, "svc-kserve-b": 5, "svc-kserve-c": 5}
    assert [g["pods"] for g in result["groups"]] == [
        ["svc-kserve-a"],
        ["svc-kserve-b"],
        ["svc-kserve-c"],
        ["svc-kserve-a"],
    ]
    assert result["latency_ms"]["hit"]["count"] == 16 and result["latency_ms"]["hit"]["p50"] == 80
    assert result["latency_ms"]["miss"]["count"] == 4 and result["latency_ms"]["miss"]["p50"] == 100
    assert verdict(result, 0.8, True, verbosity=3, decision_lines=40) is None


def test_a_follow_up_on_another_pod_is_a_miss():
    records = [record(f"r{i}", 0, i * 0.1, 100) for i in range(4)]
    lines = [
        handled("r0", "10.8.0.11:8000"),
        handled("r1", "10.8.0.11:8000"),
        handled("r2", "10.8.0.12:8000"),
        handled("r3", "10.8.0.11:8000"),
    ]
    result = analyse(records, attribute(records, parse_decisions(lines), IPS)[0])
    assert result["hit_source"] == "same pod as the group's first request"
    assert (result["hits"], result["follow_ups"], result["hit_ratio"]) == (2, 3, 0.6667)
    assert result["groups"][0]["pods"] == ["svc-kserve-a", "svc-kserve-b"]
    problem = verdict(result, 0.8, True)
    assert problem.startswith("prefix-cache hit ratio 0.67 is below 0.80")
    assert "group 0: svc-kserve-a/svc-kserve-b" in problem


def test_one_replica_every_follow_up_hits():
    records = [record(f"r{i}", i % 2, i * 0.1, 100, answer=f"cmpl-g{i}") for i in range(6)]
    lines = [handled(f"g{i}", "10.8.0.11:8000") for i in range(6)]
    result = analyse(records, attribute(records, parse_decisions(lines), IPS)[0])
    assert (result["follow_ups"], result["hits"], result["pods"]) == (4, 4, {"svc-kserve-a": 6})


def test_warm_up_failed_and_undecided_requests_are_left_out():
    records = [
        record("r0", 0, 0.0, 100),
        record("w", 0, -1.0, 500, warmup=True),
        record("e", 0, 0.5, None, error="http_503"),
        record("r1", 0, 0.1, 90),
        record("r2", 0, 0.2, 90),  # no decision found
    ]
    lines = [handled(k, "10.8.0.11:8000") for k in ("r0", "w", "e", "r1")]
    result = analyse(records, attribute(records, parse_decisions(lines), IPS)[0])
    assert result["requests"] == 3 and result["decisions_found"] == 2
    assert (result["follow_ups"], result["hits"]) == (1, 1)


def test_epp_verbosity_from_args_as_go_flag_reads_them():
    base = ["--pool-name", "p", "--zap-encoder", "json", "--secure-serving"]
    assert epp_verbosity(base) == 2  # upstream's default (logging.DEFAULT)
    assert epp_verbosity(None) == 2
    assert epp_verbosity([*base, "--v", "3"]) == 3
    assert epp_verbosity([*base, "-v=4"]) == 4
    assert epp_verbosity(["--v=5", "-v", "1"]) == 1  # the last one wins
    assert epp_verbosity(["--v", "4", "--zap-log-level", "info"]) == 0  # zap-log-level wins
    assert epp_verbosity(["--v", "1", "--zap-log-level=3"]) == 3
    assert epp_verbosity(["--zap-log-level", "debug"]) == 1
    assert epp_verbosity(["--cert-path", "/v"]) == 2


def test_verdicts_name_what_is_missing_and_the_setting():
    records = [record("r0", 0, 0.0, 100), record("r1", 0, 0.1, 90)]
    none_found = analyse(records, {})
    assert none_found["decisions_found"] == 0 and none_found["hit_ratio"] is None
    quiet = verdict(none_found, 0.8, True, verbosity=2)
    assert "runs at log verbosity 2" in quiet and "model_epp_verbosity: 3" in quiet
    other_ids = verdict(none_found, 0.8, True, verbosity=3, decision_lines=7)
    assert "logged 7 'Request handled' lines, none with the request id" in other_ids
    unknown = verdict(none_found, 0.8, True, verbosity=None)
    assert "no 'Request handled' line" in unknown and "model_epp_verbosity: 3" in unknown
    assert verdict(none_found, 0.8, False, verbosity=2) is None
    nothing = analyse([record("r0", 0, 0.0, None, error="timeout")], {})
    assert nothing["requests"] == 0
    assert verdict(nothing, 0.8, False).startswith("no request succeeded")
