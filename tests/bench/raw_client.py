"""The baseline of ``make bench``: the plain aiohttp loop an expert writes when only speed counts.

One ``ClientSession`` (HTTP/1.1 keep-alive, a connector limited to the concurrency), a
pre-encoded request body (for SSE the stream options bench_run asks for: usage, continuous
usage), ``concurrency`` workers that each send the next request as soon as
their previous one completes, until ``requests`` have been sent. A reply counts as completed when
its status is 200 and its body has been read to the end (for SSE: each block of bytes as it
arrives, ``iter_any()``; nothing is split or parsed). No prompts, no metrics beyond end-to-end
latency, no error kinds: the ceiling a feature-complete load generator is compared with.

Throughput is completed requests over the span from the first send to the last completion (as
bench_run and inference-perf compute it); p50 uses linear interpolation between closest ranks.
Warm-up requests (connections opened, caches filled) are sent first and not measured.

    .venv/bin/python tests/bench/raw_client.py --url http://127.0.0.1:8000 --requests 10000 \\
        --concurrency 20 [--stream] [--chat] [--cpu 0]

Prints one JSON object: completed, failed, duration_s, request_throughput, e2e_latency_ms and
window_epoch (first send and last completion, Unix time: the harness samples CPU over it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import aiohttp


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def request_body(chat: bool, stream: bool, model: str, prompt: str, max_tokens: int) -> bytes:
    body: dict = {"model": model, "max_tokens": max_tokens, "stream": stream, "ignore_eos": True}
    if chat:
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    if stream:  # what bench_run asks for: the same answers from the server
        body["stream_options"] = {"include_usage": True, "continuous_usage_stats": True}
    return json.dumps(body).encode()


async def _phase(
    session: aiohttp.ClientSession, url: str, body: bytes, stream: bool, *, count: int, workers: int
) -> dict:
    headers = {"Content-Type": "application/json"}
    latencies: list[float] = []
    starts: list[float] = []
    ends: list[float] = []
    failed = 0
    left = count

    async def worker() -> None:
        nonlocal left, failed
        while left > 0:
            left -= 1
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    if stream:
                        async for _data in resp.content.iter_any():
                            pass
                    else:
                        await resp.read()
                    ok = resp.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            t1 = time.perf_counter()
            if ok:
                latencies.append(t1 - t0)
                starts.append(t0)
                ends.append(t1)
            else:
                failed += 1

    await asyncio.gather(*(worker() for _worker in range(min(workers, count))))
    span = (max(ends) - min(starts)) if ends else 0.0
    to_epoch = time.time() - time.perf_counter()
    window = [min(starts) + to_epoch, max(ends) + to_epoch] if ends else None
    ms = [x * 1000 for x in latencies]
    return {
        "sent": count,
        "completed": len(latencies),
        "failed": failed,
        "duration_s": round(span, 4),
        "request_throughput": len(latencies) / span if span > 0 else 0.0,
        "window_epoch": window,
        "e2e_latency_ms": {
            "p50": percentile(ms, 50),
            "p90": percentile(ms, 90),
            "p99": percentile(ms, 99),
            "mean": sum(ms) / len(ms) if ms else float("nan"),
        },
    }


async def run(
    url: str,
    *,
    chat: bool = False,
    stream: bool = False,
    model: str = "bench-model",
    prompt: str = "hello",
    max_tokens: int = 16,
    concurrency: int = 20,
    requests: int = 1000,
    warmup: int = 100,
    timeout: float = 60.0,
) -> dict:
    target = url.rstrip("/") + ("/v1/chat/completions" if chat else "/v1/completions")
    body = request_body(chat, stream, model, prompt, max_tokens)
    connector = aiohttp.TCPConnector(limit=concurrency)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:
        if warmup:
            await _phase(session, target, body, stream, count=warmup, workers=concurrency)
        result = await _phase(session, target, body, stream, count=requests, workers=concurrency)
    result["percentile_method"] = "linear"
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--chat", action="store_true", help="/v1/chat/completions")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--model", default="bench-model")
    parser.add_argument("--prompt-words", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--cpu", type=int, help="pin this process to this CPU")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    prompt = " ".join(f"w{i}" for i in range(args.prompt_words))
    result = asyncio.run(
        run(
            args.url,
            chat=args.chat,
            stream=args.stream,
            model=args.model,
            prompt=prompt,
            max_tokens=args.max_tokens,
            concurrency=args.concurrency,
            requests=args.requests,
            warmup=args.warmup,
            timeout=args.timeout,
        )
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
