"""Preflight through the real ansible-playbook: each failure path and its message, no leaks."""

from __future__ import annotations

import base64
import json
import stat

import pytest
import requests
from conftest import ROOT

HF_TOKEN = "hf_KnownSecretValue0123456789abcdef"
ACCESS_TOKEN = "ya29.KnownAccessToken-abcdef"
REGISTRY_PASSWORD = "Kn0wnRegistryPassw0rd"
REGISTRY_AUTH_B64 = base64.b64encode(f"me:{REGISTRY_PASSWORD}".encode()).decode()


@pytest.fixture
def good_env(ansible_env, tmp_path, sandbox_emulator):
    """Everything a full run needs: project, access token, HF token, registry credentials, and
    the emulator as GKE, Compute and Cloud Quotas API (nothing reaches Google)."""
    auth_dir = tmp_path / "home" / ".config" / "containers"
    auth_dir.mkdir(parents=True)
    (auth_dir / "auth.json").write_text(
        json.dumps({"auths": {"registry.redhat.io": {"auth": REGISTRY_AUTH_B64}}})
    )
    return {
        "GCP_PROJECT": "llmd-test-project",
        "GCP_AUTH_KIND": "accesstoken",
        "GCP_ACCESS_TOKEN": ACCESS_TOKEN,
        "HF_TOKEN": HF_TOKEN,
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER": sandbox_emulator.gke_url,
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE": sandbox_emulator.gke_url + "/compute/",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDQUOTAS": sandbox_emulator.gke_url + "/cloudquotas/",
    }


def fake_tool(tmp_path, name, output):
    path = tmp_path / f"fake-{name}"
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_list_tags_shows_the_implemented_phases(playbook):
    run = playbook("site.yml", "-i", "inventories/eu", "--list-tags")
    assert run.rc == 0, run.output
    assert "TASK TAGS: [always, preflight]" in run


def test_valid_run_passes_in_check_mode_and_leaks_no_secret(playbook, good_env):
    run = playbook("site.yml", "-i", "inventories/eu", "--check", "--diff", "-vvv", env=good_env)
    assert run.rc == 0, run.output
    assert (
        "Phases selected: cluster, tpu, operators, kserve, gateway, model, netpol, verify, bench"
        in run
    )
    assert "ok=" in run and "failed=0" in run
    for secret in (HF_TOKEN, ACCESS_TOKEN, REGISTRY_PASSWORD, REGISTRY_AUTH_B64):
        assert secret not in run.output


def test_us_inventory_and_tpu_slice_fact(playbook, good_env, tmp_path):
    # A later play of the same run can use what preflight derived from the TPU settings.
    extra = tmp_path / "show.yml"
    out = tmp_path / "slice.json"
    extra.write_text(
        f"- ansible.builtin.import_playbook: {ROOT}/site.yml\n"
        "- name: Use the slice\n  hosts: localhost\n  gather_facts: false\n  tags: [always]\n"
        "  tasks:\n    - name: Save it\n      ansible.builtin.copy:\n"
        f"        dest: {out}\n        content: '{{{{ preflight_tpu_slice | to_json }}}}'\n"
        "        mode: '0600'\n"
    )
    run = playbook(str(extra), "-i", "inventories/us", "--tags", "preflight", env=good_env)
    assert run.rc == 0, run.output
    assert "Phases selected: none (settings only)" in run
    data = json.loads(out.read_text())
    assert data["chips_per_node"] == 4
    assert data["max_chips"] == 12
    assert data["node_selector"]["cloud.google.com/gke-tpu-topology"] == "2x2"


