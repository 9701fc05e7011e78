"""gke_kubeconfig through the real ansible-playbook against the emulator, and the kubeconfig it
writes used by the real kubectl and by kubernetes.core.k8s_info.

The emulator's cluster endpoint is its Kubernetes API (https, its own CA), which accepts only the
emulator's bearer token. Token mode gets that token from Application Default Credentials (an
authorized_user file holding a valid token), so the token is not a module option that Ansible
would mask anyway: the -vvv check proves the module itself never shows it. Plugin mode uses a
fake gke-gcloud-auth-plugin that prints an ExecCredential with the token, as the real one does.
"""

from __future__ import annotations

import json
import stat
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml
from conftest import VENV_BIN, recap

PROJECT = "llmd-kc"
ZONE = "europe-west4-a"
CLUSTER = "kc-test"
CONTEXT = f"gke_{PROJECT}_{ZONE}_{CLUSTER}"

PLAYBOOK = """\
- name: Kubeconfig for the emulated cluster
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Write the kubeconfig
      llmd.gke.gke_kubeconfig:
        api_endpoint: "{{ gke_url }}"
        project: "{{ project }}"
        location: "{{ zone }}"
        cluster: "{{ cluster }}"
        path: "{{ kc_path }}"
        auth: "{{ kc_auth | default('auto') }}"
        auth_plugin_path: "{{ kc_plugin_path | default(omit) }}"
        set_current_context: "{{ kc_set_current | default(true) }}"
        state: "{{ kc_state | default('present') }}"
      environment: "{{ kc_environment | default({}) }}"
      register: kc

    - name: Save the result
      ansible.builtin.copy:
        dest: "{{ result_file }}"
        content: "{{ kc | to_json }}"
        mode: "0600"
      changed_when: false
      check_mode: false

    - name: List the namespaces through the kubeconfig
      kubernetes.core.k8s_info:
        kubeconfig: "{{ kc_path }}"
        kind: Namespace
      register: namespaces
      when: read_cluster | default(false)

    - name: Check that the cluster answered
      ansible.builtin.assert:
        that: namespaces.resources | map(attribute='metadata.name') | list is contains('default')
      when: read_cluster | default(false)
"""


@pytest.fixture(scope="module")
def cluster(sandbox_emulator):
    """A RUNNING cluster created through the emulator's GKE REST API."""
    base = f"{sandbox_emulator.gke_url}/v1/projects/{PROJECT}/locations/{ZONE}"
    auth = {"Authorization": "Bearer test-token"}
    body = {
        "cluster": {
            "name": CLUSTER,
            "initialClusterVersion": "1.34",
            "nodePools": [
                {
                    "name": "default-pool",
                    "initialNodeCount": 1,
                    "config": {"machineType": "n1-standard-4"},
                }
            ],
        }
    }
    response = requests.post(f"{base}/clusters", json=body, headers=auth, timeout=10)
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 60
    while True:
        resource = requests.get(f"{base}/clusters/{CLUSTER}", headers=auth, timeout=10).json()
        if resource["status"] == "RUNNING":
            return resource
        assert resource["status"] == "PROVISIONING", resource
        assert time.monotonic() < deadline, "the cluster did not become RUNNING"
        time.sleep(0.2)


@pytest.fixture
def kc(playbook, sandbox_emulator, cluster, tmp_path):
    """kc(*args, env=None, **vars) runs PLAYBOOK; returns (Run, the module's result or None)."""
    book = tmp_path / "kubeconfig.yml"
    book.write_text(PLAYBOOK)
    result_file = tmp_path / "result.json"
    adc = tmp_path / "adc.json"
    adc.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "llmd-test",
                "client_secret": "llmd-test",
                "refresh_token": "llmd-test",
                "token": sandbox_emulator.token,
                "expiry": "2099-01-01T00:00:00Z",
            }
        )
    )

    def run(*args, env=None, **variables):
        result_file.unlink(missing_ok=True)
        extra = {
            "gke_url": sandbox_emulator.gke_url,
            "project": PROJECT,
            "zone": ZONE,
            "cluster": CLUSTER,
            "result_file": str(result_file),
            **variables,
        }
        vars_file = tmp_path / "vars.json"
        vars_file.write_text(json.dumps(extra))
        environment = {"GCP_AUTH_KIND": "application", "GOOGLE_APPLICATION_CREDENTIALS": str(adc)}
        environment.update(env or {})
        outcome = playbook(
            "-i", "localhost,", str(book), "-e", f"@{vars_file}", *args, env=environment
        )
        result = json.loads(result_file.read_text()) if result_file.exists() else None
        return outcome, result

    return run


