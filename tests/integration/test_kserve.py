"""Phase kserve (playbooks/kserve.yml) through the real ansible-playbook, kubectl and kustomize.

Each test has its own emulator. The KServe sources are the real `config/` tree at the pinned
commit (tests/tools/upstream.py, `kserve_source_path`); what the operators phase would provide
(namespace cert-manager, the cert-manager.io CRDs) comes from the real cert-manager operator
chart's `manifests-crds/`.
The emulator's cert-manager stand-in makes the issuers Ready and writes Secret
cert-manager/opendatahub-ca; its workload controller runs the controller Deployment, or holds it
back with the scenario operator-held:kserve-controller-manager.
"""

from __future__ import annotations

import json
import stat

import pytest
import upstream
from conftest import kubectl, recap, running_emulator

NS = "opendatahub"
WEBHOOKS = {"llminferenceservice.serving.kserve.io", "llminferenceserviceconfig.serving.kserve.io"}
# The nine LLMInferenceServiceConfigs of the odh-xks overlay (config/llmisvc at the pinned commit).
TEMPLATES = {
    "kserve-config-llm-template",
    "kserve-config-llm-router-route",
    "kserve-config-llm-scheduler",
    "kserve-config-llm-decode-template",
    "kserve-config-llm-prefill-template",
    "kserve-config-llm-worker-data-parallel",
    "kserve-config-llm-decode-worker-data-parallel",
    "kserve-config-llm-prefill-worker-data-parallel",
    "kserve-config-llm-template-amd-rocm",
}
# The cert-manager.io CRDs of the cert-manager operator chart (applied by the operators phase).
CERT_MANAGER_CRDS = ("certificates", "certificaterequests", "issuers", "clusterissuers")


@pytest.fixture
def emulator(tmp_path):
    with running_emulator(tmp_path / "emulator", time_scale=0.01) as endpoints:
        yield endpoints


def operators_phase_stand_in(endpoints) -> None:
    """What the operators phase provides: namespace cert-manager and the real cert-manager CRDs."""
    crds = upstream.paths()["charts"]["cert_manager"] / "manifests-crds"
    kubectl(endpoints, "create", "namespace", "cert-manager")
    for plural in CERT_MANAGER_CRDS:
        path = crds / f"customresourcedefinition-{plural}-cert-manager-io.yaml"
        kubectl(endpoints, "apply", "--server-side", "-f", str(path))


def kserve(playbook, endpoints, *args: str, **extra):
    variables = {
        "llmd_kubeconfig": endpoints.kubeconfig,
        "kserve_source_path": upstream.ansible_vars()["kserve_source_path"],
        "kserve_wait_timeout": 60,
        **extra,
    }
    return playbook(
        "playbooks/kserve.yml", "-i", "inventories/sandbox", "-e", json.dumps(variables), *args
    )


def snapshot(endpoints) -> list[tuple]:
    """Every stored object but Events and Pods, with its resourceVersion."""
    return sorted(
        (
            o["kind"],
            o["metadata"].get("namespace", ""),
            o["metadata"]["name"],
            o["metadata"].get("resourceVersion"),
        )
        for o in endpoints.state()["objects"]
        if o["kind"] not in ("Event", "Pod", "ReplicaSet")
    )


def names(endpoints, kind: str, namespace: str | None = None) -> set[str]:
    return {o["metadata"]["name"] for o in endpoints.objects(kind, namespace)}


def condition(obj: dict, type_: str) -> str | None:
    conds = (obj.get("status") or {}).get("conditions") or []
    return next((c["status"] for c in conds if c["type"] == type_), None)


