"""The operators phase (playbooks/operators.yml) through the real ansible-playbook and helm.

Each test runs against its own emulator, with the real pinned charts and CRD manifests
(tests/tools/upstream.py) as the sources. The emulator plays the operators as their upstream
sources do (docs/conformance.md): operator Deployments become Available, the cert-manager
operator runs its operands and writes library-go's prefixed conditions on CertManager/cluster,
Sail reconciles Istio/default and runs istiod, the LWS operator runs its controller; the scenario
operator-held:<name> holds back the Deployments and operator CRs whose name contains <name>.
"""

from __future__ import annotations

import base64
import json

import upstream
import yaml
from conftest import apply, recap, running_emulator, tasks_runner

NAMESPACES = ("cert-manager-operator", "cert-manager", "istio-system", "openshift-lws-operator")
OUR_CRDS = (
    "gateways.gateway.networking.k8s.io",
    "inferencepools.inference.networking.k8s.io",
    "certmanagers.operator.openshift.io",
    "istios.sailoperator.io",
    "leaderworkersetoperators.operator.openshift.io",
)
# The LWS operator applies a ServiceMonitor before its controller (docs/conformance.md): the phase
# creates the kind's CRD where it is missing.
SMON_CRD = "servicemonitors.monitoring.coreos.com"
# The operands the cert-manager operator runs (bindata/cert-manager-deployment at d0c162f1).
CERT_MANAGER_OPERANDS = {"cert-manager", "cert-manager-webhook", "cert-manager-cainjector"}
# Credentials that must never show in any output (values of our own making).
USER, PASSWORD = "ops-robot", "Op5-n3ver-Sh0wn-9f2c"
OTHER_PASSWORD = "Quay-0nly-Secr3t-77ab"


def auth(password: str = PASSWORD) -> dict:
    return {
        "auths": {
            "registry.redhat.io": {"username": USER, "password": password},
            "quay.io": {"auth": base64.b64encode(f"other:{OTHER_PASSWORD}".encode()).decode()},
        }
    }


def extra_vars(endpoints, **more) -> str:
    return json.dumps(
        {
            "llmd_kubeconfig": endpoints.kubeconfig,
            "llmd_registry_auth": auth(),
            **upstream.ansible_vars(),
            "operators_ready_timeout": 120,
            **more,
        }
    )


def names(endpoints, kind: str, namespace: str | None = None) -> set[str]:
    return {o["metadata"]["name"] for o in endpoints.objects(kind, namespace)}


def pull_secret(endpoints, namespace: str) -> dict | None:
    for obj in endpoints.objects("Secret", namespace):
        if obj["metadata"]["name"] == "redhat-pull-secret":
            return obj
    return None


def secret_auths(secret: dict) -> dict:
    return json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"]


def forbidden_texts(password: str) -> list[str]:
    """The password and every encoding of it the role handles."""
    pair = base64.b64encode(f"{USER}:{password}".encode()).decode()
    config = json.dumps({"auths": {"registry.redhat.io": {"auth": pair}}}, separators=(",", ":"))
    return [password, pair, base64.b64encode(config.encode()).decode(), OTHER_PASSWORD]


