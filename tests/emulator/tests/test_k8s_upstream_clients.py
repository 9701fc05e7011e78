"""The emulated control plane through clients we did not write: kubernetes.core's modules run as
users run them (one batched playbook), kubectl rollout status / wait and helm --wait.

Each check here is a row of docs/conformance.md ("Kubernetes API and controllers").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from support import run_playbook, run_tool

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import upstream  # noqa: E402

NS = "upstream"


def _workload(kind: str, name: str, spec: dict | None = None, pod: dict | None = None) -> dict:
    pod_spec = {"containers": [{"name": "app", "image": "nginx:1.27"}], **(pod or {})}
    body = {
        "apiVersion": "batch/v1" if kind == "Job" else "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
            **(spec or {}),
        },
    }
    if kind != "Job":
        body["spec"]["selector"] = {"matchLabels": {"app": name}}
    return body


STATEFULSET = _workload("StatefulSet", "db", {"replicas": 2, "serviceName": "db"})
DAEMONSET = _workload("DaemonSet", "agent")
JOB = _workload("Job", "once", pod={"restartPolicy": "Never"})
DEPLOYMENT = _workload("Deployment", "web", {"replicas": 1})
NO_ACCOUNT = _workload("Deployment", "orphan", {"replicas": 1}, {"serviceAccountName": "ghost"})
CONFIGMAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "conf", "namespace": NS},
    "data": {"a": "1"},
}


def _k8s(name: str, definition: dict, **options) -> dict:
    return {"name": name, "kubernetes.core.k8s": {"definition": definition, **options}}


def _scale(name: str, replicas: int) -> dict:
    return {
        "name": name,
        "kubernetes.core.k8s_scale": {
            "api_version": "apps/v1",
            "kind": "Deployment",
            "name": "web",
            "namespace": NS,
            "replicas": replicas,
            "wait": True,
            "wait_timeout": 30,
            "wait_sleep": 1,
        },
    }


HIDDEN = ["metadata.managedFields", "metadata.annotations"]


def playbook() -> str:
    with_c = {**CONFIGMAP, "data": {"a": "1", "c": "3"}}
    wait = {"wait": True, "wait_timeout": 30, "wait_sleep": 1}
    tasks = [
        {"name": "namespace", "kubernetes.core.k8s": {"kind": "Namespace", "name": NS}},
        _k8s("statefulset", STATEFULSET, **wait),
        _k8s("daemonset", DAEMONSET, **wait),
        _k8s("job", JOB, **wait, wait_condition={"type": "Complete", "status": "True"}),
        _k8s("deployment", DEPLOYMENT, **wait),
        _scale("scale to zero", 0),
        _scale("scale back", 2),
        {
            "name": "info with wait",
            "kubernetes.core.k8s_info": {
                "api_version": "apps/v1",
                "kind": "Deployment",
                "name": "web",
                "namespace": NS,
                "wait": True,
                "wait_timeout": 30,
                "wait_sleep": 1,
            },
        },
        {**_k8s("no account", NO_ACCOUNT, wait=True, wait_timeout=3), "ignore_errors": True},
        _k8s("apply", CONFIGMAP, apply=True),
        {**_k8s("check c", with_c, apply=True), "check_mode": True},
        _k8s("hidden c", with_c, apply=True, hidden_fields=HIDDEN),
        _k8s("hidden c again", with_c, apply=True, hidden_fields=HIDDEN),
        _k8s("apply a key more", {**CONFIGMAP, "data": {"a": "1", "b": "2"}}, apply=True),
        _k8s("apply again", {**CONFIGMAP, "data": {"a": "1", "b": "2"}}, apply=True),
        _k8s("apply a key less", {**CONFIGMAP, "data": {"b": "2"}}, apply=True),
    ]
    return yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}])


def test_kubernetes_core_modules(ansible_env: dict[str, str], emulator) -> None:
    rc, output, results = run_playbook(playbook(), ansible_env)

    def one(name: str, failed: bool = False) -> dict:
        (result,) = results[name]
        assert bool(result.get("failed")) is failed, json.dumps(result)[:3000]
        return result

    sts = one("statefulset")["result"]
    assert sts["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"partition": 0},
    }
    assert sts["spec"]["podManagementPolicy"] == "OrderedReady"
    assert sts["spec"]["revisionHistoryLimit"] == 10
    assert sts["status"]["readyReplicas"] == 2
    template = sts["spec"]["template"]["spec"]
    assert (template["dnsPolicy"], template["schedulerName"]) == (
        "ClusterFirst",
        "default-scheduler",
    )
    assert template["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    daemonset = one("daemonset")["result"]
    assert daemonset["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert daemonset["status"]["numberReady"] == 1
    assert "numberUnavailable" not in daemonset["status"]
    job = one("job")["result"]
    assert {k: job["spec"][k] for k in ("completions", "parallelism", "backoffLimit")} == {
        "completions": 1,
        "parallelism": 1,
        "backoffLimit": 6,
    }
    assert job["spec"]["completionMode"] == "NonIndexed" and job["spec"]["suspend"] is False
    assert job["status"]["succeeded"] == 1 and "active" not in job["status"]
    assert (job["status"]["ready"], job["status"]["terminating"]) == (0, 0)
    deployment = one("deployment")["result"]
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert deployment["spec"]["progressDeadlineSeconds"] == 600
    assert deployment["spec"]["revisionHistoryLimit"] == 10
    assert deployment["status"]["availableReplicas"] == 1
    zero = one("scale to zero")["result"]
    # kube-controller-manager writes no count at 0 replicas (omitempty int32 fields)
    assert zero["spec"]["replicas"] == 0
    assert not {"replicas", "availableReplicas", "readyReplicas"} & set(zero["status"])
    assert one("scale back")["result"]["status"]["availableReplicas"] == 2
    (info,) = one("info with wait")["resources"]
    assert info["status"]["readyReplicas"] == info["spec"]["replicas"] == 2
    failed = one("no account", failed=True)
    assert "Timed out" in failed["msg"] or "timed out" in failed["msg"].lower(), failed["msg"]
    assert failed["result"]["status"]["unavailableReplicas"] == 1
    (rs,) = [
        r for r in emulator.objects("ReplicaSet", NS) if r["metadata"]["name"].startswith("orphan")
    ]
    (cond,) = rs["status"]["conditions"]
    assert cond["type"] == "ReplicaFailure" and cond["reason"] == "FailedCreate"
    assert 'serviceaccount "ghost" not found' in cond["message"]
    assert one("apply")["changed"] is True
    assert one("check c")["changed"] is True
    hidden = one("hidden c")
    assert hidden["changed"] is True and hidden["result"]["data"] == {"a": "1", "c": "3"}
    assert "annotations" not in hidden["result"]["metadata"]
    assert one("hidden c again")["changed"] is False
    added = one("apply a key more")
    assert added["changed"] is True and added["result"]["data"] == {"a": "1", "b": "2"}
    assert one("apply again")["changed"] is False
    less = one("apply a key less")
    assert less["changed"] is True and less["result"]["data"] == {"b": "2"}
    assert rc == 0, output[-3000:]  # the failed wait on the orphan is ignored
    events = [
        e
        for e in emulator.objects("Event", NS)
        if e["involvedObject"]["name"] == rs["metadata"]["name"]
    ]
    assert any(
        e["reason"] == "FailedCreate"
        and e["type"] == "Warning"
        and e["source"]["component"] == "replicaset-controller"
        for e in events
    ), events
    orphans = [p for p in emulator.objects("Pod", NS) if p["metadata"]["name"].startswith("orphan")]
    assert not orphans


ROLLOUT_NS = "rollout"


def test_kubectl_rollout_status_and_wait(ansible_env: dict[str, str], emulator) -> None:
    def kubectl(*args: str, stdin: str | None = None, check: bool = True):
        return run_tool(
            "kubectl", "-n", ROLLOUT_NS, *args, env=ansible_env, stdin=stdin, check=check
        )

    def named(body: dict, name: str) -> dict:
        return {**body, "metadata": {"name": name, "namespace": ROLLOUT_NS}}

    zero = named(DEPLOYMENT, "zero")
    zero["spec"] = {**zero["spec"], "replicas": 0}
    orphan = named(NO_ACCOUNT, "stuck")
    orphan["spec"] = {**orphan["spec"], "progressDeadlineSeconds": 120}
    manifest = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ROLLOUT_NS}},
        zero,
        named(STATEFULSET, "db"),
        orphan,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "db", "namespace": ROLLOUT_NS},
            "spec": {"selector": {"app": "db"}, "ports": [{"port": 80}]},
        },
    ]
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(manifest))
    service = json.loads(kubectl("get", "service", "db", "-o", "json").stdout)["spec"]
    assert service["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert (service["type"], service["sessionAffinity"]) == ("ClusterIP", "None")
    assert service["internalTrafficPolicy"] == "Cluster"
    assert (service["ipFamilies"], service["ipFamilyPolicy"]) == (["IPv4"], "SingleStack")
    assert "externalTrafficPolicy" not in service
    done = kubectl("rollout", "status", "deployment/zero", "--timeout=30s")
    assert 'deployment "zero" successfully rolled out' in done.stdout
    kubectl("wait", "--for=condition=Available", "deployment/zero", "--timeout=30s")
    sts = kubectl("rollout", "status", "statefulset/db", "--timeout=30s")
    assert "partitioned roll out complete" in sts.stdout or "roll out complete" in sts.stdout
    stuck = kubectl("rollout", "status", "deployment/stuck", "--timeout=60s", check=False)
    assert stuck.returncode == 1
    assert 'deployment "stuck" exceeded its progress deadline' in stuck.stderr, stuck.stderr
    (deploy,) = [
        d for d in emulator.objects("Deployment", ROLLOUT_NS) if d["metadata"]["name"] == "stuck"
    ]
    conds = {c["type"]: c for c in deploy["status"]["conditions"]}
    assert conds["Available"]["reason"] == "MinimumReplicasUnavailable"
    assert conds["Progressing"]["status"] == "False"
    assert conds["Progressing"]["reason"] == "ProgressDeadlineExceeded"
    assert conds["ReplicaFailure"]["reason"] == "FailedCreate"
    (zero_now,) = [
        d for d in emulator.objects("Deployment", ROLLOUT_NS) if d["metadata"]["name"] == "zero"
    ]
    assert [(c["type"], c["reason"]) for c in zero_now["status"]["conditions"]] == [
        ("Available", "MinimumReplicasAvailable"),
        ("Progressing", "NewReplicaSetAvailable"),
    ]


DEFAULTED_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: dials.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Dial, plural: dials, singular: dial}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            default: {}
            properties:
              level: {type: integer, default: 3}
              mode: {type: string, default: auto}
              knobs:
                type: array
                items:
                  type: object
                  properties:
                    turns: {type: integer, default: 1}
              labels:
                type: object
                additionalProperties:
                  type: object
                  properties:
                    enabled: {type: boolean, default: true}
"""


