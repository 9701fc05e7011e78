# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A kubeconfig for a GKE cluster, written without gcloud (module gke_kubeconfig).

The cluster's ``endpoint`` and ``masterAuth.clusterCaCertificate`` come from the GKE API
(``GET projects/P/locations/L/clusters/C``). Three entries named like gcloud's
(``gke_PROJECT_LOCATION_CLUSTER``) go into the file: a cluster (server + CA), a user and a
context. The user authenticates either with the ``gke-gcloud-auth-plugin`` exec plugin (as
``gcloud container clusters get-credentials`` writes it) or with a google-auth access token
written into the entry (it expires after about an hour; run the module again to refresh it).

Pure functions build the entries, merge them into a kubeconfig dict (other entries and keys
are kept), remove them, and compare two kubeconfigs on our entries with the token masked:
``changed`` ignores a token that only got refreshed. ``KubeconfigRunner`` is one module run.
No function here returns, logs or puts into a message the token.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field

from ansible_collections.llmd.gke.plugins.module_utils.gcp_auth import (
    GcpAuthError,
    load_credentials,
)
from ansible_collections.llmd.gke.plugins.module_utils.gke_ops import (
    GKE_COMMON_ARG_SPEC,
    conditions_text,
    degraded_warning,
)

try:
    import yaml

    HAS_YAML = True
    YAML_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised when PyYAML is absent
    HAS_YAML = False
    YAML_IMPORT_ERROR = exc

PLUGIN_NAME = "gke-gcloud-auth-plugin"
PLUGIN_ADC_ARG = "--use_application_default_credentials"
EXEC_API_VERSION = "client.authentication.k8s.io/v1beta1"
INSTALL_HINT = (
    "Install gke-gcloud-auth-plugin for use with kubectl by following "
    "https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl"
    "#install_plugin"
)
FILE_MODE = 0o600
DIR_MODE = 0o700
MASK = "<token>"  # what comparisons and messages show instead of a token
# Statuses whose endpoint serves: RECONCILING is a cluster or node pool change in progress.
USABLE_STATUSES = ("RUNNING", "RECONCILING", "DEGRADED")
ENTRY_LISTS = ("clusters", "users", "contexts")

KUBECONFIG_ARG_SPEC = dict(
    api_endpoint=GKE_COMMON_ARG_SPEC["api_endpoint"],
    location=dict(type="str", required=True, aliases=["zone"]),
    cluster=dict(type="str", required=True),
    path=dict(type="path", required=True),
    context_name=dict(type="str"),
    auth=dict(type="str", default="auto", choices=["auto", "plugin", "token"]),
    auth_plugin_path=dict(type="path"),
    auth_plugin_credentials=dict(
        type="str", default="auto", choices=["auto", "application", "gcloud"]
    ),
    private_endpoint=dict(type="bool", default=False),
    set_current_context=dict(type="bool", default=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
)


class KubeconfigError(Exception):
    """The kubeconfig cannot be written as asked; the message says why and what to do."""

    def __init__(self, message: str, **details) -> None:
        super().__init__(message)
        self.details = details


# --------------------------------------------------------------------------- entries
@dataclass(frozen=True)
class Connection:
    """What our three entries say. ``token`` is never shown (repr=False)."""

    name: str
    server: str
    ca_data: str
    auth: str  # plugin | token
    token: str | None = field(default=None, repr=False)
    plugin_command: str | None = None
    plugin_args: tuple[str, ...] = ()
    plugin_env: tuple[tuple[str, str], ...] = ()


def default_context_name(project: str, location: str, cluster: str) -> str:
    """The name gcloud gives the cluster, user and context entries."""
    return f"gke_{project}_{location}_{cluster}"


def server_url(endpoint: str) -> str:
    """https://ENDPOINT (an IP address or host, with an optional port) for the cluster entry."""
    endpoint = (endpoint or "").strip().rstrip("/")
    if re.match(r"^https?://", endpoint):
        return endpoint
    if endpoint.count(":") > 1 and not endpoint.startswith("["):
        endpoint = f"[{endpoint}]"  # a bare IPv6 address
    return f"https://{endpoint}"


PEM_RE = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)


