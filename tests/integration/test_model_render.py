"""The LLMInferenceService of the model role, rendered from the settings (tasks/render.yml).

One ansible-playbook run renders every case (one play each) and writes what it rendered, or the
error it stopped with, to JSON. Each rendered object is validated against KServe's own
LLMInferenceService CRD at the pinned commit (tests/tools/upstream.py), then combined with the
real LLMInferenceServiceConfigs of the odh-xks overlay the way KServe's controller combines them
(llmd_emulator.kserve_merge), and the container that results is run the way the image would run it
(llmd_emulator.vllm_cli: real bash for the template's script, vLLM's argument rules): it must start
`vllm serve` with the served model name, port 8000, KServe's TLS files and the role's arguments.
Also checked: TPU placement derived from the TPU pool settings, tensor parallel size consistent
with the chips, the HF token only by reference.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import ROOT, VENV_BIN

from llmd_emulator import kserve_merge, vllm_cli
from llmd_emulator.controllers.llmisvc import scheduler_config_args
from llmd_emulator.testing import kserve_presets, kserve_root

TLS = "/var/run/kserve/tls"


@pytest.fixture(scope="module")
def crd_schema() -> dict:
    """openAPIV3Schema of KServe's LLMInferenceService CRD (v1alpha1) at the pinned commit."""
    path = kserve_root() / "config/crd/full/serving.kserve.io_llminferenceservices.yaml"
    crd = yaml.safe_load(path.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return version["schema"]["openAPIV3Schema"]


def combined_spec(o: dict) -> dict:
    """The spec KServe's controller combines for o from the real presets."""
    presets = kserve_presets(kserve_root())
    configs = {
        d["metadata"]["name"]: d for d in presets if d["kind"] == "LLMInferenceServiceConfig"
    }
    (cm,) = [d for d in presets if d["kind"] == "ConfigMap"]
    gw_ns, gw_name = json.loads(cm["data"]["ingress"])["kserveIngressGateway"].split("/")
    global_config = {
        "systemNamespace": "opendatahub",
        "ingressGatewayNamespace": gw_ns,
        "ingressGatewayName": gw_name,
    }
    spec, _refs = kserve_merge.combine(o, configs.get, global_config)
    return spec


def effective_main(o: dict) -> dict:
    """The main container KServe's controller renders for o from the real presets."""
    (main,) = [c for c in combined_spec(o)["template"]["containers"] if c["name"] == "main"]
    return main


def serve_of(o: dict) -> vllm_cli.Serve:
    result = vllm_cli.effective(effective_main(o))
    assert isinstance(result, vllm_cli.Serve), result
    return result


TOKEN = "hf_RenderTestTokenNeverInTheObject42"

CASES = {
    "default": {},
    "one-chip": {"llmd_tpu_machine_type": "ct6e-standard-1t", "llmd_tpu_topology": "1x1"},
    "eight-chips-tp4": {
        "llmd_tpu_machine_type": "ct6e-standard-8t",
        "llmd_tpu_topology": "2x4",
        "model_tensor_parallel_size": 4,
        "llmd_model_replicas": 3,
        "model_base_refs": ["kserve-config-llm-template"],
        "llmd_model_extra_args": ["--enable-prefix-caching"],
    },
    "gpu-by-inventory": {
        "model_accelerator": "gpu",
        "model_tensor_parallel_size": 1,
        "llmd_model_image": "registry.redhat.io/rhaiis/vllm-cuda-rhel9:3.2.5",
        "model_scheduling": {
            "node_selector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ],
            "resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}},
            "env": [],
        },
    },
    # molecule/kind: the CPU stand-in of vLLM (llm-d's inference simulator), from that inventory
    "kind-simulator": {
        k: v
        for k, v in yaml.safe_load(
            (
                ROOT / "molecule" / "kind" / "inventory" / "group_vars" / "all" / "main.yml"
            ).read_text()
        ).items()
        if k.startswith(("model_", "llmd_model_"))
    },
    # the EPP at upstream's default verbosity: KServe's scheduler config left alone
    "epp-upstream-verbosity": {"model_epp_verbosity": 2},
    # a name too long for name + "-inference-pool": KServe's ChildName shortens it with a hash
    "epp-long-name": {
        "llmd_model_service_name": "a-service-name-long-enough-to-be-cut-" + "x" * 20
    },
    # Refused, with the reason:
    "multi-host": {"llmd_tpu_topology": "4x4", "llmd_tpu_node_count": 4},
    "tp-does-not-divide": {"model_tensor_parallel_size": 3},
    "gpu-without-placement": {"model_accelerator": "gpu", "model_tensor_parallel_size": 1},
    "served-name-overridden": {"llmd_model_extra_args": ["--served-model-name=/mnt/models"]},
    "no-token": {"llmd_hf_token": ""},
    "half-on-tpu": {"llmd_model_dtype": "half"},
    "other-port": {"model_port": 9000},
    "bad-uri": {"llmd_model_uri": "Qwen/Qwen2.5-3B-Instruct"},
}


def play(name: str, variables: dict, out: str) -> dict:
    return {
        "name": name,
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars": {"llmd_hf_token": TOKEN, **variables},
        "tasks": [
            {
                "name": "Render",
                "block": [
                    {
                        "name": "Render the LLMInferenceService",
                        "ansible.builtin.include_role": {
                            "name": "llmd.gke.model",
                            "tasks_from": "render",
                        },
                    },
                    {
                        "name": "Write it",
                        "ansible.builtin.copy": {
                            "content": "{{ {'object': model_llmisvc} | to_json }}",
                            "dest": out,
                            "mode": "0600",
                        },
                    },
                ],
                "rescue": [
                    {
                        "name": "Write the error",
                        "ansible.builtin.copy": {
                            "content": "{{ {'error': ansible_failed_result.msg} | to_json }}",
                            "dest": out,
                            "mode": "0600",
                        },
                    }
                ],
            }
        ],
    }


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """case -> {"object": ...} or {"error": ...}, plus the run's output under "__output__"."""
    tmp = tmp_path_factory.mktemp("render")
    book = tmp / "render.yml"
    outs = {case: str(tmp / f"{case}.json") for case in CASES}
    book.write_text(
        yaml.safe_dump([play(case, v, outs[case]) for case, v in CASES.items()], sort_keys=False)
    )
    env = {
        **os.environ,
        "HOME": str(tmp),
        "ANSIBLE_HOME": str(tmp / "ansible"),
        "ANSIBLE_LOCAL_TEMP": str(tmp / "local"),
        "ANSIBLE_NOCOLOR": "1",
    }
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), str(book), "-i", "inventories/sandbox", "-vvv"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    results = {case: json.loads(Path(path).read_text()) for case, path in outs.items()}
    results["__output__"] = proc.stdout + proc.stderr
    return results


