"""The emulated kubelet, ResourceQuota, metadata.generation and server-side apply against
Update managers, through kubectl and the kubernetes Python client (clients we did not write).

Each check is a row of docs/conformance.md ("Kubernetes API and controllers").
"""

from __future__ import annotations

import json

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from support import run_tool, wait_for

NS = "kubelet"


def _pod(name: str, **spec) -> dict:
    container = {"name": "app", "image": "nginx:1.27", **spec.pop("container", {})}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"containers": [container], **spec},
    }


@pytest.fixture(scope="module")
def core(emulator):
    api = client.CoreV1Api(config.new_client_from_config(config_file=emulator.kubeconfig))
    api.create_namespace({"metadata": {"name": NS}})
    return api


def _kubectl(env: dict[str, str], *args: str, stdin: str | None = None, check: bool = True):
    return run_tool("kubectl", "-n", NS, *args, env=env, stdin=stdin, check=check)


def _events(core, pod: str, reason: str) -> list:
    items = core.list_namespaced_event(NS, field_selector=f"involvedObject.name={pod}").items
    return [e for e in items if e.reason == reason]


def test_missing_secret_or_configmap_keeps_the_pod_creating_until_it_exists(
    core, ansible_env: dict[str, str]
) -> None:
    volume = _pod(
        "vol",
        volumes=[{"name": "certs", "secret": {"secretName": "tls"}}],
        container={"volumeMounts": [{"name": "certs", "mountPath": "/certs"}]},
    )
    optional = _pod(
        "optional",
        volumes=[
            {"name": "conf", "configMap": {"name": "absent", "optional": True}},
            {"name": "more", "secret": {"secretName": "absent", "optional": True}},
        ],
        container={
            "env": [
                {
                    "name": "X",
                    "valueFrom": {"secretKeyRef": {"name": "absent", "key": "x", "optional": True}},
                }
            ]
        },
    )
    env = _pod(
        "env",
        container={
            "envFrom": [{"configMapRef": {"name": "settings"}}],
            "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "t"}}}],
        },
    )
    _kubectl(ansible_env, "apply", "-f", "-", stdin=yaml.safe_dump_all([volume, optional, env]))
    _kubectl(ansible_env, "wait", "--for=condition=Ready", "pod/optional", "--timeout=30s")

    mount = wait_for(lambda: _events(core, "vol", "FailedMount"), what="FailedMount")[0]
    assert mount.type == "Warning" and mount.source.component == "kubelet"
    assert mount.message == 'MountVolume.SetUp failed for volume "certs" : secret "tls" not found'
    (status,) = core.read_namespaced_pod("vol", NS).status.container_statuses
    assert status.state.waiting.reason == "ContainerCreating"
    assert not _events(core, "vol", "Pulling")  # volumes are mounted before images are pulled

    def config_error(message: str):
        statuses = core.read_namespaced_pod("env", NS).status.container_statuses or []
        waiting = statuses[0].state.waiting if statuses else None
        return waiting and waiting.message == message and waiting

    waiting = wait_for(lambda: config_error('configmap "settings" not found'), what="envFrom")
    assert waiting.reason == "CreateContainerConfigError"
    failed = wait_for(lambda: _events(core, "env", "Failed"), what="Failed event")
    assert 'Error: configmap "settings" not found' in [e.message for e in failed]
    core.create_namespaced_config_map(NS, {"metadata": {"name": "settings"}, "data": {"a": "1"}})
    wait_for(lambda: config_error('secret "hf" not found'), what="the secret next")
    core.create_namespaced_secret(NS, {"metadata": {"name": "hf"}, "stringData": {"u": "x"}})
    wait_for(lambda: config_error(f"couldn't find key t in Secret {NS}/hf"), what="missing key")
    core.patch_namespaced_secret("hf", NS, {"stringData": {"t": "token"}})
    core.create_namespaced_secret(NS, {"metadata": {"name": "tls"}, "stringData": {"k": "v"}})
    for name in ("vol", "env"):
        _kubectl(ansible_env, "wait", "--for=condition=Ready", f"pod/{name}", "--timeout=30s")


