# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GCP credentials for the collection's modules, through google-auth.

The option names are those of the google.cloud collection (auth_kind, service_account_file,
service_account_contents, access_token, scopes, project) and so are their environment fallbacks
(GCP_AUTH_KIND, GCP_SERVICE_ACCOUNT_FILE, ...), so users keep what they know.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from ansible.module_utils.basic import env_fallback

try:
    import google.auth
    import google.auth.credentials
    import google.auth.exceptions
    import google.oauth2.credentials
    import google.oauth2.service_account
    from google.auth import compute_engine

    HAS_GOOGLE_AUTH = True
    GOOGLE_AUTH_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised when google-auth is absent
    HAS_GOOGLE_AUTH = False
    GOOGLE_AUTH_IMPORT_ERROR = exc

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"

GCP_AUTH_ARG_SPEC = dict(
    auth_kind=dict(
        type="str",
        default="application",
        choices=["application", "serviceaccount", "accesstoken", "machineaccount"],
        fallback=(env_fallback, ["GCP_AUTH_KIND"]),
    ),
    service_account_file=dict(type="path", fallback=(env_fallback, ["GCP_SERVICE_ACCOUNT_FILE"])),
    service_account_contents=dict(
        type="jsonarg", no_log=True, fallback=(env_fallback, ["GCP_SERVICE_ACCOUNT_CONTENTS"])
    ),
    service_account_email=dict(type="str", fallback=(env_fallback, ["GCP_SERVICE_ACCOUNT_EMAIL"])),
    access_token=dict(type="str", no_log=True, fallback=(env_fallback, ["GCP_ACCESS_TOKEN"])),
    scopes=dict(
        type="list",
        elements="str",
        default=[CLOUD_PLATFORM_SCOPE],
        fallback=(env_fallback, ["GCP_SCOPES"]),
    ),
    project=dict(type="str", fallback=(env_fallback, ["GCP_PROJECT"])),
)

GCP_AUTH_MUTUALLY_EXCLUSIVE = [("service_account_file", "service_account_contents")]

WAYS_TO_AUTHENTICATE = (
    "Provide GCP credentials in one of these ways: "
    "set GOOGLE_APPLICATION_CREDENTIALS to a service account key file; "
    "run 'gcloud auth application-default login'; "
    "run on GCE/GKE/Cloud Shell with an attached service account (metadata server); "
    "or set auth_kind=serviceaccount with service_account_file (GCP_SERVICE_ACCOUNT_FILE), "
    "or auth_kind=accesstoken with access_token (GCP_ACCESS_TOKEN)."
)


class GcpAuthError(Exception):
    """Credentials could not be found or loaded; the message says how to provide them."""


@dataclass
class GcpCredentials:
    """Loaded credentials and a description that carries no secret."""

    credentials: object
    auth_kind: str
    source: str
    principal: str | None
    project: str | None

    def describe(self) -> dict:
        return {
            "auth_kind": self.auth_kind,
            "source": self.source,
            "principal": self.principal,
            "project": self.project,
        }


def _principal(credentials) -> str | None:
    email = getattr(credentials, "service_account_email", None)
    if email and email != "default":
        return email
    return None


def _describe_default(credentials) -> str:
    env_file = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if env_file:
        return f"GOOGLE_APPLICATION_CREDENTIALS ({env_file})"
    if isinstance(credentials, compute_engine.Credentials):
        return "metadata server (attached service account)"
    if isinstance(credentials, google.oauth2.credentials.Credentials):
        return "gcloud application-default credentials (user)"
    if isinstance(credentials, google.oauth2.service_account.Credentials):
        return "gcloud application-default credentials (service account)"
    return f"application default credentials ({type(credentials).__name__})"


def load_credentials(params: dict) -> GcpCredentials:
    """Load credentials as the module options ask, without any network call."""
    if not HAS_GOOGLE_AUTH:
        raise GcpAuthError(f"google-auth is required: {GOOGLE_AUTH_IMPORT_ERROR}")
    kind = params["auth_kind"]
    scopes = params.get("scopes") or [CLOUD_PLATFORM_SCOPE]
    project = params.get("project")
    sa_class = google.oauth2.service_account.Credentials
    try:
        if kind == "application":
            credentials, found_project = google.auth.default(scopes=scopes)
            return GcpCredentials(
                credentials,
                kind,
                _describe_default(credentials),
                _principal(credentials),
                project or found_project,
            )
        if kind == "serviceaccount":
            path = params.get("service_account_file")
            contents = params.get("service_account_contents")
            if contents:
                info = json.loads(contents) if isinstance(contents, str) else contents
                credentials = sa_class.from_service_account_info(info, scopes=scopes)
                source = "service_account_contents"
            elif path:
                if not os.path.isfile(path):
                    raise GcpAuthError(
                        f"service_account_file {path} does not exist. Download a key for the "
                        "service account (IAM > Service accounts > Keys) or point "
                        "GCP_SERVICE_ACCOUNT_FILE at it."
                    )
                credentials = sa_class.from_service_account_file(path, scopes=scopes)
                source = f"service_account_file ({path})"
            else:
                raise GcpAuthError(
                    "auth_kind=serviceaccount needs service_account_file or "
                    "service_account_contents (GCP_SERVICE_ACCOUNT_FILE / "
                    "GCP_SERVICE_ACCOUNT_CONTENTS)."
                )
            return GcpCredentials(
                credentials,
                kind,
                source,
                credentials.service_account_email,
                project or getattr(credentials, "project_id", None),
            )
        if kind == "accesstoken":
            token = params.get("access_token")
            if not token:
                raise GcpAuthError(
                    "auth_kind=accesstoken needs access_token (GCP_ACCESS_TOKEN), for example "
                    "from 'gcloud auth print-access-token'."
                )
            credentials = google.oauth2.credentials.Credentials(token=token)
            return GcpCredentials(credentials, kind, "access_token", None, project)
        # machineaccount: the metadata server of the machine this runs on.
        email = params.get("service_account_email") or "default"
        credentials = compute_engine.Credentials(service_account_email=email, scopes=scopes)
        return GcpCredentials(
            credentials, kind, "metadata server", _principal(credentials), project
        )
    except google.auth.exceptions.MalformedError as exc:
        raise GcpAuthError(
            f"GCP credentials could not be loaded (auth_kind={kind}): {exc}. "
            "Check that the key is a service account key in JSON format."
        ) from exc
    except google.auth.exceptions.DefaultCredentialsError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GcpAuthError(
            f"No GCP credentials found (auth_kind={kind}): {first_line} {WAYS_TO_AUTHENTICATE}"
        ) from exc
    except (ValueError, KeyError, google.auth.exceptions.GoogleAuthError) as exc:
        raise GcpAuthError(
            f"GCP credentials could not be loaded (auth_kind={kind}): {exc}. "
            "Check that the key is a service account key in JSON format."
        ) from exc