def obj(rendered, case: str) -> dict:
    assert "object" in rendered[case], rendered[case]
    return rendered[case]["object"]


def main_container(o: dict) -> dict:
    (container,) = o["spec"]["template"]["containers"]
    return container


def env_of(o: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in main_container(o)["env"]}


@pytest.mark.parametrize(
    "case", ["default", "one-chip", "eight-chips-tp4", "gpu-by-inventory", "kind-simulator"]
)
def test_rendered_objects_are_valid(rendered, case, crd_schema):
    errors = [
        e.message for e in jsonschema.Draft7Validator(crd_schema).iter_errors(obj(rendered, case))
    ]
    assert errors == []
    # args would replace the template's script whole (bash -c --model=...).
    assert "args" not in main_container(obj(rendered, case))
    assert "command" not in main_container(obj(rendered, case))
    serve = serve_of(obj(rendered, case))
    served = CASES[case].get("llmd_model_name", "Qwen/Qwen2.5-3B-Instruct")
    assert serve.model == "/mnt/models"
    assert serve.served_names == [served]  # without it vLLM answers only to /mnt/models
    assert serve.port == 8000
    assert serve.options["ssl-certfile"] == f"{TLS}/tls.crt"
    assert serve.options["ssl-keyfile"] == f"{TLS}/tls.key"
    assert serve.options["enable-ssl-refresh"] is True
    assert serve.options["dtype"] == CASES[case].get("llmd_model_dtype", "bfloat16")
    # The token is referenced, never inlined.
    assert env_of(obj(rendered, case))["HF_TOKEN"] == {
        "secretKeyRef": {"name": "hf-token", "key": "HF_TOKEN"}
    }
    assert TOKEN not in json.dumps(obj(rendered, case))


