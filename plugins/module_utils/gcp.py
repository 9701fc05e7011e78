# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared REST access to Google APIs for the collection's modules: the GKE API
(container.googleapis.com/v1), and for preflight's reads the Compute Engine API
(compute.googleapis.com/compute/v1) and the Cloud Quotas API (cloudquotas.googleapis.com/v1).

Raw REST through google-auth's ``AuthorizedSession`` (credentials from ``gcp_auth``), with:

- bounded retries, exponential backoff with jitter and a total time budget for the answers that
  are worth retrying: 429, 502, 503, 504 and 400 FAILED_PRECONDITION "... Please wait and try
  again" (another operation runs on the cluster). No other 4xx is ever retried;
- ``GcpApiError`` with the HTTP status, the gRPC status name, Google's message and a ``hint``
  saying what to do (quota, permission, stock-out, not found, already exists, credentials);
- ``wait_operation``: polls a long-running Operation until DONE, raises its ``error`` as a
  ``GcpApiError`` and raises ``GcpTimeout`` (with the last seen Operation) at the deadline.

Endpoint, per service (``GcpClient(..., service=...)``, see ``SERVICES``): the ``endpoint``
keyword, else the service's parameter (``api_endpoint`` for the GKE API, ``compute_api_endpoint``,
``quotas_api_endpoint``), else its environment variable (gcloud's convention:
``CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER``, ``..._COMPUTE``, ``..._CLOUDQUOTAS``), else
Google's (``https://container.googleapis.com/``, ``https://compute.googleapis.com/compute/``,
``https://cloudquotas.googleapis.com/``). Accepted forms: a scheme and host with an optional path
prefix, with or without a trailing slash, with or without a trailing ``v1`` (``http://h:8080``,
``http://h:8080/``, ``http://h:8080/v1``, ``http://h:8080/v1/`` and ``https://proxy/container/v1/``
are all fine); requests go to ``<endpoint without v1>/v1/<path>``.