def test_resource_quota_admission_status_and_failed_create(core, ansible_env) -> None:
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "compute", "namespace": NS},
        "spec": {
            "hard": {
                "pods": "20",
                "requests.cpu": "1",
                "limits.memory": "1Gi",
                "requests.google.com/tpu": "4",
            }
        },
    }
    _kubectl(ansible_env, "apply", "-f", "-", stdin=yaml.safe_dump(quota))

    def used():
        status = core.read_namespaced_resource_quota("compute", NS).status
        return status and status.used

    assert wait_for(used, what="quota status") == {
        "pods": str(len(core.list_namespaced_pod(NS).items)),
        "requests.cpu": "0",
        "limits.memory": "0",
        "requests.google.com/tpu": "0",
    }
    sized = {
        "resources": {
            "requests": {"cpu": "600m", "google.com/tpu": "4"},
            "limits": {"memory": "512Mi", "google.com/tpu": "4"},
        }
    }
    core.create_namespaced_pod(NS, _pod("first", container=sized))
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(NS, _pod("second", container=sized))
    assert refused.value.status == 403
    assert json.loads(refused.value.body)["message"] == (
        'pods "second" is forbidden: exceeded quota: compute, requested: '
        "requests.cpu=600m,requests.google.com/tpu=4, used: requests.cpu=600m,"
        "requests.google.com/tpu=4, limited: requests.cpu=1,requests.google.com/tpu=4"
    )
    with pytest.raises(ApiException) as unsized:
        core.create_namespaced_pod(NS, _pod("bare"))
    assert json.loads(unsized.value.body)["message"] == (
        'pods "bare" is forbidden: failed quota: compute: must specify limits.memory for: app; '
        "requests.cpu for: app"
    )
    wait_for(lambda: (used() or {}).get("requests.cpu") == "600m", what="used cpu")
    assert used()["limits.memory"] == "512Mi"

    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "big", "namespace": NS},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "big"}},
            "template": {
                "metadata": {"labels": {"app": "big"}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27", **sized}]},
            },
        },
    }
    _kubectl(ansible_env, "apply", "-f", "-", stdin=yaml.safe_dump(deployment))

    def failed_create():
        for rs in client.AppsV1Api(core.api_client).list_namespaced_replica_set(NS).items:
            if rs.metadata.name.startswith("big-"):
                events = _events(core, rs.metadata.name, "FailedCreate")
                return events and (rs.metadata.name, events[0])
        return None

    rs_name, event = wait_for(failed_create, what="FailedCreate")
    assert event.source.component == "replicaset-controller" and event.type == "Warning"
    assert event.message.startswith(
        f'Error creating: pods "{rs_name}-" is forbidden: exceeded quota: compute, requested: '
    )

    gap = dict(
        quota, metadata={"name": "objects", "namespace": NS}, spec={"hard": {"services": "1"}}
    )
    refused_quota = _kubectl(
        ansible_env, "apply", "-f", "-", stdin=yaml.safe_dump(gap), check=False
    )
    assert refused_quota.returncode == 1
    assert "emulator gap: quota on services is not evaluated" in refused_quota.stderr
    core.delete_namespaced_resource_quota("compute", NS)


def test_generation_only_where_the_api_server_keeps_one(core, ansible_env) -> None:
    _kubectl(ansible_env, "create", "configmap", "plain", "--from-literal=a=1")
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc", "namespace": NS},
        "spec": {"ports": [{"port": 80}]},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "gen", "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": "gen"}},
            "template": {
                "metadata": {"labels": {"app": "gen"}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
            },
        },
    }
    _kubectl(ansible_env, "apply", "-f", "-", stdin=yaml.safe_dump_all([service, deployment]))
    _kubectl(ansible_env, "scale", "deployment/gen", "--replicas=2")

    def meta(kind: str, name: str) -> dict:
        return json.loads(_kubectl(ansible_env, "get", kind, name, "-o", "json").stdout)["metadata"]

    assert "generation" not in meta("configmap", "plain")
    assert "generation" not in meta("service", "svc")
    assert meta("deployment", "gen")["generation"] == 2
    pod = wait_for(
        lambda: [
            p for p in core.list_namespaced_pod(NS).items if p.metadata.name.startswith("gen-")
        ]
    )[0]
    assert pod.metadata.generation == 1  # v1.33 sets it on pods; binding does not bump it


def test_apply_conflicts_with_an_update_manager(ansible_env) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "owned", "namespace": NS},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "owned"}},
            "template": {
                "metadata": {"labels": {"app": "owned"}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
            },
        },
    }

    def apply(*extra: str):
        return _kubectl(
            ansible_env,
            "apply",
            "--server-side",
            "--field-manager=deployer",
            *extra,
            "-f",
            "-",
            stdin=yaml.safe_dump(deployment),
            check=False,
        )

    assert apply().returncode == 0
    edit_env = {**ansible_env, "KUBE_EDITOR": "sed -i s/replicas:\\ 1$/replicas:\\ 3/"}
    run_tool("kubectl", "-n", NS, "edit", "deployment/owned", env=edit_env)
    managers = json.loads(
        _kubectl(
            ansible_env, "get", "deployment", "owned", "-o", "json", "--show-managed-fields"
        ).stdout
    )["metadata"]["managedFields"]
    edit = next(m for m in managers if m["manager"] == "kubectl-edit")
    assert edit["operation"] == "Update" and edit["apiVersion"] == "apps/v1"
    assert edit["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    applier = next(m for m in managers if m["manager"] == "deployer")
    assert "f:replicas" not in applier["fieldsV1"]["f:spec"]  # the edit took it over

    refused = apply()
    assert refused.returncode == 1
    assert (
        'Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas'
        in refused.stderr
    ), refused.stderr
    assert apply("--force-conflicts").returncode == 0
    got = json.loads(
        _kubectl(
            ansible_env, "get", "deployment", "owned", "-o", "json", "--show-managed-fields"
        ).stdout
    )
    assert got["spec"]["replicas"] == 1
    assert [m["manager"] for m in got["metadata"]["managedFields"]] == ["deployer"]
