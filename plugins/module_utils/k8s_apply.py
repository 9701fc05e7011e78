# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Server-side apply of a list of objects in one module run (the k8s_apply module).

What ``kubernetes.core.k8s`` does with ``apply: true`` and ``server_side_apply``, for many
objects, on ``k8s_wait``'s raw JSON client: for each object a GET of what exists and a PATCH
``application/apply-patch+yaml`` with the field manager (and ``force``; ``dryRun=All`` in check
mode). An object is changed when the answer differs from what existed other than in
``metadata.generation`` and ``metadata.resourceVersion`` alone (kubernetes.core's
``diff_objects``). The plural and scope of each kind come from the discovery document of its
group version (asked once per group version, again when a kind is missing: a CRD applied earlier
in the same list). Then, optionally, a wait for a status condition on each object (``k8s_ready``),
skipped for the objects whose apply answer already has it.

Secrets are never put in a diff or a result with their data.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass

from ansible.module_utils.common.dict_transformations import recursive_diff

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - ansible-core requires PyYAML
    HAS_YAML = False

from ansible_collections.llmd.gke.plugins.module_utils.k8s_ready import (
    GateResult,
    Target,
    judge,
    wait_ready,
)
from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import (
    Discovery,
    KubeClient,
    KubeError,
    Resource,
)

IGNORED_ONLY = frozenset({"generation", "resourceVersion"})
SECRET_FIELDS = ("data", "stringData")


class ApplyError(ValueError):
    """An object cannot be applied as given (the message names it)."""


