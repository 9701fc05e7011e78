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
    GcpApiError,
    GcpTimeout,
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
    "statusMessage",
    "targetLink",
    "startTime",
    "endTime",
    "error",
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
    """projects/p/locations/l/clusters/c[/nodePools/np] from an Operation's targetLink."""
    link = operation.get("targetLink") or ""
    index = link.find("projects/")
    return link[index:] if index >= 0 else link


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
        """Operations not DONE whose target is ``path`` or below it (a cluster's node pools)."""
        answer = self.client.get(f"projects/{project}/locations/{location}/operations")
        found = []
        for operation in answer.get("operations") or []:
            if operation.get("status") == "DONE":
                continue
            target = target_path(operation)
            if target == path or target.startswith(path + "/"):
                found.append(operation)
        return found

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
        self.last = operation


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
