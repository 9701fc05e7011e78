"""k8s_wait: resource paths, the watch loop (resume, 410, backoff, deadline), the raw client."""

from __future__ import annotations

import json

import pytest
import urllib3
import yaml
from kubernetes import client as k8s_client

from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import (
    Deadline,
    Gone,
    KubeClient,
    KubeError,
    Resource,
    WaitTimeout,
    Watcher,
    condition,
    is_true,
    pod_ready,
    wait_for,
    wait_for_object,
)

TOKEN = "kube-token-0123456789abcdef"
PODS = Resource("v1", "pods", "ns")
GATEWAYS = Resource("gateway.networking.k8s.io/v1", "gateways", "opendatahub")


# ------------------------------------------------------------------------------ fakes
class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def obj(name: str, rv: str, ns: str = "ns", **status) -> dict:
    return {
        "metadata": {"name": name, "namespace": ns, "resourceVersion": rv},
        "status": status,
    }


class FakeClient:
    """list() answers from `lists`; watch() plays the next script of `watches`.

    A script is a list of (type, object) events or exceptions; each watch call advances the
    clock by `watch_cost` seconds (the time the stream stayed open).
    """

    def __init__(self, clock: Clock, lists, watches, watch_cost: float = 5.0) -> None:
        self.clock = clock
        self.lists = list(lists)
        self.watches = list(watches)
        self.watch_cost = watch_cost
        self.list_calls: list[tuple] = []
        self.watch_calls: list[tuple] = []

    def list(self, resource, label_selector=None, field_selector=None):
        self.list_calls.append((resource, label_selector, field_selector))
        answer = self.lists.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def watch(self, resource, rv, timeout_seconds, label_selector=None, field_selector=None):
        self.watch_calls.append((rv, timeout_seconds, label_selector, field_selector))
        assert len(self.watch_calls) < 1000, "the watch loop spins"
        script = self.watches.pop(0) if self.watches else []

        def events():
            for item in script:
                if isinstance(item, Exception):
                    raise item
                yield item
            self.clock.now += min(self.watch_cost, timeout_seconds)

        return events()


def listing(rv: str, *items: dict) -> dict:
    return {"metadata": {"resourceVersion": rv}, "items": list(items)}


def watcher(fake: FakeClient, sleeps: list | None = None, **kwargs) -> Watcher:
    record = sleeps if sleeps is not None else []

    def sleep(seconds: float) -> None:
        record.append(seconds)
        fake.clock.now += seconds

    return Watcher(fake, PODS, sleep=sleep, **kwargs)


# ----------------------------------------------------------------------------- basics
def test_resource_paths_for_core_group_and_cluster_scoped_kinds():
    assert PODS.path() == "/api/v1/namespaces/ns/pods"
    assert PODS.path("p") == "/api/v1/namespaces/ns/pods/p"
    assert GATEWAYS.path("gw") == (
        "/apis/gateway.networking.k8s.io/v1/namespaces/opendatahub/gateways/gw"
    )
    classes = Resource("gateway.networking.k8s.io/v1", "gatewayclasses")
    assert classes.path("istio") == "/apis/gateway.networking.k8s.io/v1/gatewayclasses/istio"
    assert GATEWAYS.describe("gw") == (
        "gateways.gateway.networking.k8s.io gw in namespace opendatahub"
    )


def test_deadline_counts_on_the_given_clock():
    clock = Clock()
    deadline = Deadline(10, clock)
    clock.now += 4
    assert deadline.remaining() == 6 and deadline.elapsed() == 4 and not deadline.expired()
    clock.now += 7
    assert deadline.remaining() == 0 and deadline.expired()
    assert Deadline(-3, clock).expired()


def test_conditions_and_pod_readiness():
    pod = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    assert condition(pod, "Ready")["status"] == "False"
    assert condition(pod, "Other") is None and condition(None, "Ready") is None
    assert not pod_ready(pod) and not is_true({}, "Ready")
    pod["status"]["conditions"][0]["status"] = "True"
    assert pod_ready(pod)


# ------------------------------------------------------------------------- the watch loop
def test_watch_resumes_from_the_last_resource_version_and_applies_events():
    clock = Clock()
    fake = FakeClient(
        clock,
        [listing("10", obj("a", "9"))],
        [
            [("MODIFIED", obj("a", "11", phase="Running")), ("ADDED", obj("b", "12"))],
            [("BOOKMARK", {"metadata": {"resourceVersion": "20"}})],
            [("DELETED", obj("a", "21"))],
        ],
    )
    seen = []
    for snapshot in watcher(fake).snapshots(Deadline(60, clock)):
        seen.append(sorted(snapshot))
        if len(seen) == 4:
            break
    assert seen == [["ns/a"], ["ns/a"], ["ns/a", "ns/b"], ["ns/b"]]
    # Each watch starts where the previous one (or the bookmark) left off.
    assert [call[0] for call in fake.watch_calls] == ["10", "12", "20"]
    assert len(fake.list_calls) == 1


