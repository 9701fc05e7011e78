"""bench_engine's SSE reader (``_Stream``) on bytes, without a server: what it reads with runs
of content lines (``_run``, a few bytes searches per block) gives what the line reader
(``_lines``, every line examined) gives, whatever the reads' boundaries; lines a run does not
take go to the line reader; error events, non-JSON data lines and a missing [DONE] stay errors.
And ``bench_stats.request_metrics`` on blocks equals it on the chunks one by one."""

from __future__ import annotations

import json

import pytest

from ansible_collections.llmd.gke.plugins.module_utils import bench_engine as be
from ansible_collections.llmd.gke.plugins.module_utils import bench_stats as bs


def event(obj) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def completion(text, *, rid="cmpl-1", usage=None, reason=None) -> dict:
    obj = {"id": rid, "object": "text_completion", "choices": [{"index": 0, "text": text}]}
    obj["choices"][0]["finish_reason"] = reason
    if usage is not None:
        obj["usage"] = {"prompt_tokens": 3, "completion_tokens": usage}
    return obj


def chat(content, *, usage=None, role=False) -> dict:
    delta = {"role": "assistant", "content": content} if role else {"content": content}
    obj = {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": delta}]}
    if usage is not None:
        obj["usage"] = {"prompt_tokens": 3, "completion_tokens": usage}
    return obj


USAGE_ONLY = {"id": "cmpl-1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}
DONE = b"data: [DONE]\n\n"
# vLLM's completion chunk fields (serving_completion.py: id, object, created, model, choices,
# usage) and its usage event: the content lines' bytes up to "choices":[, then usage
VLLM = {"id": "cmpl-7", "object": "text_completion", "created": 5, "model": "m"}


def vllm(text, reason=None, **top) -> dict:
    choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": reason}
    return {**VLLM, **top, "choices": [choice]}


def vllm_usage(rid="cmpl-7", **extra) -> dict:
    usage = {"prompt_tokens": 3, "total_tokens": 7, "completion_tokens": 4, **extra}
    return {**VLLM, "id": rid, "choices": [], "usage": usage}


STREAMS = {
    # what vLLM sends without continuous usage: content events, a usage-only event, [DONE]
    "completions": b"".join(event(completion(t)) for t in ("a", " b", " c", " d"))
    + event(USAGE_ONLY)
    + DONE,
    # an empty text is no content chunk; no usage at all
    "empty-texts": b"".join(event(completion(t)) for t in ("a", "", "b", "")) + DONE,
    # chat: the role chunk has empty content
    "chat": event(chat("", role=True))
    + b"".join(event(chat(t)) for t in ("x", "y", "z"))
    + event(USAGE_ONLY)
    + DONE,
    # continuous usage: every event has its count (the role chunk 0, a chunk of 2 tokens)
    "continuous": event(chat("", usage=0, role=True))
    + event(chat("x", usage=1))
    + event(chat("yy", usage=3))
    + event(chat("", usage=3))
    + event(USAGE_ONLY)
    + DONE,
    # Python's default separators (spaces), CRLF line ends and a comment: the line reader only
    "pretty-crlf": b": keep-alive\r\n\r\n"
    + json.dumps(completion("a")).encode().join([b"data: ", b"\r\n\r\n"])
    + json.dumps(completion("b")).encode().join([b"data: ", b"\r\n\r\n"])
    + b"data: [DONE]\r\n\r\n",
    # two keys with text in one line (reasoning and content): counted once
    "reasoning": event({"id": "c", "choices": [{"delta": {"reasoning_content": "r"}}]})
    + event({"id": "c", "choices": [{"delta": {"reasoning_content": "s", "content": "t"}}]})
    + event({"id": "c", "choices": [{"delta": {"content": "u"}}]})
    + DONE,
    # two choices in one event (n=2): one content chunk
    "two-choices": event({"id": "c", "choices": [{"text": "a"}, {"text": "b"}]})
    + event(completion("c"))
    + DONE,
    # text that looks like SSE and JSON keys, escaped in the JSON string
    "tricky-text": event(completion('data: {"error": 1, "text": "x"}\n[DONE]'))
    + event(completion("\\n"))
    + DONE,
    # not JSON but the usual layout: a line with two keys and "data: {" inside, one without
    "prefix-twice": b'data: {"text":"a"}data: {"text":"b"}\n\n' + b'data: {"x":1}\n\n' + DONE,
    # a line whose key sits after other bytes than the other lines' key
    "other-prefix": event(completion("a", rid="x"))
    + event(completion("b"))
    + event(completion("", rid="x"))
    + DONE,
    # events after [DONE] are still read, as the line reader does
    "after-done": event(completion("a")) + DONE + event(completion("b")),
    # the layout of the bench server and vLLM: a run of content events, usage, [DONE]
    "run": b"".join(
        event(completion(f" t{i}", reason="length" if i == 5 else None)) for i in range(6)
    )
    + event(USAGE_ONLY)
    + DONE,
    # inside a run: an empty text, an error event, a comment, two blank lines, usage
    "run-empty": b"".join(event(completion(t)) for t in ("a", "b", "", "c", "d")) + DONE,
    "run-error-inside": event(completion("a"))
    + event(completion("b"))
    + event({**completion("c"), "error": None})
    + event(completion("d"))
    + DONE,
    "run-comment": event(completion("a")) + b": ping\n\n" + event(completion("b")) + DONE,
    "run-blank-lines": event(completion("a")) + b"\n" + event(completion("b")) + DONE,
    "run-usage-inside": event(completion("a"))
    + event(completion("b", usage=2))
    + event(completion("c"))
    + DONE,
    # continuous usage (vLLM with continuous_usage_stats): every content line has its count
    "run-continuous": b"".join(event(completion(t, usage=i + 1)) for i, t in enumerate("abcd"))
    + event(USAGE_ONLY)
    + DONE,
    # the text key moves (reasoning, then content): a new prefix is learnt
    "prefix-changes": event({"id": "c", "choices": [{"delta": {"reasoning_content": "r"}}]})
    + event({"id": "c", "choices": [{"delta": {"reasoning_content": "s"}}]})
    + event({"id": "c", "choices": [{"delta": {"content": "t"}}]})
    + event({"id": "c", "choices": [{"delta": {"content": "u"}}]})
    + DONE,
    # the id only after the text, and a NUL byte in a line (not JSON, still read as lines are)
    "id-after-text": event({"choices": [{"text": "a"}], "id": "late"})
    + event({"choices": [{"text": "b"}], "id": "late"})
    + b'data: {"choices":[{"text":"\x00"}]}\n\n'
    + event({"choices": [{"text": "c"}], "id": "late"})
    + DONE,
    # vLLM's layout: the usage event is read from its usage object alone
    "vllm": event(vllm(" a"))
    + event(vllm(" b"))
    + event(vllm(" c", "length"))
    + event(vllm_usage())
    + DONE,
    "vllm-empty-last": b"".join(event(vllm(t)) for t in (" a", " b", ""))
    + event(vllm_usage())
    + DONE,
    "vllm-other-id": b"".join(event(vllm(t, id="cmpl-8")) for t in (" a", " b"))
    + event(vllm_usage("cmpl-8"))
    + DONE,
    # usage objects the usage event's fast path leaves to the line reader
    "vllm-usage-details": event(vllm("a")) + event(vllm_usage(prompt_tokens_details=None)) + DONE,
    "vllm-usage-text": event(vllm("a")) + event(vllm_usage(text="x")) + DONE,
    "vllm-usage-list": event(vllm("a")) + event(vllm_usage(x=[{"text": "y"}])) + DONE,
    "vllm-usage-no-tokens": event(vllm("a"))
    + b'data: {"id":"cmpl-7","object":"text_completion","created":5,"model":"m","choices":[],'
    + b'"usage":{"prompt_tokens":3}}\n\n'
    + DONE,
    "vllm-usage-broken": event(vllm("a"))
    + b'data: {"id":"cmpl-7","object":"text_completion","created":5,"model":"m","choices":[],'
    + b'"usage":{"completion_tokens":4,}}\n\n'
    + DONE,
    "vllm-after-done": event(vllm("a")) + event(vllm_usage()) + DONE + event(vllm("b")),
    "vllm-error-in-prefix": b"".join(event(vllm(t, error=None)) for t in "ab")
    + event({**vllm_usage(), "error": None})
    + DONE,
    # an id with an escape: not read as is
    "vllm-escaped-id": b"".join(event(vllm(t, id='c\\"7')) for t in "ab") + DONE,
    # two choices in a line whose first text is empty
    "run-second-choice": event(completion("a"))
    + event(
        {
            "id": "cmpl-1",
            "object": "text_completion",
            "choices": [{"index": 0, "text": ""}, {"text": "b"}],
        }
    )
    + event(completion("c"))
    + DONE,
}


@pytest.fixture(autouse=True, params=["runs", "lines-only"])
def runs(request, monkeypatch):
    """Every test twice: as the engine reads, and with the line reader alone (no run taken)."""
    if request.param == "lines-only":
        monkeypatch.setattr(be._Stream, "_run", lambda self, data, prefix: None)
    return request.param


def read(chunks, shape=None, **fields) -> be._Stream:
    sse = be._Stream(shape)
    for key, value in fields.items():
        setattr(sse, key, value)
    for now, chunk in enumerate(chunks):
        sse.feed(chunk, float(now))
    return sse


def by_lines(data: bytes) -> be._Stream:
    """The line reader alone on the whole stream (the reference)."""
    sse = be._Stream()
    found = sse._lines(data[: data.rfind(b"\n") + 1])
    if found:
        sse.times.append(0.0)
        sse.counts.append(found)
    return sse


def usage_of(sse: be._Stream):
    usage = sse.usage  # as bench_run takes it: decoded by the reader, else from usage_line
    if usage is None and sse.usage_line is not None:
        usage = be._loads(sse.usage_line).get("usage")
    return usage


def outcome(sse: be._Stream) -> tuple:
    counts = (sum(sse.counts), sse.done, sse.answer_id, sse.usage_line, sse.last_ct)
    return (*counts, usage_of(sse))


def same(sse: be._Stream, reference: be._Stream) -> bool:
    """``sse`` read what the line reader read: the same outcome and the same counts of usage per
    chunk, except that a run of continuous usage leaves the chunks inside a block None (the
    metrics need only each block's first and last chunk: they give the same metrics)."""
    if outcome(sse) != outcome(reference) or len(sse.cums) != len(reference.cums):
        return False
    if any(a is not None and a != b for a, b in zip(sse.cums, reference.cums, strict=True)):
        return False
    start = 0
    for size in sse.counts:  # each block's first and last chunk: as the line reader read them
        for at in (start, start + size - 1):
            if sse.cums[at] != reference.cums[at]:
                return False
        start += size
    usage = usage_of(sse)
    out = usage.get("completion_tokens") if isinstance(usage, dict) else None
    metrics = [
        bs.request_metrics(0.0, 9.0, sse.times, cums, out, counts=sse.counts)
        for cums in (sse.cums, reference.cums)
    ]
    return metrics[0] == metrics[1]


def shape_of(source, data: bytes):
    """The shape the reader starts with: none (a first answer), the shape of another answer
    (vLLM's), or of this stream read once before (a server that answers alike)."""
    if source is None:
        return None
    first = data if source == "self" else STREAMS["vllm"]
    try:
        return read([first]).shape
    except (be._Invalid, ValueError):
        return None


BROKEN = {"vllm-usage-broken"}  # its usage line is not JSON: bench_run's decode raises


@pytest.mark.parametrize("source", [None, "self", "vllm"])
@pytest.mark.parametrize("name", sorted(set(STREAMS) - BROKEN))
def test_one_read_equals_the_line_reader(name, source):
    data = STREAMS[name]
    whole = read([data], shape_of(source, data))
    assert same(whole, by_lines(data))
    assert whole.times == [0.0] and len(whole.counts) == 1  # one block: one time


@pytest.mark.parametrize("source", [None, "self", "vllm"])
@pytest.mark.parametrize("name", sorted(set(STREAMS) - BROKEN))
def test_every_split_into_two_reads_gives_the_same_chunks(name, source):
    data = STREAMS[name]
    reference = by_lines(data)
    shape = shape_of(source, data)
    for cut in range(1, len(data)):
        sse = read([data[:cut], data[cut:]], shape)
        assert same(sse, reference), cut
        assert all(sse.counts) and len(sse.times) == len(sse.counts) <= 2


@pytest.mark.parametrize("source", [None, "self"])
def test_a_usage_line_that_is_not_json_stays_an_error(source):
    data = STREAMS["vllm-usage-broken"]
    sse = read([data], shape_of(source, data))
    assert sse.usage is None and sse.done
    with pytest.raises(ValueError):
        be._loads(sse.usage_line)


def test_the_next_answer_is_read_with_the_shape_of_the_last(monkeypatch, runs):
    if runs == "lines-only":
        pytest.skip("about the fast paths")
    first = read([STREAMS["vllm"]])
    assert first.shape is not None and first.usage == vllm_usage()["usage"]
    data = STREAMS["vllm-other-id"]
    reference = by_lines(data)
    calls = []
    lines = be._Stream._lines
    monkeypatch.setattr(be._Stream, "_lines", lambda self, d: calls.append(d) or lines(self, d))
    sse = read([data], first.shape)
    assert same(sse, reference)
    assert sse.answer_id == "cmpl-8" and sse.usage == vllm_usage()["usage"]
    assert calls == []  # the first line by its shape, the run, the usage event by its object


def test_byte_by_byte_reads_time_each_chunk_when_its_line_ends():
    data = STREAMS["completions"]
    sse = read([data[i : i + 1] for i in range(len(data))])
    assert same(sse, by_lines(data))
    assert sse.counts == [1, 1, 1, 1]
    # each content line completes at its newline: that read's time is the chunk's time
    ends = [i for i in range(len(data)) if data[i : i + 1] == b"\n" and data[i - 1 : i] == b"}"]
    assert sse.times == [float(i) for i in ends[:4]]


def test_expected_counts_of_the_streams(runs):
    assert read([STREAMS["completions"]]).cums == [None] * 4
    assert outcome(read([STREAMS["completions"]]))[:4] == (
        4,
        True,
        "cmpl-1",
        event(USAGE_ONLY)[6:-2],
    )
    assert sum(read([STREAMS["empty-texts"]]).counts) == 2
    assert read([STREAMS["chat"]]).cums == [None] * 3
    # continuous usage in one read: the first line by lines, then a run of three (its first and
    # last line's counts)
    expected = [1, 2, None, 4] if runs == "runs" else [1, 2, 3, 4]
    assert read([STREAMS["run-continuous"]]).cums == expected
    continuous = read([STREAMS["continuous"]])
    assert continuous.cums == [1, 3] and continuous.last_ct == 4
    assert sum(read([STREAMS["pretty-crlf"]]).counts) == 2
    assert sum(read([STREAMS["reasoning"]]).counts) == 3
    assert sum(read([STREAMS["two-choices"]]).counts) == 2
    assert sum(read([STREAMS["tricky-text"]]).counts) == 2
    assert read([STREAMS["tricky-text"]]).done is True


def test_runs_take_the_usual_layout_and_leave_the_rest(runs):
    if runs == "lines-only":
        pytest.skip("about runs")
    usual = b"".join(event(completion(t)) for t in ("a", "b", "c")) + event(USAGE_ONLY) + DONE
    sse = be._Stream()
    assert sse._lines(event(completion("x"))) == 1 and sse.answer_id == "cmpl-1"
    assert sse.prefix == event(completion("x"))[: event(completion("x")).index(b'"x"') + 1]
    end = len(b"".join(event(completion(t)) for t in ("a", "b", "c"))) - 2
    assert sse._run(usual, 0) == (3, end) and usual[end : end + 2] == b"\n\n"
    assert sse._run(event(completion("a")), 0) == (1, len(event(completion("a"))) - 2)
    for other in (
        event(completion("a")) + event(completion("")),  # an empty text in the run
        event(completion("")),
        event(completion("a")) + DONE + event(completion("b")),  # a run after the run
        event(completion("a")) + b'data: {"x":1}\n\n' + event(completion("b")),  # a data line
        event(completion("a")) + b"data: {}\ndata: {}\n\n" + event(completion("b")),  # two lines
        event(completion("a", usage=1)) + event(completion("b")),  # usage not in every line
    ):
        assert sse._run(other, 0) is None, other
    # a line with a choice is never an error event; continuous usage: a count per line
    for taken, cums in (
        (event({**completion("a"), "error": None}), [None]),
        (event(completion("a", usage=1)) + event(completion("b", usage=2)), [1, 2]),
    ):
        before = len(sse.cums)
        assert sse._run(taken, 0) == (len(cums), len(taken) - 2), taken
        assert sse.cums[before:] == cums
    assert be._Stream()._lines(DONE) == 0


def test_a_coalesced_stream_is_read_with_one_run(monkeypatch, runs):
    if runs == "lines-only":
        pytest.skip("about runs")
    data = STREAMS["run"]
    reference = by_lines(data)
    calls = []
    lines = be._Stream._lines
    monkeypatch.setattr(be._Stream, "_lines", lambda self, d: calls.append(d) or lines(self, d))
    sse = read([data])
    assert same(sse, reference)
    # the first line (id, prefix) and the tail (usage, [DONE]) by lines, the 5 others as a run
    assert len(calls) == 2 and calls[0] == event(completion(" t0"))
    assert calls[1].startswith(b"\n\ndata: ") and calls[1].endswith(DONE)


def test_events_read_one_by_one_are_runs_of_one(monkeypatch, runs):
    data = STREAMS["run"]
    events = [e + b"\n\n" for e in data.split(b"\n\n")[:-1]]
    reference = by_lines(data)
    calls = []
    lines = be._Stream._lines
    monkeypatch.setattr(be._Stream, "_lines", lambda self, d: calls.append(d) or lines(self, d))
    sse = read(events)
    assert same(sse, reference)
    assert sse.counts == [1] * 6 and sse.times == [float(i) for i in range(6)]
    # with runs: the line reader reads the first event, the usage event and [DONE] only
    assert len(calls) == (3 if runs == "runs" else 8)


def test_a_data_line_split_across_reads_is_read_once_complete():
    line = event(completion("abc", rid="cmpl-9"))
    sse = read([line[:3], line[3:10], line[10:-1], line[-1:] + DONE])
    assert sse.counts == [1] and sse.times == [2.0] and sse.answer_id == "cmpl-9" and sse.done


def test_usage_only_chunk_is_no_content_but_gives_the_usage():
    sse = read([event(completion("a")), event(USAGE_ONLY), DONE])
    assert sse.counts == [1] and sse.usage_line == event(USAGE_ONLY)[6:-2]
    assert be._loads(sse.usage_line)["usage"]["completion_tokens"] == 4


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (event(completion("a")) + b'data: {"error":{"message":"boom"}}\n\n' + DONE, "boom"),
        (event(completion("a")) + b"data: <html>\n\n" + DONE, "not a JSON object"),
        # a line that mentions "error" is decoded (an id at the line's start is read as is)
        (b'data: {"id":"x","error":{"message":"boom"}\n\n', "JSONDecodeError"),
        (b'data: {"choices":[{"text":"a"}],"id":"x"\n\n', "JSONDecodeError"),
    ],
)
def test_broken_events_raise_as_before(data, message):
    with pytest.raises((be._Invalid, ValueError)) as caught:
        read([data])
    assert message in f"{type(caught.value).__name__}: {caught.value}"


