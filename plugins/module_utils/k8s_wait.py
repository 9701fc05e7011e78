# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes access and watch-based waiting for the collection's modules.

- ``KUBE_ARG_SPEC``: the ``kubeconfig`` and ``context`` options (``K8S_AUTH_KUBECONFIG`` and
  ``K8S_AUTH_CONTEXT`` fallbacks, as kubernetes.core uses them). Without a kubeconfig the client
  reads ``KUBECONFIG`` or ``~/.kube/config``, then the in-cluster service account.
- ``KubeClient``: loads the kubeconfig with the kubernetes Python client (exec plugins such as
  ``gke-gcloud-auth-plugin``, client certificates, tokens) and makes raw JSON requests with its
  ``ApiClient``: ``get``, ``list`` and ``watch`` of any resource given as a ``Resource``
  (apiVersion, plural, namespace); no discovery round trip.
- ``Watcher`` / ``wait_for`` / ``wait_for_object``: LIST once, then WATCH from the list's
  resourceVersion and re-evaluate a check on every change. A watch that ends (server
  ``timeoutSeconds``, connection drop) is resumed from the last resourceVersion seen (bookmarks
  included); a watch answered with 410 Gone/Expired is replaced by a fresh LIST. Transient failures
  after the first successful LIST (connection errors, 429, 5xx) are retried with capped backoff.
  Everything runs against a ``Deadline`` on the monotonic clock: a watch request never asks the
  server for longer than the time left, and the socket read timeout is bounded by it too.
- ``module_client(module)``: the client of a module's options, or the module failed with the
  cause and the fix (kubernetes library missing, kubeconfig unreadable).
- ``KubeError`` (status, reason, message, hint) and ``WaitTimeout`` (last state seen, elapsed,
  last transient error).

No message built here contains a credential: the bearer token of the loaded configuration is
scrubbed from every text taken from a response or an exception.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ansible.module_utils.basic import env_fallback, missing_required_lib

try:
    import urllib3
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.config.config_exception import ConfigException

    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised when the kubernetes client is absent
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = exc

KUBE_ARG_SPEC = dict(
    kubeconfig=dict(type="path", fallback=(env_fallback, ["K8S_AUTH_KUBECONFIG"])),
    context=dict(type="str", fallback=(env_fallback, ["K8S_AUTH_CONTEXT"])),
)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_WATCH_SECONDS = 290  # one watch request at most; the API server's own cap is 30-60 min
CONNECT_TIMEOUT = 10.0
REQUEST_TIMEOUT = 30.0
READ_GRACE = 5.0  # extra socket read time over the server-side timeoutSeconds of a watch
BACKOFF_BASE = 0.5
BACKOFF_MAX = 8.0


class KubeError(Exception):
    """A Kubernetes API or configuration error; the message holds no secret."""

    def __init__(self, message, status=None, reason=None, hint=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason
        self.hint = hint

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status in RETRYABLE_STATUS

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}. {self.hint}"

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "hint": self.hint,
        }


class Gone(KubeError):
    """410: the resourceVersion a watch started from is too old; LIST again."""


class WaitTimeout(Exception):
    """The deadline passed before the check was satisfied."""

    def __init__(self, message, last=None, elapsed=0.0, last_error=None):
        super().__init__(message)
        self.last = last
        self.elapsed = elapsed
        self.last_error = last_error


class Deadline:
    """A time budget on the monotonic clock."""

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = max(0.0, float(timeout))
        self.clock = clock
        self.start = clock()

    def remaining(self) -> float:
        return max(0.0, self.start + self.timeout - self.clock())

    def expired(self) -> bool:
        return self.remaining() <= 0

    def elapsed(self) -> float:
        return self.clock() - self.start


@dataclass(frozen=True)
class Resource:
    """A resource type: apiVersion (``v1``, ``apps/v1``, ``group/version``), plural, namespace."""

    api_version: str
    plural: str
    namespace: str | None = None

    def path(self, name: str | None = None) -> str:
        root = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        scope = f"/namespaces/{self.namespace}" if self.namespace else ""
        tail = f"/{name}" if name else ""
        return f"{root}{scope}/{self.plural}{tail}"

    def describe(self, name: str | None = None) -> str:
        group = self.api_version.rpartition("/")[0]
        kind = f"{self.plural}.{group}" if group else self.plural
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{kind} {name}{where}" if name else f"{kind}{where}"


def status_hint(status: int | None, context: str = "") -> str | None:
    """What to do about an API answer (status None: the API server could not be reached)."""
    if status is None:
        return (
            "Check that the cluster is running and reachable from this machine, and that the "
            f"kubeconfig{context} points at it (kubectl cluster-info)"
        )
    if status == 401:
        return (
            "The kubeconfig credentials were refused: refresh them (for GKE: gcloud container "
            "clusters get-credentials CLUSTER, with gke-gcloud-auth-plugin installed)"
        )
    if status == 403:
        return "The kubeconfig user may not read this: grant it RBAC access to the resource"
    if status == 429 or status >= 500:
        return "The API server is overloaded or failing; retry later"
    return None


