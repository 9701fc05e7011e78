import json

import pytest

from ansible_collections.llmd.gke.plugins.module_utils.cli_tools import (
    ToolVersionError,
    check_tool,
    parse_version,
    version_at_least,
)


def kubectl_json(git_version, kustomize="v5.8.1"):
    return json.dumps({"clientVersion": {"gitVersion": git_version}, "kustomizeVersion": kustomize})


def test_parse_kubectl_and_helm_versions():
    assert parse_version("kubectl", kubectl_json("v1.37.1")) == {
        "version": "1.37.1",
        "kustomize_version": "5.8.1",
    }
    assert parse_version("kubectl", kubectl_json("v1.32.4-dispatcher"))["version"] == "1.32.4"
    assert parse_version("helm", "v4.1.4")["version"] == "4.1.4"
    assert parse_version("helm", "v3.17.2+gcc0c9f4\n")["version"] == "3.17.2"


@pytest.mark.parametrize(
    ("tool", "output"), [("kubectl", "Client Version: v1.30"), ("kubectl", "{}"), ("helm", "dev")]
)
def test_unreadable_versions_raise(tool, output):
    with pytest.raises(ToolVersionError):
        parse_version(tool, output)


@pytest.mark.parametrize(
    ("version", "minimum", "ok"),
    [
        ("1.28.0", "1.28", True),
        ("1.27.9", "1.28", False),
        ("1.100.0", "1.28", True),
        ("3.16.4", "3.17", False),
        ("4.1.4", "3.17", True),
    ],
)
def test_version_comparison_is_numeric(version, minimum, ok):
    assert version_at_least(version, minimum) is ok


class FakeModule:
    def __init__(self, path, rc=0, out="", err=""):
        self.path, self.result = path, (rc, out, err)

    def get_bin_path(self, name):
        return self.path

    def run_command(self, args):
        return self.result


def test_check_tool_reports_missing_old_and_broken_tools_with_a_fix():
    facts, problems = check_tool(FakeModule(None), "helm", "3.17", None)
    assert facts["path"] is None
    assert problems == [problems[0]]
    assert "helm is not installed or not on PATH" in problems[0]
    assert "make setup" in problems[0]

    _facts, problems = check_tool(FakeModule("/bin/helm", out="v3.12.0"), "helm", "3.17", None)
    assert "helm 3.12.0 at /bin/helm is too old; 3.17 or newer is needed" in problems[0]

    _facts, problems = check_tool(
        FakeModule("/bin/kubectl", rc=1, err="exec format error"), "kubectl", "1.28", None
    )
    assert "failed to report its version (exec format error)" in problems[0]

    facts, problems = check_tool(
        FakeModule("/bin/kubectl", out=kubectl_json("v1.37.1")), "kubectl", "1.28", None
    )
    assert problems == []
    assert facts["version"] == "1.37.1"
