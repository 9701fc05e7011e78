# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """GCP authentication options, mirroring GCP_AUTH_ARG_SPEC in module_utils/gcp_auth.py."""

    DOCUMENTATION = r"""
options:
  auth_kind:
    description:
      - How to find GCP credentials. The names follow the google.cloud collection.
      - V(application) uses Application Default Credentials (C(GOOGLE_APPLICATION_CREDENTIALS),
        the gcloud application-default file, or the metadata server).
      - V(serviceaccount) uses O(service_account_file) or O(service_account_contents).
      - V(accesstoken) uses O(access_token) as it is.
      - V(machineaccount) uses the metadata server of the machine Ansible runs on.
      - If not set, the value of the E(GCP_AUTH_KIND) environment variable is used.
    type: str
    default: application
    choices: [application, serviceaccount, accesstoken, machineaccount]
  service_account_file:
    description:
      - Path to a service account key file (JSON), with O(auth_kind=serviceaccount).
      - If not set, the value of the E(GCP_SERVICE_ACCOUNT_FILE) environment variable is used.
    type: path
  service_account_contents:
    description:
      - Contents of a service account key (JSON string or dictionary), with O(auth_kind=serviceaccount).
      - If not set, the value of the E(GCP_SERVICE_ACCOUNT_CONTENTS) environment variable is used.
    type: jsonarg
  service_account_email:
    description:
      - Service account to use with O(auth_kind=machineaccount); the machine's default otherwise.
      - If not set, the value of the E(GCP_SERVICE_ACCOUNT_EMAIL) environment variable is used.
    type: str
  access_token:
    description:
      - An OAuth2 access token, with O(auth_kind=accesstoken). Never logged.
      - If not set, the value of the E(GCP_ACCESS_TOKEN) environment variable is used.
    type: str
  scopes:
    description:
      - OAuth2 scopes to request.
      - If not set, the value of the E(GCP_SCOPES) environment variable is used.
    type: list
    elements: str
    default: ['https://www.googleapis.com/auth/cloud-platform']
  project:
    description:
      - The GCP project ID.
      - If not set, the value of the E(GCP_PROJECT) environment variable is used.
    type: str
notes:
  - Credentials and tokens are never returned by the collection's modules.
requirements:
  - google-auth >= 2.0
"""