def ca_fingerprint(ca_data: str) -> str:
    """SHA-256 fingerprint (AB:CD:...) of the first certificate of base64-encoded PEM data, as
    ``openssl x509 -noout -fingerprint -sha256`` shows it. ValueError when it is no PEM."""
    try:
        pem = base64.b64decode(ca_data or "", validate=False).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ValueError("the CA is not base64-encoded PEM") from exc
    match = PEM_RE.search(pem)
    if not match:
        raise ValueError("the CA holds no PEM certificate")
    try:
        der = base64.b64decode("".join(match.group(1).split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the CA certificate is not valid base64") from exc
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _fingerprint_or_none(ca_data) -> str | None:
    try:
        return ca_fingerprint(ca_data) if ca_data else None
    except ValueError:
        return None


def cluster_entry(conn: Connection) -> dict:
    return {
        "name": conn.name,
        "cluster": {"certificate-authority-data": conn.ca_data, "server": conn.server},
    }


def user_entry(conn: Connection) -> dict:
    if conn.auth == "token":
        return {"name": conn.name, "user": {"token": conn.token}}
    exec_config: dict = {"apiVersion": EXEC_API_VERSION, "command": conn.plugin_command}
    if conn.plugin_args:
        exec_config["args"] = list(conn.plugin_args)
    if conn.plugin_env:
        exec_config["env"] = [{"name": k, "value": v} for k, v in conn.plugin_env]
    exec_config["installHint"] = INSTALL_HINT
    exec_config["provideClusterInfo"] = True
    return {"name": conn.name, "user": {"exec": exec_config}}


def context_entry(conn: Connection, namespace: str | None = None) -> dict:
    context = {"cluster": conn.name, "user": conn.name}
    if namespace:
        context["namespace"] = namespace
    return {"name": conn.name, "context": context}


# --------------------------------------------------------------------------- kubeconfig dicts
def new_config() -> dict:
    """An empty kubeconfig, keys in kubectl's order."""
    return {
        "apiVersion": "v1",
        "clusters": [],
        "contexts": [],
        "current-context": "",
        "kind": "Config",
        "preferences": {},
        "users": [],
    }


def check_config(config, path: str = "the kubeconfig") -> dict:
    """The kubeconfig dict (None/empty file -> {}), or KubeconfigError when it is not one."""
    if config is None:
        return {}
    fix = f"Point path at another file, or fix or remove {path}."
    if not isinstance(config, dict):
        raise KubeconfigError(f"{path} is not a kubeconfig (a YAML mapping was expected). {fix}")
    if config.get("kind") not in (None, "Config"):
        raise KubeconfigError(
            f"{path} is not a kubeconfig (kind is {config.get('kind')!r}, not Config). {fix}"
        )
    for key in ENTRY_LISTS:
        entries = config.get(key)
        if entries is None:
            continue
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str) for e in entries
        ):
            raise KubeconfigError(f"{path}: {key} is not a list of named entries. {fix}")
    return config


def find_entry(config: dict | None, key: str, name: str) -> dict | None:
    for entry in (config or {}).get(key) or []:
        if entry.get("name") == name:
            return entry
    return None


def _put(entries: list, entry: dict) -> list:
    """entries with entry replacing the one of the same name in place, or appended."""
    for index, old in enumerate(entries):
        if old.get("name") == entry["name"]:
            return [*entries[:index], entry, *entries[index + 1 :]]
    return [*entries, entry]


def merge(config: dict | None, conn: Connection, set_current: bool = True) -> dict:
    """A copy of config with our cluster, user and context entries added or replaced.

    Everything else is kept, including a namespace set on our context. current-context becomes
    ours only with set_current.
    """
    merged = copy.deepcopy(config) if config else new_config()
    for key, value in new_config().items():
        merged.setdefault(key, value)
    old_context = (find_entry(merged, "contexts", conn.name) or {}).get("context") or {}
    namespace = old_context.get("namespace") if isinstance(old_context, dict) else None
    for key in ENTRY_LISTS:
        merged[key] = list(merged.get(key) or [])
    merged["clusters"] = _put(merged["clusters"], cluster_entry(conn))
    merged["users"] = _put(merged["users"], user_entry(conn))
    merged["contexts"] = _put(merged["contexts"], context_entry(conn, namespace))
    if set_current:
        merged["current-context"] = conn.name
    return merged