class KubeClient:
    """Raw JSON access to the Kubernetes API with the kubernetes client's configuration."""

    def __init__(
        self,
        kubeconfig: str | None = None,
        context: str | None = None,
        *,
        api_client=None,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.request_timeout = request_timeout
        self.api = api_client if api_client is not None else self._load(kubeconfig, context)
        self.host = self.api.configuration.host

    @classmethod
    def from_params(cls, params: dict, **kwargs) -> KubeClient:
        return cls(params.get("kubeconfig"), params.get("context"), **kwargs)

    @staticmethod
    def _load(kubeconfig: str | None, context: str | None):
        configuration = k8s_client.Configuration()
        source = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        try:
            if kubeconfig and not os.path.exists(os.path.expanduser(kubeconfig)):
                raise KubeError(
                    f"kubeconfig {kubeconfig} does not exist",
                    reason="KubeconfigMissing",
                    hint="Give an existing file in kubeconfig (or K8S_AUTH_KUBECONFIG); for GKE "
                    "write one with gcloud container clusters get-credentials CLUSTER",
                )
            try:
                k8s_config.load_kube_config(
                    config_file=kubeconfig,
                    context=context,
                    client_configuration=configuration,
                    persist_config=False,
                )
            except (ConfigException, OSError):
                if kubeconfig or context or not os.environ.get("KUBERNETES_SERVICE_HOST"):
                    raise
                k8s_config.load_incluster_config(client_configuration=configuration)
        except (ConfigException, OSError, ValueError, TypeError) as exc:
            raise KubeError(
                f"cannot load the Kubernetes configuration from {source}"
                f"{f' (context {context})' if context else ''}: {exc}",
                reason="KubeconfigInvalid",
                hint="Check the kubeconfig file and context (kubectl config get-contexts)",
            ) from None
        return k8s_client.ApiClient(configuration)

    # ------------------------------------------------------------------ helpers
    def redact(self, text: str) -> str:
        """text without the bearer token (read each time: exec plugins refresh it)."""
        api_key = getattr(self.api.configuration, "api_key", None) or {}
        secrets = {
            part
            for value in api_key.values()
            if isinstance(value, str)
            for part in (value, value.split(" ", 1)[-1])
            if len(part) >= 8
        }
        for secret in sorted(secrets, key=len, reverse=True):
            text = text.replace(secret, "<redacted>")
        return text

    def _request(
        self,
        path: str,
        query: list | None,
        timeout,
        *,
        method: str = "GET",
        body: dict | None = None,
        content_type: str = "application/json",
    ) -> object:
        """A request (GET unless told); the urllib3 response, unread. Raises KubeError (status
        None: unreachable)."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            method, url, headers, data, _post = self.api.param_serialize(
                method,
                path,
                query_params=query or None,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            return self.api.call_api(
                method, url, header_params=headers, body=data, _request_timeout=timeout
            )
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            raise KubeError(
                self.redact(f"cannot reach the Kubernetes API at {self.host}: {reason}"),
                reason="Unreachable",
                hint=status_hint(None),
            ) from None
        except ConfigException as exc:  # an exec credential plugin failed
            raise KubeError(
                self.redact(f"cannot get credentials for {self.host}: {exc}"),
                reason="Credentials",
                hint=status_hint(401),
            ) from None

    def _error(self, status: int, body: bytes, what: str) -> KubeError:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        text = data.get("message") or (body or b"").decode("utf-8", "replace")[:300]
        reason = data.get("reason") or f"HTTP {status}"
        cls = Gone if status == 410 else KubeError
        return cls(
            self.redact(f"{what}: {status} {reason}: {text}".rstrip(": ")),
            status=status,
            reason=reason,
            hint=status_hint(status),
        )

    def _json(self, path: str, query: list | None, what: str, **send) -> dict:
        response = self._request(path, query, (CONNECT_TIMEOUT, self.request_timeout), **send)
        try:
            body = response.read()
        except urllib3.exceptions.HTTPError as exc:
            raise KubeError(
                self.redact(f"{what}: the connection failed: {exc}"),
                reason="Unreachable",
                hint=status_hint(None),
            ) from None
        if not 200 <= response.status < 300:
            raise self._error(response.status, body, what)
        try:
            return json.loads(body)
        except ValueError:
            raise KubeError(f"{what}: the answer is not JSON", status=response.status) from None

    # -------------------------------------------------------------------- reads
    def get(self, resource: Resource, name: str) -> dict | None:
        """The object, or None when it does not exist."""
        try:
            return self._json(resource.path(name), None, f"GET {resource.describe(name)}")
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def discover(self, api_version: str) -> list | None:
        """The resources (APIResourceList) a group version serves, or None when not served."""
        root = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        try:
            answer = self._json(root, None, f"GET {root} (discovery)")
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return list(answer.get("resources") or [])

    def list(
        self,
        resource: Resource,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> dict:
        """The List object (``items``, ``metadata.resourceVersion``). 404: the type is unknown."""
        query = _selectors(label_selector, field_selector)
        return self._json(resource.path(), query, f"LIST {resource.describe()}")

    # ------------------------------------------------------------------- writes
    def create(self, resource: Resource, body: dict, *, dry_run: bool = False) -> dict:
        """POST a new object; the object the API server answers (not stored with dry_run)."""
        query = [("dryRun", "All")] if dry_run else []
        name = (body.get("metadata") or {}).get("name")
        return self._json(
            resource.path(), query, f"CREATE {resource.describe(name)}", method="POST", body=body
        )

    def apply(
        self,
        resource: Resource,
        body: dict,
        field_manager: str,
        *,
        force: bool = True,
        dry_run: bool = False,
    ) -> dict:
        """Server-side apply of body (PATCH application/apply-patch+yaml; JSON is YAML)."""
        name = body["metadata"]["name"]
        query = [("fieldManager", field_manager)]
        if force:
            query.append(("force", "true"))
        if dry_run:
            query.append(("dryRun", "All"))
        return self._json(
            resource.path(name),
            query,
            f"APPLY {resource.describe(name)}",
            method="PATCH",
            body=body,
            content_type="application/apply-patch+yaml",
        )

    def watch(
        self,
        resource: Resource,
        resource_version: str,
        timeout_seconds: float,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Iterator[tuple[str, dict]]:
        """Events (type, object) from resource_version for at most ~timeout_seconds.

        Ends when the server closes the stream. Raises Gone for 410 (as an answer or an ERROR
        event), KubeError otherwise; a dropped connection or a read timeout just ends the stream.
        """
        seconds = max(1, math.ceil(timeout_seconds))
        query = _selectors(label_selector, field_selector) + [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(seconds)),
        ]
        what = f"WATCH {resource.describe()}"
        response = self._request(resource.path(), query, (CONNECT_TIMEOUT, seconds + READ_GRACE))
        raw = getattr(response, "response", response)
        try:
            if not 200 <= response.status < 300:
                raise self._error(response.status, raw.read(), what)
            for line in _lines(raw):
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    code = obj.get("code") or 500
                    raise self._error(code, json.dumps(obj).encode(), what)
                yield kind, obj
        except urllib3.exceptions.HTTPError:
            return  # read timeout or dropped connection: the caller resumes from its RV
        finally:
            _close(raw)


def module_client(module, **kwargs) -> KubeClient:
    """The KubeClient of an AnsibleModule's kubeconfig/context options; on a missing kubernetes
    library or an unusable kubeconfig the module fails with the cause and the fix."""
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)
    try:
        return KubeClient.from_params(module.params, **kwargs)
    except KubeError as exc:
        module.fail_json(msg=str(exc), reason=exc.reason, hint=exc.hint)
        raise  # fail_json exits; for the type checker


def _selectors(label_selector: str | None, field_selector: str | None) -> list:
    query = []
    if label_selector:
        query.append(("labelSelector", label_selector))
    if field_selector:
        query.append(("fieldSelector", field_selector))
    return query


def _lines(raw) -> Iterator[str]:
    """Non-empty lines of a streamed (chunked) response body, as they arrive."""
    buffer = b""
    for chunk in raw.stream(amt=None, decode_content=True):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield line.decode("utf-8", "replace")
    if buffer.strip():
        yield buffer.decode("utf-8", "replace")


def _close(raw) -> None:
    for method in ("close", "release_conn"):
        closer = getattr(raw, method, None)
        if closer is not None:
            with contextlib.suppress(Exception):
                closer()


def _name(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def _rv(obj: dict) -> str | None:
    return (obj.get("metadata") or {}).get("resourceVersion")


class Discovery:
    """``KubeClient.discover`` answers kept for a module run: each group version is asked once,
    again only when told (``fresh``: a CRD applied since may serve a new kind)."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self._answers: dict[str, list | None] = {}

    def resources(self, api_version: str, fresh: bool = False) -> list | None:
        """The APIResourceList's resources of a group version, or None when not served."""
        if fresh or api_version not in self._answers:
            self._answers[api_version] = self.client.discover(api_version)
        return self._answers[api_version]


@dataclass
class Watcher:
    """Keeps a local copy of the objects of a resource (optionally selected) up to date.

    ``snapshots(deadline)`` yields the current objects (dict ``namespace/name`` -> object) after
    the LIST and after every change, until the deadline. Errors of the first LIST propagate;
    after it, transient errors are retried with backoff and remembered in ``last_error``.
    """

    client: KubeClient
    resource: Resource
    label_selector: str | None = None
    field_selector: str | None = None
    max_watch_seconds: float = MAX_WATCH_SECONDS
    sleep: Callable[[float], None] = time.sleep
    items: dict = field(default_factory=dict)
    resource_version: str | None = None
    last_error: KubeError | None = None
    lists: int = 0
    watches: int = 0

    def _relist(self) -> dict:
        listed = self.client.list(self.resource, self.label_selector, self.field_selector)
        self.lists += 1
        self.items = {_name(obj): obj for obj in listed.get("items") or ()}
        self.resource_version = _rv(listed) or ""
        return dict(self.items)

    def snapshots(self, deadline: Deadline) -> Iterator[dict]:
        yield self._relist()
        failures = 0
        need_list = False
        while not deadline.expired():
            try:
                if need_list:
                    snapshot = self._relist()
                    need_list = False
                    failures = 0
                    yield snapshot
                    continue
                self.watches += 1
                started, seen = deadline.clock(), 0
                events = self.client.watch(
                    self.resource,
                    self.resource_version or "",
                    min(deadline.remaining(), self.max_watch_seconds),
                    self.label_selector,
                    self.field_selector,
                )
                try:
                    for kind, obj in events:
                        seen += 1
                        failures = 0
                        self.resource_version = _rv(obj) or self.resource_version
                        if kind not in ("ADDED", "MODIFIED", "DELETED"):
                            continue  # BOOKMARK: only its resourceVersion matters
                        if kind == "DELETED":
                            self.items.pop(_name(obj), None)
                        else:
                            self.items[_name(obj)] = obj
                        yield dict(self.items)
                        if deadline.expired():
                            return
                finally:
                    _close(events)
                if not seen and deadline.clock() - started < 1.0:
                    # An empty watch that ended at once: do not spin on a misbehaving server.
                    failures += 1
                    self._pause(failures, deadline)
            except Gone:
                need_list = True
            except KubeError as exc:
                if not exc.retryable:
                    raise
                self.last_error = exc
                failures += 1
                self._pause(failures, deadline)

    def _pause(self, failures: int, deadline: Deadline) -> None:
        pause = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (failures - 1), deadline.remaining())
        if pause > 0:
            self.sleep(pause)


