"""KServe's combination of configs, the container's effective command line and the kubelet's
probes, as the emulator reproduces them, on the real pinned KServe configs (docs/conformance.md)."""

from __future__ import annotations

import copy

import pytest

from llmd_emulator import kserve_merge, vllm_cli
from llmd_emulator.controllers import probes
from llmd_emulator.testing import kserve_presets, kserve_root, llm_inference_service

GLOBAL = {
    "systemNamespace": "opendatahub",
    "ingressGatewayName": "inference-gateway",
    "ingressGatewayNamespace": "opendatahub",
}


@pytest.fixture(scope="module")
def configs() -> dict:
    presets = kserve_presets(kserve_root())
    return {d["metadata"]["name"]: d for d in presets if d["kind"] == "LLMInferenceServiceConfig"}


def combined(configs: dict, svc: dict) -> dict:
    spec, _refs = kserve_merge.combine(svc, configs.get, GLOBAL)
    return spec


def main_of(spec: dict) -> dict:
    (main,) = [c for c in spec["template"]["containers"] if c["name"] == "main"]
    return main


def test_child_name_hashes_long_names_as_knative_does():
    assert kserve_merge.child_name("qwen", "-epp-sa") == "qwen-epp-sa"
    long = "a" * 60
    name = kserve_merge.child_name(long, "-inference-pool")
    assert len(name) == 63 and name.endswith("-inference-pool")
    assert name.startswith("a" * (63 - 32 - len("-inference-pool")))


def test_well_known_configs_then_base_refs_then_the_service(configs):
    svc = llm_inference_service("qwen", "llm")
    _spec, refs = kserve_merge.combine(svc, configs.get, GLOBAL)
    assert refs == [
        "kserve-config-llm-scheduler",
        "kserve-config-llm-router-route",
        "kserve-config-llm-template",
    ]
    svc["spec"]["baseRefs"] = [{"name": "kserve-config-llm-template-amd-rocm"}]
    _spec, refs = kserve_merge.combine(svc, configs.get, GLOBAL)
    assert refs[-1] == "kserve-config-llm-template-amd-rocm"


def test_containers_and_env_merge_by_name_args_replace_command_stays(configs):
    svc = llm_inference_service("qwen", "llm")
    template_main = configs["kserve-config-llm-template"]["spec"]["template"]["containers"][0]
    main = main_of(combined(configs, svc))
    assert main["command"] == ["/bin/bash", "-c"]
    # The service set no args: the template's one script stays (rendered).
    assert len(main["args"]) == 1 and template_main["args"][0].startswith(main["args"][0][:40])
    assert 'eval "vllm serve /mnt/models' in main["args"][0]
    names = [e["name"] for e in main["env"]]
    assert names[:3] == ["HOME", "VLLM_LOGGING_LEVEL", "HF_HUB_CACHE"]  # the template's first
    assert "VLLM_ADDITIONAL_ARGS" in names
    assert main["livenessProbe"] == template_main["livenessProbe"]
    assert main["startupProbe"]["failureThreshold"] == 180
    (mounts,) = [m for m in main["volumeMounts"] if m["mountPath"] == "/var/run/kserve/tls"]
    assert mounts["name"] == "tls-certs"

    svc["spec"]["template"]["containers"][0]["args"] = ["--model=/mnt/models"]
    assert main_of(combined(configs, svc))["args"] == ["--model=/mnt/models"]


def test_templates_render_names_namespace_model_and_gateway(configs):
    spec = combined(configs, llm_inference_service("qwen", "llm", served_name="my/model"))
    script = main_of(spec)["args"][0]
    assert '--served-model-name "my/model"' in script
    secret = [v for v in spec["template"]["volumes"] if v["name"] == "tls-certs"][0]
    assert secret["secret"]["secretName"] == "qwen-kserve-self-signed-certs"
    args = spec["router"]["scheduler"]["template"]["containers"][0]["args"]
    assert args[args.index("--pool-name") + 1] == "qwen-inference-pool"
    assert args[args.index("--pool-namespace") + 1] == "llm"
    assert spec["router"]["scheduler"]["template"]["serviceAccountName"] == "qwen-epp-sa"
    pool = spec["router"]["scheduler"]["pool"]["spec"]
    assert pool["extensionRef"]["name"] == "qwen-epp-service"
    assert pool["selector"] == kserve_merge.workload_selector("qwen")
    rules = spec["router"]["route"]["http"]["spec"]["rules"]
    assert rules[0]["matches"][0]["path"]["value"] == "/llm/qwen/v1/completions"


