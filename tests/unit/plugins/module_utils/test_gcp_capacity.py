"""Preflight's GCP capacity checks against the emulator's Compute and Cloud Quotas APIs."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from ansible_collections.llmd.gke.plugins.module_utils.gcp_capacity import (
    CapacityOptionError,
    check_capacity,
    quota_value,
    tpu_family,
)

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "tests" / "emulator"))
from llmd_emulator.testing import running_emulator  # noqa: E402

TOKEN = "ya29.capacity-unit-secret"
ZONE = "europe-west4-a"
REGION = "europe-west4"
FAST = dict(max_retries=2, backoff_base=0.01, backoff_max=0.02, retry_budget=2.0)
ON_DEMAND_ID = "TPUS-PER-TPU-FAMILY-per-project-region"
SPOT_ID = "PREEMPTIBLE-TPUS-PER-TPU-FAMILY-per-project-region"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    with running_emulator(tmp_path_factory.mktemp("capacity"), time_scale=0.01) as endpoints:
        yield endpoints


@pytest.fixture(autouse=True)
def no_endpoint_override(monkeypatch):
    for service in ("CONTAINER", "COMPUTE", "CLOUDQUOTAS"):
        monkeypatch.delenv(f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{service}", raising=False)


@pytest.fixture
def faults(emulator):
    """add(**spec) injects a fault; all faults are removed after the test."""
    url = f"{emulator.admin_url}/faults"

    def add(**spec) -> None:
        response = requests.post(url, json=spec, timeout=10)
        assert response.status_code == 201, response.text

    yield add
    assert requests.delete(url, timeout=10).status_code == 200


@pytest.fixture
def tpu_quota(emulator):
    """set(value, quota_id=ON_DEMAND_ID) sets the CT6E quota of europe-west4; 64 again after."""

    def put(value: int, quota_id: str = ON_DEMAND_ID) -> None:
        entry = {"dimensions": {"region": REGION, "tpu_family": "CT6E"}, "value": value}
        emulator.admin_post(
            "/config",
            {"gke": {"quotas": {"compute.googleapis.com": {quota_id: {"values": [entry]}}}}},
        )

    yield put
    put(64)
    put(64, SPOT_ID)


def params(emulator, **overrides) -> dict:
    base = {
        "auth_kind": "accesstoken",
        "access_token": TOKEN,
        "service_account_file": None,
        "service_account_contents": None,
        "service_account_email": None,
        "scopes": None,
        "project": "proj",
        "zone": ZONE,
        "machine_types": ["n1-standard-4"],
        "tpu": {"machine_type": "ct6e-standard-4t", "chips": 12, "spot": False, "quota_id": None},
        "external_ips": 2,
        "compute_api_endpoint": emulator.gke_url + "/compute/",
        "quotas_api_endpoint": emulator.gke_url + "/cloudquotas/",
    }
    base.update(overrides)
    return base


def run(emulator, **overrides) -> dict:
    result = check_capacity(params(emulator, **overrides), client_options=FAST)
    assert TOKEN not in str(result)
    return result


def by_name(result: dict, name: str) -> list[dict]:
    return [c for c in result["checks"] if c["name"] == name]


# --------------------------------------------------------------------------- all good
def test_sandbox_settings_pass_every_check(emulator):
    result = run(emulator)
    assert result["problems"] == [] and result["warnings"] == [], result
    assert [(c["name"], c["status"]) for c in result["checks"]] == [
        ("machine_type", "ok"),
        ("machine_type", "ok"),
        ("tpu_quota", "ok"),
        ("external_ips", "ok"),
    ]
    types = [c["details"]["machine_type"] for c in by_name(result, "machine_type")]
    assert types == ["n1-standard-4", "ct6e-standard-4t"]  # the TPU type is checked too
    quota = by_name(result, "tpu_quota")[0]
    assert quota["details"]["limit"] == 64 and quota["details"]["chips_needed"] == 12
    assert "covers the pool's maximum of 12 chips" in quota["message"]
    assert result["project"] == "proj" and result["region"] == REGION


def test_without_tpu_and_ips_only_machine_types_are_read(emulator):
    result = run(emulator, tpu=None, external_ips=0, machine_types=["e2-standard-4"] * 2)
    assert [(c["name"], c["details"]["machine_type"]) for c in result["checks"]] == [
        ("machine_type", "e2-standard-4")
    ]


# --------------------------------------------------------------------------- machine types
def test_tpu_type_missing_in_zone_names_the_zones_that_offer_it(emulator):
    result = run(emulator, zone="europe-west1-b", tpu=None)
    assert [c["status"] for c in result["checks"]] == ["ok", "ok"]  # n1-standard-4, IPs
    result = run(emulator, zone="europe-west1-b", machine_types=["ct6e-standard-4t"], tpu=None)
    [problem] = result["problems"]
    assert problem.startswith("Zone europe-west1-b does not offer machine type ct6e-standard-4t")
    assert "Zones that offer it: asia-northeast1-b, europe-west4-a," in problem
    assert "us-east5-a" in problem and "stock-outs" in problem
    check = by_name(result, "machine_type")[0]
    assert "europe-west1-b" not in check["details"]["zones_offering"]


def test_other_type_missing_in_zone_names_the_zones_from_the_api(emulator):
    emulator.admin_post(
        "/config",
        {
            "gke": {
                "machine_types": {
                    "m9-capacity-2": {
                        "guestCpus": 2,
                        "memoryMb": 2048,
                        "zones": ["us-central1-a", "europe-west4-b"],
                    }
                }
            }
        },
    )
    result = run(emulator, machine_types=["m9-capacity-2", "zz-unknown-1"], tpu=None)
    first, second = result["problems"]
    assert "does not offer machine type m9-capacity-2" in first
    assert "Zones that offer it: europe-west4-b, us-central1-a. Choose one of them" in first
    assert "does not offer machine type zz-unknown-1" in second
    assert "No zone of the project offers it: check its name" in second
    assert by_name(result, "external_ips")[0]["status"] == "ok"


def test_zones_fall_back_to_the_v6e_list_when_the_api_cannot_list(emulator, faults):
    faults(method="GET", path="/aggregated/machineTypes$", status=403)
    result = run(
        emulator, zone="us-west1-a", machine_types=["ct6e-standard-8t"], tpu=None, external_ips=0
    )
    [problem] = result["problems"]
    assert "TPU v6e is reported in us-central1-b, us-east1-d," in problem
    assert "gcloud compute machine-types list --filter=name=ct6e-standard-8t" in problem


def test_permission_denied_on_machine_types_is_a_warning(emulator, faults):
    message = "Required 'compute.machineTypes.get' permission for 'projects/proj'"
    faults(method="GET", path="/machineTypes/", status=403, message=message)
    result = run(emulator, tpu=None)
    assert result["problems"] == []
    [warning] = result["warnings"]
    assert warning.startswith("Could not check that zone europe-west4-a offers machine type")
    assert "roles/compute.viewer" in warning and "compute.machineTypes.get" in warning
    assert "check it by hand" in warning


def test_compute_api_disabled_is_a_problem_reported_once(emulator, faults):
    message = (
        "Compute Engine API has not been used in project proj before or it is disabled. "
        "Enable it by visiting the console."
    )
    faults(path="^/compute/", status=403, grpc_status="PERMISSION_DENIED", message=message)
    result = run(emulator)
    [problem] = result["problems"]
    assert "the Compute Engine API is not enabled in project proj" in problem
    assert "gcloud services enable compute.googleapis.com --project proj" in problem
    statuses = {c["name"]: c["status"] for c in result["checks"]}
    assert statuses == {"machine_type": "problem", "tpu_quota": "ok", "external_ips": "problem"}
    skipped = by_name(result, "external_ips")[0]["message"]
    assert skipped == (
        "Not checked (the external IP addresses free in europe-west4): the Compute Engine API is "
        "not enabled (see above)."
    )


# --------------------------------------------------------------------------- TPU quota
def test_low_tpu_quota_is_a_problem_with_the_request_to_make(emulator, tpu_quota):
    tpu_quota(8)
    result = run(emulator)
    [problem] = result["problems"]
    assert problem.startswith(
        "TPU chip quota too low: the TPU pool may grow to 12 CT6E chips in europe-west4, but "
        f"quota {ON_DEMAND_ID} (region=europe-west4, tpu_family=CT6E) is 8."
    )
    assert "Request at least 12 for region europe-west4, tpu_family CT6E" in problem
    assert "https://console.cloud.google.com/iam-admin/quotas?project=proj" in problem
    assert "lower the pool's maximum node count" in problem
    assert "us-east5-a" in problem and "europe-west4-a" not in problem
    assert by_name(result, "tpu_quota")[0]["details"]["limit"] == 8
    # Exactly the maximum is enough.
    tpu_quota(12)
    assert run(emulator)["problems"] == []


def test_spot_pools_read_the_preemptible_quota(emulator, tpu_quota):
    tpu_quota(4, SPOT_ID)
    spot = {"machine_type": "ct6e-standard-4t", "chips": 12, "spot": True, "quota_id": None}
    [problem] = run(emulator, tpu=spot)["problems"]
    assert problem.startswith("Spot (preemptible) TPU chip quota too low")
    assert SPOT_ID in problem
    assert run(emulator)["problems"] == []  # the on-demand quota is untouched


def test_permission_denied_on_quota_is_a_warning_naming_what_was_not_checked(emulator, faults):
    message = (
        "Permission 'cloudquotas.quotas.get' denied on resource '//cloudquotas.googleapis.com/"
        f"projects/proj/locations/global/services/compute.googleapis.com/quotaInfos/{ON_DEMAND_ID}'"
    )
    faults(method="GET", path="/quotaInfos/", status=403, message=message)
    result = run(emulator)
    assert result["problems"] == []
    [warning] = result["warnings"]
    assert warning.startswith("Could not check the TPU chip quota for CT6E in europe-west4")
    assert f"no permission to read quota {ON_DEMAND_ID}" in warning
    assert "is at least 12" in warning
    assert "roles/cloudquotas.viewer" in warning and "cloudquotas.quotas.get" in warning
    assert by_name(result, "tpu_quota")[0]["status"] == "warning"
    assert by_name(result, "external_ips")[0]["status"] == "ok"


def test_unknown_quota_ids_are_a_warning_after_trying_each(emulator, faults):
    # The first spot id answers 404 here; the second one is unknown to the emulator as well.
    faults(method="GET", path=f"/quotaInfos/{SPOT_ID}$", status=404, message="not found")
    spot = {"machine_type": "ct6e-standard-4t", "chips": 12, "spot": True, "quota_id": None}
    result = run(emulator, tpu=spot)
    assert result["problems"] == []
    [warning] = result["warnings"]
    assert warning.startswith(
        "Could not confirm the Spot (preemptible) TPU chip quota for CT6E in europe-west4: the "
        f"Cloud Quotas API knows none of the quota ids {SPOT_ID}, "
        "PREEMPTIBLE-TPU-V6E-per-project-region"
    )
    assert "Give the right id as the TPU quota id" in warning
    given = dict(spot, spot=False, quota_id="MY-TPU-QUOTA-per-project-region")
    [warning] = run(emulator, tpu=given)["warnings"]
    assert "quota ids MY-TPU-QUOTA-per-project-region for" in warning


def test_quota_endpoint_unreachable_is_a_problem(emulator):
    result = run(emulator, quotas_api_endpoint="http://127.0.0.1:9/")
    [problem] = result["problems"]
    assert problem.startswith("Could not reach the Cloud Quotas API to check the TPU chip quota")
    assert "quotas_api_endpoint / CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDQUOTAS" in problem
    assert by_name(result, "machine_type")[0]["status"] == "ok"


def test_transient_quota_failure_is_a_warning(emulator, faults):
    faults(method="GET", path="/quotaInfos/", status=503)
    [warning] = run(emulator)["warnings"]
    assert "Could not check the TPU chip quota" in warning and "Run again" in warning


# --------------------------------------------------------------------------- external IPs
def test_too_few_external_ips_is_a_problem(emulator):
    emulator.admin_post("/config", {"gke": {"region_quotas": {REGION: {"IN_USE_ADDRESSES": 1}}}})
    try:
        result = run(emulator)
    finally:
        emulator.admin_post(
            "/config", {"gke": {"region_quotas": {REGION: {"IN_USE_ADDRESSES": 575}}}}
        )
    [problem] = result["problems"]
    assert problem.startswith(
        "Only 1 external IP addresses are free in europe-west4 (IN_USE_ADDRESSES: 0 of 1 in use); "
        "the deployment needs at least 2."
    )
    assert "gcloud compute addresses list --filter=region:europe-west4 --project proj" in problem
    assert "request a higher IN_USE_ADDRESSES quota for europe-west4" in problem
    details = by_name(result, "external_ips")[0]["details"]
    assert (details["limit"], details["usage"], details["available"]) == (1, 0, 1)
    assert "Only" not in " ".join(run(emulator, external_ips=1)["problems"])


# --------------------------------------------------------------------------- credentials
def test_rejected_credentials_are_reported_once_per_api(emulator, faults):
    faults(path="^/(compute|cloudquotas)/", status=401, message="Request had invalid credentials.")
    result = run(emulator)
    assert len(result["problems"]) == 2, result["problems"]
    assert all("rejected the credentials" in p for p in result["problems"])
    assert "GOOGLE_APPLICATION_CREDENTIALS" in result["problems"][0]
    assert len(result["checks"]) == 4 and all(c["status"] == "problem" for c in result["checks"])


def test_missing_credentials_are_a_problem_without_any_call(emulator, tmp_path):
    result = run(emulator, auth_kind="serviceaccount", access_token=None, service_account_file=None)
    [problem] = result["problems"]
    assert problem.startswith("GCP capacity not checked: the GCP credentials could not be loaded")
    assert "service_account_file" in problem
    assert [c["name"] for c in result["checks"]] == ["credentials"]


# --------------------------------------------------------------------------- options and helpers
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"zone": "europe-west4"}, "is not a zone such as europe-west4-a"),
        ({"external_ips": -1}, "external_ips must be 0 or more"),
        ({"compute_api_endpoint": "compute.example"}, "compute_api_endpoint: Invalid Compute"),
    ],
)
def test_bad_options_are_refused_before_any_call(overrides, message):
    unreachable = SimpleNamespace(gke_url="http://127.0.0.1:9")  # never called
    with pytest.raises(CapacityOptionError) as err:
        check_capacity(params(unreachable, **overrides))
    assert message in str(err.value)


def test_quota_value_takes_the_most_specific_matching_entry():
    info = {
        "dimensionsInfos": [
            {
                "dimensions": {"region": "us-east5", "tpu_family": "CT6E"},
                "details": {"value": "32"},
            },
            {"dimensions": {"region": "europe-west4"}, "details": {"value": "16"}},
            {"dimensions": {}, "details": {"value": "0"}},
        ]
    }
    wanted = {"region": "europe-west4", "tpu_family": "CT6E"}
    assert quota_value(info, wanted) == (16, {"region": "europe-west4"})
    assert quota_value(info, dict(wanted, region="us-east5"))[0] == 32
    assert quota_value(info, dict(wanted, region="asia-east1"))[0] == 0
    assert quota_value({"dimensionsInfos": info["dimensionsInfos"][:1]}, wanted) == (None, None)
    assert tpu_family("ct6e-standard-4t") == "CT6E"


def test_unlimited_quota_passes(emulator, tpu_quota):
    tpu_quota(-1)
    result = run(emulator)
    assert result["problems"] == []
    assert "is unlimited" in by_name(result, "tpu_quota")[0]["message"]
