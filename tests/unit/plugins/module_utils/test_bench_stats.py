"""bench_stats: type-7 percentiles, weighted ITL summaries, per-request metrics from chunk times,
level summaries (errors apart from latency), SLO gates and their table."""

from __future__ import annotations

import pytest

from ansible_collections.llmd.gke.plugins.module_utils import bench_stats as bs


# ------------------------------------------------------------------------------ percentiles
@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1, 2, 3, 4], 0.5, 2.5),
        ([1, 2, 3, 4], 0.9, 3.7),  # numpy.percentile([1,2,3,4], 90) == 3.7
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.95, 9.55),
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.99, 9.91),
        ([15, 20, 35, 40, 50], 0.4, 29.0),  # h = 1.6 -> 20 + 0.6 * 15
        ([7], 0.99, 7),
        ([0, 100], 0.25, 25.0),
    ],
)
def test_percentile_type7_known_values(values, q, expected):
    assert bs.percentile(sorted(values), q) == pytest.approx(expected)


def test_summarize_fields_and_empty():
    summary = bs.summarize([4.0, 1.0, 3.0, 2.0])
    assert summary == {
        "count": 4,
        "mean": 2.5,
        "min": 1.0,
        "p50": 2.5,
        "p90": 3.7,
        "p95": 3.85,
        "p99": 3.97,
        "max": 4.0,
    }
    assert bs.summarize([]) is None
    assert bs.summarize_weighted([], []) is None


@pytest.mark.parametrize(
    ("values", "weights"),
    [
        ([10.0, 2.0, 5.0], [1, 4, 2]),
        ([1.0, 2.0, 3.0, 4.0], [1, 1, 1, 1]),
        ([3.3, 0.5, 9.0, 0.5, 7.25], [3, 2, 1, 5, 8]),
    ],
)
def test_weighted_summary_equals_the_expanded_list(values, weights):
    expanded = [v for v, w in zip(values, weights, strict=True) for _i in range(w)]
    assert bs.summarize_weighted(values, weights) == bs.summarize(expanded)


# ------------------------------------------------------------------------------ per request
def test_chunk_tokens_from_continuous_usage_deltas():
    assert bs.chunk_tokens([1, 4, 8, 9], 9) == [1, 3, 4, 1]


def test_chunk_tokens_without_continuous_usage_spreads_the_total():
    assert bs.chunk_tokens([None] * 4, 8) == [2, 2, 2, 2]
    assert bs.chunk_tokens([None] * 3, 7) == [2, 2, 3]
    assert sum(bs.chunk_tokens([None] * 7, 64)) == 64
    # no usage at all: one token per chunk
    assert bs.chunk_tokens([None] * 3, None) == [1, 1, 1]


def test_chunk_tokens_broken_series_falls_back_to_even_split():
    assert bs.chunk_tokens([2, 2, 6], 6) == [2, 2, 2]


def test_request_metrics_multi_token_chunks():
    # start 0; chunks at 100 ms (2 tokens), 140 ms (4 tokens), 150 ms (2 tokens); end 160 ms
    ttft, tpot, values, weights, out = bs.request_metrics(
        0.0, 0.160, [0.100, 0.140, 0.150], [2, 6, 8], 8
    )
    assert ttft == pytest.approx(100.0)
    assert out == 8
    # gaps of 40 ms over 4 tokens and 10 ms over 2 tokens, the first chunk excluded
    assert values == pytest.approx([10.0, 5.0]) and weights == [4, 2]
    assert tpot == pytest.approx((160.0 - 100.0) / 7)
    itl = bs.summarize_weighted(values, weights)
    assert itl["count"] == 6 and itl["mean"] == pytest.approx((40 + 10) / 6, abs=1e-3)


def test_request_metrics_without_usage_per_chunk_uses_final_count():
    ttft, tpot, values, weights, out = bs.request_metrics(
        0.0, 0.5, [0.1, 0.2, 0.3, 0.4], [None] * 4, 8
    )
    assert ttft == pytest.approx(100.0) and out == 8
    assert weights == [2, 2, 2] and values == pytest.approx([50.0, 50.0, 50.0])
    assert tpot == pytest.approx(400.0 / 7)


def test_blocks_need_the_counts_of_their_first_and_last_chunk_only():
    # two blocks (at 100 and 300 ms) of 3 chunks with continuous usage 1..6
    full = bs.request_metrics(0.0, 0.4, [0.1, 0.3], [1, 2, 3, 4, 5, 6], 6, counts=[3, 3])
    assert full[2] == pytest.approx([0.0, 200.0, 0.0]) and full[3] == [2, 1, 2]
    # the chunks inside a block unread (None, as the SSE reader leaves a run's middle lines):
    # the same metrics
    inner = bs.request_metrics(0.0, 0.4, [0.1, 0.3], [1, None, 3, 4, None, 6], 6, counts=[3, 3])
    assert inner == full
    # a block's first or last chunk unread, or counts that do not increase: the total is spread
    spread = bs.request_metrics(0.0, 0.4, [0.1, 0.3], [None] * 6, 6, counts=[3, 3])
    for cums in ([1, None, None, 4, None, 6], [1, 2, 3, 3, 5, 6]):
        assert bs.request_metrics(0.0, 0.4, [0.1, 0.3], cums, 6, counts=[3, 3]) == spread


