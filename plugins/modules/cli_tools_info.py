#!/usr/bin/python
# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cli_tools_info
short_description: Find kubectl and helm and check their versions
version_added: 0.1.0
description:
  - Locates each tool (an explicit path, else C(PATH)), runs its version command and compares the
    version with a minimum.
  - Returns the problems found, each with how to fix it, instead of failing, so that a caller
    can report every problem at once. Set O(fail_on_problems=true) to fail instead.
author:
  - llmd.gke maintainers (@llmd)
extends_documentation_fragment:
  - llmd.gke.attributes
  - llmd.gke.attributes.info_module
options:
  tools:
    description:
      - The tools to check.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The tool.
        type: str
        required: true
        choices: [kubectl, helm]
      min_version:
        description: Lowest accepted version, for example V(1.28).
        type: str
      path:
        description: Path of the binary; searched on C(PATH) when not set.
        type: path
  fail_on_problems:
    description:
      - Fail when a tool is missing, broken or too old.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Check the tools the Kubernetes phases need
  llmd.gke.cli_tools_info:
    tools:
      - name: kubectl
        min_version: "1.28"
      - name: helm
        min_version: "3.17"
    fail_on_problems: true
"""

RETURN = r"""
tools:
  description: What was found for each tool, by name.
  returned: always
  type: dict
  sample:
    kubectl: {name: kubectl, path: /usr/local/bin/kubectl, version: 1.37.1, kustomize_version: 5.8.1, min_version: "1.28"}
problems:
  description: One message per tool that is missing, broken or too old, with how to fix it.
  returned: always
  type: list
  elements: str
  sample: ["helm 3.12.0 at /usr/bin/helm is too old; 3.17 or newer is needed: ..."]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.gke.plugins.module_utils.cli_tools import check_tool


def main():
    module = AnsibleModule(
        argument_spec=dict(
            tools=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    name=dict(type="str", required=True, choices=["kubectl", "helm"]),
                    min_version=dict(type="str"),
                    path=dict(type="path"),
                ),
            ),
            fail_on_problems=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    tools, problems = {}, []
    for tool in module.params["tools"]:
        facts, found = check_tool(module, tool["name"], tool["min_version"], tool["path"])
        tools[tool["name"]] = facts
        problems.extend(found)
    if problems and module.params["fail_on_problems"]:
        module.fail_json(msg=" ".join(problems), tools=tools, problems=problems)
    module.exit_json(changed=False, tools=tools, problems=problems)


if __name__ == "__main__":
    main()