def wait_for(
    watcher: Watcher,
    check: Callable[[dict], object],
    deadline: Deadline,
    what: str = "the condition",
) -> tuple[object, dict]:
    """Evaluate check(snapshot) on the current objects and after every change.

    Returns (the first truthy result, the snapshot it came from). Raises WaitTimeout with the
    last snapshot when the deadline passes first (a zero budget evaluates the current state once).
    """
    last: dict = {}
    for snapshot in watcher.snapshots(deadline):
        last = snapshot
        result = check(snapshot)
        if result:
            return result, snapshot
    error = watcher.last_error
    raise WaitTimeout(
        f"timed out after {deadline.elapsed():.0f}s waiting for {what}"
        + (f" (last API error: {error.message})" if error else ""),
        last=last,
        elapsed=deadline.elapsed(),
        last_error=error,
    )


def wait_for_object(
    client: KubeClient,
    resource: Resource,
    name: str,
    check: Callable[[dict | None], object],
    deadline: Deadline,
    *,
    what: str | None = None,
    **watcher_options,
) -> tuple[object, dict | None]:
    """wait_for on one object (None while it does not exist), watched by field selector.

    Returns (result, object); WaitTimeout.last is the last object seen (or None).
    """
    watcher = Watcher(client, resource, field_selector=f"metadata.name={name}", **watcher_options)

    def one(snapshot: dict) -> object:
        return check(_single(snapshot, resource, name))

    try:
        result, snapshot = wait_for(watcher, one, deadline, what or resource.describe(name))
    except WaitTimeout as exc:
        exc.last = _single(exc.last or {}, resource, name)
        raise
    return result, _single(snapshot, resource, name)


def _single(snapshot: dict, resource: Resource, name: str) -> dict | None:
    return snapshot.get(f"{resource.namespace or ''}/{name}")


def condition(obj: dict | None, type_: str) -> dict | None:
    """The status condition of that type, or None."""
    for cond in ((obj or {}).get("status") or {}).get("conditions") or ():
        if isinstance(cond, dict) and cond.get("type") == type_:
            return cond
    return None


def is_true(obj: dict | None, type_: str) -> bool:
    cond = condition(obj, type_)
    return bool(cond) and cond.get("status") == "True"


def pod_ready(pod: dict) -> bool:
    return is_true(pod, "Ready")