def test_request_metrics_non_streamed_has_no_ttft():
    assert bs.request_metrics(0.0, 0.2, None, None, 16) == (None, None, [], [], 16)


def _record(e2e, error=None, *, warmup=False, out=10, inp=5, ttft=None):
    return {
        "warmup": warmup,
        "error": error,
        "e2e_ms": e2e,
        "ttft_ms": ttft,
        "tpot_ms": None,
        "output_tokens": None if error else out,
        "input_tokens": None if error else inp,
    }


def test_level_summary_keeps_errors_out_of_latency():
    records = [
        _record(100.0),
        _record(200.0),
        _record(5.0, error="http_503"),
        _record(60000.0, error="timeout"),
        _record(1.0, error="http_503"),
        _record(999.0, warmup=True),
    ]
    level = bs.level_summary({"label": "x"}, records, 2.0, [], [])
    assert level["sent"] == 5 and level["completed"] == 2 and level["failed"] == 3
    assert level["errors"] == {"http_503": 2, "timeout": 1}
    assert level["error_rate"] == pytest.approx(0.6)
    assert level["e2e_latency_ms"]["count"] == 2
    assert level["e2e_latency_ms"]["max"] == 200.0 and level["e2e_latency_ms"]["min"] == 100.0
    assert level["request_throughput"] == pytest.approx(1.0)
    assert level["output_token_throughput"] == pytest.approx(10.0)
    assert level["total_token_throughput"] == pytest.approx(15.0)
    assert level["ttft_ms"] is None and level["itl_ms"] is None


# ------------------------------------------------------------------------------ SLO
LEVELS = [
    {
        "label": "concurrency=1",
        "request_throughput": 10.0,
        "error_rate": 0.0,
        "e2e_latency_ms": {"p95": 120.0},
        "ttft_ms": None,
    },
    {
        "label": "concurrency=8",
        "request_throughput": 40.0,
        "error_rate": 0.05,
        "e2e_latency_ms": {"p95": 450.0},
        "ttft_ms": None,
    },
]


def test_slo_all_pass():
    slo = bs.validate_slo(
        [{"metric": "e2e_latency_ms.p95", "max": 500}, {"metric": "request_throughput", "min": 5}]
    )
    rows = bs.check_slo(LEVELS, slo)
    assert len(rows) == 4 and all(r["passed"] for r in rows)


def test_slo_misses_and_table():
    slo = bs.validate_slo(
        [
            {"metric": "e2e_latency_ms.p95", "max": 300},
            {"metric": "error_rate", "max": 0.01, "min": None},
            {"metric": "ttft_ms.p50", "max": 100},
        ]
    )
    rows = bs.check_slo(LEVELS, slo)
    verdicts = {(r["level"], r["metric"]): r["verdict"] for r in rows}
    assert verdicts[("concurrency=1", "e2e_latency_ms.p95")] == "pass"
    assert verdicts[("concurrency=8", "e2e_latency_ms.p95")] == "MISS"
    assert verdicts[("concurrency=8", "error_rate")] == "MISS"
    assert verdicts[("concurrency=1", "ttft_ms.p50")] == "no data"
    table = bs.slo_table([r for r in rows if not r["passed"]])
    lines = table.splitlines()
    assert lines[0].split() == ["level", "metric", "bound", "measured", "verdict"]
    assert set(lines[1]) <= {"-", " "}
    assert any("concurrency=8" in line and "<= 300" in line and "450" in line for line in lines)
    assert len(lines) == 2 + 4


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"metric": "latency", "max": 1}, "unknown metric"),
        ({"metric": "e2e_latency_ms.p42", "max": 1}, "unknown metric"),
        ({"metric": "error_rate"}, "one of max or min"),
        ({"metric": "error_rate", "max": 1, "min": 0}, "one of max or min"),
        ({"metric": "error_rate", "max": "x"}, "must be a number"),
        ("error_rate", "must be a dict"),
    ],
)
def test_slo_validation_errors(entry, message):
    with pytest.raises(ValueError, match=message):
        bs.validate_slo([entry])


def test_error_hints_name_the_likely_cause():
    hints = bs.error_hints({"http_404": 3, "connection": 5, "http_502": 1})
    assert hints[0].startswith("connection")
    assert any("model name" in h for h in hints)
    assert any(h.startswith("502") for h in hints)
