"""kubectl's table output from the emulated API server, as kube-apiserver prints it.

kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io` and prints the columns and cells
the server answers (priority-1 columns only with `-o wide`). Each check is a row of
docs/conformance.md ("Kubernetes API and controllers": kubectl get tables).
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime

import pytest
import yaml
from support import Kube, crd, node, run_tool, wait_for

from llmd_emulator.k8s.printers import human_duration, print_pod
from llmd_emulator.testing import kserve_root

NS = "printers"


@pytest.fixture(scope="module")
def kube(emulator) -> Kube:
    api = Kube(emulator)
    api.namespace(NS)
    return api


def _kubectl(env: dict[str, str], *args: str, check: bool = True):
    return run_tool("kubectl", *args, env=env, check=check)


def _table(text: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    """kubectl's printed table: the header, and each row by its NAME as {HEADER: cell}."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = lines[0]
    # Columns start where a header word starts after two spaces (or at 0): cut the rows there.
    starts = [0] + [m.end() for m in re.finditer(r"\s{2,}", header)]
    names = [header[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
    rows = {}
    for line in lines[1:]:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        row = dict(zip(names, cells, strict=True))
        rows[row["NAME"]] = row
    return names, rows


AGE = re.compile(r"^\d+s$")

WEB = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {NS}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: nginx, image: "nginx:1.27"}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {NS}}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
"""


def _gke_node(name: str) -> dict:
    obj = node(name)
    obj["metadata"]["labels"]["node-role.kubernetes.io/worker"] = ""
    obj["status"]["nodeInfo"] = {
        "kubeletVersion": "v1.33.5-gke.1162000",
        "osImage": "Container-Optimized OS from Google",
        "kernelVersion": "6.6.97+",
        "containerRuntimeVersion": "containerd://2.0.6",
    }
    obj["status"]["addresses"] = [{"type": "InternalIP", "address": "10.128.0.9"}]
    return obj


def test_nodes_deployments_services_and_pods(kube: Kube, ansible_env: dict[str, str]) -> None:
    kube.create_node(_gke_node("node-a"))
    run_tool("kubectl", "apply", "-f", "-", env=ansible_env, stdin=WEB)

    header, rows = _table(_kubectl(ansible_env, "get", "nodes").stdout)
    assert header == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert rows["node-a"]["STATUS"] == "Ready"
    assert rows["node-a"]["ROLES"] == "worker"
    assert rows["node-a"]["VERSION"] == "v1.33.5-gke.1162000"
    assert AGE.match(rows["node-a"]["AGE"])
    header, rows = _table(_kubectl(ansible_env, "get", "nodes", "-o", "wide").stdout)
    assert header[5:] == [
        "INTERNAL-IP",
        "EXTERNAL-IP",
        "OS-IMAGE",
        "KERNEL-VERSION",
        "CONTAINER-RUNTIME",
    ]
    assert [rows["node-a"][h] for h in header[5:]] == [
        "10.128.0.9",
        "<none>",
        "Container-Optimized OS from Google",
        "6.6.97+",
        "containerd://2.0.6",
    ]

    def deploy_ready():
        _header, found = _table(_kubectl(ansible_env, "get", "deploy", "-n", NS).stdout)
        return found if found.get("web", {}).get("READY") == "2/2" else None

    rows = wait_for(deploy_ready, what="deployment web 2/2")
    assert list(rows["web"]) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert (rows["web"]["UP-TO-DATE"], rows["web"]["AVAILABLE"]) == ("2", "2")
    header, rows = _table(_kubectl(ansible_env, "get", "deploy", "-n", NS, "-o", "wide").stdout)
    assert header[5:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert [rows["web"][h] for h in header[5:]] == ["nginx", "nginx:1.27", "app=web"]

    header, rows = _table(_kubectl(ansible_env, "get", "rs", "-n", NS).stdout)
    assert header == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    (rs,) = list(rows.values())
    assert (rs["DESIRED"], rs["CURRENT"], rs["READY"]) == ("2", "2", "2")

    header, rows = _table(_kubectl(ansible_env, "get", "svc", "-n", NS).stdout)
    assert header == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    svc = kube.get("v1", "Service", "web", NS)
    assert rows["web"]["TYPE"] == "ClusterIP"
    assert rows["web"]["CLUSTER-IP"] == svc["spec"]["clusterIPs"][0]
    assert (rows["web"]["EXTERNAL-IP"], rows["web"]["PORT(S)"]) == ("<none>", "80/TCP")
    header, rows = _table(_kubectl(ansible_env, "get", "svc", "-n", NS, "-o", "wide").stdout)
    assert header[-1] == "SELECTOR"
    assert rows["web"]["SELECTOR"] == "app=web"

    header, rows = _table(_kubectl(ansible_env, "get", "pods", "-A").stdout)
    assert header == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    web = [r for name, r in rows.items() if name.startswith("web-")]
    assert len(web) == 2
    assert {(r["NAMESPACE"], r["READY"], r["STATUS"], r["RESTARTS"]) for r in web} == {
        (NS, "1/1", "Running", "0")
    }
    header, rows = _table(_kubectl(ansible_env, "get", "pods", "-n", NS, "-o", "wide").stdout)
    assert header[5:] == ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
    for name, row in rows.items():
        pod = kube.get("v1", "Pod", name, NS)
        assert row["IP"] == pod["status"]["podIPs"][0]["ip"]
        assert (row["NODE"], row["NOMINATED NODE"], row["READINESS GATES"]) == (
            "node-a",
            "<none>",
            "<none>",
        )


def test_a_crash_looping_pod(kube: Kube, ansible_env: dict[str, str]) -> None:
    """The emulated kubelet restarts a container that exits: RESTARTS `n (Xs ago)`."""
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "crash", "namespace": NS},
            "spec": {
                "containers": [
                    {
                        "name": "main",
                        "image": "vllm/vllm-openai:v0.10.1",
                        "command": ["bash", "-c", "exit 3"],
                    }
                ]
            },
        }
    )

    def looping():
        _header, rows = _table(_kubectl(ansible_env, "get", "pod", "crash", "-n", NS).stdout)
        row = rows["crash"]
        return row if row["STATUS"] == "CrashLoopBackOff" and row["RESTARTS"] != "0" else None

    row = wait_for(looping, what="crash in CrashLoopBackOff")
    assert row["READY"] == "0/1"
    assert re.fullmatch(r"\d+ \(\d+s ago\)", row["RESTARTS"]), row


def test_the_emulated_kubelet_shows_init_progress(kube: Kube) -> None:
    """The statuses the emulated kubelet writes while init containers run print as a real
    cluster's do: Init:0/2, Init:1/2, then Running (watched, each event through printPod)."""
    url = f"{kube.base}/api/v1/namespaces/{NS}/pods"
    params = {"watch": "true", "fieldSelector": "metadata.name=staged", "timeoutSeconds": "20"}
    seen: list[str] = []
    with kube.http.get(url, params=params, stream=True, timeout=30) as resp:
        assert resp.status_code == 200
        kube.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "staged", "namespace": NS},
                "spec": {
                    "initContainers": INIT,
                    "containers": [{"name": "app", "image": "nginx:1.27"}],
                },
            }
        )
        for line in resp.iter_lines():
            event = json.loads(line)
            status = print_pod(event["object"], datetime.now(UTC))[0][2]
            if not seen or seen[-1] != status:
                seen.append(status)
            if status == "Running":
                break
    assert [s for s in seen if s.startswith("Init:") or s == "Running"] == [
        "Init:0/2",
        "Init:1/2",
        "Running",
    ], seen