@pytest.fixture
def kubectl(ansible_env):
    """kubectl(*args, env=None) runs the venv's kubectl; returns the CompletedProcess."""

    def run(*args, env=None):
        return subprocess.run(
            [str(VENV_BIN / "kubectl"), *args],
            env={**ansible_env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run


def fake_plugin(directory, token):
    """A gke-gcloud-auth-plugin that logs its arguments and prints an ExecCredential."""
    directory.mkdir(exist_ok=True)
    log = directory / "calls.log"
    script = directory / "gke-gcloud-auth-plugin"
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "kind": "ExecCredential",
        "status": {"token": token, "expirationTimestamp": "2099-01-01T00:00:00Z"},
    }
    script.write_text(f"#!/bin/sh\necho \"$@\" >> '{log}'\necho '{json.dumps(credential)}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return log


def test_token_mode_write_rewrite_refresh_and_no_token_in_output(
    kc, kubectl, sandbox_emulator, tmp_path
):
    path = tmp_path / "kube" / "llmd.yaml"
    run, result = kc("-vvv", "--diff", kc_path=str(path), kc_auth="token", read_cluster=True)
    assert run.rc == 0, run.output
    assert recap(run)["changed"] == 1
    assert sandbox_emulator.token not in run.output
    assert result["changed"] is True
    assert result["auth"] == "token"
    assert result["context"] == CONTEXT
    assert result["server"] == f"https://{cluster_endpoint(sandbox_emulator)}"
    assert result["token_expiry"] == "2099-01-01T00:00:00Z"
    assert f"+ ca_fingerprint: {result['ca_fingerprint']}" in run  # the diff shows it...
    assert f"+ server: {result['server']}" in run
    ca_data = yaml.safe_load(path.read_text())["clusters"][0]["cluster"]
    assert ca_data["certificate-authority-data"] not in run.output  # ...never the CA itself
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

    got = kubectl("--kubeconfig", str(path), "get", "ns", "-o", "name")
    assert got.returncode == 0, got.stderr
    assert "namespace/default" in got.stdout.split()

    written = path.stat().st_mtime_ns
    run, result = kc(kc_path=str(path), kc_auth="token")
    assert run.rc == 0, run.output
    assert recap(run)["changed"] == 0
    assert result["token_refreshed"] is False
    assert path.stat().st_mtime_ns == written

    # Another token (here a stale one): written into the file, yet no change.
    stale = {"GCP_AUTH_KIND": "accesstoken", "GCP_ACCESS_TOKEN": "ya29.stale-token"}
    run, result = kc(kc_path=str(path), kc_auth="token", env=stale)
    assert run.rc == 0, run.output
    assert recap(run)["changed"] == 0
    assert result["token_refreshed"] is True
    assert "ya29.stale-token" in path.read_text()
    assert kubectl("--kubeconfig", str(path), "get", "ns").returncode != 0


def cluster_endpoint(emulator) -> str:
    return emulator.k8s_url.split("://", 1)[1].rstrip("/")


def test_check_mode_on_a_new_path_writes_nothing(kc, tmp_path):
    path = tmp_path / "new-dir" / "config"
    run, result = kc("--check", "--diff", kc_path=str(path), kc_auth="token")
    assert run.rc == 0, run.output
    assert recap(run)["changed"] == 1
    assert result["changed"] is True and result["context"] == CONTEXT
    assert "--- before" in run and "+ auth: token" in run and f"+ context: {CONTEXT}" in run
    assert not path.parent.exists()


def test_merge_keeps_a_foreign_context_and_absent_removes_only_ours(
    kc, kubectl, sandbox_emulator, tmp_path
):
    # The user's own kubeconfig: the emulator's admin entries, renamed.
    own = yaml.safe_load(Path(sandbox_emulator.kubeconfig).read_text())
    for key in ("clusters", "users", "contexts"):
        for entry in own[key]:
            entry["name"] = "mine"
    own["contexts"][0]["context"].update(cluster="mine", user="mine")
    own["current-context"] = "mine"
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(own))
    path.chmod(0o600)

    run, result = kc(kc_path=str(path), kc_auth="token", kc_set_current=False)
    assert run.rc == 0, run.output
    assert result["changed"] is True
    data = yaml.safe_load(path.read_text())
    assert data["current-context"] == "mine"
    assert [c["name"] for c in data["contexts"]] == ["mine", CONTEXT]
    for context in ("mine", CONTEXT):
        got = kubectl("--kubeconfig", str(path), "--context", context, "get", "nodes")
        assert got.returncode == 0, (context, got.stderr)

    run, result = kc(kc_path=str(path), kc_state="absent")
    assert run.rc == 0, run.output
    assert result["changed"] is True and result["file_removed"] is False
    assert yaml.safe_load(path.read_text()) == own
    assert kubectl("--kubeconfig", str(path), "get", "nodes").returncode == 0


def test_auto_picks_the_plugin_on_path_and_kubectl_uses_it(
    kc, kubectl, sandbox_emulator, ansible_env, tmp_path
):
    log = fake_plugin(tmp_path / "bin", sandbox_emulator.token)
    env = {"PATH": f"{tmp_path / 'bin'}:{ansible_env['PATH']}"}
    path = tmp_path / "config"
    run, result = kc("--diff", kc_path=str(path), read_cluster=True, env=env)
    assert run.rc == 0, run.output
    assert result["auth"] == "plugin"
    assert result["plugin_command"] == "gke-gcloud-auth-plugin"
    user = yaml.safe_load(path.read_text())["users"][0]["user"]
    assert user["exec"]["command"] == "gke-gcloud-auth-plugin"
    assert user["exec"]["args"] == ["--use_application_default_credentials"]
    assert "token" not in user
    assert sandbox_emulator.token not in path.read_text()
    # kubernetes.core.k8s_info (the playbook's read_cluster tasks) ran the plugin.
    assert log.exists() and "--use_application_default_credentials" in log.read_text()

    log.unlink()
    got = kubectl("--kubeconfig", str(path), "get", "nodes", "-o", "name", env=env)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip()
    assert log.exists()  # kubectl ran the plugin

    run, result = kc(kc_path=str(path), env=env)
    assert recap(run)["changed"] == 0


def test_auto_without_the_plugin_falls_back_to_a_token(kc, kubectl, tmp_path):
    empty = tmp_path / "no-plugin"
    empty.mkdir()
    path = tmp_path / "config"
    run, result = kc(kc_path=str(path), kc_environment={"PATH": str(empty)})
    assert run.rc == 0, run.output
    assert result["auth"] == "token"
    assert kubectl("--kubeconfig", str(path), "get", "ns").returncode == 0


def test_plugin_mode_needs_the_plugin_or_its_path(kc, kubectl, sandbox_emulator, tmp_path):
    fake_plugin(tmp_path / "tools", sandbox_emulator.token)
    plugin = tmp_path / "tools" / "gke-gcloud-auth-plugin"
    path = tmp_path / "config"
    nowhere = {"PATH": str(tmp_path / "nowhere")}
    run, _result = kc(kc_path=str(path), kc_auth="plugin", kc_environment=nowhere)
    assert run.rc != 0
    assert "auth=plugin but gke-gcloud-auth-plugin is not on PATH" in run
    assert not path.exists()

    run, result = kc(
        kc_path=str(path), kc_auth="plugin", kc_plugin_path=str(plugin), kc_environment=nowhere
    )
    assert run.rc == 0, run.output
    assert result["plugin_command"] == str(plugin)
    user = yaml.safe_load(path.read_text())["users"][0]["user"]
    assert user["exec"]["command"] == str(plugin)
    got = kubectl("--kubeconfig", str(path), "get", "ns")
    assert got.returncode == 0, got.stderr


def test_a_missing_cluster_fails_with_a_hint(kc, tmp_path):
    path = tmp_path / "config"
    run, _result = kc(kc_path=str(path), kc_auth="token", cluster="no-such-cluster")
    assert run.rc != 0
    assert "Not found: check the project" in run
    assert not path.exists()
