# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Preflight's GCP capacity checks, before anything is created (module gcp_capacity_info).

- the zone offers each machine type (Compute ``machineTypes.get``); when it does not, the zones
  that do are read from the Compute API (``aggregated/machineTypes`` filtered by name);
- the TPU chip quota of the region covers the pool's maximum (Cloud Quotas API ``quotaInfos``;
  the quota ids are not documented as stable, so an id that is not found is a warning naming what
  could not be confirmed, and a caller can give the id);
- enough external IP addresses are free in the region (Compute ``regions.get``,
  ``IN_USE_ADDRESSES`` limit - usage).

Every check ends ``ok``, ``problem`` (the deployment would fail: the message gives the fix) or
``warning`` (it could not be checked, for example no permission to read a quota: the message
says what to check by hand). Nothing here raises for an API answer; credentials that cannot be
loaded or an endpoint that cannot be reached are problems too.
"""

from __future__ import annotations

import re

from ansible_collections.llmd.gke.plugins.module_utils.gcp import (
    GcpApiError,
    GcpClient,
    is_service_disabled,
    normalize_endpoint,
    region_of,
)
from ansible_collections.llmd.gke.plugins.module_utils.gcp_auth import GcpAuthError
from ansible_collections.llmd.gke.plugins.module_utils.tpu import V6E_ZONES

ZONE_RE = re.compile(r"^[a-z]+-[a-z]+\d+-[a-z]$")
OK, PROBLEM, WARNING = "ok", "problem", "warning"

QUOTA_SERVICE = "compute.googleapis.com"
# Quota ids of the Cloud Quotas API for TPU chips used by GKE node pools (Compute Engine quota),
# tried in order. Not confirmed by Google's documentation (see the project's reference notes).
TPU_QUOTA_IDS = ("TPUS-PER-TPU-FAMILY-per-project-region",)
SPOT_TPU_QUOTA_IDS = (
    "PREEMPTIBLE-TPUS-PER-TPU-FAMILY-per-project-region",
    "PREEMPTIBLE-TPU-V6E-per-project-region",
)
ADDRESS_METRIC = "IN_USE_ADDRESSES"
# Retries for a preflight: short, so an API that keeps failing is reported within a minute.
CLIENT_OPTIONS = dict(max_retries=3, backoff_base=1.0, backoff_max=8.0, retry_budget=30.0)
MAX_PAGES = 10
MAX_ZONES_SHOWN = 12

CAPACITY_ARG_SPEC = dict(
    zone=dict(type="str", required=True),
    machine_types=dict(type="list", elements="str", default=[]),
    tpu=dict(
        type="dict",
        options=dict(
            machine_type=dict(type="str", required=True),
            chips=dict(type="int", required=True),
            spot=dict(type="bool", default=False),
            quota_id=dict(type="str"),
        ),
    ),
    external_ips=dict(type="int", default=2),
    compute_api_endpoint=dict(type="str"),
    quotas_api_endpoint=dict(type="str"),
)


class CapacityOptionError(ValueError):
    """The options cannot be checked at all (the module fails with this message)."""


def validate_options(params: dict) -> None:
    """Raise CapacityOptionError for options that make no check possible."""
    zone = params.get("zone") or ""
    if not ZONE_RE.match(zone):
        raise CapacityOptionError(f"zone {zone!r} is not a zone such as europe-west4-a")
    if params.get("external_ips") is not None and params["external_ips"] < 0:
        raise CapacityOptionError("external_ips must be 0 or more")
    tpu = params.get("tpu")
    if tpu and tpu["chips"] < 0:
        raise CapacityOptionError("tpu.chips must be 0 or more")
    for service, key in (
        ("compute", "compute_api_endpoint"),
        ("cloudquotas", "quotas_api_endpoint"),
    ):
        if params.get(key):
            try:
                normalize_endpoint(params[key], service)
            except GcpApiError as exc:
                raise CapacityOptionError(f"{key}: {exc}") from exc


def tpu_family(machine_type: str) -> str:
    """The ``tpu_family`` quota dimension of a TPU machine type: ct6e-standard-4t -> CT6E."""
    return machine_type.split("-", 1)[0].upper()


def quota_value(info: dict, wanted: dict) -> tuple[int | None, dict | None]:
    """The quota value in effect for the wanted dimensions, and the dimensions it was set for.

    A DimensionsInfo applies when each of its dimensions has the wanted value; one without a
    dimension applies to every value of it. The most specific one wins. (None, None) when none
    applies. A negative value means unlimited.
    """
    best = None
    for entry in info.get("dimensionsInfos") or []:
        dims = entry.get("dimensions") or {}
        if any(wanted.get(key) != value for key, value in dims.items()):
            continue
        if best is None or len(dims) > len(best.get("dimensions") or {}):
            best = entry
    if best is None:
        return None, None
    try:
        return int((best.get("details") or {}).get("value")), best.get("dimensions") or {}
    except (TypeError, ValueError):
        return None, None


def _zones_text(zones: list[str]) -> str:
    shown = ", ".join(zones[:MAX_ZONES_SHOWN])
    more = len(zones) - MAX_ZONES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


class CapacityChecker:
    """Runs the checks of one module call and collects their results."""

    def __init__(self, params: dict, module=None, client_options: dict | None = None) -> None:
        self.params = params
        self.module = module
        self.client_options = dict(CLIENT_OPTIONS, **(client_options or {}))
        self.zone = params["zone"]
        self.region = region_of(self.zone)
        self.project = None
        self.checks: list[dict] = []
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.clients: dict[str, GcpClient] = {}
        # service -> message of a failure that makes every call to it fail (reported once).
        self.broken: dict[str, str] = {}

    # ----------------------------------------------------------------- results
    def record(self, name: str, status: str, message: str, **details) -> None:
        self.checks.append({"name": name, "status": status, "message": message, "details": details})
        if status == PROBLEM and message not in self.problems:
            self.problems.append(message)
        elif status == WARNING and message not in self.warnings:
            self.warnings.append(message)

    def result(self) -> dict:
        return {
            "checks": self.checks,
            "problems": self.problems,
            "warnings": self.warnings,
            "project": self.project,
            "region": self.region,
        }

    # ----------------------------------------------------------------- clients
    def _connect(self) -> bool:
        endpoints = {
            "compute": self.params.get("compute_api_endpoint"),
            "cloudquotas": self.params.get("quotas_api_endpoint"),
        }
        try:
            for service, endpoint in endpoints.items():
                self.clients[service] = GcpClient(
                    self.params,
                    self.module,
                    service=service,
                    endpoint=endpoint or None,
                    **self.client_options,
                )
        except GcpAuthError as exc:
            self.record(
                "credentials",
                PROBLEM,
                f"GCP capacity not checked: the GCP credentials could not be loaded: {exc}",
            )
            return False
        self.project = self.clients["compute"].project
        if not self.project:
            self.record(
                "credentials",
                PROBLEM,
                "GCP capacity not checked: no project. Set project (GCP_PROJECT) to your GCP "
                "project ID.",
            )
            return False
        return True

    def _get(self, service: str, path: str, params: dict | None = None) -> dict:
        return self.clients[service].get(path, params=params)

    def _skip(self, name: str, service: str, what: str, **details) -> None:
        """A check on a service that failed for good earlier: listed, not reported again."""
        self.checks.append(
            {
                "name": name,
                "status": PROBLEM,
                "message": f"Not checked ({what}): {self.broken[service]} (see above).",
                "details": details,
            }
        )

    def _unchecked(self, name: str, service: str, what: str, exc: GcpApiError, **details) -> None:
        """Record a call that failed for another reason than the answer the check expects."""
        label = self.clients[service].service.label
        error = exc.to_dict()
        if exc.status is None or exc.status == 401:
            # Unreachable endpoint or rejected credentials: every later call fails the same way.
            if exc.status is None:
                message = f"Could not reach the {label} to check {what}: {exc}"
                self.broken[service] = f"the {label} could not be reached"
            else:
                message = f"The {label} rejected the credentials (checking {what}): {exc}"
                self.broken[service] = f"the {label} rejected the credentials"
            self.record(name, PROBLEM, message, error=error, **details)
        elif exc.status == 403 and is_service_disabled(exc.message) and service == "compute":
            # GKE needs the Compute Engine API: a disabled API is a problem, not a blind spot.
            self.broken[service] = f"the {label} is not enabled"
            self.record(
                name,
                PROBLEM,
                f"Could not check {what}: the {label} is not enabled in project {self.project}. "
                f"{exc.hint}",
                error=error,
                **details,
            )
        elif exc.status == 403:
            self.record(
                name,
                WARNING,
                f"Could not check {what}: {exc.message} ({label}, 403). {exc.hint} Until then, "
                "check it by hand.",
                error=error,
                **details,
            )
        else:
            self.record(
                name,
                WARNING,
                f"Could not check {what}: {exc} Run again, or check it by hand.",
                error=error,
                **details,
            )

    # ----------------------------------------------------------------- checks
    def run(self) -> dict:
        if not self._connect():
            return self.result()
        names = list(dict.fromkeys(self.params.get("machine_types") or []))
        tpu = self.params.get("tpu")
        if tpu and tpu["machine_type"] not in names:
            names.append(tpu["machine_type"])
        for name in names:
            self.check_machine_type(name)
        if tpu:
            self.check_tpu_quota(tpu)
        if (self.params.get("external_ips") or 0) > 0:
            self.check_external_ips(self.params["external_ips"])
        return self.result()

    def check_machine_type(self, name: str) -> None:
        check = "machine_type"
        if "compute" in self.broken:
            self._skip(check, "compute", f"machine type {name}", machine_type=name)
            return
        path = f"projects/{self.project}/zones/{self.zone}/machineTypes/{name}"
        try:
            found = self._get("compute", path)
        except GcpApiError as exc:
            if exc.status != 404:
                self._unchecked(
                    check,
                    "compute",
                    f"that zone {self.zone} offers machine type {name}",
                    exc,
                    machine_type=name,
                    zone=self.zone,
                )
                return
            zones, listed = self.zones_offering(name)
            self.record(
                check,
                PROBLEM,
                self._not_offered(name, zones, listed),
                machine_type=name,
                zone=self.zone,
                zones_offering=zones,
            )
            return
        cpus, memory = found.get("guestCpus"), found.get("memoryMb")
        size = f" ({cpus} vCPUs, {memory / 1024:g} GB)" if cpus and memory else ""
        self.record(
            check,
            OK,
            f"Zone {self.zone} offers machine type {name}{size}.",
            machine_type=name,
            zone=self.zone,
            guest_cpus=cpus,
            memory_mb=memory,
        )

    def zones_offering(self, name: str) -> tuple[list[str], bool]:
        """The zones whose machine types include name, and whether the API could list them."""
        zones: set[str] = set()
        page_token = None
        path = f"projects/{self.project}/aggregated/machineTypes"
        try:
            for _page in range(MAX_PAGES):
                query = {"filter": f'name = "{name}"'}
                if page_token:
                    query["pageToken"] = page_token
                answer = self._get("compute", path, query)
                for scope, listed in (answer.get("items") or {}).items():
                    if any(m.get("name") == name for m in listed.get("machineTypes") or []):
                        zones.add(scope.rsplit("/", 1)[-1])
                page_token = answer.get("nextPageToken")
                if not page_token:
                    break
        except GcpApiError:
            return [], False
        return sorted(zones - {self.zone}), True

    def _not_offered(self, name: str, zones: list[str], listed: bool) -> str:
        text = (
            f"Zone {self.zone} does not offer machine type {name} (project {self.project}; or the "
            "zone does not exist). "
        )
        if zones:
            text += f"Zones that offer it: {_zones_text(zones)}. Choose one of them"
            if name.startswith("ct6e-"):
                text += " (TPU capacity also varies: stock-outs are common)"
            return text + ", or another machine type."
        if name.startswith("ct6e-"):
            others = [z for z in V6E_ZONES if z != self.zone]
            source = "The Compute API lists no other zone for it; " if listed else ""
            return (
                text + f"{source}TPU v6e is reported in {', '.join(others)}: check which offer it "
                f"(gcloud compute machine-types list --filter=name={name}) and choose one."
            )
        if listed:
            return text + "No zone of the project offers it: check its name, or choose another one."
        return (
            text + f"Find the zones that offer it (gcloud compute machine-types list "
            f"--filter=name={name}) and choose one, or choose a machine type the zone offers "
            f"(gcloud compute machine-types list --zones={self.zone})."
        )

    def check_tpu_quota(self, tpu: dict) -> None:
        check = "tpu_quota"
        chips, spot = tpu["chips"], tpu["spot"]
        family = tpu_family(tpu["machine_type"])
        kind = "Spot (preemptible) TPU chip" if spot else "TPU chip"
        what = f"the {kind} quota for {family} in {self.region}"
        ids = (
            [tpu["quota_id"]]
            if tpu.get("quota_id")
            else list(SPOT_TPU_QUOTA_IDS if spot else TPU_QUOTA_IDS)
        )
        details = dict(chips_needed=chips, tpu_family=family, region=self.region, spot=spot)
        by_hand = (
            f"Check by hand that the project's {kind} quota for tpu_family {family} in region "
            f"{self.region} is at least {chips}: {self._console()} (metric compute.googleapis.com/"
            f"{'preemptible_' if spot else ''}tpus_per_tpu_family)."
        )
        if chips == 0:
            self.record(check, OK, "The TPU pool holds no chip: no TPU quota needed.", **details)
            return
        if "cloudquotas" in self.broken:
            self._skip(check, "cloudquotas", what, **details)
            return
        info = None
        for quota_id in ids:
            path = (
                f"projects/{self.project}/locations/global/services/{QUOTA_SERVICE}/quotaInfos/"
                f"{quota_id}"
            )
            try:
                info = self._get("cloudquotas", path)
                break
            except GcpApiError as exc:
                if exc.status == 404:
                    continue
                if exc.status == 403:
                    cause = (
                        f"the Cloud Quotas API is not enabled in project {self.project}"
                        if is_service_disabled(exc.message)
                        else f"no permission to read quota {quota_id} from the Cloud Quotas API "
                        f"({exc.message})"
                    )
                    self.record(
                        check,
                        WARNING,
                        f"Could not check {what}: {cause}. {by_hand} To let preflight check it: "
                        f"{exc.hint}",
                        quota_id=quota_id,
                        error=exc.to_dict(),
                        **details,
                    )
                    return
                self._unchecked(check, "cloudquotas", what, exc, quota_id=quota_id, **details)
                return
        if info is None:
            self.record(
                check,
                WARNING,
                f"Could not confirm {what}: the Cloud Quotas API knows none of the quota ids "
                f"{', '.join(ids)} for {QUOTA_SERVICE} in project {self.project} (these ids are "
                f"not documented as stable). {by_hand} Give the right id as the TPU quota id "
                "(gcloud beta quotas info list --service=compute.googleapis.com lists them).",
                quota_ids=ids,
                **details,
            )
            return
        quota_id = info.get("quotaId") or ids[0]
        wanted = {"region": self.region, "zone": self.zone, "tpu_family": family}
        value, dims = quota_value(info, wanted)
        details.update(quota_id=quota_id, metric=info.get("metric"), limit=value)
        if value is None:
            self.record(
                check,
                WARNING,
                f"Could not confirm {what}: quota {quota_id} has no value for region "
                f"{self.region} and tpu_family {family}. {by_hand}",
                **details,
            )
        elif value < 0 or value >= chips:
            limit = "unlimited" if value < 0 else str(value)
            self.record(
                check,
                OK,
                f"{kind} quota {quota_id} ({family}) in {self.region} is {limit}: it "
                f"covers the pool's maximum of {chips} chips (the limit only: chips other pools "
                f"or TPU VMs of the project use in {self.region} count against it too).",
                **details,
            )
        else:
            where = (
                ", ".join(f"{k}={v}" for k, v in sorted((dims or {}).items())) or "project default"
            )
            others = sorted({z for z in V6E_ZONES if region_of(z) != self.region})
            self.record(
                check,
                PROBLEM,
                f"{kind} quota too low: the TPU pool may grow to {chips} {family} chips in "
                f"{self.region}, but quota {quota_id} ({where}) is {value}. Request at least "
                f"{chips} for region {self.region}, tpu_family {family} in the console "
                f"({self._console()}, metric {info.get('metric') or quota_id}); or lower the "
                "pool's maximum node count; or use a zone of another region where the project "
                f"has TPU v6e quota ({', '.join(others)}).",
                **details,
            )

    def _console(self) -> str:
        return f"https://console.cloud.google.com/iam-admin/quotas?project={self.project}"

    def check_external_ips(self, needed: int) -> None:
        check = "external_ips"
        what = f"the external IP addresses free in {self.region}"
        details = dict(needed=needed, region=self.region)
        if "compute" in self.broken:
            self._skip(check, "compute", what, **details)
            return
        try:
            region = self._get("compute", f"projects/{self.project}/regions/{self.region}")
        except GcpApiError as exc:
            if exc.status == 404:
                self.record(
                    check,
                    PROBLEM,
                    f"Region {self.region} was not found in project {self.project}: check the "
                    "zone.",
                    **details,
                )
                return
            self._unchecked(check, "compute", what, exc, **details)
            return
        quota = next(
            (q for q in region.get("quotas") or [] if q.get("metric") == ADDRESS_METRIC), None
        )
        if quota is None:
            self.record(
                check,
                WARNING,
                f"Could not check {what}: region {self.region} reports no {ADDRESS_METRIC} "
                f"quota. Check by hand that at least {needed} are free: {self._console()}.",
                **details,
            )
            return
        limit, usage = float(quota.get("limit", 0)), float(quota.get("usage", 0))
        free = limit - usage
        details.update(limit=limit, usage=usage, available=free)
        if free >= needed:
            self.record(
                check,
                OK,
                f"{free:g} external IP addresses are free in {self.region} ({ADDRESS_METRIC} "
                f"{usage:g} of {limit:g} in use); {needed} needed.",
                **details,
            )
            return
        self.record(
            check,
            PROBLEM,
            f"Only {max(free, 0):g} external IP addresses are free in {self.region} "
            f"({ADDRESS_METRIC}: {usage:g} of {limit:g} in use); the deployment needs at least "
            f"{needed}. Release addresses you no longer use (gcloud compute addresses list "
            f"--filter=region:{self.region} --project {self.project}) or request a higher "
            f"{ADDRESS_METRIC} quota for {self.region} ({self._console()}).",
            **details,
        )


def check_capacity(params: dict, module=None, client_options: dict | None = None) -> dict:
    """Run every check the options ask for: {checks, problems, warnings, project, region}."""
    validate_options(params)
    return CapacityChecker(params, module, client_options).run()