def test_an_unknown_template_field_is_an_error_not_a_guess():
    with pytest.raises(kserve_merge.CombineError, match="can't evaluate field Nope"):
        kserve_merge.render("{{ .Spec.Nope }}", {"metadata": {"name": "x"}}, GLOBAL)
    with pytest.raises(kserve_merge.CombineError, match="emulator gap"):
        kserve_merge.render("{{ if .Spec }}x{{ end }}", {"metadata": {"name": "x"}}, GLOBAL)


def test_a_missing_config_names_both_namespaces(configs):
    svc = llm_inference_service("qwen", "llm", base_refs=[{"name": "rhaiis-tpu-default"}])
    with pytest.raises(kserve_merge.CombineError) as err:
        combined(configs, svc)
    assert '"rhaiis-tpu-default" from namespaces ["llm", "opendatahub"]' in str(err.value)


@pytest.mark.parametrize(
    ("extra", "exit_code", "error"),
    [
        ("--dtype=bogus", 2, "argument --dtype: invalid choice: 'bogus'"),
        ("--frobnicate", 2, "unrecognized arguments: --frobnicate"),
        ("--max-model-len", 2, "argument --max-model-len: expected one argument"),
        ("--enable-ssl-refresh=yes", 2, "ignored explicit argument 'yes'"),
    ],
)
def test_vllm_refuses_what_its_parser_refuses(configs, extra, exit_code, error):
    svc = llm_inference_service("qwen", "llm")
    svc["spec"]["template"]["containers"][0]["env"][0]["value"] = extra
    result = vllm_cli.effective(main_of(combined(configs, svc)))
    assert isinstance(result, vllm_cli.Failed)
    assert result.exit_code == exit_code
    assert (
        result.lines == [vllm_cli.USAGE, f"vllm serve: error: {error}"]
        or error in (result.lines[-1])
    )


def test_additional_args_are_split_by_the_scripts_eval(configs):
    svc = llm_inference_service("qwen", "llm")
    svc["spec"]["template"]["containers"][0]["env"][0]["value"] = (
        "--dtype=bfloat16 '--chat-template=a b'"
    )
    serve = vllm_cli.effective(main_of(combined(configs, svc)))
    assert isinstance(serve, vllm_cli.Serve)
    assert serve.options["chat-template"] == "a b"
    assert serve.served_names == ["Qwen/Qwen2.5-3B-Instruct"] and serve.port == 8000
    assert serve.tls and serve.options["enable-ssl-refresh"] is True


def test_kubelet_expands_dollar_parens_from_env():
    container = {
        "name": "main",
        "command": ["vllm", "serve"],
        "args": ["/m", "--port=$(PORT)", "--served-model-name=$$(literal)"],
        "env": [{"name": "PORT", "value": "8000"}],
    }
    serve = vllm_cli.effective(container)
    assert isinstance(serve, vllm_cli.Serve)
    assert serve.port == 8000 and serve.served_names == ["$(literal)"]


def _serve(port: int = 8000) -> vllm_cli.Serve:
    return vllm_cli.Serve(
        argv=[],
        model="/mnt/models",
        options={"port": port, "ssl-certfile": "c", "ssl-keyfile": "k"},
    )


def test_the_templates_liveness_probe_kills_a_slow_start(configs):
    main = main_of(combined(configs, llm_inference_service("qwen", "llm")))
    without_startup = copy.deepcopy(main)
    without_startup.pop("startupProbe")
    kill = probes.kill_time(without_startup, _serve(), ready=600)
    assert kill is not None and kill.probe == "liveness"
    assert kill.at == 120 + 10 * 2  # initialDelaySeconds 120, periodSeconds 10, failureThreshold 3
    assert "connect: connection refused" in kill.message
    assert probes.kill_time(without_startup, _serve(), ready=100) is None
    assert probes.kill_time(main, _serve(), ready=900) is None  # 180 x 10 s of startup probe
    short = copy.deepcopy(main)
    short["startupProbe"]["failureThreshold"] = 30
    kill = probes.kill_time(short, _serve(), ready=900)
    assert kill is not None and kill.probe == "startup" and kill.at == 290


def test_a_probe_on_another_port_or_scheme_never_succeeds(configs):
    main = main_of(combined(configs, llm_inference_service("qwen", "llm")))
    kill = probes.kill_time(main, _serve(port=9000), ready=10)
    assert kill is not None and kill.probe == "startup"
    plain = vllm_cli.Serve(argv=[], model="/m", options={"port": 8000})
    assert "server gave HTTP response to HTTPS client" in probes.readiness_failure(main, plain)
    assert probes.readiness_failure(main, _serve()) is None
