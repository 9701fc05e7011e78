"""gke_kubeconfig: the entries, merging into and removing from a kubeconfig, the comparison that
ignores the token, the files, the auth choice, and one module run with a fake GKE client."""

from __future__ import annotations

import base64
import datetime
import json
import os
import stat

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.llmd.gke.plugins.module_utils.gke_kubeconfig import (
    MASK,
    PLUGIN_ADC_ARG,
    PLUGIN_NAME,
    Connection,
    KubeconfigError,
    KubeconfigRunner,
    auth_method,
    ca_fingerprint,
    check_config,
    choose_auth,
    comparable,
    default_context_name,
    endpoint_of,
    find_entry,
    find_plugin,
    is_empty,
    merge,
    plugin_credentials,
    read_kubeconfig,
    remove,
    server_url,
    summary,
    write_kubeconfig,
)

NAME = "gke_proj_europe-west4-a_c"
TOKEN = "ya29.unit-test-token-value"


def make_ca(common_name: str = "unit-ca") -> tuple[str, str]:
    """(base64 of a PEM CA certificate as GKE returns it, its SHA-256 fingerprint AB:CD:...)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    fingerprint = ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))
    return base64.b64encode(pem).decode(), fingerprint


CA, CA_FP = make_ca()
OTHER_CA, OTHER_CA_FP = make_ca("other-ca")


def conn(**changes) -> Connection:
    values = dict(name=NAME, server="https://10.0.0.1", ca_data=CA, auth="token", token=TOKEN)
    values.update(changes)
    return Connection(**values)


def plugin_conn(**changes) -> Connection:
    values = dict(auth="plugin", token=None, plugin_command=PLUGIN_NAME)
    values.update(changes)
    return conn(**values)


def foreign() -> dict:
    """A user's own kubeconfig with another cluster and some settings of its own."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kind-dev", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "kind-dev", "user": {"client-certificate-data": "Y2VydA=="}}],
        "contexts": [{"name": "kind-dev", "context": {"cluster": "kind-dev", "user": "kind-dev"}}],
        "current-context": "kind-dev",
        "preferences": {"colors": True},
        "extensions": [{"name": "x", "extension": {"a": 1}}],
    }


# --------------------------------------------------------------------------- small pieces
def test_default_context_name_is_gclouds():
    assert default_context_name("p", "europe-west4-a", "c") == "gke_p_europe-west4-a_c"


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("34.90.1.2", "https://34.90.1.2"),
        ("127.0.0.1:6443", "https://127.0.0.1:6443"),
        ("https://proxy.example/", "https://proxy.example"),
        ("2001:db8::1", "https://[2001:db8::1]"),
    ],
)
def test_server_url(endpoint, url):
    assert server_url(endpoint) == url


def test_ca_fingerprint_is_the_certificates_sha256():
    assert ca_fingerprint(CA) == CA_FP
    assert ca_fingerprint(CA) != ca_fingerprint(OTHER_CA)


@pytest.mark.parametrize("bad", ["", "bm90IGEgY2VydA==", "%%%"])
def test_ca_fingerprint_refuses_what_is_no_pem(bad):
    with pytest.raises(ValueError):
        ca_fingerprint(bad)


# --------------------------------------------------------------------------- merge
def test_merge_into_nothing_builds_a_complete_kubeconfig():
    config = merge(None, conn())
    assert config["kind"] == "Config" and config["apiVersion"] == "v1"
    assert config["current-context"] == NAME
    assert find_entry(config, "clusters", NAME)["cluster"] == {
        "certificate-authority-data": CA,
        "server": "https://10.0.0.1",
    }
    assert find_entry(config, "users", NAME)["user"] == {"token": TOKEN}
    assert find_entry(config, "contexts", NAME)["context"] == {"cluster": NAME, "user": NAME}


