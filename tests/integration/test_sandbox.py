"""site.yml and the lifecycle playbooks on the sandbox, one emulator and one converge for all.

The tests of this file run in order on one emulator (module scope): site.yml converges (with -vvv:
no secret value is printed), converges again changing nothing but the benchmark's report, and
--check predicts no change; then scale 1 -> 3 -> 0 -> 1 with the TPU pool following (the
emulated cluster autoscaler removes an idle node after seconds here), a support bundle with known
secret values and a planted fault, the teardown refused without the cluster confirmation, per
tag, predicted by --check, then complete, leaving the emulator as it started, and a second
teardown that changes nothing.
"""

from __future__ import annotations

import base64
import json
import re
import tarfile
import urllib.request
from pathlib import Path

import pytest
from conftest import changed_tasks, kubectl, recap

NS = "llm-d-inference-scheduling"
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


@pytest.fixture
def run(sandbox_playbook):
    """run(playbook, *args) with the known secrets; waits poll every second (emulated time runs
    100 times faster)."""

    def execute(book: str, *args: str):
        settings = json.dumps({"scale_poll_delay": 1, **SETTINGS})
        return sandbox_playbook(book, "-e", settings, *args)

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


def test_converge_then_idempotent_then_check_mode_changes_nothing(run, sandbox_emulator, tmp_path):
    STATE["baseline"] = keys(sandbox_emulator)
    bench = json.dumps({"bench_results_root": str(tmp_path / "bench")})
    first = run("site.yml", "-vvv", "-e", bench)
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
    assert len(list((tmp_path / "bench").glob("*/report.md"))) == 1
    converged = snapshot(sandbox_emulator)

    # Again: only the benchmark reports a change (it sends load and writes a new report).
    second = run("site.yml", "-e", bench)
    assert second.rc == 0, second.output
    assert changed_tasks(second) == [BENCH], second.output
    assert len(list((tmp_path / "bench").glob("*/report.md"))) == 2
    assert snapshot(sandbox_emulator) == converged

    check = run("site.yml", "--check", "--diff", "-e", bench)
    assert check.rc == 0, check.output
    assert set(changed_tasks(check)) <= {BENCH}, check.output
    assert "Check mode: no request sent" in check
    assert len(list((tmp_path / "bench").glob("*/report.md"))) == 2
    assert snapshot(sandbox_emulator) == converged
    STATE["converged"] = True


def test_scale_1_3_0_1_with_the_pool_following(run, sandbox_emulator):
    converged()
    # The emulated autoscaler removes an idle node after 30 emulated seconds (0.3 s here).
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


def test_teardown_by_tag_then_everything_then_nothing(run, sandbox_emulator):
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
    assert not (Path(sandbox_emulator.state_dir) / "llmd-kubeconfig.yaml").exists()

    again = run("playbooks/teardown.yml", "-e", everything)
    assert again.rc == 0, again.output[-5000:]
    assert recap(again)["changed"] == 0, again.output
    assert "the phases inside the cluster are skipped" in again