No message built here contains a token or an Authorization header: the credentials' token is
scrubbed from every text taken from a response or an exception.
"""

from __future__ import annotations

import os
import random
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.llmd.gke.plugins.module_utils.gcp_auth import (
    WAYS_TO_AUTHENTICATE,
    load_credentials,
)
from ansible_collections.llmd.gke.plugins.module_utils.tpu import V6E_ZONES

try:
    import google.auth.exceptions
    import requests
    from google.auth.transport.requests import AuthorizedSession

    HAS_GCP_REST = True
    GCP_REST_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised when google-auth/requests are absent
    HAS_GCP_REST = False
    GCP_REST_IMPORT_ERROR = exc

DEFAULT_ENDPOINT = "https://container.googleapis.com/"
ENDPOINT_ENV = "CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER"
API_VERSION = "v1"
USER_AGENT = "llmd.gke-ansible-collection"


@dataclass(frozen=True)
class GcpService:
    """A Google API the client can call, and how its endpoint and hints are named."""

    name: str  # the service keyword of GcpClient
    host: str  # the service name for "gcloud services enable"
    label: str  # how messages name the API
    title: str  # the API's name in the console
    default_endpoint: str
    env: str  # gcloud's endpoint override variable
    param: str  # the module parameter with the endpoint
    role: str  # the predefined role that covers what the collection does with the API


SERVICES = {
    "container": GcpService(
        "container",
        "container.googleapis.com",
        "GKE API",
        "Kubernetes Engine API",
        DEFAULT_ENDPOINT,
        ENDPOINT_ENV,
        "api_endpoint",
        "roles/container.admin (Kubernetes Engine Admin)",
    ),
    "compute": GcpService(
        "compute",
        "compute.googleapis.com",
        "Compute Engine API",
        "Compute Engine API",
        "https://compute.googleapis.com/compute/",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE",
        "compute_api_endpoint",
        "roles/compute.viewer (Compute Viewer)",
    ),
    "cloudquotas": GcpService(
        "cloudquotas",
        "cloudquotas.googleapis.com",
        "Cloud Quotas API",
        "Cloud Quotas API",
        "https://cloudquotas.googleapis.com/",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDQUOTAS",
        "quotas_api_endpoint",
        "roles/cloudquotas.viewer (Cloud Quotas Viewer)",
    ),
}


def service_of(name: str) -> GcpService:
    """The GcpService called name; ValueError for an unknown one (a programming error)."""
    try:
        return SERVICES[name]
    except KeyError:
        raise ValueError(f"unknown GCP service {name!r}; known: {', '.join(SERVICES)}") from None


RETRYABLE_HTTP = (429, 502, 503, 504)
# GKE's two wordings of "another Operation holds the cluster" (400 FAILED_PRECONDITION):
# "Operation operation-X is currently <verb> cluster C. Please wait and try again once it is
# done." and "Cluster is running incompatible operation operation-X."
OPERATION_IN_PROGRESS_RE = re.compile(
    r"please wait and try again|operation .* is currently|operation .* in progress"
    r"|running incompatible operation",
    re.I,
)
BUSY_OPERATION_RE = re.compile(
    r"(?:incompatible operation|Operation)\s+(operation-[A-Za-z0-9-]+)", re.I
)
QUOTA_RE = re.compile(r"exceeds? quota|insufficient regional quota|quota .*exceeded", re.I)
STOCKOUT_RE = re.compile(
    r"does not have enough resources available|ZONE_RESOURCE_POOL_EXHAUSTED|stockout", re.I
)


def busy_operation(error: GcpApiError) -> str | None:
    """For GKE's "another Operation holds the cluster" answer (either wording): the name of
    that Operation ("" when the message names none); None for any other error."""
    if not (
        error.status == 400
        and error.grpc_status == "FAILED_PRECONDITION"
        and OPERATION_IN_PROGRESS_RE.search(error.message or "")
    ):
        return None
    match = BUSY_OPERATION_RE.search(error.message or "")
    return match.group(1) if match else ""


BEARER_RE = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.I)

GRPC_NAMES = {
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}
# The HTTP status Google maps each gRPC status to (for errors found inside an Operation).
GRPC_TO_HTTP = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INTERNAL": 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


class GcpApiError(Exception):
    """A GCP API call or Operation failed.

    ``status`` is the HTTP status (for an Operation error, the one Google maps its code to),
    ``grpc_status`` the status name (PERMISSION_DENIED...), ``message`` Google's message,
    ``hint`` what to do about it (may be None), ``operation`` the failed Operation if any.
    ``str()`` gives the message followed by the hint.
    """

    def __init__(
        self,
        message: str,
        status: int | None = None,
        grpc_status: str | None = None,
        hint: str | None = None,
        *,
        method: str | None = None,
        url: str | None = None,
        operation: dict | None = None,
        attempts: int = 1,
    ) -> None:
        self.message = message
        self.status = status
        self.grpc_status = grpc_status
        self.hint = hint
        self.method = method
        self.url = url
        self.operation = operation
        self.attempts = attempts
        super().__init__(self.full_message())

    def full_message(self) -> str:
        where = f"{self.method} {self.url}: " if self.method and self.url else ""
        code = ", ".join(str(x) for x in (self.status, self.grpc_status) if x is not None)
        text = f"{where}{self.message}" + (f" ({code})" if code else "")
        if self.attempts > 1:
            text += f" [after {self.attempts} attempts]"
        return f"{text} {self.hint}" if self.hint else text

    def to_dict(self) -> dict:
        """For a module's fail_json: no secret, only what was reported."""
        return {
            "status": self.status,
            "grpc_status": self.grpc_status,
            "message": self.message,
            "hint": self.hint,
        }


class GcpTimeout(Exception):
    """An Operation was not DONE by the deadline; ``operation`` is the last one seen."""

    def __init__(self, message: str, operation: dict, elapsed: float, timeout: float) -> None:
        super().__init__(message)
        self.message = message
        self.operation = operation
        self.elapsed = elapsed
        self.timeout = timeout