def task_status(output: str, task: str) -> str:
    """The first result word (ok, changed, skipping, fatal) after the header of that task."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("TASK [") and task in line)
    for line in lines[start + 1 :]:
        word = line.split(":", 1)[0]
        if word in ("ok", "changed", "skipping", "fatal"):
            return word
    return ""


def test_check_then_converge_and_the_secret_never_printed(playbook, tmp_path):
    with running_emulator(tmp_path / "emu", time_scale=0.01) as endpoints:
        args = ("playbooks/operators.yml", "-i", "inventories/sandbox", "-e", extra_vars(endpoints))

        check = playbook(*args, "--check", timeout=600)
        assert check.rc == 0, check.output[-3000:]
        assert recap(check)["changed"] > 0
        assert not names(endpoints, "Namespace") & set(NAMESPACES)
        assert not names(endpoints, "CustomResourceDefinition") & {*OUR_CRDS, SMON_CRD}
        assert not [o for o in endpoints.objects("Secret") if o["type"] == "helm.sh/release.v1"]
        # Nothing to wait for in check mode on an empty cluster.
        assert task_status(check.output, "Readiness gate") == "skipping"

        converge = playbook(*args, "-vvv", timeout=600)
        assert converge.rc == 0, converge.output[-3000:]
        assert recap(converge)["changed"] > 0
        for text in forbidden_texts(PASSWORD):
            assert text not in converge.output
        assert task_status(converge.output, "Readiness gate") == "ok"
        assert set(OUR_CRDS) <= names(endpoints, "CustomResourceDefinition")
        istio = [o for o in endpoints.objects("Istio") if o["metadata"]["name"] == "default"][0]
        assert istio["spec"]["version"] == "v1.27.3"
        env = istio["spec"]["values"]["pilot"]["env"]
        assert env["ENABLE_GATEWAY_API_INFERENCE_EXTENSION"] == "true"
        assert names(endpoints, "CertManager") == {"cluster"}
        assert names(endpoints, "Infrastructure") == {"cluster"}
        assert names(endpoints, "LeaderWorkerSetOperator") == {"cluster"}
        for namespace in NAMESPACES:
            secret = pull_secret(endpoints, namespace)
            assert secret is not None, namespace
            assert secret["type"] == "kubernetes.io/dockerconfigjson"
            # Only the registry that needs it, never the other credentials of the auth config.
            pair = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            assert secret_auths(secret) == {"registry.redhat.io": {"auth": pair}}
        releases = {o["metadata"]["name"] for o in endpoints.objects("Secret")}
        for release in ("cert-manager-operator", "sail-operator", "lws-operator"):
            assert any(name.startswith(f"sh.helm.release.v1.{release}.") for name in releases)
        # What the operators run and write, as their sources do (docs/conformance.md).
        assert names(endpoints, "Deployment", "cert-manager") >= CERT_MANAGER_OPERANDS
        assert "istiod" in names(endpoints, "Deployment", "istio-system")
        assert "lws-controller-manager" in names(endpoints, "Deployment", "openshift-lws-operator")
        # ... after its ServiceMonitor, whose CRD the phase created (server-side, as llmd-gke).
        (smon_crd,) = [
            o
            for o in endpoints.objects("CustomResourceDefinition")
            if o["metadata"]["name"] == SMON_CRD
        ]
        assert {m["manager"] for m in smon_crd["metadata"]["managedFields"]} == {"llmd-gke"}
        assert names(endpoints, "ServiceMonitor", "openshift-lws-operator") == {
            "lws-controller-manager-metrics-monitor"
        }
        (cert_manager,) = endpoints.objects("CertManager")
        conditions = {c["type"]: c["status"] for c in cert_manager["status"]["conditions"]}
        assert "Available" not in conditions
        for operand in ("controller", "webhook", "cainjector"):
            assert conditions[f"cert-manager-{operand}-deploymentAvailable"] == "True"
            assert conditions[f"cert-manager-{operand}-deploymentDegraded"] == "False"
        assert istio["status"]["state"] == "Healthy"

        # The gate of before (CertManager/cluster Available) times out on the operator as it is,
        # naming CertManager/cluster; the gate of the role passed above.
        execute = tasks_runner(playbook, tmp_path)
        _run, (old_gate,) = execute(
            [
                {
                    "llmd.gke.k8s_ready_info": {
                        "kubeconfig": endpoints.kubeconfig,
                        "timeout": 3,
                        "resources": [
                            {
                                "api_version": "operator.openshift.io/v1alpha1",
                                "kind": "CertManager",
                                "name": "cluster",
                                "condition": "Available",
                            }
                        ],
                    }
                }
            ]
        )
        assert old_gate["failed"]
        assert "1 of 1 objects not ready after" in old_gate["msg"]
        assert "CertManager cluster: no Available condition" in old_gate["msg"]
        assert "cert-manager-controller-deploymentAvailable" in old_gate["msg"]

        # Rerun and check mode on the converged cluster: test_sandbox.py, over every phase.


def test_the_gate_names_the_operator_held_back(playbook, tmp_path):
    with running_emulator(tmp_path / "emu", time_scale=0.01) as endpoints:
        endpoints.admin_post("/scenario", {"add": ["operator-held:openshift-lws-operator"]})
        # A ServiceMonitor CRD of the cluster's own (a Prometheus operator's): left as it is.
        theirs = yaml.safe_load(upstream.SERVICEMONITOR_CRD.read_text())
        theirs["metadata"]["annotations"] = {"operator.prometheus.io/version": "0.85.0"}
        apply(endpoints, theirs)
        run = playbook(
            "playbooks/operators.yml",
            "-i",
            "inventories/sandbox",
            "-e",
            extra_vars(endpoints, operators_ready_timeout=5),
            timeout=600,
        )
        assert run.rc != 0
        gate = run.output[run.output.index("TASK [llmd.gke.operators : Readiness gate]") :]
        assert "2 of 20 objects not ready after" in run, gate
        assert (
            "Deployment openshift-lws-operator/openshift-lws-operator: Available is False, not True"
            " (MinimumReplicasUnavailable" in run
        ), gate
        # A stopped operator writes nothing on its custom resource.
        assert (
            "LeaderWorkerSetOperator cluster: no Available condition (no conditions yet)" in run
        ), gate
        # What is ready is not named.
        assert "Istio default:" not in run
        assert "servicemesh-operator3:" not in run
        (smon_crd,) = [
            o
            for o in endpoints.objects("CustomResourceDefinition")
            if o["metadata"]["name"] == SMON_CRD
        ]
        assert smon_crd["metadata"]["annotations"]["operator.prometheus.io/version"] == "0.85.0"
        managers = {m["manager"] for m in smon_crd["metadata"].get("managedFields", [])}
        assert "llmd-gke" not in managers


PULL_SECRET_PLAY = """
- name: Pull secret only
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Registry pull secret in llmd-ps
      ansible.builtin.include_role:
        name: llmd.gke.llmd
        tasks_from: pull_secret
      vars:
        llmd_pull_secret_namespace: llmd-ps
    - name: Result
      ansible.builtin.debug:
        msg: "PULL-SECRET-CHANGED={{ llmd_pull_secret_result.changed }}"
