"""A minimal, fast fake OpenAI server for ``make bench``: it measures load generators, not models.

Serves ``POST /v1/completions`` and ``POST /v1/chat/completions`` (JSON, or SSE when the request
says ``"stream": true``), ``GET /v1/models`` and ``GET /stats`` (requests served so far, by kind,
and the CPU time of this process: the harness checks that a tool sent what it says it sent, and
whether the server, not the client, was the bottleneck). Every reply carries ``usage``.

The reply has ``max_tokens`` tokens (default 16), each the word `` tok``; a stream sends them in
chunks of ``--tokens-per-chunk`` tokens (``max_tokens: 32`` and 1 token per chunk: 32 content
events), then a usage event when ``stream_options.include_usage`` is set, then ``[DONE]``; every
event is its own HTTP chunk and its own socket write, as a model server sends them. As vLLM does
(vllm-project/vllm, vllm/entrypoints/openai/serving_completion.py and serving_chat.py:
``include_continuous_usage = include_usage and continuous_usage_stats``, then ``chunk.usage =
UsageInfo(...)`` on every chunk), with ``stream_options.continuous_usage_stats`` as well every
content event carries the usage so far; the usage object's keys are in the order of vLLM's
``UsageInfo`` (prompt_tokens, total_tokens, completion_tokens).
``--latency-ms`` holds every reply that long before its first byte (800 ms: a slow model of known
latency); ``--itl-ms`` spaces the events of a stream.

Why not aiohttp's web server: it spends ~0.2 ms of CPU on a JSON reply and ~0.7 ms on a 32-event
stream, as much as the aiohttp *client* being measured, so on one core the server would set the
ceiling. This one is an ``asyncio.Protocol`` speaking just enough HTTP/1.1 (keep-alive,
Content-Length request bodies, chunked replies) with reply bytes built once per shape; with
``--uvloop`` (installed in .venv-bench) it costs about 0.1 ms of CPU per JSON reply and 0.4 ms
per 32-event stream (one socket write per event), well under the client's share.

    .venv-bench/bin/python tests/bench/openai_server.py --port 0 --cpu 1 --uvloop [--latency-ms 800]

Prints ``LISTENING <port>`` on stdout when it accepts connections; runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from functools import lru_cache

TOKEN = " tok"
DEFAULT_MAX_TOKENS = 16
MAX_HEADER = 64 * 1024
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 413: "Payload Too Large"}


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _head(status: int, content_type: bytes, length: int | None) -> bytes:
    framing = b"Transfer-Encoding: chunked" if length is None else b"Content-Length: %d" % length
    return b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s\r\n\r\n" % (
        status,
        REASONS[status].encode(),
        content_type,
        framing,
    )


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
    }


def _prompt_tokens(body: dict, chat: bool) -> int:
    """Whitespace words of the prompt (or of every message's content): cheap and deterministic."""
    if chat:
        texts = [m.get("content") for m in body.get("messages") or [] if isinstance(m, dict)]
    else:
        prompt = body.get("prompt", "")
        texts = prompt if isinstance(prompt, list) else [prompt]
    return sum(len(t.split()) for t in texts if isinstance(t, str))


def _ids(chat: bool) -> dict:
    if chat:
        return {"id": "chatcmpl-bench", "object": "chat.completion", "created": 0}
    return {"id": "cmpl-bench", "object": "text_completion", "created": 0}


@lru_cache(maxsize=256)
def _unary_parts(model: str, chat: bool, tokens: int) -> tuple[bytes, bytes]:
    """The JSON reply split around its usage object, the only part that depends on the prompt."""
    text = TOKEN * tokens
    if chat:
        message = {"role": "assistant", "content": text}
        choice = {"index": 0, "message": message, "finish_reason": "length"}
    else:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "length"}
    obj = {**_ids(chat), "model": model, "choices": [choice], "usage": "USAGE"}
    head, tail = _dumps(obj).split(b'"USAGE"')
    return head, tail


@lru_cache(maxsize=256)
def _stream_events(
    model: str, chat: bool, tokens: int, per_chunk: int, prompt_tokens: int | None = None
) -> tuple[bytes, ...]:
    """The content events of one stream, framed as HTTP chunks; with ``prompt_tokens``
    (continuous usage) each carries the usage so far."""
    ids = {**_ids(chat), "model": model}
    if chat:
        ids["object"] = "chat.completion.chunk"
    events = []
    sent = 0
    while sent < tokens:
        n = min(per_chunk, tokens - sent)
        sent += n
        reason = "length" if sent == tokens else None
        if chat:
            delta = (
                {"role": "assistant", "content": TOKEN * n}
                if not events
                else {"content": TOKEN * n}
            )
            choice = {"index": 0, "delta": delta, "finish_reason": reason}
        else:
            choice = {"index": 0, "text": TOKEN * n, "logprobs": None, "finish_reason": reason}
        obj = {**ids, "choices": [choice]}
        if prompt_tokens is not None:
            obj["usage"] = _usage(prompt_tokens, sent)
        events.append(_chunk(b"data: " + _dumps(obj) + b"\n\n"))
    return tuple(events)


