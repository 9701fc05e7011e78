# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the GKE resource modules (gke_cluster, gke_tpu_nodepool) share.

- ``GKE_COMMON_ARG_SPEC``: ``api_endpoint`` and the wait options (doc fragment ``llmd.gke.gke``);
- ``OperationWaiter``: one wait budget per module run on a monotonic clock; waits for the
  Operations already running on a resource (another run, an interrupted run, the create started
  by ``wait: false``) before comparing, and for the Operation the module starts. With
  ``progress_interval`` > 0 it stops after that many seconds and raises ``Pending``: the module
  returns ``pending: true`` and the collection's action plugin shows the progress and calls the
  module again with the same arguments (the run picks up the running Operation);
- ``differences`` / ``diff_of``: ``changed`` and ``--diff`` computed from the fields the user set;
- ``fail_gcp``: one way to turn ``GcpApiError`` / ``GcpTimeout`` into ``fail_json``;
- ``PoolSizes``: the current size of a node pool. A GKE NodePool has no current-size field; the
  ``targetSize`` of the Compute Engine instance group managers named in its ``instanceGroupUrls``
  is the size (Terraform reads it the same way).
"""

from __future__ import annotations

import copy
import os
import re
import time
from urllib.parse import urlsplit

from ansible.module_utils.basic import env_fallback

from ansible_collections.llmd.gke.plugins.module_utils.gcp import (
    ENDPOINT_ENV,
    SERVICES,
    STOCKOUT_RE,
    GcpApiError,
    GcpTimeout,
    busy_operation,
    stockout_error,
)

GKE_COMMON_ARG_SPEC = dict(
    api_endpoint=dict(type="str", fallback=(env_fallback, [ENDPOINT_ENV])),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=1800),
    poll_interval=dict(type="int", default=10),
    progress_interval=dict(type="int", default=0),
)

OPERATION_FIELDS = (
    "name",
    "operationType",
    "status",
    "detail",
    "targetLink",
    "startTime",
    "endTime",
    "error",
)
# A resource path in a link: GKE writes the project NUMBER and, for zonal resources,
# zones/<zone> (locations/<region> for regional ones) whatever the request said.
RESOURCE_PATH_RE = re.compile(
    r"projects/(?P<project>[^/]+)/(?:locations|zones)/(?P<location>[^/]+)/(?P<rest>[^?#]+)$"
)


class Pending(Exception):
    """The progress interval ran out while an Operation still runs (not an error)."""

    def __init__(self, operation: dict, elapsed: float) -> None:
        super().__init__(f"Operation {operation.get('name')} is {operation.get('status')}")
        self.operation = operation
        self.elapsed = elapsed


def operation_summary(operation: dict | None) -> dict | None:
    """The fields of an Operation worth returning (no selfLink, nothing secret)."""
    if not operation:
        return None
    return {k: operation[k] for k in OPERATION_FIELDS if operation.get(k) is not None}


def target_path(operation: dict) -> str:
    """projects/p/(locations|zones)/l/clusters/c[/nodePools/np] from an Operation's targetLink
    (as GKE wrote it: p may be the project number)."""
    link = operation.get("targetLink") or ""
    index = link.find("projects/")
    return link[index:] if index >= 0 else link


def split_path(path: str) -> tuple[str, str, str] | None:
    """(project, location, rest) of a resource path or link; rest = clusters/c[/nodePools/np]."""
    match = RESOURCE_PATH_RE.search(path or "")
    if not match:
        return None
    return match.group("project"), match.group("location"), match.group("rest").rstrip("/")


def targets(operation: dict, project: str, path: str) -> bool:
    """Whether the Operation's target is ``path`` (projects/<id>/locations/<l>/clusters/...) or
    below it. The link's project segment may be the project id or its number (GKE writes the
    number; the Operations were listed in this project, so any number is this project's), and
    its location segment ``zones/`` or ``locations/``."""
    target, wanted = split_path(target_path(operation)), split_path(path)
    if target is None or wanted is None:
        return False
    t_project, t_location, t_rest = target
    _w_project, w_location, w_rest = wanted
    if t_project != project and not t_project.isdigit():
        return False
    return t_location == w_location and (t_rest == w_rest or t_rest.startswith(w_rest + "/"))


def conditions_text(resource: dict | None) -> str:
    """The messages of a cluster's or node pool's ``conditions`` (what GKE says about its state;
    ``statusMessage`` is deprecated in favour of them)."""
    return "; ".join(
        str(c.get("message") or c.get("canonicalCode"))
        for c in (resource or {}).get("conditions") or []
        if c.get("message") or c.get("canonicalCode")
    )


def degraded_warning(cluster: dict, what: str = "it serves") -> str:
    """The warning for a DEGRADED cluster (usable: gke_cluster and gke_kubeconfig go on),
    naming GKE's conditions."""
    return (
        f"Cluster {cluster.get('name')} is DEGRADED: {what}, but GKE reports "
        f"{(conditions_text(cluster) or 'no condition').rstrip('.')}. Check the cluster in the "
        "Google Cloud console."
    )