"""


def test_the_pull_secret_changes_only_with_its_content(playbook, tmp_path):
    play = tmp_path / "pull_secret.yml"
    play.write_text(PULL_SECRET_PLAY)
    with running_emulator(tmp_path / "emu", time_scale=0.01) as endpoints:

        def run(password: str, *more: str):
            auth_file = tmp_path / "auth.json"
            auth_file.write_text(json.dumps(auth(password)))
            # From the auth file this time (llmd_registry_auth empty).
            variables = {
                "llmd_kubeconfig": endpoints.kubeconfig,
                "llmd_registry_auth": "",
                "llmd_registry_auth_file": str(auth_file),
            }
            out = playbook(
                str(play), "-i", "inventories/sandbox", "-e", json.dumps(variables), *more
            )
            assert out.rc == 0, out.output[-3000:]
            for text in forbidden_texts(password):
                assert text not in out.output
            return out

        first = run(PASSWORD)
        assert "PULL-SECRET-CHANGED=True" in first
        created = pull_secret(endpoints, "llmd-ps")
        version = created["metadata"]["resourceVersion"]

        same = run(PASSWORD, "-vvv")
        assert "PULL-SECRET-CHANGED=False" in same
        assert recap(same)["changed"] == 0
        assert pull_secret(endpoints, "llmd-ps")["metadata"]["resourceVersion"] == version

        new_password = "R0tated-Pa55-41de"
        rotated = run(new_password)
        assert "PULL-SECRET-CHANGED=True" in rotated
        pair = base64.b64encode(f"{USER}:{new_password}".encode()).decode()
        assert secret_auths(pull_secret(endpoints, "llmd-ps")) == {
            "registry.redhat.io": {"auth": pair}
        }
