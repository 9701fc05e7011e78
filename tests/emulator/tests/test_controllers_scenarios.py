"""Failure scenarios produce the symptoms a user would see (one namespace per scenario)."""

from __future__ import annotations

import pytest
from support import TPU_TEMPLATE, Kube, condition, node, running_kube, wait_for
from test_controllers_llmisvc import GW, LLM, gateway, llmisvc


@pytest.fixture(scope="module")
def kube(tmp_path_factory) -> Kube:
    with running_kube(tmp_path_factory.mktemp("emu-scenarios"), time_scale=0.001) as kube:
        kube.install_kserve()
        yield kube


@pytest.fixture
def scenario(kube):
    """Activate scenarios for one test."""
    active: list[str] = []

    def activate(name: str) -> None:
        kube.admin_post("/scenario", {"add": [name]})
        active.append(name)

    yield activate
    kube.admin_post("/scenario", {"remove": active})


def main_status(kube: Kube, ns: str) -> dict:
    pods = kube.list("v1", "Pod", ns, "kserve.io/component=workload")
    return (pods[0]["status"].get("containerStatuses") or [{}])[0] if pods else {}


def workload_condition(kube: Kube, ns: str) -> dict:
    return condition(kube.get(LLM, "LLMInferenceService", "m", ns), "MainWorkloadReady")


def test_image_pull_backoff(kube, scenario):
    scenario("image-pull-backoff")
    kube.namespace("pull")
    kube.create(llmisvc("m", "pull"))

    def backoff() -> dict | None:
        waiting = main_status(kube, "pull").get("state", {}).get("waiting", {})
        return waiting if waiting.get("reason") == "ImagePullBackOff" else None

    waiting = wait_for(backoff, what="ImagePullBackOff")
    assert waiting["message"].startswith('Back-off pulling image "registry.redhat.io/')
    pod = kube.list("v1", "Pod", "pull", "kserve.io/component=workload")[0]
    reasons = {e["reason"] for e in kube.events("pull", pod["metadata"]["name"])}
    assert {"Failed", "BackOff"} <= reasons
    cond = wait_for(
        lambda: (
            workload_condition(kube, "pull").get("reason") == "ImagePullBackOff"
            and workload_condition(kube, "pull")
        ),
        what="MainWorkloadReady reason",
    )
    assert cond["status"] == "False"


@pytest.mark.parametrize(
    ("name", "status", "needle"),
    [
        ("crashloop-hf-401", "401", "huggingface_hub.errors.RepositoryNotFoundError: 401"),
        ("crashloop-hf-403", "403", "Access to model Qwen/Qwen2.5-3B-Instruct is restricted"),
    ],
)
def test_crashloop_hugging_face(kube, scenario, name, status, needle):
    scenario(name)
    ns = f"crash-{status}"
    kube.namespace(ns)
    kube.create(llmisvc("m", ns))

    def crashing() -> dict | None:
        status = main_status(kube, ns)
        waiting = status.get("state", {}).get("waiting", {})
        return status if waiting.get("reason") == "CrashLoopBackOff" else None

    waiting = wait_for(crashing, what="CrashLoopBackOff")
    assert waiting["restartCount"] >= 1
    assert waiting["lastState"]["terminated"]["exitCode"] == 1
    pod = kube.list("v1", "Pod", ns, "kserve.io/component=workload")[0]
    # The crashed instance's log, as `kubectl logs --previous` reads it: lastState.terminated
    # (the current log is the restarted instance's once it runs again).
    path = kube._path("v1", "Pod", ns, pod["metadata"]["name"]) + "/log"
    response = kube.http.get(path, params={"container": "main", "previous": "true"})
    assert response.status_code == 200, response.text
    log = response.text.splitlines()
    assert any(needle in line for line in log)
    assert "Traceback (most recent call last):" in log
    wait_for(
        lambda: workload_condition(kube, ns).get("reason") == "CrashLoopBackOff",
        what="MainWorkloadReady CrashLoopBackOff",
    )