def test_merge_writes_the_plugin_exec_entry_like_gcloud():
    config = merge(None, plugin_conn(plugin_args=(PLUGIN_ADC_ARG,)))
    exec_config = find_entry(config, "users", NAME)["user"]["exec"]
    assert exec_config["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert exec_config["command"] == PLUGIN_NAME
    assert exec_config["args"] == [PLUGIN_ADC_ARG]
    assert exec_config["provideClusterInfo"] is True
    assert "env" not in exec_config
    assert auth_method(find_entry(config, "users", NAME)) == "plugin"


def test_merge_keeps_everything_else_and_switches_the_current_context():
    original = foreign()
    config = merge(original, conn())
    assert original == foreign()  # the input is not modified
    for key in ("clusters", "users", "contexts"):
        assert config[key][0] == original[key][0]
        assert [e["name"] for e in config[key]] == ["kind-dev", NAME]
    assert config["preferences"] == {"colors": True}
    assert config["extensions"] == original["extensions"]
    assert config["current-context"] == NAME


def test_merge_without_set_current_leaves_the_current_context():
    config = merge(foreign(), conn(), set_current=False)
    assert config["current-context"] == "kind-dev"


def test_merge_replaces_our_entries_in_place_and_keeps_our_contexts_namespace():
    first = merge(foreign(), conn())
    first["contexts"][1]["context"]["namespace"] = "llm"
    first["clusters"].append({"name": "later", "cluster": {"server": "https://later"}})
    second = merge(first, conn(server="https://10.0.0.2", ca_data=OTHER_CA))
    assert [e["name"] for e in second["clusters"]] == ["kind-dev", NAME, "later"]
    assert second["clusters"][1]["cluster"]["server"] == "https://10.0.0.2"
    assert second["clusters"][1]["cluster"]["certificate-authority-data"] == OTHER_CA
    assert second["contexts"][1]["context"] == {"cluster": NAME, "user": NAME, "namespace": "llm"}
    assert len(second["users"]) == 2


# --------------------------------------------------------------------------- remove
def test_remove_takes_only_our_entries_and_empties_our_current_context():
    config = remove(merge(foreign(), conn()), NAME)
    expected = foreign()
    expected["current-context"] = ""
    assert config == expected
    assert not is_empty(config)


def test_remove_keeps_another_current_context():
    config = remove(merge(foreign(), conn(), set_current=False), NAME)
    assert config == foreign()


def test_remove_keeps_our_cluster_and_user_when_another_context_uses_them():
    config = merge(foreign(), conn())
    config["contexts"].append({"name": "mine-llm", "context": {"cluster": NAME, "user": NAME}})
    removed = remove(config, NAME)
    assert [e["name"] for e in removed["contexts"]] == ["kind-dev", "mine-llm"]
    assert [e["name"] for e in removed["clusters"]] == ["kind-dev", NAME]
    assert [e["name"] for e in removed["users"]] == ["kind-dev", NAME]


def test_a_file_with_only_our_entries_is_empty_after_remove():
    assert is_empty(remove(merge(None, conn()), NAME))
    assert not is_empty({**remove(merge(None, conn()), NAME), "preferences": {"colors": True}})


def test_remove_of_what_is_not_there_changes_nothing():
    assert remove(foreign(), NAME) == foreign()


# --------------------------------------------------------------------------- comparison
def test_a_new_token_alone_compares_equal():
    old = merge(foreign(), conn(token="ya29.old"))
    new = merge(old, conn(token="ya29.new"))
    assert new != old  # the file must be rewritten...
    assert comparable(new, NAME) == comparable(old, NAME)  # ...but it is no change
    assert MASK in json.dumps(comparable(new, NAME))
    assert "ya29" not in json.dumps(comparable(new, NAME))


@pytest.mark.parametrize(
    "changed",
    [
        {"server": "https://10.0.0.9"},
        {"ca_data": OTHER_CA},
        {"auth": "plugin", "token": None, "plugin_command": PLUGIN_NAME},
        {"name": "renamed"},
    ],
)
def test_connection_settings_compare_different(changed):
    old = merge(None, conn())
    new = merge(old, conn(**changed))
    assert comparable(new, NAME) != comparable(old, NAME)


def test_plugin_args_and_current_context_compare_different():
    old = merge(foreign(), plugin_conn(), set_current=False)
    assert comparable(merge(old, plugin_conn(plugin_args=(PLUGIN_ADC_ARG,))), NAME) != (
        comparable(old, NAME)
    )
    assert comparable(merge(old, plugin_conn()), NAME) != comparable(old, NAME)  # current
    assert comparable(merge(old, plugin_conn(), set_current=False), NAME, False) == (
        comparable(old, NAME, False)
    )


def test_summary_shows_fingerprint_and_method_never_the_token_or_ca():
    shown = summary(merge(foreign(), conn()), NAME)
    assert shown == {
        "context": NAME,
        "server": "https://10.0.0.1",
        "ca_fingerprint": CA_FP,
        "auth": "token",
        "current_context": NAME,
    }
    text = json.dumps(shown)
    assert TOKEN not in text and CA not in text
    assert summary(foreign(), NAME) == {}


def test_auth_method_of_other_users():
    assert auth_method(None) is None
    assert auth_method({"name": "x", "user": {"client-certificate-data": "x"}}) == "other"
    assert auth_method({"name": "x", "user": {"exec": {"command": "aws"}}}) == "other"
    assert auth_method({"name": "x", "user": {"exec": {"command": "/opt/bin/" + PLUGIN_NAME}}}) == (
        "plugin"
    )


# --------------------------------------------------------------------------- files
@pytest.mark.parametrize(
    "data",
    [["a list"], "text", {"kind": "Pod"}, {"clusters": {"a": 1}}, {"users": [{"user": {}}]}],
)
def test_check_config_refuses_what_is_no_kubeconfig(data):
    with pytest.raises(KubeconfigError, match="path at another file"):
        check_config(data, "/x")


def test_read_kubeconfig(tmp_path):
    assert read_kubeconfig(str(tmp_path / "none")) == (None, None)
    empty = tmp_path / "empty"
    empty.write_text("")
    assert read_kubeconfig(str(empty))[0] == {}
    bad = tmp_path / "bad"
    bad.write_text("clusters: [\n")
    with pytest.raises(KubeconfigError, match="not valid YAML"):
        read_kubeconfig(str(bad))
    with pytest.raises(KubeconfigError, match="not a file"):
        read_kubeconfig(str(tmp_path))


def test_write_kubeconfig_modes_and_symlink(tmp_path):
    target = tmp_path / "new" / "deeper" / "config"
    write_kubeconfig(str(target), merge(None, conn()))
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(target.parent.parent.stat().st_mode) == 0o700
    assert yaml.safe_load(target.read_text()) == merge(None, conn())
    link = tmp_path / "link"
    link.symlink_to(target)
    write_kubeconfig(str(link), merge(None, conn(token="ya29.other")))
    assert link.is_symlink()
    assert "ya29.other" in target.read_text()
    assert [p.name for p in target.parent.iterdir()] == ["config"]  # no temp file left


# --------------------------------------------------------------------------- auth choice
def test_find_plugin(tmp_path):
    assert find_plugin(None, which=lambda _name: "/usr/bin/x") == PLUGIN_NAME
    assert find_plugin(None, which=lambda _name: None) is None
    script = tmp_path / PLUGIN_NAME
    script.write_text("#!/bin/sh\n")
    with pytest.raises(KubeconfigError, match="not an executable file"):
        find_plugin(str(script), which=lambda _name: None)
    script.chmod(0o755)
    assert find_plugin(str(script), which=lambda _name: None) == str(script)


def test_choose_auth():
    assert choose_auth("auto", PLUGIN_NAME) == "plugin"
    assert choose_auth("auto", None) == "token"
    assert choose_auth("token", PLUGIN_NAME) == "token"
    assert choose_auth("plugin", PLUGIN_NAME) == "plugin"
    with pytest.raises(KubeconfigError, match="auth_plugin_path"):
        choose_auth("plugin", None)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"auth_kind": "application"}, ((PLUGIN_ADC_ARG,), ())),
        ({"auth_kind": "machineaccount"}, ((PLUGIN_ADC_ARG,), ())),
        ({"auth_kind": "accesstoken"}, ((), ())),
        ({"auth_kind": "serviceaccount", "service_account_contents": "{}"}, ((), ())),
        (
            {"auth_kind": "serviceaccount", "service_account_file": "/k.json"},
            ((PLUGIN_ADC_ARG,), (("GOOGLE_APPLICATION_CREDENTIALS", "/k.json"),)),
        ),
        ({"auth_kind": "application", "auth_plugin_credentials": "gcloud"}, ((), ())),
        (
            {"auth_kind": "accesstoken", "auth_plugin_credentials": "application"},
            ((PLUGIN_ADC_ARG,), ()),
        ),
    ],
)
def test_plugin_credentials(options, expected):
    assert plugin_credentials({"auth_plugin_credentials": "auto", **options}) == expected


