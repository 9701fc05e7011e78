"""``make bench``: bench_run's load engine against a raw aiohttp loop and against inference-perf.

Each scenario starts the fake server (``openai_server.py``) pinned to one CPU, then runs the
three clients one after the other, each pinned to the other CPU, with the same requests
(``/v1/completions``, a 32-word prompt, ``max_tokens`` 32, ``ignore_eos``), the same fixed
concurrency, the same warm-up (not measured) and the same number of measured requests:

- ``raw``: tests/bench/raw_client.py, the plain aiohttp loop (the ceiling);
- ``bench_run``: ``plugins/module_utils/bench_engine.run(spec)``, the engine of llmd.gke.bench_run;
- ``inference-perf``: kubernetes-sigs/inference-perf (PyPI, pinned in requirements-bench.txt,
  virtualenv .venv-bench), offline: no Hugging Face Hub at all. Its vLLM client needs a
  tokenizer (random prompts of exact token length, output tokens counted per reply), so the
  harness builds a word-level one with ``tokenizers`` into a temporary directory and passes its
  path; ``HF_HUB_OFFLINE=1``. Load type ``concurrent`` with one worker process (its concurrent
  mode runs in worker processes; one worker, like the other clients' one event loop), a warm-up
  stage and a measured stage, ``data.type: random`` (fixed input and output lengths).

Scenarios: ``instant`` (non-streaming, instant server), ``instant-sse32`` (SSE, 32 content events
of one token each, instant server), ``latency800`` (non-streaming, every reply 800 ms late,
concurrency 20). Targets (issues 7 and 19): at instant, bench_run reaches >= 90% of raw's
request rate, spends at most 1.1x raw's client CPU per request, and beats inference-perf's rate;
at 800 ms, bench_run's p50 is at most 5 ms above raw's.

Every tool's request rate is completed requests over the span from its first measured send to
its last completion; p50 is the end-to-end latency. The table also shows, per tool, the client
CPU time per request (sampled from /proc over the measured window, all processes of the client)
and how much of the window the client and the server ran and waited runnable for their CPU
(/proc/<pid>/schedstat): a server near 100% would mean the server set the rate, a long wait that
other processes took the CPU. With ``--repeat N`` every measurement runs N times (tools
interleaved) and the median is reported with the spread. The machine may be shared: wall-clock
rates are noisy, CPU per request much less so.

    .venv/bin/python tests/bench/bench_run_compare.py [--bench-venv .venv-bench] [--repeat 3]
        [--scale 0.5] [--scenarios instant,instant-sse32,latency800] [--results-dir DIR]

Exit status: 0 all targets met, 1 a target missed (or a tool could not run), 2 harness error.
The table is printed and written as results.json and results.md under the results directory
(default build/bench/compare-<UTC time>).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SERVER = HERE / "openai_server.py"
RAW = HERE / "raw_client.py"
TOOLS = ("raw", "bench_run", "inference-perf")
MODEL = "bench-model"
PROMPT_WORDS = 32
MAX_TOKENS = 32
RATIO_TARGET = 0.90
CPU_RATIO_TARGET = 1.10  # bench_run's client CPU per request over raw's, at most
P50_DELTA_TARGET_MS = 5.0
SERVER_BUSY_WARN = 0.85

# name: server latency, stream, concurrency, measured requests, warm-up requests
SCENARIOS = {
    "instant": {
        "latency_ms": 0,
        "stream": False,
        "concurrency": 20,
        "requests": 8000,
        "warmup": 400,
    },
    "instant-sse32": {
        "latency_ms": 0,
        "stream": True,
        "concurrency": 20,
        "requests": 3000,
        "warmup": 200,
    },
    "latency800": {
        "latency_ms": 800,
        "stream": False,
        "concurrency": 20,
        "requests": 400,
        "warmup": 40,
    },
}


class HarnessError(RuntimeError):
    """The benchmark itself could not run (a server or tool that does not start)."""


# ------------------------------------------------------------------------------ CPU sampling
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (ppid, CPU seconds incl. reaped children) of every process we can read."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        table[int(entry.name)] = (int(fields[1]), ticks / CLK_TCK)
    return table


def _tree(table: dict[int, tuple[int, float]], root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _cpu) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def _run_queue_wait(pid: int) -> float:
    """Seconds the process's main thread waited for a CPU while runnable (/proc/pid/schedstat)."""
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