def test_oom_killed(kube, scenario):
    scenario("oom-killed")
    kube.namespace("oom")
    kube.create(llmisvc("m", "oom"))
    terminated = wait_for(
        lambda: main_status(kube, "oom").get("lastState", {}).get("terminated"),
        what="terminated container",
    )
    assert terminated["reason"] == "OOMKilled"
    assert terminated["exitCode"] == 137
    # The log of the killed instance, as `kubectl logs --previous` reads it (kubelet
    # validateContainerLogStatus: lastState.terminated).
    pod = kube.list("v1", "Pod", "oom", "kserve.io/component=workload")[0]
    path = kube._path("v1", "Pod", "oom", pod["metadata"]["name"]) + "/log"
    before = kube.http.get(path, params={"container": "main", "previous": "true"})
    assert before.status_code == 200, before.text
    assert "Loading weights took" in before.text
    wait_for(
        lambda: workload_condition(kube, "oom").get("reason") == "OOMKilled",
        what="MainWorkloadReady OOMKilled",
    )


def test_unschedulable_tpu(kube, scenario):
    scenario("unschedulable-tpu")
    kube.namespace("tpu")
    kube.create_node(node("tpu-node", tpu=True))
    try:
        template = {
            **TPU_TEMPLATE,
            "containers": [
                {
                    "name": "main",
                    "image": "registry.redhat.io/rhaiis/vllm-tpu-rhel9:3.2.5",
                    "resources": {"limits": {"google.com/tpu": "4"}},
                }
            ],
        }
        kube.create(llmisvc("m", "tpu", template=template))
        cond = wait_for(
            lambda: (
                workload_condition(kube, "tpu").get("reason") == "Unschedulable"
                and workload_condition(kube, "tpu")
            ),
            what="Unschedulable",
        )
        assert "Insufficient google.com/tpu" in cond["message"]
        pod = kube.list("v1", "Pod", "tpu", "kserve.io/component=workload")[0]
        assert not pod["spec"].get("nodeName")
    finally:
        kube.delete("v1", "Node", "tpu-node")


def test_gateway_without_address(kube, scenario):
    scenario("gateway-no-address")
    kube.create(gateway("no-address", "opendatahub"))
    cond = wait_for(
        lambda: condition(kube.get(GW, "Gateway", "no-address", "opendatahub"), "Programmed"),
        what="Programmed condition",
    )
    assert cond["status"] == "False"
    assert cond["reason"] == "AddressNotAssigned"
    assert not kube.get(GW, "Gateway", "no-address", "opendatahub")["status"].get("addresses")


def test_gateway_hostname(kube, scenario):
    scenario("gateway-hostname")
    kube.create(gateway("by-name", "opendatahub"))
    gw = wait_for(
        lambda: (
            (kube.get(GW, "Gateway", "by-name", "opendatahub") or {})
            .get("status", {})
            .get("addresses")
        ),
        what="Gateway address",
    )
    assert gw == [{"type": "Hostname", "value": "localhost"}]


def test_operator_held(kube, scenario):
    scenario("operator-held:lws")
    kube.namespace("operators")
    for name in ("openshift-lws-operator", "cert-manager-operator"):
        kube.create(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": "operators"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "op", "image": "op"}]},
                    },
                },
            }
        )
    wait_for(
        lambda: (
            condition(
                kube.get("apps/v1", "Deployment", "cert-manager-operator", "operators"), "Available"
            ).get("status")
            == "True"
        ),
        what="free operator Available",
    )
    held = kube.get("apps/v1", "Deployment", "openshift-lws-operator", "operators")
    assert condition(held, "Available")["status"] == "False"
    pod = kube.list("v1", "Pod", "operators", "app=openshift-lws-operator")[0]
    assert pod["status"]["phase"] == "Running"
    assert condition(pod, "Ready")["status"] == "False"