# --------------------------------------------------------------------------- cluster
def cluster(**changes) -> dict:
    resource = {
        "name": "c",
        "status": "RUNNING",
        "endpoint": "34.90.1.2",
        "masterAuth": {"clusterCaCertificate": CA},
    }
    resource.update(changes)
    return resource


def test_endpoint_of_a_usable_cluster():
    assert endpoint_of(cluster(), "c") == ("https://34.90.1.2", CA)
    assert endpoint_of(cluster(status="RECONCILING"), "c")[0] == "https://34.90.1.2"
    private = cluster(
        controlPlaneEndpointsConfig={"ipEndpointsConfig": {"privateEndpoint": "10.1.0.2"}}
    )
    assert endpoint_of(private, "c", private=True)[0] == "https://10.1.0.2"
    deprecated = cluster(privateClusterConfig={"privateEndpoint": "10.1.0.2"})
    with pytest.raises(KubeconfigError, match="no private endpoint"):
        endpoint_of(deprecated, "c", private=True)


@pytest.mark.parametrize(
    ("resource", "private", "message"),
    [
        (cluster(status="PROVISIONING", endpoint=None), False, "is PROVISIONING.*Wait until"),
        (cluster(status="ERROR", conditions=[{"message": "boom"}]), False, r"is ERROR \(boom\)"),
        (cluster(endpoint=""), False, "has no endpoint"),
        (cluster(masterAuth={}), False, "no CA certificate"),
        (cluster(masterAuth={"clusterCaCertificate": "bm9wZQ=="}), False, "no PEM"),
        (cluster(), True, "no private endpoint"),
    ],
)
def test_endpoint_of_refuses_an_unusable_cluster(resource, private, message):
    with pytest.raises(KubeconfigError, match=message):
        endpoint_of(resource, "c", private=private)


