"""pull_secret: namespaces created, Secrets applied, what changed, check mode, no content in
errors."""

from __future__ import annotations

import base64
import copy
import json

import pytest

from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import KubeError
from ansible_collections.llmd.gke.plugins.module_utils.pull_secret import (
    SECRET_TYPE,
    ensure_pull_secret,
    secret_forms,
)

PAIR = base64.b64encode(b"robot:S3cret-Pass").decode()
DATA = base64.b64encode(json.dumps({"auths": {"reg.io": {"auth": PAIR}}}).encode()).decode()
LABELS = {"app.kubernetes.io/managed-by": "llmd.gke"}


class FakeClient:
    """Namespaces and Secrets in dicts; apply merges as SSA would for these fields."""

    def __init__(self, namespaces=(), secrets=None, fail_apply=None) -> None:
        self.namespaces = set(namespaces)
        self.secrets = secrets or {}
        self.fail_apply = fail_apply
        self.calls: list[tuple] = []
        self.rv = 10

    def get(self, resource, name):
        self.calls.append(("get", resource.path(name)))
        if resource.plural == "namespaces":
            return {"metadata": {"name": name}} if name in self.namespaces else None
        found = self.secrets.get((resource.namespace, name))
        return copy.deepcopy(found)

    def create(self, resource, body, *, dry_run=False):
        self.calls.append(("create", body["metadata"]["name"], dry_run))
        if not dry_run:
            self.namespaces.add(body["metadata"]["name"])
        return body

    def apply(self, resource, body, field_manager, *, force=True, dry_run=False):
        self.calls.append(("apply", resource.namespace, field_manager, force, dry_run))
        if self.fail_apply:
            raise self.fail_apply
        key = (resource.namespace, body["metadata"]["name"])
        before = self.secrets.get(key)
        after = copy.deepcopy(before) if before else {"metadata": {"uid": f"uid-{key[0]}"}}
        after["type"] = body["type"]
        after["data"] = dict(body["data"])
        after["metadata"].setdefault("labels", {}).update(body["metadata"]["labels"])
        if before is None or after != before:
            self.rv += 1
            after["metadata"]["resourceVersion"] = str(self.rv)
        if not dry_run:
            self.secrets[key] = after
        return copy.deepcopy(after)


def run(client, namespaces, check_mode=False, data=DATA):
    return ensure_pull_secret(
        client,
        name="pull",
        namespaces=namespaces,
        data=data,
        labels=LABELS,
        field_manager="llmd-gke",
        check_mode=check_mode,
    )


def test_creates_missing_namespaces_and_secrets_then_changes_nothing():
    client = FakeClient(namespaces=["a"])
    first = run(client, ["a", "b"])
    assert first["changed"] is True
    assert first["new_namespaces"] == ["b"]
    assert first["changed_namespaces"] == ["a", "b"]
    assert client.namespaces == {"a", "b"}
    assert client.secrets["b", "pull"]["type"] == SECRET_TYPE
    assert ("apply", "a", "llmd-gke", True, False) in client.calls
    assert first["versions"] == {"a": "uid-a/11", "b": "uid-b/12"}
    assert first["diff"] == {"before": {"namespaces": ["a"]}, "after": {"namespaces": ["a", "b"]}}

    again = run(client, ["a", "b"])
    assert again["changed"] is False and again["changed_namespaces"] == []
    assert again["versions"] == first["versions"]  # a no-op apply keeps the version

    rotated = run(client, ["a", "b"], data=base64.b64encode(b'{"auths": {}}').decode())
    assert rotated["changed_namespaces"] == ["a", "b"]
    assert rotated["versions"] != first["versions"]


def test_check_mode_dry_runs_and_counts_secrets_of_new_namespaces_as_changes():
    client = FakeClient(namespaces=["a"])
    got = run(client, ["a", "new"], check_mode=True)
    assert got["new_namespaces"] == ["new"]
    assert got["changed_namespaces"] == ["a", "new"]
    assert set(got["versions"]) == {"a"}  # nothing to dry-run in a namespace not there yet
    assert ("create", "new", True) in client.calls
    assert ("apply", "a", "llmd-gke", True, True) in client.calls
    assert not any(c[0] == "apply" and c[1] == "new" for c in client.calls)
    assert client.namespaces == {"a"} and client.secrets == {}


def test_an_api_error_on_the_secret_names_status_and_reason_only():
    invalid = KubeError(
        f"APPLY secrets pull: 422 Invalid: data[.dockerconfigjson]: Invalid value: {DATA}",
        status=422,
        reason="Invalid",
    )
    client = FakeClient(namespaces=["a"], fail_apply=invalid)
    with pytest.raises(KubeError) as caught:
        run(client, ["a"])
    assert str(caught.value) == "cannot apply Secret pull in namespace a: 422 Invalid"
    assert caught.value.status == 422


def test_secret_forms_cover_the_encodings_of_the_credentials():
    forms = secret_forms(DATA)
    assert {DATA, PAIR, "robot:S3cret-Pass"} <= forms
    assert json.loads(base64.b64decode(DATA)) == json.loads(
        next(f for f in forms if f.startswith("{"))
    )
    assert secret_forms("not base64 at all!") == {"not base64 at all!"}
