"""The troubleshooting guide names every reason llmisvc_wait and preflight can report."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "docsite" / "rst" / "troubleshooting.rst").read_text()


def _constants(node) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return set().union(*(_constants(e) for e in node.elts))
    return set()


def diagnosis_reasons() -> set[str]:
    """reason= of Diagnosis and KubeError, .reason = "X", TERMINAL_REASONS, `reason ==/in` tests."""
    found: set[str] = set()
    for name in ("llmisvc.py", "k8s_wait.py"):
        tree = ast.parse((ROOT / "plugins" / "module_utils" / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in (
                "Diagnosis",
                "KubeError",
            ):
                for kw in node.keywords:
                    if kw.arg == "reason":
                        found |= _constants(kw.value)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Attribute) and target.attr == "reason":
                        found |= _constants(node.value)
                    if getattr(target, "id", "") == "TERMINAL_REASONS":
                        found |= _constants(node.value.args[0])
            elif isinstance(node, ast.Compare) and getattr(node.left, "id", "") == "reason":
                for comp in node.comparators:
                    found |= _constants(comp)
    return found


def test_the_extraction_finds_the_known_reasons():
    reasons = diagnosis_reasons()
    assert {"OOMKilled", "CombineBaseError", "ImagePullBackOff", "HuggingFace401"} <= reasons
    assert {"Unreachable", "KubeconfigMissing", "InvalidImageName"} <= reasons
    assert len(reasons) >= 20, sorted(reasons)


def test_every_diagnosis_reason_is_in_the_guide():
    missing = sorted(r for r in diagnosis_reasons() if f"``{r}``" not in GUIDE)
    assert not missing, f"troubleshooting.rst does not name: {missing}"


def test_every_preflight_check_is_in_the_guide():
    checks = yaml.safe_load((ROOT / "roles" / "preflight" / "vars" / "main.yml").read_text())
    subjects = set()
    for check in checks["__preflight_variable_checks"]:
        subjects |= set(re.findall(r"\bllmd_[a-z0-9_]+", check["msg"]))
    assert len(subjects) >= 15, subjects
    tasks = (ROOT / "roles" / "preflight" / "tasks" / "main.yml").read_text()
    modules = set(re.findall(r"^\s+llmd\.gke\.([a-z0-9_]+):", tasks, re.M))
    assert {"tpu_slice_info", "gcp_capacity_info"} <= modules
    missing = sorted(s for s in subjects if f"``{s}``" not in GUIDE)
    missing += sorted(m for m in modules if f"llmd.gke.{m}#module" not in GUIDE)
    assert not missing, f"troubleshooting.rst does not name: {missing}"
