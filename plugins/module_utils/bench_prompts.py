# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prompt sets of bench_run: synthetic (seeded, length control, shared-prefix groups) or JSONL.

No tokenizer is available on the control node, so lengths are counted in whitespace-separated
words drawn from a vocabulary of common English words (most are one token in the usual BPE
vocabularies; the server's ``usage.prompt_tokens`` gives the real count).

``build_prompts(options, seed)`` returns a list of ``Prompt`` (text or messages, an optional
per-prompt ``max_tokens``, the prefix group, the length in words); ``prompt_stats`` describes a
set for the plan and the report. Requests cycle through the set in order (request ``i`` of a
level uses prompt ``i % len(set)``); synthetic groups are interleaved (prompt ``i`` is in group
``i % prefix_groups``), so consecutive requests alternate between prefixes.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass

PROMPT_DEFAULTS = {
    "source": "synthetic",
    "path": None,
    "count": None,
    "input_tokens": 128,
    "input_tokens_spread": 0,
    "prefix_groups": 0,
    "prefix_tokens": 0,
}
SYNTHETIC_COUNT = 100

_VOCABULARY_TEXT = (
    "time year people way day man thing woman life child world school state family student "
    "group country problem hand part place case week company system program question work "
    "government number night point home water room mother area money story fact month lot "
    "right study book eye job word business issue side kind head house service friend father "
    "power hour game line end member law car city community name president team minute idea "
    "kid body information back parent face others level office door health person art war "
    "history party result change morning reason research girl guy moment air teacher force "
    "education foot boy age policy music market sense nation plan college interest death "
    "experience effect use class control care field development role effort rate heart drug "
    "show leader light voice wife police mind price report decision son view relationship town "
    "road arm difference value building action model season society tax director position "
    "player record paper space ground form event official matter center couple site project "
    "activity star table need court oil situation cost industry figure street image phone data "
    "picture practice piece land product doctor wall patient worker news test movie north love "
    "support technology step baby computer type attention film tree source organization hair "
    "window evidence population river ball garden cloud stone bridge train paper glass summer"
)
VOCABULARY = tuple(_VOCABULARY_TEXT.split())


class PromptError(ValueError):
    """A prompt set that cannot be built (bad option, unreadable or malformed file)."""


@dataclass(frozen=True)
class Prompt:
    text: str | None
    messages: list | None
    max_tokens: int | None
    group: int | None
    words: int


def _words(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(VOCABULARY) for _i in range(n)]


def synthetic(options: dict, seed: int) -> list[Prompt]:
    count = options.get("count") or SYNTHETIC_COUNT
    length = int(options.get("input_tokens") or 0)
    spread = int(options.get("input_tokens_spread") or 0)
    groups = int(options.get("prefix_groups") or 0)
    prefix = int(options.get("prefix_tokens") or 0)
    if count < 1:
        raise PromptError("prompts.count must be 1 or more")
    if length < 1:
        raise PromptError("prompts.input_tokens must be 1 or more words")
    if spread < 0 or spread >= length:
        raise PromptError(
            f"prompts.input_tokens_spread must be 0 or more and below input_tokens ({length})"
        )
    if groups < 0 or prefix < 0:
        raise PromptError("prompts.prefix_groups and prompts.prefix_tokens must be 0 or more")
    if bool(groups) != bool(prefix):
        raise PromptError(
            "prompts.prefix_groups and prompts.prefix_tokens go together: set both (N groups that"
            " each share a prefix of that many words) or neither"
        )
    if prefix and prefix >= length - spread:
        raise PromptError(
            f"prompts.prefix_tokens ({prefix}) must be below the shortest prompt"
            f" (input_tokens - input_tokens_spread = {length - spread} words), so every prompt"
            " keeps a suffix of its own"
        )
    rng = random.Random(f"bench-prompts-{seed}")
    prefixes = [_words(rng, prefix) for _i in range(groups)]
    prompts = []
    for i in range(count):
        n = length + (rng.randint(-spread, spread) if spread else 0)
        group = i % groups if groups else None
        words = (prefixes[group] if groups else []) + _words(rng, n - prefix)
        prompts.append(Prompt(" ".join(words), None, None, group, n))
    return prompts


def _message_words(messages: list) -> int:
    total = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += len(content.split())
        elif isinstance(content, list):  # content parts: count the text parts
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    total += len(part["text"].split())
    return total


def from_file(options: dict) -> list[Prompt]:
    path = options.get("path")
    if not path:
        raise PromptError("prompts.path is required with prompts.source=file")
    limit = options.get("count")
    prompts: list[Prompt] = []
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if limit and len(prompts) >= limit:
                    break
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except ValueError as exc:
                    raise PromptError(f"{path} line {number}: not JSON ({exc})") from None
                prompts.append(_file_prompt(item, path, number))
    except OSError as exc:
        raise PromptError(f"cannot read prompts.path {path}: {exc.strerror or exc}") from None
    if not prompts:
        raise PromptError(f"{path} holds no prompt (one JSON object per line expected)")
    return prompts


def _file_prompt(item, path: str, number: int) -> Prompt:
    where = f"{path} line {number}"
    if not isinstance(item, dict):
        raise PromptError(f'{where}: expected an object with "prompt" or "messages"')
    max_tokens = item.get("max_tokens")
    if max_tokens is not None and (
        not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
    ):
        raise PromptError(f"{where}: max_tokens must be a positive integer")
    if isinstance(item.get("prompt"), str):
        text = item["prompt"]
        return Prompt(text, None, max_tokens, None, len(text.split()))
    messages = item.get("messages")
    if isinstance(messages, list) and messages and all(isinstance(m, dict) for m in messages):
        return Prompt(None, messages, max_tokens, None, _message_words(messages))
    raise PromptError(f'{where}: needs "prompt" (a string) or "messages" (a list of objects)')


def build_prompts(options: dict | None, seed: int = 0) -> list[Prompt]:
    merged = dict(PROMPT_DEFAULTS)
    merged.update({k: v for k, v in (options or {}).items() if v is not None})
    unknown = set(merged) - set(PROMPT_DEFAULTS)
    if unknown:
        raise PromptError(
            "unknown prompts option(s): "
            + ", ".join(sorted(unknown))
            + "; known: "
            + ", ".join(PROMPT_DEFAULTS)
        )
    if merged["count"] is not None and int(merged["count"]) < 1:
        raise PromptError("prompts.count must be 1 or more")
    if merged["source"] == "synthetic":
        return synthetic(merged, seed)
    if merged["source"] == "file":
        return from_file(merged)
    raise PromptError(f"prompts.source must be synthetic or file, got {merged['source']!r}")


def prompt_text(prompt: Prompt) -> str:
    """The text sent to /v1/completions (a messages prompt: its contents joined by newlines)."""
    if prompt.text is not None:
        return prompt.text
    parts = []
    for message in prompt.messages or []:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p["text"] for p in content if isinstance(p, dict) and "text" in p)
    return "\n".join(parts)


def prompt_messages(prompt: Prompt) -> list:
    """The messages sent to /v1/chat/completions (a text prompt: one user message)."""
    if prompt.messages is not None:
        return prompt.messages
    return [{"role": "user", "content": prompt.text}]


def prompt_stats(prompts: list[Prompt], options: dict | None = None) -> dict:
    words = [p.words for p in prompts]
    groups = {p.group for p in prompts if p.group is not None}
    merged = dict(PROMPT_DEFAULTS)
    merged.update({k: v for k, v in (options or {}).items() if v is not None})
    return {
        "source": merged["source"],
        "count": len(prompts),
        "input_words": {
            "min": min(words),
            "mean": round(sum(words) / len(words), 2),
            "max": max(words),
        },
        "prefix_groups": len(groups),
        "prefix_words": int(merged["prefix_tokens"] or 0) if groups else 0,
        "per_prompt_max_tokens": sum(1 for p in prompts if p.max_tokens is not None),
        "length_unit": "words (no tokenizer on the control node; the server's usage counts tokens)",
    }
