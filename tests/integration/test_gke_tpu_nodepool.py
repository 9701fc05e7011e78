"""llmd.gke.gke_tpu_nodepool through the real ansible-playbook against the emulator's GKE API.

One emulator (and one cluster, created through the GKE REST API) serves the whole module; each
test uses node pools of its own names. Emulated durations are short and time is compressed, so
an Operation lasts about one poll (1 s). Tasks run in batches (one playbook per test) with the
ansible.posix.json callback, and the results are asserted here by task name.
"""

from __future__ import annotations

import json
import sys
import time

import pytest
import requests
from conftest import Run

from llmd_emulator.testing import running_emulator

PROJECT = "llmd-np-test"
ZONE = "europe-west4-a"
CLUSTER = "np"
PREFIX = f"/v1/projects/{PROJECT}/locations/{ZONE}"
POOLS = f"{PREFIX}/clusters/{CLUSTER}/nodePools"
TIME_SCALE = 0.005
# Emulated seconds; x TIME_SCALE they are well under the module's 1 s poll interval.
DURATIONS = {
    "CREATE_CLUSTER": 60,
    "CREATE_TPU_NODE_POOL": 100,
    "DELETE_NODE_POOL": 40,
    "SET_NODE_POOL_SIZE": 20,
    "UPDATE_CLUSTER": 20,
    "UPGRADE_NODES": 20,
}


