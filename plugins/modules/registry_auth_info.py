#!/usr/bin/python
# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: registry_auth_info
short_description: Check container registry credentials without revealing them
version_added: 0.1.0
description:
  - Reads a containers auth file (C(auth.json), as written by C(podman login)) or a given auth
    config and returns which registries it holds credentials for.
  - Never returns or logs a credential.
author:
  - llmd.gke maintainers (@llmd)
extends_documentation_fragment:
  - llmd.gke.attributes
  - llmd.gke.attributes.info_module
options:
  path:
    description:
      - Path of the auth file. Defaults to E(REGISTRY_AUTH_FILE), else
        C($XDG_CONFIG_HOME/containers/auth.json) (C(~/.config/containers/auth.json)).
      - Ignored when O(content) is given.
    type: path
  content:
    description:
      - An auth config (JSON text or dictionary with an C(auths) object), for example from Ansible Vault.
    type: raw
  registry:
    description:
      - Registry that must have credentials. When set, the module fails if it has none.
    type: str
"""

EXAMPLES = r"""
- name: The Red Hat registry must have credentials in the user's auth file
  llmd.gke.registry_auth_info:
    registry: registry.redhat.io

- name: Check a vaulted auth config
  llmd.gke.registry_auth_info:
    content: "{{ vault_registry_auth }}"
    registry: registry.redhat.io
"""

RETURN = r"""
source:
  description: Where the credentials were read from (a path, or C(content)).
  returned: success
  type: str
  sample: /home/me/.config/containers/auth.json
registries:
  description: Registries that have credentials, sorted.
  returned: success
  type: list
  elements: str
  sample: [quay.io, registry.redhat.io]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.gke.plugins.module_utils.registry_auth import (
    RegistryAuthError,
    default_auth_file,
    parse_auth_config,
    read_auth_file,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path"),
            content=dict(type="raw", no_log=True),
            registry=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        if params["content"]:
            source = "content"
            auths = parse_auth_config(params["content"])
        else:
            source = params["path"] or default_auth_file()
            auths = read_auth_file(source)
    except RegistryAuthError as exc:
        module.fail_json(
            msg=f"Registry credentials are unusable: {exc}. Run 'podman login REGISTRY' "
            "(writes ~/.config/containers/auth.json) or provide the auth config from Ansible Vault."
        )
    registries = sorted(auths)
    if params["registry"] and params["registry"] not in auths:
        module.fail_json(
            msg=f"No credentials for {params['registry']} in {source} (it has: "
            f"{', '.join(registries) or 'none'}). Run 'podman login {params['registry']}' "
            "or add them to the vaulted auth config.",
            source=source,
            registries=registries,
        )
    module.exit_json(changed=False, source=source, registries=registries)


if __name__ == "__main__":
    main()