class Settings:
    def __init__(self, latency_ms: float, itl_ms: float, tokens_per_chunk: int, model: str) -> None:
        self.latency = latency_ms / 1000
        self.itl = itl_ms / 1000
        self.per_chunk = max(1, tokens_per_chunk)
        self.model = model
        self.counts = {"completions": 0, "chat": 0, "stream": 0, "errors": 0, "connections": 0}


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection: requests are parsed and answered one at a time, in order."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a delayed or streamed reply is being written: parse no further

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.s.counts["connections"] += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._drain()

    def _drain(self) -> None:
        while self.transport is not None and not self.busy:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEADER:
                    self._reply(413, b"text/plain", b"header too large")
                    self.transport.close()
                return
            head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            method, path = (head[0].split(" ") + ["", ""])[:2]
            length = 0
            for line in head[1:]:
                name, _sep, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip() or 0)
            if len(self.buf) < end + 4 + length:
                return
            body = bytes(self.buf[end + 4 : end + 4 + length])
            del self.buf[: end + 4 + length]
            self._dispatch(method, path, body)

    def _reply(self, status: int, content_type: bytes, payload: bytes) -> None:
        if self.transport is not None:
            self.transport.write(_head(status, content_type, len(payload)) + payload)

    def _json(self, status: int, obj: object) -> None:
        self._reply(status, b"application/json", _dumps(obj))

    def _dispatch(self, method: str, path: str, raw: bytes) -> None:
        path = path.split("?", 1)[0]
        if method == "POST" and path in ("/v1/completions", "/v1/chat/completions"):
            chat = path == "/v1/chat/completions"
            try:
                body = json.loads(raw)
                tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 0)
            except (ValueError, TypeError, AttributeError):
                self.s.counts["errors"] += 1
                self._json(400, {"error": {"message": "bad JSON body", "type": "BadRequest"}})
                return
            self.s.counts["chat" if chat else "completions"] += 1
            tokens = tokens if tokens > 0 else DEFAULT_MAX_TOKENS
            model = body["model"] if isinstance(body.get("model"), str) else self.s.model
            usage = _usage(_prompt_tokens(body, chat), tokens)
            stream = bool(body.get("stream"))
            if stream:
                self.s.counts["stream"] += 1
            if not stream and not self.s.latency:
                self._unary(model, chat, tokens, usage)
                return
            options = body.get("stream_options")
            with_usage = isinstance(options, dict) and bool(options.get("include_usage"))
            continuous = with_usage and bool(options.get("continuous_usage_stats"))
            self.busy = True
            task = asyncio.ensure_future(
                self._later(
                    model,
                    chat,
                    tokens,
                    usage,
                    stream=stream,
                    with_usage=with_usage,
                    continuous=continuous,
                )
            )
            task.add_done_callback(self._done)
        elif method == "GET" and path == "/v1/models":
            entry = {"id": self.s.model, "object": "model", "created": 0, "owned_by": "bench"}
            self._json(200, {"object": "list", "data": [entry]})
        elif method == "GET" and path == "/stats":
            cpu = os.times()
            stats = {**self.s.counts, "cpu_s": cpu.user + cpu.system, "monotonic": time.monotonic()}
            self._json(200, stats)
        else:
            self.s.counts["errors"] += 1
            self._json(404, {"error": {"message": f"no route {method} {path}", "type": "NotFound"}})

    def _unary(self, model: str, chat: bool, tokens: int, usage: dict) -> None:
        head, tail = _unary_parts(model, chat, tokens)
        self._reply(200, b"application/json", head + _dumps(usage) + tail)

    async def _later(
        self,
        model: str,
        chat: bool,
        tokens: int,
        usage: dict,
        *,
        stream: bool,
        with_usage: bool,
        continuous: bool = False,
    ) -> None:
        if self.s.latency:
            await asyncio.sleep(self.s.latency)
        if not stream:
            self._unary(model, chat, tokens, usage)
            return
        if self.transport is None:
            return
        self.transport.write(_head(200, b"text/event-stream", None))
        prompt_tokens = usage["prompt_tokens"] if continuous else None
        events = _stream_events(model, chat, tokens, self.s.per_chunk, prompt_tokens)
        for i, event in enumerate(events):
            if self.s.itl and i:
                await asyncio.sleep(self.s.itl)
            if self.transport is None:
                return
            self.transport.write(event)
        if with_usage:
            obj = {**_ids(chat), "model": model, "choices": [], "usage": usage}
            if chat:
                obj["object"] = "chat.completion.chunk"
            self.transport.write(_chunk(b"data: " + _dumps(obj) + b"\n\n"))
        self.transport.write(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")

    def _done(self, task: asyncio.Future) -> None:
        self.busy = False
        if not task.cancelled() and task.exception() is not None and self.transport is not None:
            self.transport.close()
            return
        if self.buf:
            self._drain()


async def serve(args: argparse.Namespace) -> None:
    settings = Settings(args.latency_ms, args.itl_ms, args.tokens_per_chunk, args.model)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: HttpConnection(settings), args.host, args.port, backlog=1024, reuse_address=True
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"LISTENING {server.sockets[0].getsockname()[1]}", flush=True)
    await stop.wait()
    server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--cpu", type=int, help="pin this process to this CPU")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before the reply")
    parser.add_argument("--itl-ms", type=float, default=0.0, help="delay between SSE events")
    parser.add_argument("--tokens-per-chunk", type=int, default=1)
    parser.add_argument("--model", default="bench-model")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (must be installed)")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    loop_factory = None
    if args.uvloop:
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