def test_crd_schema_defaults(ansible_env: dict[str, str], emulator) -> None:
    def kubectl(*args: str, stdin: str | None = None):
        return run_tool("kubectl", *args, env=ansible_env, stdin=stdin)

    kubectl("apply", "-f", "-", stdin=DEFAULTED_CRD)
    kubectl("wait", "--for=condition=Established", "crd/dials.example.com", "--timeout=30s")
    dials = [
        {"apiVersion": "example.com/v1", "kind": "Dial", "metadata": {"name": "bare"}},
        {
            "apiVersion": "example.com/v1",
            "kind": "Dial",
            "metadata": {"name": "set"},
            "spec": {"level": 7, "knobs": [{}, {"turns": 4}], "labels": {"a": {}}},
        },
    ]
    kubectl("apply", "-n", "default", "-f", "-", stdin=yaml.safe_dump_all(dials))
    got = json.loads(kubectl("get", "dials", "-n", "default", "-o", "json").stdout)["items"]
    specs = {d["metadata"]["name"]: d["spec"] for d in got}
    assert specs["bare"] == {"level": 3, "mode": "auto"}
    assert specs["set"] == {
        "level": 7,
        "mode": "auto",
        "knobs": [{"turns": 1}, {"turns": 4}],
        "labels": {"a": {"enabled": True}},
    }


