"""bench_report: summary.json, requests.csv, report.md and the PNG plots from a result; the plots
skipped with a warning without matplotlib; bench() gates and failures (engine faked)."""

from __future__ import annotations

import csv
import json
import sys

import pytest

from ansible_collections.llmd.gke.plugins.module_utils import bench_engine, bench_report
from ansible_collections.llmd.gke.plugins.module_utils import bench_stats as bs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _level(index, level, p50, failed=0, errors=None):
    summary = bs.summarize([p50 - 5, p50, p50 + 5, p50 + 50])
    return {
        "label": f"concurrency={level}",
        "load": "concurrency",
        "level": level,
        "level_index": index,
        "warmup_sent": 1,
        "stopped_early": None,
        "sent": 4 + failed,
        "completed": 4,
        "failed": failed,
        "errors": errors or {},
        "error_rate": failed / (4 + failed),
        "duration_s": 2.0,
        "request_throughput": 2.0,
        "output_token_throughput": 32.0,
        "total_token_throughput": 64.0,
        "output_tokens": 64,
        "input_tokens": 64,
        "e2e_latency_ms": summary,
        "ttft_ms": summary,
        "tpot_ms": summary,
        "itl_ms": summary,
        "error_samples": {k: "upstream | says\nno" for k in (errors or {})},
        "max_schedule_lag_ms": None,
    }


def _records():
    out = []
    for index, level in enumerate((1, 4)):
        for seq in range(5):
            out.append(
                {
                    "request_id": f"r-{index}-{seq}",
                    "level_index": index,
                    "level": level,
                    "warmup": seq == 0,
                    "prefix_group": None,
                    "scheduled_s": None,
                    "start_s": 0.1 * seq,
                    "status": 200,
                    "error": None,
                    "e2e_ms": 100.0 + seq,
                    "ttft_ms": 10.0 + seq,
                    "tpot_ms": 1.0,
                    "itl_mean_ms": 1.0,
                    "input_tokens": 16,
                    "output_tokens": 16,
                    "endpoint": "10.0.0.1:8000",
                }
            )
    return out


def _summary():
    levels = [_level(0, 1, 100.0), _level(1, 4, 200.0, failed=1, errors={"http_503": 1})]
    rows = bs.check_slo(levels, bs.validate_slo([{"metric": "e2e_latency_ms.p50", "max": 150}]))
    plan = {"endpoint": "http://x/v1/completions", "model": "m", "load": "concurrency"}
    plan["levels"] = [{"level": 1}, {"level": 4}]
    return {
        "plan": plan,
        "percentile_method": bs.PERCENTILE_METHOD,
        "run_id": "r",
        "levels": levels,
        "levels_not_run": [],
        "stopped_early": None,
        "slo": rows,
        "slo_passed": False,
    }


def test_outputs_written_and_parse(tmp_path):
    out = tmp_path / "results" / "run1"
    files, warnings = bench_report.write_outputs(str(out), _summary(), _records())
    assert warnings == []
    names = sorted(p.rsplit("/", 1)[1] for p in files)
    assert names == sorted(
        [
            "summary.json",
            "requests.csv",
            "report.md",
            "latency_distribution.png",
            "throughput_latency.png",
        ]
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["levels"][1]["errors"] == {"http_503": 1} and summary["slo_passed"] is False
    with open(out / "requests.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 10 and list(rows[0]) == list(bench_engine.RECORD_FIELDS)
    assert [r["warmup"] for r in rows[:2]] == ["True", "False"] and rows[0]["scheduled_s"] == ""
    report = (out / "report.md").read_text()
    assert "## End-to-end latency (ms)" in report and "| concurrency=4 |" in report
    assert "## SLO gates (MISSED)" in report and "MISS" in report
    assert "Hyndman-Fan type 7" in report and "words" in report
    assert "upstream / says no" in report  # table-safe error sample
    for name in ("latency_distribution.png", "throughput_latency.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000


def test_plots_skipped_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    (tmp_path / "throughput_latency.png").write_bytes(PNG_MAGIC)  # from an earlier run
    files, warnings = bench_report.write_outputs(str(tmp_path), _summary(), _records())
    assert len(files) == 3 and not list(tmp_path.glob("*.png"))
    assert warnings and "matplotlib" in warnings[0]


# ------------------------------------------------------------------------------ bench()
class FakeEngine:
    def __init__(self, levels, stopped=None):
        self.levels, self.stopped, self.specs = levels, stopped, []

    def __call__(self, spec):
        self.specs.append(spec)
        return {
            "percentile_method": bs.PERCENTILE_METHOD,
            "run_id": "r",
            "levels": self.levels,
            "levels_not_run": [8] if self.stopped else [],
            "stopped_early": self.stopped,
            "records": _records() if spec["return_records"] else [],
        }


PARAMS = {
    "url": "http://127.0.0.1:9/p",
    "model": "m",
    "levels": [1, 4],
    "requests": 4,
    "slo": [{"metric": "e2e_latency_ms.p95", "max": 10000, "min": None}],
    "fail_on_slo": True,
    "fail_on_error_stop": True,
    "results_dir": None,
    "return_records": False,
}


def test_bench_check_mode_plans_only(monkeypatch):
    engine = FakeEngine([])
    monkeypatch.setattr(bench_engine, "run", engine)
    failure, result, _warnings = bench_report.bench(PARAMS, check_mode=True)
    assert failure is None and engine.specs == [] and result["changed"] is False
    assert [lv["level"] for lv in result["plan"]["levels"]] == [1, 4]


def test_bench_slo_miss_fails_after_writing(monkeypatch, tmp_path):
    engine = FakeEngine([_level(0, 1, 100.0), _level(1, 4, 200.0)])
    monkeypatch.setattr(bench_engine, "run", engine)
    monkeypatch.setattr(bench_report, "plots", lambda *a: [])  # drawn in the test above
    params = dict(PARAMS, slo=[{"metric": "e2e_latency_ms.p50", "max": 150}])
    params["results_dir"] = str(tmp_path)
    failure, result, _warnings = bench_report.bench(params)
    assert engine.specs[0]["return_records"] is True  # the CSV needs them
    assert "records" not in result
    assert failure.startswith("1 of 2 SLO checks missed")
    assert "concurrency=4" in failure and "<= 150" in failure and "concurrency=1 " not in failure
    assert (tmp_path / "summary.json").exists() and result["changed"] is True
    assert not bench_report.bench(dict(params, fail_on_slo=False))[0]


def test_bench_error_stop_fails_with_hint(monkeypatch):
    level = _level(0, 1, 100.0, failed=30, errors={"http_404": 30})
    engine = FakeEngine([level], stopped="concurrency=1: error rate 30/34")
    monkeypatch.setattr(bench_engine, "run", engine)
    failure, result, _warnings = bench_report.bench(PARAMS)
    assert "Stopped early" in failure and "[8]" in failure and "model name" in failure
    assert result["stopped_early"]
    assert bench_report.bench(dict(PARAMS, fail_on_error_stop=False))[0] is None


def test_bench_bad_slo_raises_before_sending(monkeypatch):
    engine = FakeEngine([])
    monkeypatch.setattr(bench_engine, "run", engine)
    with pytest.raises(ValueError, match="unknown metric"):
        bench_report.bench(dict(PARAMS, slo=[{"metric": "p95", "max": 1}]))
    assert engine.specs == []
