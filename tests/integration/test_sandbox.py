"""site.yml and the lifecycle playbooks on the sandbox, one emulator and one converge for all.

The tests of this file run in order on one emulator (module scope): site.yml converges through
`make sandbox KEEP=1`'s script (with -vvv: no secret value is printed), which leaves the emulator
running; the other playbooks run with the command line its summary prints. site.yml converges
again changing nothing but the benchmark's report, and --check predicts no change; the printed
curl, pasted, gets a completion from the model through the emulated gateway and the printed
kubectl line lists its pods; then scale 1 -> 3 -> 0 -> 1 with the TPU pool following (the
emulated cluster autoscaler removes an idle node after seconds here), a support bundle with known
secret values and a planted fault, the teardown refused without the cluster confirmation, per
tag, predicted by --check, then complete, leaving the emulator as it started, and a second
teardown that changes nothing; last, the printed stop command stops the kept sandbox, and says
so when run again.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import (
    PHASES,
    ROOT,
    VENV_BIN,
    Run,
    as_printed,
    changed_tasks,
    isolated_env,
    kubectl,
    recap,
)

from llmd_emulator.cli import process_alive
from llmd_emulator.testing import Endpoints, endpoints_of, running_emulator

NS = "llm-d-inference-scheduling"
MODEL = "Qwen/Qwen2.5-3B-Instruct"
SERVICE = "qwen2-3b-pattern1"
POOL = "tpu-v6e-pool"
CLUSTER = "llmd-sandbox"
# Secret values of our own making: the bundle must contain none of them, in any form.
HF_TOKEN = "hf_LifecycleKnownToken0123456789abcdefXY"
REGISTRY_PASSWORD = "LifecyclePullPassw0rdKnown"
REGISTRY_AUTH = base64.b64encode(f"lifecycle-robot:{REGISTRY_PASSWORD}".encode()).decode()
PLANTED_BEARER = "eyJhbGciOiJSUzI1NiJ9.LifecyclePlantedBearer.c2lnbmF0dXJl"
SECRETS = (
    HF_TOKEN,
    base64.b64encode(HF_TOKEN.encode()).decode(),
    REGISTRY_PASSWORD,
    REGISTRY_AUTH,
    f"lifecycle-robot:{REGISTRY_PASSWORD}",
    PLANTED_BEARER,
)
SETTINGS = {
    "llmd_hf_token": HF_TOKEN,
    "llmd_registry_auth": {"auths": {"registry.redhat.io": {"auth": REGISTRY_AUTH}}},
}
# What the tests of this module share, in order (the first converges).
STATE: dict = {}


# Emulated time runs 1/TIME_SCALE times faster than wall time: the emulated GKE operations, image
# pulls and model loads of the converge take seconds; waits poll every second.
TIME_SCALE = 0.003
SETTINGS_ARG = json.dumps({"scale_poll_delay": 1, **SETTINGS})


@dataclass
class Kept:
    """The sandbox `tests/tools/sandbox.py --keep` converged and left running."""

    converge: Run
    stdout: str
    results: Path
    endpoints: Endpoints
    baseline: set[tuple]
    env: dict

    def printed(self, heading: str) -> str:
        """The command the summary prints under a heading."""
        lines = self.stdout.splitlines()
        return lines[lines.index(heading) + 1].strip()


@pytest.fixture(scope="module")
def kept_sandbox(tmp_path_factory):
    """site.yml once, as `make sandbox KEEP=1 ARGS="-vvv -e <known secrets>"` runs it; the
    kept emulator is stopped at the end of the module whatever happened."""
    base = tmp_path_factory.mktemp("sandbox")
    short = Path(tempfile.mkdtemp(prefix="llmd-"))
    env = isolated_env(base, short)
    # The objects an emulator starts with: a complete teardown leaves these and no more.
    with running_emulator(base / "fresh", time_scale=0.01) as fresh:
        baseline = keys(fresh)
    results = base / "results"
    script = [sys.executable, str(ROOT / "tests" / "tools" / "sandbox.py"), "--results", results]
    proc = subprocess.run(
        [*script, "--keep", "--time-scale", str(TIME_SCALE), "-vvv", "-e", SETTINGS_ARG],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    try:
        endpoints = endpoints_of(results / "emulator")
        # The emulated cluster-autoscaler removes an idle Node after AUTOSCALE_DOWN emulated
        # seconds (about 2 s here): keep Nodes while a test compares the state of two runs.
        endpoints.admin_post("/config", {"gke": {"durations": {"AUTOSCALE_DOWN": 10**7}}})
        yield Kept(
            Run(proc.returncode, proc.stdout + proc.stderr),
            proc.stdout,
            results,
            endpoints,
            baseline,
            env,
        )
    finally:
        subprocess.run([*script, "--stop"], cwd=ROOT, env=env, check=False, timeout=120)
        shutil.rmtree(short, ignore_errors=True)


@pytest.fixture(scope="module")
def sandbox_emulator(kept_sandbox):
    """The kept sandbox's emulator (instead of conftest's own)."""
    return kept_sandbox.endpoints


MORE_PLAYBOOKS = "Run more playbooks against it (scale, verify, diagnose, teardown):"


@pytest.fixture
def sandbox_playbook(playbook, kept_sandbox):
    """sandbox_playbook(book, *args): the command line the kept sandbox's summary prints to run
    more playbooks against it, with another playbook."""
    command = shlex.split(kept_sandbox.printed(MORE_PLAYBOOKS))
    assert command[:2] == [as_printed(VENV_BIN / "ansible-playbook"), "playbooks/verify.yml"], (
        command
    )

    def run(book: str, *args: str, env: dict | None = None, timeout: int = 900) -> Run:
        return playbook(book, *command[2:], *args, env=env, timeout=timeout)

    return run


@pytest.fixture
def run(sandbox_playbook):
    """run(playbook, *args) with the known secrets, against the kept sandbox."""

    def execute(book: str, *args: str):
        return sandbox_playbook(book, "-e", SETTINGS_ARG, *args)

    return execute


def snapshot(endpoints) -> dict[tuple, str]:
    """uid and resourceVersion of every stored object: any write changes one of them."""
    return {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): (
            o["metadata"]["uid"],
            o["metadata"]["resourceVersion"],
        )
        for o in endpoints.state()["objects"]
    }


def keys(endpoints) -> set[tuple]:
    """kind, namespace and name of every stored object but Events."""
    return {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
        for o in endpoints.state()["objects"]
        if o["kind"] != "Event"
    }


def tpu_nodes(endpoints) -> list[str]:
    out = kubectl(
        endpoints, "get", "nodes", "-l", f"cloud.google.com/gke-nodepool={POOL}", "-o", "name"
    )
    return out.split()


def workload_pods(endpoints) -> list[dict]:
    return [
        p
        for p in endpoints.objects("Pod", NS)
        if p["metadata"].get("labels", {}).get("app.kubernetes.io/component")
        == "llminferenceservice-workload"
        and not p["metadata"].get("deletionTimestamp")
    ]


def gke_clusters(endpoints) -> list[dict]:
    request = urllib.request.Request(
        f"{endpoints.gke_url}/v1/projects/llmd-sandbox/locations/-/clusters",
        headers={"Authorization": "Bearer any"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response).get("clusters") or []


def converged():
    if not STATE.get("converged"):
        pytest.skip("needs the converge of test_converge (run the whole file)")


BENCH = "llmd.gke.bench : Run the load benchmark"


def test_converge_then_idempotent_then_check_mode_changes_nothing(
    run, kept_sandbox, sandbox_emulator
):
    STATE["baseline"] = kept_sandbox.baseline
    bench = kept_sandbox.results / "bench"
    first = kept_sandbox.converge
    assert first.rc == 0, first.output[-5000:]
    assert recap(first)["failed"] == 0
    for secret in SECRETS:
        assert secret not in first.output
    (secret,) = [
        o for o in sandbox_emulator.objects("Secret", NS) if o["metadata"]["name"] == "hf-token"
    ]
    assert base64.b64decode(secret["data"]["HF_TOKEN"]).decode() == HF_TOKEN
    assert len(tpu_nodes(sandbox_emulator)) == 1
    # The model is Ready, and the wait said how long each stage took.
    assert f"LLMInferenceService {NS}/{SERVICE} Ready at" in first
    assert "Stages (s): created" in first
    # verify and bench answered through the gateway, after the NetworkPolicies
    assert f"/{NS}/{SERVICE} serves Qwen/Qwen2.5-3B-Instruct." in first
    assert "Prefix-cache routing: 16 hits in 16 follow-up requests" in first
    # ... from the EPP's decision lines, which it logs at the verbosity the model phase set
    (epp,) = [
        d
        for d in sandbox_emulator.objects("Deployment", NS)
        if d["metadata"]["name"] == f"{SERVICE}-kserve-router-scheduler"
    ]
    (main,) = [c for c in epp["spec"]["template"]["spec"]["containers"] if c["name"] == "main"]
    assert main["args"][main["args"].index("--v") + 1] == "3" and "--cert-path" in main["args"]
    assert "concurrency 4: 24 ok, 0 failed" in first
    (report,) = bench.glob("*/report.md")
    # The summary: clean paths, every phase of site.yml with its time, the model's kept access.
    assert f"Reports: {report.parent}" in first
    assert "sandbox/../" not in first.output
    assert "/../" not in kept_sandbox.stdout.split("== sandbox summary")[1]
    table = kept_sandbox.stdout.split("Time per phase (tag: seconds):\n")[1]
    table = table.split("\nGKE cluster", maxsplit=1)[0]
    seconds = {
        m.group(1): float(m.group(2)) for m in re.finditer(r"^  (.+?)\s+(\d+\.\d)$", table, re.M)
    }
    assert list(seconds) == PHASES
    # Each phase did work: more than the argument validation a phase skipped by tag takes; the
    # phases add up to no more than the whole run.
    assert min(seconds.values()) > 0.4, seconds
    total = re.search(r"^site\.yml: .* \((\d+) s\)$", kept_sandbox.stdout, re.M)
    assert sum(seconds.values()) <= int(total.group(1)) + 1, (seconds, total.group(0))
    converged = snapshot(sandbox_emulator)

    # Again: only the benchmark reports a change (it sends load and writes a new report). This is
    # the rerun of every phase (the per-phase tests converge once each): no object written, so no
    # pod restarted, and the gateway phase publishes the same URL.
    published = r"Gateway opendatahub/inference-gateway: (http://127\.0\.0\.1:\d+)"
    (gateway,) = set(re.findall(published, first.output))
    second = run("site.yml")
    assert second.rc == 0, second.output
    assert changed_tasks(second) == [BENCH], second.output
    assert len(list(bench.glob("*/report.md"))) == 2
    assert snapshot(sandbox_emulator) == converged
    assert f"Gateway opendatahub/inference-gateway: {gateway}" in second

    check = run("site.yml", "--check", "--diff")
    assert check.rc == 0, check.output
    assert set(changed_tasks(check)) <= {BENCH}, check.output
    assert "Check mode: no request sent" in check
    assert f"Gateway opendatahub/inference-gateway: {gateway}" in check
    assert len(list(bench.glob("*/report.md"))) == 2
    assert snapshot(sandbox_emulator) == converged
    STATE["converged"] = True


def paste(line: str, env: dict) -> subprocess.CompletedProcess:
    """A printed command line run as a user pastes it: bash, from the repository root."""
    return subprocess.run(
        ["bash", "-c", line], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def test_the_printed_curl_and_kubectl_answer_from_the_kept_sandbox(kept_sandbox):
    converged()
    # The model has stayed Ready through the runs above (minutes of compressed emulated time).
    state = json.loads((kept_sandbox.results / "sandbox.json").read_text())
    assert process_alive(state["pid"])
    curl = kept_sandbox.printed(f"Ask the model {MODEL} through the emulated gateway:")
    assert curl == state["models"][0]["curl"]
    # The URL the gateway phase reported, with the model's namespace and name.
    (gateway,) = re.findall(
        r"Gateway opendatahub/inference-gateway: (http://\S+)", kept_sandbox.stdout
    )
    assert shlex.split(curl)[2] == f"{gateway}/{NS}/{SERVICE}/v1/completions"
    answer = paste(curl, kept_sandbox.env)
    assert answer.returncode == 0, answer.stderr
    completion = json.loads(answer.stdout)
    assert completion["object"] == "text_completion"
    assert completion["model"] == MODEL
    assert completion["choices"][0]["text"].strip()
    assert completion["usage"]["completion_tokens"] > 0

    # The kubectl line lists the model's pods (the emulated API's table has the columns NAME and
    # AGE only: their phase comes from the emulator's state).
    pods = paste(kept_sandbox.printed("Look at the cluster:"), kept_sandbox.env)
    assert pods.returncode == 0, pods.stderr
    listed = {tuple(line.split()[:2]) for line in pods.stdout.splitlines()[1:]}
    (pod,) = workload_pods(kept_sandbox.endpoints)
    assert (NS, pod["metadata"]["name"]) in listed, pods.stdout
    assert pod["status"]["phase"] == "Running"


def test_scale_1_3_0_1_with_the_pool_following(run, sandbox_emulator):
    converged()
    # The emulated autoscaler removes an idle node after 30 emulated seconds (0.09 s here).
    sandbox_emulator.admin_post("/config", {"gke": {"durations": {"AUTOSCALE_DOWN": 30}}})

    three = run("playbooks/scale.yml", "-e", "llmd_model_replicas=3")
    assert three.rc == 0, three.output[-5000:]
    assert recap(three)["changed"] == 1
    assert "3 replica(s) ready; TPU pool tpu-v6e-pool: 3 node(s)" in three
    ready = [p for p in workload_pods(sandbox_emulator) if p["status"].get("phase") == "Running"]
    assert len(ready) == 3
    assert len(tpu_nodes(sandbox_emulator)) == 3
    # Only spec.replicas changed: the rest of the spec the model phase applied is still there.
    (svc,) = sandbox_emulator.objects("LLMInferenceService", NS)
    assert svc["spec"]["replicas"] == 3
    assert svc["spec"]["model"]["name"] == "Qwen/Qwen2.5-3B-Instruct"
    assert svc["spec"]["template"]["containers"]

    # The guide's pattern 3: the verify phase sees groups spread over the 3 pods, each kept on its.
    pattern3 = {
        "verify_prefix_groups": 6,
        "verify_prefix_requests_per_group": 4,
        "verify_prefix_max_concurrency": 3,
        "verify_checks": ["models"],
    }
    verify = run("playbooks/verify.yml", "-e", json.dumps(pattern3))
    assert verify.rc == 0, verify.output[-5000:]
    assert "Prefix-cache routing: 18 hits in 18 follow-up requests (ratio 1.0" in verify
    # (the YAML callback doubles the quotes of the printed dict)
    routing = " ".join(verify.output.split()).split("Prefix-cache routing:")[1].split("p50")[0]
    # New prefixes are spread by the EPP's scores (upstream's max-score-picker breaks ties at
    # random), so 6 groups need not reach all 3 pods: more than one, and only the model's pods.
    spread = set(re.findall(rf"'+({SERVICE}-kserve-[^']+)'+: \d+", routing))
    assert 2 <= len(spread) <= 3, routing
    assert spread <= {p["metadata"]["name"] for p in ready}, routing

    again = run("playbooks/scale.yml", "-e", "llmd_model_replicas=3")
    assert again.rc == 0, again.output[-3000:]
    assert recap(again)["changed"] == 0, again.output

    before = keys(sandbox_emulator)
    check = run("playbooks/scale.yml", "-e", "llmd_model_replicas=0", "--check")
    assert check.rc == 0, check.output[-3000:]
    assert recap(check)["changed"] == 1
    assert "3 -> 0 replica(s)" in check
    assert keys(sandbox_emulator) == before
    assert sandbox_emulator.objects("LLMInferenceService", NS)[0]["spec"]["replicas"] == 3

    zero = run(
        "playbooks/scale.yml",
        "-e",
        json.dumps(
            {"llmd_model_replicas": 0, "scale_node_wait_timeout": 120, "scale_fail_on_nodes": True}
        ),
    )
    assert zero.rc == 0, zero.output[-5000:]
    assert "0 replica(s), no workload pod; TPU pool tpu-v6e-pool: 0 node(s)" in zero
    assert workload_pods(sandbox_emulator) == []
    assert tpu_nodes(sandbox_emulator) == []

    one = run("playbooks/scale.yml", "-e", "llmd_model_replicas=1")
    assert one.rc == 0, one.output[-5000:]
    assert "1 replica(s) ready; TPU pool tpu-v6e-pool: 1 node(s)" in one
    assert len(tpu_nodes(sandbox_emulator)) == 1

    bad = run("playbooks/scale.yml", "-e", "llmd_model_replicas=-1")
    assert bad.rc != 0
    assert "must be a whole number >= 0" in bad


def test_diagnose_bundle_has_no_secret_and_names_the_planted_fault(run, sandbox_emulator, tmp_path):
    converged()
    # A log line of the EPP with the known token and a bearer token in it.
    (epp,) = [
        p["metadata"]["name"]
        for p in sandbox_emulator.objects("Pod", NS)
        if p["metadata"]["labels"].get("app.kubernetes.io/component")
        == "llminferenceservice-router-scheduler"
    ]
    sandbox_emulator.admin_post(
        "/logs",
        {
            "namespace": NS,
            "pod": epp,
            "container": "main",
            "lines": [
                f"debug: loaded token {HF_TOKEN}",
                f"GET /v1/models Authorization: Bearer {PLANTED_BEARER}",
                f"registry auth {REGISTRY_AUTH} password {REGISTRY_PASSWORD}",
            ],
        },
    )
    # The planted fault: vLLM's new pod crashes on a Hugging Face 401; scale fails fast on it.
    sandbox_emulator.admin_post("/scenario", {"add": ["crashloop-hf-401"]})
    try:
        failed = run("playbooks/scale.yml", "-e", "llmd_model_replicas=2")
        assert failed.rc != 0
        assert "the Hugging Face Hub refused the token (401)" in failed

        results = tmp_path / "results"
        # Check mode reads and summarises, and writes no archive.
        predicted = run(
            "playbooks/diagnose.yml", "-e", f"diagnose_results_dir={results}", "--check"
        )
        assert predicted.rc == 0, predicted.output[-5000:]
        assert "(check mode: not written)" in predicted
        assert "the Hugging Face Hub refused the token (401)" in predicted
        assert not results.exists() or not any(results.iterdir())
        bundle = run("playbooks/diagnose.yml", "-e", f"diagnose_results_dir={results}", "-vvv")
    finally:
        sandbox_emulator.admin_post("/scenario", {"remove": ["crashloop-hf-401"]})
    assert bundle.rc == 0, bundle.output[-5000:]
    for secret in SECRETS:
        assert secret not in bundle.output
    (archive,) = results.glob("llmd-support-*.tar.gz")
    assert f"Support bundle: {archive}" in bundle
    assert "the Hugging Face Hub refused the token (401)" in bundle

    with tarfile.open(archive) as tar:
        files = {
            m.name.split("/", 1)[1]: tar.extractfile(m).read().decode()
            for m in tar.getmembers()
            if m.isfile()
        }
    for name, text in files.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret[:6]}... in {name}"
    # The planted lines are there, redacted.
    (epp_log,) = [t for n, t in files.items() if n.startswith(f"logs/{NS}/{epp}/")]
    assert "debug: loaded token <redacted>" in epp_log
    assert "Authorization: Bearer <redacted>" in epp_log
    # Layout: the LLMInferenceService, its children, conditions, pods, events, versions, logs of
    # vLLM, the EPP, the gateway, the KServe controller and the operators.
    for name in ("summary.txt", "summary.json", "llmisvc.json", "children.json", "versions.json"):
        assert name in files
    for kind in ("pods", "events", "deployments", "secrets"):
        assert f"{kind}/{NS}.json" in files and f"{kind}/opendatahub.json" in files
    logs = [n for n in files if n.startswith("logs/")]
    for part in (
        f"logs/{NS}/{SERVICE}-kserve-",
        f"logs/{NS}/{SERVICE}-kserve-router-scheduler-",
        "logs/opendatahub/inference-gateway-istio-",
        "logs/opendatahub/kserve-controller-manager-",
        "logs/istio-system/",
        "logs/cert-manager-operator/",
    ):
        assert any(n.startswith(part) for n in logs), (part, logs)
    svc = json.loads(files["llmisvc.json"])
    assert svc["object"]["metadata"]["name"] == SERVICE
    assert any(c["type"] == "Ready" for c in svc["conditions"])
    assert json.loads(files["children.json"])["workload"]["exists"] is True
    # Secrets: names, types and key names only.
    secrets = json.loads(files[f"secrets/{NS}.json"])
    hf = next(s for s in secrets if s["name"] == "hf-token")
    assert hf["keys"] == ["HF_TOKEN"]
    assert "data" not in hf
    versions = json.loads(files["versions.json"])
    assert versions["kubernetes"]["gitVersion"]
    assert any(i["image"] for i in versions["images"])
    assert "helm" in versions and "kubectl" in versions
    # The summary says what is wrong, with llmisvc_wait's rules.
    summary = json.loads(files["summary.json"])
    assert summary["healthy"] is False
    assert summary["diagnosis"]["reason"] == "HuggingFace401"
    assert "refused the token (401)" in files["summary.txt"]


def test_teardown_refuses_the_cluster_without_confirmation(run, sandbox_emulator):
    converged()
    before = keys(sandbox_emulator)
    for extra in ((), ("-e", "llmd_teardown_confirm_cluster=another-cluster")):
        refused = run("playbooks/teardown.yml", *extra)
        assert refused.rc != 0
        assert "Refusing to delete the GKE cluster llmd-sandbox" in refused
        assert "llmd_teardown_confirm_cluster" in refused
        assert recap(refused)["changed"] == 0
    assert keys(sandbox_emulator) == before
    assert [c["name"] for c in gke_clusters(sandbox_emulator)] == [CLUSTER]


def test_teardown_by_tag_then_everything_then_nothing(run, sandbox_emulator, kept_sandbox):
    converged()
    model = run("playbooks/teardown.yml", "--tags", "model")
    assert model.rc == 0, model.output[-5000:]
    left = keys(sandbox_emulator)
    assert ("LLMInferenceService", NS, SERVICE) not in left
    assert ("Secret", NS, "hf-token") not in left
    assert workload_pods(sandbox_emulator) == []
    # Only the model: its policies, namespace, the gateway and the platform stay.
    assert ("Namespace", None, NS) in left
    assert any(k[0] == "NetworkPolicy" for k in left)
    assert ("Gateway", "opendatahub", "inference-gateway") in left
    assert [c["name"] for c in gke_clusters(sandbox_emulator)] == [CLUSTER]

    everything = json.dumps(
        {
            "llmd_teardown_confirm_cluster": CLUSTER,
            "llmd_teardown_crds": True,
            "llmd_teardown_namespaces": True,
        }
    )
    check = run("playbooks/teardown.yml", "-e", everything, "--check")
    assert check.rc == 0, check.output[-5000:]
    assert recap(check)["changed"] > 0
    assert keys(sandbox_emulator) == left
    assert [c["name"] for c in gke_clusters(sandbox_emulator)] == [CLUSTER]

    full = run("playbooks/teardown.yml", "-e", everything)
    assert full.rc == 0, full.output[-5000:]
    # Nothing site.yml made is left: the objects are those the emulator started with.
    assert keys(sandbox_emulator) - STATE["baseline"] == set()
    assert gke_clusters(sandbox_emulator) == []
    # ... nor the kubeconfig the cluster phase wrote (llmd_kubeconfig of the kept sandbox)
    assert (kept_sandbox.results / "kubeconfig.yaml").parent.is_dir()
    assert not (kept_sandbox.results / "kubeconfig.yaml").exists()

    again = run("playbooks/teardown.yml", "-e", everything)
    assert again.rc == 0, again.output[-5000:]
    assert recap(again)["changed"] == 0, again.output
    assert "the phases inside the cluster are skipped" in again


def test_the_printed_stop_stops_the_kept_sandbox_and_says_so_again(kept_sandbox):
    pid = json.loads((kept_sandbox.results / "sandbox.json").read_text())["pid"]
    stop = kept_sandbox.printed("Stop it:")
    first = paste(stop, kept_sandbox.env)
    assert first.returncode == 0, first.stderr
    assert (
        f"Stopped the sandbox kept in {kept_sandbox.results} (emulator pid {pid})" in first.stdout
    )
    assert not process_alive(pid)
    assert not (kept_sandbox.results / "sandbox.json").exists()
    with pytest.raises(OSError):
        urllib.request.urlopen(kept_sandbox.endpoints.admin_url + "/healthz", timeout=5)
    again = paste(stop, kept_sandbox.env)
    assert again.returncode == 0, again.stderr
    assert "No sandbox is running" in again.stdout
