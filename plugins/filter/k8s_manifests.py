# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: k8s_manifests
short_description: The Kubernetes objects of a YAML text of one or more documents
version_added: 0.1.0
author:
  - llmd.gke maintainers (@llmd)
description:
  - Parses a YAML stream (the text of a manifest file, the output of C(kubectl kustomize)) and
    returns its documents that are mappings, in order; empty documents and anything else are
    left out.
  - The values are plain JSON values, as the Kubernetes API server reads YAML (it turns it into
    JSON), so a timestamp written without quotes stays a string.
  - Unlike the C(ansible.builtin.from_yaml_all) filter, the values carry no origin tag, so the
    megabytes of a CRD manifest are parsed with libyaml and then copied, templated and passed to
    modules many times faster.
options:
  _input:
    description: The YAML text.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Read the CRDs of a release manifest
  ansible.builtin.set_fact:
    crds: >-
      {{ lookup('ansible.builtin.file', 'standard-install.yaml') | llmd.gke.k8s_manifests
      | selectattr('kind', 'eq', 'CustomResourceDefinition') | list }}
"""

RETURN = r"""
_value:
  description: The documents that are mappings.
  type: list
  elements: dict
"""

import datetime
import json

from ansible.errors import AnsibleFilterError

try:
    import yaml
except ImportError:  # pragma: no cover - ansible-core requires PyYAML
    yaml = None


def _plain(value):
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def k8s_manifests(text):
    if not isinstance(text, str):
        raise AnsibleFilterError(f"k8s_manifests expects the YAML text, got {type(text).__name__}")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        docs = [d for d in yaml.load_all(str(text), Loader=loader) if isinstance(d, dict)]  # noqa: S506
    except yaml.YAMLError as exc:
        raise AnsibleFilterError(f"k8s_manifests: the text is not YAML: {exc}") from exc
    try:
        return json.loads(json.dumps(docs, default=_plain))
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"k8s_manifests: {exc}") from exc


class FilterModule:
    def filters(self):
        return {"k8s_manifests": k8s_manifests}