def remove(config: dict | None, name: str) -> dict:
    """A copy of config without our context, and without our cluster and user entries unless
    another context still uses them. current-context is emptied when it was ours."""
    removed = copy.deepcopy(config) if config else {}
    contexts = [c for c in removed.get("contexts") or [] if c.get("name") != name]
    used = {"clusters": set(), "users": set()}
    for entry in contexts:
        context = entry.get("context") or {}
        if isinstance(context, dict):
            used["clusters"].add(context.get("cluster"))
            used["users"].add(context.get("user"))
    if "contexts" in removed:
        removed["contexts"] = contexts
    for key in ("clusters", "users"):
        if key in removed:
            removed[key] = [
                e
                for e in removed.get(key) or []
                if e.get("name") != name or e.get("name") in used[key]
            ]
    if removed.get("current-context") == name:
        removed["current-context"] = ""
    return removed


def is_empty(config: dict) -> bool:
    """Whether nothing but empty defaults is left (the file can go)."""
    empty = new_config()
    return all(
        not value or (key in empty and value == empty[key])
        for key, value in config.items()
        if key not in ("apiVersion", "kind")
    )


def auth_method(user_entry_: dict | None) -> str | None:
    """plugin, token, other, or None when there is no user entry."""
    if user_entry_ is None:
        return None
    user = user_entry_.get("user") or {}
    if not isinstance(user, dict):
        return "other"
    exec_config = user.get("exec")
    if isinstance(exec_config, dict) and set(user) == {"exec"}:
        command = str(exec_config.get("command") or "")
        if os.path.basename(command) == PLUGIN_NAME:
            return "plugin"
    if set(user) == {"token"}:
        return "token"
    return "other"


def token_in(config: dict | None, name: str) -> str | None:
    user = (find_entry(config, "users", name) or {}).get("user") or {}
    return user.get("token") if isinstance(user, dict) else None


def _masked(entry: dict | None) -> dict | None:
    """The entry with any token or password replaced by MASK."""
    if entry is None:
        return None
    masked = copy.deepcopy(entry)
    user = masked.get("user")
    if isinstance(user, dict):
        for key in ("token", "password"):
            if user.get(key):
                user[key] = MASK
    return masked


def comparable(config: dict | None, name: str, set_current: bool = True) -> dict:
    """Our entries with the token masked (and current-context when we set it): what changed
    is computed from, so that a refreshed token alone is no change."""
    view = {
        "cluster": _masked(find_entry(config, "clusters", name)),
        "user": _masked(find_entry(config, "users", name)),
        "context": _masked(find_entry(config, "contexts", name)),
    }
    if set_current:
        view["current-context"] = (config or {}).get("current-context")
    return view


def summary(config: dict | None, name: str, set_current: bool = True) -> dict:
    """What --diff shows of our entries: server, CA fingerprint, auth method, context. Never the
    token, never the whole CA. {} when none of our entries is there."""
    cluster = find_entry(config, "clusters", name)
    user = find_entry(config, "users", name)
    context = find_entry(config, "contexts", name)
    if cluster is None and user is None and context is None:
        return {}
    cluster_data = (cluster or {}).get("cluster") or {}
    shown = {
        "context": name if context is not None else None,
        "server": cluster_data.get("server"),
        "ca_fingerprint": _fingerprint_or_none(cluster_data.get("certificate-authority-data")),
        "auth": auth_method(user),
    }
    exec_config = ((user or {}).get("user") or {}).get("exec")
    if isinstance(exec_config, dict):
        shown["exec"] = {
            "command": exec_config.get("command"),
            "args": list(exec_config.get("args") or []),
            "env": [e.get("name") for e in exec_config.get("env") or [] if isinstance(e, dict)],
        }
    if set_current:
        shown["current_context"] = (config or {}).get("current-context")
    return shown


# --------------------------------------------------------------------------- files
def read_kubeconfig(path: str) -> tuple[dict | None, int | None]:
    """(kubeconfig dict, file mode) or (None, None) when the file does not exist."""
    if not os.path.lexists(path):
        return None, None
    if not os.path.isfile(path):
        raise KubeconfigError(
            f"{path} exists and is not a file (or is a dangling symlink). Choose another path."
        )
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError as exc:
        raise KubeconfigError(
            f"Cannot read {path}: {exc.strerror}. Check its permissions or choose another path."
        ) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise KubeconfigError(
            f"{path} is not valid YAML{where}. Fix it, or point path at another file."
        ) from None
    return check_config(data, path), mode


