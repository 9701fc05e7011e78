"""kubernetes.core k8s and k8s_info against the emulator, in one playbook (start-up is slow)."""

from __future__ import annotations

import json

import yaml
from support import crd, run_playbook

NS = "ansible"
CRD = crd("example.com", "v1", "Gizmo", "gizmos", list_kind=False)
OBJECTS = {
    "configmap": {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": NS, "labels": {"tier": "conf"}},
        "data": {"mode": "fast"},
    },
    "deployment": {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": NS, "labels": {"tier": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "app"}},
            "template": {
                "metadata": {"labels": {"app": "app"}},
                "spec": {
                    "containers": [
                        {"name": "app", "image": "nginx:1", "ports": [{"containerPort": 80}]}
                    ]
                },
            },
        },
    },
    "custom": {
        "apiVersion": "example.com/v1",
        "kind": "Gizmo",
        "metadata": {"name": "g", "namespace": NS, "labels": {"tier": "web"}},
        "spec": {"size": 2, "parts": [{"name": "a"}]},
    },
}


def _four_steps(label: str, definition: dict) -> list[dict]:
    steps = []
    for step, check in (("check", True), ("apply", False), ("recheck", True), ("reapply", False)):
        steps.append(
            {
                "name": f"{label} {step}",
                "kubernetes.core.k8s": {"state": "present", "definition": definition},
                "check_mode": check,
            }
        )
    return steps


def playbook() -> str:
    tasks: list[dict] = [
        {
            "name": "namespace",
            "kubernetes.core.k8s": {"name": NS, "api_version": "v1", "kind": "Namespace"},
        },
        {
            "name": "crd",
            "kubernetes.core.k8s": {
                "definition": CRD,
                "wait": True,
                "wait_condition": {"type": "Established"},
            },
        },
    ]
    for label, definition in OBJECTS.items():
        tasks += _four_steps(label, definition)
    tasks += [
        {
            "name": "server side apply",
            "kubernetes.core.k8s": {
                "definition": {**OBJECTS["configmap"], "data": {"mode": "slow"}},
                "apply": True,
                "server_side_apply": {"field_manager": "ansible", "force_conflicts": True},
            },
        },
        {
            "name": "by label",
            "kubernetes.core.k8s_info": {
                "api_version": "apps/v1",
                "kind": "Deployment",
                "namespace": NS,
                "label_selectors": ["tier=web"],
            },
        },
        {
            "name": "by missing label",
            "kubernetes.core.k8s_info": {
                "api_version": "apps/v1",
                "kind": "Deployment",
                "namespace": NS,
                "label_selectors": ["tier=none"],
            },
        },
        {
            "name": "remove check",
            "kubernetes.core.k8s": {
                "state": "absent",
                "definition": OBJECTS["custom"],
            },
            "check_mode": True,
        },
        {
            "name": "remove",
            "kubernetes.core.k8s": {
                "state": "absent",
                "definition": OBJECTS["custom"],
                "wait": True,
                "wait_timeout": 20,
            },
        },
        {
            "name": "remove namespace",
            "kubernetes.core.k8s": {
                "state": "absent",
                "api_version": "v1",
                "kind": "Namespace",
                "name": NS,
                "wait": True,
                "wait_timeout": 20,
            },
        },
    ]
    return yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}])


def test_kubernetes_core_four_steps(ansible_env: dict[str, str], emulator) -> None:
    rc, output, results = run_playbook(playbook(), ansible_env)
    assert rc == 0, output[-4000:]

    def one(name: str) -> dict:
        (result,) = results[name]
        assert not result.get("failed"), json.dumps(result)[:2000]
        return result

    for label in OBJECTS:
        assert one(f"{label} check")["changed"] is True, label
        # apply reports a change only because the check-mode run stored nothing
        assert one(f"{label} apply")["changed"] is True, label
        assert one(f"{label} recheck")["changed"] is False, label
        assert one(f"{label} reapply")["changed"] is False, label
    applied = one("server side apply")
    assert applied["changed"] is True and applied["result"]["data"] == {"mode": "slow"}
    assert [r["metadata"]["name"] for r in one("by label")["resources"]] == ["app"]
    assert one("by missing label")["resources"] == []
    assert one("remove check")["changed"] is True
    assert one("remove")["changed"] is True  # the check-mode removal deleted nothing
    assert one("remove namespace")["changed"] is True
    assert not emulator.objects("Gizmo")
    assert NS not in {o["metadata"]["name"] for o in emulator.objects("Namespace")}
