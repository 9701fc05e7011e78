"""The Kubernetes API server: routing, verbs, subresources, errors as Status bodies."""

from __future__ import annotations

import asyncio
import copy
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from ..store import (
    BadRequest,
    Conflict,
    Invalid,
    MethodNotAllowed,
    NotFound,
    Store,
    StoreError,
    Unauthorized,
    UnsupportedMediaType,
)
from . import discovery, printers, protobuf
from .apply import manager_from_user_agent, server_side_apply
from .defaults import apply_schema_defaults
from .kinds import SCALE_PATHS, VIRTUAL_KINDS, KindInfo
from .patch import json_merge_patch, json_patch, parse_json, strategic_merge_patch
from .selectors import SelectorError, field_predicate, label_predicate
from .validation import validate_custom
from .watch import Watchers, serve_watch

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC_PATHS = frozenset({"/version", "/healthz", "/livez", "/readyz"})
PATCH_TYPES = {
    "application/strategic-merge-patch+json": "strategic",
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/apply-patch+yaml": "apply",
}


def status_body(code: int, reason: str, message: str, details: dict[str, Any] | None = None):
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(obj).encode(), status=status, content_type="application/json"
    )


# libyaml when PyYAML has it: the pure-Python parser took most of the emulator's time on the large
# CRDs (a few MB of apply patches per site.yml).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _apply_patch_body(raw: bytes) -> Any:
    """An apply patch (application/apply-patch+yaml): YAML, of which JSON is a subset, as the API
    server reads it (sigs.k8s.io/yaml turns YAML into JSON). Clients (kubectl, the Python client,
    kubernetes.core) send JSON: that is parsed as JSON, the rest as YAML."""
    try:
        return json.loads(raw)
    except ValueError:
        pass
    try:
        return yaml.load(raw, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise BadRequest(f"error decoding YAML: {exc}") from exc


@dataclass
class Target:
    """What a resource path names."""

    info: KindInfo
    api_version: str
    namespace: str | None
    name: str | None
    subresource: str | None


class ApiServer:
    """aiohttp application of the Kubernetes API, backed by a Store."""

    def __init__(self, store: Store, token: str, server_address: str = "127.0.0.1") -> None:
        self.store = store
        self.token = token
        self.server_address = server_address
        self.watchers = Watchers()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/version", self._version)
        for path in ("/healthz", "/livez", "/readyz"):
            app.router.add_get(path, self._ok)
        app.router.add_get("/api", self._api)
        app.router.add_get("/apis", self._apis)
        app.router.add_get("/apis/{group}", self._group)
        app.router.add_get("/openapi/v2", self._openapi_v2)
        app.router.add_get("/openapi/v3", self._openapi_v3)
        app.router.add_get("/openapi/v3/{path:.*}", self._openapi_v3_group)
        app.router.add_route("*", "/api/{version}{tail:(/.*)?}", self._resource)
        app.router.add_route("*", "/apis/{group}/{version}{tail:(/.*)?}", self._resource)
        app.on_shutdown.append(self._close_watches)
        return app

    async def _close_watches(self, _app: web.Application) -> None:
        self.watchers.close()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if request.path not in PUBLIC_PATHS:
                self._authenticate(request)
            return await handler(request)
        except StoreError as exc:
            return _json(status_body(exc.code, exc.reason, exc.message, exc.details), exc.code)
        except web.HTTPNotFound:
            return _json(
                status_body(404, "NotFound", "the server could not find the requested resource"),
                404,
            )
        except web.HTTPException:
            raise
        except Exception as exc:
            log.exception("API request %s %s failed", request.method, request.path_qs)
            return _json(status_body(500, "InternalError", f"Internal error occurred: {exc}"), 500)

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _sep, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), self.token):
            raise Unauthorized("Unauthorized")

    # ------------------------------------------------------------ discovery
    async def _version(self, _request: web.Request) -> web.Response:
        return _json(discovery.VERSION)

    async def _ok(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _api(self, _request: web.Request) -> web.Response:
        return _json(discovery.api_versions(self.server_address))

    async def _apis(self, _request: web.Request) -> web.Response:
        return _json(discovery.group_list(self.store))

    async def _group(self, request: web.Request) -> web.Response:
        doc = discovery.group(self.store, request.match_info["group"])
        if doc is None:
            raise NotFound("the server could not find the requested resource")
        return _json(doc)

    async def _openapi_v2(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=discovery.OPENAPI_V2_PROTOBUF,
            headers={"Content-Type": discovery.OPENAPI_V2_CONTENT_TYPE},
        )

    async def _openapi_v3(self, _request: web.Request) -> web.Response:
        return _json(discovery.openapi_v3_root(self.store))

    async def _openapi_v3_group(self, request: web.Request) -> web.Response:
        doc = discovery.openapi_v3_group_version(self.store, request.match_info["path"])
        if doc is None:
            raise NotFound("the server could not find the requested resource")
        return _json(doc)

    # ------------------------------------------------------------ resources
    def _target(self, request: web.Request) -> Target | None:
        group = request.match_info.get("group", "")
        version = request.match_info["version"]
        if not group and version != "v1":
            raise NotFound("the server could not find the requested resource")
        parts = [p for p in request.match_info["tail"].split("/") if p]
        if not parts:
            return None
        namespace = None
        is_namespace_sub = len(parts) == 3 and parts[2] in ("status", "finalize")
        if parts[0] == "namespaces" and len(parts) >= 3 and not is_namespace_sub:
            namespace, parts = parts[1], parts[2:]
        if len(parts) > 3:
            raise NotFound("the server could not find the requested resource")
        plural, name, sub = (parts + [None, None])[:3]
        info = self.store.resolve(group, version, plural)
        if info is None:
            raise NotFound("the server could not find the requested resource")
        if sub == "finalize":
            sub = None
        if sub and sub not in info.subresources:
            raise NotFound("the server could not find the requested resource")
        if namespace and not info.namespaced:
            raise NotFound("the server could not find the requested resource")
        if info.namespaced and name and not namespace:
            raise NotFound("the server could not find the requested resource")
        return Target(info, info.api_version(version), namespace, name, sub)

    async def _resource(self, request: web.Request) -> web.StreamResponse:
        target = self._target(request)
        if target is None:
            if request.method != "GET":
                raise MethodNotAllowed(f"the server does not allow this method: {request.method}")
            group = request.match_info.get("group", "")
            doc = discovery.resource_list(self.store, group, request.match_info["version"])
            if doc is None:
                raise NotFound("the server could not find the requested resource")
            return _json(doc)
        method = request.method
        if target.info.kind in VIRTUAL_KINDS:
            if method != "POST":
                raise MethodNotAllowed(f"the server does not allow this method: {method}")
            return await self._review(request, target)
        if target.name is None:
            handlers = {"GET": self._list, "POST": self._create, "DELETE": self._delete_collection}
        elif target.subresource == "log":
            handlers = {"GET": self._log}
        elif target.subresource == "scale":
            handlers = {"GET": self._get_scale, "PUT": self._put_scale, "PATCH": self._patch_scale}
        else:
            handlers = {
                "GET": self._get,
                "PUT": self._put,
                "PATCH": self._patch,
                "DELETE": self._delete,
            }
        handler = handlers.get(method)
        if handler is None:
            raise MethodNotAllowed(
                f"the server does not allow this method on the requested resource: {method}"
            )
        return await handler(request, target)

    # ------------------------------------------------------------- reading
    def _current(self, target: Target) -> dict[str, Any]:
        assert target.name is not None
        obj = self.store.get(target.api_version, target.info.kind, target.name, target.namespace)
        if obj is None:
            info = target.info
            raise NotFound(
                f'{info.plural}{"." + info.group if info.group else ""} "{target.name}" not found',
                {"name": target.name, "group": info.group, "kind": info.plural},
            )
        return obj

    async def _get(self, request: web.Request, target: Target) -> web.Response:
        obj = self._current(target)
        if "as=Table" in request.headers.get("Accept", ""):
            rv = obj["metadata"].get("resourceVersion", "")
            return self._table(request, target, [obj], rv)
        return _json(obj)

    async def _list(self, request: web.Request, target: Target) -> web.StreamResponse:
        query = request.query
        try:
            by_label = label_predicate(query.get("labelSelector"))
            by_field = field_predicate(query.get("fieldSelector"))
        except SelectorError as exc:
            raise BadRequest(str(exc)) from exc
        namespace = target.namespace

        def matches(obj: dict[str, Any]) -> bool:
            in_namespace = not namespace or obj["metadata"].get("namespace") == namespace
            return in_namespace and by_label(obj) and by_field(obj)

        if query.get("watch") in ("1", "true", "True"):
            return await serve_watch(
                request,
                self.store,
                self.watchers,
                info=target.info,
                api_version=target.api_version,
                matches=matches,
            )
        items = [
            o
            for o in self.store.list(target.api_version, target.info.kind, namespace)
            if matches(o)
        ]
        if "as=Table" in request.headers.get("Accept", ""):
            return self._table(request, target, items, str(self.store.resource_version))
        return _json(
            {
                "kind": f"{target.info.kind}List",
                "apiVersion": target.api_version,
                "metadata": {"resourceVersion": self.store.resource_version},
                "items": items,
            }
        )

    def _table(
        self, request: web.Request, target: Target, items: list[dict[str, Any]], rv: str
    ) -> web.Response:
        """kubectl's `as=Table`: kube-apiserver's printers (k8s/printers.py)."""
        query = request.query
        version = target.api_version.rsplit("/", 1)[-1]
        try:
            body = printers.table(
                target.info,
                version,
                items,
                resource_version=rv,
                include_object=query.get("includeObject") or "Metadata",
                no_headers=False,
            )
        except printers.TableGap as exc:
            raise StoreError(str(exc)) from exc
        return _json(body)

    async def _log(self, request: web.Request, target: Target) -> web.StreamResponse:
        pod = self._current(target)
        containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or ()]
        container = request.query.get("container")
        default = (pod["metadata"].get("annotations") or {}).get(
            "kubectl.kubernetes.io/default-container"
        )
        if not container:
            if len(containers) == 1 or default:
                container = default or containers[0]
            else:
                raise BadRequest(
                    f"a container name must be specified for pod {target.name}, choose one of: "
                    f"[{' '.join(containers)}]"
                )
        if container not in containers:
            raise BadRequest(f"container {container} is not valid for pod {target.name}")
        namespace = target.namespace or ""
        previous = False
        if request.query.get("previous") in ("true", "1"):
            # kubelet validateContainerLogStatus: the previous instance is lastState.terminated;
            # while the container waits to restart that is still the latest log written.
            statuses = (pod.get("status") or {}).get("containerStatuses") or ()
            status = next((s for s in statuses if s.get("name") == container), {})
            if not ((status.get("lastState") or {}).get("terminated") or {}).get("containerID"):
                raise BadRequest(
                    f'previous terminated container "{container}" in pod "{target.name}" not found'
                )
            state = status.get("state") or {}
            previous = "running" in state or "terminated" in state
        lines = self.store.logs(namespace, target.name or "", container, previous=previous)
        tail = request.query.get("tailLines")
        if tail is not None:
            lines = lines[-int(tail) :] if int(tail) else []
        if previous or request.query.get("follow") not in ("true", "1"):
            text = "".join(line + "\n" for line in lines)
            return web.Response(text=text, content_type="text/plain")
        return await self._follow_log(request, target, container, lines)

    async def _follow_log(
        self, request: web.Request, target: Target, container: str, lines: list[str]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        namespace, name = target.namespace or "", target.name or ""
        sent = len(self.store.logs(namespace, name, container))
        for line in lines:
            await response.write(line.encode() + b"\n")
        while self.store.get("v1", "Pod", name, namespace) is not None:
            current = self.store.logs(namespace, name, container)
            for line in current[sent:]:
                await response.write(line.encode() + b"\n")
            sent = len(current)
            await asyncio.sleep(0.2)
        await response.write_eof()
        return response

    # ------------------------------------------------------------- writing
    async def _body(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if request.content_type == "application/apply-patch+yaml":
            body = _apply_patch_body(raw)
        elif request.content_type == protobuf.CONTENT_TYPE:
            body = protobuf.decode(raw)
        else:
            body = parse_json(raw)
        if not isinstance(body, dict):
            raise BadRequest("the body of the request must be an object")
        return body

    def _check_identity(self, body: dict[str, Any], target: Target) -> dict[str, Any]:
        info = target.info
        body.setdefault("apiVersion", target.api_version)
        body.setdefault("kind", info.kind)
        if body["kind"] != info.kind or body["apiVersion"] != target.api_version:
            raise BadRequest(
                f"the API version in the data ({body['apiVersion']}) does not match the expected "
                f"API version ({target.api_version})"
                if body["kind"] == info.kind
                else f"{body['kind']} in version {body['apiVersion']} cannot be handled as a "
                f"{info.kind}"
            )
        meta = body.setdefault("metadata", {})
        if info.namespaced:
            if meta.get("namespace") and target.namespace and meta["namespace"] != target.namespace:
                raise BadRequest(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            if target.namespace:
                meta["namespace"] = target.namespace
        if target.name is not None:
            if meta.get("name") and meta["name"] != target.name:
                raise BadRequest(
                    f"the name of the object ({meta['name']}) does not match the name on the URL "
                    f"({target.name})"
                )
            meta["name"] = target.name
        return body

    def _validate(self, target: Target, obj: dict[str, Any]) -> None:
        if not target.info.builtin:
            # decode, default, then validate (as the apiextensions-apiserver orders them)
            apply_schema_defaults(target.info.schemas, obj)
            validate_custom(target.info, target.api_version.rpartition("/")[2], obj)

    @staticmethod
    def _dry_run(request: web.Request, body: dict[str, Any] | None = None) -> bool:
        if "All" in request.query.getall("dryRun", []):
            return True
        return bool(body and "All" in (body.get("dryRun") or ()))

    async def _create(self, request: web.Request, target: Target) -> web.Response:
        body = self._check_identity(await self._body(request), target)
        if target.info.has_status and target.info.group != "apiextensions.k8s.io":
            body.pop("status", None)
        self._validate(target, body)
        created = self.store.create(
            body, dry_run=self._dry_run(request), manager=self._manager(request)
        )
        return _json(created, 201)

    @staticmethod
    def _manager(request: web.Request) -> str | None:
        """The field manager of a non-apply write: fieldManager, else the User-Agent's prefix."""
        manager = request.query.get("fieldManager") or manager_from_user_agent(
            request.headers.get("User-Agent", "")
        )
        return manager or None

    async def _review(self, request: web.Request, target: Target) -> web.Response:
        body = self._check_identity(await self._body(request), target)
        if target.info.kind == "SelfSubjectAccessReview":
            body["status"] = {"allowed": True, "reason": "llmd-emulator allows everything"}
        elif target.info.kind == "SelfSubjectRulesReview":
            body["status"] = {
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                "incomplete": False,
            }
        else:
            body["status"] = {"authenticated": True, "user": {"username": "admin"}}
        return _json(body, 201)

    async def _put(self, request: web.Request, target: Target) -> web.Response:
        body = self._check_identity(await self._body(request), target)
        dry_run = self._dry_run(request)
        if target.subresource == "status":
            current = self._current(target)
            wanted = body["metadata"].get("resourceVersion")
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                self.store.update(body, check_version=True, dry_run=True)
            return _json(self.store.update_status(body, dry_run=dry_run))
        self._current(target)
        self._validate(target, body)
        return _json(
            self.store.update(
                body, check_version=True, dry_run=dry_run, manager=self._manager(request)
            )
        )

    async def _patch(self, request: web.Request, target: Target) -> web.Response:
        patch_type = PATCH_TYPES.get(request.content_type)
        if patch_type is None or (patch_type == "strategic" and not target.info.builtin):
            raise UnsupportedMediaType(
                "the body of the request was in an unknown format - accepted media types include: "
                + ", ".join(
                    t for t, n in PATCH_TYPES.items() if target.info.builtin or n != "strategic"
                )
            )
        dry_run = self._dry_run(request)
        if patch_type == "apply":
            return await self._apply(request, target, dry_run)
        raw = await request.read()
        patch = parse_json(raw)
        current = self._current(target)
        if patch_type == "merge":
            if not isinstance(patch, dict):
                raise BadRequest("a merge patch must be a JSON object")
            patched = json_merge_patch(current, patch)
        elif patch_type == "json":
            patched = json_patch(current, patch)
        else:
            if not isinstance(patch, dict):
                raise BadRequest("a strategic merge patch must be a JSON object")
            patched = strategic_merge_patch(current, patch)
        patched = self._check_identity(patched, target)
        if target.subresource == "status":
            return _json(self.store.update_status(patched, dry_run=dry_run))
        self._validate(target, patched)
        return _json(
            self.store.update(
                patched, check_version=True, dry_run=dry_run, manager=self._manager(request)
            )
        )

    async def _apply(self, request: web.Request, target: Target, dry_run: bool) -> web.Response:
        manager = request.query.get("fieldManager")
        if not manager:
            raise BadRequest("PATCH on apply requires fieldManager to be set")
        force = request.query.get("force") in ("true", "1")
        config = self._check_identity(await self._body(request), target)
        current = self.store.get(
            target.api_version, target.info.kind, target.name or "", target.namespace
        )
        if target.subresource == "status":
            if current is None:
                self._current(target)
            status_config = {**config, "status": config.get("status")}
            merged = server_side_apply(current, status_config, manager, force, target.info.builtin)
            return _json(self.store.update_status(merged, dry_run=dry_run))
        result = server_side_apply(current, config, manager, force, target.info.builtin)
        if current is None:
            if target.info.has_status:
                result.pop("status", None)
            self._validate(target, result)
            return _json(self.store.create(result, dry_run=dry_run), 201)
        self._validate(target, result)
        return _json(self.store.update(result, dry_run=dry_run))

    # ------------------------------------------------------------ deleting
    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if request.content_type == protobuf.CONTENT_TYPE:
            return protobuf.decode(raw)
        options = parse_json(raw) if raw.strip() else {}
        return options if isinstance(options, dict) else {}

    async def _delete(self, request: web.Request, target: Target) -> web.Response:
        options = await self._delete_options(request)
        current = self._current(target)
        preconditions = options.get("preconditions") or {}
        for field in ("uid", "resourceVersion"):
            wanted = preconditions.get(field)
            if wanted and wanted != current["metadata"].get(field):
                raise Conflict(
                    f"Precondition failed: {field} in precondition: {wanted}, {field} in object "
                    f"meta: {current['metadata'].get(field)}"
                )
        propagation = request.query.get("propagationPolicy") or options.get("propagationPolicy")
        deleted = self.store.delete(
            target.api_version,
            target.info.kind,
            current["metadata"]["name"],
            target.namespace,
            propagation=propagation,
            dry_run=self._dry_run(request, options),
        )
        return _json(deleted or current)

    async def _delete_collection(self, request: web.Request, target: Target) -> web.Response:
        options = await self._delete_options(request)
        query = request.query
        try:
            items = self.store.list(
                target.api_version,
                target.info.kind,
                target.namespace,
                label_selector=query.get("labelSelector"),
                field_selector=query.get("fieldSelector"),
            )
        except SelectorError as exc:
            raise BadRequest(str(exc)) from exc
        dry_run = self._dry_run(request, options)
        propagation = query.get("propagationPolicy") or options.get("propagationPolicy")
        deleted = []
        for obj in items:
            meta = obj["metadata"]
            result = self.store.delete(
                target.api_version,
                target.info.kind,
                meta["name"],
                meta.get("namespace"),
                propagation=propagation,
                dry_run=dry_run,
            )
            if result is not None:
                deleted.append(result)
        return _json(
            {
                "kind": f"{target.info.kind}List",
                "apiVersion": target.api_version,
                "metadata": {"resourceVersion": self.store.resource_version},
                "items": deleted,
            }
        )

    # --------------------------------------------------------------- scale
    def _scale_paths(self, info: KindInfo) -> dict[str, str]:
        return info.scale_paths or SCALE_PATHS.get(info.kind, {})

    def _scale(self, target: Target, obj: dict[str, Any]) -> dict[str, Any]:
        paths = self._scale_paths(target.info)
        selector = _path_get(obj, paths.get("labelSelectorPath", ""))
        if selector is None:
            match = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            selector = ",".join(f"{k}={v}" for k, v in sorted(match.items()))
        meta = obj["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": _path_get(obj, paths["specReplicasPath"]) or 0},
            "status": {
                "replicas": _path_get(obj, paths.get("statusReplicasPath", "")) or 0,
                "selector": selector,
            },
        }

    async def _get_scale(self, request: web.Request, target: Target) -> web.Response:
        return _json(self._scale(target, self._current(target)))

    async def _set_scale(
        self, request: web.Request, target: Target, obj: dict[str, Any], scale: dict[str, Any]
    ) -> web.Response:
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise Invalid(
                f'Scale.autoscaling "{target.name}" is invalid: spec.replicas: Invalid value: '
                f"{replicas!r}: must be greater than or equal to 0"
            )
        updated = copy.deepcopy(obj)
        _path_set(updated, self._scale_paths(target.info)["specReplicasPath"], replicas)
        wanted = (scale.get("metadata") or {}).get("resourceVersion")
        if wanted:
            updated["metadata"]["resourceVersion"] = wanted
        result = self.store.update(updated, check_version=True, dry_run=self._dry_run(request))
        return _json(self._scale(target, result))

    async def _put_scale(self, request: web.Request, target: Target) -> web.Response:
        obj = self._current(target)
        return await self._set_scale(request, target, obj, await self._body(request))

    async def _patch_scale(self, request: web.Request, target: Target) -> web.Response:
        obj = self._current(target)
        scale = self._scale(target, obj)
        patch = parse_json(await request.read())
        patch_type = PATCH_TYPES.get(request.content_type)
        if patch_type == "json":
            scale = json_patch(scale, patch)
        elif patch_type in ("merge", "strategic", "apply"):
            scale = json_merge_patch(scale, patch)
        else:
            raise UnsupportedMediaType(f"unsupported patch type {request.content_type}")
        scale["metadata"].pop("resourceVersion", None)
        return await self._set_scale(request, target, obj, scale)


def _path_get(obj: dict[str, Any], path: str) -> Any:
    value: Any = obj
    for part in [p for p in path.split(".") if p]:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value if path else None


def _path_set(obj: dict[str, Any], path: str, value: Any) -> None:
    parts = [p for p in path.split(".") if p]
    for part in parts[:-1]:
        obj = obj.setdefault(part, {})
    obj[parts[-1]] = value
