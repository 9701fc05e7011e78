#!/usr/bin/python
# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: support_bundle
short_description: Write a redacted support bundle of an LLMInferenceService and its platform
version_added: 0.1.0
description:
  - Reads (GET and LIST only) the LLMInferenceService O(name) in O(namespace), the objects KServe
    created for it and its conditions; the pods, Deployments, Services and Events of O(namespace)
    and of every namespace in O(namespaces); the last O(log_lines) lines of every container's log
    (and of the previous container of one that restarted); and the versions of every component
    (API server, kubelets, the images of every Deployment, CRD versions, kubectl and helm, Helm
    releases).
  - Writes them as JSON and text files into one tar.gz archive under O(dest) and returns its path
    and a summary of what looks wrong, with the diagnosis rules of M(llmd.gke.llmisvc_wait)
    (image pull failures, crash loops with a Hugging Face 401 or 403, OOMKilled, missing Secrets,
    Unschedulable pods, terminal conditions) plus Deployments not Available, pods not Ready or
    restarting, and Warning Events.
  - Never includes the data of a Secret (only its name, type and key names). Removes from
    everything it writes the values of O(redact_values), every value held by a Secret of the
    collected namespaces (as stored and decoded, and each registry credential of a
    C(dockerconfigjson)), Hugging Face tokens (C(hf_...)), Bearer tokens and C(*TOKEN*=value)
    pairs. Before writing, it checks that no such value is left and fails rather than write one.
author:
  - llmd.gke maintainers (@llmd)
extends_documentation_fragment:
  - llmd.gke.attributes
  - llmd.gke.kubeconfig
attributes:
  check_mode:
    support: full
    details:
      - Reads the cluster and returns the summary; writes no archive (RV(written) is false).
  diff_mode:
    support: none