def stockout_in(operation: dict, pool: dict | None = None) -> str | None:
    """The stock-out a running Operation (its ``detail``) or its node pool (``conditions``,
    canonicalCode RESOURCE_EXHAUSTED) reports, or None."""
    detail = operation.get("detail") or ""
    if STOCKOUT_RE.search(detail):
        return detail
    for condition in (pool or {}).get("conditions") or []:
        message = condition.get("message") or ""
        if condition.get("canonicalCode") == "RESOURCE_EXHAUSTED" and STOCKOUT_RE.search(message):
            return message
    return None


class OperationWaiter:
    """Waits for Operations within the module's budget; see the module docstring."""

    def __init__(self, client, params: dict) -> None:
        self.client = client
        self.start = time.monotonic()
        self.timeout = max(int(params.get("wait_timeout") or 0), 0)
        self.deadline = self.start + self.timeout
        self.poll_interval = max(int(params.get("poll_interval") or 1), 1)
        interval = int(params.get("progress_interval") or 0)
        self.slice_end = self.start + interval if interval > 0 else None
        self.last: dict | None = None  # the last Operation seen
        self.waited = 0.0  # seconds spent waiting for Operations

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def running_on(self, project: str, location: str, path: str) -> list[dict]:
        """Operations not DONE whose target is ``path`` or below it (a cluster's node pools),
        matched whatever project segment (id or number) and zones/locations form GKE wrote."""
        answer = self.client.get(f"projects/{project}/locations/{location}/operations")
        return [
            operation
            for operation in answer.get("operations") or []
            if operation.get("status") != "DONE" and targets(operation, project, path)
        ]

    def send(
        self, method: str, path: str, body=None, *, project: str, location: str, wait=True
    ) -> dict:
        """Send a mutation; when GKE answers that another Operation holds the cluster (either
        wording), wait for that Operation within the budget and send it again. Without
        ``wait`` the client's own bounded retries apply."""
        while True:
            try:
                return self.client.request(method, path, json=body, retry_busy=not wait)
            except GcpApiError as exc:
                name = busy_operation(exc) if wait else None
                if name is None or time.monotonic() >= self.deadline:
                    raise
                self.wait_for_blocker(name, project, location, path)

    def wait_for_blocker(self, name: str, project: str, location: str, path: str) -> None:
        """Wait for the Operation named in a busy answer (or, when it names none, for those
        running on the cluster; failing both, one poll interval)."""
        operations = []
        if name:
            try:
                operations = [
                    self.client.get(f"projects/{project}/locations/{location}/operations/{name}")
                ]
            except GcpApiError as lookup:
                if lookup.status != 404:
                    raise
        if not operations:
            parts = split_path(path)
            cluster = "/".join(parts[2].split("/")[:2]) if parts else ""
            operations = self.running_on(
                project, location, f"projects/{project}/locations/{location}/{cluster}"
            )
        if not operations:
            time.sleep(min(self.poll_interval, max(self.deadline - time.monotonic(), 0)))
            return
        for operation in operations:
            try:
                self.wait(operation)
            except GcpApiError as failed:
                if (failed.operation or {}).get("status") != "DONE":
                    raise  # a stock-out seen while it runs, or an API error
                # The other Operation failed: that is its owner's business; ours goes on.

    def wait(self, operation: dict) -> dict:
        """The Operation once DONE; GcpApiError for its error, GcpTimeout, or Pending."""
        now = time.monotonic()
        limit = self.deadline - now
        sliced = self.slice_end is not None and self.slice_end < self.deadline
        if sliced:
            limit = min(limit, self.slice_end - now)
        self.last = operation
        began = now
        try:
            done = self.client.wait_operation(
                operation,
                timeout=max(limit, 0),
                poll_interval=self.poll_interval,
                progress=self._seen,
            )
        except GcpTimeout as exc:
            self.last = exc.operation
            if sliced and time.monotonic() < self.deadline:
                raise Pending(exc.operation, self.elapsed()) from None
            exc.timeout = self.timeout
            raise
        finally:
            self.waited += time.monotonic() - began
        self.last = done
        return done

    def wait_all(self, operations: list[dict]) -> None:
        for operation in operations:
            self.wait(operation)

    def _seen(self, operation: dict, _elapsed: float) -> None:
        """After each poll: remember the Operation; fail fast on a node pool create that meets
        a stock-out (GKE would retry it for tens of minutes)."""
        self.last = operation
        if operation.get("status") == "DONE" or operation.get("operationType") not in (
            "CREATE_NODE_POOL",
            "CREATE_CLUSTER",
        ):
            return
        pool = None
        target = target_path(operation)
        if "/nodePools/" in target and not STOCKOUT_RE.search(operation.get("detail") or ""):
            try:
                pool = self.client.get(target)
            except GcpApiError:
                pool = None
        message = stockout_in(operation, pool)
        if message:
            zone = re.search(r"zones/([a-z0-9-]+)", message)
            parts = split_path(target)
            location = zone.group(1) if zone else (parts[1] if parts else None)
            raise stockout_error(operation, message, location)


