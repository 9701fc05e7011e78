#!/usr/bin/python
# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gcp_credentials_info
short_description: Find GCP credentials the way the collection's GCP modules will
version_added: 0.1.0
description:
  - Loads GCP credentials with the same options and code as the collection's GCP modules and
    says where they come from (key file, gcloud application-default file, metadata server,
    access token) and for which principal.
  - Makes no call to Google. It proves that credentials can be found, not that they are
    authorised for the project.
  - Fails with the ways to provide credentials when none are found.
author:
  - llmd.gke maintainers (@llmd)
extends_documentation_fragment:
  - llmd.gke.gcp_auth
  - llmd.gke.attributes
  - llmd.gke.attributes.info_module
"""

EXAMPLES = r"""
- name: Fail early when no GCP credentials can be found
  llmd.gke.gcp_credentials_info:
    project: my-project
  register: gcp

- name: Use a service account key
  llmd.gke.gcp_credentials_info:
    auth_kind: serviceaccount
    service_account_file: /secure/llmd-deployer.json
"""

RETURN = r"""
credentials:
  description: Where the credentials come from. Never contains a secret.
  returned: success
  type: dict
  contains:
    auth_kind:
      description: The auth_kind used.
      type: str
      sample: application
    source:
      description: Where the credentials were found.
      type: str
      sample: GOOGLE_APPLICATION_CREDENTIALS (/secure/key.json)
    principal:
      description: Service account e-mail when known, else null.
      type: str
      sample: deployer@my-project.iam.gserviceaccount.com
    project:
      description: The project from the options, or the one the credentials name.
      type: str
      sample: my-project
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.llmd.gke.plugins.module_utils.gcp_auth import (
    GCP_AUTH_ARG_SPEC,
    GCP_AUTH_MUTUALLY_EXCLUSIVE,
    GOOGLE_AUTH_IMPORT_ERROR,
    HAS_GOOGLE_AUTH,
    GcpAuthError,
    load_credentials,
)


def main():
    module = AnsibleModule(
        argument_spec=GCP_AUTH_ARG_SPEC,
        mutually_exclusive=GCP_AUTH_MUTUALLY_EXCLUSIVE,
        supports_check_mode=True,
    )
    if not HAS_GOOGLE_AUTH:
        module.fail_json(
            msg=missing_required_lib("google-auth"), exception=GOOGLE_AUTH_IMPORT_ERROR
        )
    try:
        found = load_credentials(module.params)
    except GcpAuthError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, credentials=found.describe())


if __name__ == "__main__":
    main()