options:
  name:
    description:
      - Name of the LLMInferenceService.
    type: str
    required: true
  namespace:
    description:
      - Namespace of the LLMInferenceService (the model namespace).
    type: str
    default: llm-d-inference-scheduling
  namespaces:
    description:
      - Other namespaces whose pods, Deployments, Services, Events and logs go into the bundle
        (the gateway's, KServe's, the operators').
    type: list
    elements: str
    default: []
  dest:
    description:
      - Directory the archive is written to (created with mode 0700 when missing).
    type: path
    required: true
  log_lines:
    description:
      - Lines of each container's log. C(0) reads no log.
    type: int
    default: 200
  redact_values:
    description:
      - Secret values removed from everything written (for example the Hugging Face token and the
        registry auth config as JSON text), in addition to what the Secrets of the namespaces
        hold and what looks like a token.
    type: list
    elements: str
    default: []
  pull_secret:
    description:
      - Name of the image pull secret the hints name.
    type: str
    default: redhat-pull-secret
  hf_secret:
    description:
      - Name of the Secret holding the Hugging Face token, named by the hints.
    type: str
    default: hf-token
  kubectl_path:
    description:
      - kubectl whose client version is recorded; found on C(PATH) when not set.
    type: path
  helm_path:
    description:
      - helm whose version and releases (C(helm list -A)) are recorded; found on C(PATH) when not
        set. Skipped when not found.
    type: path
notes:
  - Archive layout, under one top directory C(llmd-support-NAMESPACE-NAME-TIME) -
    C(summary.txt), C(summary.json), C(llmisvc.json) (object, conditions, ready),
    C(children.json), C(versions.json), and per namespace C(pods/NS.json),
    C(deployments/NS.json), C(services/NS.json), C(events/NS.json), C(secrets/NS.json) (names,
    types and key names only) and C(logs/NS/POD/CONTAINER.log) (C(.previous.log) for the
    container before the last restart).
seealso:
  - module: llmd.gke.llmisvc_wait
"""

EXAMPLES = r"""
- name: Support bundle of the model and its platform
  llmd.gke.support_bundle:
    kubeconfig: "{{ llmd_kubeconfig }}"
    name: qwen2-3b-pattern1
    namespace: llm-d-inference-scheduling
    namespaces: [opendatahub, istio-system, cert-manager]
    dest: ./results
    redact_values:
      - "{{ llmd_hf_token }}"
  register: bundle

- name: Say where it is and what looks wrong
  ansible.builtin.debug:
    msg: "{{ bundle.path }}: {{ bundle.summary.problems | map(attribute='what') }}"
"""

RETURN = r"""
path:
  description: The archive (written only when RV(written) is true).
  returned: always
  type: str
  sample: results/llmd-support-llm-d-inference-scheduling-qwen2-3b-pattern1-20261128T010000Z.tar.gz
written:
  description: Whether the archive was written (false in check mode).
  returned: always
  type: bool
files:
  description: Paths of the files in the archive, below its top directory.
  returned: always
  type: list
  elements: str
  sample: [summary.txt, llmisvc.json, logs/opendatahub/kserve-controller-manager-abc/manager.log]
summary:
  description:
    - What looks wrong - C(healthy), C(ready), C(conditions), C(diagnosis) (as
      M(llmd.gke.llmisvc_wait) returns it, or null) and C(problems), a list of C(where), C(what)
      and C(hint).
  returned: always
  type: dict
summary_text:
  description: The summary as the lines of C(summary.txt).
  returned: always
  type: list
  elements: str
"""

import json
import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import (
    KUBE_ARG_SPEC,
    KubeError,
    module_client,
)
from ansible_collections.llmd.gke.plugins.module_utils.support_bundle import (
    Collector,
    archive_name,
    leaks,
    write_archive,
)


def tool_versions(module, kubeconfig):
    """kubectl and helm client versions and the Helm releases, as far as they can be read."""
    out = {}
    kubectl = module.params["kubectl_path"] or shutil.which("kubectl")
    if kubectl:
        rc, stdout, stderr = module.run_command([kubectl, "version", "--client", "-o", "json"])
        out["kubectl"] = _json_or_text(stdout) if rc == 0 else f"error: {stderr.strip()[:200]}"
    helm = module.params["helm_path"] or shutil.which("helm")
    if helm:
        rc, stdout, stderr = module.run_command([helm, "version", "--short"])
        out["helm"] = stdout.strip() if rc == 0 else f"error: {stderr.strip()[:200]}"
        argv = [helm, "list", "--all-namespaces", "-o", "json"]
        if kubeconfig:
            argv += ["--kubeconfig", kubeconfig]
        if module.params.get("context"):
            argv += ["--kube-context", module.params["context"]]
        rc, stdout, stderr = module.run_command(argv)
        out["helm_releases"] = (
            _json_or_text(stdout) if rc == 0 else f"error: {stderr.strip()[:200]}"
        )
    return out


def _json_or_text(text):
    try:
        return json.loads(text)
    except ValueError:
        return text.strip()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **KUBE_ARG_SPEC,
            name=dict(type="str", required=True),
            namespace=dict(type="str", default="llm-d-inference-scheduling"),
            namespaces=dict(type="list", elements="str", default=[]),
            dest=dict(type="path", required=True),
            log_lines=dict(type="int", default=200),
            redact_values=dict(type="list", elements="str", default=[], no_log=True),
            pull_secret=dict(type="str", default="redhat-pull-secret", no_log=False),
            hf_secret=dict(type="str", default="hf-token", no_log=False),
            kubectl_path=dict(type="path"),
            helm_path=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["log_lines"] < 0:
        module.fail_json(msg=f"log_lines must be 0 or more, got {params['log_lines']}")
    for option in ("name", "namespace"):
        if not params[option]:
            module.fail_json(msg=f"{option} must not be empty")
    client = module_client(module)
    collector = Collector(
        client,
        params["name"],
        params["namespace"],
        params["namespaces"],
        log_lines=params["log_lines"],
        redact_values=params["redact_values"],
        pull_secret=params["pull_secret"],
        hf_secret=params["hf_secret"],
        tool_versions=lambda: tool_versions(module, params["kubeconfig"]),
    )
    try:
        files, summary, warnings = collector.collect()
    except KubeError as exc:
        module.fail_json(msg=f"cannot collect the support bundle: {exc.message}", hint=exc.hint)
    leaked = leaks(files, collector.values)
    if leaked:  # never expected: redaction ran over every file
        module.fail_json(
            msg="a secret value would remain in " + ", ".join(sorted(leaked)) + "; nothing written",
            hint="Report this as a bug of llmd.gke.support_bundle",
        )
    for warning in warnings:
        module.warn(warning)
    root = archive_name(params["name"], params["namespace"], collector.wall())
    path = f"{params['dest'].rstrip('/')}/{root}.tar.gz"
    written = False
    if not module.check_mode:
        try:
            path = write_archive(files, params["dest"], root)
        except OSError as exc:
            module.fail_json(
                msg=f"cannot write the archive into {params['dest']}: {exc}",
                hint="Choose a writable directory in dest",
            )
        written = True
    text = files["summary.txt"].decode()
    module.exit_json(
        changed=written,
        path=path,
        written=written,
        files=sorted(files),
        summary=summary,
        summary_text=text.splitlines(),
    )


if __name__ == "__main__":
    main()
