"""GcpClient against the real emulator of the GKE API (no mocks): retries, errors, Operations."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests

from ansible_collections.llmd.gke.plugins.module_utils.gcp import (
    DEFAULT_ENDPOINT,
    GcpApiError,
    GcpClient,
    GcpTimeout,
    hint_for,
    normalize_endpoint,
)

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "tests" / "emulator"))
from llmd_emulator.testing import running_emulator  # noqa: E402

TOKEN = "ya29.unit-test-secret-token"
LOCATION = "europe-west4-a"
PREFIX = f"projects/proj/locations/{LOCATION}"
CLUSTER = "unit"
FAST = dict(max_retries=4, backoff_base=0.01, backoff_max=0.05, retry_budget=5.0)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    with running_emulator(tmp_path_factory.mktemp("gcp-emulator"), time_scale=0.01) as endpoints:
        # Emulated durations short enough for unit tests (0.01 real s per emulated s).
        endpoints.admin_post(
            "/config",
            {
                "gke": {
                    "durations": {
                        "CREATE_CLUSTER": 10,
                        "CREATE_NODE_POOL": 5,
                        "CREATE_TPU_NODE_POOL": 5,
                        "DELETE_CLUSTER": 5,
                        "DELETE_NODE_POOL": 5,
                        "SET_NODE_POOL_SIZE": 10,
                    }
                }
            },
        )
        yield endpoints


def params(endpoint: str | None, **overrides) -> dict:
    base = {
        "auth_kind": "accesstoken",
        "access_token": TOKEN,
        "service_account_file": None,
        "service_account_contents": None,
        "service_account_email": None,
        "scopes": None,
        "project": "proj",
        "location": LOCATION,
        "api_endpoint": endpoint,
    }
    base.update(overrides)
    return base


@pytest.fixture(autouse=True)
def no_endpoint_override(monkeypatch):
    for service in ("CONTAINER", "COMPUTE", "CLOUDQUOTAS"):
        monkeypatch.delenv(f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{service}", raising=False)


@pytest.fixture
def client(emulator):
    return GcpClient(params(emulator.gke_url), **FAST)


@pytest.fixture(scope="module")
def cluster(emulator):
    """A RUNNING cluster shared by the tests of this module, created through the client."""
    gcp = GcpClient(params(emulator.gke_url), **FAST)
    op = gcp.post(f"{PREFIX}/clusters", {"cluster": {"name": CLUSTER, "initialNodeCount": 1}})
    gcp.wait_operation(op, timeout=10, poll_interval=0.02)
    return f"{PREFIX}/clusters/{CLUSTER}"


@pytest.fixture
def faults(emulator):
    """add(**spec) injects a fault; all faults are removed after the test."""
    url = f"{emulator.admin_url}/faults"

    def add(**spec) -> int:
        response = requests.post(url, json=spec, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()["faults"][0]["id"]

    yield add
    assert requests.delete(url, timeout=10).status_code == 200


def hits(emulator, fault_id: int) -> int:
    listed = requests.get(f"{emulator.admin_url}/faults", timeout=10).json()["faults"]
    return {f["id"]: f for f in listed}[fault_id]["hits"]


# --------------------------------------------------------------------------- endpoint
@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, DEFAULT_ENDPOINT),
        ("", DEFAULT_ENDPOINT),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/"),
        ("http://127.0.0.1:8080/v1/", "http://127.0.0.1:8080/"),
        ("https://proxy.example//container//v1/", "https://proxy.example/container/"),
        ("https://container.googleapis.com/", DEFAULT_ENDPOINT),
    ],
)
def test_endpoint_forms(given, expected):
    assert normalize_endpoint(given) == expected


def test_invalid_endpoint_is_refused():
    with pytest.raises(GcpApiError) as err:
        normalize_endpoint("container.googleapis.com")
    assert "trailing v1/ is optional" in err.value.hint


def test_endpoint_override_from_environment(emulator, cluster, monkeypatch):
    monkeypatch.setenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER", emulator.gke_url + "/v1/")
    gcp = GcpClient(params(None), **FAST)
    assert gcp.api_root == emulator.gke_url + "/v1/"
    assert gcp.get(cluster)["status"] == "RUNNING"
    # The api_endpoint parameter wins over the environment.
    monkeypatch.setenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER", "http://127.0.0.1:9/")
    assert GcpClient(params(emulator.gke_url), **FAST).api_root == emulator.gke_url + "/v1/"


def test_default_endpoint_without_override():
    assert GcpClient(params(None), **FAST).api_root == "https://container.googleapis.com/v1/"


def test_token_is_never_sent_off_the_endpoint(client):
    with pytest.raises(GcpApiError) as err:
        client.get("https://elsewhere.example/v1/projects/proj")
    assert "not on the API endpoint" in str(err.value)


# --------------------------------------------------------------------------- requests
def test_success_and_operation_progress(client, cluster):
    assert client.get(cluster)["status"] == "RUNNING"
    assert client.get(f"/v1/{cluster}")["name"] == CLUSTER  # leading /v1/ accepted too
    seen = []
    pool = {"name": "ok", "initialNodeCount": 1, "config": {"machineType": "e2-standard-4"}}
    op = client.post(f"{cluster}/nodePools", {"nodePool": pool})
    done = client.wait_operation(
        op, timeout=10, poll_interval=0.02, progress=lambda o, t: seen.append((o["status"], t))
    )
    assert done["status"] == "DONE" and "error" not in done
    assert seen and seen[-1][0] == "DONE"
    assert all(b >= a for (_s1, a), (_s2, b) in zip(seen, seen[1:], strict=False))
    assert client.get(f"{cluster}/nodePools/ok")["status"] == "RUNNING"
    client.wait_operation(client.delete(f"{cluster}/nodePools/ok"), 10, 0.02)
    assert client.get_or_none(f"{cluster}/nodePools/ok") is None


def test_429_twice_then_success(client, cluster, faults, emulator):
    fault = faults(method="GET", path=f"/clusters/{CLUSTER}$", status=429, times=2)
    assert client.get(cluster)["name"] == CLUSTER
    assert hits(emulator, fault) == 2


def test_503_then_success(client, cluster, faults, emulator):
    fault = faults(method="GET", path=f"/clusters/{CLUSTER}$", status=503, times=1)
    assert client.get(cluster)["name"] == CLUSTER
    assert hits(emulator, fault) == 1


def test_operation_in_progress_is_retried(client, cluster, faults, emulator):
    fault = faults(method="POST", path=":setSize$", status=400, times=2)
    op = client.post(f"{cluster}/nodePools/default-pool:setSize", {"nodeCount": 1})
    assert hits(emulator, fault) == 2
    client.wait_operation(op, timeout=10, poll_interval=0.02)


def test_real_busy_cluster_is_waited_for(emulator, cluster):
    """The emulator's own 400 FAILED_PRECONDITION while another operation runs on the cluster."""

    class Log:  # stands in for AnsibleModule.debug, where the client logs its retries
        lines: list[str] = []

        def debug(self, line: str) -> None:
            self.lines.append(line)

    log = Log()
    gcp = GcpClient(
        params(emulator.gke_url), log, max_retries=30, backoff_base=0.02, backoff_max=0.1
    )
    first = gcp.post(f"{cluster}/nodePools/default-pool:setSize", {"nodeCount": 1})
    second = gcp.post(f"{cluster}/nodePools/default-pool:setSize", {"nodeCount": 1})
    assert first["name"] != second["name"]
    assert any("400 FAILED_PRECONDITION; retry 1/30" in line for line in log.lines), log.lines
    assert TOKEN not in " ".join(log.lines)
    assert gcp.wait_operation(first, 10, 0.02)["status"] == "DONE"
    gcp.wait_operation(second, 10, 0.02)


