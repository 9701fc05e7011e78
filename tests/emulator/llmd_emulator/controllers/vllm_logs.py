"""Log lines a vLLM TPU server prints while starting, and the Hugging Face failures it dies of."""

from __future__ import annotations

import time
import uuid

from .. import vllm_cli
from .base import Obj


def _stamp() -> str:
    return time.strftime("%m-%d %H:%M:%S")


def info(where: str, message: str) -> str:
    return f"INFO {_stamp()} [{where}] {message}"


def served_model_name(container: Obj) -> str:
    """The name vLLM serves: --served-model-name, else --model, else /mnt/models."""
    result = vllm_cli.effective(container)
    if isinstance(result, vllm_cli.Serve):
        return result.served_names[0]
    args = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    found: dict[str, str] = {}
    for i, arg in enumerate(args):
        for flag in ("--served-model-name", "--model"):
            if arg.startswith(flag + "="):
                found.setdefault(flag, arg.split("=", 1)[1])
            elif arg == flag and i + 1 < len(args):
                found.setdefault(flag, args[i + 1])
    name = found.get("--served-model-name") or found.get("--model") or "/mnt/models"
    return name.split()[0]


def model_id(container: Obj) -> str:
    """The Hugging Face repository the container loads (best guess from args and env)."""
    for env in container.get("env") or ():
        if env.get("name") in ("MODEL_ID", "HF_MODEL_ID") and env.get("value"):
            return env["value"]
    name = served_model_name(container)
    return (
        name if "/" in name.strip("/") and not name.startswith("/") else "Qwen/Qwen2.5-3B-Instruct"
    )


def startup(container: Obj) -> list[tuple[float, str]]:
    """(fraction of the readiness delay, line) pairs for a normal start."""
    served = served_model_name(container)
    result = vllm_cli.effective(container)
    options = result.options if isinstance(result, vllm_cli.Serve) else {}
    lines = []
    if options.get("dtype") in ("half", "float16"):
        # vLLM's TPU platform (vllm/platforms/tpu.py) swaps float16 for bfloat16.
        lines.append(
            (
                0.005,
                f"WARNING {_stamp()} [tpu.py:95] The TPU backend currently does not support "
                "float16. Falling back to bfloat16.",
            )
        )
    return lines + [
        (0.0, info("__init__.py:244", "Automatically detected platform tpu.")),
        (0.01, info("api_server.py:1395", "vLLM API server version 0.10.1")),
        (
            0.02,
            info(
                "cli_args.py:325",
                f"non-default args: {{'model': '/mnt/models', 'served_model_name': ['{served}'], "
                "'dtype': 'half', 'max_model_len': 2048, 'tensor_parallel_size': 4}",
            ),
        ),
        (0.05, info("config.py:1604", "Using max model len 2048")),
        (0.08, info("tpu.py:104", "Initializing TPU platform: 4 chips (v6e), topology 2x2")),
        (0.15, info("default_loader.py:262", "Loading weights took 41.37 seconds")),
        (0.20, info("tpu_model_runner.py:1156", "Model loading took 5.78 GiB and 48.02 seconds")),
        (
            0.25,
            info("tpu_model_runner.py:1590", "Compiling the model with different input shapes."),
        ),
        (0.55, info("tpu_model_runner.py:1612", "Compilation finished in 178.33 [secs].")),
        (0.60, info("tpu_model_runner.py:1619", "Compiling sampling with different input shapes.")),
        (0.85, info("tpu_model_runner.py:1650", "Compilation finished in 121.08 [secs].")),
        (0.90, info("kv_cache_utils.py:716", "GPU KV cache size: 1,048,576 tokens")),
        (0.95, info("api_server.py:1457", "Starting vLLM API server 0 on https://0.0.0.0:8000")),
        (0.97, "INFO:     Started server process [1]"),
        (0.98, "INFO:     Waiting for application startup."),
        (1.0, "INFO:     Application startup complete."),
    ]


def hf_failure(container: Obj, status: int) -> list[str]:
    """The traceback vLLM prints when the Hugging Face Hub answers 401 or 403."""
    repo = model_id(container)
    request_id = f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}"
    url = f"https://huggingface.co/{repo}/resolve/main/config.json"
    site = "/opt/app-root/lib64/python3.12/site-packages"
    if status == 401:
        error = "RepositoryNotFoundError"
        detail = [
            (
                "huggingface_hub.errors.RepositoryNotFoundError: 401 Client Error. "
                f"(Request ID: {request_id})"
            ),
            "",
            f"Repository Not Found for url: {url}.",
            "Please make sure you specified the correct `repo_id` and `repo_type`.",
            (
                "If you are trying to access a private or gated repo, make sure you are "
                "authenticated. For more details, see "
                "https://huggingface.co/docs/huggingface_hub/authentication"
            ),
            "Invalid username or password.",
        ]
        http = f"requests.exceptions.HTTPError: 401 Client Error: Unauthorized for url: {url}"
    else:
        error = "GatedRepoError"
        detail = [
            f"huggingface_hub.errors.GatedRepoError: 403 Client Error. (Request ID: {request_id})",
            "",
            f"Cannot access gated repo for url {url}.",
            (
                f"Access to model {repo} is restricted and you are not in the authorized list. "
                f"Visit https://huggingface.co/{repo} to ask for access."
            ),
        ]
        http = f"requests.exceptions.HTTPError: 403 Client Error: Forbidden for url: {url}"
    return [
        info("__init__.py:244", "Automatically detected platform tpu."),
        info("api_server.py:1395", "vLLM API server version 0.10.1"),
        "Traceback (most recent call last):",
        f'  File "{site}/huggingface_hub/utils/_http.py", line 409, in hf_raise_for_status',
        "    response.raise_for_status()",
        f'  File "{site}/requests/models.py", line 1026, in raise_for_status',
        "    raise HTTPError(http_error_msg, response=self)",
        http,
        "",
        "The above exception was the direct cause of the following exception:",
        "",
        "Traceback (most recent call last):",
        '  File "<frozen runpy>", line 198, in _run_module_as_main',
        f'  File "{site}/vllm/entrypoints/openai/api_server.py", line 1895, in <module>',
        "    uvloop.run(run_server(args))",
        f'  File "{site}/vllm/transformers_utils/config.py", line 375, in get_config',
        "    config_dict, _ = PretrainedConfig.get_config_dict(",
        f'  File "{site}/huggingface_hub/file_download.py", line 1010, in hf_hub_download',
        "    return _hf_hub_download_to_cache_dir(",
        f'  File "{site}/huggingface_hub/utils/_http.py", line 426, in hf_raise_for_status',
        f"    raise _format({error}, message, response) from e",
        *detail,
    ]


def oom_lines() -> list[str]:
    return [
        info("__init__.py:244", "Automatically detected platform tpu."),
        info("default_loader.py:262", "Loading weights took 40.12 seconds"),
    ]
