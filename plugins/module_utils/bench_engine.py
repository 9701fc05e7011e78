# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load engine of bench_run: an aiohttp client for OpenAI-compatible endpoints.

``run(spec) -> dict`` is the whole contract (the ``make bench`` harness and other modules call it):
``spec`` holds bench_run's option names (missing ones take the module's defaults), plus
``return_records`` (bool) and ``run_id`` (str, else random). It runs its own event loop
(``asyncio.run``) and returns ``{"percentile_method", "run_id", "levels": [...],
"levels_not_run": [...], "stopped_early": reason or None, "records": [...]}`` (records only with
``return_records``). ``plan(spec)`` validates the same spec and describes the run without
sending anything (bench_run's check mode).

How it loads the server:

- one ``ClientSession`` and ``TCPConnector`` for the run (HTTP/1.1 keep-alive; connection limit =
  the largest concurrency, or ``max_concurrency`` in rate mode), a 2 MiB read buffer, no cookie
  jar, the per-request ``timeout`` as the session's total timeout, the request headers (content
  type, accept, authorization, ``headers``) as the session's defaults;
- concurrency mode: ``level`` workers, started ``STAGGER_STEP_S`` apart (at most
  ``STAGGER_MAX_S`` in all), each sending its next request when its previous one ends; a
  shared counter admits requests, so a level never has more than ``level`` in flight and never
  sends more than ``warmup + requests``;
- rate mode: one dispatcher sends at scheduled times (constant or Poisson gaps from a generator
  seeded with ``seed`` and the level index); at ``max_concurrency`` in flight an arrival waits for
  a slot, which shows as schedule lag (``max_schedule_lag_ms``, ``capped_arrivals``);
- a level ends at ``requests`` measured sends or ``duration`` seconds after its first measured
  send, whichever comes first, then waits for the requests in flight; it stops early when, after
  ``error_stop_min_requests`` answers (warm-up included), the error rate passes
  ``max_error_rate``: no later level runs;
- every request carries a unique ``x-request-id`` (``<run_id>-<level index>-<sequence>``); the
  answer's ``id`` is kept as ``response_id`` (vLLM answers ``cmpl-``/``chatcmpl-`` followed by the
  ``x-request-id`` that reached it, which an edge gateway may have replaced).