def dump(config: dict) -> str:
    return yaml.safe_dump(config, default_flow_style=False, sort_keys=False)


def _make_dirs(directory: str) -> None:
    """Create directory and its missing parents, each with mode 0700 (whatever the umask)."""
    missing = []
    while directory and not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for created in reversed(missing):
        os.mkdir(created, DIR_MODE)
        os.chmod(created, DIR_MODE)


def write_kubeconfig(path: str, config: dict) -> None:
    """Write atomically with mode 0600, creating missing parent directories with mode 0700.

    A symlink is followed: its target is written, the link stays.
    """
    target = os.path.realpath(path)
    parent = os.path.dirname(target) or "."
    try:
        _make_dirs(parent)
        handle, temp = tempfile.mkstemp(prefix=".kubeconfig-", dir=parent)  # mode 0600
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(dump(config))
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp, FILE_MODE)
            os.replace(temp, target)
        except BaseException:
            if os.path.exists(temp):
                os.unlink(temp)
            raise
    except OSError as exc:
        raise KubeconfigError(
            f"Cannot write {path}: {exc.strerror}. Check the permissions of {parent} or choose "
            "another path."
        ) from exc


def delete_kubeconfig(path: str) -> None:
    try:
        os.unlink(os.path.realpath(path))
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise KubeconfigError(f"Cannot remove {path}: {exc.strerror}.") from exc


# --------------------------------------------------------------------------- auth
def find_plugin(auth_plugin_path: str | None, which=shutil.which) -> str | None:
    """The command to write for the plugin: auth_plugin_path as given (it must be an executable
    file), else the plugin's name when it is on PATH (kubectl finds it there, as with gcloud's
    kubeconfig), else None."""
    if auth_plugin_path:
        if not (os.path.isfile(auth_plugin_path) and os.access(auth_plugin_path, os.X_OK)):
            raise KubeconfigError(
                f"auth_plugin_path {auth_plugin_path} is not an executable file. Install "
                f"{PLUGIN_NAME} ('gcloud components install {PLUGIN_NAME}' or the "
                f"google-cloud-cli-gke-gcloud-auth-plugin package) or fix the path."
            )
        return auth_plugin_path
    return PLUGIN_NAME if which(PLUGIN_NAME) else None


def choose_auth(auth: str, plugin: str | None) -> str:
    """plugin or token, as auth (auto|plugin|token) asks."""
    if auth == "token":
        return "token"
    if plugin:
        return "plugin"
    if auth == "plugin":
        raise KubeconfigError(
            f"auth=plugin but {PLUGIN_NAME} is not on PATH. Install it ('gcloud components "
            f"install {PLUGIN_NAME}', or the google-cloud-cli-gke-gcloud-auth-plugin package), "
            "give its location in auth_plugin_path, or use auth=token."
        )
    return "token"


def plugin_credentials(params: dict) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """(args, env) of the exec entry: which credentials the plugin uses at kubectl time.

    application: --use_application_default_credentials, plus GOOGLE_APPLICATION_CREDENTIALS for
    a service account key file; gcloud: the plugin asks gcloud (no argument). auto picks
    application for auth_kind application, machineaccount, and serviceaccount with a file.
    """
    mode = params.get("auth_plugin_credentials") or "auto"
    kind = params.get("auth_kind")
    key_file = params.get("service_account_file") if kind == "serviceaccount" else None
    if mode == "auto":
        adc = kind in ("application", "machineaccount") or bool(key_file)
        mode = "application" if adc else "gcloud"
    if mode == "gcloud":
        return (), ()
    env = (("GOOGLE_APPLICATION_CREDENTIALS", key_file),) if key_file else ()
    return (PLUGIN_ADC_ARG,), env


