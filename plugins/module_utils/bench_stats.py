# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Statistics of bench_run: percentiles, per-request metrics, per-level summaries, SLO gates.

Everything here runs after a load level has finished, on the raw per-request tuples the engine
collected (``bench_engine.Raw``), so the hot path of the load generator does no statistics.

- ``percentile`` / ``summarize``: linear interpolation between closest ranks (Hyndman and Fan's
  type 7, numpy's default), pure Python. ``summarize_weighted`` gives the same numbers as
  ``summarize`` on the list where each value is repeated ``weight`` times, without building it
  (inter-token latencies: a chunk that carries k tokens counts as k intervals).
- ``request_metrics``: TTFT, TPOT, ITL and token counts of one request from its chunk times.
- ``level_summary``: the result of one level (counts, errors by kind, span, throughputs, latency
  summaries).
- ``validate_slo`` / ``check_slo`` / ``slo_table``: SLO gates over every level and the text table.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from itertools import accumulate
from operator import lt

PERCENTILE_METHOD = (
    "linear interpolation between closest ranks (Hyndman-Fan type 7, numpy's default 'linear'); "
    "inter-token latencies weighted by the tokens each chunk carries"
)
QUANTILES = (("p50", 0.50), ("p90", 0.90), ("p95", 0.95), ("p99", 0.99))
SUMMARY_KEYS = ("count", "mean", "min", "p50", "p90", "p95", "p99", "max")
LATENCY_METRICS = ("e2e_latency_ms", "ttft_ms", "tpot_ms", "itl_ms")
SCALAR_METRICS = (
    "request_throughput",
    "output_token_throughput",
    "total_token_throughput",
    "error_rate",
)
SLO_METRICS = SCALAR_METRICS + tuple(
    f"{m}.{s}" for m in LATENCY_METRICS for s in ("mean", "min", "p50", "p90", "p95", "p99", "max")
)
ERROR_KINDS = ("http_<status>", "timeout", "connection", "invalid_response")


def percentile(ordered: list[float], q: float) -> float:
    """Type-7 percentile of an already sorted, non-empty list; ``q`` in 0..1."""
    h = (len(ordered) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (h - lo) * (ordered[hi] - ordered[lo])


def _round(value: float) -> float:
    return round(value, 3)


def summarize(values: list[float]) -> dict | None:
    """count, mean, min, p50, p90, p95, p99, max of ``values``; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    out = {"count": len(ordered), "mean": _round(math.fsum(ordered) / len(ordered))}
    out["min"] = _round(ordered[0])
    for name, q in QUANTILES:
        out[name] = _round(percentile(ordered, q))
    out["max"] = _round(ordered[-1])
    return out


def summarize_weighted(values: list[float], weights: list[int]) -> dict | None:
    """``summarize`` of the multiset where ``values[i]`` occurs ``weights[i]`` times (ints >= 1)."""
    pairs = sorted((v, w) for v, w in zip(values, weights, strict=True) if w > 0)
    if not pairs:
        return None
    ordered = [v for v, _w in pairs]
    cumulative = list(accumulate(w for _v, w in pairs))  # ranks 0..cum[i]-1 hold ordered[<=i]
    total = cumulative[-1]

    def at(rank: int) -> float:
        return ordered[bisect_right(cumulative, rank)]

    out = {
        "count": total,
        "mean": _round(math.fsum(v * w for v, w in pairs) / total),
        "min": _round(ordered[0]),
    }
    for name, q in QUANTILES:
        h = (total - 1) * q
        lo = math.floor(h)
        low = at(lo)
        out[name] = _round(low + (h - lo) * (at(min(lo + 1, total - 1)) - low))
    out["max"] = _round(ordered[-1])
    return out


def chunk_tokens(cumulative: list, completion_tokens: int | None) -> list[int]:
    """Tokens carried by each content chunk of a stream.

    ``cumulative`` holds, per content chunk, the ``usage.completion_tokens`` the chunk carried
    (vLLM's ``continuous_usage_stats``) or None. With a complete, increasing series the deltas are
    used. Otherwise the total (``completion_tokens`` of the final usage, else one token per chunk)
    is spread evenly over the chunks in whole tokens.
    """
    n = len(cumulative)
    if not n:
        return []
    if None not in cumulative:
        tokens, previous = [], 0
        for value in cumulative:
            tokens.append(value - previous)
            previous = value
        if min(tokens) >= 1:
            return tokens
    total = completion_tokens if completion_tokens and completion_tokens >= n else n
    return [(i + 1) * total // n - i * total // n for i in range(n)]


def request_metrics(
    start: float,
    end: float,
    times: list[float] | None,
    cumulative,
    usage_out,
    *,
    counts: list[int] | None = None,
):
    """(ttft_ms, tpot_ms, itl_values_ms, itl_weights, output_tokens) of one successful request.

    ``times``: perf_counter of each content chunk (None for a non-streamed reply), or with
    ``counts`` of each block of chunks that arrived together (``counts[i]`` chunks at
    ``times[i]``). TTFT is the time to the first content chunk; TPOT is (e2e - TTFT) /
    (output_tokens - 1); each later chunk's gap counts as k intervals of gap/k when it carries k
    tokens. The chunks of a block after its first have a gap of 0: with ``counts`` they come back
    as one value 0.0 weighted by their tokens (the same multiset of intervals, in fewer entries).
    """
    if times is None:
        return None, None, [], [], usage_out
    if not times:
        return None, None, [], [], usage_out or 0
    if counts is None:
        prefix = list(accumulate(chunk_tokens(cumulative, usage_out), initial=0)).__getitem__
        counts = [1] * len(times)
    else:
        prefix = _token_prefix(cumulative, usage_out, counts)
    output = usage_out if usage_out is not None else prefix(len(cumulative))
    ttft = (times[0] - start) * 1000.0
    values, weights = [], []
    first = prefix(counts[0]) - prefix(1)  # the first block's chunks after the first one
    if first:
        values.append(0.0)
        weights.append(first)
    previous, pos = times[0], counts[0]
    for t, n in zip(times[1:], counts[1:], strict=True):
        k = prefix(pos + 1) - prefix(pos)
        values.append((t - previous) * 1000.0 / k)
        weights.append(k)
        if n > 1:
            values.append(0.0)
            weights.append(prefix(pos + n) - prefix(pos + 1))
        previous, pos = t, pos + n
    e2e = (end - start) * 1000.0
    tpot = (e2e - ttft) / (output - 1) if output and output > 1 else None
    return ttft, tpot, values, weights, output


def _token_prefix(cumulative: list, completion_tokens: int | None, counts: list[int]):
    """i -> tokens of the first i content chunks, for the i ``request_metrics`` asks: 0 and the
    ends of each block's first and last chunk. Exact from continuous usage when those chunks'
    counts are known, the first at least 1, and increase (the chunks inside a block arrived with
    its first chunk: their own counts change no interval, and the reader may leave them None);
    else the total spread evenly (``chunk_tokens``, no loop per chunk)."""
    n = len(cumulative)
    known = []  # the counts of each block's first and last chunk, in order
    start = 0
    for size in counts:
        known.append(cumulative[start])
        if size > 1:
            known.append(cumulative[start + size - 1])
        start += size
    if None not in known and known[0] >= 1 and all(map(lt, known, known[1:])):
        return [0, *cumulative].__getitem__
    total = completion_tokens if completion_tokens and completion_tokens >= n else n
    return lambda i: i * total // n


def level_summary(header: dict, records: list[dict], span: float, itl_values, itl_weights) -> dict:
    """The result of one level from its records.

    ``records``: the per-request dicts (``bench_engine`` builds them); warm-up records are left
    out, and a record with an ``error`` never enters the latency statistics. ``span``: seconds
    from the first measured send to the last measured completion.
    """
    measured = [r for r in records if not r["warmup"]]
    ok = [r for r in measured if r["error"] is None]
    errors: dict[str, int] = {}
    for r in measured:
        if r["error"] is not None:
            errors[r["error"]] = errors.get(r["error"], 0) + 1
    failed = len(measured) - len(ok)
    out_tokens = sum(r["output_tokens"] or 0 for r in ok)
    in_tokens = sum(r["input_tokens"] or 0 for r in ok)
    level = dict(header)
    level.update(
        sent=len(measured),
        completed=len(ok),
        failed=failed,
        errors=dict(sorted(errors.items())),
        error_rate=round(failed / len(measured), 6) if measured else 0.0,
        duration_s=round(span, 6),
        request_throughput=round(len(ok) / span, 4) if span > 0 else 0.0,
        output_token_throughput=round(out_tokens / span, 4) if span > 0 else 0.0,
        total_token_throughput=round((out_tokens + in_tokens) / span, 4) if span > 0 else 0.0,
        output_tokens=out_tokens,
        input_tokens=in_tokens,
        e2e_latency_ms=summarize([r["e2e_ms"] for r in ok]),
        ttft_ms=summarize([r["ttft_ms"] for r in ok if r["ttft_ms"] is not None]),
        tpot_ms=summarize([r["tpot_ms"] for r in ok if r["tpot_ms"] is not None]),
        itl_ms=summarize_weighted(itl_values, itl_weights),
    )
    return level


# ------------------------------------------------------------------------------ SLO gates
def validate_slo(slo: list | None) -> list[dict]:
    """Normalised SLO entries ({metric, max} or {metric, min}); ValueError naming the problem."""
    out = []
    for index, entry in enumerate(slo or []):
        if not isinstance(entry, dict):
            raise ValueError(f"slo[{index}] must be a dict with metric and max or min")
        metric = entry.get("metric")
        if metric not in SLO_METRICS:
            raise ValueError(
                f"slo[{index}]: unknown metric {metric!r}; use one of "
                + ", ".join(SCALAR_METRICS)
                + " or <"
                + "|".join(LATENCY_METRICS)
                + ">.<mean|min|p50|p90|p95|p99|max>"
            )
        bounds = {k: entry[k] for k in ("max", "min") if entry.get(k) is not None}
        unknown = set(entry) - {"metric", "max", "min"}
        if len(bounds) != 1 or unknown:
            raise ValueError(
                f"slo[{index}] ({metric}): give exactly one of max or min, nothing else"
            )
        ((kind, bound),) = bounds.items()
        try:
            bound = float(bound)
        except (TypeError, ValueError):
            raise ValueError(f"slo[{index}] ({metric}): {kind} must be a number") from None
        out.append({"metric": metric, kind: bound})
    return out


def measured_value(level: dict, metric: str):
    """The level's value of an SLO metric, or None when it has no data."""
    if "." in metric:
        name, stat = metric.split(".", 1)
        summary = level.get(name)
        return None if summary is None else summary.get(stat)
    return level.get(metric)


def check_slo(levels: list[dict], slo: list[dict]) -> list[dict]:
    """One row per (level, SLO): level, metric, bound ("<= x" or ">= x"), measured, passed."""
    rows = []
    for level in levels:
        for entry in slo:
            metric = entry["metric"]
            value = measured_value(level, metric)
            if "max" in entry:
                bound, passed = f"<= {entry['max']:g}", value is not None and value <= entry["max"]
            else:
                bound, passed = f">= {entry['min']:g}", value is not None and value >= entry["min"]
            rows.append(
                {
                    "level": level["label"],
                    "metric": metric,
                    "bound": bound,
                    "measured": value,
                    "passed": passed,
                    "verdict": "pass" if passed else ("no data" if value is None else "MISS"),
                }
            )
    return rows


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.0f}"
    return str(value)


def slo_table(rows: list[dict]) -> str:
    """A fixed-width text table: level, metric, bound, measured, verdict."""
    head = ("level", "metric", "bound", "measured", "verdict")
    body = [(r["level"], r["metric"], r["bound"], _fmt(r["measured"]), r["verdict"]) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=False)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in (head, *body)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


HINTS = {
    "http_404": "404: the URL's path prefix has no route (gateway) or the model name is not served"
    " (vLLM answers 404 NotFoundError for an unknown model; GET <url>/v1/models lists it)",
    "http_503": "503: no ready endpoint behind the route (model pods not Ready, or the endpoint"
    " picker found none)",
    "http_429": "429: the server or gateway is rate limiting; lower the load",
    "http_400": "400: the server rejected the request body (max_tokens above the model's context,"
    " or an option such as ignore_eos it does not know: set ignore_eos false)",
    "http_401": "401: authentication required or refused; set api_key or headers",
    "http_403": "403: refused; check api_key, headers and network policies",
    "timeout": "timeout: no complete answer within the per-request timeout; raise timeout or lower"
    " the load",
    "connection": "connection: nothing answers at the URL (wrong host or port, gateway down, or a"
    " NetworkPolicy drops the traffic)",
    "invalid_response": "invalid_response: a 2xx answer that is not an OpenAI completion (another"
    " service at this URL, or a stream without data: [DONE])",
}


def error_hints(errors: dict) -> list[str]:
    """A hint per error kind seen (most frequent first)."""
    out = []
    for kind, _n in sorted(errors.items(), key=lambda kv: -kv[1]):
        hint = HINTS.get(kind)
        if hint is None and kind.startswith("http_5"):
            hint = f"{kind[5:]}: the server failed; see its logs"
        if hint and hint not in out:
            out.append(hint)
    return out