# --------------------------------------------------------------------------- endpoint
def normalize_endpoint(value: str | None, service: str = "container") -> str:
    """The API root without the version, ending with one slash (see the module docstring)."""
    svc = service_of(service)
    endpoint = (value or "").strip() or svc.default_endpoint
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise GcpApiError(
            f"Invalid {svc.label} endpoint {endpoint!r}",
            hint=f"Give a URL such as {svc.default_endpoint} ({svc.param} or "
            f"{svc.env}); a trailing v1/ is optional.",
        )
    path = re.sub(r"/{2,}", "/", parts.path).strip("/")
    if path == API_VERSION or path.endswith("/" + API_VERSION):
        path = path[: -len(API_VERSION)].rstrip("/")
    root = f"{parts.scheme}://{parts.netloc}/"
    return f"{root}{path}/" if path else root


def endpoint_from(params: dict, service: str = "container", endpoint: str | None = None) -> str:
    """endpoint, else the service's param (api_endpoint...), else its environment variable
    ($CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER...), else Google's."""
    svc = service_of(service)
    return normalize_endpoint(endpoint or params.get(svc.param) or os.environ.get(svc.env), service)


def region_of(location: str | None) -> str | None:
    """europe-west4-a -> europe-west4; a region stays as it is."""
    if not location:
        return None
    if re.match(r"^[a-z]+-[a-z]+\d+-[a-z]$", location):
        return location.rsplit("-", 1)[0]
    return location


# --------------------------------------------------------------------------- hints
def _location_in(text: str | None) -> str | None:
    match = re.search(r"/(?:locations|zones)/([^/:?]+)", text or "")
    return match.group(1) if match else None


def _project_in(text: str | None) -> str | None:
    match = re.search(r"projects/([^/:?]+)", text or "")
    return match.group(1) if match else None


def _quota_hint(message: str, project: str | None, location: str | None) -> str:
    metric = None
    for pattern in (
        r'resource "([A-Z0-9_-]+)"',
        r"Quota '([A-Za-z0-9_-]+)' exceeded",
        r"quota metric '([^']+)'",
        r"([A-Z][A-Z0-9_]{3,}) quota",
    ):
        match = re.search(pattern, message)
        if match:
            metric = match.group(1)
            break
    region_match = re.search(r"\bin region ([a-z]+-[a-z]+\d+)", message)
    region = region_match.group(1) if region_match else region_of(location)
    console = "https://console.cloud.google.com/iam-admin/quotas" + (
        f"?project={project}" if project else ""
    )
    return (
        f"Quota is too low: request a quota increase in the Google Cloud console ({console}) "
        f"for {metric or 'the metric named above'} in {region or 'the region of the location'}, "
        "or lower the node pool's max node count (or slice size) so the request fits the quota."
    )


SERVICE_DISABLED_RE = re.compile(r"has not been used in project|is disabled|SERVICE_DISABLED")
PERMISSION_NAME_RE = re.compile(
    r"\b((?:container|compute|cloudquotas|iam|serviceusage)\.(?!googleapis\b)[a-zA-Z]+\.[a-zA-Z]+)\b"
)


def is_service_disabled(message: str | None) -> bool:
    """Whether a 403 message says that the API is not enabled in the project."""
    return bool(SERVICE_DISABLED_RE.search(message or ""))


def _permission_hint(
    message: str, project: str | None, principal: str | None, service: str = "container"
) -> str:
    svc = service_of(service)
    if is_service_disabled(message):
        return (
            f"Enable the {svc.title}: gcloud services enable {svc.host}"
            + (f" --project {project}" if project else "")
            + ", wait a minute, then run again."
        )
    match = PERMISSION_NAME_RE.search(message)
    needed = f"the permission {match.group(1)}" if match else "the missing permission"
    who = principal or "the credentials' principal"
    where = f" on project {project}" if project else ""
    extra = (
        "; node pools also need roles/iam.serviceAccountUser on the nodes' service account"
        if svc.name == "container"
        else ""
    )
    return (
        f"Permission denied: grant {who} {svc.role}{where}, or a role with {needed}{extra}. "
        "Check the project is the one you meant."
    )