def access_token(credentials) -> tuple[str, str | None]:
    """(token, expiry as ISO 8601 UTC or None) of google-auth credentials, refreshed when
    needed. The GcpClient's session has normally refreshed them already."""
    try:
        if not credentials.token or not credentials.valid:
            from google.auth.transport.requests import Request

            credentials.refresh(Request())
    except Exception as exc:  # google.auth.exceptions.* or transport errors
        raise KubeconfigError(
            "Could not get an access token from the GCP credentials "
            f"({type(exc).__name__}). Check the credentials (auth_kind), or use auth=plugin."
        ) from None
    if not credentials.token:
        raise KubeconfigError("The GCP credentials gave no access token. Use auth=plugin.")
    expiry = getattr(credentials, "expiry", None)
    return credentials.token, (expiry.strftime("%Y-%m-%dT%H:%M:%SZ") if expiry else None)


# --------------------------------------------------------------------------- cluster
def endpoint_of(cluster: dict, name: str, private: bool = False) -> tuple[str, str]:
    """(server URL, CA data) of a cluster resource; KubeconfigError when it has none yet."""
    status = cluster.get("status") or "STATUS_UNSPECIFIED"
    if status not in USABLE_STATUSES:
        message = conditions_text(cluster)
        raise KubeconfigError(
            f"Cluster {name} is {status}"
            + (f" ({message})" if message else "")
            + ": it has no usable endpoint. "
            + (
                "Wait until it is RUNNING (llmd.gke.gke_cluster with wait: true) and run again."
                if status == "PROVISIONING"
                else "Fix or recreate the cluster, then run again."
            ),
            cluster_status=status,
        )
    if private:
        # PrivateClusterConfig.privateEndpoint is deprecated in GKE's API for this field.
        endpoint = (
            (cluster.get("controlPlaneEndpointsConfig") or {}).get("ipEndpointsConfig") or {}
        ).get("privateEndpoint")
        if not endpoint:
            raise KubeconfigError(
                f"Cluster {name} has no private endpoint "
                "(controlPlaneEndpointsConfig.ipEndpointsConfig.privateEndpoint). "
                "Set private_endpoint=false to use its public endpoint.",
                cluster_status=status,
            )
    else:
        endpoint = cluster.get("endpoint")
        if not endpoint:
            raise KubeconfigError(
                f"Cluster {name} is {status} but has no endpoint. Run again in a minute; if it "
                "stays so, check the cluster in the Google Cloud console.",
                cluster_status=status,
            )
    ca_data = (cluster.get("masterAuth") or {}).get("clusterCaCertificate")
    if not ca_data:
        raise KubeconfigError(
            f"Cluster {name} has no CA certificate (masterAuth.clusterCaCertificate). Run again "
            "in a minute; if it stays so, check the cluster in the Google Cloud console.",
            cluster_status=status,
        )
    try:
        ca_fingerprint(ca_data)
    except ValueError as exc:
        raise KubeconfigError(
            f"Cluster {name}: {exc} (masterAuth.clusterCaCertificate). Check that api_endpoint "
            "points at the GKE API.",
            cluster_status=status,
        ) from None
    return server_url(endpoint), ca_data


