"""The LLMInferenceService of the model role, rendered from the settings (tasks/render.yml).

One ansible-playbook run renders every case (one play each) and writes what it rendered, or the
error it stopped with, to JSON. Each rendered object is validated against a schema of our own
making (tests/fixtures/schemas/llminferenceservice.schema.yaml; see its header) and checked for
what the issue asks: served model name passed to vLLM, TPU placement derived from the TPU pool
settings, tensor parallel size consistent with the chips, the HF token only by reference.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import ROOT, VENV_BIN

SCHEMA = yaml.safe_load(
    (ROOT / "tests" / "fixtures" / "schemas" / "llminferenceservice.schema.yaml").read_text()
)
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
def test_rendered_objects_are_valid(rendered, case):
    errors = [
        e.message for e in jsonschema.Draft7Validator(SCHEMA).iter_errors(obj(rendered, case))
    ]
    assert errors == []
    args = main_container(obj(rendered, case))["args"]
    # Without it vLLM answers only to /mnt/models.
    served = CASES[case].get("llmd_model_name", "Qwen/Qwen2.5-3B-Instruct")
    assert f"--served-model-name={served}" in args
    assert "--model=/mnt/models" in args
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
    assert "--tensor-parallel-size=4" in main_container(o)["args"]
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
    assert "--tensor-parallel-size=1" in main_container(one)["args"]
    assert env_of(one)["TPU_CHIPS_PER_HOST_BOUNDS"] == "1,1,1"

    eight = obj(rendered, "eight-chips-tp4")
    assert main_container(eight)["resources"]["limits"] == {"google.com/tpu": "8"}
    assert "--tensor-parallel-size=4" in main_container(eight)["args"]
    assert env_of(eight)["TPU_CHIPS_PER_HOST_BOUNDS"] == "2,4,1"
    assert eight["spec"]["template"]["nodeSelector"]["cloud.google.com/gke-tpu-topology"] == "2x4"
    assert eight["spec"]["replicas"] == 3
    assert eight["spec"]["baseRefs"] == [{"name": "kserve-config-llm-template"}]
    assert main_container(eight)["args"][-1] == "--enable-prefix-caching"


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
    assert "--served-model-name=Qwen/Qwen2.5-0.5B-Instruct" in main_container(sim)["args"]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("multi-host", "spans several nodes (multi-host slice)"),
        ("tp-does-not-divide", "model_tensor_parallel_size 3 does not divide the 4 TPU chips"),
        ("gpu-without-placement", "set model_scheduling"),
        ("served-name-overridden", "llmd_model_extra_args sets --served-model-name=/mnt/models"),
        ("no-token", "llmd_hf_token is empty"),
        ("bad-uri", "is not a model URI"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(rendered, case, reason):
    assert "error" in rendered[case], rendered[case]
    assert reason in " ".join(rendered[case]["error"].split())


# --- the EPP's arguments after KServe merges the service over its scheduler config (issue 16) ---
UPSTREAM = Path(os.environ.get("LLMD_UPSTREAM_DIR", "/work/shared/upstream"))
KSERVE_CONFIG = UPSTREAM / "kserve-9682be26da593e5dd52555848cfc39a0b9fef9cd-config.tar.gz"


def child_name(parent: str, suffix: str) -> str:
    """knative.dev/pkg kmeta.ChildName, which KServe's config templates call."""
    assert len(suffix) < 63 - 32  # the branch for longer suffixes is not needed here
    if len(parent) > 63 - len(suffix):
        parent = parent[: 63 - 32 - len(suffix)] + hashlib.md5(parent.encode()).hexdigest()
    return parent + suffix


def render_config_value(value: str, name: str, namespace: str) -> str:
    """The two template actions the scheduler config's args use, rendered for one service."""
    value = re.sub(
        r"\{\{\s*ChildName \.ObjectMeta\.Name `([^`]*)`\s*\}\}",
        lambda m: child_name(name, m.group(1)),
        value,
    )
    return re.sub(r"\{\{\s*\.ObjectMeta\.Namespace\s*\}\}", namespace, value)


def epp_args(service: dict, config: dict) -> list[str]:
    """The EPP container's args as KServe runs them: the service's router.scheduler.template
    merged over the config's (containers by name, args replaced whole when the service sets them),
    then --config-text appended when neither side sets a configuration (scheduler.go).
    """
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    (base,) = [
        c
        for c in config["spec"]["router"]["scheduler"]["template"]["containers"]
        if c["name"] == "main"
    ]
    args = [render_config_value(str(a), name, namespace) for a in base["args"]]
    template = ((service["spec"].get("router") or {}).get("scheduler") or {}).get("template") or {}
    for container in template.get("containers") or ():
        if container["name"] == "main" and "args" in container:
            args = [str(a) for a in container["args"]]
    if not {"--config-text", "-config-text", "--config-file", "-config-file"} & set(args):
        args += ["--config-text", "<KServe's default EndpointPickerConfig>"]
    return args


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


@pytest.fixture(scope="module")
def scheduler_config():
    if not KSERVE_CONFIG.is_file():
        pytest.skip(f"the real KServe config tarball is not at {KSERVE_CONFIG} (LLMD_UPSTREAM_DIR)")
    with tarfile.open(KSERVE_CONFIG) as tar:
        member = tar.extractfile("kserve/config/llmisvc/config-llm-scheduler.yaml")
        return yaml.safe_load(member.read())


@pytest.mark.parametrize(
    ("case", "verbosity"),
    [("default", "3"), ("epp-upstream-verbosity", None), ("epp-long-name", "3")],
)
def test_the_epp_gets_every_upstream_argument(rendered, scheduler_config, case, verbosity):
    service = obj(rendered, case)
    upstream = flag_values(
        [
            render_config_value(str(a), service["metadata"]["name"], "llm-d-inference-scheduling")
            for a in scheduler_config["spec"]["router"]["scheduler"]["template"]["containers"][0][
                "args"
            ]
        ]
    )
    merged = flag_values(epp_args(service, scheduler_config))
    assert {k: merged.get(k, "<missing>") for k in upstream} == upstream
    assert merged.get("v") == verbosity  # None: no -v, the EPP's default (2)
    assert set(merged) - set(upstream) == ({"v", "config-text"} if verbosity else {"config-text"})
    scheduler = service["spec"]["router"]["scheduler"]
    if verbosity is None:
        assert scheduler == {}
    else:  # only the args: image, ports, probes, volumes stay KServe's
        containers = scheduler["template"]["containers"]
        assert list(scheduler["template"]) == ["containers"]
        assert [sorted(c) for c in containers] == [["args", "name"]]
        assert containers[0]["name"] == "main"


def test_a_long_service_name_gets_kserve_s_child_name(rendered, scheduler_config):
    name = CASES["epp-long-name"]["llmd_model_service_name"]
    args = flag_values(epp_args(obj(rendered, "epp-long-name"), scheduler_config))
    assert len(args["pool-name"]) == 63 and args["pool-name"].endswith("-inference-pool")
    assert args["pool-name"] == child_name(name, "-inference-pool")
    assert args["pool-name"] != name + "-inference-pool"