class Gke:
    """Direct GKE REST and admin calls to the module's emulator (the test's own view)."""

    def __init__(self, endpoints) -> None:
        self.endpoints = endpoints
        self.url = endpoints.gke_url
        self.admin = endpoints.admin_url
        self.http = requests.Session()
        self.http.headers["Authorization"] = "Bearer test-token"

    def call(self, method: str, path: str, body=None) -> requests.Response:
        return self.http.request(method, self.url + path, json=body, timeout=10)

    def wait(self, response: requests.Response) -> dict:
        assert response.status_code == 200, response.text
        operation = response.json()
        deadline = time.monotonic() + 20
        while operation["status"] != "DONE":
            assert time.monotonic() < deadline, operation
            time.sleep(0.05)
            operation = self.http.get(operation["selfLink"], timeout=10).json()
        assert "error" not in operation, operation
        return operation

    def create_pool(self, name: str, **config) -> None:
        """The pool SINGLE_HOST describes (plus config), created directly and waited for."""
        body = {
            "name": name,
            "config": {"machineType": "ct6e-standard-4t", **config},
            "initialNodeCount": 1,
            "autoscaling": {"enabled": True, "minNodeCount": 0, "maxNodeCount": 3},
        }
        self.wait(self.call("POST", POOLS, {"nodePool": body}))

    def pool(self, name: str) -> dict | None:
        response = self.call("GET", f"{POOLS}/{name}")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return response.json()

    def operations_on(self, name: str) -> list[dict]:
        operations = self.call("GET", f"{PREFIX}/operations").json()["operations"]
        return [o for o in operations if o["targetLink"].endswith(f"/nodePools/{name}")]

    def add_fault(self, **spec) -> int:
        response = requests.post(f"{self.admin}/faults", json=spec, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()["faults"][0]["id"]

    def faults(self) -> dict[int, dict]:
        answer = requests.get(f"{self.admin}/faults", timeout=10).json()
        return {f["id"]: f for f in answer["faults"]}

    def clear_faults(self) -> None:
        requests.delete(f"{self.admin}/faults", timeout=10).raise_for_status()

    def durations(self, **durations) -> None:
        response = requests.post(
            f"{self.admin}/config", json={"gke": {"durations": durations}}, timeout=10
        )
        assert response.status_code < 300, response.text


@pytest.fixture(scope="module")
def gke(tmp_path_factory):
    """The module's emulator with a RUNNING zonal cluster."""
    state = tmp_path_factory.mktemp("nodepool-emulator")
    config = state / "config.json"
    config.write_text(json.dumps({"gke": {"durations": DURATIONS}}))
    with running_emulator(state, time_scale=TIME_SCALE, config=config) as endpoints:
        api = Gke(endpoints)
        api.wait(
            api.call(
                "POST",
                f"{PREFIX}/clusters",
                {"cluster": {"name": CLUSTER, "initialNodeCount": 1}},
            )
        )
        yield api


@pytest.fixture
def faults(gke):
    """Faults added by a test are removed after it, whatever happens."""
    yield gke
    gke.clear_faults()


@pytest.fixture
def tasks(playbook, tmp_path, gke):
    """tasks(list of tasks, *ansible-playbook args, json_output=True) -> (Run, results by name).

    The tasks run on localhost with module_defaults pointing the module at the emulator.
    """

    def run(task_list, *args, env=None, json_output=True):
        play = {
            "name": "gke_tpu_nodepool",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "module_defaults": {
                "llmd.gke.gke_tpu_nodepool": {
                    "api_endpoint": gke.url,
                    "auth_kind": "accesstoken",
                    "access_token": "test-token",
                    "project": PROJECT,
                    "location": ZONE,
                    "cluster": CLUSTER,
                    "poll_interval": 1,
                    "wait_timeout": 120,
                }
            },
            "tasks": task_list,
        }
        path = tmp_path / "playbook.yml"
        path.write_text(json.dumps([play], indent=1))
        extra = {"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"} if json_output else {}
        result = playbook(str(path), "-i", "localhost,", *args, env={**extra, **(env or {})})
        return result, (results_of(result) if json_output else {})

    return run


def results_of(run: Run) -> dict[str, dict]:
    """The localhost result of each task, by task name, from the json callback's report."""
    start = run.output.find("{")
    try:
        report = json.loads(run.output[start:])
    except ValueError:
        pytest.fail(f"no JSON report in the output:\n{run.output}")
    results = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            results[task["task"]["name"]] = task["hosts"]["localhost"]
    return results


def pool_task(name: str, task_name: str | None = None, check: bool = False, **options) -> dict:
    task = {
        "name": task_name or name,
        "llmd.gke.gke_tpu_nodepool": {"name": options.pop("pool", name), **options},
        "ignore_errors": True,
    }
    if check:
        task["check_mode"] = True
    return task


def ok(result: dict) -> dict:
    assert not result.get("failed"), result.get("msg")
    return result


def failed(result: dict) -> str:
    assert result.get("failed"), result
    return result["msg"]


SINGLE_HOST = {"topology": "2x2", "node_count": 1, "autoscaling": {"min_nodes": 0, "max_nodes": 3}}


# ----------------------------------------------------------------------------------- tests
def test_four_step_idempotence_and_diff(tasks, gke):
    pool = "idem"
    spec = dict(SINGLE_HOST, labels={"team.example.com/owner": "llm"})
    run, res = tasks(
        [
            pool_task(pool, "check create", check=True, **spec),
            pool_task(pool, "create", **spec),
            pool_task(pool, "again", **spec),
            pool_task(pool, "check again", check=True, **spec),
            pool_task(pool, "raise max", **{**spec, "autoscaling": {"max_nodes": 4}}),
            pool_task(pool, "raise max again", **{**spec, "autoscaling": {"max_nodes": 4}}),
        ],
        "--diff",
    )
    assert run.rc == 0, run.output

    check = ok(res["check create"])
    assert check["changed"] is True
    assert check["node_pool"] is None
    assert check["diff"]["before"] == {}
    assert check["diff"]["after"]["topology"] == "2x2"
    assert check["diff"]["after"]["labels"] == {"team.example.com/owner": "llm"}
    assert check["max_chips"] == 12

    created = ok(res["create"])
    assert created["changed"] is True
    assert created["status"] == "RUNNING"
    assert created["operation"]["operationType"] == "CREATE_NODE_POOL"
    assert created["operation"]["status"] == "DONE"
    assert (created["chips_per_node"], created["nodes"], created["total_chips"]) == (4, 1, 4)
    assert created["max_chips"] == 12
    assert created["slice"]["multi_host"] is False
    assert created["adopted"] is False
    # a single-host slice is created without placementPolicy.tpuTopology
    assert "placementPolicy" not in created["node_pool"]
    assert created["node_pool"]["config"]["labels"] == {"team.example.com/owner": "llm"}

    assert ok(res["again"])["changed"] is False
    assert ok(res["check again"])["changed"] is False

    raised = ok(res["raise max"])
    assert raised["changed"] is True
    assert raised["diff"] == {
        "before": {"autoscaling": {"enabled": True, "min_nodes": 0, "max_nodes": 3}},
        "after": {"autoscaling": {"enabled": True, "min_nodes": 0, "max_nodes": 4}},
    }
    assert raised["max_chips"] == 16
    assert ok(res["raise max again"])["changed"] is False
    assert gke.pool(pool)["autoscaling"]["maxNodeCount"] == 4
    # check mode created nothing (the create above did), the re-runs changed nothing
    operations = [o["operationType"] for o in gke.operations_on(pool)]
    assert operations == ["CREATE_NODE_POOL", "UPDATE_CLUSTER"]


def test_updates_fixed_size_and_multi_host_slice(tasks, gke):
    fixed = {"topology": "2x2", "node_count": 1, "autoscaling": {"enabled": False}}
    taint = {"key": "team.example.com/dedicated", "value": "llm", "effect": "NO_SCHEDULE"}
    run, res = tasks(
        [
            pool_task("fixed", "create fixed", **fixed),
            pool_task("fixed", "resize", **{**fixed, "node_count": 2}),
            pool_task("fixed", "resize again", **{**fixed, "node_count": 2}),
            pool_task(
                "fixed",
                "label and taint",
                labels={"a.example.com/x": "1"},
                taints=[taint],
                **{**fixed, "node_count": 2},
            ),
            pool_task(
                "fixed",
                "label and taint again",
                labels={"a.example.com/x": "1"},
                taints=[taint],
                **{**fixed, "node_count": 2},
            ),
            pool_task("slice", "multi-host", topology="2x4", node_count=2),
            pool_task("slice", "multi-host again", topology="2x4", node_count=2),
        ]
    )
    assert run.rc == 0, run.output
    assert ok(res["create fixed"])["nodes"] == 1
    resized = ok(res["resize"])
    assert resized["changed"] is True
    assert resized["operation"]["operationType"] == "SET_NODE_POOL_SIZE"
    assert (resized["nodes"], resized["total_chips"]) == (2, 8)
    # the size is read from the instance group, so a resized pool is not resized again
    assert ok(res["resize again"])["changed"] is False
    assert ok(res["label and taint"])["changed"] is True
    assert ok(res["label and taint again"])["changed"] is False
    config = gke.pool("fixed")["config"]
    assert config["labels"] == {"a.example.com/x": "1"}
    assert config["taints"] == [taint]
    # one Operation per change: create, setSize, labels, taints
    types = [o["operationType"] for o in gke.operations_on("fixed")]
    assert types == ["CREATE_NODE_POOL", "SET_NODE_POOL_SIZE", "UPGRADE_NODES", "UPGRADE_NODES"]

    multi = ok(res["multi-host"])
    assert multi["changed"] is True
    assert multi["slice"]["multi_host"] is True
    assert (multi["chips_per_node"], multi["nodes"], multi["total_chips"]) == (4, 2, 8)
    assert gke.pool("slice")["placementPolicy"] == {"type": "COMPACT", "tpuTopology": "2x4"}
    assert ok(res["multi-host again"])["changed"] is False


def test_bad_input_fails_before_any_api_call(tasks, faults):
    # Any request at all would hit this fault (and then be retried): its hits must stay 0.
    tripwire = faults.add_fault(status=503, times=1)
    run, res = tasks(
        [
            pool_task("bad", "2x2 on 8t", machine_type="ct6e-standard-8t", topology="2x2"),
            pool_task(
                "bad", "min above max", topology="2x2", autoscaling={"min_nodes": 3, "max_nodes": 1}
            ),
            pool_task("bad", "multi-host wrong count", topology="4x4", node_count=2),
            pool_task(
                "bad",
                "reserved label",
                topology="2x2",
                labels={"cloud.google.com/gke-tpu-topology": "4x4"},
            ),
        ]
    )
    assert run.rc == 0, run.output
    assert "topology 2x2 is not offered on ct6e-standard-8t" in failed(res["2x2 on 8t"])
    assert "minimum 3 is greater than the maximum 1" in failed(res["min above max"])
    assert "the node count must be 4 (or 0), not 2" in failed(res["multi-host wrong count"])
    assert "cloud.google.com/gke-tpu-topology collide" in failed(res["reserved label"])
    assert faults.faults()[tripwire]["hits"] == 0


def test_retryable_faults_are_retried_then_succeed(tasks, faults):
    throttled = faults.add_fault(method="POST", path=r"/nodePools$", status=429, times=1)
    unavailable = faults.add_fault(method="POST", path=r"/nodePools$", status=503, times=1)
    busy = faults.add_fault(
        method="POST", path=r"/nodePools/retry:setAutoscaling$", status=400, times=1
    )
    run, res = tasks(
        [
            pool_task("retry", "create through 429 and 503", **SINGLE_HOST),
            pool_task(
                "retry",
                "update through in-progress",
                **{**SINGLE_HOST, "autoscaling": {"max_nodes": 2}},
            ),
        ]
    )
    assert run.rc == 0, run.output
    assert ok(res["create through 429 and 503"])["changed"] is True
    assert ok(res["update through in-progress"])["changed"] is True
    hits = {k: v["hits"] for k, v in faults.faults().items()}
    assert (hits[throttled], hits[unavailable], hits[busy]) == (1, 1, 1)
    assert faults.pool("retry")["autoscaling"]["maxNodeCount"] == 2


def test_failures_carry_the_cause_and_the_fix(tasks, faults):
    # Consumed in this order: the HTTP fault by the first create, the Operation faults by the
    # next two creates.
    faults.add_fault(method="POST", path=r"/nodePools$", status=403, times=1)
    faults.add_fault(
        method="POST",
        path=r"/nodePools$",
        operation_error={"code": 3, "message": "Boot disk of 9 GB is too small for ct6e."},
        times=1,
    )
    faults.add_fault(method="POST", path=r"/nodePools$", pool_status="ERROR", times=1)
    run, res = tasks(
        [
            pool_task("quota", "quota", **SINGLE_HOST),
            pool_task("operr", "operation error", **SINGLE_HOST),
            pool_task("broken", "pool in error", **SINGLE_HOST),
            pool_task("broken", "pool in error again", **SINGLE_HOST),
            pool_task("broken", "delete the broken pool", state="absent"),
        ]
    )
    assert run.rc == 0, run.output
    quota = failed(res["quota"])
    assert "Insufficient regional quota" in quota
    assert "Quota is too low: request a quota increase" in quota
    assert res["quota"]["error"]["status"] == 403
    assert res["quota"]["changed"] is False

    operr = failed(res["operation error"])
    assert "Boot disk of 9 GB is too small for ct6e." in operr
    assert res["operation error"]["operation"]["operationType"] == "CREATE_NODE_POOL"
    assert res["operation error"]["changed"] is True

    broken = failed(res["pool in error"])
    assert "Node pool broken is ERROR" in broken
    assert "does not have enough resources available" in broken  # GKE's status message
    assert "stock-out" in broken  # the hint
    assert res["pool in error"]["status"] == "ERROR"
    assert "is ERROR" in failed(res["pool in error again"])
    assert ok(res["delete the broken pool"])["changed"] is True
    assert faults.pool("broken") is None


def test_409_adopts_a_matching_pool_and_names_the_differences(tasks, faults):
    faults.create_pool("adopt")
    faults.create_pool("clash", spot=True)
    # The pools appear between the module's read and its create: the read answers 404 once.
    faults.add_fault(method="GET", path=r"/nodePools/adopt$", status=404, times=1)
    faults.add_fault(method="GET", path=r"/nodePools/clash$", status=404, times=1)
    run, res = tasks(
        [
            pool_task("adopt", "adopt", **SINGLE_HOST),
            pool_task("clash", "clash", spot=False, labels={"a.example.com/b": "c"}, **SINGLE_HOST),
        ]
    )
    assert run.rc == 0, run.output
    adopted = ok(res["adopt"])
    assert (adopted["changed"], adopted["adopted"]) == (False, True)
    assert adopted["status"] == "RUNNING"
    message = failed(res["clash"])
    assert "already exists" in message and "differs from the request in: labels, spot" in message
    assert res["clash"]["differences"] == ["labels", "spot"]
    assert [o["operationType"] for o in faults.operations_on("adopt")] == ["CREATE_NODE_POOL"]


def test_immutable_change_is_refused_unless_recreation_is_allowed(tasks, gke):
    gke.create_pool("immut")
    run, res = tasks(
        [
            pool_task("immut", "to spot", spot=True, **SINGLE_HOST),
            pool_task(
                "immut",
                "to 8t",
                machine_type="ct6e-standard-8t",
                topology="2x4",
                node_count=1,
                autoscaling={"max_nodes": 3},
            ),
            pool_task(
                "immut",
                "recreate in check mode",
                check=True,
                spot=True,
                allow_recreate=True,
                **SINGLE_HOST,
            ),
            pool_task("immut", "recreate", spot=True, allow_recreate=True, **SINGLE_HOST),
            pool_task("immut", "recreate again", spot=True, allow_recreate=True, **SINGLE_HOST),
        ],
        "--diff",
    )
    assert run.rc == 0, run.output
    spot = failed(res["to spot"])
    assert "cannot change in place: spot (False -> True)" in spot
    assert "Nothing was changed" in spot and "allow_recreate: true" in spot
    assert res["to spot"]["immutable"] == ["spot"]
    to8t = failed(res["to 8t"])
    assert res["to 8t"]["immutable"] == ["machine_type", "topology"]
    assert "machine_type ('ct6e-standard-4t' -> 'ct6e-standard-8t')" in to8t
    predicted = ok(res["recreate in check mode"])
    assert (predicted["changed"], predicted["recreate"]) == (True, True)
    assert predicted["diff"]["after"] == {"spot": True}
    recreated = ok(res["recreate"])
    assert (recreated["changed"], recreated["recreated"]) == (True, True)
    assert recreated["node_pool"]["config"]["spot"] is True
    assert ok(res["recreate again"])["changed"] is False
    # the refusals and the check mode run changed nothing: no Operation between the first
    # create and the recreation's delete
    assert [o["operationType"] for o in gke.operations_on("immut")] == [
        "CREATE_NODE_POOL",
        "DELETE_NODE_POOL",
        "CREATE_NODE_POOL",
    ]


def test_wait_false_then_wait_and_state_absent_idempotent(tasks, gke):
    gone = {"state": "absent"}
    gke.create_pool("gone")
    # A 2 s create, so that the second task usually finds it still running.
    gke.durations(CREATE_TPU_NODE_POOL=400)
    try:
        run, res = tasks(
            [
                pool_task("later", "start", wait=False, **SINGLE_HOST),
                pool_task("later", "wait for it", **SINGLE_HOST),
                pool_task("gone", "delete in check mode", check=True, **gone),
                pool_task("gone", "delete", **gone),
                pool_task("gone", "delete again", **gone),
                pool_task("gone", "delete again in check mode", check=True, **gone),
            ],
            "--diff",
        )
    finally:
        gke.durations(CREATE_TPU_NODE_POOL=DURATIONS["CREATE_TPU_NODE_POOL"])
    assert run.rc == 0, run.output
    started = ok(res["start"])
    assert (started["changed"], started["status"]) == (True, "PROVISIONING")
    assert started["operation"]["status"] != "DONE"
    waited = ok(res["wait for it"])  # waits for the running create, starts nothing
    assert (waited["changed"], waited["status"]) == (False, "RUNNING")
    assert [o["operationType"] for o in gke.operations_on("later")] == ["CREATE_NODE_POOL"]

    predicted = ok(res["delete in check mode"])
    assert predicted["changed"] is True
    assert predicted["diff"]["after"] == {} and predicted["diff"]["before"]["topology"] == "2x2"
    deleted = ok(res["delete"])
    assert deleted["changed"] is True
    assert deleted["operation"]["operationType"] == "DELETE_NODE_POOL"
    assert deleted["node_pool"] is None
    assert ok(res["delete again"])["changed"] is False
    assert ok(res["delete again in check mode"])["changed"] is False
    assert gke.pool("gone") is None


def test_progress_lines_during_a_long_create_and_diff_output(tasks, gke):
    # A 3 s create with a 1 s progress interval: the action plugin prints its progress.
    gke.durations(CREATE_TPU_NODE_POOL=600)
    try:
        run, _res = tasks(
            [
                pool_task("slow", "Create the slow pool", **SINGLE_HOST),
                pool_task(
                    "slow", "Raise its maximum", **{**SINGLE_HOST, "autoscaling": {"max_nodes": 5}}
                ),
            ],
            "--diff",
            env={"LLMD_GKE_PROGRESS_INTERVAL": "1"},
            json_output=False,
        )
    finally:
        gke.durations(CREATE_TPU_NODE_POOL=DURATIONS["CREATE_TPU_NODE_POOL"])
    assert run.rc == 0, run.output
    progress = [line for line in run.output.splitlines() if "CREATE_NODE_POOL" in line]
    assert progress, run.output
    assert "Create the slow pool: CREATE_NODE_POOL operation-" in progress[0]
    assert "RUNNING" in progress[0] and "s elapsed (timeout 120 s)" in progress[0]
    assert "- max_nodes: 3" in run and "+ max_nodes: 5" in run
    assert "localhost : ok=2 changed=2" in " ".join(run.output.split())


def test_a_stockout_fails_fast_and_says_the_cluster_stays_locked(tasks, gke):
    # GKE meets GCE_STOCKOUT 30 emulated s (0.15 s) into the create and retries until it gives
    # up (1200 emulated s = 6 s here, tens of minutes on GKE); the module must not wait for that.
    gke.durations(STOCKOUT_GIVE_UP=1200)
    response = requests.post(
        f"{gke.admin}/scenario", json={"add": ["gke-tpu-stockout"]}, timeout=10
    )
    assert response.status_code == 200, response.text
    try:
        started = time.monotonic()
        run, res = tasks([pool_task("stock", "create in a stock-out", **SINGLE_HOST)])
        took = time.monotonic() - started
    finally:
        requests.post(f"{gke.admin}/scenario", json={"remove": ["gke-tpu-stockout"]}, timeout=10)
    assert run.rc == 0, run.output
    message = failed(res["create in a stock-out"])
    assert took < 6, took  # one playbook (about 4 s of Ansible here) and a poll or two
    assert "[GCE_STOCKOUT]" in message and "europe-west4-a" in message
    assert "Try another zone" in message and "us-east5-a" in message
    assert "reservation" in message and "spot VMs" in message and "smaller slice" in message
    assert "keeps the cluster locked until its own retries end" in message
    assert res["create in a stock-out"]["operation"]["status"] == "RUNNING"
    (create,) = gke.operations_on("stock")
    assert create["status"] == "RUNNING"  # GKE still retries: nothing could cancel it
    # Once GKE gives up the pool is in ERROR; deleting it frees the name.
    deadline = time.monotonic() + 20
    while gke.pool("stock")["status"] != "ERROR":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    run, res = tasks([pool_task("stock", "delete the failed pool", state="absent")])
    assert ok(res["delete the failed pool"])["changed"] is True
    assert gke.pool("stock") is None