# --------------------------------------------------------------------------- the module run
class KubeconfigRunner:
    """One run of the gke_kubeconfig module.

    ``client`` is a GcpClient or a callable returning one (called only when the cluster must be
    read); ``protect(secret)`` is told the token so the caller can keep it out of any output
    (AnsibleModule.no_log_values.add); ``which`` finds the plugin on PATH.
    """

    def __init__(
        self,
        params: dict,
        client,
        *,
        check_mode: bool = False,
        warn=None,
        protect=None,
        which=shutil.which,
    ) -> None:
        self.params = params
        self._client = client
        self.check_mode = check_mode
        self.warn = warn or (lambda _msg: None)
        self.protect = protect or (lambda _secret: None)
        self.which = which
        self.path = params["path"]
        self.set_current = bool(params.get("set_current_context", True))

    def client(self):
        if callable(self._client):
            self._client = self._client()
        return self._client

    def run(self) -> dict:
        if not HAS_YAML:
            raise KubeconfigError(f"PyYAML is required: {YAML_IMPORT_ERROR}")
        if self.params.get("state") == "absent":
            return self.absent()
        return self.present()

    # ----------------------------------------------------------------- present
    def present(self) -> dict:
        params = self.params
        # Everything that can be checked without the API first.
        existing, mode = read_kubeconfig(self.path)
        plugin = None
        if params.get("auth") != "token":
            plugin = find_plugin(params.get("auth_plugin_path"), self.which)
        method = choose_auth(params.get("auth") or "auto", plugin)
        args, env = plugin_credentials(params) if method == "plugin" else ((), ())
        if method == "plugin" and not args and params.get("auth_kind") == "accesstoken":
            self.warn(
                f"{PLUGIN_NAME} cannot use access_token: kubectl will get a token from gcloud's "
                "credentials. Use auth=token to write this token into the kubeconfig instead."
            )

        client = self.client()
        project = client.project
        if not project:
            raise KubeconfigError(
                "The GCP project is unknown: set project (or GCP_PROJECT), or use credentials "
                "that name one."
            )
        location, cluster_name = params["location"], params["cluster"]
        name = params.get("context_name") or default_context_name(project, location, cluster_name)
        cluster = client.get(f"projects/{project}/locations/{location}/clusters/{cluster_name}")
        status = cluster.get("status")
        server, ca_data = endpoint_of(cluster, cluster_name, bool(params.get("private_endpoint")))
        if status == "DEGRADED":
            self.warn(degraded_warning(cluster, "the kubeconfig is written"))

        token = expiry = None
        if method == "token":
            token, expiry = access_token(client.gcp_credentials.credentials)
            self.protect(token)
        conn = Connection(
            name=name,
            server=server,
            ca_data=ca_data,
            auth=method,
            token=token,
            plugin_command=plugin if method == "plugin" else None,
            plugin_args=args,
            plugin_env=env,
        )
        wanted = merge(existing, conn, self.set_current)
        before = comparable(existing, name, self.set_current) if existing is not None else None
        settings_changed = before != comparable(wanted, name, self.set_current)
        mode_changed = mode is not None and mode != FILE_MODE
        old_token = token_in(existing, name)
        token_refreshed = bool(method == "token" and old_token and old_token != token)
        rewrite = existing is None or settings_changed or wanted != existing

        if not self.check_mode:
            if rewrite:
                write_kubeconfig(self.path, wanted)
            elif mode_changed:
                self._chmod()

        result = {
            "changed": existing is None or settings_changed or mode_changed,
            "path": self.path,
            "context": name,
            "server": server,
            "auth": method,
            "ca_fingerprint": ca_fingerprint(ca_data),
            "cluster_status": status,
            "token_refreshed": token_refreshed,
            "token_expiry": expiry,
        }
        if method == "plugin":
            result["plugin_command"] = plugin
        result["diff"] = self._diff(existing, wanted, name, mode)
        return result

    def _chmod(self) -> None:
        try:
            os.chmod(os.path.realpath(self.path), FILE_MODE)
        except OSError as exc:
            raise KubeconfigError(f"Cannot set mode 0600 on {self.path}: {exc.strerror}.") from exc

    def _diff(self, existing, wanted, name: str, mode) -> dict:
        before = summary(existing, name, self.set_current)
        after = summary(wanted, name, self.set_current)
        if existing is not None:
            before["mode"] = f"{mode:04o}"
        after["mode"] = f"{FILE_MODE:04o}"
        return {
            "before": before,
            "after": after,
            "before_header": self.path,
            "after_header": self.path,
        }

    # ----------------------------------------------------------------- absent
    def absent(self) -> dict:
        params = self.params
        existing, _mode = read_kubeconfig(self.path)
        name = params.get("context_name")
        if not name:
            project = params.get("project")
            if not project:
                try:
                    project = load_credentials(params).project
                except GcpAuthError:
                    project = None
            if not project:
                raise KubeconfigError(
                    "The GCP project is unknown, so is the context name: set project (or "
                    "GCP_PROJECT) or context_name."
                )
            name = default_context_name(project, params["location"], params["cluster"])
        result = {"changed": False, "path": self.path, "context": name, "file_removed": False}
        if existing is None:
            result["diff"] = {"before": {}, "after": {}}
            return result
        remaining = remove(existing, name)
        if remaining == existing:
            result["diff"] = {"before": {}, "after": {}}
            return result
        gone = is_empty(remaining)
        if not self.check_mode:
            if gone:
                delete_kubeconfig(self.path)
            else:
                write_kubeconfig(self.path, remaining)
        result.update(changed=True, file_removed=gone)
        result["diff"] = {
            "before": summary(existing, name),
            "after": summary(remaining, name),
            "before_header": self.path,
            "after_header": self.path,
        }
        return result