# --------------------------------------------------------------------------- module runs
class FakeCredentials:
    def __init__(self, token: str):
        self.token = token
        self.valid = True
        self.expiry = datetime.datetime(2030, 1, 2, 3, 4, 5)


class FakeGcp:
    """What KubeconfigRunner uses of GcpClient."""

    def __init__(self, resource: dict | None = None, token: str = TOKEN):
        self.project = "proj"
        self.resource = resource or cluster()
        self.gcp_credentials = type("C", (), {"credentials": FakeCredentials(token)})()
        self.paths: list[str] = []

    def get(self, path: str) -> dict:
        self.paths.append(path)
        return self.resource


def params(path, **options) -> dict:
    base = {
        "auth_kind": "accesstoken",
        "access_token": TOKEN,
        "project": "proj",
        "service_account_file": None,
        "service_account_contents": None,
        "location": "europe-west4-a",
        "cluster": "c",
        "path": str(path),
        "context_name": None,
        "auth": "token",
        "auth_plugin_path": None,
        "auth_plugin_credentials": "auto",
        "private_endpoint": False,
        "set_current_context": True,
        "state": "present",
    }
    base.update(options)
    return base


def run(path, client=None, check_mode=False, which=lambda _name: None, **options):
    protected: list[str] = []
    warnings: list[str] = []
    runner = KubeconfigRunner(
        params(path, **options),
        client if client is not None else FakeGcp(),
        check_mode=check_mode,
        warn=warnings.append,
        protect=protected.append,
        which=which,
    )
    result = runner.run()
    return result, protected, warnings


def no_api():
    raise AssertionError("the API must not be called")


def test_first_run_writes_then_same_run_changes_nothing(tmp_path):
    path = tmp_path / "kube" / "config"
    client = FakeGcp()
    result, protected, _warnings = run(path, client)
    assert client.paths == ["projects/proj/locations/europe-west4-a/clusters/c"]
    assert result["changed"] is True
    assert result["context"] == NAME
    assert result["server"] == "https://34.90.1.2"
    assert result["auth"] == "token"
    assert result["ca_fingerprint"] == CA_FP
    assert result["token_expiry"] == "2030-01-02T03:04:05Z"
    assert result["token_refreshed"] is False
    assert protected == [TOKEN]
    assert TOKEN not in json.dumps(result)
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["server"] == "https://34.90.1.2"
    assert find_entry(yaml.safe_load(path.read_text()), "users", NAME)["user"] == {"token": TOKEN}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    written = path.stat()
    again, _protected, _warnings = run(path, FakeGcp())
    assert again["changed"] is False
    assert again["diff"]["before"] == again["diff"]["after"]
    assert path.stat().st_mtime_ns == written.st_mtime_ns and path.stat().st_ino == written.st_ino


def test_a_new_token_is_written_but_is_no_change(tmp_path):
    path = tmp_path / "config"
    run(path, FakeGcp(token="ya29.first-token"))
    result, _protected, _warnings = run(path, FakeGcp(token="ya29.second-token"))
    assert result["changed"] is False
    assert result["token_refreshed"] is True
    text = path.read_text()
    assert "ya29.second-token" in text and "ya29.first-token" not in text
    assert "ya29" not in json.dumps(result)


