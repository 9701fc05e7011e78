"""bench_prompts: seeded synthetic sets (length, spread, shared-prefix groups) and JSONL files."""

from __future__ import annotations

import json

import pytest

from ansible_collections.llmd.gke.plugins.module_utils import bench_prompts as bp


def test_synthetic_is_reproducible_and_seed_dependent():
    options = {"count": 20, "input_tokens": 50, "input_tokens_spread": 10}
    first = bp.build_prompts(options, seed=3)
    assert first == bp.build_prompts(options, seed=3)
    assert [p.text for p in first] != [p.text for p in bp.build_prompts(options, seed=4)]


def test_synthetic_lengths_within_the_spread():
    prompts = bp.build_prompts({"count": 200, "input_tokens": 40, "input_tokens_spread": 5}, 0)
    lengths = [len(p.text.split()) for p in prompts]
    assert all(35 <= n <= 45 for n in lengths)
    assert len(set(lengths)) > 5  # it does vary
    assert lengths == [p.words for p in prompts]
    assert len(bp.build_prompts({}, 0)) == bp.SYNTHETIC_COUNT


def test_prefix_groups_share_a_prefix_and_keep_own_suffixes():
    prompts = bp.build_prompts(
        {"count": 12, "input_tokens": 30, "prefix_groups": 3, "prefix_tokens": 20}, seed=1
    )
    assert [p.group for p in prompts] == [0, 1, 2] * 4
    by_group: dict = {}
    for p in prompts:
        words = p.text.split()
        assert len(words) == 30
        by_group.setdefault(p.group, []).append(words)
    prefixes = {g: {" ".join(w[:20]) for w in members} for g, members in by_group.items()}
    assert all(len(p) == 1 for p in prefixes.values())
    assert len({next(iter(p)) for p in prefixes.values()}) == 3
    suffixes = [" ".join(w[20:]) for members in by_group.values() for w in members]
    assert len(set(suffixes)) == len(suffixes)
    stats = bp.prompt_stats(prompts, {"prefix_groups": 3, "prefix_tokens": 20})
    assert stats["prefix_groups"] == 3 and stats["prefix_words"] == 20
    assert stats["input_words"] == {"min": 30, "mean": 30.0, "max": 30}
    assert "words" in stats["length_unit"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"prefix_groups": 2}, "go together"),
        ({"prefix_groups": 2, "prefix_tokens": 200, "input_tokens": 100}, "below the shortest"),
        ({"input_tokens": 10, "input_tokens_spread": 10}, "spread"),
        ({"input_tokens": 0}, "input_tokens"),
        ({"count": 0}, "count"),
        ({"source": "web"}, "synthetic or file"),
        ({"colour": "red"}, "unknown prompts option"),
        ({"source": "file"}, "path is required"),
    ],
)
def test_synthetic_option_errors(options, message):
    with pytest.raises(bp.PromptError, match=message):
        bp.build_prompts(options, 0)


def test_jsonl_prompts_messages_and_max_tokens(tmp_path):
    path = tmp_path / "p.jsonl"
    lines = [
        {"prompt": "one two three"},
        {"messages": [{"role": "user", "content": "four five"}], "max_tokens": 7},
        {"prompt": "six"},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    prompts = bp.build_prompts({"source": "file", "path": str(path)})
    assert [p.words for p in prompts] == [3, 2, 1]
    assert prompts[1].max_tokens == 7 and prompts[0].max_tokens is None
    assert bp.prompt_text(prompts[1]) == "four five"
    assert bp.prompt_messages(prompts[0]) == [{"role": "user", "content": "one two three"}]
    assert len(bp.build_prompts({"source": "file", "path": str(path), "count": 2})) == 2
    stats = bp.prompt_stats(prompts, {"source": "file"})
    assert stats["per_prompt_max_tokens"] == 1 and stats["source"] == "file"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"prompt": "ok"}\nnot json\n', "line 2: not JSON"),
        ('{"text": "x"}\n', '"prompt"'),
        ('{"prompt": "x", "max_tokens": 0}\n', "max_tokens"),
        ("\n\n", "holds no prompt"),
    ],
)
def test_jsonl_errors_name_the_line(tmp_path, content, message):
    path = tmp_path / "p.jsonl"
    path.write_text(content)
    with pytest.raises(bp.PromptError, match=message):
        bp.build_prompts({"source": "file", "path": str(path)})


def test_missing_file(tmp_path):
    with pytest.raises(bp.PromptError, match="cannot read"):
        bp.build_prompts({"source": "file", "path": str(tmp_path / "absent.jsonl")})