def test_gone_relists_and_watches_from_the_new_version():
    clock = Clock()
    fake = FakeClient(
        clock,
        [listing("10", obj("a", "9")), listing("50", obj("a", "49", phase="Running"))],
        [[Gone("too old", status=410)], [("MODIFIED", obj("a", "51", phase="Done"))]],
    )
    states = []
    for snapshot in watcher(fake).snapshots(Deadline(60, clock)):
        states.append(snapshot["ns/a"]["status"].get("phase"))
        if len(states) == 3:
            break
    assert states == [None, "Running", "Done"]
    assert len(fake.list_calls) == 2
    assert [call[0] for call in fake.watch_calls] == ["10", "50"]


def test_transient_errors_back_off_and_are_remembered_but_denials_propagate():
    clock = Clock()
    unreachable = KubeError("cannot reach", reason="Unreachable")
    busy = KubeError("busy", status=503)
    fake = FakeClient(
        clock,
        [listing("1", obj("a", "1"))],
        [[unreachable], [busy], [("MODIFIED", obj("a", "2"))]],
    )
    sleeps: list[float] = []
    w = watcher(fake, sleeps)
    gen = w.snapshots(Deadline(60, clock))
    next(gen)
    assert next(gen)["ns/a"]["metadata"]["resourceVersion"] == "2"
    assert sleeps == [0.5, 1.0]  # exponential backoff
    assert w.last_error is busy

    denied = FakeClient(clock, [listing("1")], [[KubeError("forbidden", status=403)]])
    gen = watcher(denied).snapshots(Deadline(60, clock))
    next(gen)
    with pytest.raises(KubeError, match="forbidden"):
        next(gen)


def test_errors_of_the_first_list_propagate_even_when_transient():
    fake = FakeClient(Clock(), [KubeError("cannot reach", reason="Unreachable")], [])
    with pytest.raises(KubeError, match="cannot reach"):
        next(watcher(fake).snapshots(Deadline(60, fake.clock)))


def test_watches_never_ask_for_more_than_the_time_left_and_stop_at_the_deadline():
    clock = Clock()
    fake = FakeClient(clock, [listing("1")], [], watch_cost=400)
    w = watcher(fake, max_watch_seconds=290)
    snapshots = list(w.snapshots(Deadline(700, clock)))
    assert snapshots == [{}]
    timeouts = [call[1] for call in fake.watch_calls]
    assert timeouts == [290, 290, 120]
    assert clock.now == 800


def test_an_empty_watch_that_ends_at_once_is_not_retried_in_a_busy_loop():
    clock = Clock()
    fake = FakeClient(clock, [listing("1")], [], watch_cost=0)
    sleeps: list[float] = []
    list(watcher(fake, sleeps).snapshots(Deadline(10, clock)))
    assert sleeps[:4] == [0.5, 1.0, 2.0, 4.0]
    assert sum(sleeps) == pytest.approx(10)
    assert len(fake.watch_calls) == len(sleeps)


def test_wait_for_returns_the_first_satisfying_result():
    clock = Clock()
    fake = FakeClient(
        clock,
        [listing("1", obj("a", "1"))],
        [[("MODIFIED", obj("a", "2", phase="Pending")), ("MODIFIED", obj("a", "3", phase="Up"))]],
    )

    def up(snapshot):
        return snapshot["ns/a"]["status"].get("phase") == "Up" and "yes"

    result, snapshot = wait_for(watcher(fake), up, Deadline(60, clock))
    assert result == "yes" and snapshot["ns/a"]["metadata"]["resourceVersion"] == "3"


def test_wait_for_times_out_with_the_last_state_and_error():
    clock = Clock()
    fake = FakeClient(
        clock,
        [listing("1", obj("a", "1"))],
        [[("MODIFIED", obj("a", "2", phase="Pending"))], [KubeError("busy", status=503)]],
    )
    with pytest.raises(WaitTimeout) as caught:
        wait_for(watcher(fake), lambda s: False, Deadline(30, clock), "a to be up")
    assert caught.value.last["ns/a"]["status"]["phase"] == "Pending"
    assert caught.value.last_error.status == 503
    assert "a to be up" in str(caught.value) and "last API error: busy" in str(caught.value)
    assert caught.value.elapsed >= 30


def test_a_zero_budget_evaluates_the_current_state_once():
    clock = Clock()
    fake = FakeClient(clock, [listing("1", obj("a", "1"))], [])
    checked = []
    with pytest.raises(WaitTimeout):
        wait_for(watcher(fake), lambda s: checked.append(s) and False, Deadline(0, clock))
    assert len(checked) == 1 and fake.watch_calls == []


