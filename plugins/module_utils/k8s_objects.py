# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Several Kubernetes reads in one module run (the k8s_objects_info module).

Each ``Query`` names a resource type (apiVersion, kind, plural) and either one object (name) or
a list (namespace, label and field selectors). ``read_all`` answers them in order with the
``KubeClient`` of ``k8s_wait`` (raw JSON, no discovery round trip), as ``kubernetes.core.k8s_info``
shapes its answer: ``resources`` (a list, empty when nothing matched) and ``api_found`` (whether
the API serves the kind). Discovery is asked only when a read answers 404, to tell an absent
object from a kind the API does not serve (its CRD absent or not yet Established).

``served_kinds`` answers which kinds each given group version serves (``/api/v1`` or
``/apis/<group>/<version>``): what ``kubernetes.core.k8s_cluster_info`` returns in ``apis``, for
the group versions a role needs instead of all of them.

Secrets are read redacted: ``data`` keeps only the keys the query names in ``secret_keys``,
``stringData`` and the ``kubectl.kubernetes.io/last-applied-configuration`` annotation (which
may hold the data) are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.llmd.gke.plugins.module_utils.k8s_ready import plural_of
from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import (
    Deadline,
    Discovery,
    KubeClient,
    KubeError,
    Resource,
    WaitTimeout,
    wait_for_object,
)

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


class QueryError(ValueError):
    """A query is malformed (the message names it)."""


@dataclass(frozen=True)
class Query:
    api_version: str
    kind: str
    name: str | None = None
    namespace: str | None = None
    label_selector: str | None = None
    field_selector: str | None = None
    plural: str | None = None
    wait: bool = False
    secret_keys: tuple = ()

    @classmethod
    def from_dict(cls, item: dict, index: int) -> Query:
        where = f"objects[{index}]"
        api_version = (item.get("api_version") or "").strip()
        kind = (item.get("kind") or "").strip()
        if not api_version or not kind:
            raise QueryError(f"{where}: api_version and kind are required")
        if api_version.count("/") > 1:
            raise QueryError(f"{where}: api_version {api_version!r} is not group/version or v1")
        name = item.get("name") or None
        labels = [s for s in item.get("label_selectors") or [] if s]
        fields = [s for s in item.get("field_selectors") or [] if s]
        if name and (labels or fields):
            raise QueryError(f"{where}: give a name or selectors, not both")
        if item.get("wait") and not name:
            raise QueryError(f"{where}: wait needs the name of the object to wait for")
        return cls(
            api_version=api_version,
            kind=kind,
            name=name,
            namespace=item.get("namespace") or None,
            label_selector=",".join(labels) or None,
            field_selector=",".join(fields) or None,
            plural=item.get("plural") or None,
            wait=bool(item.get("wait")),
            secret_keys=tuple(item.get("secret_keys") or ()),
        )

    @property
    def resource(self) -> Resource:
        return Resource(self.api_version, self.plural or plural_of(self.kind), self.namespace)

    def crd_name(self) -> str:
        """The CRD that would serve the kind (core and built-in kinds: resource.group)."""
        group = self.api_version.rpartition("/")[0]
        plural = self.plural or plural_of(self.kind)
        return f"{plural}.{group}" if group else plural

    def describe(self) -> str:
        what = f"{self.kind} {self.name}" if self.name else f"{self.kind} list"
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{what} ({self.api_version}){where}"


def redact_secret(obj: dict, keep: tuple) -> dict:
    """A copy of a Secret with only the data keys in keep, without stringData and the
    last-applied annotation; other objects unchanged."""
    if obj.get("kind", "Secret") != "Secret":
        return obj
    out = dict(obj)
    data = out.get("data") or {}
    out["data"] = {k: v for k, v in data.items() if k in keep}
    out.pop("stringData", None)
    meta = dict(out.get("metadata") or {})
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    if "annotations" in meta:
        meta["annotations"] = annotations
    meta.pop("managedFields", None)
    out["metadata"] = meta
    return out


class Reader:
    """Answers queries with one client; discovery answers are kept for the run."""

    def __init__(self, client: KubeClient, wait_timeout: float = 0.0) -> None:
        self.client = client
        self.wait_timeout = wait_timeout
        self._discovery = Discovery(client)

    def resources_of(self, api_version: str) -> list | None:
        """The APIResourceList's resources of a group version, or None when not served."""
        return self._discovery.resources(api_version)

    def serves(self, query: Query) -> bool:
        plural = query.plural or plural_of(query.kind)
        resources = self.resources_of(query.api_version)
        return resources is not None and any(r.get("name") == plural for r in resources)

    def served_kinds(self, api_versions: list) -> dict:
        """{group version: sorted kinds it serves ([] when it serves none)}."""
        out = {}
        for api_version in api_versions:
            resources = self.resources_of(api_version) or []
            out[api_version] = sorted(
                {r["kind"] for r in resources if "/" not in r.get("name", "/") and r.get("kind")}
            )
        return out

    def read(self, query: Query) -> dict:
        result = {
            "api_version": query.api_version,
            "kind": query.kind,
            "name": query.name,
            "namespace": query.namespace,
            "plural": query.plural or plural_of(query.kind),
            "api_found": True,
            "resources": [],
        }
        try:
            if query.name and query.wait:
                obj = self._wait(query)
                items = [obj] if obj is not None else []
                result["waited"] = True
                result["timed_out"] = obj is None
            elif query.name:
                obj = self.client.get(query.resource, query.name)
                items = [obj] if obj is not None else []
            else:
                answer = self.client.list(
                    query.resource, query.label_selector, query.field_selector
                )
                items = answer.get("items") or []
                for item in items:  # a List's items carry no kind/apiVersion
                    item.setdefault("kind", query.kind)
                    item.setdefault("apiVersion", query.api_version)
        except KubeError as exc:
            if exc.status != 404:
                raise
            items = []
        if not items and not self.serves(query):
            result["api_found"] = False
            return result
        if query.kind == "Secret" and query.api_version == "v1":
            items = [redact_secret(item, query.secret_keys) for item in items]
        result["resources"] = items
        return result

    def _wait(self, query: Query) -> dict | None:
        deadline = Deadline(self.wait_timeout)
        try:
            _found, obj = wait_for_object(
                self.client, query.resource, query.name, lambda o: o is not None, deadline
            )
        except WaitTimeout:
            return None
        return obj


def not_served_message(results: list) -> str:
    """The failure of fail_on_not_served: each kind not served and the CRD that would serve it."""
    missing = [r for r in results if not r["api_found"]]
    parts = []
    for r in missing:
        query = Query(r["api_version"], r["kind"], plural=r.get("plural"))
        if "/" in query.api_version and "." in query.api_version.partition("/")[0]:
            crd = query.crd_name()
            why = f"is the CRD {crd} installed and Established? (kubectl get crd {crd})"
        else:
            why = f"the API server has no resource {query.plural or plural_of(query.kind)}"
        parts.append(f"{r['kind']} ({r['api_version']}) is not served: {why}")
    return "; ".join(parts)
