"""Real kubectl and helm against the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import run_tool, tool_env

MANIFEST = """
apiVersion: v1
kind: Namespace
metadata:
  name: tools
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  namespace: tools
  labels: {app: web}
data:
  a: "1"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: tools
  labels: {app: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: nginx:1
        env: [{name: A, value: "1"}]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, shortNames: [wd]}
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
            required: [size]
            properties:
              size: {type: integer}
"""
WIDGET = """
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: tools, labels: {app: web}}
spec: {size: 3}
"""


@pytest.fixture
def env(tmp_path: Path, emulator) -> dict[str, str]:
    return tool_env(tmp_path, emulator.kubeconfig)


def kubectl(env: dict[str, str], *args: str, stdin: str | None = None, check: bool = True):
    return run_tool("kubectl", *args, env=env, stdin=stdin, check=check)


def test_kubectl_apply_get_wait_patch_delete(env: dict[str, str], emulator) -> None:
    out = kubectl(env, "apply", "-f", "-", stdin=MANIFEST).stdout
    assert "deployment.apps/web created" in out and "widgets.example.com created" in out
    kubectl(env, "wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=10s")
    assert "widget.example.com/w1 created" in kubectl(env, "apply", "-f", "-", stdin=WIDGET).stdout
    again = kubectl(env, "apply", "-f", "-", stdin=MANIFEST + "---" + WIDGET).stdout
    assert again.count("unchanged") == 5, again
    listed = kubectl(env, "get", "cm,deploy,wd", "-A", "-l", "app=web", "-o", "name").stdout
    assert set(listed.split()) == {
        "configmap/cfg",
        "deployment.apps/web",
        "widget.example.com/w1",
    }
    table = kubectl(env, "get", "configmaps", "-A").stdout
    assert "NAMESPACE" in table and "tools" in table

    kubectl(
        env,
        "patch",
        "deploy",
        "web",
        "-n",
        "tools",
        "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:2"}]}}}}',
    )
    kubectl(env, "patch", "cm", "cfg", "-n", "tools", "--type", "merge", "-p", '{"data":{"b":"2"}}')
    kubectl(
        env,
        "patch",
        "cm",
        "cfg",
        "-n",
        "tools",
        "--type",
        "json",
        "-p",
        '[{"op":"remove","path":"/data/a"}]',
    )
    kubectl(env, "patch", "wd", "w1", "-n", "tools", "--type", "merge", "-p", '{"spec":{"size":4}}')
    deployment = json.loads(
        kubectl(env, "get", "deploy", "web", "-n", "tools", "-o", "json").stdout
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:2" and container["env"] == [{"name": "A", "value": "1"}]
    assert deployment["metadata"]["generation"] == 2
    cfg = json.loads(kubectl(env, "get", "cm", "cfg", "-n", "tools", "-o", "json").stdout)
    assert cfg["data"] == {"b": "2"}
    bad = kubectl(
        env,
        "patch",
        "wd",
        "w1",
        "-n",
        "tools",
        "--type",
        "merge",
        "-p",
        '{"spec":{"size":"big"}}',
        check=False,
    )
    assert bad.returncode != 0 and "spec.size" in bad.stderr

    # kubectl patch (manager kubectl-patch, operation Update) owns spec.size now: as on a real
    # API server, applying another value conflicts until forced
    conflict = kubectl(env, "apply", "--server-side", "-f", "-", stdin=WIDGET, check=False)
    assert conflict.returncode != 0
    assert 'conflict with "kubectl-patch" using example.com/v1: .spec.size' in conflict.stderr
    server_side = kubectl(
        env, "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=WIDGET
    ).stdout
    assert "serverside-applied" in server_side
    widget = json.loads(
        kubectl(env, "get", "wd", "w1", "-n", "tools", "-o", "json", "--show-managed-fields").stdout
    )
    assert widget["spec"]["size"] == 3
    assert "kubectl" in {m["manager"] for m in widget["metadata"]["managedFields"]}

    kubectl(env, "delete", "-f", "-", stdin=WIDGET)
    assert not emulator.objects("Widget")
    kubectl(env, "delete", "ns", "tools", "--timeout=20s")
    assert not emulator.objects("ConfigMap", "tools")


def test_kubectl_logs(env: dict[str, str], emulator) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "logger", "namespace": "default"},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }
    kubectl(env, "apply", "-f", "-", stdin=json.dumps(pod))
    emulator.admin_post(
        "/logs",
        {"namespace": "default", "pod": "logger", "container": "main", "lines": ["a", "b", "c"]},
    )
    assert kubectl(env, "logs", "logger").stdout == "a\nb\nc\n"
    assert kubectl(env, "logs", "logger", "-c", "main", "--tail=2").stdout == "b\nc\n"
    previous = kubectl(env, "logs", "logger", "--previous", check=False)
    assert previous.returncode != 0 and "previous terminated container" in previous.stderr


CHART_TEMPLATE = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-cfg
data:
  message: {{ .Values.message | quote }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: {{ .Release.Name }}}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}}}
    spec:
      containers:
      - name: app
        image: nginx:1
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-svc
spec:
  selector: {app: {{ .Release.Name }}}
  ports: [{port: 80}]
"""