def test_retries_are_bounded(client, cluster, faults, emulator):
    fault = faults(method="GET", path=f"/clusters/{CLUSTER}$", status=503)
    with pytest.raises(GcpApiError) as err:
        client.get(cluster)
    assert err.value.status == 503 and err.value.attempts == FAST["max_retries"] + 1
    assert hits(emulator, fault) == FAST["max_retries"] + 1
    assert "transient" in err.value.hint


def test_retry_budget_in_seconds(emulator, cluster, faults):
    faults(method="GET", path=f"/clusters/{CLUSTER}$", status=429)
    gcp = GcpClient(params(emulator.gke_url), max_retries=50, backoff_base=0.05, retry_budget=0.2)
    with pytest.raises(GcpApiError) as err:
        gcp.get(cluster)
    assert err.value.status == 429 and err.value.hint.startswith("Gave up retrying after")
    assert "concurrent operations" in err.value.hint


# --------------------------------------------------------------------------- errors and hints
def test_403_quota_has_a_quota_hint_and_is_not_retried(client, cluster, faults, emulator):
    fault = faults(method="POST", path="/nodePools$", status=403, times=2)
    pool = {"name": "tpu", "initialNodeCount": 1, "config": {"machineType": "ct6e-standard-4t"}}
    with pytest.raises(GcpApiError) as err:
        client.post(f"{cluster}/nodePools", {"nodePool": pool})
    assert hits(emulator, fault) == 1
    error = err.value
    assert (error.status, error.grpc_status) == (403, "PERMISSION_DENIED")
    assert "Insufficient regional quota" in error.message
    assert "request a quota increase" in error.hint
    assert "TPUS_PER_TPU_FAMILY in europe-west4," in error.hint
    assert "lower the node pool's max node count" in error.hint
    assert error.hint in str(error)