def test_every_problem_is_reported_at_once_with_its_fix(playbook, ansible_env, tmp_path):
    old_helm = fake_tool(tmp_path, "helm", "v3.12.0")
    run = playbook(
        "site.yml",
        "-i",
        "inventories/eu",
        "-e",
        "llmd_tpu_machine_type=ct6e-standard-8t llmd_tpu_topology=2x2",
        "-e",
        "llmd_gcp_zone=europe-west4 llmd_cluster_name=Bad_Name",
        "-e",
        f"llmd_helm_path={old_helm} llmd_kubectl_path={tmp_path}/no-kubectl",
    )
    assert run.rc != 0
    expected = [
        "Preflight found 9 problem(s):",
        'llmd_gcp_project is "": set it to your GCP project ID',
        'llmd_gcp_zone is "europe-west4": expected a zone such as europe-west4-a',
        'llmd_cluster_name "Bad_Name" is not a valid GKE cluster name',
        "Invalid TPU node pool shape: topology 2x2 is not offered on ct6e-standard-8t "
        "(valid: 2x4); 2x2 is offered on ct6e-standard-4t (llmd_tpu_machine_type",
        f"kubectl path {tmp_path}/no-kubectl is not an executable file",
        f"helm 3.12.0 at {old_helm} is too old; 3.17 or newer is needed",
        "No GCP credentials found (auth_kind=application)",
        "llmd_hf_token is empty: the model phase creates the hf-token secret from it. "
        "Export HF_TOKEN",
        "Registry credentials are unusable:",
    ]
    for text in expected:
        assert text in run, f"missing {text!r} in:\n{run.output}"


def test_malformed_variable_fails_argument_spec_before_any_check(playbook, good_env):
    run = playbook(
        "site.yml",
        "-i",
        "inventories/eu",
        "-e",
        '{"llmd_tpu_node_count": "one", "llmd_netpol_vllm_egress": "sometimes"}',
        env=good_env,
    )
    assert run.rc != 0
    assert "Validating arguments against arg spec 'main'" in run
    assert "llmd_tpu_node_count" in run and "int" in run
    assert "llmd_netpol_vllm_egress" in run and "open, restricted" in run
    assert "Check the TPU slice shape" not in run


@pytest.mark.parametrize(
    ("tags", "needs", "message"),
    [
        (
            "cluster",
            {"GCP_AUTH_KIND": "serviceaccount"},
            "auth_kind=serviceaccount needs service_account_file",
        ),
        ("model", {"HF_TOKEN": ""}, "llmd_hf_token is empty"),
        (
            "operators",
            {"REGISTRY_AUTH_FILE": "/nonexistent/auth.json"},
            "Registry credentials are unusable: /nonexistent/auth.json does not exist",
        ),
    ],
)
def test_each_phase_asks_only_for_what_it_needs(playbook, good_env, tags, needs, message):
    run = playbook("site.yml", "-i", "inventories/eu", "--tags", tags, env={**good_env, **needs})
    assert run.rc != 0
    assert "Preflight found 1 problem(s):" in run, run.output
    assert message in run


def test_registry_without_the_red_hat_entry_names_what_it_has(playbook, good_env, tmp_path):
    auth = tmp_path / "other-auth.json"
    auth.write_text(json.dumps({"auths": {"quay.io": {"auth": REGISTRY_AUTH_B64}}}))
    run = playbook(
        "site.yml",
        "-i",
        "inventories/eu",
        "--tags",
        "kserve",
        "-e",
        f"llmd_registry_auth_file={auth}",
        env=good_env,
    )
    assert run.rc != 0
    assert f"No credentials for registry.redhat.io in {auth} (it has: quay.io)" in run
    assert REGISTRY_AUTH_B64 not in run.output


# --------------------------------------------------------------------------- GCP capacity
SANDBOX_PROJECT = "llmd-sandbox"
PREFLIGHT_ONLY = ("--tags", "preflight")