@dataclass
class Applied:
    api_version: str
    kind: str
    name: str
    namespace: str | None
    method: str  # create, update or unchanged
    changed: bool
    before: dict | None
    after: dict
    plural: str | None = None

    def as_dict(self) -> dict:
        return {
            "api_version": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "method": self.method,
            "changed": self.changed,
        }

    def describe(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


def load_manifests(text: str, where: str) -> list:
    """The mappings of a multi-document YAML text, as JSON values (dates as ISO text)."""
    loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    try:
        docs = [d for d in yaml.load_all(text, Loader=loader) if isinstance(d, dict)]  # noqa: S506
    except yaml.YAMLError as exc:
        raise ApplyError(f"{where} is not YAML: {exc}") from None
    return json.loads(json.dumps(docs, default=_iso))


def _iso(value):
    """YAML timestamps as the API takes them (ISO 8601)."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise ApplyError(f"{type(value).__name__} is not a JSON value")


def select(docs: list, only_kinds: list, skip_names: list) -> list:
    """The documents of the kinds in only_kinds (all when empty), without those named in
    skip_names."""
    kinds, skipped = set(only_kinds or ()), set(skip_names or ())
    return [
        d
        for d in docs
        if (not kinds or d.get("kind") in kinds)
        and (d.get("metadata") or {}).get("name") not in skipped
    ]


def gather(src: list, manifests: str | None, only_kinds: list, skip_names: list, definitions: list):
    """The objects to apply: the selected documents of the files src, then of the text
    manifests, then definitions."""
    docs = []
    for path in src or ():
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise ApplyError(f"cannot read {path}: {exc.strerror}") from None
        docs.extend(load_manifests(text, path))
    if manifests:
        docs.extend(load_manifests(manifests, "manifests"))
    return select(docs, only_kinds, skip_names) + list(definitions or ())


def same(before: dict | None, after: dict) -> bool:
    """kubernetes.core's diff_objects: equal, or only metadata.generation/resourceVersion differ."""
    if before is None:
        return False
    diff = recursive_diff(before, after)
    if not diff:
        return True
    left, right = diff
    if list(left) == ["metadata"] and list(right) == ["metadata"]:
        return set(left["metadata"]) <= IGNORED_ONLY and set(right["metadata"]) <= IGNORED_ONLY
    return False


def hide_secret(obj: dict | None) -> dict | None:
    if obj is None or obj.get("kind") != "Secret":
        return obj
    out = dict(obj)
    for key in SECRET_FIELDS:
        if key in out:
            out[key] = {k: "<hidden>" for k in out[key] or {}}
    meta = dict(out.get("metadata") or {})
    meta.pop("managedFields", None)
    meta.pop("annotations", None)
    out["metadata"] = meta
    return out


def diff_of(applied: Applied) -> dict:
    """A --diff entry of the parts that changed (kubernetes.core shows the same)."""
    before, after = hide_secret(applied.before), hide_secret(applied.after)
    header = applied.describe()
    if before is None:
        return {"before_header": header, "after_header": header, "before": {}, "after": after}
    left, right = recursive_diff(before, after) or ({}, {})
    return {"before_header": header, "after_header": header, "before": left, "after": right}


class Applier:
    def __init__(
        self,
        client: KubeClient,
        field_manager: str,
        *,
        force: bool = True,
        check_mode: bool = False,
        default_namespace: str | None = None,
    ) -> None:
        self.client = client
        self.field_manager = field_manager
        self.force = force
        self.check_mode = check_mode
        self.default_namespace = default_namespace
        self._discovery = Discovery(client)

    def _kind_info(self, api_version: str, kind: str, fresh: bool = False) -> dict | None:
        for entry in self._discovery.resources(api_version, fresh) or ():
            if entry.get("kind") == kind and "/" not in entry.get("name", "/"):
                return entry
        return None

    def resource_of(self, obj: dict, index: int) -> tuple[Resource, str, str | None]:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        if not api_version or not kind or not name:
            raise ApplyError(
                f"definitions[{index}] needs apiVersion, kind and metadata.name "
                f"(got {api_version!r}, {kind!r}, {name!r})"
            )
        info = self._kind_info(api_version, kind) or self._kind_info(api_version, kind, True)
        if info is None:
            group = api_version.rpartition("/")[0]
            raise ApplyError(
                f"{kind} {name} ({api_version}): the API server does not serve this kind"
                + (" (is its CustomResourceDefinition installed and Established?)" if group else "")
            )
        namespace = None
        if info.get("namespaced"):
            namespace = meta.get("namespace") or self.default_namespace
            if not namespace:
                raise ApplyError(
                    f"{kind} {name} ({api_version}) is namespaced: give metadata.namespace "
                    "(or the module's namespace option)"
                )
        return Resource(api_version, info["name"], namespace), name, namespace

    def apply(self, obj: dict, index: int) -> Applied:
        resource, name, namespace = self.resource_of(obj, index)
        body = copy.deepcopy(obj)
        if namespace:
            body.setdefault("metadata", {})["namespace"] = namespace
        before = self.client.get(resource, name)
        after = self.client.apply(
            resource, body, self.field_manager, force=self.force, dry_run=self.check_mode
        )
        unchanged = same(before, after)
        method = "create" if before is None else ("unchanged" if unchanged else "update")
        return Applied(
            obj["apiVersion"],
            obj["kind"],
            name,
            namespace,
            method,
            not unchanged,
            before,
            after,
            resource.plural,
        )


def apply_all(applier: Applier, definitions: list) -> list[Applied]:
    """Apply each definition in order; KubeError names the object."""
    out = []
    for index, obj in enumerate(definitions):
        if not isinstance(obj, dict):
            raise ApplyError(f"definitions[{index}] is not a mapping")
        try:
            out.append(applier.apply(obj, index))
        except KubeError as exc:
            meta = obj.get("metadata") or {}
            where = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
            what = f"{obj.get('kind')} {where}{meta.get('name')}"
            message = exc.message
            if obj.get("kind") == "Secret":  # the API's message may quote the data
                message = f"{exc.status or 'no answer'} {exc.reason or ''}".rstrip()
            raise KubeError(
                f"cannot apply {what}: {message}",
                status=exc.status,
                reason=exc.reason,
                hint=exc.hint,
            ) from None
    return out


def wait_applied(
    client: KubeClient, applied: list[Applied], condition: str, status: str, timeout: float
) -> GateResult:
    """Wait for condition=status on each applied object; those whose apply answer already has it
    are not read again."""
    targets, verdicts = [], {}
    for item in applied:
        target = Target(
            api_version=item.api_version,
            kind=item.kind,
            name=item.name,
            namespace=item.namespace,
            condition=condition,
            status=status,
            plural=item.plural,
        )
        verdict = judge(target, item.after)
        if verdict.ready:
            verdicts[id(item)] = verdict
        else:
            targets.append((item, target))
    waited = wait_ready(client, [t for _i, t in targets], timeout) if targets else GateResult()
    for index, (item, _target) in enumerate(targets):
        verdicts[id(item)] = waited.verdicts[index]
    result = GateResult(elapsed=waited.elapsed)
    result.verdicts = [verdicts[id(item)] for item in applied]
    return result
