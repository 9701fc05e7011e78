import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ansible_collections.llmd.gke.plugins.module_utils.gcp_auth import (
    GcpAuthError,
    load_credentials,
)

TOKEN = "ya29.very-secret-token"


@pytest.fixture
def isolated_env(monkeypatch, tmp_path):
    """No ambient credentials: no ADC file, no key variable, no metadata server probe."""
    for var in ("GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    return tmp_path


def params(**overrides):
    base = {
        "auth_kind": "application",
        "service_account_file": None,
        "service_account_contents": None,
        "service_account_email": None,
        "access_token": None,
        "scopes": None,
        "project": None,
    }
    base.update(overrides)
    return base


def service_account_key(path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "key-project",
        "private_key_id": "1",
        "private_key": pem,
        "client_email": "deployer@key-project.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path.write_text(json.dumps(info))
    return path


def test_no_credentials_names_every_way_to_provide_them(isolated_env):
    with pytest.raises(GcpAuthError) as err:
        load_credentials(params())
    message = str(err.value)
    for way in (
        "GOOGLE_APPLICATION_CREDENTIALS",
        "gcloud auth application-default login",
        "metadata server",
        "service_account_file",
        "access_token",
    ):
        assert way in message


def test_adc_from_environment_key_file(isolated_env, monkeypatch):
    key = service_account_key(isolated_env / "key.json")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    found = load_credentials(params(project="my-project"))
    assert found.describe() == {
        "auth_kind": "application",
        "source": f"GOOGLE_APPLICATION_CREDENTIALS ({key})",
        "principal": "deployer@key-project.iam.gserviceaccount.com",
        "project": "my-project",
    }


def test_service_account_file_and_contents(isolated_env):
    key = service_account_key(isolated_env / "key.json")
    found = load_credentials(params(auth_kind="serviceaccount", service_account_file=str(key)))
    assert found.source == f"service_account_file ({key})"
    assert found.project == "key-project"
    found = load_credentials(
        params(auth_kind="serviceaccount", service_account_contents=key.read_text())
    )
    assert found.source == "service_account_contents"
    assert "PRIVATE KEY" not in json.dumps(found.describe())


def test_service_account_problems_say_what_to_do(isolated_env):
    with pytest.raises(
        GcpAuthError, match="needs service_account_file or service_account_contents"
    ):
        load_credentials(params(auth_kind="serviceaccount"))
    with pytest.raises(GcpAuthError, match="does not exist"):
        load_credentials(params(auth_kind="serviceaccount", service_account_file="/nope.json"))
    bad = isolated_env / "bad.json"
    bad.write_text('{"type": "service_account"}')
    with pytest.raises(GcpAuthError, match="could not be loaded"):
        load_credentials(params(auth_kind="serviceaccount", service_account_file=str(bad)))


def test_access_token_is_used_and_never_described(isolated_env):
    found = load_credentials(params(auth_kind="accesstoken", access_token=TOKEN, project="p1"))
    assert found.credentials.token == TOKEN
    assert TOKEN not in json.dumps(found.describe())
    with pytest.raises(GcpAuthError, match="needs access_token"):
        load_credentials(params(auth_kind="accesstoken"))