def test_wait_for_object_selects_by_name_and_sees_absence():
    clock = Clock()
    fake = FakeClient(
        clock,
        [listing("1")],
        [[("ADDED", obj("gw", "2", ns="opendatahub", phase="Up"))]],
    )
    states = []

    def check(found):
        states.append(found and found["status"]["phase"])
        return found is not None

    result, found = wait_for_object(fake, GATEWAYS, "gw", check, Deadline(60, clock))
    assert result is True and found["metadata"]["name"] == "gw"
    assert states == [None, "Up"]
    assert fake.list_calls[0][2] == "metadata.name=gw"
    assert fake.watch_calls[0][3] == "metadata.name=gw"

    gone = FakeClient(clock, [listing("1")], [])
    with pytest.raises(WaitTimeout) as caught:
        wait_for_object(gone, GATEWAYS, "gw", lambda o: False, Deadline(0, clock))
    assert caught.value.last is None


# ------------------------------------------------------------------------- the raw client
class Raw:
    """A urllib3-like streamed response."""

    def __init__(self, chunks, fail_with=None) -> None:
        self.chunks = chunks
        self.fail_with = fail_with
        self.closed = False

    def stream(self, amt=None, decode_content=True):
        yield from self.chunks
        if self.fail_with:
            raise self.fail_with

    def read(self):
        return b"".join(self.chunks)

    def close(self):
        self.closed = True

    def release_conn(self):
        pass


class Answer:
    def __init__(self, status, raw) -> None:
        self.status = status
        self.response = raw

    def read(self):
        return self.response.read()


def api_client(answers):
    """A real kubernetes ApiClient (URL and auth building) whose transport is scripted."""
    configuration = k8s_client.Configuration(host="https://k8s.example:6443")
    configuration.api_key = {"BearerToken": f"Bearer {TOKEN}"}
    api = k8s_client.ApiClient(configuration)
    calls = []

    def call_api(method, url, header_params=None, _request_timeout=None, **_kwargs):
        calls.append((method, url, header_params, _request_timeout))
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    api.call_api = call_api
    return api, calls


def events(*items) -> list[bytes]:
    text = "".join(json.dumps({"type": t, "object": o}) + "\n" for t, o in items)
    data = text.encode()
    return [data[:7], data[7:40], data[40:]]  # lines split across chunks


def test_get_and_list_build_authenticated_requests_and_404_is_none():
    body = json.dumps(obj("p", "5")).encode()
    missing = json.dumps({"kind": "Status", "reason": "NotFound", "code": 404}).encode()
    api, calls = api_client(
        [Answer(200, Raw([body])), Answer(404, Raw([missing])), Answer(200, Raw([b"{}"]))]
    )
    kube = KubeClient(api_client=api)
    assert kube.get(PODS, "p")["metadata"]["resourceVersion"] == "5"
    assert kube.get(PODS, "nope") is None
    kube.list(PODS, label_selector="app=x", field_selector="metadata.name=p")
    method, url, headers, timeout = calls[0]
    assert (method, url) == ("GET", "https://k8s.example:6443/api/v1/namespaces/ns/pods/p")
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert timeout == (10.0, 30.0)
    assert calls[2][1].endswith("/pods?labelSelector=app%3Dx&fieldSelector=metadata.name%3Dp")


def test_api_errors_carry_status_reason_and_hint_without_the_token():
    denied = json.dumps(
        {"kind": "Status", "reason": "Forbidden", "message": f"user with {TOKEN} denied"}
    ).encode()
    api, _calls = api_client([Answer(403, Raw([denied]))])
    with pytest.raises(KubeError) as caught:
        KubeClient(api_client=api).list(GATEWAYS)
    error = caught.value
    assert (error.status, error.reason, error.retryable) == (403, "Forbidden", False)
    assert "RBAC" in error.hint
    assert TOKEN not in str(error) and "<redacted>" in error.message


def test_unreachable_api_is_a_retryable_error_naming_the_host():
    failure = urllib3.exceptions.MaxRetryError(None, "/x", reason=ConnectionRefusedError(111))
    api, _calls = api_client([failure])
    with pytest.raises(KubeError) as caught:
        KubeClient(api_client=api).list(PODS)
    assert caught.value.status is None and caught.value.retryable
    assert "https://k8s.example:6443" in caught.value.message
    assert "kubectl cluster-info" in caught.value.hint