def _normal(value):
    """Compare lists of dicts regardless of order; everything else as it is."""
    if isinstance(value, list):
        items = [_normal(v) for v in value]
        try:
            return sorted(items, key=repr)
        except TypeError:  # pragma: no cover - mixed types
            return items
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value


def differences(wanted: dict, actual: dict) -> list[str]:
    """The keys of ``wanted`` (None = not set by the user) whose value differs in ``actual``."""
    return sorted(
        key
        for key, value in wanted.items()
        if value is not None and _normal(value) != _normal(actual.get(key))
    )


def diff_of(keys, wanted: dict, actual: dict | None) -> dict:
    """A --diff with before/after of the given keys (before is empty when nothing exists)."""
    before = {k: actual.get(k) for k in keys} if actual else {}
    after = {k: wanted.get(k) for k in keys}
    return {"before": before, "after": after}


def fail_gcp(module, exc: Exception, waiter: OperationWaiter | None = None, **extra) -> None:
    """fail_json for GcpApiError / GcpTimeout with the cause, the hint and the last Operation."""
    if isinstance(exc, GcpTimeout):
        module.fail_json(
            msg=exc.message,
            operation=operation_summary(exc.operation),
            elapsed=round(exc.elapsed, 1),
            **extra,
        )
    if isinstance(exc, GcpApiError):
        module.fail_json(
            msg=str(exc),
            error=exc.to_dict(),
            operation=operation_summary(exc.operation or (waiter.last if waiter else None)),
            **extra,
        )
    raise exc


GROUP_URL_RE = re.compile(
    r"^(?P<root>https?://[^/?]+/(?:[^?]*/)?)v1/"
    r"(?P<path>projects/[^/]+/zones/(?P<zone>[^/]+)/instanceGroup(?:Manager)?s/[^/?]+)$"
)


class PoolSizes:
    """Reads node pool sizes from Compute Engine with the GKE client's session and credentials.

    ``read(pool)`` returns ``({zone: targetSize}, None)``, or ``(None, reason)`` when the size
    cannot be known. The token only goes to the GKE endpoint's own host, a googleapis.com host
    over https, or ``$CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE``.
    """

    def __init__(self, client) -> None:
        self.client = client
        self._clients: dict = {}

    def compute_client(self, root: str):
        override = os.environ.get(SERVICES["compute"].env)
        if override:
            root = override
        else:
            parts, ours = urlsplit(root), urlsplit(self.client.endpoint)
            same_host = (parts.scheme, parts.netloc) == (ours.scheme, ours.netloc)
            google = parts.scheme == "https" and (parts.hostname or "").endswith(".googleapis.com")
            if not (same_host or google):
                return None
        root = root.rstrip("/")
        root = (root[: -len("/v1")] if root.endswith("/v1") else root) + "/"
        if root not in self._clients:
            compute = copy.copy(self.client)  # the same session and credentials
            compute.endpoint = root
            compute.api_root = root + "v1/"
            compute.max_retries = min(self.client.max_retries, 3)
            compute.service = SERVICES["compute"]  # hints name the Compute Engine API
            self._clients[root] = compute
        return self._clients[root]

    def read(self, pool: dict) -> tuple[dict | None, str | None]:
        sizes: dict = {}
        for url in pool.get("instanceGroupUrls") or []:
            match = GROUP_URL_RE.match(url)
            compute = self.compute_client(match.group("root")) if match else None
            if compute is None:
                return None, f"{url} is not on a Compute Engine endpoint this module trusts"
            path = match.group("path").replace("/instanceGroups/", "/instanceGroupManagers/")
            try:
                answer = compute.get(path)
            except GcpApiError as exc:
                return None, exc.message
            zone = match.group("zone")
            sizes[zone] = sizes.get(zone, 0) + int(answer.get("targetSize") or 0)
        if not sizes:
            return None, "the node pool lists no instance group"
        return sizes, None