def test_403_permission_names_the_role_and_permission(client, cluster, faults):
    message = "Permission 'container.clusters.get' denied on resource (or it may not exist)."
    faults(method="GET", path=f"/clusters/{CLUSTER}$", status=403, message=message, times=1)
    with pytest.raises(GcpApiError) as err:
        client.get(cluster)
    assert "roles/container.admin" in err.value.hint
    assert "container.clusters.get" in err.value.hint


def test_404_409_and_401_hints(client, cluster, faults):
    with pytest.raises(GcpApiError) as err:
        client.get(f"{PREFIX}/clusters/nope")
    assert err.value.status == 404 and "project (proj)" in err.value.hint
    assert f"location ({LOCATION})" in err.value.hint
    with pytest.raises(GcpApiError) as err:
        client.post(f"{PREFIX}/clusters", {"cluster": {"name": CLUSTER, "initialNodeCount": 1}})
    assert err.value.status == 409 and "already exists" in err.value.hint
    faults(method="GET", path=f"/clusters/{CLUSTER}$", status=401, times=1)
    with pytest.raises(GcpApiError) as err:
        client.get(cluster)
    assert err.value.status == 401 and "GOOGLE_APPLICATION_CREDENTIALS" in err.value.hint


def test_operation_done_with_stockout_error(client, cluster, faults):
    faults(path="/nodePools$", operation_error={"code": 8}, times=1)
    pool = {
        "name": "stockout",
        "initialNodeCount": 1,
        "config": {"machineType": "ct6e-standard-4t"},
    }
    op = client.post(f"{cluster}/nodePools", {"nodePool": pool})
    with pytest.raises(GcpApiError) as err:
        client.wait_operation(op, timeout=10, poll_interval=0.02)
    error = err.value
    assert error.grpc_status == "RESOURCE_EXHAUSTED" and error.operation["status"] == "DONE"
    assert "does not have enough resources available" in error.message
    assert "Try another zone" in error.hint and "us-east5-a" in error.hint
    assert "europe-west4-a," not in error.hint  # the failing zone is not proposed again
    assert "reservation" in error.hint and "spot" in error.hint
    client.wait_operation(client.delete(f"{cluster}/nodePools/stockout"), 10, 0.02)