def test_helm_wait_on_defaulted_workloads(tmp_path, ansible_env: dict[str, str], emulator) -> None:
    """helm --wait reads the StatefulSet's defaulted updateStrategy and the status of a
    Deployment at 0 replicas and of a DaemonSet."""
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: waits\nversion: 0.1.0\n")
    objects = [
        {**DEPLOYMENT, "metadata": {"name": "idle"}, "spec": {**DEPLOYMENT["spec"], "replicas": 0}},
        {**STATEFULSET, "metadata": {"name": "db"}},
        {**DAEMONSET, "metadata": {"name": "agent"}},
    ]
    (chart / "templates" / "all.yaml").write_text(yaml.safe_dump_all(objects))
    installed = run_tool(
        "helm",
        "install",
        "waits",
        str(chart),
        "-n",
        "helm-waits",
        "--create-namespace",
        "--wait",
        "--timeout",
        "60s",
        env=ansible_env,
    )
    assert "STATUS: deployed" in installed.stdout
    (sts,) = emulator.objects("StatefulSet", "helm-waits")
    assert sts["status"]["readyReplicas"] == 2


def test_server_side_apply_conflicts_as_kubectl_reports_them(ansible_env, emulator) -> None:
    def apply(manager: str, body: dict, *extra: str):
        return run_tool(
            "kubectl",
            "apply",
            "--server-side",
            f"--field-manager={manager}",
            *extra,
            "-f",
            "-",
            env=ansible_env,
            stdin=yaml.safe_dump(body),
            check=False,
        )

    base = {**DEPLOYMENT, "metadata": {"name": "ssa", "namespace": "default"}}
    assert apply("first", base).returncode == 0
    pod = base["spec"]["template"]["spec"]
    other = {
        **base,
        "spec": {
            **base["spec"],
            "replicas": 3,
            "template": {
                **base["spec"]["template"],
                "spec": {**pod, "containers": [{"name": "app", "image": "nginx:1.28"}]},
            },
        },
    }
    refused = apply("second", other)
    assert refused.returncode == 1
    assert 'Apply failed with 2 conflicts: conflicts with "first":' in refused.stderr
    assert "- .spec.replicas" in refused.stderr
    assert '- .spec.template.spec.containers[name="app"].image' in refused.stderr
    one = {**base, "spec": {**base["spec"], "replicas": 2}}
    single = apply("second", one)
    assert 'Apply failed with 1 conflict: conflict with "first": .spec.replicas' in single.stderr
    assert apply("second", one, "--force-conflicts").returncode == 0
    (deploy,) = [
        d for d in emulator.objects("Deployment", "default") if d["metadata"]["name"] == "ssa"
    ]
    assert deploy["spec"]["replicas"] == 2