def sandbox_clusters(emulator, zone: str = "europe-west4-a") -> list[dict]:
    url = f"{emulator.gke_url}/v1/projects/{SANDBOX_PROJECT}/locations/{zone}/clusters"
    response = requests.get(url, headers={"Authorization": "Bearer test"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json().get("clusters", [])


@pytest.fixture
def emulator_faults(sandbox_emulator):
    """add(**spec) injects a fault into the emulator; all are removed after the test."""
    url = f"{sandbox_emulator.admin_url}/faults"

    def add(**spec) -> None:
        assert requests.post(url, json=spec, timeout=10).status_code == 201

    yield add
    assert requests.delete(url, timeout=10).status_code == 200


def test_sandbox_capacity_passes_for_cluster_and_tpu(site):
    run = site(*PREFLIGHT_ONLY, "-e", '{"preflight_phases": ["cluster", "tpu"]}')
    assert run.rc == 0, run.output
    for text in (
        "OK: Zone europe-west4-a offers machine type n1-standard-4",
        "OK: Zone europe-west4-a offers machine type ct6e-standard-4t",
        # (YAML output doubles the apostrophe of "pool's")
        "OK: TPU chip quota TPUS-PER-TPU-FAMILY-per-project-region (CT6E) in europe-west4 is 64: "
        "it covers the pool",
        "maximum of 12 chips",
        "external IP addresses are free in europe-west4",
    ):
        assert text in run, f"missing {text!r} in:\n{run.output}"
    assert "[WARNING]: Could not" not in run.output


def test_capacity_problems_stop_the_run_before_anything_is_created(site, sandbox_emulator):
    # europe-west1-b offers no TPU v6e and its region has no CT6E quota.
    run = site("--tags", "cluster,tpu", "-e", "llmd_gcp_zone=europe-west1-b")
    assert run.rc != 0
    expected = [
        "Preflight found 2 problem(s):",
        "Zone europe-west1-b does not offer machine type ct6e-standard-4t",
        "Zones that offer it: asia-northeast1-b, europe-west4-a,",
        "TPU chip quota too low: the TPU pool may grow to 12 CT6E chips in europe-west1, but "
        "quota TPUS-PER-TPU-FAMILY-per-project-region (project default) is 0. Request at least 12",
    ]
    for text in expected:
        assert text in run, f"missing {text!r} in:\n{run.output}"
    assert "OK: Zone europe-west1-b offers machine type n1-standard-4" in run
    assert sandbox_clusters(sandbox_emulator, "europe-west1-b") == []
    assert sandbox_clusters(sandbox_emulator) == []


def test_too_few_external_ips_for_the_cluster_phase(site, sandbox_emulator):
    quota = {"gke": {"region_quotas": {"europe-west4": {"IN_USE_ADDRESSES": 1}}}}
    sandbox_emulator.admin_post("/config", quota)
    try:
        run = site("--tags", "cluster")
    finally:
        quota["gke"]["region_quotas"]["europe-west4"]["IN_USE_ADDRESSES"] = 575
        sandbox_emulator.admin_post("/config", quota)
    assert run.rc != 0
    assert "Preflight found 1 problem(s):" in run, run.output
    assert "Only 1 external IP addresses are free in europe-west4" in run
    assert "request a higher IN_USE_ADDRESSES quota for europe-west4" in run
    assert "offers machine type ct6e-standard-4t" not in run  # the tpu phase is not selected
    assert sandbox_clusters(sandbox_emulator) == []


def test_no_permission_to_read_the_quota_is_a_warning(site, emulator_faults):
    emulator_faults(
        method="GET",
        path="/quotaInfos/",
        status=403,
        message="Permission 'cloudquotas.quotas.get' denied on resource (or it may not exist).",
    )
    run = site(
        *PREFLIGHT_ONLY,
        "--check",
        "-e",
        '{"preflight_phases": ["tpu"], "preflight_tpu_quota_id": "MY-TPU-QUOTA"}',
    )
    assert run.rc == 0, run.output
    assert "[WARNING]: Could not check the TPU chip quota for CT6E in europe-west4" in run
    assert "no permission to read quota MY-TPU-QUOTA" in run
    assert "is at least 12" in run and "roles/cloudquotas.viewer" in run
    assert "WARNING: Could not check the TPU chip quota" in run  # also in the summary
    assert "Preflight found" not in run.output


def test_unreachable_compute_api_is_one_problem(site):
    run = site(
        *PREFLIGHT_ONLY,
        "-e",
        '{"preflight_phases": ["cluster"], "llmd_compute_api_endpoint": "http://127.0.0.1:9/"}',
    )
    assert run.rc != 0
    assert "Preflight found 1 problem(s):" in run, run.output
    assert "Could not reach the Compute Engine API to check that zone europe-west4-a offers" in run
    assert "compute_api_endpoint / CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE" in run