def _pending_pod(name: str, **spec) -> dict:
    """A pod no node can take (the emulated kubelet never runs it): its status is ours to set."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, **spec.pop("metadata", {})},
        "spec": {
            "nodeSelector": {"printers.test/none": "x"},
            "containers": [{"name": "app", "image": "nginx:1.27"}],
            **spec,
        },
    }


def _terminated(code: int = 0, reason: str = "Completed", **extra) -> dict:
    return {"terminated": {"exitCode": code, "reason": reason, **extra}}


INIT = [{"name": "fetch", "image": "busybox"}, {"name": "warm", "image": "busybox"}]
SIDECAR = [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]
# Statuses as the kubelet writes them (k8s.io/kubernetes pkg/kubelet/status/generate.go and
# kuberuntime): each case names the STATUS printPod derives from it.
CASES = {
    "init-second": (
        {"initContainers": INIT},
        {
            "phase": "Pending",
            "conditions": [{"type": "Initialized", "status": "False"}],
            "initContainerStatuses": [
                {"name": "fetch", "ready": True, "restartCount": 0, "state": _terminated()},
                {"name": "warm", "ready": False, "restartCount": 0, "state": {"running": {}}},
            ],
            "containerStatuses": [
                {
                    "name": "app",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"waiting": {"reason": "PodInitializing"}},
                }
            ],
        },
        ("0/1", "Init:1/2", "0"),
    ),
    "init-crash": (
        {"initContainers": INIT},
        {
            "phase": "Pending",
            "conditions": [{"type": "Initialized", "status": "False"}],
            "initContainerStatuses": [
                {
                    "name": "fetch",
                    "ready": False,
                    "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": _terminated(1, "Error", finishedAt="2020-01-01T00:00:00Z"),
                },
                {
                    "name": "warm",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"waiting": {"reason": "PodInitializing"}},
                },
            ],
        },
        ("0/1", "Init:CrashLoopBackOff", re.compile(r"3 \(\d+y\d*d? ago\)")),
    ),
    "init-exit": (
        {"initContainers": INIT[:1]},
        {
            "phase": "Pending",
            "initContainerStatuses": [
                {"name": "fetch", "ready": False, "restartCount": 0, "state": _terminated(2, "")}
            ],
        },
        ("0/1", "Init:ExitCode:2", "0"),
    ),
    "initialized": (
        {"initContainers": INIT},
        {
            "phase": "Pending",
            "conditions": [{"type": "Initialized", "status": "True"}],
            "initContainerStatuses": [
                {"name": n, "ready": True, "restartCount": 0, "state": _terminated()}
                for n in ("fetch", "warm")
            ],
            "containerStatuses": [
                {
                    "name": "app",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"waiting": {"reason": "PodInitializing"}},
                }
            ],
        },
        ("0/1", "PodInitializing", "0"),
    ),
    "sidecar": (
        {"initContainers": SIDECAR},
        {
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}],
            "initContainerStatuses": [
                {
                    "name": "proxy",
                    "ready": True,
                    "started": True,
                    "restartCount": 1,
                    "state": {"running": {}},
                }
            ],
            "containerStatuses": [
                {"name": "app", "ready": True, "restartCount": 0, "state": {"running": {}}}
            ],
        },
        ("2/2", "Running", "1"),
    ),
    "done": (
        {"restartPolicy": "Never"},
        {
            "phase": "Succeeded",
            "containerStatuses": [
                {"name": "app", "ready": False, "restartCount": 0, "state": _terminated()}
            ],
        },
        ("0/1", "Completed", "0"),
    ),
}


def test_pod_status_reasons_as_print_pod_derives_them(
    kube: Kube, ansible_env: dict[str, str]
) -> None:
    for name, (spec, status, _want) in CASES.items():
        kube.create(_pending_pod(name, **spec))
        kube.patch_status("v1", "Pod", name, NS, status)
    # Terminating: a deleted pod held by a finalizer (deletionTimestamp set, phase not terminal).
    kube.create(_pending_pod("leaving", metadata={"finalizers": ["printers.test/hold"]}))
    kube.delete("v1", "Pod", "leaving", NS)

    _header, rows = _table(_kubectl(ansible_env, "get", "pods", "-n", NS).stdout)
    for name, (_spec, _status, (ready, reason, restarts)) in CASES.items():
        got = rows[name]
        assert (got["READY"], got["STATUS"]) == (ready, reason), (name, got)
        if isinstance(restarts, str):
            assert got["RESTARTS"] == restarts, (name, got)
        else:
            assert restarts.fullmatch(got["RESTARTS"]), (name, got)
    assert rows["leaving"]["STATUS"] == "Terminating"
    kube.patch("v1", "Pod", "leaving", NS, {"metadata": {"finalizers": None}})


def test_llminferenceservice_printer_columns(kube: Kube, ansible_env: dict[str, str]) -> None:
    """The real CRD's additionalPrinterColumns: URL, READY, REASON, AGE; URLS (-o wide) shows
    the first result only, as the CRD table convertor takes results[0][0]."""
    path = kserve_root() / "config/crd/full/serving.kserve.io_llminferenceservices.yaml"
    kube.create(yaml.safe_load(path.read_text()))
    time.sleep(0.2)
    kube.create(
        {
            "apiVersion": "serving.kserve.io/v1alpha1",
            "kind": "LLMInferenceService",
            "metadata": {"name": "qwen", "namespace": NS},
            "spec": {"model": {"uri": "hf://Qwen/Qwen3-0.6B"}},
        }
    )
    kube.patch_status(
        "serving.kserve.io/v1alpha1",
        "LLMInferenceService",
        "qwen",
        NS,
        {
            "url": "http://gw.example/printers/qwen",
            "addresses": [
                {"url": "http://gw.example/printers/qwen"},
                {"url": "http://10.0.0.1/printers/qwen"},
            ],
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "MinimumReplicasUnavailable"}
            ],
        },
    )
    header, rows = _table(_kubectl(ansible_env, "get", "llminferenceservice", "-n", NS).stdout)
    assert header == ["NAME", "URL", "READY", "REASON", "AGE"]
    got = rows["qwen"]
    assert (got["URL"], got["READY"], got["REASON"]) == (
        "http://gw.example/printers/qwen",
        "False",
        "MinimumReplicasUnavailable",
    )
    assert AGE.match(got["AGE"])
    header, rows = _table(_kubectl(ansible_env, "get", "llmisvc", "-n", NS, "-o", "wide").stdout)
    assert header[-1] == "URLS"
    assert rows["qwen"]["URLS"] == "http://gw.example/printers/qwen"


def test_a_crd_without_columns_prints_name_and_age(kube: Kube, ansible_env: dict[str, str]) -> None:
    """serveDefaultColumnsIfEmpty: Age from .metadata.creationTimestamp; a JSONPath beyond the
    emulated subset is refused naming the gap, not answered with a guess."""
    kube.create(crd("printers.test", "v1", "Widget", "widgets"))
    broken = crd("printers.test", "v1", "Gadget", "gadgets")
    broken["spec"]["versions"][0]["additionalPrinterColumns"] = [
        {"name": "Deep", "type": "string", "jsonPath": ".spec..deep"}
    ]
    kube.create(broken)
    time.sleep(0.2)
    objects = [
        {"apiVersion": "printers.test/v1", "kind": kind, "metadata": {"name": "w", "namespace": NS}}
        for kind in ("Widget", "Gadget")
    ]
    run_tool("kubectl", "apply", "-f", "-", env=ansible_env, stdin=yaml.safe_dump_all(objects))
    header, rows = _table(_kubectl(ansible_env, "get", "widgets", "-n", NS).stdout)
    assert header == ["NAME", "AGE"]
    assert AGE.match(rows["w"]["AGE"])
    # The CRD itself has no printer: kube-apiserver's default convertor, NAME and CREATED AT.
    header, rows = _table(_kubectl(ansible_env, "get", "crd", "widgets.printers.test").stdout)
    assert header == ["NAME", "CREATED AT"]
    created = kube.get(
        "apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.printers.test"
    )
    assert rows["widgets.printers.test"]["CREATED AT"] == created["metadata"]["creationTimestamp"]
    refused = _kubectl(ansible_env, "get", "gadgets", "-n", NS, check=False)
    assert refused.returncode != 0
    assert "emulator gap" in refused.stderr


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-2, "<invalid>"),
        (-1, "0s"),
        (119, "119s"),
        (120, "2m"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600 + 300, "3h5m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (49 * 3600, "2d1h"),
        (8 * 86400, "8d"),
        (2 * 365 * 86400 + 86400, "2y1d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    """apimachinery duration.HumanDuration, the AGE and `(X ago)` of every table."""
    assert human_duration(seconds) == text