def test_check_mode_predicts_and_writes_nothing(tmp_path):
    path = tmp_path / "new-dir" / "config"
    result, _protected, _warnings = run(path, check_mode=True)
    assert result["changed"] is True
    assert not path.parent.exists()
    run(path)
    before = path.read_text()
    result, _protected, _warnings = run(path, FakeGcp(cluster(endpoint="34.90.9.9")), True)
    assert result["changed"] is True
    assert result["diff"]["before"]["server"] == "https://34.90.1.2"
    assert result["diff"]["after"]["server"] == "https://34.90.9.9"
    assert path.read_text() == before


def test_merge_keeps_a_foreign_kubeconfig_and_fixes_the_mode(tmp_path):
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(foreign()))
    path.chmod(0o644)
    result, _protected, _warnings = run(path, set_current_context=False)
    assert result["changed"] is True
    data = yaml.safe_load(path.read_text())
    assert data["current-context"] == "kind-dev"
    assert data["clusters"][0] == foreign()["clusters"][0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Only the mode differs now: fixed and reported, content untouched.
    path.chmod(0o640)
    result, _protected, _warnings = run(path, set_current_context=False)
    assert result["changed"] is True
    assert result["diff"]["before"]["mode"] == "0640"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert run(path, set_current_context=False)[0]["changed"] is False


def test_plugin_mode_from_path_and_the_accesstoken_warning(tmp_path):
    path = tmp_path / "config"
    result, protected, warnings = run(path, auth="auto", which=lambda _name: "/usr/bin/x")
    assert result["auth"] == "plugin"
    assert result["plugin_command"] == PLUGIN_NAME
    assert result["token_expiry"] is None
    assert protected == []
    assert any("cannot use access_token" in w for w in warnings)
    user = find_entry(yaml.safe_load(path.read_text()), "users", NAME)["user"]
    assert user["exec"]["command"] == PLUGIN_NAME
    assert "token" not in user
    # auto without the plugin: back to a token, which is a change of auth method.
    result, _protected, _warnings = run(path, auth="auto")
    assert result["changed"] is True and result["auth"] == "token"
    assert result["diff"]["before"]["auth"] == "plugin"


def test_bad_input_fails_before_any_api_call(tmp_path):
    bad = tmp_path / "bad"
    bad.write_text("- not\n- a kubeconfig\n")
    with pytest.raises(KubeconfigError, match="not a kubeconfig"):
        run(bad, client=no_api)
    with pytest.raises(KubeconfigError, match="auth=plugin"):
        run(tmp_path / "x", client=no_api, auth="plugin")
    assert not (tmp_path / "x").exists()


def test_an_unusable_cluster_fails_and_writes_nothing(tmp_path):
    path = tmp_path / "config"
    with pytest.raises(KubeconfigError, match="PROVISIONING") as info:
        run(path, FakeGcp(cluster(status="PROVISIONING", endpoint=None)))
    assert info.value.details == {"cluster_status": "PROVISIONING"}
    assert not path.exists()


def test_absent_removes_our_entries_or_the_file_without_the_api(tmp_path):
    mixed = tmp_path / "mixed"
    mixed.write_text(yaml.safe_dump(foreign()))
    run(mixed)
    only = tmp_path / "only"
    run(only)

    check, _protected, _warnings = run(mixed, client=no_api, state="absent", check_mode=True)
    assert check["changed"] is True
    assert find_entry(yaml.safe_load(mixed.read_text()), "users", NAME) is not None

    result, _protected, _warnings = run(mixed, client=no_api, state="absent")
    assert result == {
        "changed": True,
        "path": str(mixed),
        "context": NAME,
        "file_removed": False,
        "diff": result["diff"],
    }
    assert result["diff"]["after"] == {}
    assert yaml.safe_load(mixed.read_text()) == {**foreign(), "current-context": ""}

    result, _protected, _warnings = run(only, client=no_api, state="absent")
    assert result["changed"] is True and result["file_removed"] is True
    assert not only.exists()

    again, _protected, _warnings = run(mixed, client=no_api, state="absent")
    assert again["changed"] is False
    assert run(only, client=no_api, state="absent")[0]["changed"] is False


def test_absent_with_a_context_name_needs_no_project(tmp_path):
    path = tmp_path / "config"
    run(path, context_name="mine")
    result, _protected, _warnings = run(
        path, client=no_api, state="absent", context_name="mine", project=None
    )
    assert result["changed"] is True and result["context"] == "mine"
    assert not os.path.exists(path)