def test_missing_done_is_left_to_the_caller():
    assert read([event(completion("a"))]).done is False
    assert read([event(completion("a")) + b"data: [DONE]"]).done is False  # no newline yet


# ------------------------------------------------------------------------------ metrics on blocks
@pytest.mark.parametrize(
    ("times", "counts", "cums", "usage_out"),
    [
        ([0.1, 0.3], [3, 2], [None] * 5, 10),  # spread: 2 tokens a chunk
        ([0.1, 0.3, 0.35], [1, 3, 1], [None] * 5, 7),  # uneven spread
        ([0.2], [32], [None] * 32, 32),  # everything in one read
        ([0.1, 0.2], [2, 2], [1, 2, 5, 6], 6),  # continuous usage deltas
        ([0.1, 0.2], [2, 2], [1, 1, 5, 6], 6),  # broken series: spread
        ([0.1, 0.4], [1, 2], [None] * 3, None),  # no usage: a token a chunk
    ],
)
def test_request_metrics_on_blocks_equal_metrics_on_chunks(times, counts, cums, usage_out):
    chunk_times = [t for t, n in zip(times, counts, strict=True) for _i in range(n)]
    expected = bs.request_metrics(0.0, 0.5, chunk_times, cums, usage_out)
    got = bs.request_metrics(0.0, 0.5, times, cums, usage_out, counts=counts)
    assert got[:2] == pytest.approx(expected[:2]) and got[4] == expected[4]
    assert bs.summarize_weighted(got[2], got[3]) == bs.summarize_weighted(expected[2], expected[3])
    assert sum(got[3]) == sum(expected[3])
