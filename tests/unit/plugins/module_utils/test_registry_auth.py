import base64
import json

import pytest

from ansible_collections.llmd.gke.plugins.module_utils.registry_auth import (
    RegistryAuthError,
    default_auth_file,
    parse_auth_config,
    read_auth_file,
    to_dockerconfigjson,
)

SECRET = "s3cr3t-Pa55"


def b64(text):
    return base64.b64encode(text.encode()).decode()


def test_auth_and_username_password_entries_are_accepted():
    auths = parse_auth_config(
        {
            "auths": {
                "registry.redhat.io": {"auth": b64(f"me:{SECRET}")},
                "quay.io": {"username": "me", "password": SECRET},
            }
        }
    )
    assert sorted(auths) == ["quay.io", "registry.redhat.io"]


def test_dockerconfigjson_is_stable_and_normalised():
    auths = {"b.io": {"username": "u", "password": "p"}, "a.io": {"auth": b64("x:y")}}
    rendered = to_dockerconfigjson(auths)
    assert rendered == to_dockerconfigjson(dict(reversed(list(auths.items()))))
    assert json.loads(rendered) == {
        "auths": {"a.io": {"auth": b64("x:y")}, "b.io": {"auth": b64("u:p")}}
    }


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (f'{{"auths": {{"r": {{"auth": "{SECRET}"', "not valid JSON (line 1"),
        ("[]", 'expected a JSON object with an "auths" object'),
        ({"auths": {"r.io": "x"}}, "the entry for r.io is not an object"),
        ({"auths": {"r.io": {"auth": "%%%"}}}, "the auth of r.io is not valid base64"),
        ({"auths": {"r.io": {"auth": b64("nocolon")}}}, "does not decode to user:password"),
        ({"auths": {"r.io": {"username": "me"}}}, "has no auth nor username/password"),
    ],
)
def test_malformed_configs_are_rejected_without_echoing_secrets(value, reason):
    with pytest.raises(RegistryAuthError) as err:
        parse_auth_config(value)
    assert reason in str(err.value)
    assert SECRET not in str(err.value)


def test_read_auth_file_reports_missing_and_malformed_files(tmp_path):
    with pytest.raises(RegistryAuthError, match="does not exist"):
        read_auth_file(str(tmp_path / "absent.json"))
    bad = tmp_path / "auth.json"
    bad.write_text(f'{{"auths": {{"r": {{"auth": "{SECRET}"}}')
    with pytest.raises(RegistryAuthError) as err:
        read_auth_file(str(bad))
    assert str(bad) in str(err.value)
    assert SECRET not in str(err.value)


def test_default_auth_file_follows_registry_auth_file_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("REGISTRY_AUTH_FILE", "/x/auth.json")
    assert default_auth_file() == "/x/auth.json"
    monkeypatch.delenv("REGISTRY_AUTH_FILE")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_auth_file() == str(tmp_path / "containers" / "auth.json")