def test_watch_streams_events_across_chunks_with_bounded_timeouts():
    raw = Raw(
        events(("ADDED", obj("a", "2")), ("BOOKMARK", {"metadata": {"resourceVersion": "3"}}))
    )
    api, calls = api_client([Answer(200, raw)])
    got = list(KubeClient(api_client=api).watch(PODS, "1", 12.2, label_selector="app=x"))
    assert [kind for kind, _o in got] == ["ADDED", "BOOKMARK"]
    assert raw.closed
    url, timeout = calls[0][1], calls[0][3]
    assert "watch=true" in url and "resourceVersion=1" in url and "timeoutSeconds=13" in url
    assert "allowWatchBookmarks=true" in url and "labelSelector=app%3Dx" in url
    assert timeout == (10.0, 18.0)


def test_watch_error_events_and_answers():
    expired = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    api, _calls = api_client([Answer(200, Raw(events(("ERROR", expired))))])
    with pytest.raises(Gone):
        list(KubeClient(api_client=api).watch(PODS, "1", 5))

    failing = {"kind": "Status", "code": 500, "reason": "InternalError", "message": "boom"}
    api, _calls = api_client([Answer(200, Raw(events(("ERROR", failing))))])
    with pytest.raises(KubeError) as caught:
        list(KubeClient(api_client=api).watch(PODS, "1", 5))
    assert caught.value.status == 500 and caught.value.retryable

    gone = json.dumps({"kind": "Status", "code": 410, "reason": "Gone"}).encode()
    api, _calls = api_client([Answer(410, Raw([gone]))])
    with pytest.raises(Gone):
        list(KubeClient(api_client=api).watch(PODS, "1", 5))


def test_a_dropped_watch_just_ends_the_stream():
    dropped = urllib3.exceptions.ProtocolError("connection broken")
    raw = Raw(events(("MODIFIED", obj("a", "2"))), fail_with=dropped)
    api, _calls = api_client([Answer(200, raw)])
    got = list(KubeClient(api_client=api).watch(PODS, "1", 5))
    assert [kind for kind, _o in got] == ["MODIFIED"] and raw.closed


# ---------------------------------------------------------------------- kubeconfig loading
def write_kubeconfig(path, contexts=("one",)):
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1"}}],
                "users": [{"name": "u", "user": {"token": TOKEN}}],
                "contexts": [
                    {"name": n, "context": {"cluster": "c", "user": "u"}} for n in contexts
                ],
                "current-context": contexts[0],
            }
        )
    )
    return str(path)


def test_kubeconfig_and_context_are_loaded_and_the_token_is_redacted(tmp_path):
    path = write_kubeconfig(tmp_path / "config", ("one", "two"))
    kube = KubeClient.from_params({"kubeconfig": path, "context": "two"})
    assert kube.host == "https://10.0.0.1"
    assert kube.redact(f"Authorization: Bearer {TOKEN}") == "Authorization: <redacted>"


def test_kubeconfig_problems_say_what_to_do_without_the_token(tmp_path):
    with pytest.raises(KubeError) as caught:
        KubeClient(str(tmp_path / "absent"))
    assert caught.value.reason == "KubeconfigMissing" and "get-credentials" in caught.value.hint

    path = write_kubeconfig(tmp_path / "config")
    with pytest.raises(KubeError) as caught:
        KubeClient(path, "nope")
    assert caught.value.reason == "KubeconfigInvalid"
    assert "nope" in caught.value.message and TOKEN not in str(caught.value)


def test_writes_and_discovery_build_the_requests_kubernetes_takes():
    ok = json.dumps({"metadata": {"name": "s"}}).encode()
    resources = json.dumps({"kind": "APIResourceList", "resources": [{"name": "x"}]}).encode()
    missing = json.dumps({"kind": "Status", "reason": "NotFound", "code": 404}).encode()
    api, calls = api_client(
        [
            Answer(201, Raw([ok])),
            Answer(200, Raw([ok])),
            Answer(200, Raw([resources])),
            Answer(404, Raw([missing])),
        ]
    )
    kube = KubeClient(api_client=api)
    ns = Resource("v1", "namespaces")
    kube.create(ns, {"metadata": {"name": "n"}}, dry_run=True)
    secrets = Resource("v1", "secrets", "n")
    kube.apply(secrets, {"metadata": {"name": "s"}}, "llmd-gke", force=True)
    assert kube.discover("x.io/v1") == [{"name": "x"}]
    assert kube.discover("y.io/v1") is None
    (method, url, headers, _t), (method2, url2, headers2, _t2) = calls[0], calls[1]
    assert (method, url) == ("POST", "https://k8s.example:6443/api/v1/namespaces?dryRun=All")
    assert headers["Content-Type"] == "application/json"
    assert method2 == "PATCH"
    assert url2.endswith("/api/v1/namespaces/n/secrets/s?fieldManager=llmd-gke&force=true")
    assert headers2["Content-Type"] == "application/apply-patch+yaml"
    assert calls[2][1].endswith("/apis/x.io/v1")
