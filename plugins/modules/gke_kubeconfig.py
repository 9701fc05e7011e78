#!/usr/bin/python
# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gke_kubeconfig
short_description: Write a kubeconfig for a GKE cluster without gcloud
version_added: 0.1.0
description:
  - Reads the cluster's endpoint and CA certificate from the GKE REST API v1 and writes a
    cluster, a user and a context entry for it into the kubeconfig file O(path), like
    C(gcloud container clusters get-credentials) but without gcloud.
  - The entries are named O(context_name) (default C(gke_PROJECT_LOCATION_CLUSTER), gcloud's
    name). Other entries and settings of an existing file are kept; a namespace set on our
    context is kept too. With O(set_current_context=true) the file's C(current-context) becomes
    ours.
  - The user authenticates with the C(gke-gcloud-auth-plugin) exec plugin when O(auth) chooses
    it, or with a google-auth access token written into the user entry (see O(auth)).
  - The file is written atomically with mode C(0600); missing parent directories are created
    with mode C(0700). A symlink at O(path) is followed.
  - With O(state=absent) the module removes our context, and our cluster and user entries
    unless another context uses them, and the whole file when nothing else is left. It makes no
    API call then.
author:
  - llmd.gke maintainers (@llmd)
extends_documentation_fragment:
  - llmd.gke.gcp_auth
  - llmd.gke.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the cluster and the file and predicts RV(ignore:changed) and the diff; writes,
        creates and removes nothing.
  diff_mode:
    support: full
    details:
      - Before and after of our entries as the server, the CA certificate's SHA-256
        fingerprint, the auth method (with the plugin's command and arguments), the context
        name, the current context and the file mode. Never the token, never the whole CA.
options:
  api_endpoint:
    description:
      - Root URL of the GKE API, for a proxy, a private endpoint or a test server.
      - Accepted with or without a trailing C(v1/).
      - If not set, the value of the E(CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER) environment
        variable (gcloud's convention) is used, else C(https://container.googleapis.com/).
    type: str
  location:
    description:
      - The cluster's location, a zone (V(europe-west4-a)) or a region (V(europe-west4)), as the
        cluster was created.
    type: str
    required: true
    aliases: [zone]
  cluster:
    description:
      - Name of the cluster.
      - With O(state=present) it must be C(RUNNING), C(RECONCILING) (a change in progress, the
        endpoint serves) or C(DEGRADED) (with a warning); any other status fails the module.
    type: str
    required: true
  path:
    description:
      - The kubeconfig file to write, for example V(~/.kube/config) or a file of its own that
        later tasks pass to C(kubernetes.core) modules (C(kubeconfig)) or kubectl
        (C(--kubeconfig)).
      - Its comments and formatting are not kept when the module rewrites it; its content is.
    type: path
    required: true
  context_name:
    description:
      - Name of the cluster, user and context entries.
      - Default C(gke_PROJECT_LOCATION_CLUSTER), as gcloud names them, so that running gcloud
        later replaces the same entries.
    type: str
  auth:
    description:
      - How kubectl and the C(kubernetes.core) modules authenticate to the cluster.
      - V(plugin) writes an exec entry that runs C(gke-gcloud-auth-plugin) (found on E(PATH), or
        O(auth_plugin_path)); it gets a fresh token whenever one is needed. The module fails
        when the plugin cannot be found.
      - V(token) writes an OAuth2 access token from the module's GCP credentials into the user
        entry. Such a token expires after about one hour; run the module again to refresh it
        (see the notes).
      - V(auto) uses V(plugin) when the plugin is found, else V(token).
    type: str
    default: auto
    choices: [auto, plugin, token]
  auth_plugin_path:
    description:
      - Path of the C(gke-gcloud-auth-plugin) executable, written as the exec command. When not
        set the plugin is looked up on E(PATH) and the command written is its bare name, as
        gcloud writes it (kubectl then finds it on its own E(PATH)).
    type: path
  auth_plugin_credentials:
    description:
      - Which credentials the plugin uses when kubectl runs it (with O(auth) choosing the plugin).
      - V(application) passes C(--use_application_default_credentials) (Application Default
        Credentials, no gcloud needed), plus E(GOOGLE_APPLICATION_CREDENTIALS) set to
        O(service_account_file) with O(auth_kind=serviceaccount).
      - V(gcloud) lets the plugin ask gcloud for its credentials, as the kubeconfig written by
        gcloud does.
      - V(auto) means V(application) for O(auth_kind=application), O(auth_kind=machineaccount)
        and O(auth_kind=serviceaccount) with O(service_account_file), and V(gcloud) otherwise
        (the plugin cannot use O(access_token) or O(service_account_contents); the module warns
        about O(access_token)).
    type: str
    default: auto
    choices: [auto, application, gcloud]
  private_endpoint:
    description:
      - Use the cluster's private endpoint
        (C(controlPlaneEndpointsConfig.ipEndpointsConfig.privateEndpoint)) instead of its public
        one. The module fails when the cluster has none.
    type: bool
    default: false
  set_current_context:
    description:
      - Make our context the file's C(current-context).
    type: bool
    default: true
  state:
    description:
      - V(present) writes or updates our entries; V(absent) removes them (see the description).
    type: str
    default: present
    choices: [present, absent]
notes:
  - RV(ignore:changed) is true only when our entries other than the token change (server, CA,
    auth method, plugin command, context), when the C(current-context) changes, when the file
    is created, or when its mode is not C(0600).
  - In V(token) mode the token in the file is replaced whenever the credentials give another one
    (google-auth tokens last about an hour). That alone is not a change - RV(ignore:changed)
    stays false and RV(token_refreshed) is true - so the module can run at the start of every
    phase that talks to the cluster to keep the token fresh. Long-running phases should run it
    again before the token expires (RV(token_expiry)), or use V(plugin).
  - The token is never returned, shown in the diff or put into a message; only the file holds it.
  - With O(auth_kind=accesstoken) the token written is O(access_token) as given.
  - The exec entry uses C(client.authentication.k8s.io/v1beta1) with C(provideClusterInfo), as
    gcloud writes it.
seealso:
  - module: llmd.gke.gke_tpu_nodepool
  - name: Install kubectl and configure cluster access
    description: Google's page on gke-gcloud-auth-plugin and kubeconfig entries.
    link: https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl
"""

EXAMPLES = r"""
- name: Write a kubeconfig of its own for the cluster (plugin when installed, else a token)
  llmd.gke.gke_kubeconfig:
    project: my-project
    location: europe-west4-a
    cluster: llmd-tpu
    path: ~/.kube/llmd-tpu.yaml
  register: kubeconfig

- name: Use it
  kubernetes.core.k8s_info:
    kubeconfig: "{{ kubeconfig.path }}"
    kind: Node

- name: Add the cluster to the user's own kubeconfig without switching to it
  llmd.gke.gke_kubeconfig:
    project: my-project
    location: europe-west4-a
    cluster: llmd-tpu
    path: ~/.kube/config
    set_current_context: false

- name: A token from a service account key, for machines without the plugin
  llmd.gke.gke_kubeconfig:
    auth_kind: serviceaccount
    service_account_file: /secure/llmd-deployer.json
    project: my-project
    location: europe-west4-a
    cluster: llmd-tpu
    path: /srv/llmd/kubeconfig
    auth: token

- name: Remove the cluster's entries again
  llmd.gke.gke_kubeconfig:
    project: my-project
    location: europe-west4-a
    cluster: llmd-tpu
    path: ~/.kube/config
    state: absent
"""

RETURN = r"""
path:
  description: The kubeconfig file (O(path) with C(~) expanded).
  returned: always
  type: str
  sample: /home/me/.kube/llmd-tpu.yaml
context:
  description: Name of our context (and of our cluster and user entries).
  returned: always
  type: str
  sample: gke_my-project_europe-west4-a_llmd-tpu
server:
  description: The cluster's API server URL written into the cluster entry.
  returned: when O(state=present)
  type: str
  sample: https://34.90.12.34
auth:
  description: How the user entry authenticates, V(plugin) or V(token).
  returned: when O(state=present)
  type: str
  sample: plugin
plugin_command:
  description: The exec command written for the plugin.
  returned: when RV(auth=plugin)
  type: str
  sample: gke-gcloud-auth-plugin
ca_fingerprint:
  description: SHA-256 fingerprint of the cluster's CA certificate (as C(openssl x509 -fingerprint -sha256) shows it).
  returned: when O(state=present)
  type: str
  sample: "3F:A1:...:9C"
cluster_status:
  description: Status of the cluster when it was read.
  returned: when O(state=present)
  type: str
  sample: RUNNING
token_refreshed:
  description:
    - Whether the file held an access token for our user that was replaced by a new one (in
      check mode, would be). Not a change on its own.
  returned: when O(state=present)
  type: bool
  sample: true
token_expiry:
  description: When the access token written expires (UTC), null when unknown or in plugin mode.
  returned: when O(state=present)
  type: str
  sample: "2026-05-04T13:05:22Z"
file_removed:
  description: Whether the file was removed because nothing else was left in it.
  returned: when O(state=absent)
  type: bool
  sample: false
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.llmd.gke.plugins.module_utils.gcp import (
    GcpApiError,
    GcpClient,
    GcpTimeout,
)
from ansible_collections.llmd.gke.plugins.module_utils.gcp_auth import (
    GCP_AUTH_ARG_SPEC,
    GCP_AUTH_MUTUALLY_EXCLUSIVE,
    GcpAuthError,
)
from ansible_collections.llmd.gke.plugins.module_utils.gke_kubeconfig import (
    HAS_YAML,
    KUBECONFIG_ARG_SPEC,
    YAML_IMPORT_ERROR,
    KubeconfigError,
    KubeconfigRunner,
)
from ansible_collections.llmd.gke.plugins.module_utils.gke_ops import fail_gcp


def main():
    module = AnsibleModule(
        argument_spec=dict(**GCP_AUTH_ARG_SPEC, **KUBECONFIG_ARG_SPEC),
        mutually_exclusive=GCP_AUTH_MUTUALLY_EXCLUSIVE,
        supports_check_mode=True,
    )
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"), exception=str(YAML_IMPORT_ERROR))
    runner = KubeconfigRunner(
        module.params,
        lambda: GcpClient(module.params, module),
        check_mode=module.check_mode,
        warn=module.warn,
        protect=module.no_log_values.add,
    )
    try:
        result = runner.run()
    except KubeconfigError as exc:
        module.fail_json(msg=str(exc), **exc.details)
    except (GcpApiError, GcpTimeout) as exc:
        fail_gcp(module, exc)
    except GcpAuthError as exc:
        module.fail_json(msg=str(exc))
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