def test_helm_install_upgrade_uninstall(tmp_path: Path, env: dict[str, str], emulator) -> None:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("replicas: 1\nmessage: hello\n")
    (chart / "templates" / "all.yaml").write_text(CHART_TEMPLATE)

    def helm(*args: str):
        return run_tool("helm", *args, env=env)

    helm(
        "install",
        "rel",
        str(chart),
        "-n",
        "charts",
        "--create-namespace",
        "--wait",
        "--timeout",
        "60s",
    )
    assert emulator.objects("Service", "charts")[0]["spec"]["clusterIP"]
    helm(
        "upgrade", "rel", str(chart), "-n", "charts", "--set", "message=bye", "--set", "replicas=2"
    )
    cfg = kubectl(env, "get", "cm", "rel-cfg", "-n", "charts", "-o", "jsonpath={.data.message}")
    assert cfg.stdout == "bye"
    deployment = emulator.objects("Deployment", "charts")[0]
    assert deployment["spec"]["replicas"] == 2
    releases = json.loads(helm("list", "-n", "charts", "-o", "json").stdout)
    assert [(r["name"], r["revision"], r["status"]) for r in releases] == [("rel", "2", "deployed")]
    helm("uninstall", "rel", "-n", "charts", "--wait")
    left = {
        o["kind"] for o in emulator.state()["objects"] if o["metadata"].get("namespace") == "charts"
    }
    assert left <= {"ServiceAccount", "Event"}, left


def test_kubectl_create_sends_protobuf_for_typed_kinds(env: dict[str, str], emulator) -> None:
    kubectl(env, "create", "namespace", "typed")
    kubectl(env, "create", "serviceaccount", "robot", "-n", "typed")
    kubectl(env, "create", "configmap", "plain", "-n", "typed", "--from-literal=k=v")
    kubectl(env, "create", "secret", "generic", "hidden", "-n", "typed", "--from-literal=p=s3")
    kubectl(env, "label", "secret", "hidden", "-n", "typed", "team=x")
    assert {o["metadata"]["name"] for o in emulator.objects("ServiceAccount", "typed")} >= {"robot"}
    assert emulator.objects("ConfigMap", "typed")[0]["data"] == {"k": "v"}
    (secret,) = emulator.objects("Secret", "typed")
    assert secret["data"] == {"p": "czM="} and secret["type"] == "Opaque"
    assert secret["metadata"]["labels"] == {"team": "x"}
    refused = kubectl(env, "create", "deployment", "d", "-n", "typed", "--image=x", check=False)
    assert refused.returncode != 0 and "only accepted for" in refused.stderr
