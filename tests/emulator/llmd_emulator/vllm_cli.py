"""The command line a vLLM container really runs, and whether vLLM would start with it.

The kubelet runs `command` + `args` (the image's ENTRYPOINT when `command` is unset) after
expanding `$(VAR)` references from the container's env. KServe's template runs
`/bin/bash -c <script>`: the emulator runs that with the real bash of this machine, in a scratch
directory, with the container's env and a `vllm` on PATH that only records its argv. So bash's
own errors (`bash -c --model=...` gives `/bin/bash: --: invalid option`, exit 2) and the
script's quoting and `eval` come from bash itself, not from a reimplementation.

The recorded `vllm serve` argv is then checked the way vLLM's argparse parser does: one optional
positional model tag, known options only, a value for every option that takes one, choices for
`--dtype`. The option set is the one of vLLM 0.10.1 (the version the emulated image reports),
taken from Red Hat AI Inference Server 3.2's "vLLM server arguments" reference; an option outside
it is refused as argparse refuses an unknown one (docs/conformance.md names this gap).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
USAGE = "usage: vllm serve [model_tag] [options]"
# The ENTRYPOINT of vLLM's OpenAI images when a container sets no command.
DEFAULT_ENTRYPOINT = ("vllm", "serve")

_SWITCHES = {
    # frontend (vllm/entrypoints/openai/cli_args.py)
    "allow-credentials",
    "disable-uvicorn-access-log",
    "enable-ssl-refresh",
    "return-tokens-as-token-ids",
    "disable-frontend-multiprocessing",
    "enable-request-id-headers",
    "enable-auto-tool-choice",
    "disable-fastapi-docs",
    "enable-prompt-tokens-details",
    "enable-server-load-tracking",
    "enable-force-include-usage",
    "enable-tokenizer-info-endpoint",
    "disable-log-stats",
    "disable-log-requests",
    "enable-log-requests",
    "headless",
    "expand-tools-even-if-tool-choice-none",
    "exclude-tools-when-tool-choice-none",
    # engine (vllm/engine/arg_utils.py): booleans, most with a --no- form
    "trust-remote-code",
    "enforce-eager",
    "disable-sliding-window",
    "disable-cascade-attn",
    "skip-tokenizer-init",
    "enable-prompt-embeds",
    "disable-async-output-proc",
    "enable-sleep-mode",
    "enable-expert-parallel",
    "enable-eplb",
    "ray-workers-use-nsight",
    "disable-custom-all-reduce",
    "enable-multimodal-encoder-data-parallel",
    "enable-prefix-caching",
    "calculate-kv-scales",
    "disable-mm-preprocessor-cache",
    "interleave-mm-strings",
    "enable-lora",
    "enable-lora-bias",
    "fully-sharded-loras",
    "multi-step-stream-outputs",
    "enable-chunked-prefill",
    "disable-chunked-mm-input",
    "disable-hybrid-kv-cache-manager",
    "async-scheduling",
    "use-tqdm-on-load",
    "enable-reasoning",
}
_VALUES = {
    "host",
    "port",
    "uds",
    "uvicorn-log-level",
    "allowed-origins",
    "allowed-methods",
    "allowed-headers",
    "api-key",
    "lora-modules",
    "chat-template",
    "chat-template-content-format",
    "response-role",
    "ssl-keyfile",
    "ssl-certfile",
    "ssl-ca-certs",
    "ssl-cert-reqs",
    "root-path",
    "middleware",
    "tool-call-parser",
    "tool-parser-plugin",
    "log-config-file",
    "max-log-len",
    "api-server-count",
    "config",
    "data-parallel-start-rank",
    "reasoning-parser",
    "model",
    "task",
    "runner",
    "convert",
    "tokenizer",
    "tokenizer-mode",
    "dtype",
    "seed",
    "hf-config-path",
    "allowed-local-media-path",
    "revision",
    "code-revision",
    "rope-scaling",
    "rope-theta",
    "tokenizer-revision",
    "max-model-len",
    "quantization",
    "max-seq-len-to-capture",
    "max-logprobs",
    "logprobs-mode",
    "served-model-name",
    "config-format",
    "hf-token",
    "hf-overrides",
    "override-pooler-config",
    "logits-processor-pattern",
    "generation-config",
    "override-generation-config",
    "model-impl",
    "override-attention-dtype",
    "load-format",
    "download-dir",
    "model-loader-extra-config",
    "ignore-patterns",
    "pt-load-map-location",
    "guided-decoding-backend",
    "distributed-executor-backend",
    "pipeline-parallel-size",
    "tensor-parallel-size",
    "data-parallel-size",
    "data-parallel-rank",
    "data-parallel-size-local",
    "data-parallel-address",
    "data-parallel-rpc-port",
    "data-parallel-backend",
    "max-parallel-loading-workers",
    "worker-cls",
    "worker-extension-cls",
    "block-size",
    "gpu-memory-utilization",
    "swap-space",
    "kv-cache-dtype",
    "num-gpu-blocks-override",
    "prefix-caching-hash-algo",
    "cpu-offload-gb",
    "limit-mm-per-prompt",
    "media-io-kwargs",
    "mm-processor-kwargs",
    "max-loras",
    "max-lora-rank",
    "lora-extra-vocab-size",
    "lora-dtype",
    "max-cpu-loras",
    "max-num-batched-tokens",
    "max-num-seqs",
    "max-num-partial-prefills",
    "long-prefill-token-threshold",
    "num-lookahead-slots",
    "scheduler-delay-factor",
    "preemption-mode",
    "num-scheduler-steps",
    "scheduling-policy",
    "scheduler-cls",
    "speculative-config",
    "kv-transfer-config",
    "kv-events-config",
    "compilation-config",
    "additional-config",
    "otlp-traces-endpoint",
    "collect-detailed-traces",
}
_SHORT = {
    "-tp": "tensor-parallel-size",
    "-pp": "pipeline-parallel-size",
    "-dp": "data-parallel-size",
    "-O": "compilation-config",
    "-asc": "api-server-count",
}
_CHOICES = {"dtype": ("auto", "bfloat16", "float", "float16", "float32", "half")}


@dataclass
class Serve:
    """A `vllm serve` command line vLLM's parser accepts."""

    argv: list[str]
    model: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def served_names(self) -> list[str]:
        names = self.options.get("served-model-name")
        return names or [self.model or self.options.get("model") or ""]

    @property
    def port(self) -> int:
        return int(self.options.get("port") or 8000)

    @property
    def tls(self) -> bool:
        return bool(self.options.get("ssl-certfile") and self.options.get("ssl-keyfile"))


