# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Kubeconfig options of the modules that read the cluster through k8s_wait (KUBE_ARG_SPEC)."""

    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path of the kubeconfig file.
      - Defaults to E(K8S_AUTH_KUBECONFIG), else E(KUBECONFIG), else C(~/.kube/config), else the
        in-cluster service account.
    type: path
  context:
    description:
      - Kubeconfig context to use. Defaults to E(K8S_AUTH_CONTEXT), else the current context.
    type: str
requirements:
  - kubernetes (the Python client) on the control node
"""