def test_the_token_is_never_printed(rendered):
    assert TOKEN not in rendered["__output__"]


def test_default_tpu_placement_comes_from_the_pool_settings(rendered):
    o = obj(rendered, "default")
    template = o["spec"]["template"]
    assert template["nodeSelector"] == {
        "cloud.google.com/gke-tpu-accelerator": "tpu-v6e-slice",
        "cloud.google.com/gke-tpu-topology": "2x2",
    }
    assert template["tolerations"] == [
        {"key": "google.com/tpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert main_container(o)["resources"]["limits"] == {"google.com/tpu": "4"}
    assert main_container(o)["resources"]["requests"] == {"google.com/tpu": "4"}
    assert serve_of(o).options["tensor-parallel-size"] == "4"
    startup = main_container(o)["startupProbe"]
    # 1800 s of start-up (model_startup_timeout) before the kubelet may restart vLLM.
    assert startup["periodSeconds"] * startup["failureThreshold"] == 1800
    assert startup["httpGet"] == {"path": "/health", "port": 8000, "scheme": "HTTPS"}
    env = env_of(o)
    assert env["TPU_CHIPS_PER_HOST_BOUNDS"] == "2,2,1"
    assert env["TPU_HOST_BOUNDS"] == "1,1,1"
    assert env["PJRT_DEVICE"] == "TPU"
    assert template["imagePullSecrets"] == [{"name": "redhat-pull-secret"}]
    assert o["spec"]["router"]["gateway"]["refs"] == [
        {"name": "inference-gateway", "namespace": "opendatahub"}
    ]
    assert o["spec"]["replicas"] == 1
    assert "baseRefs" not in o["spec"]


def test_other_tpu_shapes_and_overrides(rendered):
    one = obj(rendered, "one-chip")
    assert main_container(one)["resources"]["limits"] == {"google.com/tpu": "1"}
    assert serve_of(one).options["tensor-parallel-size"] == "1"
    assert env_of(one)["TPU_CHIPS_PER_HOST_BOUNDS"] == "1,1,1"

    eight = obj(rendered, "eight-chips-tp4")
    assert main_container(eight)["resources"]["limits"] == {"google.com/tpu": "8"}
    assert serve_of(eight).options["tensor-parallel-size"] == "4"
    assert env_of(eight)["TPU_CHIPS_PER_HOST_BOUNDS"] == "2,4,1"
    assert eight["spec"]["template"]["nodeSelector"]["cloud.google.com/gke-tpu-topology"] == "2x4"
    assert eight["spec"]["replicas"] == 3
    assert eight["spec"]["baseRefs"] == [{"name": "kserve-config-llm-template"}]
    assert serve_of(eight).options["enable-prefix-caching"] is True


def test_a_gpu_variant_by_inventory_alone(rendered):
    gpu = obj(rendered, "gpu-by-inventory")
    text = json.dumps(gpu)
    assert "google.com/tpu" not in text and "TPU_" not in text and "PJRT" not in text
    assert main_container(gpu)["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert gpu["spec"]["template"]["nodeSelector"] == {
        "cloud.google.com/gke-accelerator": "nvidia-l4"
    }
    assert main_container(gpu)["image"].endswith("vllm-cuda-rhel9:3.2.5")


def test_the_kind_scenario_renders_the_simulator_on_cpu(rendered):
    sim = obj(rendered, "kind-simulator")
    template = sim["spec"]["template"]
    assert not template.get("nodeSelector") and not template.get("tolerations")
    assert "google.com/tpu" not in json.dumps(main_container(sim).get("resources"))
    assert main_container(sim)["resources"]["limits"] == {"memory": "1Gi"}
    assert main_container(sim)["image"].startswith("ghcr.io/llm-d/llm-d-inference-sim:")
    assert sim["spec"]["model"]["name"] == "Qwen/Qwen2.5-0.5B-Instruct"


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("multi-host", "spans several nodes (multi-host slice)"),
        ("tp-does-not-divide", "model_tensor_parallel_size 3 does not divide the 4 TPU chips"),
        ("gpu-without-placement", "set model_scheduling"),
        ("served-name-overridden", "llmd_model_extra_args sets --served-model-name=/mnt/models"),
        ("half-on-tpu", "llmd_model_dtype is half: TPUs compute in bfloat16"),
        ("other-port", "model_port is 9000: KServe serves vLLM on 8000"),
        ("no-token", "llmd_hf_token is empty"),
        ("bad-uri", "is not a model URI"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(rendered, case, reason):
    assert "error" in rendered[case], rendered[case]
    assert reason in " ".join(rendered[case]["error"].split())


def test_args_only_would_never_start_vllm(rendered):
    """The role's old shape (vLLM arguments in args) meets the template's `/bin/bash -c`."""
    old = json.loads(json.dumps(obj(rendered, "default")))
    main_container(old)["args"] = ["--model=/mnt/models", "--served-model-name=x"]
    result = vllm_cli.effective(effective_main(old))
    assert isinstance(result, vllm_cli.Failed)
    assert result.exit_code == 2
    assert result.lines[0] == "/bin/bash: --: invalid option"


# --- the EPP's arguments after KServe merges the service over its scheduler config (issue 16) ---
def epp_args(service: dict) -> list[str]:
    """The EPP container's args as KServe runs them: the real kserve-config-llm-scheduler and the
    service combined (args replaced whole when the service sets them), then --config-text
    appended when neither side configures the scheduler (scheduler.go)."""
    spec = combined_spec(service)
    (main,) = [
        c for c in spec["router"]["scheduler"]["template"]["containers"] if c["name"] == "main"
    ]
    main = json.loads(json.dumps(main))
    scheduler_config_args(main, None)
    return [str(a) for a in main["args"]]


def flag_values(args: list[str]) -> dict[str, str | None]:
    """{flag: value} of Go-style args (a flag followed by a value, or alone for a bool)."""
    found, index = {}, 0
    while index < len(args):
        flag = args[index]
        assert flag.startswith("-"), f"{flag!r} is not a flag in {args}"
        if "=" in flag:
            key, value = flag.split("=", 1)
            found[key.lstrip("-")] = value
            index += 1
        elif index + 1 < len(args) and not args[index + 1].startswith("-"):
            found[flag.lstrip("-")] = args[index + 1]
            index += 2
        else:
            found[flag.lstrip("-")] = None
            index += 1
    return found


@pytest.mark.parametrize(
    ("case", "verbosity"),
    [("default", "3"), ("epp-upstream-verbosity", None), ("epp-long-name", "3")],
)
def test_the_epp_gets_every_upstream_argument(rendered, case, verbosity):
    service = obj(rendered, case)
    # What KServe's config alone gives the EPP of this service (no scheduler template of ours).
    bare = json.loads(json.dumps(service))
    bare["spec"]["router"]["scheduler"] = {}
    upstream = flag_values(epp_args(bare))
    merged = flag_values(epp_args(service))
    assert {k: merged.get(k, "<missing>") for k in upstream} == upstream
    assert merged.get("v") == verbosity  # None: no -v, the EPP's default (2)
    assert set(merged) - set(upstream) == ({"v"} if verbosity else set())
    scheduler = service["spec"]["router"]["scheduler"]
    if verbosity is None:
        assert scheduler == {}
    else:  # only the args: image, ports, probes, volumes stay KServe's
        containers = scheduler["template"]["containers"]
        assert list(scheduler["template"]) == ["containers"]
        assert [sorted(c) for c in containers] == [["args", "name"]]
        assert containers[0]["name"] == "main"


def test_a_long_service_name_gets_kserve_s_child_name(rendered):
    name = CASES["epp-long-name"]["llmd_model_service_name"]
    args = flag_values(epp_args(obj(rendered, "epp-long-name")))
    assert len(args["pool-name"]) == 63 and args["pool-name"].endswith("-inference-pool")
    assert args["pool-name"] == kserve_merge.child_name(name, "-inference-pool")
    assert args["pool-name"] != name + "-inference-pool"