@dataclass
class Failed:
    """A command line that exits before any server starts: its output and exit code."""

    exit_code: int
    lines: list[str]


def _parse_serve(argv: list[str]) -> Serve | Failed:
    """vLLM's FlexibleArgumentParser on `vllm serve ...` (argv starts after `serve`)."""
    serve = Serve(argv=["vllm", "serve", *argv])
    unknown: list[str] = []
    i = 0

    def fail(message: str) -> Failed:
        return Failed(2, [USAGE, f"vllm serve: error: {message}"])

    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-") or arg == "-":
            if serve.model:
                unknown.append(arg)
            else:
                serve.model = arg
            continue
        name, eq, value = arg.partition("=")
        key = _SHORT.get(name) or name.lstrip("-").replace("_", "-")
        negated = key.startswith("no-") and key[3:] in _SWITCHES
        if key in _SWITCHES or negated:
            if eq:
                return fail(f"argument {name}: ignored explicit argument '{value}'")
            serve.options[key[3:] if negated else key] = not negated
        elif key in _VALUES:
            if not eq:
                if i >= len(argv) or (argv[i].startswith("--") and argv[i] != "--"):
                    return fail(f"argument {name}: expected one argument")
                value = argv[i]
                i += 1
            if key in _CHOICES and value not in _CHOICES[key]:
                choices = ", ".join(_CHOICES[key])
                return fail(f"argument {name}: invalid choice: '{value}' (choose from {choices})")
            if key == "served-model-name":
                names = [value]
                while i < len(argv) and not argv[i].startswith("-"):
                    names.append(argv[i])
                    i += 1
                serve.options[key] = names
            else:
                serve.options[key] = value
        else:
            unknown.append(arg)
    if unknown:
        return fail(f"unrecognized arguments: {' '.join(unknown)}")
    if not serve.model and not serve.options.get("model"):
        return Failed(1, ["ValueError: No model specified!"])
    return serve