def _not_found_hint(project: str | None, location: str | None, service: str) -> str:
    in_project = f" ({project})" if project else ""
    if service == "compute":
        return (
            f"Not found: check the project{in_project}, the zone or region"
            + (f" ({location})" if location else "")
            + " and the resource name (a machine type the zone does not offer is not found too)."
        )
    if service == "cloudquotas":
        return (
            f"Not found: check the project{in_project}, the service and the quota id (ids differ "
            "between services; 'gcloud beta quotas info list --service=SERVICE' lists them)."
        )
    return (
        f"Not found: check the project{in_project}, the location"
        + (f" ({location})" if location else "")
        + " (zone or region, as the resource was created) and the cluster/node pool name."
    )


def _stockout_hint(location: str | None) -> str:
    others = [z for z in V6E_ZONES if z != location]
    return (
        f"The zone{' ' + location if location else ''} has no capacity for this machine type "
        "right now (a stock-out, not a quota problem). Try another zone reported with TPU v6e "
        f"({', '.join(others)}; check availability first), use a reservation, spot VMs or a "
        "smaller slice; or try again later."
    )


STOCKOUT_LOCK_NOTE = (
    "GKE keeps retrying the node pool create on its side (for up to tens of minutes; the "
    "Operation cannot be cancelled) and keeps the cluster locked until its own retries end: "
    "other changes to the cluster answer 'incompatible operation' meanwhile. Follow it with "
    "'gcloud container operations list --filter=status=RUNNING'; once it has failed, delete the "
    "pool in ERROR (state: absent) before creating it elsewhere."
)


def stockout_error(operation: dict, message: str, location: str | None) -> GcpApiError:
    """The GcpApiError for a node pool create that meets a stock-out while it still runs."""
    return GcpApiError(
        f"Operation {operation.get('name')} ({operation.get('operationType', 'operation')} "
        f"{operation.get('targetLink', '')}) meets a stock-out: {message}",
        429,
        "RESOURCE_EXHAUSTED",
        f"{_stockout_hint(location)} {STOCKOUT_LOCK_NOTE}",
        operation=operation,
    )


def hint_for(
    status: int | None,
    grpc_status: str | None,
    message: str,
    *,
    project: str | None = None,
    location: str | None = None,
    principal: str | None = None,
    in_operation: bool = False,
    service: str = "container",
) -> str | None:
    """What to do about an error, or None when there is nothing better than Google's message.

    ``service`` (a key of SERVICES) names the API in the hints: which API to enable, which role
    to grant.
    """
    svc = service_of(service)
    message = message or ""
    if STOCKOUT_RE.search(message):
        return _stockout_hint(location)
    if QUOTA_RE.search(message):
        return _quota_hint(message, project, location)
    if status == 401 or grpc_status == "UNAUTHENTICATED":
        return (
            "The credentials were rejected (missing, invalid or expired token). "
            + WAYS_TO_AUTHENTICATE
        )
    if status == 403 or grpc_status == "PERMISSION_DENIED":
        return _permission_hint(message, project, principal, service)
    if in_operation and grpc_status == "RESOURCE_EXHAUSTED":
        return _stockout_hint(location)
    if status == 404 or grpc_status == "NOT_FOUND":
        return _not_found_hint(project, location, svc.name)
    if status == 409 or grpc_status == "ALREADY_EXISTS":
        return (
            "It already exists: read and adopt the existing resource, choose another name, or "
            "delete the existing one first."
        )
    if (status == 429 or grpc_status == "RESOURCE_EXHAUSTED") and svc.name != "container":
        return f"Too many requests to the {svc.label}: wait a minute and run again."
    if status == 429 or grpc_status == "RESOURCE_EXHAUSTED":
        return (
            "Too many requests or concurrent operations in this project: wait for running "
            "operations to finish (gcloud container operations list) and run again."
        )
    if grpc_status == "FAILED_PRECONDITION" and OPERATION_IN_PROGRESS_RE.search(message):
        return (
            "Another operation is running on this cluster: wait for it to finish "
            "(gcloud container operations list) and run again."
        )
    if status in (500, 502, 503, 504) or grpc_status in ("UNAVAILABLE", "INTERNAL"):
        return f"The {svc.label} had a transient failure: run again in a few minutes."
    if status == 400 or grpc_status in ("INVALID_ARGUMENT", "FAILED_PRECONDITION"):
        return "The request was rejected: check the settings named in the message."
    return None


