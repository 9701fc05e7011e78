# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container registry credentials (containers auth.json / Docker config.json).

The registry pull secret is built from these; nothing here ever returns a credential, only the
names of the registries that have one.
"""

from __future__ import annotations

import base64
import binascii
import json
import os


class RegistryAuthError(ValueError):
    """The auth file or value is unreadable or malformed (the message holds no secret)."""


def default_auth_file() -> str:
    """Where podman/skopeo keep credentials: $REGISTRY_AUTH_FILE, else the XDG path."""
    explicit = os.environ.get("REGISTRY_AUTH_FILE")
    if explicit:
        return explicit
    runtime = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(runtime, "containers", "auth.json")


def parse_auth_config(value) -> dict:
    """Validate an auth config (JSON text or dict) and return its ``auths`` map.

    Each entry needs ``auth`` (base64 of ``user:password``) or ``username`` and ``password``.
    """
    if isinstance(value, (bytes, str)):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise RegistryAuthError(
                f"not valid JSON (line {getattr(exc, 'lineno', '?')}, "
                f"column {getattr(exc, 'colno', '?')})"
            ) from None
    if not isinstance(value, dict) or not isinstance(value.get("auths"), dict):
        raise RegistryAuthError('expected a JSON object with an "auths" object')
    auths = value["auths"]
    for registry, entry in auths.items():
        if not isinstance(entry, dict):
            raise RegistryAuthError(f"the entry for {registry} is not an object")
        if "auth" in entry:
            try:
                decoded = base64.b64decode(entry["auth"], validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError, TypeError):
                raise RegistryAuthError(f"the auth of {registry} is not valid base64") from None
            if ":" not in decoded:
                raise RegistryAuthError(f"the auth of {registry} does not decode to user:password")
        elif not (entry.get("username") and entry.get("password")):
            raise RegistryAuthError(f"the entry for {registry} has no auth nor username/password")
    return auths


def to_dockerconfigjson(auths: dict) -> str:
    """Render auths as the value of a kubernetes.io/dockerconfigjson Secret (stable order)."""
    normalised = {}
    for registry, entry in auths.items():
        if "auth" in entry:
            normalised[registry] = {"auth": entry["auth"]}
        else:
            pair = f"{entry['username']}:{entry['password']}".encode()
            normalised[registry] = {"auth": base64.b64encode(pair).decode("ascii")}
    return json.dumps({"auths": normalised}, sort_keys=True, separators=(",", ":"))


def read_auth_file(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise RegistryAuthError(f"{path} does not exist") from None
    except OSError as exc:
        raise RegistryAuthError(f"{path} cannot be read: {exc.strerror}") from None
    try:
        return parse_auth_config(text)
    except RegistryAuthError as exc:
        raise RegistryAuthError(f"{path}: {exc}") from None