class CpuSampler(threading.Thread):
    """Samples CPU time and run-queue wait of process trees (by root pid) every ``interval`` s."""

    def __init__(self, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.roots: dict[str, int] = {}
        self.samples: dict[str, list[tuple[float, float, float]]] = {}
        self.lock = threading.Lock()
        self.halt = threading.Event()

    def watch(self, name: str, pid: int) -> None:
        with self.lock:
            self.roots[name] = pid
            self.samples[name] = []

    def run(self) -> None:
        while not self.halt.is_set():
            now = time.time()
            table = _proc_table()
            with self.lock:
                for name, root in self.roots.items():
                    pids = _tree(table, root)
                    if pids:
                        cpu = sum(table[pid][1] for pid in pids)
                        wait = sum(_run_queue_wait(pid) for pid in pids)
                        self.samples[name].append((now, cpu, wait))
            self.halt.wait(self.interval)

    def between(self, name: str, t0: float, t1: float) -> tuple[float, float] | None:
        """(CPU s, run-queue wait s) of the tree from t0 to t1 (Unix time), interpolated.

        A window that starts or ends up to 1 s outside the samples (the process started or
        ended there) takes the first or last sample.
        """
        with self.lock:
            points = list(self.samples.get(name, ()))
        if len(points) < 2 or t1 <= t0 or points[0][0] > t0 + 1 or points[-1][0] < t1 - 1:
            return None
        a, b = _interp(points, t0), _interp(points, t1)
        return b[0] - a[0], b[1] - a[1]


def _interp(points: list[tuple[float, float, float]], t: float) -> tuple[float, float]:
    if t <= points[0][0]:
        return points[0][1], points[0][2]
    for (ta, ca, wa), (tb, cb, wb) in zip(points, points[1:], strict=False):
        if ta <= t <= tb:
            f = 0.0 if tb == ta else (t - ta) / (tb - ta)
            return ca + (cb - ca) * f, wa + (wb - wa) * f
    return points[-1][1], points[-1][2]


# ------------------------------------------------------------------------------ processes
PIN_AND_EXEC = (
    "import os, sys; os.sched_setaffinity(0, {int(sys.argv[1])});"
    " os.execv(sys.argv[2], sys.argv[2:])"
)


def _stats(url: str) -> dict:
    with urllib.request.urlopen(url + "/stats", timeout=10) as resp:
        return json.load(resp)


@contextlib.contextmanager
def fake_server(python: str, cpu: int, latency_ms: float, uvloop: bool, sampler: CpuSampler):
    cmd = [python, str(SERVER), "--port", "0", "--cpu", str(cpu), "--latency-ms", str(latency_ms)]
    if uvloop:
        cmd.append("--uvloop")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line.startswith("LISTENING "):
            proc.kill()
            raise HarnessError(f"fake server did not start: {line}{proc.stderr.read()[-2000:]}")
        sampler.watch("server", proc.pid)
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pinned(cpu: int, cmd: list[str]) -> list[str]:
    """``cmd`` run on one CPU: a tiny Python sets the affinity and execs it (kept across exec)."""
    return [sys.executable, "-c", PIN_AND_EXEC, str(cpu), *cmd]


def _run_child(
    cmd: list[str], cpu: int, sampler: CpuSampler, timeout: float, *, env=None, cwd=None
) -> tuple[str, str]:
    proc = subprocess.Popen(
        pinned(cpu, cmd),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
    )
    sampler.watch("client", proc.pid)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise HarnessError(f"{cmd[:2]} did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise HarnessError(f"{' '.join(cmd[:3])} exited {proc.returncode}: {err[-3000:]}")
    return out, err


def _last_json(out: str) -> dict:
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise HarnessError(f"no JSON result in the output: {out[-1000:]}")


# ------------------------------------------------------------------------------ the tools
def run_raw(ctx: dict, sc: dict) -> dict:
    cmd = [ctx["python"], str(RAW), "--url", ctx["url"], "--cpu", str(ctx["client_cpu"])]
    cmd += ["--concurrency", str(sc["concurrency"]), "--requests", str(sc["requests"])]
    cmd += ["--warmup", str(sc["warmup"]), "--prompt-words", str(PROMPT_WORDS)]
    cmd += ["--max-tokens", str(MAX_TOKENS), "--model", MODEL]
    if sc["stream"]:
        cmd.append("--stream")
    out, _err = _run_child(cmd, ctx["client_cpu"], ctx["sampler"], 900)
    res = _last_json(out)
    return {
        "completed": res["completed"],
        "failed": res["failed"],
        "duration_s": res["duration_s"],
        "req_s": res["request_throughput"],
        "p50_ms": res["e2e_latency_ms"]["p50"],
        "window": (res["window_epoch"][0], res["window_epoch"][1]),
        "server_requests_expected": sc["requests"] + sc["warmup"],
    }


def bench_run_spec(url: str, sc: dict) -> dict:
    return {
        "url": url,
        "model": MODEL,
        "api": "completions",
        "stream": sc["stream"],
        "max_tokens": MAX_TOKENS,
        "ignore_eos": True,
        "load": "concurrency",
        "levels": [sc["concurrency"]],
        "requests": sc["requests"],
        "warmup_requests": sc["warmup"],
        "timeout": 60.0,
        "max_error_rate": 0.5,
        "prompts": {"source": "synthetic", "count": 100, "input_tokens": PROMPT_WORDS},
        "seed": 1,
        "return_records": False,
    }


def child_bench_run(spec_json: str) -> int:
    """In the pinned child: run bench_engine and print its first level plus the window.

    The level's records and percentiles are computed after its last answer (``_analyse``), as
    raw computes its percentiles after its window: the window ends when the analysis starts,
    and the analysis's own CPU time is printed apart (``analysis_cpu_s``)."""
    sys.path.insert(0, str(ROOT / "collections"))
    from ansible_collections.llmd.gke.plugins.module_utils import bench_engine

    marks: list[tuple[float, float, float]] = []
    analyse = bench_engine._analyse

    def timed(ctx, state):
        t0, c0 = time.time(), time.process_time()
        try:
            return analyse(ctx, state)
        finally:
            marks.append((t0, c0, time.process_time()))

    bench_engine._analyse = timed
    result = bench_engine.run(json.loads(spec_json))
    t_end, c0, c1 = marks[0]
    level = result["levels"][0]
    out = {"level": level, "t_end": t_end, "analysis_cpu_s": c1 - c0}
    print(json.dumps({**out, "method": result.get("percentile_method")}))
    return 0


def run_bench_run(ctx: dict, sc: dict) -> dict:
    spec = bench_run_spec(ctx["url"], sc)
    cmd = [ctx["python"], str(Path(__file__).resolve()), "--child", "bench_run"]
    cmd += ["--spec", json.dumps(spec)]
    out, _err = _run_child(cmd, ctx["client_cpu"], ctx["sampler"], 900)
    res = _last_json(out)
    level = res["level"]
    duration = float(level["duration_s"])
    # The engine reports no wall-clock window: its level ended when its analysis started
    # (t_end), so the CPU window is the measured span ending there.
    return {
        "completed": level["completed"],
        "failed": level["failed"],
        "duration_s": duration,
        "req_s": level["request_throughput"],
        "p50_ms": (level.get("e2e_latency_ms") or {}).get("p50"),
        "window": (res["t_end"] - duration, res["t_end"]),
        "server_requests_expected": sc["requests"] + sc["warmup"],
        "errors": level.get("errors") or {},
        "analysis_ms_per_req": res["analysis_cpu_s"] * 1000 / max(1, level["completed"]),
    }


def inference_perf_config(url: str, sc: dict, tokenizer: str, reports: str) -> dict:
    fixed = {"type": "fixed", "std_dev": 0}
    return {
        "api": {"type": "completion", "streaming": sc["stream"]},
        "server": {"type": "vllm", "base_url": url, "model_name": MODEL, "ignore_eos": True},
        "tokenizer": {"pretrained_model_name_or_path": tokenizer},
        "data": {
            "type": "random",
            "input_distribution": dict(
                fixed, min=PROMPT_WORDS, max=PROMPT_WORDS, mean=PROMPT_WORDS
            ),
            "output_distribution": dict(fixed, min=MAX_TOKENS, max=MAX_TOKENS, mean=MAX_TOKENS),
        },
        "load": {
            "type": "concurrent",
            "num_workers": 1,
            "interval": 0,
            "base_seed": 1,
            "request_timeout": 60,
            "stages": [
                {"num_requests": sc["warmup"], "concurrency_level": sc["concurrency"]},
                {"num_requests": sc["requests"], "concurrency_level": sc["concurrency"]},
            ],
        },
        "report": {
            "request_lifecycle": {"summary": False, "per_stage": True, "per_adapter": False},
            "prometheus": {"summary": False, "per_stage": False},
        },
        "storage": {"local_storage": {"path": reports}},
    }


def _offline_env(home: str) -> dict:
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_HOME=home,
        TOKENIZERS_PARALLELISM="false",
        NO_COLOR="1",
    )
    return env


def run_inference_perf(ctx: dict, sc: dict) -> dict:
    work = Path(tempfile.mkdtemp(prefix="ip-", dir=ctx["tmp"]))
    reports = work / "reports"
    config = inference_perf_config(ctx["url"], sc, ctx["tokenizer"], str(reports))
    (work / "config.yml").write_text(json.dumps(config, indent=1))  # JSON is YAML
    cmd = [ctx["inference_perf"], "--config_file", str(work / "config.yml")]
    env = _offline_env(str(work / "hf"))
    out, err = _run_child(cmd, ctx["client_cpu"], ctx["sampler"], 1800, env=env, cwd=str(work))
    (work / "output.log").write_text(out + err)
    stage = json.loads((reports / "stage_1_lifecycle_metrics.json").read_text())
    ok = stage["successes"]
    failed = (stage.get("failures") or {}).get("count", 0)
    rps = ok["throughput"]["requests_per_sec"]
    latency = ok["latency"]["request_latency"] or {}
    partial = (reports / "inference-perf.partial.stage_1.yaml").read_text()
    times = dict(re.findall(r"^\s+(start|end): '([^']+)'", partial, re.M))
    window = tuple(
        datetime.fromisoformat(times[k].replace("Z", "+00:00")).timestamp()
        for k in ("start", "end")
    )
    return {
        "completed": ok["count"],
        "failed": failed,
        "duration_s": ok["count"] / rps if rps else 0.0,
        "req_s": rps,
        "p50_ms": latency["median"] * 1000 if "median" in latency else None,
        "window": window,
        "server_requests_expected": sc["requests"] + sc["warmup"],
    }


RUNNERS = {"raw": run_raw, "bench_run": run_bench_run, "inference-perf": run_inference_perf}


def child_tokenizer(out_dir: str) -> int:
    """In .venv-bench: a word-level tokenizer (w0..w997, tok, [UNK]) saved for inference-perf."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["[UNK]", "tok"] + [f"w{i}" for i in range(998)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", model_max_length=10**6)
    fast.save_pretrained(out_dir)
    return 0


# ------------------------------------------------------------------------------ measuring
def measure(ctx: dict, tool: str, sc: dict) -> dict:
    url, sampler = ctx["url"], ctx["sampler"]
    before = _stats(url)
    t0 = time.monotonic()
    res = RUNNERS[tool](ctx, sc)
    res["wall_s"] = round(time.monotonic() - t0, 2)
    after = _stats(url)
    served = sum(after[k] - before[k] for k in ("completions", "chat"))
    res["server_requests"] = served
    w0, w1 = res.pop("window")
    span = w1 - w0
    client = sampler.between("client", w0, w1)
    server = sampler.between("server", w0, w1)
    done = res["completed"]
    res["client_cpu_ms_per_req"] = client[0] * 1000 / done if client and done else None
    res["client_busy"] = client[0] / span if client and span > 0 else None
    res["client_cpu_wait"] = client[1] / span if client and span > 0 else None
    res["server_busy"] = server[0] / span if server and span > 0 else None
    res["server_cpu_wait"] = server[1] / span if server and span > 0 else None
    return res


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def aggregate(runs: list[dict]) -> dict:
    if not runs:
        return {}
    keys = (
        "req_s",
        "p50_ms",
        "client_cpu_ms_per_req",
        "client_busy",
        "client_cpu_wait",
        "server_busy",
        "server_cpu_wait",
        "duration_s",
        "analysis_ms_per_req",
    )
    agg = {k: _median([r.get(k) for r in runs]) for k in keys}
    rates = [r["req_s"] for r in runs]
    agg["req_s_min"], agg["req_s_max"] = min(rates), max(rates)
    p50s = [r["p50_ms"] for r in runs if r.get("p50_ms") is not None]
    agg["p50_min"], agg["p50_max"] = (min(p50s), max(p50s)) if p50s else (None, None)
    agg["completed"] = sum(r["completed"] for r in runs)
    agg["failed"] = sum(r["failed"] for r in runs)
    agg["repeats"] = len(runs)
    mismatch = [r for r in runs if r["server_requests"] != r["server_requests_expected"]]
    agg["server_count_mismatch"] = [
        (r["server_requests"], r["server_requests_expected"]) for r in mismatch
    ]
    return agg


def check_targets(results: dict) -> list[dict]:
    checks = []
    for name, tools in results.items():
        raw, br, ip = (tools.get(t, {}).get("agg") for t in TOOLS)
        if name.startswith("instant"):
            if raw and br:
                ratio = br["req_s"] / raw["req_s"] if raw["req_s"] else 0.0
                checks.append(
                    {
                        "scenario": name,
                        "target": f"bench_run req/s >= {RATIO_TARGET:.0%} of raw",
                        "value": f"{ratio:.1%} ({br['req_s']:.0f} / {raw['req_s']:.0f})",
                        "ok": ratio >= RATIO_TARGET,
                    }
                )
                cpu_raw, cpu_br = raw["client_cpu_ms_per_req"], br["client_cpu_ms_per_req"]
                if cpu_raw and cpu_br:
                    checks.append(
                        {
                            "scenario": name,
                            "target": f"bench_run client CPU/req <= {CPU_RATIO_TARGET:g}x raw's",
                            "value": f"{cpu_br / cpu_raw:.2f}x ({cpu_br:.3f} / {cpu_raw:.3f} ms)",
                            "ok": cpu_br <= CPU_RATIO_TARGET * cpu_raw,
                        }
                    )
            if br and ip:
                checks.append(
                    {
                        "scenario": name,
                        "target": "bench_run req/s > inference-perf",
                        "value": f"{br['req_s']:.0f} vs {ip['req_s']:.0f}",
                        "ok": br["req_s"] > ip["req_s"],
                    }
                )
        elif raw and br and raw["p50_ms"] is not None and br["p50_ms"] is not None:
            delta = br["p50_ms"] - raw["p50_ms"]
            checks.append(
                {
                    "scenario": name,
                    "target": f"bench_run p50 <= raw p50 + {P50_DELTA_TARGET_MS:g} ms",
                    "value": f"{delta:+.1f} ms ({br['p50_ms']:.1f} vs {raw['p50_ms']:.1f})",
                    "ok": delta <= P50_DELTA_TARGET_MS,
                }
            )
        for tool in TOOLS:
            entry = tools.get(tool, {})
            if entry.get("error"):
                checks.append(
                    {
                        "scenario": name,
                        "target": f"{tool} runs",
                        "value": entry["error"][:200],
                        "ok": False,
                    }
                )
    return checks


# ------------------------------------------------------------------------------ reporting
def _f(value, fmt: str, none: str = "-") -> str:
    return none if value is None else format(value, fmt)


def table_rows(results: dict, scenarios: dict) -> list[list[str]]:
    rows = []
    for name, tools in results.items():
        sc = scenarios[name]
        raw = tools.get("raw", {}).get("agg")
        for tool in TOOLS:
            entry = tools.get(tool)
            if entry is None:
                continue
            agg = entry.get("agg")
            if not agg:
                rows.append([name, tool, "error"] + [""] * (len(HEADERS) - 3))
                continue
            spread = f"{agg['req_s']:.0f}"
            if agg["repeats"] > 1:
                spread += f" ({agg['req_s_min']:.0f}-{agg['req_s_max']:.0f})"
            ratio = agg["req_s"] / raw["req_s"] if raw and raw["req_s"] else None
            delta = (
                agg["p50_ms"] - raw["p50_ms"]
                if raw and agg["p50_ms"] is not None and raw["p50_ms"] is not None
                else None
            )
            cpu_ratio = (
                raw["client_cpu_ms_per_req"] / agg["client_cpu_ms_per_req"]
                if raw and raw["client_cpu_ms_per_req"] and agg["client_cpu_ms_per_req"]
                else None
            )
            client = f"{_f(agg['client_busy'], '.0%')} / {_f(agg['client_cpu_wait'], '.0%')}"
            server = f"{_f(agg['server_busy'], '.0%')} / {_f(agg['server_cpu_wait'], '.0%')}"
            if agg["server_busy"] is not None and agg["server_busy"] >= SERVER_BUSY_WARN:
                server += " (!)"
            rows.append(
                [
                    name,
                    tool,
                    spread,
                    _f(agg["p50_ms"], ".2f"),
                    _f(ratio, ".2f"),
                    _f(delta, "+.2f"),
                    _f(agg["client_cpu_ms_per_req"], ".3f"),
                    _f(cpu_ratio, ".2f"),
                    client,
                    server,
                    f"{agg['duration_s']:.1f} s x{agg['repeats']}",
                    f"{sc['requests']} @c{sc['concurrency']}, {agg['failed']} failed",
                ]
            )
    return rows


HEADERS = [
    "scenario",
    "tool",
    "req/s",
    "p50 ms",
    "ratio to raw",
    "p50 - raw ms",
    "client CPU ms/req",
    "CPU ratio to raw",
    "client CPU used / waited",
    "server CPU used / waited",
    "measured",
    "requests",
]


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [HEADERS, *rows]) for i in range(len(HEADERS))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADERS, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


LEGEND = (
    "req/s: completed requests over first send to last completion (median of the repeats,"
    " min-max in brackets); p50: end-to-end latency; CPU ratio to raw: raw's client CPU per"
    " request over the tool's (the request-rate ratio on an idle, saturated core); client CPU"
    " used / waited: share of the measured span the client's processes ran / waited runnable"
    " for a CPU; server CPU used / waited: the same for the fake server."
)


def notes(results: dict) -> list[str]:
    out = []
    for name, tools in results.items():
        for tool, entry in tools.items():
            agg = entry.get("agg") or {}
            if (agg.get("client_cpu_wait") or 0) > 0.10:
                out.append(
                    f"{name}/{tool}: the client waited for its CPU {agg['client_cpu_wait']:.0%} of"
                    " the span (other processes on that CPU, its own other processes included):"
                    " its req/s is low by about as much;"
                    " CPU per request is much less affected"
                )
            if (agg.get("server_cpu_wait") or 0) > 0.10:
                out.append(
                    f"{name}/{tool}: the server waited for its CPU {agg['server_cpu_wait']:.0%} of"
                    " the span (other processes on that CPU): replies were delayed"
                )
            if (agg.get("server_busy") or 0) >= SERVER_BUSY_WARN:
                out.append(
                    f"{name}/{tool}: the server's CPU was {agg['server_busy']:.0%} busy: the server"
                    " may have set this rate"
                )
            if agg.get("analysis_ms_per_req") is not None:
                out.append(
                    f"{name}/{tool}: after the level (not in its CPU window), the records and"
                    f" percentiles took {agg['analysis_ms_per_req']:.3f} ms of CPU per request"
                )
            if agg.get("server_count_mismatch"):
                out.append(
                    f"{name}/{tool}: the server counted other numbers of requests than the tool"
                    f" sent (served, expected): {agg['server_count_mismatch']}"
                )
    return out


def markdown(rows: list[list[str]], checks: list[dict], meta: dict, remarks: list[str]) -> str:
    out = ["# bench_run vs raw aiohttp vs inference-perf", ""]
    out += [f"- {k}: {v}" for k, v in meta.items()]
    out += ["", "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    out += ["", LEGEND]
    out += ["", *(f"- {r}" for r in remarks)] if remarks else []
    out += ["", "| scenario | target | value | met |", "|---|---|---|---|"]
    out += [
        f"| {c['scenario']} | {c['target']} | {c['value']} | {'yes' if c['ok'] else 'NO'} |"
        for c in checks
    ]
    return "\n".join(out) + "\n"


def progress_line(tool: str, res: dict) -> str:
    return (
        f"   {tool:<15} {res['req_s']:8.1f} req/s  p50 {_f(res['p50_ms'], '8.2f')} ms"
        f"  client {_f(res['client_cpu_ms_per_req'], '.3f')} ms CPU/req"
        f" (CPU used {_f(res['client_busy'], '.0%')}, waited {_f(res['client_cpu_wait'], '.0%')})"
        f"  server CPU {_f(res['server_busy'], '.0%')}, waited {_f(res['server_cpu_wait'], '.0%')}"
        f"  ({res['duration_s']:.1f} s measured, {res['wall_s']:.1f} s with start-up)"
    )


# ------------------------------------------------------------------------------ main
def _has_module(python: str, module: str) -> bool:
    probe = subprocess.run([python, "-c", f"import {module}"], capture_output=True, check=False)
    return probe.returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument(
        "--bench-venv", default=str(ROOT / ".venv-bench"), help="inference-perf venv"
    )
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool and scenario")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the request counts")
    parser.add_argument("--results-dir", help="default: build/bench/compare-<UTC time>")
    parser.add_argument("--client-cpu", type=int, default=0)
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--child", choices=("bench_run", "tokenizer"), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "bench_run":
        return child_bench_run(args.spec)
    if args.child == "tokenizer":
        return child_tokenizer(args.out)
    try:
        return compare(args)
    except HarnessError as exc:
        print(f"bench harness error: {exc}", file=sys.stderr)
        return 2


def compare(args: argparse.Namespace) -> int:
    names = [s for s in args.scenarios.split(",") if s]
    tools = [t for t in args.tools.split(",") if t]
    for name in names:
        if name not in SCENARIOS:
            raise HarnessError(f"unknown scenario {name}; known: {', '.join(SCENARIOS)}")
    for tool in tools:
        if tool not in TOOLS:
            raise HarnessError(f"unknown tool {tool}; known: {', '.join(TOOLS)}")
    cpus = sorted(os.sched_getaffinity(0))
    if args.client_cpu not in cpus or args.server_cpu not in cpus:
        raise HarnessError(
            f"CPUs {args.client_cpu} and {args.server_cpu} needed, this process has {cpus}"
        )
    if args.client_cpu == args.server_cpu:
        print("warning: client and server share one CPU", file=sys.stderr)
    venv = Path(os.path.abspath(args.bench_venv))  # not resolve(): bin/python is a symlink
    bench_python = venv / "bin" / "python"
    inference_perf = venv / "bin" / "inference-perf"
    if "inference-perf" in tools and not inference_perf.exists():
        raise HarnessError(
            f"{inference_perf} not found: build it with `make .venv-bench/.setup-stamp`"
        )
    # The server runs on uvloop from .venv-bench when it can (a cheaper server); clients use the
    # interpreter of this harness (.venv, the one bench_run runs with under Ansible).
    server_python, uvloop = sys.executable, False
    if bench_python.exists() and _has_module(str(bench_python), "uvloop"):
        server_python, uvloop = str(bench_python), True
    scenarios = {}
    for name in names:
        sc = dict(SCENARIOS[name])
        sc["requests"] = max(sc["concurrency"], int(sc["requests"] * args.scale))
        sc["warmup"] = max(sc["concurrency"], int(sc["warmup"] * args.scale))
        scenarios[name] = sc
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    results_dir = Path(args.results_dir or ROOT / "build" / "bench" / f"compare-{stamp}")
    results_dir.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="bench-compare-")
    sampler = CpuSampler()
    sampler.start()
    started = time.monotonic()
    results: dict = {}
    try:
        ctx = {
            "python": sys.executable,
            "client_cpu": args.client_cpu,
            "sampler": sampler,
            "tmp": tmp,
            "inference_perf": str(inference_perf),
        }
        if "inference-perf" in tools:
            ctx["tokenizer"] = os.path.join(tmp, "tokenizer")
            cmd = [str(bench_python), str(Path(__file__).resolve()), "--child", "tokenizer"]
            cmd += ["--out", ctx["tokenizer"]]
            subprocess.run(
                cmd, check=True, env=_offline_env(os.path.join(tmp, "hf")), capture_output=True
            )
        for name, sc in scenarios.items():
            print(
                f"== {name}: server latency {sc['latency_ms']} ms, stream={sc['stream']}, "
                f"concurrency {sc['concurrency']}, {sc['requests']} requests"
                f" (+{sc['warmup']} warm-up)",
                flush=True,
            )
            runs: dict[str, list] = {t: [] for t in tools}
            errors: dict[str, str] = {}
            with fake_server(
                server_python, args.server_cpu, sc["latency_ms"], uvloop, sampler
            ) as url:
                ctx["url"] = url
                for rep in range(args.repeat):
                    order = tools[rep % len(tools) :] + tools[: rep % len(tools)]
                    for tool in order:
                        if tool in errors:
                            continue
                        try:
                            res = measure(ctx, tool, sc)
                        except (HarnessError, OSError, KeyError, ValueError, ImportError) as exc:
                            errors[tool] = f"{type(exc).__name__}: {exc}"
                            print(f"   {tool}: FAILED {errors[tool][:500]}", flush=True)
                            continue
                        runs[tool].append(res)
                        print(progress_line(tool, res), flush=True)
            results[name] = {
                t: {"runs": runs[t], "agg": aggregate(runs[t]), "error": errors.get(t)}
                for t in tools
            }
    finally:
        sampler.halt.set()
        shutil.rmtree(tmp, ignore_errors=True)
    checks = check_targets(results)
    if "bench_run" not in tools or "raw" not in tools:
        checks.append(
            {
                "scenario": "-",
                "target": "raw and bench_run measured",
                "value": "skipped",
                "ok": False,
            }
        )
    rows = table_rows(results, scenarios)
    meta = {
        "date": stamp,
        "cpus": f"client on CPU {args.client_cpu}, server on CPU {args.server_cpu}"
        f" (of {os.cpu_count()})",
        "server": f"tests/bench/openai_server.py on {'uvloop' if uvloop else 'asyncio'}",
        "request": f"/v1/completions, {PROMPT_WORDS}-word prompt, max_tokens {MAX_TOKENS},"
        " ignore_eos",
        "repeats": f"{args.repeat} (median shown, min-max in brackets)",
        "total time": f"{time.monotonic() - started:.0f} s",
    }
    print()
    print(text_table(rows))
    print()
    print(textwrap.fill(LEGEND, 100))
    remarks = notes(results)
    for remark in remarks:
        print(textwrap.fill(remark, 100, initial_indent="note: ", subsequent_indent="  "))
    print()
    for c in checks:
        print(f"{'ok  ' if c['ok'] else 'MISS'} {c['scenario']}: {c['target']}: {c['value']}")
    (results_dir / "results.json").write_text(
        json.dumps(
            {"meta": meta, "scenarios": scenarios, "results": results, "checks": checks}, indent=1
        )
    )
    (results_dir / "results.md").write_text(markdown(rows, checks, meta, remarks))
    print(f"\nresults: {results_dir}/results.json, results.md ({meta['total time']})")
    return 0 if checks and all(c["ok"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