def test_operation_done_with_error_message_is_surfaced(client, faults):
    faults(method="POST", path="/clusters$", operation_error={"code": 3, "message": "bad shape"})
    op = client.post(f"{PREFIX}/clusters", {"cluster": {"name": "broken", "initialNodeCount": 1}})
    # A selfLink on another host is not followed: the path is built from name and location.
    op["selfLink"] = "https://container.googleapis.com/v1/" + op["selfLink"].split("/v1/", 1)[1]
    with pytest.raises(GcpApiError) as err:
        client.wait_operation(op, timeout=10, poll_interval=0.02)
    assert "bad shape" in str(err.value) and err.value.grpc_status == "INVALID_ARGUMENT"
    client.wait_operation(client.delete(f"{PREFIX}/clusters/broken"), 10, 0.02)


def test_operation_timeout(emulator, client):
    emulator.admin_post("/config", {"gke": {"durations": {"CREATE_CLUSTER": 100000}}})
    try:
        op = client.post(f"{PREFIX}/clusters", {"cluster": {"name": "slow", "initialNodeCount": 1}})
    finally:
        emulator.admin_post("/config", {"gke": {"durations": {"CREATE_CLUSTER": 10}}})
    polls = []
    with pytest.raises(GcpTimeout) as err:
        client.wait_operation(
            op, timeout=0.3, poll_interval=0.05, progress=lambda o, t: polls.append(t)
        )
    assert err.value.operation["status"] == "RUNNING"
    assert err.value.operation["name"] == op["name"]
    assert 0.3 <= err.value.elapsed < 2 and len(polls) >= 2
    assert "gcloud container operations describe" in str(err.value)


# --------------------------------------------------------------------------- secrets
def test_no_token_in_error_text(client, cluster, faults):
    message = f"Echoed header Authorization: Bearer {TOKEN} and the bare token {TOKEN}."
    faults(method="GET", path=f"/clusters/{CLUSTER}$", status=403, message=message, times=1)
    with pytest.raises(GcpApiError) as err:
        client.get(cluster)
    texts = [str(err.value), repr(err.value), err.value.message, str(err.value.to_dict())]
    for text in texts:
        assert TOKEN not in text
    assert "<redacted>" in err.value.message
    with pytest.raises(GcpApiError) as err:
        client.get(f"{PREFIX}/clusters/nope")
    assert TOKEN not in str(err.value) and "Authorization" not in str(err.value)


# --------------------------------------------------------------------------- other services
COMPUTE_PATH = f"projects/proj/zones/{LOCATION}/machineTypes/n1-standard-4"
QUOTA_PATH = (
    "projects/proj/locations/global/services/compute.googleapis.com/quotaInfos/"
    "TPUS-PER-TPU-FAMILY-per-project-region"
)


@pytest.mark.parametrize(
    ("service", "given", "expected"),
    [
        ("compute", None, "https://compute.googleapis.com/compute/"),
        (
            "compute",
            "https://compute.googleapis.com/compute/v1/",
            "https://compute.googleapis.com/compute/",
        ),
        ("compute", "http://127.0.0.1:8080/compute", "http://127.0.0.1:8080/compute/"),
        ("cloudquotas", "", "https://cloudquotas.googleapis.com/"),
        (
            "cloudquotas",
            "http://127.0.0.1:8080/cloudquotas/v1",
            "http://127.0.0.1:8080/cloudquotas/",
        ),
    ],
)
def test_endpoint_forms_of_other_services(service, given, expected):
    assert normalize_endpoint(given, service) == expected


