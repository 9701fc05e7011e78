# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A registry pull secret in several namespaces, with the namespaces, in one module run.

``ensure_pull_secret`` creates each namespace that is missing (created, not applied: Helm and
other controllers label namespaces, a server-side apply of a bare Namespace would fight over
nothing), then server-side applies the Secret (type ``kubernetes.io/dockerconfigjson``) in each
namespace, as ``kubernetes.core.k8s`` with ``apply: true`` and ``server_side_apply`` does it:
PATCH ``application/apply-patch+yaml`` with a field manager and ``force``. A Secret counts as
changed when it is new or when its type, data, labels or annotations differ after the apply.

Check mode sends the same requests with ``dryRun=All``; a Secret in a namespace that does not
exist yet cannot be dry-run and counts as a change.

No message built here holds the Secret's content: an API error on the Secret is reported with
its status and reason only (the API server's validation messages may quote the value).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json

from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import (
    KubeClient,
    KubeError,
    Resource,
)

SECRET_TYPE = "kubernetes.io/dockerconfigjson"
NAMESPACES = Resource("v1", "namespaces")


def secret_body(name: str, namespace: str, data: str, labels: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": SECRET_TYPE,
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "data": {".dockerconfigjson": data},
    }


def _content(obj: dict | None) -> tuple:
    if obj is None:
        return ()
    meta = obj.get("metadata") or {}
    return (
        obj.get("type"),
        obj.get("data") or {},
        meta.get("labels") or {},
        meta.get("annotations") or {},
    )


def _version(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('uid') or ''}/{meta.get('resourceVersion') or ''}"


def secret_forms(data: str) -> set:
    """What of the Secret's content could show in a message: the base64 data, the JSON it
    decodes to, and each auth entry with its decoded user:password."""
    forms = {data}
    try:
        text = base64.b64decode(data, validate=True).decode("utf-8")
        forms.add(text)
        for entry in (json.loads(text).get("auths") or {}).values():
            for key in ("auth", "password", "identitytoken"):
                value = (entry or {}).get(key)
                if isinstance(value, str) and value:
                    forms.add(value)
                    if key == "auth":
                        with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                            forms.add(base64.b64decode(value).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError, AttributeError):
        pass
    return {form for form in forms if len(form) >= 4}


def ensure_pull_secret(
    client: KubeClient,
    *,
    name: str,
    namespaces: list,
    data: str,
    labels: dict,
    field_manager: str,
    check_mode: bool = False,
) -> dict:
    """Namespaces and the Secret in each; returns changed, new_namespaces, changed_namespaces
    (Secrets new or different, and in check mode those of new namespaces), versions
    (namespace -> uid/resourceVersion of each Secret applied) and the diff of the namespaces."""
    existing, new = [], []
    for ns in namespaces:
        if client.get(NAMESPACES, ns) is None:
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            client.create(NAMESPACES, body, dry_run=check_mode)
            new.append(ns)
        else:
            existing.append(ns)
    changed, versions = [], {}
    for ns in namespaces:
        if check_mode and ns in new:
            changed.append(ns)
            continue
        resource = Resource("v1", "secrets", ns)
        try:
            before = client.get(resource, name)
            after = client.apply(
                resource,
                secret_body(name, ns, data, labels),
                field_manager,
                force=True,
                dry_run=check_mode,
            )
        except KubeError as exc:
            raise KubeError(
                f"cannot apply Secret {name} in namespace {ns}: "
                f"{exc.status or 'no answer'} {exc.reason or ''}".rstrip(),
                status=exc.status,
                reason=exc.reason,
                hint=exc.hint,
            ) from None
        if _content(before) != _content(after):
            changed.append(ns)
        versions[ns] = _version(after)
    return {
        "changed": bool(new or changed),
        "new_namespaces": new,
        "changed_namespaces": changed,
        "versions": versions,
        "diff": {
            "before": {"namespaces": sorted(existing)},
            "after": {"namespaces": sorted(existing + new)},
        },
    }