# --------------------------------------------------------------------------- client
class GcpClient:
    """Authorized REST calls to a Google API with retries, error hints and Operation waiting.

    ``params`` are module parameters with the gcp_auth options (auth_kind, access_token,
    project, ...) and optionally the service's endpoint parameter (``api_endpoint`` for the GKE
    API). ``service`` picks the API (a key of SERVICES: ``container``, the default, ``compute``,
    ``cloudquotas``); ``endpoint`` overrides the endpoint from params and environment.
    ``module`` (an AnsibleModule) is optional: with it, a missing library fails the module with
    the usual message and retries are logged with ``module.debug``. Retry settings are keyword
    arguments (small values in tests). Operation waiting is the GKE API's (container).
    """

    def __init__(
        self,
        params: dict,
        module=None,
        *,
        service: str = "container",
        endpoint: str | None = None,
        max_retries: int = 6,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        retry_budget: float = 180.0,
        request_timeout: float = 60.0,
    ) -> None:
        self.module = module
        self.service = service_of(service)
        if not HAS_GCP_REST:
            if module is not None:
                module.fail_json(
                    msg=missing_required_lib("google-auth and requests"),
                    exception=str(GCP_REST_IMPORT_ERROR),
                )
            raise GcpApiError(
                f"google-auth and requests are required: {GCP_REST_IMPORT_ERROR}",
                hint="pip install google-auth requests",
            )
        self.endpoint = endpoint_from(params, service, endpoint)
        self.api_root = f"{self.endpoint}{API_VERSION}/"
        self.gcp_credentials = load_credentials(params)
        self.project = self.gcp_credentials.project
        self.location = params.get("location") or params.get("zone")
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_budget = retry_budget
        self.request_timeout = request_timeout
        self.session = AuthorizedSession(self.gcp_credentials.credentials)
        self.session.headers["User-Agent"] = USER_AGENT

    # ----------------------------------------------------------------- helpers
    def url(self, path: str) -> str:
        """The absolute URL for a path relative to the v1 root (or an absolute URL on it)."""
        if re.match(r"^https?://", path):
            if not path.startswith(self.endpoint):
                # The session would send the token to any host: stay on the endpoint.
                raise GcpApiError(
                    f"Refusing to call {self._redact_url(path)}: it is not on the API endpoint "
                    f"{self.endpoint}",
                    hint="Pass a path relative to the API root.",
                )
            return path
        path = path.lstrip("/")
        if path.startswith(API_VERSION + "/"):
            path = path[len(API_VERSION) + 1 :]
        return self.api_root + path

    @staticmethod
    def _redact_url(url: str) -> str:
        return url.split("?", 1)[0]

    def scrub(self, text: str) -> str:
        """Remove any token from a text that will be shown."""
        text = BEARER_RE.sub(r"\1<redacted>", text or "")
        token = getattr(self.gcp_credentials.credentials, "token", None)
        if token:
            text = text.replace(token, "<redacted>")
        return text

    def _log(self, text: str) -> None:
        if self.module is not None:
            self.module.debug(text)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with equal jitter: half fixed, half random."""
        cap = min(self.backoff_max, self.backoff_base * (2**attempt))
        return cap / 2 + random.uniform(0, cap / 2)

    @staticmethod
    def _retry_after(response) -> float | None:
        value = response.headers.get("Retry-After") if response is not None else None
        try:
            return float(value) if value else None
        except ValueError:
            return None

    def error_from_response(self, method: str, url: str, response, attempts: int = 1):
        """A GcpApiError from an error answer in Google's format (or any other body)."""
        status = response.status_code
        grpc_status = None
        message = None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            grpc_status = error.get("status")
            message = error.get("message")
        if not message:
            message = (response.text or "").strip()[:500] or response.reason or f"HTTP {status}"
        message = self.scrub(str(message))
        location = _location_in(url) or self.location
        project = _project_in(url) or self.project
        return GcpApiError(
            message,
            status,
            grpc_status,
            hint_for(
                status,
                grpc_status,
                message,
                project=project,
                location=location,
                principal=self.gcp_credentials.principal,
                service=self.service.name,
            ),
            method=method,
            url=self._redact_url(url),
            attempts=attempts,
        )

    @staticmethod
    def is_retryable(error: GcpApiError) -> bool:
        if error.status in RETRYABLE_HTTP:
            return True
        return (
            error.status == 400
            and error.grpc_status == "FAILED_PRECONDITION"
            and bool(OPERATION_IN_PROGRESS_RE.search(error.message))
        )

    # ----------------------------------------------------------------- requests
    def request(
        self,
        method: str,
        path: str,
        json=None,
        params=None,
        *,
        retry_budget: float | None = None,
        retry_busy: bool = True,
    ):
        """Call the API and return the parsed JSON answer ({} for an empty body).

        Retries 429/502/503/504 and "operation in progress" (400 FAILED_PRECONDITION, unless
        ``retry_busy`` is false: the caller waits for that Operation itself) up to max_retries
        times within retry_budget seconds; raises GcpApiError otherwise.
        """
        method = method.upper()
        url = self.url(path)
        shown = self._redact_url(url)
        budget = self.retry_budget if retry_budget is None else retry_budget
        start = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            response = None
            try:
                response = self.session.request(
                    method, url, json=json, params=params, timeout=self.request_timeout
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                # A GET is safe to repeat; a mutation only when it never reached the server.
                safe = method == "GET" or isinstance(exc, requests.ConnectTimeout)
                error = GcpApiError(
                    self.scrub(f"{type(exc).__name__}: {exc}"),
                    hint=f"Check that the API endpoint {self.endpoint} is reachable (network, "
                    f"proxy, {self.service.param} / {self.service.env}).",
                    method=method,
                    url=shown,
                    attempts=attempt,
                )
                retryable = safe
            except google.auth.exceptions.GoogleAuthError as exc:
                # The session refreshes the credentials first, and again on a 401.
                raise GcpApiError(
                    self.scrub(f"GCP credentials could not be refreshed: {exc}"),
                    401,
                    "UNAUTHENTICATED",
                    hint_for(401, "UNAUTHENTICATED", ""),
                    method=method,
                    url=shown,
                    attempts=attempt,
                ) from exc
            else:
                if response.status_code < 400:
                    if not response.content:
                        return {}
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise GcpApiError(
                            self.scrub(f"The answer is not JSON: {(response.text or '')[:200]!r}"),
                            response.status_code,
                            hint=f"Check that the API endpoint points at the {self.service.label}.",
                            method=method,
                            url=shown,
                        ) from exc
                error = self.error_from_response(method, url, response, attempt)
                retryable = self.is_retryable(error) and (
                    retry_busy or busy_operation(error) is None
                )
            if not retryable or attempt > self.max_retries:
                raise error
            delay = self.backoff(attempt - 1)
            retry_after = self._retry_after(response)
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.backoff_max))
            if time.monotonic() - start + delay > budget:
                error.hint = (
                    f"Gave up retrying after {time.monotonic() - start:.1f} s (budget "
                    f"{budget:.0f} s). " + (error.hint or "")
                ).strip()
                raise error
            self._log(
                f"GCP {method} {shown}: {error.status} {error.grpc_status or ''}; retry "
                f"{attempt}/{self.max_retries} in {delay:.2f} s"
            )
            time.sleep(delay)

    def get(self, path: str, params=None):
        return self.request("GET", path, params=params)

    def post(self, path: str, json=None):
        return self.request("POST", path, json=json)

    def put(self, path: str, json=None):
        return self.request("PUT", path, json=json)

    def delete(self, path: str):
        return self.request("DELETE", path)

    def get_or_none(self, path: str):
        """The resource, or None when the API answers 404."""
        try:
            return self.get(path)
        except GcpApiError as exc:
            if exc.status == 404:
                return None
            raise

    # ----------------------------------------------------------------- operations
    def operation_path(self, operation: dict) -> str:
        """Where to poll an Operation: its selfLink when on this endpoint, else a built path."""
        link = operation.get("selfLink") or ""
        if link.startswith(self.api_root):
            return link
        name = operation.get("name") or ""
        if not name:
            raise GcpApiError("The Operation has no name; it cannot be polled.")
        if name.startswith("projects/"):
            return name
        project = _project_in(link) or self.project
        location = operation.get("location") or _location_in(link) or self.location
        if not project or not location:
            raise GcpApiError(
                f"Cannot poll Operation {name}: the project or the location is unknown.",
                hint="Set project (GCP_PROJECT) and the location.",
            )
        return f"projects/{project}/locations/{location}/operations/{name}"

    def operation_error(self, operation: dict) -> GcpApiError:
        """The GcpApiError for an Operation DONE with ``error`` (google.rpc.Status)."""
        error = operation.get("error") or {}
        code = error.get("code")
        grpc_status = GRPC_NAMES.get(code, str(code) if code is not None else None)
        message = self.scrub(
            str(error.get("message") or operation.get("detail") or "Operation failed.")
        )
        link = operation.get("selfLink") or ""
        location = (
            _location_in(operation.get("targetLink"))
            or operation.get("location")
            or _location_in(link)
            or self.location
        )
        project = _project_in(link) or self.project
        what = " ".join(
            x for x in (operation.get("operationType"), operation.get("targetLink")) if x
        )
        return GcpApiError(
            f"Operation {operation.get('name')}{' (' + what + ')' if what else ''} failed: "
            f"{message}",
            GRPC_TO_HTTP.get(grpc_status or ""),
            grpc_status,
            hint_for(
                GRPC_TO_HTTP.get(grpc_status or ""),
                grpc_status,
                message,
                project=project,
                location=location,
                principal=self.gcp_credentials.principal,
                in_operation=True,
            ),
            operation=operation,
        )

    def wait_operation(
        self,
        operation: dict,
        timeout: float,
        poll_interval: float = 5.0,
        progress=None,
    ) -> dict:
        """Poll until the Operation is DONE; return it, or raise GcpApiError / GcpTimeout.

        ``progress(op, elapsed)`` is called after each poll (elapsed seconds since the start).
        """
        start = time.monotonic()
        deadline = start + timeout
        path = self.operation_path(operation)
        current = operation
        while current.get("status") != "DONE":
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timeout(current, time.monotonic() - start, timeout)
            time.sleep(min(poll_interval, remaining))
            current = self.request("GET", path, retry_budget=max(deadline - time.monotonic(), 0))
            if progress is not None:
                progress(current, time.monotonic() - start)
        if current.get("error"):
            raise self.operation_error(current)
        return current

    def _timeout(self, operation: dict, elapsed: float, timeout: float) -> GcpTimeout:
        name = operation.get("name", "?")
        location = (
            operation.get("location") or _location_in(operation.get("selfLink")) or self.location
        )
        what = " ".join(
            x for x in (operation.get("operationType"), operation.get("targetLink")) if x
        )
        message = (
            f"Operation {name}{' (' + what + ')' if what else ''} is still "
            f"{operation.get('status', 'unknown')} after {elapsed:.0f} s (timeout {timeout:.0f} "
            "s). It goes on in Google Cloud: check it with 'gcloud container operations describe "
            f"{name}" + (f" --location {location}" if location else "") + "', then run again "
            "(the run picks up where it stopped) or raise the timeout."
        )
        return GcpTimeout(message, operation, elapsed, timeout)