_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """The kubelet's $(VAR) expansion of command and args ($$ escapes, unknown kept)."""
    out = _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), text.replace("$$", "\0"))
    return out.replace("\0", "$")


def _run_shell(argv: tuple[str, ...], env: tuple[tuple[str, str], ...]) -> Serve | Failed:
    bash = shutil.which("bash") or "/bin/bash"
    with tempfile.TemporaryDirectory(prefix="llmd-vllm-") as scratch:
        record = os.path.join(scratch, "argv.json")
        shim = os.path.join(scratch, "bin", "vllm")
        os.makedirs(os.path.dirname(shim))
        with open(shim, "w", encoding="utf-8") as handle:
            handle.write(
                "#!/usr/bin/env python3\nimport json, sys\n"
                f"json.dump(sys.argv[1:], open({record!r}, 'w'))\n"
            )
        os.chmod(shim, 0o755)
        run_env = {**dict(env), "PATH": f"{os.path.dirname(shim)}:/usr/bin:/bin"}
        run_env.setdefault("HOME", scratch)
        try:
            done = subprocess.run(
                [bash, *argv[1:]],
                env=run_env,
                cwd=scratch,
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Failed(137, ["(emulator gap: the container's script did not end in 20 s)"])
        output = (done.stdout + done.stderr).splitlines()
        # bash names itself by its argv[0]: the container's /bin/bash, not this machine's path.
        output = [line.replace(bash, argv[0]) for line in output]
        if not os.path.exists(record):
            return Failed(done.returncode, output)
        with open(record, encoding="utf-8") as handle:
            vllm_argv = json.load(handle)
    if vllm_argv[:1] != ["serve"]:
        return Failed(2, [f"emulator gap: vllm {' '.join(vllm_argv[:1])} is not emulated"])
    return _parse_serve(vllm_argv[1:])


@functools.lru_cache(maxsize=256)
def _effective(argv: tuple[str, ...], env: tuple[tuple[str, str], ...]) -> Serve | Failed:
    head = os.path.basename(argv[0]) if argv else ""
    if head in ("bash", "sh"):
        return _run_shell(argv, env)
    if head == "vllm" and argv[1:2] == ("serve",):
        return _parse_serve(list(argv[2:]))
    return Failed(127, [f"emulator gap: the entrypoint {' '.join(argv[:2])} is not emulated"])


def plain_env(container: Obj, values: dict[str, str] | None = None) -> dict[str, str]:
    """The container's env as the process sees it (valueFrom through `values`, else empty)."""
    env: dict[str, str] = {}
    for item in container.get("env") or ():
        name = item.get("name", "")
        if "value" in item:
            env[name] = expand(str(item["value"]), env)
        else:
            env[name] = (values or {}).get(name, "")
    return env


def effective(container: Obj, values: dict[str, str] | None = None) -> Serve | Failed:
    """What the container runs: a vLLM server's arguments, or the output of what failed."""
    env = plain_env(container, values)
    command = [expand(str(c), env) for c in container.get("command") or ()]
    args = [expand(str(a), env) for a in container.get("args") or ()]
    argv = (command or list(DEFAULT_ENTRYPOINT)) + args
    return _effective(tuple(argv), tuple(sorted(env.items())))