def test_four_step_idempotence(playbook, emulator):
    # 1. Check mode on a cluster that has nothing yet: predicts, creates nothing.
    before = snapshot(emulator)
    check = kserve(playbook, emulator, "--check")
    assert check.rc == 0, check.output
    assert recap(check)["changed"] > 0, check.output
    assert "Would apply" in check.output
    assert "cert-manager.io/v1 ClusterIssuer is not served" in check.output
    assert snapshot(emulator) == before

    # 2. Converge (after what the operators phase provides).
    operators_phase_stand_in(emulator)
    converge = kserve(playbook, emulator)
    assert converge.rc == 0, converge.output
    assert recap(converge)["changed"] > 0
    (issuer,) = [
        o
        for o in emulator.objects("ClusterIssuer")
        if o["metadata"]["name"] == "opendatahub-ca-issuer"
    ]
    assert condition(issuer, "Ready") == "True"
    assert "opendatahub-ca" in names(emulator, "Secret", "cert-manager")
    (controller,) = emulator.objects("Deployment", NS)
    assert controller["metadata"]["name"] == "kserve-controller-manager"
    assert condition(controller, "Available") == "True"
    assert names(emulator, "LLMInferenceServiceConfig", NS) == TEMPLATES
    # The overlay's Inference Extension CRDs are v1.0.1: those the operators phase installs at
    # v1.2.0 are left out (kserve_skip_crds), the others applied.
    crds = names(emulator, "CustomResourceDefinition")
    assert "inferencemodels.inference.networking.x-k8s.io" in crds
    assert not crds & {
        "inferencepools.inference.networking.k8s.io",
        "inferencepools.inference.networking.x-k8s.io",
        "inferenceobjectives.inference.networking.x-k8s.io",
    }
    assert names(emulator, "ValidatingWebhookConfiguration") >= WEBHOOKS
    assert "redhat-pull-secret" in names(emulator, "Secret", NS)
    assert "templates: " + ", ".join(sorted(TEMPLATES)) in converge

    # A rerun (nothing changes, on the cluster either) and check mode on the converged cluster:
    # test_sandbox.py's site.yml rerun and --check, over every phase on one converge.


def test_readiness_gate_names_the_controller_held_back(playbook, emulator):
    emulator.admin_post("/scenario", {"add": ["operator-held:kserve-controller-manager"]})
    operators_phase_stand_in(emulator)
    # The bootstrap webhooks of an earlier install (our own objects, with upstream's names and
    # service): the phase removes them while the controller cannot serve them.
    earlier = [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [
                {
                    "name": name,
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "clientConfig": {
                        "service": {"name": "kserve-webhook-server-service", "namespace": NS}
                    },
                    "rules": [
                        {
                            "apiGroups": ["serving.kserve.io"],
                            "apiVersions": ["v1alpha1"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": [name.split(".")[0] + "s"],
                        }
                    ],
                }
            ],
        }
        for name in sorted(WEBHOOKS)
    ]
    kubectl(
        emulator,
        "apply",
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": earlier}),
    )
    assert names(emulator, "ValidatingWebhookConfiguration") >= WEBHOOKS
    run = kserve(playbook, emulator, kserve_wait_timeout=3)
    assert run.rc != 0
    assert recap(run)["failed"] == 1
    assert "Deployment opendatahub/kserve-controller-manager is not Available after 3 s" in run
    assert "MinimumReplicasUnavailable" in run
    # Stopped at the gate: the webhooks are out of the way, the templates not applied yet.
    assert not names(emulator, "ValidatingWebhookConfiguration") & WEBHOOKS
    assert not names(emulator, "LLMInferenceServiceConfig", NS)


def test_a_real_run_without_cert_manager_names_what_is_missing(playbook, emulator):
    before = snapshot(emulator)
    run = kserve(playbook, emulator)
    assert run.rc != 0
    assert "cert-manager.io/v1 ClusterIssuer is not served" in run
    assert "Run the operators phase first" in run
    # Refused before anything changed: not even the namespace or the pull secret.
    assert snapshot(emulator) == before

    # An overlay without a template an LLMInferenceService needs is refused first, in the built
    # overlay, also before anything changes.
    required = ["kserve-config-llm-template", "kserve-config-llm-absent"]
    run = kserve(playbook, emulator, kserve_required_configs=required)
    assert run.rc != 0
    assert "LLMInferenceServiceConfig kserve-config-llm-absent missing from the overlay" in run
    assert f"it installs {', '.join(sorted(TEMPLATES))} into opendatahub" in run
    assert "ClusterIssuer is not served" not in run
    assert snapshot(emulator) == before


@pytest.mark.parametrize("version", ["v5.5.0", "v5.6.0", "v5.7.1"])
def test_kustomize_5_5_to_5_7_is_refused_before_anything_is_applied(
    playbook, emulator, tmp_path, version
):
    fake = tmp_path / "kubectl"
    client = {"clientVersion": {"gitVersion": "v1.31.0"}, "kustomizeVersion": version}
    fake.write_text(f"#!/bin/sh\necho '{json.dumps(client)}'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    before = snapshot(emulator)
    run = kserve(playbook, emulator, llmd_kubectl_path=str(fake))
    assert run.rc != 0
    assert f"embeds kustomize {version[1:]}: kustomize 5.5 to 5.7 crash" in run
    assert "kustomize 5.8 or later" in run
    assert snapshot(emulator) == before
