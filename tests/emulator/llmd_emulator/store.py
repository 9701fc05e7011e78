"""In-memory Kubernetes object store: the single source of truth of the emulator.

All methods are synchronous and run on the event loop; getters return deep copies. Writers get
API-server semantics: server-set metadata, resourceVersion, generation, status subresources,
finalizers, owner-reference garbage collection, namespace termination and CRD registration.
"""

from __future__ import annotations

import copy
import itertools
import logging
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from .k8s.defaults import apply_defaults, apply_schema_defaults
from .k8s.kinds import BUILTIN_KINDS, VIRTUAL_KINDS, KindInfo, has_generation, kinds_from_crd
from .k8s.quota import admit_pod, check_quota_spec
from .k8s.selectors import field_predicate, label_predicate

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]  # (group, kind)
Subscriber = Callable[[str, Obj], None]

HISTORY_LIMIT = 20000
CRD_GROUP = "apiextensions.k8s.io"


class StoreError(Exception):
    """An API error; code and reason map to a Kubernetes Status body."""

    code = 500
    reason = "InternalError"

    def __init__(self, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = dict(details or {})


class NotFound(StoreError):
    code, reason = 404, "NotFound"


class UnknownKind(NotFound):
    """The apiVersion/kind is neither builtin nor served by an established CRD."""


class Conflict(StoreError):
    code, reason = 409, "Conflict"


class AlreadyExists(Conflict):
    reason = "AlreadyExists"


class Invalid(StoreError):
    code, reason = 422, "Invalid"


class Forbidden(StoreError):
    code, reason = 403, "Forbidden"


class BadRequest(StoreError):
    code, reason = 400, "BadRequest"


class Unauthorized(StoreError):
    code, reason = 401, "Unauthorized"


class MethodNotAllowed(StoreError):
    code, reason = 405, "MethodNotAllowed"


class UnsupportedMediaType(StoreError):
    code, reason = 415, "UnsupportedMediaType"


class Gone(StoreError):
    code, reason = 410, "Expired"


def now_iso() -> str:
    """Current UTC time in the API's RFC 3339 seconds format."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def split_api_version(api_version: str) -> tuple[str, str]:
    """("apps", "v1") for "apps/v1", ("", "v1") for "v1"."""
    group, _sep, version = api_version.rpartition("/")
    return group, version


def _meta(obj: Obj) -> dict[str, Any]:
    return obj.setdefault("metadata", {})


def _without(obj: Obj, *keys: str) -> Obj:
    return {k: v for k, v in obj.items() if k not in keys}


class Store:
    """Objects by (group, kind) then (namespace, name); a global resourceVersion counter."""

    def __init__(self) -> None:
        self._kinds: dict[Key, KindInfo] = {}
        self._objects: dict[Key, dict[tuple[str, str], Obj]] = {}
        self._rv = itertools.count(1)
        self._last_rv = 0
        self._history: deque[tuple[int, str, Obj]] = deque(maxlen=HISTORY_LIMIT)
        self._subscribers: list[Subscriber] = []
        self._logs: dict[tuple[str, str, str], list[str]] = {}
        # the log of each container's previous instance (the kubelet keeps one)
        self._previous_logs: dict[tuple[str, str, str], list[str]] = {}
        # lines tests inject (admin POST /logs): every instance of the container prints them
        self._injected_logs: dict[tuple[str, str, str], list[str]] = {}
        for info in BUILTIN_KINDS:
            self._kinds[(info.group, info.kind)] = info
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    # ----------------------------------------------------------------- kinds
    def kinds(self) -> list[KindInfo]:
        """Every kind served now (builtins and established CRDs)."""
        return list(self._kinds.values())

    def kind_info(self, api_version: str, kind: str) -> KindInfo | None:
        group, version = split_api_version(api_version)
        info = self._kinds.get((group, kind))
        return info if info and version in info.versions else None

    def resolve(self, group: str, version: str, plural: str) -> KindInfo | None:
        """The kind served at /apis/<group>/<version>/<plural>."""
        for info in self._kinds.values():
            if info.group == group and info.plural == plural and version in info.versions:
                return info
        return None

    def is_known(self, api_version: str, kind: str) -> bool:
        return self.kind_info(api_version, kind) is not None

    def _info(self, obj_or_api_version: Obj | str, kind: str | None = None) -> KindInfo:
        if isinstance(obj_or_api_version, dict):
            api_version = obj_or_api_version.get("apiVersion", "")
            kind = obj_or_api_version.get("kind", "")
        else:
            api_version = obj_or_api_version
        info = self.kind_info(api_version, kind or "")
        if info is None:
            raise UnknownKind(f'no matches for kind "{kind}" in version "{api_version}"')
        return info

    @property
    def resource_version(self) -> str:
        """The latest resourceVersion handed out."""
        return str(self._last_rv)

    # ------------------------------------------------------------- reading
    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        info = self.kind_info(api_version, kind)
        if info is None:
            return None
        obj = self._bucket(info).get((namespace or "" if info.namespaced else "", name))
        return self._out(obj, api_version) if obj else None

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | Mapping[str, Any] | None = None,
        field_selector: str | Mapping[str, str] | None = None,
    ) -> list[Obj]:
        """Objects of a kind, in one namespace or all, sorted by namespace and name."""
        info = self.kind_info(api_version, kind)
        if info is None:
            return []
        by_label, by_field = label_predicate(label_selector), field_predicate(field_selector)
        found = []
        for (ns, _name), obj in sorted(self._bucket(info).items()):
            if namespace and info.namespaced and ns != namespace:
                continue
            if by_label(obj) and by_field(obj):
                found.append(self._out(obj, api_version))
        return found

    def all_objects(self) -> list[Obj]:
        """Every stored object (for the admin /state dump)."""
        return [copy.deepcopy(o) for bucket in self._objects.values() for o in bucket.values()]

    def history_since(self, resource_version: int) -> list[tuple[int, str, Obj]]:
        """Committed events newer than resource_version; Gone when history no longer has them."""
        if self._history and resource_version < self._history[0][0] - 1:
            raise Gone(f"too old resource version: {resource_version} ({self._history[0][0]})")
        return [(rv, t, copy.deepcopy(o)) for rv, t, o in self._history if rv > resource_version]

    # ------------------------------------------------------------- writing
    def create(self, obj: Obj, *, dry_run: bool = False, manager: str | None = None) -> Obj:
        """Store a new object; server-set metadata; generateName; namespace must exist.

        manager: the field manager of an API client's create (an `Update` managedFields entry).
        """
        info = self._info(obj)
        obj = copy.deepcopy(obj)
        meta = _meta(obj)
        requested = meta.get("name") or meta.get("generateName") or ""
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = meta.get("name")
        if not name:
            raise Invalid(
                f"{info.kind} is invalid: metadata.name: Required value: name or generateName "
                "is required",
                {"causes": [{"field": "metadata.name", "reason": "FieldValueRequired"}]},
            )
        namespace = self._check_namespace(info, meta, creating=True)
        key = (namespace, name)
        if key in self._bucket(info):
            raise AlreadyExists(
                f'{info.plural}{"." + info.group if info.group else ""} "{name}" already exists',
                {"name": name, "group": info.group, "kind": info.plural},
            )
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_iso())
        if has_generation(info):
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        meta.pop("deletionTimestamp", None)
        apply_defaults(info.group, info.kind, obj, None)
        if not info.builtin:
            apply_schema_defaults(info.schemas, obj)
        if manager:
            from .k8s.apply import record_update  # apply imports the store

            record_update(None, obj, manager, info.builtin)
        if info.group == "" and info.kind == "Pod":
            self._admit_service_account(obj, namespace, requested)
            admit_pod(self, obj, namespace, requested)
        if info.group == "" and info.kind == "ResourceQuota":
            check_quota_spec(obj)
        if info.group == CRD_GROUP and info.kind == "CustomResourceDefinition":
            self._prepare_crd(obj)
        if dry_run:
            meta["resourceVersion"] = self.resource_version
            return self._out(obj, obj["apiVersion"])
        self._commit(info, key, obj, "ADDED")
        if info.group == "" and info.kind == "Namespace":
            self._create_default_service_account(name)
        return self._out(obj, obj["apiVersion"])

    def update(
        self,
        obj: Obj,
        *,
        check_version: bool = False,
        dry_run: bool = False,
        manager: str | None = None,
        binding: bool = False,
    ) -> Obj:
        """Replace an object; keeps status when the kind has a status subresource.

        A write that changes nothing returns the stored object (same resourceVersion). With
        check_version, a resourceVersion in obj that is not the stored one raises Conflict.
        """
        info, key, old = self._existing(obj, check_version)
        new = copy.deepcopy(obj)
        if info.has_status:
            new.pop("status", None)
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
        self._keep_server_metadata(new, old)
        apply_defaults(info.group, info.kind, new, old)
        if not info.builtin:
            apply_schema_defaults(info.schemas, new)
        if info.group == CRD_GROUP and info.kind == "CustomResourceDefinition":
            self._prepare_crd(new)
        if info.group == "" and info.kind == "ResourceQuota":
            check_quota_spec(new)
        if manager:
            from .k8s.apply import record_update  # apply imports the store

            record_update(old, new, manager, info.builtin)
        # binding (pods/binding sets spec.nodeName) is no update through the strategy
        if has_generation(info) and not binding and self._spec_changed(info, old, new):
            _meta(new)["generation"] = old["metadata"].get("generation", 1) + 1
        return self._write(info, key, old, new, dry_run)

    def update_status(self, obj: Obj, *, dry_run: bool = False) -> Obj:
        """Replace only .status of the stored object."""
        info, key, old = self._existing(obj, check_version=False)
        new = copy.deepcopy(old)
        if "status" in obj:
            new["status"] = copy.deepcopy(obj["status"])
        else:
            new.pop("status", None)
        if not info.builtin:
            apply_schema_defaults(info.schemas, new)
        return self._write(info, key, old, new, dry_run)

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str | None = None,
        dry_run: bool = False,
    ) -> Obj | None:
        """Delete (or mark terminating when finalizers remain); returns the object or None."""
        info = self._info(api_version, kind)
        key = (namespace or "" if info.namespaced else "", name)
        old = self._bucket(info).get(key)
        if old is None:
            return None
        if dry_run:
            return self._out(old, api_version)
        is_namespace = info.group == "" and info.kind == "Namespace"
        if old["metadata"].get("finalizers") or is_namespace:
            if not old["metadata"].get("deletionTimestamp"):
                new = copy.deepcopy(old)
                new["metadata"]["deletionTimestamp"] = now_iso()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                if is_namespace:
                    new.setdefault("status", {})["phase"] = "Terminating"
                self._write(info, key, old, new, False)
            if is_namespace:
                self._empty_namespace(name)
            current = self._bucket(info).get(key)
            if current is None:
                return self._out(old, api_version)
            if not current["metadata"].get("finalizers") and not is_namespace:
                self._remove(info, key, propagation)
            return self._out(current, api_version)
        self._remove(info, key, propagation)
        return self._out(old, api_version)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call callback(event_type, obj) after every commit; returns the unsubscribe function."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    # --------------------------------------------------------- logs/events
    def add_log(self, namespace: str, pod: str, container: str, line: str) -> None:
        self._logs.setdefault((namespace, pod, container), []).append(line.rstrip("\n"))

    def logs(
        self, namespace: str, pod: str, container: str, *, previous: bool = False
    ) -> list[str]:
        source = self._previous_logs if previous else self._logs
        return list(source.get((namespace, pod, container), ()))

    def inject_log(self, namespace: str, pod: str, container: str, line: str) -> None:
        """A test's line: in the current log and in the log of every later instance."""
        self._injected_logs.setdefault((namespace, pod, container), []).append(line.rstrip("\n"))
        self.add_log(namespace, pod, container, line)

    def restart_log(self, namespace: str, pod: str, container: str) -> None:
        """A new instance of the container starts: its log is new, the last one is previous."""
        key = (namespace, pod, container)
        self._previous_logs[key] = self._logs.pop(key, [])
        if key in self._injected_logs:
            self._logs[key] = list(self._injected_logs[key])

    def record_event(
        self,
        obj: Obj,
        reason: str,
        message: str,
        type: str = "Normal",
        component: str = "llmd-emulator",
    ) -> Obj | None:
        """Create a core/v1 Event about obj, or bump the count of an identical one."""
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        if self.get("v1", "Namespace", namespace) is None:
            return None
        involved = {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        involved = {k: v for k, v in involved.items() if v}
        stamp = now_iso()
        for event in self.list("v1", "Event", namespace):
            same_object = event.get("involvedObject", {}).get("uid") == meta.get("uid")
            if same_object and (event.get("reason"), event.get("message")) == (reason, message):
                event["count"] = event.get("count", 1) + 1
                event["lastTimestamp"] = stamp
                event["involvedObject"] = involved
                return self.update(event)
        return self.create(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": f"{meta.get('name', 'object')}.{uuid.uuid4().hex[:16]}",
                    "namespace": namespace,
                },
                "involvedObject": involved,
                "reason": reason,
                "message": message,
                "type": type,
                "count": 1,
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "source": {"component": component},
                "reportingComponent": component,
            }
        )

    # ------------------------------------------------------------- helpers
    def _bucket(self, info: KindInfo) -> dict[tuple[str, str], Obj]:
        return self._objects.setdefault((info.group, info.kind), {})

    @staticmethod
    def _out(obj: Obj, api_version: str) -> Obj:
        out = copy.deepcopy(obj)
        out["apiVersion"] = api_version
        return out

    def _check_namespace(self, info: KindInfo, meta: dict[str, Any], creating: bool) -> str:
        if not info.namespaced:
            meta.pop("namespace", None)
            return ""
        namespace = meta.setdefault("namespace", "default")
        ns = self._bucket(self._kinds[("", "Namespace")]).get(("", namespace))
        if ns is None:
            raise NotFound(
                f'namespaces "{namespace}" not found', {"name": namespace, "kind": "namespaces"}
            )
        if creating and ns["metadata"].get("deletionTimestamp"):
            raise Forbidden(
                f'{info.plural} "{meta.get("name")}" is forbidden: unable to create new content in '
                f"namespace {namespace} because it is being terminated"
            )
        return namespace

    def _existing(self, obj: Obj, check_version: bool) -> tuple[KindInfo, tuple[str, str], Obj]:
        info = self._info(obj)
        meta = obj.get("metadata") or {}
        namespace = (meta.get("namespace") or "default") if info.namespaced else ""
        key = (namespace, meta.get("name", ""))
        old = self._bucket(info).get(key)
        if old is None:
            raise NotFound(
                f'{info.plural}{"." + info.group if info.group else ""} "{key[1]}" not found',
                {"name": key[1], "group": info.group, "kind": info.plural},
            )
        wanted = meta.get("resourceVersion")
        if check_version and wanted and wanted != old["metadata"]["resourceVersion"]:
            raise Conflict(
                f'Operation cannot be fulfilled on {info.plural} "{key[1]}": the object has been '
                "modified; please apply your changes to the latest version and try again",
                {"name": key[1], "group": info.group, "kind": info.plural},
            )
        return info, key, old

    @staticmethod
    def _keep_server_metadata(new: Obj, old: Obj) -> None:
        meta, old_meta = _meta(new), old["metadata"]
        for field in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        if "generation" in old_meta:
            meta["generation"] = old_meta["generation"]
        else:
            meta.pop("generation", None)
        meta["namespace"] = old_meta.get("namespace")
        if meta["namespace"] is None:
            meta.pop("namespace")

    @staticmethod
    def _spec_changed(info: KindInfo, old: Obj, new: Obj) -> bool:
        ignored = ("metadata", "status") if info.has_status else ("metadata",)
        return _without(old, "apiVersion", *ignored) != _without(new, "apiVersion", *ignored)

    def _write(
        self, info: KindInfo, key: tuple[str, str], old: Obj, new: Obj, dry_run: bool
    ) -> Obj:
        _meta(new)["resourceVersion"] = old["metadata"]["resourceVersion"]
        new["apiVersion"] = old["apiVersion"] if "apiVersion" not in new else new["apiVersion"]
        if _without(new, "apiVersion") == _without(old, "apiVersion"):
            return self._out(old, new["apiVersion"])
        if dry_run:
            return self._out(new, new["apiVersion"])
        meta = new["metadata"]
        finalized = meta.get("deletionTimestamp") and not meta.get("finalizers")
        if finalized and (info.group, info.kind) != ("", "Namespace"):
            self._remove(info, key, None)
            return self._out(new, new["apiVersion"])
        self._commit(info, key, new, "MODIFIED")
        return self._out(new, new["apiVersion"])

    def _commit(self, info: KindInfo, key: tuple[str, str], obj: Obj, event: str) -> None:
        if info.kind in VIRTUAL_KINDS:
            return
        rv = next(self._rv)
        self._last_rv = rv
        obj["metadata"]["resourceVersion"] = str(rv)
        if event == "DELETED":
            self._bucket(info).pop(key, None)
        else:
            self._bucket(info)[key] = obj
        if info.group == CRD_GROUP and info.kind == "CustomResourceDefinition":
            self._sync_crd(obj, removed=event == "DELETED")
        self._history.append((rv, event, copy.deepcopy(obj)))
        for callback in list(self._subscribers):
            try:
                callback(event, copy.deepcopy(obj))
            except Exception:  # a broken subscriber must not break the API write
                log.exception("store subscriber %r failed on %s", callback, event)

    def _remove(self, info: KindInfo, key: tuple[str, str], propagation: str | None) -> None:
        obj = self._bucket(info).get(key)
        if obj is None:
            return
        self._commit(info, key, copy.deepcopy(obj), "DELETED")
        if propagation != "Orphan":
            self._collect_dependents(obj["metadata"]["uid"])
        namespace = key[0]
        if namespace:
            ns = self._bucket(self._kinds[("", "Namespace")]).get(("", namespace))
            if ns and ns["metadata"].get("deletionTimestamp"):
                self._finish_namespace(namespace)

    def _collect_dependents(self, owner_uid: str) -> None:
        for (group, kind), bucket in list(self._objects.items()):
            for obj in list(bucket.values()):
                refs = obj["metadata"].get("ownerReferences") or ()
                if any(ref.get("uid") == owner_uid for ref in refs):
                    info = self._kinds.get((group, kind))
                    if info:
                        meta = obj["metadata"]
                        self.delete(info.api_version(), kind, meta["name"], meta.get("namespace"))

    def _empty_namespace(self, namespace: str) -> None:
        for (group, kind), bucket in list(self._objects.items()):
            info = self._kinds.get((group, kind))
            if info is None or not info.namespaced:
                continue
            for ns, name in [k for k in bucket if k[0] == namespace]:
                self.delete(info.api_version(), kind, name, ns)
        self._finish_namespace(namespace)

    def _finish_namespace(self, namespace: str) -> None:
        if any(k[0] == namespace for b in self._objects.values() for k in b):
            return
        self._logs = {k: v for k, v in self._logs.items() if k[0] != namespace}
        self._previous_logs = {k: v for k, v in self._previous_logs.items() if k[0] != namespace}
        self._injected_logs = {k: v for k, v in self._injected_logs.items() if k[0] != namespace}
        self._remove(self._kinds[("", "Namespace")], ("", namespace), None)

    def _admit_service_account(self, pod: Obj, namespace: str, requested: str) -> None:
        """The ServiceAccount admission plugin on pod creation: the account must exist
        (kubernetes plugin/pkg/admission/serviceaccount/admission.go, Admit)."""
        account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        if self.get("v1", "ServiceAccount", account, namespace) is None:
            raise Forbidden(
                f'pods "{requested}" is forbidden: error looking up service account '
                f'{namespace}/{account}: serviceaccount "{account}" not found',
                {"name": requested, "kind": "pods"},
            )

    def _create_default_service_account(self, namespace: str) -> None:
        self.create(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": namespace},
            }
        )

    # ---------------------------------------------------------------- CRDs
    def _prepare_crd(self, crd: Obj) -> None:
        """Validate a CRD's names and set the status an API server sets when it establishes it."""
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        group, plural = spec.get("group", ""), names.get("plural", "")
        expected = f"{plural}.{group}"
        if crd["metadata"]["name"] != expected or not names.get("kind"):
            raise Invalid(
                f'CustomResourceDefinition.apiextensions.k8s.io "{crd["metadata"]["name"]}" is '
                f'invalid: metadata.name: Invalid value: "{crd["metadata"]["name"]}": must be '
                f'spec.names.plural+"."+spec.group',
                {"causes": [{"field": "metadata.name", "reason": "FieldValueInvalid"}]},
            )
        if not any(v.get("served", True) for v in spec.get("versions") or ()):
            raise Invalid(
                f"CustomResourceDefinition {expected} is invalid: spec.versions: no served version"
            )
        accepted = dict(names)
        accepted.setdefault("singular", names["kind"].lower())
        accepted.setdefault("listKind", names["kind"] + "List")
        stamp = now_iso()
        conditions = [
            {
                "type": ctype,
                "status": "True",
                "reason": reason,
                "message": message,
                "lastTransitionTime": stamp,
            }
            for ctype, reason, message in (
                ("NamesAccepted", "NoConflicts", "no conflicts found"),
                ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            )
        ]
        status = crd.setdefault("status", {})
        old_conditions = {c.get("type"): c for c in status.get("conditions") or ()}
        status["conditions"] = [old_conditions.get(c["type"], c) for c in conditions]
        status["acceptedNames"] = accepted
        status["storedVersions"] = [
            v["name"] for v in spec.get("versions") or () if v.get("storage")
        ] or status.get("storedVersions", [])

    def _sync_crd(self, crd: Obj, removed: bool) -> None:
        info = kinds_from_crd(crd)
        key = (info.group, info.kind)
        if removed:
            for obj_key, obj in list(self._objects.get(key, {}).items()):
                self._commit(info, obj_key, copy.deepcopy(obj), "DELETED")
            self._kinds.pop(key, None)
            self._objects.pop(key, None)
            return
        existing = self._kinds.get(key)
        if existing is not None and existing.builtin:
            return
        self._kinds[key] = info