The hot path only stamps ``time.perf_counter()`` and appends: streams are read with
``readany()`` in a loop; each block of complete lines is read by ``_Stream`` (a few bytes
searches per block in the layout model servers send, a look at every line otherwise). JSON is
decoded only for error events, an id that is not a plain string at its line's start and the last
usage (in vLLM's layout its usage object alone); per block one time and its number of content
chunks are kept, and per request one tuple. Metrics are computed after the level
(``bench_stats``).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import re
import time
from itertools import count as _count
from urllib.parse import urlsplit, urlunsplit

try:
    import aiohttp

    HAS_AIOHTTP = True
    AIOHTTP_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised when aiohttp is absent
    aiohttp = None
    HAS_AIOHTTP = False
    AIOHTTP_IMPORT_ERROR = exc

from ansible_collections.llmd.gke.plugins.module_utils import bench_prompts, bench_stats

DEFAULTS = {
    "url": None,
    "model": None,
    "api": "completions",
    "stream": True,
    "max_tokens": 64,
    "ignore_eos": True,
    "api_key": None,
    "headers": None,
    "extra_body": None,
    "load": "concurrency",
    "levels": [1],
    "arrival": "constant",
    "max_concurrency": 256,
    "duration": None,
    "requests": None,
    "warmup_requests": 0,
    "warmup_seconds": 0.0,
    "timeout": 60.0,
    "max_error_rate": 0.5,
    "error_stop_min_requests": 20,
    "prompts": None,
    "seed": 0,
    "run_id": None,
    "return_records": False,
}
RECORD_FIELDS = (
    "request_id",
    "level_index",
    "level",
    "warmup",
    "prefix_group",
    "scheduled_s",
    "start_s",
    "status",
    "error",
    "e2e_ms",
    "ttft_ms",
    "tpot_ms",
    "itl_mean_ms",
    "input_tokens",
    "output_tokens",
    "endpoint",
    "response_id",
)
ENDPOINT_HEADER = "x-gateway-destination-endpoint"
STAGGER_STEP_S = 0.001
STAGGER_MAX_S = 0.1
READ_BUFSIZE = 2**21
EXCERPT = 300
REDACTED = "********"


class BenchError(ValueError):
    """A spec that cannot run (bad option); the message names the option and the fix."""


# ------------------------------------------------------------------------------ spec
def normalize(spec: dict) -> dict:
    """The spec with defaults filled in and checked; BenchError on a bad option."""
    unknown = set(spec) - set(DEFAULTS) - {"slo", "fail_on_slo", "fail_on_error_stop"}
    unknown -= {"results_dir", "return_records"}
    if unknown:
        raise BenchError("unknown option(s): " + ", ".join(sorted(unknown)))
    out = dict(DEFAULTS)
    out.update({k: v for k, v in spec.items() if v is not None})
    if not out["url"] or not isinstance(out["url"], str):
        raise BenchError("url is required: the base URL of the OpenAI-compatible server")
    parts = urlsplit(out["url"])
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BenchError(f"url must be http(s)://host[:port][/prefix], got {safe_url(out['url'])}")
    if not out["model"]:
        raise BenchError("model is required: the served model name (GET /v1/models lists it)")
    if out["api"] not in ("completions", "chat"):
        raise BenchError("api must be completions or chat")
    if out["load"] not in ("concurrency", "rate"):
        raise BenchError("load must be concurrency or rate")
    if out["arrival"] not in ("constant", "poisson"):
        raise BenchError("arrival must be constant or poisson")
    levels = out["levels"]
    if not isinstance(levels, (list, tuple)) or not levels:
        raise BenchError("levels must be a non-empty list of numbers")
    try:
        levels = [float(x) for x in levels]
    except (TypeError, ValueError):
        raise BenchError("levels must be numbers") from None
    if out["load"] == "concurrency":
        if any(x < 1 or x != int(x) for x in levels):
            raise BenchError("with load=concurrency, levels are whole numbers of 1 or more")
        levels = [int(x) for x in levels]
    elif any(x <= 0 or math.isinf(x) or math.isnan(x) for x in levels):
        raise BenchError("with load=rate, levels are request rates (req/s) above 0")
    out["levels"] = levels
    if out["duration"] is None and out["requests"] is None:
        raise BenchError("set duration (seconds per level) or requests (per level), or both")
    if out["duration"] is not None and float(out["duration"]) <= 0:
        raise BenchError("duration must be above 0 seconds")
    if out["requests"] is not None and int(out["requests"]) < 1:
        raise BenchError("requests must be 1 or more")
    for name in ("max_tokens", "max_concurrency", "error_stop_min_requests"):
        if int(out[name]) < 1:
            raise BenchError(f"{name} must be 1 or more")
    if int(out["warmup_requests"]) < 0 or float(out["warmup_seconds"]) < 0:
        raise BenchError("warmup_requests and warmup_seconds must be 0 or more")
    if float(out["timeout"]) <= 0:
        raise BenchError("timeout must be above 0 seconds")
    if not 0 <= float(out["max_error_rate"]) <= 1:
        raise BenchError("max_error_rate must be between 0 and 1")
    if out["headers"] is not None and not isinstance(out["headers"], dict):
        raise BenchError("headers must be a dict of header names and values")
    if out["extra_body"] is not None and not isinstance(out["extra_body"], dict):
        raise BenchError("extra_body must be a dict")
    return out


def safe_url(url: str) -> str:
    """The URL without user:password@."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        parts = parts._replace(netloc=host)
    return urlunsplit(parts)


def endpoint_url(url: str, api: str) -> str:
    base = url.rstrip("/")
    if base.endswith("/v1"):
        base = base[:-3]
    return base + ("/v1/chat/completions" if api == "chat" else "/v1/completions")


def secrets_of(spec: dict) -> list[str]:
    """Values that must never appear in output: the API key and every header value."""
    values = [spec.get("api_key")] + [str(v) for v in (spec.get("headers") or {}).values()]
    return [v for v in values if v]


def redact(text: str, secrets: list[str]) -> str:
    for value in secrets:
        text = text.replace(value, REDACTED)
    return text


def request_bodies(spec: dict, prompts: list) -> list[bytes]:
    """One pre-encoded JSON body per prompt."""
    chat = spec["api"] == "chat"
    common: dict = {"model": spec["model"], "stream": bool(spec["stream"])}
    if spec["stream"]:
        common["stream_options"] = {"include_usage": True, "continuous_usage_stats": True}
    if spec["ignore_eos"]:
        common["ignore_eos"] = True
    bodies = []
    for prompt in prompts:
        body = dict(common)
        if chat:
            body["messages"] = bench_prompts.prompt_messages(prompt)
        else:
            body["prompt"] = bench_prompts.prompt_text(prompt)
        body["max_tokens"] = prompt.max_tokens or int(spec["max_tokens"])
        body.update(spec["extra_body"] or {})
        bodies.append(json.dumps(body, separators=(",", ":")).encode())
    return bodies


def arrival_offsets(rate: float, arrival: str, seed: int, level_index: int):
    """Send times (seconds from the level's start) of a rate level: 0, then constant 1/rate gaps
    or exponential gaps (Poisson process) from a generator seeded by ``seed`` and the level."""
    if arrival == "constant":
        gap = 1.0 / rate
        for k in _count():
            yield k * gap
    rng = random.Random(f"bench-arrivals-{seed}-{level_index}")
    t = 0.0
    while True:
        yield t
        t += rng.expovariate(rate)


def level_label(load: str, level) -> str:
    return f"concurrency={level}" if load == "concurrency" else f"rate={level:g}/s"


def plan(spec: dict) -> dict:
    """What ``run`` would do, without sending anything (check mode)."""
    spec = normalize(spec)
    prompts = bench_prompts.build_prompts(spec["prompts"], int(spec["seed"]))
    levels = []
    for index, level in enumerate(spec["levels"]):
        levels.append(
            {
                "label": level_label(spec["load"], level),
                "level_index": index,
                "level": level,
                "requests": spec["requests"],
                "duration_s": spec["duration"],
                "warmup_requests": int(spec["warmup_requests"]),
                "warmup_seconds": float(spec["warmup_seconds"]),
                "max_in_flight": level
                if spec["load"] == "concurrency"
                else spec["max_concurrency"],
            }
        )
    max_requests = None
    if spec["requests"] is not None:
        max_requests = len(spec["levels"]) * int(spec["requests"])
    return {
        "endpoint": safe_url(endpoint_url(spec["url"], spec["api"])),
        "model": spec["model"],
        "api": spec["api"],
        "stream": bool(spec["stream"]),
        "max_tokens": int(spec["max_tokens"]),
        "ignore_eos": bool(spec["ignore_eos"]),
        "load": spec["load"],
        "arrival": spec["arrival"] if spec["load"] == "rate" else None,
        "timeout_s": float(spec["timeout"]),
        "levels": levels,
        "max_measured_requests": max_requests,
        "prompts": bench_prompts.prompt_stats(prompts, spec["prompts"]),
        "seed": int(spec["seed"]),
        "header_names": sorted((spec["headers"] or {}).keys()),
        "api_key": bool(spec["api_key"]),
    }


# ------------------------------------------------------------------------------ engine
class _Level:
    """State of one load level while it runs (admission counters and the raw results)."""

    __slots__ = (
        "capped",
        "deadline",
        "done",
        "duration",
        "failed",
        "index",
        "level",
        "limit",
        "measure_t0",
        "measured",
        "prefix",
        "raw",
        "seq",
        "stop",
        "t0",
        "warmup_requests",
        "warmup_seconds",
    )

    def __init__(self, spec: dict, index: int, level, prefix: str) -> None:
        self.index, self.level, self.prefix = index, level, prefix
        self.raw: list[tuple] = []
        self.seq = 0
        self.measured = 0
        self.done = 0
        self.failed = 0
        self.capped = 0
        self.stop: str | None = None
        self.t0 = time.perf_counter()
        self.measure_t0: float | None = None
        self.deadline = math.inf
        self.limit = int(spec["requests"]) if spec["requests"] is not None else math.inf
        self.duration = float(spec["duration"]) if spec["duration"] is not None else None
        self.warmup_requests = int(spec["warmup_requests"])
        self.warmup_seconds = float(spec["warmup_seconds"])

    def admit(self, now: float):
        """None when the level sends nothing more, else whether the next request is warm-up."""
        if self.stop is not None:
            return None
        warm = self.seq < self.warmup_requests or now - self.t0 < self.warmup_seconds
        if not warm:
            if self.measure_t0 is None:
                self.measure_t0 = now
                if self.duration is not None:
                    self.deadline = now + self.duration
            elif now >= self.deadline:
                return None
            if self.measured >= self.limit:
                return None
            self.measured += 1
        self.seq += 1
        return warm

    def ended(self, now: float) -> bool:
        """Whether no request can be admitted any more (for the rate dispatcher)."""
        return self.stop is not None or (
            self.measure_t0 is not None and (now >= self.deadline or self.measured >= self.limit)
        )


class _Context:
    """What every level of a run shares."""

    __slots__ = ("bodies", "headers", "prompts", "secrets", "session", "spec", "t0", "url")

    def __init__(self, spec: dict, prompts: list, bodies: list[bytes]) -> None:
        self.spec, self.prompts, self.bodies = spec, prompts, bodies
        self.secrets = secrets_of(spec)
        self.url = endpoint_url(spec["url"], spec["api"])
        headers = {"Content-Type": "application/json"}
        headers["Accept"] = "text/event-stream" if spec["stream"] else "application/json"
        if spec["api_key"]:
            headers["Authorization"] = f"Bearer {spec['api_key']}"
        headers.update({str(k): str(v) for k, v in (spec["headers"] or {}).items()})
        self.headers = headers
        self.session = None
        self.t0 = time.perf_counter()


class _Invalid(Exception):
    """A 2xx answer that is not a valid completion (bad JSON, an error event, no [DONE])."""


# SSE events are examined with bytes searches, not parsed: a JSON string cannot contain an
# unescaped quote or a raw newline, so these keys only match keys and a line is one event. Text: a
# non-empty completion text, chat content or reasoning. A data line that mentions "error", the
# first line with "id" (unless it starts with it as a plain string) and the last line with usage
# are parsed with json.loads.
_TEXT = re.compile(rb'"(?:text|content|reasoning_content|reasoning)":\s*"(?!")')
_CHOICE = re.compile(rb'"choices":\s*\[\s*\{')
_USAGE_TOKENS = re.compile(rb'"completion_tokens":\s*(\d+)')
_ID = re.compile(rb'\{"id":"([^"\\]*)",')
_ID_HEAD = b'data: {"id":"'  # a content line that starts with its id (vLLM, the bench server)
_USAGE_END = b"}}\n\ndata: [DONE]\n\n"  # the usage object, its line's end, [DONE]
_DECODE = json.JSONDecoder().raw_decode


def _loads(payload: bytes):
    """``json.loads`` of a stripped UTF-8 payload, without its encoding detection."""
    text = payload.decode()
    obj, end = _DECODE(text)
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return obj


def _answer_id(payload: bytes):
    """The ``id`` of a data line's JSON object: read from its start when the object begins with
    it as a plain string (``{"id":"cmpl-..",``: vLLM's layout), else decoded."""
    match = _ID.match(payload)
    if match is not None:
        return match.group(1).decode()
    return _loads(payload).get("id")


def _plain_id_end(data: bytes, pos: int) -> int:
    """Where the id of the line at ``pos`` ends (its closing quote) when the line starts with it
    as a plain string (``data: {"id":"..."``, no escape), else -1."""
    if not data.startswith(_ID_HEAD, pos):
        return -1
    at = pos + len(_ID_HEAD)
    end = data.find(b'"', at)
    if end < 0 or data.find(b"\\", at, end) >= 0:
        return -1
    return end


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_error_event(obj) -> None:
    if isinstance(obj, dict) and obj.get("error") and not obj.get("choices"):
        raise _Invalid(f"error event: {obj['error']}"[:EXCERPT])


class _Stream:
    """The events of one SSE answer, read block by block as they arrive.

    Per block of complete lines: the time it arrived and how many content chunks it held
    (``times``, ``counts``); per content chunk: its ``usage.completion_tokens`` or None
    (``cums``; None too inside a run of continuous usage, whose lines arrived together:
    ``bench_stats`` needs the counts of each block's first and last chunk only). A chunk is
    content when it carries non-empty text (``_TEXT``) or, with continuous usage, more
    completion tokens than the chunk before and a choice.

    Two readers give the same result (the unit tests compare them on every split of a stream).
    ``_lines`` looks at every line (any SSE layout: CRLF, comments, other fields, spaces).
    ``_run`` reads a run of lines in the layout model servers send: every content event of one
    answer starts with the same bytes up to its text (``data: {"id":"cmpl-..",...,"text":"``:
    the ``prefix``, learnt from the first content line ``_lines`` reads), and events are
    separated by one blank line. A count of ``"\n\n" + prefix`` and of ``"\ndata:"`` before the
    last one's line end proves the run (other lines are no chunks for ``_lines`` either); a few
    searches of it rule out what would make ``_lines`` do more than count each line: an empty
    text, an id not read yet, and "error" when the prefix has no choice (a line with a choice
    is never an error event); with usage in the run (continuous usage) the counts of its first
    and last line are read. ``_usage_event`` reads what follows the content lines: in vLLM's
    layout (the usage event: the content lines' bytes up to ``"choices":[``, then
    ``],"usage":{...}}``, then [DONE]) it decodes the usage object alone; anything else (another
    layout, [DONE] in a later read) goes to ``_lines``. The next answer of the same server
    starts from the last one's ``shape`` (its content lines' bytes after the id): a first line
    with that shape gives the prefix and the id without ``_lines``. Per block the cost is a few
    bytes searches whether it holds one event (a server that spaces its events) or many (a busy
    client), and no Python loop per event.
    """

    __slots__ = (
        "answer_id",
        "cums",
        "counts",
        "done",
        "last_ct",
        "line_start",
        "no_choice",
        "prefix",
        "run",
        "shape",
        "tail",
        "times",
        "usage",
        "usage_line",
        "usage_start",
    )

    def __init__(self, shape=None) -> None:
        self.shape = shape  # (the prefix after its id, no_choice) of the answer before
        self.times: list[float] = []
        self.counts: list[int] = []
        self.cums: list = []
        self.done = False
        self.answer_id = None
        self.last_ct = 0
        self.usage_line = None
        self.usage = None  # usage_line's usage, when _end decoded it
        self.usage_start = None  # b"\n\n" + the usage event's bytes up to its usage object
        self.tail = b""
        self.prefix = None  # the bytes every content line starts with, up to its text
        self.run = None  # b"\n\n" + prefix
        self.line_start = None  # b"\n" + prefix
        self.no_choice = True  # whether the prefix lacks "choices":[{ (an error event could)

    def feed(self, received: bytes, now: float) -> None:
        """Read the complete lines of ``received`` (after what was left of the last block)."""
        if self.tail:
            received = self.tail + received
            self.tail = b""
        if received[-1] != 10:
            cut = received.rfind(b"\n") + 1
            self.tail = received[cut:]
            if not cut:
                return
            received = received[:cut]
        found = 0
        data = received
        size = len(data)
        pos = 0  # offsets, not slices: a block is not copied to read it
        while True:
            prefix = self.prefix
            if prefix is None:  # a line at a time until the prefix is known
                if self.shape is not None and self._shaped(data, pos):
                    continue
                cut = data.find(b"\n", pos) + 1
                if cut >= size - 1:
                    found += self._lines(data[pos:] if pos else data)
                    break
                if data[cut] == 10:  # and the blank line after it
                    cut += 1
            elif data.startswith(prefix, pos):
                run = self._run(data, pos)
                if run is None:
                    found += self._lines(data[pos:] if pos else data)
                    break
                found += run[0]
                pos = run[1]
                if size - pos <= 2:  # what is left: the last line's end, a blank line
                    break
                continue
            else:  # up to the next line with the prefix
                cut = data.find(self.line_start, pos) + 1
                if not cut:
                    if not self._usage_event(data, pos):
                        found += self._lines(data[pos:] if pos else data)
                    break
            found += self._lines(data[pos:cut])
            pos = cut
        if found:
            self.times.append(now)
            self.counts.append(found)

    def _run(self, data: bytes, pos: int):
        """(content chunks, end) of the run of content lines that starts at ``data[pos]``
        (``end``: the index of the newline that ends the run's last line), or None when
        ``_lines`` must read them (see the class)."""
        size = len(self.prefix)
        if data[pos + size] == 34:  # an empty text: "text":""
            return None
        end = data.find(b"\n", pos + size)
        if end + 3 >= len(data):  # one line (a server that spaces its events)
            more, last = 0, pos
        else:
            run = self.run
            more = data.count(run, end)
            if more:
                last = data.rfind(run, end) + 2  # where the run's last line starts
                end = data.find(b"\n", last + size)
                if data.count(b"\ndata:", pos, end) != more:
                    return None  # another data line among the run's (other lines: no chunk)
                if data.find(run + b'"', pos, end) >= 0:
                    return None  # an empty text
            else:
                last = pos
        if self.no_choice and data.find(b'"error"', pos, end) >= 0:
            return None  # a line with a choice is never an error event
        if self.answer_id is None and data.find(b'"id"', pos, end) >= 0:
            return None
        if data.find(b'_tokens"', pos, end) < 0:  # no usage in the run
            self.cums += [None] * (more + 1)
            return more + 1, end
        # usage in the run's lines (continuous usage): the counts of its first and last line. Its
        # lines arrive together, so the metrics need no other (bench_stats._token_prefix); the
        # lines between count as chunks with no count read (None), as _lines counts a line
        # without usage.
        first = _USAGE_TOKENS.search(data, pos, data.find(b"\n", pos))
        final = _USAGE_TOKENS.search(data, last, end) if more else first
        if first is None or final is None:
            return None
        ct = int(final.group(1))
        if more:
            self.cums += [int(first.group(1)), *([None] * (more - 1)), ct]
        else:
            self.cums.append(ct)
        self.last_ct = ct
        self.usage_line = data[last + 5 : end].strip()
        self.usage = None
        return more + 1, end

    def _shaped(self, data: bytes, pos: int) -> bool:
        """Whether the line at ``pos`` has the shape of the last answer's content lines: its
        id as a plain string, then the same bytes up to the text (the model server answers every
        request alike); then it is the prefix of this answer, and its id the answer's id."""
        end = _plain_id_end(data, pos)
        rest, no_choice, usage_rest = self.shape
        if end < 0 or not data.startswith(rest, end):
            return False
        self.answer_id = data[pos + len(_ID_HEAD) : end].decode()
        self._set_prefix(data[pos : end + len(rest)], no_choice, usage_rest, end - pos)
        return True

    def _usage_event(self, data: bytes, pos: int) -> bool:
        """Whether ``data[pos:]``, what follows the answer's content lines, was read here: in
        the layout of vLLM and the bench server (the usage event: the content lines' bytes up to
        ``"choices":[``, then ``],"usage":{...}}``, then [DONE], ending the block) only the usage
        object is decoded, as the rest of that line is known bytes with no text, choice or error
        in them. Anything else is left to ``_lines`` (it holds no content chunk here either)."""
        start = self.usage_start
        if start is None or not data.startswith(start, pos) or not data.endswith(_USAGE_END):
            return False
        at = pos + len(start)
        stop = len(data) - len(_USAGE_END) + 1  # after the usage object
        match = _USAGE_TOKENS.search(data, at, stop)
        if match is None or data.find(b"\n", at, stop) >= 0:
            return False
        text = data[at:stop].decode()
        try:
            usage, used = _DECODE(text)
        except ValueError:
            return False
        # numbers only: no text, choice or error in it, and nothing else in the line
        if used != len(text) or not isinstance(usage, dict):
            return False
        if not all(map(_is_count, usage.values())):
            return False
        self.last_ct = int(match.group(1))
        self.usage_line = data[pos + 8 : stop + 1]  # the line's JSON object
        self.usage = usage
        self.done = True
        return True

    def _learn(self, line: bytes, key: int, size: int) -> None:
        """The prefix of the content lines to come: ``line`` up to its text's opening quote
        (``size``); ``key``: where the text's key starts. And the shape of the answers to come
        when the line starts with its id as a plain string."""
        prefix = line[:size]
        no_choice = _CHOICE.search(prefix) is None
        end = _plain_id_end(prefix, 0)
        if end < 0:
            self._set_prefix(prefix, no_choice)
            return
        rest = prefix[end:]
        # the usage event: the same bytes up to "choices":[, no usage or error before
        at = rest.find(b'"choices":[')
        usage_rest = None
        if at > 0 and b'_tokens"' not in rest and b'"error"' not in rest:
            usage_rest = rest[: at + 11] + b'],"usage":'
        self.shape = (rest, no_choice, usage_rest)
        self._set_prefix(prefix, no_choice, usage_rest, end)

    def _set_prefix(
        self, prefix: bytes, no_choice: bool, usage_rest: bytes | None = None, id_end: int = 0
    ) -> None:
        """The prefix and what is built from it; with ``usage_rest`` (the shape's usage event
        after the id) the bytes the usage event starts with (``id_end``: the id's end in it)."""
        self.usage_start = None if usage_rest is None else b"\n\n" + prefix[:id_end] + usage_rest
        self.prefix = prefix
        self.line_start = b"\n" + prefix
        self.run = b"\n\n" + prefix
        self.no_choice = no_choice

    def _lines(self, data: bytes) -> int:
        """Content chunks in ``data``, every line examined (any SSE layout)."""
        found = 0
        cums = self.cums
        for line in data.split(b"\n"):
            if not line or not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload[:1] != b"{":
                if payload == b"[DONE]":
                    self.done = True
                    continue
                raise _Invalid(f"data line is not a JSON object: {payload[:80]!r}")
            if b'"error"' in payload:
                _check_error_event(_loads(payload))
            if self.answer_id is None and b'"id"' in payload:
                self.answer_id = _answer_id(payload)
            ct = None
            if b'"completion_tokens"' in payload:
                match = _USAGE_TOKENS.search(payload)
                if match:
                    ct = int(match.group(1))
                    self.usage_line = payload
                    self.usage = None
            text = _TEXT.search(payload)
            if text or (ct is not None and ct > self.last_ct and _CHOICE.search(payload)):
                found += 1
                cums.append(ct)
                if text and (self.prefix is None or not line.startswith(self.prefix)):
                    lead = len(line) - len(line[5:].lstrip())
                    self._learn(line, lead + text.start(), lead + text.end())
            if ct is not None:
                self.last_ct = ct
        return found


async def _run(spec: dict, prompts: list, bodies: list[bytes]) -> dict:
    run_id = spec["run_id"] or os.urandom(4).hex()
    ctx = _Context(spec, prompts, bodies)
    concurrency = spec["load"] == "concurrency"
    limit = max(spec["levels"]) if concurrency else int(spec["max_concurrency"])
    ctx.session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=int(limit), limit_per_host=0),
        timeout=aiohttp.ClientTimeout(total=float(spec["timeout"])),
        read_bufsize=READ_BUFSIZE,
        cookie_jar=aiohttp.DummyCookieJar(),
        headers=ctx.headers,
    )
    ctx.t0 = time.perf_counter()
    levels, records = [], []
    stopped, not_run = None, []
    try:
        for index, level in enumerate(spec["levels"]):
            if stopped is not None:
                not_run.append(level)
                continue
            state = _Level(spec, index, level, f"{run_id}-{index}-")
            await (_concurrency_level if concurrency else _rate_level)(ctx, state)
            summary, level_records = _analyse(ctx, state)
            levels.append(summary)
            if spec["return_records"]:
                records.extend(level_records)
            if state.stop is not None:
                stopped = f"{summary['label']}: {state.stop}"
    finally:
        await ctx.session.close()
    result = {
        "percentile_method": bench_stats.PERCENTILE_METHOD,
        "run_id": run_id,
        "levels": levels,
        "levels_not_run": not_run,
        "stopped_early": stopped,
    }
    if spec["return_records"]:
        result["records"] = records
    return result


def _sender(ctx: _Context, state: _Level):
    """The coroutine function that sends request ``seq`` and appends its raw tuple."""
    spec, bodies, url, prefix = ctx.spec, ctx.bodies, ctx.url, state.prefix
    stream = bool(spec["stream"])
    nbodies = len(bodies)
    loads = json.loads
    perf = time.perf_counter
    raw_append = state.raw.append
    max_error_rate = float(spec["max_error_rate"])
    min_requests = int(spec["error_stop_min_requests"])
    timeout_text = f"no complete answer within the timeout of {spec['timeout']} s"
    post = ctx.session.post
    client_error = aiohttp.ClientError
    shape = None  # the content lines' shape of the last answer read (see _Stream._shaped)

    async def send(seq: int, warm: bool, t_sched) -> None:
        nonlocal shape
        headers = {"x-request-id": prefix + str(seq)}  # the others: the session's defaults
        body = bodies[seq % nbodies]
        status = endpoint = detail = error = answer_id = None
        times = counts = cums = usage = sse = None
        t0 = perf()
        try:
            async with post(url, data=body, headers=headers) as resp:
                status = resp.status
                endpoint = resp.headers.get(ENDPOINT_HEADER)
                if status < 200 or status >= 300:
                    error = f"http_{status}"
                    detail = (await resp.read())[:EXCERPT].decode("utf-8", "replace")
                elif stream:
                    sse = _Stream(shape)
                    feed = sse.feed
                    readany = resp.content.readany
                    received = await readany()
                    while received:
                        feed(received, perf())
                        received = await readany()
                    if not sse.done:
                        raise _Invalid("the stream ended without data: [DONE]")
                    times, counts, cums, shape = sse.times, sse.counts, sse.cums, sse.shape
                    usage = sse.usage
                    if usage is None and sse.usage_line is not None:
                        usage = _loads(sse.usage_line).get("usage")
                else:
                    obj = loads(await resp.read())
                    if not isinstance(obj, dict) or not isinstance(obj.get("choices"), list):
                        raise _Invalid("no choices in the response body")
                    usage = obj.get("usage")
                    answer_id = obj.get("id")
        except TimeoutError:
            error, detail = "timeout", timeout_text
        except _Invalid as exc:
            error, detail = "invalid_response", str(exc)
        except (ValueError, AttributeError, TypeError, KeyError, IndexError) as exc:
            error, detail = "invalid_response", f"{type(exc).__name__}: {exc}"[:EXCERPT]
        except (client_error, OSError) as exc:
            error, detail = "connection", f"{type(exc).__name__}: {exc}"[:EXCERPT]
        t1 = perf()
        if sse is not None:
            answer_id = sse.answer_id
        raw_append(
            (
                seq,
                warm,
                t_sched,
                t0,
                t1,
                status,
                error,
                times,
                cums,
                usage,
                endpoint,
                detail,
                answer_id,
                counts,
            )
        )
        state.done += 1
        if error is not None:
            state.failed += 1
            if (
                state.stop is None
                and state.done >= min_requests
                and state.failed > max_error_rate * state.done
            ):
                state.stop = (
                    f"error rate {state.failed}/{state.done} = {state.failed / state.done:.2f}"
                    f" passed max_error_rate {max_error_rate:g}"
                    f" (checked from {min_requests} answers on, warm-up included)"
                )

    return send


async def _concurrency_level(ctx: _Context, state: _Level) -> None:
    send = _sender(ctx, state)
    perf = time.perf_counter
    admit = state.admit
    level = state.level
    step = min(STAGGER_STEP_S, STAGGER_MAX_S / level)

    async def worker(delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        while True:
            warm = admit(perf())
            if warm is None:
                return
            await send(state.seq - 1, warm, None)

    await asyncio.gather(*(worker(i * step) for i in range(level)))


async def _rate_level(ctx: _Context, state: _Level) -> None:
    send = _sender(ctx, state)
    spec = ctx.spec
    perf = time.perf_counter
    slots = asyncio.Semaphore(int(spec["max_concurrency"]))
    tasks: set = set()

    async def one(seq: int, warm: bool, due: float) -> None:
        try:
            await send(seq, warm, due)
        finally:
            slots.release()

    base = perf()
    offsets = arrival_offsets(float(state.level), spec["arrival"], int(spec["seed"]), state.index)
    for offset in offsets:
        due = base + offset
        if state.ended(due):
            break
        now = perf()
        if due > now:
            await asyncio.sleep(due - now)
        if slots.locked():
            state.capped += 1
        await slots.acquire()
        warm = state.admit(due)
        if warm is None:
            slots.release()
            break
        task = asyncio.create_task(one(state.seq - 1, warm, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)


def _analyse(ctx: _Context, state: _Level):
    """The level's summary and its per-request records (after the level)."""
    spec, prompts, run_t0 = ctx.spec, ctx.prompts, ctx.t0
    records = []
    itl_values: list[float] = []
    itl_weights: list[int] = []
    samples: dict[str, str] = {}
    first = last = None
    lags = []
    nprompts = len(prompts)
    for row in sorted(state.raw, key=lambda r: r[0]):
        seq, warm, t_sched, t0, t1, status, error, times, cums, answer, endpoint, detail = row[:12]
        counts = row[13]
        usage = answer if isinstance(answer, dict) else {}
        in_tokens = usage.get("prompt_tokens")
        out_tokens = usage.get("completion_tokens")
        ttft = tpot = itl_mean = None
        if error is None:
            ttft, tpot, values, weights, out_tokens = bench_stats.request_metrics(
                t0, t1, times, cums, out_tokens, counts=counts
            )
            if weights:
                total = math.fsum(v * w for v, w in zip(values, weights, strict=True))
                itl_mean = round(total / sum(weights), 3)
                if not warm:
                    itl_values.extend(values)
                    itl_weights.extend(weights)
        elif detail and error not in samples:
            samples[error] = redact(detail, ctx.secrets)
        if not warm:
            first = t0 if first is None or t0 < first else first
            last = t1 if last is None or t1 > last else last
            if t_sched is not None:
                lags.append(t0 - t_sched)
        records.append(
            {
                "request_id": state.prefix + str(seq),
                "level_index": state.index,
                "level": state.level,
                "warmup": warm,
                "prefix_group": prompts[seq % nprompts].group,
                "scheduled_s": None if t_sched is None else round(t_sched - run_t0, 6),
                "start_s": round(t0 - run_t0, 6),
                "status": status,
                "error": error,
                "e2e_ms": round((t1 - t0) * 1000.0, 3),
                "ttft_ms": None if ttft is None else round(ttft, 3),
                "tpot_ms": None if tpot is None else round(tpot, 3),
                "itl_mean_ms": itl_mean,
                "input_tokens": in_tokens,
                "output_tokens": out_tokens,
                "endpoint": endpoint,
                "response_id": row[12] if isinstance(row[12], str) else None,
            }
        )
    header = {
        "label": level_label(spec["load"], state.level),
        "load": spec["load"],
        "level": state.level,
        "level_index": state.index,
        "warmup_sent": sum(1 for r in records if r["warmup"]),
        "stopped_early": state.stop,
    }
    span = (last - first) if first is not None else 0.0
    summary = bench_stats.level_summary(header, records, span, itl_values, itl_weights)
    summary["error_samples"] = samples
    if spec["load"] == "rate":
        summary["max_schedule_lag_ms"] = round(max(lags) * 1000.0, 3) if lags else 0.0
        summary["capped_arrivals"] = state.capped
    else:
        summary["max_schedule_lag_ms"] = None
    return summary, records


def run(spec: dict) -> dict:
    """Run the benchmark described by ``spec`` (bench_run's options); see the module docstring."""
    if not HAS_AIOHTTP:
        raise BenchError(f"bench_run needs the aiohttp Python package: {AIOHTTP_IMPORT_ERROR}")
    spec = normalize(spec)
    prompts = bench_prompts.build_prompts(spec["prompts"], int(spec["seed"]))
    bodies = request_bodies(spec, prompts)
    return asyncio.run(_run(spec, prompts, bodies))