def test_invalid_endpoint_names_the_service_setting():
    with pytest.raises(GcpApiError) as err:
        normalize_endpoint("compute.googleapis.com", "compute")
    assert "Invalid Compute Engine API endpoint" in str(err.value)
    assert "compute_api_endpoint or CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE" in err.value.hint
    with pytest.raises(ValueError, match="unknown GCP service 'storage'"):
        GcpClient(params(None), service="storage")


def test_each_service_has_its_own_endpoint_setting(emulator, monkeypatch):
    both = params(
        emulator.gke_url,
        compute_api_endpoint=emulator.gke_url + "/compute/v1/",
        quotas_api_endpoint="http://127.0.0.1:9/",
    )
    compute = GcpClient(both, service="compute", **FAST)
    assert compute.api_root == emulator.gke_url + "/compute/v1/"
    assert compute.get(COMPUTE_PATH)["guestCpus"] == 4
    # The explicit endpoint wins over the parameter, which wins over the environment.
    monkeypatch.setenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDQUOTAS", "http://127.0.0.1:9/")
    quotas = GcpClient(both, service="cloudquotas", endpoint=emulator.gke_url + "/cloudquotas/")
    assert quotas.get(QUOTA_PATH)["quotaId"] == "TPUS-PER-TPU-FAMILY-per-project-region"
    monkeypatch.setenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE", emulator.gke_url + "/compute/")
    from_env = GcpClient(params(emulator.gke_url), service="compute", **FAST)
    assert from_env.get(COMPUTE_PATH)["name"] == "n1-standard-4"
    # The GKE client is unchanged: api_endpoint and its own variable only.
    assert GcpClient(both, **FAST).api_root == emulator.gke_url + "/v1/"


def test_hints_name_the_service(emulator, faults):
    compute = GcpClient(
        params(None, compute_api_endpoint=emulator.gke_url + "/compute/"), service="compute", **FAST
    )
    faults(
        method="GET",
        path="/machineTypes/",
        status=403,
        message="Required 'compute.machineTypes.get' permission for 'projects/proj'",
        times=1,
    )
    with pytest.raises(GcpApiError) as err:
        compute.get(COMPUTE_PATH)
    assert "roles/compute.viewer (Compute Viewer) on project proj" in err.value.hint
    assert "the permission compute.machineTypes.get" in err.value.hint
    assert "container" not in err.value.hint
    disabled = (
        "Cloud Quotas API has not been used in project proj before or it is disabled. Enable it "
        "at https://console.developers.google.com/apis/api/cloudquotas.googleapis.com/overview"
    )
    faults(method="GET", path="/quotaInfos/", status=403, message=disabled, times=1)
    quotas = GcpClient(
        params(None), service="cloudquotas", endpoint=emulator.gke_url + "/cloudquotas/", **FAST
    )
    with pytest.raises(GcpApiError) as err:
        quotas.get(QUOTA_PATH)
    assert "Enable the Cloud Quotas API: gcloud services enable cloudquotas.googleapis.com" in (
        err.value.hint
    )
    with pytest.raises(GcpApiError) as err:
        quotas.get(QUOTA_PATH.replace("TPUS-PER", "NOPE"))
    assert err.value.status == 404 and "quota id" in err.value.hint
    faults(method="GET", path="/regions/", status=503)
    with pytest.raises(GcpApiError) as err:
        compute.get("projects/proj/regions/europe-west4")
    assert (
        err.value.hint
        == "The Compute Engine API had a transient failure: run again in a few minutes."
    )
    unreachable = GcpClient(params(None), service="compute", endpoint="http://127.0.0.1:9/", **FAST)
    with pytest.raises(GcpApiError) as err:
        unreachable.get(COMPUTE_PATH)
    assert "compute_api_endpoint / CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE" in err.value.hint


def test_permission_name_is_not_taken_from_an_api_host():
    message = "Permission denied on resource '//cloudquotas.googleapis.com/projects/p/x'"
    hint = hint_for(403, "PERMISSION_DENIED", message, service="cloudquotas")
    assert "the missing permission" in hint and "roles/cloudquotas.viewer" in hint