def test_gateway_status_address_defaulted_then_validated(ansible_env, emulator) -> None:
    """Gateway API's status.addresses items: `type` defaults to IPAddress, then the oneOf (the
    IPAddress branch, or `not` IPAddress) holds: defaulting runs before validation."""
    crds = str(upstream.paths()["gateway_api"])  # the pinned Gateway API release's CRDs
    run_tool("kubectl", "apply", "--server-side", "-f", crds, env=ansible_env)
    run_tool(
        "kubectl",
        "wait",
        "--for=condition=Established",
        "crd/gateways.gateway.networking.k8s.io",
        "--timeout=30s",
        env=ansible_env,
    )
    gateway = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "default"},
        "spec": {
            "gatewayClassName": "none",
            "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
        },
    }
    run_tool("kubectl", "apply", "-f", "-", env=ansible_env, stdin=yaml.safe_dump(gateway))
    patch = json.dumps({"status": {"addresses": [{"value": "10.0.0.1"}]}})
    patched = run_tool(
        "kubectl",
        *("patch", "gateway", "gw", "-n", "default", "--subresource=status", "--type=merge"),
        *("-p", patch, "-o", "json"),
        env=ansible_env,
    )
    status = json.loads(patched.stdout)["status"]
    assert status["addresses"] == [{"type": "IPAddress", "value": "10.0.0.1"}]
    listener = json.loads(
        run_tool(
            "kubectl", "get", "gateway", "gw", "-n", "default", "-o", "json", env=ansible_env
        ).stdout
    )["spec"]["listeners"][0]
    assert listener["allowedRoutes"] == {"namespaces": {"from": "Same"}}
    relabel = run_tool(
        "kubectl", "label", "gateway", "gw", "-n", "default", "tier=edge", env=ansible_env
    )
    assert "labeled" in relabel.stdout
