# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Outputs of bench_run under a results directory.

- ``summary.json``: the plan, the per-level results, the SLO rows and the percentile method;
- ``requests.csv``: one row per request (``bench_engine.RECORD_FIELDS``; warm-up rows flagged);
- ``report.md``: tables per level, the SLO table and notes on the method;
- ``latency_distribution.png``: empirical CDF of end-to-end latency (and TTFT) per level;
- ``throughput_latency.png``: request throughput and p50/p95 latency per level.

matplotlib is imported only when the plots are drawn, with the Agg backend (no display); without
it the plots are skipped with a warning and the text outputs are still written.
"""

from __future__ import annotations

import csv
import json
import os

from ansible_collections.llmd.gke.plugins.module_utils import bench_engine, bench_stats
from ansible_collections.llmd.gke.plugins.module_utils.bench_engine import RECORD_FIELDS
from ansible_collections.llmd.gke.plugins.module_utils.bench_stats import slo_table

SUMMARY = "summary.json"
CSV = "requests.csv"
REPORT = "report.md"
LATENCY_PNG = "latency_distribution.png"
THROUGHPUT_PNG = "throughput_latency.png"


def write_outputs(results_dir: str, summary: dict, records: list[dict]) -> tuple[list, list]:
    """Write every output; return (paths written, warnings)."""
    os.makedirs(results_dir, exist_ok=True)
    files, warnings = [], []
    path = os.path.join(results_dir, SUMMARY)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2, sort_keys=False)
        handle.write("\n")
    files.append(path)
    path = os.path.join(results_dir, CSV)
    write_csv(path, records)
    files.append(path)
    path = os.path.join(results_dir, REPORT)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(markdown(summary))
    files.append(path)
    try:
        files.extend(plots(results_dir, summary, records))
    except ImportError as exc:
        for name in (LATENCY_PNG, THROUGHPUT_PNG):  # no stale plots of an earlier run
            stale = os.path.join(results_dir, name)
            if os.path.exists(stale):
                os.remove(stale)
        warnings.append(
            f"plots skipped: matplotlib is not installed ({exc}); pip install matplotlib"
        )
    return files, warnings


def write_csv(path: str, records: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(RECORD_FIELDS)
        for record in records:
            writer.writerow(["" if record.get(k) is None else record.get(k) for k in RECORD_FIELDS])


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def _table(head: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _i in head) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def markdown(summary: dict) -> str:
    plan = summary.get("plan") or {}
    levels = summary.get("levels") or []
    out = [f"# {summary.get('title') or 'bench_run report'}", ""]
    out += [
        f"- endpoint: `{plan.get('endpoint')}` (model `{plan.get('model')}`, api {plan.get('api')},"
        f" stream {plan.get('stream')}, max_tokens {plan.get('max_tokens')})",
        f"- load: {plan.get('load')}"
        + (f", {plan.get('arrival')} arrivals" if plan.get("arrival") else "")
        + f", levels {[lv.get('level') for lv in plan.get('levels', [])]}",
        f"- run id: `{summary.get('run_id')}` (request ids `<run id>-<level index>-<sequence>`)",
    ]
    prompts = plan.get("prompts") or {}
    if prompts:
        words = prompts.get("input_words") or {}
        out.append(
            f"- prompts: {prompts.get('count')} {prompts.get('source')},"
            f" {words.get('min')}-{words.get('max')} words (mean {words.get('mean')}),"
            f" {prompts.get('prefix_groups')} prefix groups of {prompts.get('prefix_words')} words"
        )
    if summary.get("stopped_early"):
        out.append(f"- **stopped early**: {summary['stopped_early']}")
    if summary.get("levels_not_run"):
        out.append(f"- levels not run: {summary['levels_not_run']}")
    out += ["", "## Throughput and errors", ""]
    out += _table(
        [
            "level",
            "sent",
            "completed",
            "failed",
            "error rate",
            "duration s",
            "req/s",
            "output tok/s",
            "total tok/s",
            "errors",
        ],
        [
            [
                lv["label"],
                lv["sent"],
                lv["completed"],
                lv["failed"],
                lv["error_rate"],
                lv["duration_s"],
                lv["request_throughput"],
                lv["output_token_throughput"],
                lv["total_token_throughput"],
                ", ".join(f"{k}: {v}" for k, v in lv["errors"].items()) or "-",
            ]
            for lv in levels
        ],
    )
    for metric, title in (
        ("e2e_latency_ms", "End-to-end latency (ms)"),
        ("ttft_ms", "Time to first token (ms)"),
        ("tpot_ms", "Time per output token (ms)"),
        ("itl_ms", "Inter-token latency (ms, per token)"),
    ):
        rows = []
        for lv in levels:
            s = lv.get(metric)
            if s:
                rows.append(
                    [lv["label"]]
                    + [s[k] for k in ("count", "mean", "min", "p50", "p90", "p95", "p99", "max")]
                )
        if rows:
            out += ["", f"## {title}", ""]
            out += _table(
                ["level", "count", "mean", "min", "p50", "p90", "p95", "p99", "max"], rows
            )
    lags = [lv for lv in levels if lv.get("max_schedule_lag_ms") is not None]
    if lags:
        out += ["", "## Arrival schedule", ""]
        out += _table(
            ["level", "max schedule lag ms", "arrivals that waited for max_concurrency"],
            [[lv["label"], lv["max_schedule_lag_ms"], lv.get("capped_arrivals")] for lv in lags],
        )
    samples = [
        (lv["label"], k, v) for lv in levels for k, v in (lv.get("error_samples") or {}).items()
    ]
    if samples:
        out += ["", "## First error of each kind", ""]
        out += _table(
            ["level", "kind", "detail"],
            [[a, b, c.replace("|", "/").replace("\n", " ")] for a, b, c in samples],
        )
    slo = summary.get("slo") or []
    if slo:
        verdict = "all passed" if summary.get("slo_passed") else "MISSED"
        out += ["", f"## SLO gates ({verdict})", "", "```", slo_table(slo), "```"]
    out += [
        "",
        "## Method",
        "",
        f"- Percentiles: {summary.get('percentile_method')}.",
        "- Errors (non-2xx by status, timeout, connection, invalid response) are counted by kind"
        " and never enter the latency statistics. Warm-up requests are left out of every number.",
        "- Request throughput = completed requests / span from the first measured send to the last"
        " measured completion; token throughputs use the server's `usage` counts.",
        "- TTFT: time to the first SSE chunk carrying content. ITL: each later chunk's gap, counted"
        " as k intervals of gap/k when the chunk carries k tokens (per-chunk usage when the server"
        " sends it, else the final token count spread over the chunks). TPOT = (e2e - TTFT) /"
        " (output tokens - 1).",
        "- Prompt lengths are in words: no tokenizer runs on the control node.",
        "",
    ]
    return "\n".join(out)


def plots(results_dir: str, summary: dict, records: list[dict]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    levels = summary.get("levels") or []
    files = []
    path = os.path.join(results_dir, LATENCY_PNG)
    streamed = any(r.get("ttft_ms") is not None for r in records)
    fig, axes = plt.subplots(
        1, 2 if streamed else 1, figsize=(12 if streamed else 7, 4.5), squeeze=False
    )
    metrics = [("e2e_ms", "end-to-end latency (ms)")] + (
        [("ttft_ms", "time to first token (ms)")] if streamed else []
    )
    for ax, (key, title) in zip(axes[0], metrics, strict=True):
        for lv in levels:
            values = sorted(
                r[key]
                for r in records
                if r["level_index"] == lv["level_index"]
                and not r["warmup"]
                and r["error"] is None
                and r[key] is not None
            )
            if values:
                n = len(values)
                ax.step(values, [(i + 1) / n for i in range(n)], where="post", label=lv["label"])
        ax.set_xlabel(title)
        ax.set_ylabel("fraction of requests")
        ax.grid(True, alpha=0.3)
        if levels:
            ax.legend(fontsize="small")
    fig.suptitle("Latency distribution (empirical CDF, successful measured requests)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    files.append(path)

    path = os.path.join(results_dir, THROUGHPUT_PNG)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = [lv["level"] for lv in levels]
    ax.plot(
        xs, [lv["request_throughput"] for lv in levels], "o-", color="tab:blue", label="requests/s"
    )
    ax.set_xlabel(
        "concurrency"
        if summary.get("plan", {}).get("load") == "concurrency"
        else "offered rate (req/s)"
    )
    ax.set_ylabel("request throughput (req/s)", color="tab:blue")
    ax.grid(True, alpha=0.3)
    right = ax.twinx()
    for stat, style in (("p50", "s--"), ("p95", "^:")):
        ys = [(lv["e2e_latency_ms"] or {}).get(stat) for lv in levels]
        right.plot(
            xs,
            [float("nan") if y is None else y for y in ys],
            style,
            color="tab:red",
            label=f"{stat} latency",
        )
    right.set_ylabel("end-to-end latency (ms)", color="tab:red")
    handles = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(handles[0] + more[0], handles[1] + more[1], fontsize="small", loc="upper left")
    ax.set_title("Throughput and latency per load level")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    files.append(path)
    return files


# ------------------------------------------------------------------------------ the module's run
MODULE_ONLY = ("slo", "fail_on_slo", "fail_on_error_stop", "results_dir", "return_records")


def bench(params: dict, check_mode: bool = False) -> tuple[str | None, dict, list[str]]:
    """bench_run's whole job: plan or run, SLO gates, outputs.

    Returns (failure message or None, result, warnings). Raises ValueError (``BenchError``,
    ``PromptError``, a bad SLO) before anything is sent.
    """
    spec = {k: v for k, v in params.items() if k not in MODULE_ONLY}
    slo = bench_stats.validate_slo(params.get("slo"))
    plan = bench_engine.plan(spec)
    if check_mode:
        return None, {"changed": False, "plan": plan, "slo_gates": slo}, []
    results_dir = params.get("results_dir")
    spec["return_records"] = bool(results_dir or params.get("return_records"))
    outcome = bench_engine.run(spec)
    records = outcome.pop("records", [])
    rows = bench_stats.check_slo(outcome["levels"], slo)
    passed = all(r["passed"] for r in rows)
    summary = {"plan": plan, **outcome, "slo": rows, "slo_passed": passed}
    result = {"changed": True, **summary, "files": []}
    warnings, problems = [], []
    if results_dir:
        try:
            result["files"], warnings = write_outputs(results_dir, summary, records)
        except OSError as exc:
            problems.append(f"cannot write the results to {results_dir}: {exc}")
    if params.get("return_records"):
        result["records"] = records
    if outcome["stopped_early"] and params.get("fail_on_error_stop", True):
        errors: dict = {}
        for level in outcome["levels"]:
            for kind, n in level["errors"].items():
                errors[kind] = errors.get(kind, 0) + n
        first = next((lv for lv in outcome["levels"] if lv["error_samples"]), None)
        sample = ""
        if first:
            kind, detail = next(iter(first["error_samples"].items()))
            sample = f" First {kind}: {detail[:200]}"
        problems.append(
            f"Stopped early, {outcome['stopped_early']}; levels not run:"
            f" {outcome['levels_not_run'] or 'none'}. Errors: {errors}.{sample}"
            + "".join(f"\n- {h}" for h in bench_stats.error_hints(errors))
        )
    if not passed and params.get("fail_on_slo", True):
        missed = [r for r in rows if not r["passed"]]
        problems.append(
            f"{len(missed)} of {len(rows)} SLO checks missed:\n" + bench_stats.slo_table(missed)
        )
    for level in outcome["levels"]:
        if level["failed"] and not outcome["stopped_early"]:
            warnings.append(
                f"{level['label']}: {level['failed']} of {level['sent']} requests failed"
                f" {level['errors']}"
            )
    return ("\n".join(problems) or None), result, warnings
