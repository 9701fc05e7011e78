"""LLMInferenceService, Gateway and cert-manager controllers on a background emulator."""

from __future__ import annotations

import base64

import pytest
import requests
from support import Kube, condition, running_kube, wait_for

from llmd_emulator.testing import gateway, llm_inference_service

LLM = "serving.kserve.io/v1alpha1"
GW = "gateway.networking.k8s.io/v1"
POOL = "inference.networking.k8s.io/v1"
WORKLOAD_LABELS = {
    "app.kubernetes.io/component": "llminferenceservice-workload",
    "app.kubernetes.io/part-of": "llminferenceservice",
    "kserve.io/component": "workload",
}


@pytest.fixture(scope="module")
def kube(tmp_path_factory) -> Kube:
    with running_kube(tmp_path_factory.mktemp("emu-llmisvc"), time_scale=0.002) as kube:
        kube.install_kserve()
        kube.create(gateway("inference-gateway", "opendatahub"))
        yield kube


def llmisvc(name: str, ns: str, replicas: int = 1, **spec) -> dict:
    """The shared LLMInferenceService with spec fields replaced by **spec."""
    obj = llm_inference_service(name, ns, replicas=replicas)
    obj["spec"].update(spec)
    return obj


def test_gateway_is_programmed_and_its_listener_serves(kube):
    gw = wait_for(
        lambda: (
            condition(
                kube.get(GW, "Gateway", "inference-gateway", "opendatahub"), "Programmed"
            ).get("status")
            == "True"
            and kube.get(GW, "Gateway", "inference-gateway", "opendatahub")
        ),
        what="Gateway Programmed",
    )
    assert condition(gw, "Accepted")["status"] == "True"
    assert condition(gw, "Programmed")["reason"] == "Programmed"
    assert gw["status"]["addresses"] == [{"type": "IPAddress", "value": "127.0.0.1"}]
    listener = gw["status"]["listeners"][0]
    assert listener["name"] == "http"
    assert {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"} in listener["supportedKinds"]
    for name in ("Deployment", "Service", "ServiceAccount"):
        api = "apps/v1" if name == "Deployment" else "v1"
        child = kube.get(api, name, "inference-gateway-istio", "opendatahub")
        assert child["metadata"]["ownerReferences"][0]["kind"] == "Gateway"
    listed = kube.admin_get("/gateways")["gateways"]
    base = next(g["url"] for g in listed if g["name"] == "inference-gateway")
    assert requests.get(base + "/nothing/here", timeout=5).status_code == 404


def test_llmisvc_children_conditions_url_and_deletion(kube):
    kube.namespace("llm")
    kube.create(llmisvc("qwen", "llm"))
    svc = wait_for(
        lambda: (
            condition(kube.get(LLM, "LLMInferenceService", "qwen", "llm"), "Ready").get("status")
            == "True"
            and kube.get(LLM, "LLMInferenceService", "qwen", "llm")
        ),
        what="LLMInferenceService Ready",
    )
    types = {c["type"]: c for c in svc["status"]["conditions"]}
    for type_ in (
        "PresetsCombined",
        "MainWorkloadReady",
        "WorkloadsReady",
        "HTTPRoutesReady",
        "InferencePoolReady",
        "SchedulerWorkloadReady",
        "GatewaysReady",
        "RouterReady",
        "Ready",
    ):
        assert types[type_]["status"] == "True", type_
        assert types[type_]["lastTransitionTime"]
    assert svc["status"]["observedGeneration"] == 1
    listed = kube.admin_get("/gateways")["gateways"]
    base = next(g["url"] for g in listed if g["name"] == "inference-gateway")
    assert svc["status"]["url"] == f"{base}/llm/qwen"
    assert svc["status"]["addresses"][0]["url"] == svc["status"]["url"]

    deploy = kube.get("apps/v1", "Deployment", "qwen-kserve", "llm")
    labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert labels == {**WORKLOAD_LABELS, "app.kubernetes.io/name": "qwen", "llm-d.ai/role": "both"}
    assert deploy["spec"]["template"]["spec"]["containers"][0]["name"] == "main"
    epp = kube.get("apps/v1", "Deployment", "qwen-kserve-router-scheduler", "llm")
    assert epp["metadata"]["labels"]["app.kubernetes.io/component"] == (
        "llminferenceservice-router-scheduler"
    )
    route = kube.get(GW, "HTTPRoute", "qwen-kserve-route", "llm")
    assert route["spec"]["parentRefs"][0]["name"] == "inference-gateway"
    paths = [r["matches"][0]["path"]["value"] for r in route["spec"]["rules"]]
    assert paths == ["/llm/qwen/v1/completions", "/llm/qwen/v1/chat/completions", "/llm/qwen"]
    assert route["spec"]["rules"][0]["backendRefs"][0]["kind"] == "InferencePool"
    assert route["spec"]["rules"][2]["backendRefs"][0]["name"] == "qwen-kserve-workload-svc"
    parent = route["status"]["parents"][0]
    assert parent["controllerName"] == "istio.io/gateway-controller"
    assert {c["type"] for c in parent["conditions"]} == {"Accepted", "ResolvedRefs"}
    pool = kube.get(POOL, "InferencePool", "qwen-inference-pool", "llm")
    assert pool["spec"]["selector"]["matchLabels"]["kserve.io/component"] == "workload"
    assert pool["spec"]["targetPorts"] == [{"number": 8000}]
    assert pool["spec"]["endpointPickerRef"]["name"] == "qwen-epp-service"
    assert {c["type"] for c in pool["status"]["parents"][0]["conditions"]} == {
        "Accepted",
        "ResolvedRefs",
    }
    epp_svc = kube.get("v1", "Service", "qwen-epp-service", "llm")
    # The ports of the real kserve-config-llm-scheduler named grpc, grpc-health, metrics, zmq.
    assert sorted(p["port"] for p in epp_svc["spec"]["ports"]) == [5557, 9002, 9003, 9090]
    assert (
        kube.get("v1", "Service", "qwen-kserve-workload-svc", "llm")["spec"]["ports"][0]["port"]
        == 8000
    )
    assert kube.get("v1", "ServiceAccount", "qwen-epp-sa", "llm")
    secret = kube.get("v1", "Secret", "qwen-kserve-self-signed-certs", "llm")
    assert base64.b64decode(secret["data"]["tls.crt"]).startswith(b"-----BEGIN CERTIFICATE")
    uid = svc["metadata"]["uid"]
    for api, kind, name in (
        ("apps/v1", "Deployment", "qwen-kserve"),
        ("v1", "Service", "qwen-epp-service"),
        (GW, "HTTPRoute", "qwen-kserve-route"),
        (POOL, "InferencePool", "qwen-inference-pool"),
    ):
        assert kube.get(api, kind, name, "llm")["metadata"]["ownerReferences"][0]["uid"] == uid

    models = requests.get(svc["status"]["url"] + "/v1/models", timeout=5).json()
    assert [m["id"] for m in models["data"]] == ["Qwen/Qwen2.5-3B-Instruct"]

    kube.patch(LLM, "LLMInferenceService", "qwen", "llm", {"spec": {"replicas": 2}})
    wait_for(
        lambda: kube.get("apps/v1", "Deployment", "qwen-kserve", "llm")["spec"]["replicas"] == 2,
        what="replicas propagated",
    )
    wait_for(
        lambda: (
            kube.get(LLM, "LLMInferenceService", "qwen", "llm")["status"]["observedGeneration"] == 2
        ),
        what="observedGeneration 2",
    )

    kube.delete(LLM, "LLMInferenceService", "qwen", "llm")
    wait_for(
        lambda: (
            kube.get("apps/v1", "Deployment", "qwen-kserve", "llm") is None
            and kube.get(GW, "HTTPRoute", "qwen-kserve-route", "llm") is None
            and not kube.list("v1", "Pod", "llm")
        ),
        what="children deleted",
    )


def test_ready_goes_false_then_true_with_the_workload(kube):
    kube.namespace("seq")
    kube.create(llmisvc("slow", "seq"))
    first = wait_for(
        lambda: condition(kube.get(LLM, "LLMInferenceService", "slow", "seq"), "MainWorkloadReady"),
        what="first status",
    )
    assert first["status"] == "False"
    assert first["reason"] in ("Progressing", "MinimumReplicasUnavailable")
    assert (
        condition(kube.get(LLM, "LLMInferenceService", "slow", "seq"), "Ready")["status"] == "False"
    )
    wait_for(
        lambda: (
            condition(kube.get(LLM, "LLMInferenceService", "slow", "seq"), "Ready").get("status")
            == "True"
        ),
        what="Ready",
    )
    pod = kube.list("v1", "Pod", "seq", "kserve.io/component=workload")[0]
    log = kube.logs("seq", pod["metadata"]["name"])
    assert any("Compilation finished" in line for line in log)
    assert log[-1] == "INFO:     Application startup complete."


def test_missing_base_config_is_reported(kube):
    kube.namespace("presets")
    kube.create(llmisvc("cfg", "presets", baseRefs=[{"name": "rhaiis-tpu-default"}]))
    cond = wait_for(
        lambda: condition(
            kube.get(LLM, "LLMInferenceService", "cfg", "presets"), "PresetsCombined"
        ),
        what="PresetsCombined",
    )
    assert cond["status"] == "False"
    assert cond["reason"] == "CombineBaseError"
    assert 'LLMInferenceServiceConfig "rhaiis-tpu-default"' in cond["message"]
    assert (
        condition(kube.get(LLM, "LLMInferenceService", "cfg", "presets"), "Ready")["status"]
        == "False"
    )
    assert kube.get("apps/v1", "Deployment", "cfg-kserve", "presets") is None


def test_base_config_is_merged(kube):
    kube.namespace("merge")
    kube.create(
        {
            "apiVersion": LLM,
            "kind": "LLMInferenceServiceConfig",
            "metadata": {"name": "tpu-preset", "namespace": "opendatahub"},
            "spec": {
                "template": {
                    "containers": [
                        {
                            "name": "main",
                            "image": "preset:1",
                            "env": [{"name": "PJRT_DEVICE", "value": "TPU"}],
                        }
                    ]
                }
            },
        }
    )
    kube.create(llmisvc("merged", "merge", baseRefs=[{"name": "tpu-preset"}]))
    deploy = wait_for(
        lambda: kube.get("apps/v1", "Deployment", "merged-kserve", "merge"),
        what="workload Deployment",
    )
    main = deploy["spec"]["template"]["spec"]["containers"][0]
    assert main["image"] == "registry.redhat.io/rhaiis/vllm-tpu-rhel9:3.2.5"
    # env merges by name: the template's, the preset's, then the service's own.
    env = {e["name"]: e.get("value") for e in main["env"]}
    assert env["PJRT_DEVICE"] == "TPU"
    assert env["VLLM_ADDITIONAL_ARGS"] == "--dtype=bfloat16 --max-model-len=2048"
    assert env["HF_HUB_CACHE"] == "/models"  # from kserve-config-llm-template


def test_cert_manager_issuers_and_certificates(kube):
    kube.namespace("cert-manager")
    kube.create(
        {
            "apiVersion": "cert-manager.io/v1",
            "kind": "ClusterIssuer",
            "metadata": {"name": "opendatahub-ca-issuer"},
            "spec": {"ca": {"secretName": "opendatahub-ca"}},
        }
    )
    issuer = wait_for(
        lambda: condition(
            kube.get("cert-manager.io/v1", "ClusterIssuer", "opendatahub-ca-issuer"), "Ready"
        ),
        what="ClusterIssuer Ready",
    )
    assert issuer["status"] == "True"
    ca = kube.get("v1", "Secret", "opendatahub-ca", "cert-manager")
    assert ca["type"] == "kubernetes.io/tls" and {"tls.crt", "tls.key", "ca.crt"} <= set(ca["data"])
    kube.create(
        {
            "apiVersion": "cert-manager.io/v1",
            "kind": "Certificate",
            "metadata": {"name": "web-tls", "namespace": "opendatahub"},
            "spec": {
                "secretName": "web-tls",
                "dnsNames": ["web.example.com"],
                "issuerRef": {"kind": "ClusterIssuer", "name": "opendatahub-ca-issuer"},
            },
        }
    )
    cert = wait_for(
        lambda: condition(
            kube.get("cert-manager.io/v1", "Certificate", "web-tls", "opendatahub"), "Ready"
        ),
        what="Certificate Ready",
    )
    assert cert["status"] == "True"
    secret = kube.get("v1", "Secret", "web-tls", "opendatahub")
    assert base64.b64decode(secret["data"]["ca.crt"]) == base64.b64decode(ca["data"]["ca.crt"])
