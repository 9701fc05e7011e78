# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The logic of the llmd.gke.gke_cluster module (a GKE cluster and its default node pool).

Pure functions first (validation, the create body, the wanted and actual states in the module's
own terms, immutable fields, the list of update requests), then ``GkeCluster``, which follows the
protocol of ``gke_ops``: wait for Operations already running on the cluster, read it, compare the
fields the user set, create / update / delete, wait, read again.

The wanted and actual states are flat dicts keyed by the option names the user wrote
(``version``, ``default_pool.autoscaling.max_nodes``...), so ``changed``, ``--diff`` and error
messages speak the user's terms. A value of None in the wanted state means "not set": never
compared.

GKE accepts one change per ``clusters.update`` call, so updates are sent one by one, each waiting
for its Operation. Network policy goes through ``:setNetworkPolicy`` and labels through
``:setResourceLabels`` (``ClusterUpdate`` has no field for either).
"""

from __future__ import annotations

import copy
import re

from ansible_collections.llmd.gke.plugins.module_utils.gcp import (
    GcpApiError,
    GcpClient,
    GcpTimeout,
)
from ansible_collections.llmd.gke.plugins.module_utils.gcp_auth import (
    GCP_AUTH_ARG_SPEC,
    GCP_AUTH_MUTUALLY_EXCLUSIVE,
    GcpAuthError,
)
from ansible_collections.llmd.gke.plugins.module_utils.gke_ops import (
    GKE_COMMON_ARG_SPEC,
    OperationWaiter,
    Pending,
    PoolSizes,
    conditions_text,
    degraded_warning,
    diff_of,
    differences,
    fail_gcp,
    operation_summary,
)

RELEASE_CHANNELS = ["RAPID", "REGULAR", "STABLE", "UNSPECIFIED"]

CLUSTER_ARG_SPEC = dict(
    location=dict(type="str", required=True),
    name=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    version=dict(type="str"),
    release_channel=dict(type="str", choices=RELEASE_CHANNELS),
    node_locations=dict(type="list", elements="str"),
    default_pool=dict(
        type="dict",
        options=dict(
            name=dict(type="str", default="default-pool"),
            machine_type=dict(type="str"),
            node_count=dict(type="int"),
            autoscaling=dict(
                type="dict",
                options=dict(
                    enabled=dict(type="bool", default=True),
                    min_nodes=dict(type="int"),
                    max_nodes=dict(type="int"),
                ),
            ),
            disk_size_gb=dict(type="int"),
            disk_type=dict(type="str"),
            secure_boot=dict(type="bool"),
            integrity_monitoring=dict(type="bool"),
        ),
    ),
    ip_alias=dict(type="bool"),
    network=dict(type="str"),
    subnetwork=dict(type="str"),
    network_policy=dict(type="bool"),
    gce_pd_csi_driver=dict(type="bool"),
    workload_identity=dict(type="bool"),
    shielded_nodes=dict(type="bool"),
    labels=dict(type="dict"),
)


def argument_spec() -> dict:
    spec = dict(GCP_AUTH_ARG_SPEC)
    spec.update(GKE_COMMON_ARG_SPEC)
    spec.update(copy.deepcopy(CLUSTER_ARG_SPEC))
    return spec


MUTUALLY_EXCLUSIVE = list(GCP_AUTH_MUTUALLY_EXCLUSIVE)

# Fields GKE cannot change in place (or that this module refuses to change: the default pool's
# VM settings would recreate every node). A difference fails the module; nothing is changed.
IMMUTABLE = (
    "ip_alias",
    "network",
    "subnetwork",
    "default_pool.machine_type",
    "default_pool.disk_size_gb",
    "default_pool.disk_type",
    "default_pool.secure_boot",
    "default_pool.integrity_monitoring",
)
FAILED_STATUSES = ("ERROR",)
# DEGRADED: the cluster serves but GKE reports a problem (its conditions say which): usable,
# with a warning, here and in gke_kubeconfig.
WARN_STATUSES = ("DEGRADED",)
SECRET_MASTER_AUTH = ("password", "clientKey", "clientCertificate")
DEFAULT_NODE_COUNT = 3  # GKE's default size of a cluster's first pool

# An instanceGroupUrls item: <compute root>v1/projects/P/zones/Z/instanceGroupManagers/NAME
ZONE_RE = re.compile(r"^[a-z]+-[a-z]+\d+-[a-z]$")
REGION_RE = re.compile(r"^[a-z]+-[a-z]+\d+$")
NAME_RE = re.compile(r"^[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?$")
VERSION_RE = re.compile(r"^(?:latest|-|\d+\.\d+(?:\.\d+)?(?:-gke\.\d+)?)$")
LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")


# --------------------------------------------------------------------------- validation
def region_of(location: str) -> str:
    return location.rsplit("-", 1)[0] if ZONE_RE.match(location) else location


def is_zonal(location: str) -> bool:
    return bool(ZONE_RE.match(location))


def validate(params: dict) -> list[str]:
    """Every problem of the options, found before any API call (empty list: all fine)."""
    problems = []
    location = params.get("location") or ""
    name = params.get("name") or ""
    if not (ZONE_RE.match(location) or REGION_RE.match(location)):
        problems.append(
            f"location {location!r} is neither a zone (europe-west4-a: zonal cluster) nor a "
            "region (europe-west4: regional cluster)."
        )
    if not NAME_RE.match(name):
        problems.append(
            f"name {name!r} is not a valid cluster name: 1-40 characters, lowercase letters, "
            "digits and '-', starting with a letter and not ending with '-'."
        )
    if params.get("state") == "absent":
        return problems
    version = params.get("version")
    if version is not None and not VERSION_RE.match(version):
        problems.append(
            f"version {version!r} is not a GKE version: use 1.X, 1.X.Y, 1.X.Y-gke.N, latest or -."
        )
    zones = params.get("node_locations")
    if zones is not None:
        if not zones:
            problems.append("node_locations must not be empty (leave it out for the default).")
        region = region_of(location)
        wrong = [z for z in zones if not ZONE_RE.match(z) or region_of(z) != region]
        if wrong and REGION_RE.match(region):
            problems.append(
                f"node_locations {', '.join(wrong)} are not zones of the region {region}."
            )
        if zones and is_zonal(location) and location not in zones:
            problems.append(
                f"node_locations must include the cluster's zone {location} (GKE requires it)."
            )
    problems.extend(_validate_pool(params.get("default_pool")))
    for key, value in (params.get("labels") or {}).items():
        if not LABEL_KEY_RE.match(str(key)) or not LABEL_VALUE_RE.match(str(value)):
            problems.append(
                f"label {key}={value} is not a valid GCP label: keys start with a lowercase "
                "letter; keys and values use lowercase letters, digits, '_' and '-' (63 at most)."
            )
    return problems


def _validate_pool(pool: dict | None) -> list[str]:
    if not pool:
        return []
    problems = []
    if not NAME_RE.match(pool.get("name") or ""):
        problems.append(f"default_pool.name {pool.get('name')!r} is not a valid node pool name.")
    count = pool.get("node_count")
    if count is not None and count < 0:
        problems.append(f"default_pool.node_count must be 0 or more, not {count}.")
    size = pool.get("disk_size_gb")
    if size is not None and size < 10:
        problems.append(f"default_pool.disk_size_gb must be at least 10, not {size}.")
    autoscaling = pool.get("autoscaling")
    if autoscaling and autoscaling.get("enabled"):
        low, high = autoscaling.get("min_nodes"), autoscaling.get("max_nodes")
        if low is None or high is None:
            problems.append("default_pool.autoscaling needs min_nodes and max_nodes when enabled.")
        else:
            if low < 0 or high < 1:
                problems.append(
                    "default_pool.autoscaling needs min_nodes >= 0 and max_nodes >= 1 "
                    f"(got {low} and {high})."
                )
            if low > high:
                problems.append(
                    f"default_pool.autoscaling.min_nodes ({low}) is greater than max_nodes "
                    f"({high})."
                )
            if count is not None and low <= high and not low <= count <= high:
                problems.append(
                    f"default_pool.node_count ({count}) is outside the autoscaling range "
                    f"{low}..{high}."
                )
    return problems


# --------------------------------------------------------------------------- wanted / actual
def workload_pool(project: str) -> str:
    return f"{project}.svc.id.goog"


def _basename(value: str | None) -> str | None:
    return value.rstrip("/").rsplit("/", 1)[-1] if value else value


def _autoscaling_on(pool: dict) -> bool:
    autoscaling = pool.get("autoscaling")
    return bool(autoscaling and autoscaling.get("enabled"))


def wanted_state(params: dict, project: str) -> dict:
    """The user's settings, flat and in user terms; None = not set (never compared)."""
    version = params.get("version")
    zones = params.get("node_locations")
    labels = params.get("labels")
    workload_identity = params.get("workload_identity")
    wanted = {
        "version": None if version in (None, "latest", "-") else version,
        "release_channel": params.get("release_channel"),
        "node_locations": sorted(zones) if zones else None,
        "ip_alias": params.get("ip_alias"),
        "network": _basename(params.get("network")),
        "subnetwork": _basename(params.get("subnetwork")),
        "network_policy": params.get("network_policy"),
        "gce_pd_csi_driver": params.get("gce_pd_csi_driver"),
        "workload_identity": workload_identity,
        "shielded_nodes": params.get("shielded_nodes"),
        "labels": {str(k): str(v) for k, v in labels.items()} if labels is not None else None,
    }
    pool = params.get("default_pool") or {}
    autoscaling = pool.get("autoscaling") or {}
    enabled = _autoscaling_on(pool)
    wanted.update(
        {
            "default_pool.machine_type": pool.get("machine_type"),
            "default_pool.disk_size_gb": pool.get("disk_size_gb"),
            "default_pool.disk_type": pool.get("disk_type"),
            "default_pool.secure_boot": pool.get("secure_boot"),
            "default_pool.integrity_monitoring": pool.get("integrity_monitoring"),
            "default_pool.autoscaling.enabled": enabled if pool.get("autoscaling") else None,
            "default_pool.autoscaling.min_nodes": autoscaling.get("min_nodes") if enabled else None,
            "default_pool.autoscaling.max_nodes": autoscaling.get("max_nodes") if enabled else None,
            # With autoscaling on, node_count is only the initial size: never compared.
            "default_pool.node_count": None if enabled else pool.get("node_count"),
        }
    )
    return wanted


def version_matches(wanted: str, current: str | None) -> bool:
    """ "1.34" matches "1.34.1-gke.1829001", "1.34.1" too; "1.3" does not."""
    if not current:
        return False
    if current == wanted:
        return True
    return current.startswith(wanted) and current[len(wanted)] in ".-"


def _minor(version: str | None) -> tuple[int, int] | None:
    match = re.match(r"^(\d+)\.(\d+)", version or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def is_downgrade(wanted: str | None, current: str | None) -> bool:
    """A lower minor version than the control plane runs (GKE cannot downgrade a minor)."""
    low, high = _minor(wanted), _minor(current)
    return bool(low and high and low < high)


def find_pool(cluster: dict, name: str) -> dict | None:
    for pool in cluster.get("nodePools") or []:
        if pool.get("name") == name:
            return pool
    return None


def node_count_of(sizes: dict | None):
    """Nodes per zone from {zone: targetSize}: an int when every zone has the same size, the
    dict when they differ, None when unknown."""
    if not sizes:
        return None
    values = set(sizes.values())
    return values.pop() if len(values) == 1 else dict(sorted(sizes.items()))


def pool_size(cluster: dict, pool: dict, sizes: dict | None = None):
    """Nodes per zone of the pool; None when it cannot be known.

    A NodePool has no current size (initialNodeCount stays what it was at creation). The size is
    the targetSize of the Compute instance group managers of the pool (``sizes``, read by the
    caller). The cluster's currentNodeCount is deprecated in GKE's API and not read.
    """
    del cluster, pool  # the signature stays for callers; only the groups know the size
    return node_count_of(sizes)


def actual_state(cluster: dict, params: dict, project: str, sizes: dict | None = None) -> dict:
    """The cluster in the same terms as wanted_state (the version matched by prefix); ``sizes``
    are the default pool's {zone: targetSize} when known."""
    addons = cluster.get("addonsConfig") or {}
    labels = cluster.get("resourceLabels") or {}
    current = cluster.get("currentMasterVersion")
    wanted_version = params.get("version")
    version = current
    if wanted_version and version_matches(wanted_version, current):
        version = wanted_version
    actual = {
        "version": version,
        "release_channel": (cluster.get("releaseChannel") or {}).get("channel") or "UNSPECIFIED",
        "node_locations": sorted(cluster.get("locations") or []),
        "ip_alias": bool((cluster.get("ipAllocationPolicy") or {}).get("useIpAliases")),
        "network": _basename(cluster.get("network")),
        "subnetwork": _basename(cluster.get("subnetwork")),
        "network_policy": bool((cluster.get("networkPolicy") or {}).get("enabled")),
        "gce_pd_csi_driver": bool(
            (addons.get("gcePersistentDiskCsiDriverConfig") or {}).get("enabled")
        ),
        "workload_identity": (cluster.get("workloadIdentityConfig") or {}).get("workloadPool")
        == workload_pool(project),
        "shielded_nodes": bool((cluster.get("shieldedNodes") or {}).get("enabled")),
        # goog-* labels are Google's own (billing, provisioning tools): not the user's.
        "labels": {k: v for k, v in labels.items() if not k.startswith("goog-")},
    }
    name = (params.get("default_pool") or {}).get("name") or "default-pool"
    pool = find_pool(cluster, name)
    if pool is not None:
        config = pool.get("config") or {}
        shielded = config.get("shieldedInstanceConfig") or {}
        autoscaling = pool.get("autoscaling") or {}
        enabled = bool(autoscaling.get("enabled"))
        actual.update(
            {
                "default_pool.machine_type": config.get("machineType"),
                "default_pool.disk_size_gb": config.get("diskSizeGb"),
                "default_pool.disk_type": config.get("diskType"),
                "default_pool.secure_boot": bool(shielded.get("enableSecureBoot")),
                "default_pool.integrity_monitoring": bool(
                    shielded.get("enableIntegrityMonitoring")
                ),
                "default_pool.autoscaling.enabled": enabled,
                "default_pool.autoscaling.min_nodes": autoscaling.get("minNodeCount", 0)
                if enabled
                else None,
                "default_pool.autoscaling.max_nodes": autoscaling.get("maxNodeCount")
                if enabled
                else None,
                "default_pool.node_count": pool_size(cluster, pool, sizes),
            }
        )
    return actual


def set_keys(wanted: dict) -> list[str]:
    return [k for k, v in wanted.items() if v is not None]


def immutable_changes(keys) -> list[str]:
    return [k for k in keys if k in IMMUTABLE]


# --------------------------------------------------------------------------- requests
def create_body(params: dict, project: str) -> dict:
    """The Cluster of a create request: only what the user set, the default pool in nodePools."""
    cluster: dict = {"name": params["name"]}
    version = params.get("version")
    if version:
        cluster["initialClusterVersion"] = version
    if params.get("release_channel"):
        cluster["releaseChannel"] = {"channel": params["release_channel"]}
    if params.get("node_locations"):
        cluster["locations"] = list(params["node_locations"])
    if params.get("network"):
        cluster["network"] = params["network"]
    if params.get("subnetwork"):
        cluster["subnetwork"] = params["subnetwork"]
    if params.get("ip_alias") is not None:
        cluster["ipAllocationPolicy"] = {"useIpAliases": params["ip_alias"]}
    addons = {}
    if params.get("network_policy") is not None:
        addons["networkPolicyConfig"] = {"disabled": not params["network_policy"]}
        if params["network_policy"]:
            cluster["networkPolicy"] = {"enabled": True, "provider": "CALICO"}
    if params.get("gce_pd_csi_driver") is not None:
        addons["gcePersistentDiskCsiDriverConfig"] = {"enabled": params["gce_pd_csi_driver"]}
    if addons:
        cluster["addonsConfig"] = addons
    if params.get("workload_identity"):
        cluster["workloadIdentityConfig"] = {"workloadPool": workload_pool(project)}
    if params.get("shielded_nodes") is not None:
        cluster["shieldedNodes"] = {"enabled": params["shielded_nodes"]}
    if params.get("labels"):
        cluster["resourceLabels"] = {str(k): str(v) for k, v in params["labels"].items()}
    cluster["nodePools"] = [pool_body(params.get("default_pool") or {})]
    return cluster


def pool_body(pool: dict) -> dict:
    """The default NodePool of a create request (never nodeConfig/initialNodeCount on the
    cluster: GKE rejects them together with nodePools)."""
    autoscaling = pool.get("autoscaling") or {}
    enabled = _autoscaling_on(pool)
    count = pool.get("node_count")
    if count is None:
        count = max(autoscaling.get("min_nodes") or 0, 1) if enabled else DEFAULT_NODE_COUNT
    config: dict = {}
    if pool.get("machine_type"):
        config["machineType"] = pool["machine_type"]
    if pool.get("disk_size_gb") is not None:
        config["diskSizeGb"] = pool["disk_size_gb"]
    if pool.get("disk_type"):
        config["diskType"] = pool["disk_type"]
    shielded = {}
    if pool.get("secure_boot") is not None:
        shielded["enableSecureBoot"] = pool["secure_boot"]
    if pool.get("integrity_monitoring") is not None:
        shielded["enableIntegrityMonitoring"] = pool["integrity_monitoring"]
    if shielded:
        config["shieldedInstanceConfig"] = shielded
    body: dict = {"name": pool.get("name") or "default-pool", "initialNodeCount": count}
    if config:
        body["config"] = config
    if pool.get("autoscaling"):
        body["autoscaling"] = autoscaling_body(pool)
    return body


def autoscaling_body(pool: dict) -> dict:
    autoscaling = pool.get("autoscaling") or {}
    if not _autoscaling_on(pool):
        return {"enabled": False}
    return {
        "enabled": True,
        "minNodeCount": autoscaling.get("min_nodes"),
        "maxNodeCount": autoscaling.get("max_nodes"),
    }


def _update(fields: list[str], what: str, body: dict, suffix: str = "", method: str = "PUT"):
    return {"fields": fields, "what": what, "method": method, "suffix": suffix, "body": body}


def _cluster_update(fields: list[str], key: str, value) -> dict:
    return _update(fields, key, {"update": {key: value}})


def plan_updates(keys, wanted: dict, cluster: dict, params: dict, project: str) -> list[dict]:
    """The requests that bring the cluster to ``wanted`` for the differing ``keys``, in order.

    Each item: fields (user keys it settles), what (the API field or method), method, suffix
    (appended to the cluster's path) and body. One ClusterUpdate field per request.
    """
    keys = set(keys)
    pool = params.get("default_pool") or {}
    pool_name = pool.get("name") or "default-pool"
    updates = []
    if "version" in keys:
        updates.append(_cluster_update(["version"], "desiredMasterVersion", wanted["version"]))
    if "release_channel" in keys:
        updates.append(
            _cluster_update(
                ["release_channel"],
                "desiredReleaseChannel",
                {"channel": wanted["release_channel"]},
            )
        )
    if "workload_identity" in keys:
        pool_id = workload_pool(project) if wanted["workload_identity"] else ""
        updates.append(
            _cluster_update(
                ["workload_identity"],
                "desiredWorkloadIdentityConfig",
                {"workloadPool": pool_id},
            )
        )
    if "shielded_nodes" in keys:
        updates.append(
            _cluster_update(
                ["shielded_nodes"], "desiredShieldedNodes", {"enabled": wanted["shielded_nodes"]}
            )
        )
    updates.extend(_addon_updates(keys, wanted, cluster))
    autoscaling_keys = sorted(k for k in keys if k.startswith("default_pool.autoscaling."))
    if autoscaling_keys:
        updates.append(
            _update(
                autoscaling_keys,
                "desiredNodePoolAutoscaling",
                {
                    "update": {
                        "desiredNodePoolId": pool_name,
                        "desiredNodePoolAutoscaling": autoscaling_body(pool),
                    }
                },
            )
        )
    if "node_locations" in keys:
        updates.append(
            _cluster_update(["node_locations"], "desiredLocations", list(wanted["node_locations"]))
        )
    if "default_pool.node_count" in keys:
        updates.append(
            _update(
                ["default_pool.node_count"],
                "setSize",
                {"nodeCount": wanted["default_pool.node_count"]},
                suffix=f"/nodePools/{pool_name}:setSize",
                method="POST",
            )
        )
    if "labels" in keys:
        kept = {
            k: v for k, v in (cluster.get("resourceLabels") or {}).items() if k.startswith("goog-")
        }
        body = {"resourceLabels": dict(kept, **wanted["labels"])}
        if cluster.get("labelFingerprint"):
            body["labelFingerprint"] = cluster["labelFingerprint"]
        updates.append(
            _update(
                ["labels"], "setResourceLabels", body, suffix=":setResourceLabels", method="POST"
            )
        )
    return updates


def _addon_updates(keys, wanted: dict, cluster: dict) -> list[dict]:
    """Add-ons (CSI driver, network policy add-on) and network policy enforcement, in the order
    GKE needs: the add-on before enforcement when enabling, enforcement first when disabling."""
    addons = copy.deepcopy(cluster.get("addonsConfig") or {})
    addon_fields = []
    if "gce_pd_csi_driver" in keys:
        addons["gcePersistentDiskCsiDriverConfig"] = {"enabled": wanted["gce_pd_csi_driver"]}
        addon_fields.append("gce_pd_csi_driver")
    policy = None
    if "network_policy" in keys:
        enable = bool(wanted["network_policy"])
        addon_off = (addons.get("networkPolicyConfig") or {}).get("disabled", True)
        if enable and addon_off:
            addons["networkPolicyConfig"] = {"disabled": False}
            addon_fields.append("network_policy")
        elif not enable and not addon_off:
            addons["networkPolicyConfig"] = {"disabled": True}
            addon_fields.append("network_policy")
        body = {"enabled": True, "provider": "CALICO"} if enable else {"enabled": False}
        policy = _update(
            ["network_policy"],
            "setNetworkPolicy",
            {"networkPolicy": body},
            suffix=":setNetworkPolicy",
            method="POST",
        )
    updates = []
    if addon_fields:
        updates.append(_cluster_update(addon_fields, "desiredAddonsConfig", addons))
    if policy is not None:
        disabling = not wanted["network_policy"]
        updates = [policy, *updates] if disabling else [*updates, policy]
    return updates


# --------------------------------------------------------------------------- results
def redact(cluster: dict | None) -> dict | None:
    """The cluster without masterAuth secrets (the CA certificate stays)."""
    if not cluster:
        return cluster
    data = copy.deepcopy(cluster)
    auth = data.get("masterAuth")
    if isinstance(auth, dict):
        for key in SECRET_MASTER_AUTH:
            auth.pop(key, None)
    return data


def facts(cluster: dict | None) -> dict:
    if not cluster:
        return dict(
            cluster=None,
            endpoint=None,
            ca_certificate=None,
            status=None,
            version=None,
            location=None,
            node_pools=[],
        )
    return dict(
        cluster=redact(cluster),
        endpoint=cluster.get("endpoint"),
        ca_certificate=(cluster.get("masterAuth") or {}).get("clusterCaCertificate"),
        status=cluster.get("status"),
        version=cluster.get("currentMasterVersion"),
        location=cluster.get("location"),
        node_pools=[p.get("name") for p in cluster.get("nodePools") or []],
    )


def _location_of_link(link: str | None) -> str | None:
    match = re.search(r"/(?:locations|zones)/([^/]+)/clusters/", link or "")
    return match.group(1) if match else None


def status_problem(cluster: dict | None) -> str | None:
    if cluster and cluster.get("status") in FAILED_STATUSES:
        return (
            f"Cluster {cluster.get('name')} is {cluster['status']}: "
            f"{(conditions_text(cluster) or 'GKE gave no condition').rstrip('.')}."
        )
    return None


def status_warning(cluster: dict | None) -> str | None:
    """The warning for a DEGRADED cluster (usable), naming GKE's conditions."""
    if cluster and cluster.get("status") in WARN_STATUSES:
        return degraded_warning(cluster)
    return None


# --------------------------------------------------------------------------- the run
class GkeCluster:
    """One run of the module: see the module docstring for the protocol."""

    def __init__(self, module, client=None) -> None:
        self.module = module
        self.params = module.params
        self.changed = False
        self.diff = None
        self.adopted = False
        self.changed_fields: list[str] = []
        self.warnings: list[str] = []
        self.started: dict | None = None  # the last Operation this run started
        problems = validate(self.params)
        if problems:
            module.fail_json(msg="Invalid options: " + " ".join(problems), changed=False)
        try:
            self.client = client or GcpClient(self.params, module)
        except (GcpAuthError, GcpApiError) as exc:
            module.fail_json(msg=str(exc), changed=False)
        self.project = self.client.project
        if not self.project:
            module.fail_json(
                msg="No GCP project: set project (or GCP_PROJECT), or use credentials that name "
                "one.",
                changed=False,
            )
        self.location = self.params["location"]
        self.name = self.params["name"]
        self.parent = f"projects/{self.project}/locations/{self.location}"
        self.path = f"{self.parent}/clusters/{self.name}"
        self.waiter = OperationWaiter(self.client, self.params)
        self.wait = bool(self.params.get("wait"))
        self.pool_sizes = PoolSizes(self.client)

    # ----------------------------------------------------------------- entry point
    def run(self) -> None:
        try:
            if self.params["state"] == "absent":
                self.absent()
            else:
                self.present()
        except Pending as exc:
            self.exit(
                None,
                pending=True,
                operation=operation_summary(exc.operation),
                elapsed=round(exc.elapsed, 1),
            )
        except (GcpApiError, GcpTimeout) as exc:
            extra = {"changed": self.changed, "changed_fields": self.changed_fields}
            if self.diff is not None:
                extra["diff"] = self.diff
            fail_gcp(self.module, exc, self.waiter, **extra)

    def exit(self, cluster: dict | None, **extra) -> None:
        result = dict(
            changed=self.changed,
            adopted=self.adopted,
            changed_fields=self.changed_fields,
            pending=False,
            waited_seconds=round(self.waiter.waited, 1),
            operation=operation_summary(self.waiter.last or self.started),
        )
        result.update(facts(cluster))
        result.update(extra)
        if self.diff is not None:
            result["diff"] = self.diff
        warning = status_warning(cluster)
        if warning and warning not in self.warnings:
            self.warnings.append(warning)
        if self.warnings:
            result["warnings"] = self.warnings
        self.module.exit_json(**result)

    def fail(self, msg: str, cluster: dict | None = None, **extra) -> None:
        result = dict(changed=self.changed, changed_fields=self.changed_fields, msg=msg)
        if cluster is not None:
            result.update(facts(cluster))
        result.update(extra)
        if self.diff is not None:
            result["diff"] = self.diff
        self.module.fail_json(**result)

    # ----------------------------------------------------------------- helpers
    def settle(self) -> bool:
        """Wait for the Operations running on the cluster (and its pools); False if some run
        and wait is off."""
        running = self.waiter.running_on(self.project, self.location, self.path)
        if not running:
            return True
        if not self.wait:
            self.waiter.last = running[0]
            return False
        self.waiter.wait_all(running)
        return True

    def start(self, method: str, path: str, body=None) -> dict:
        operation = self.waiter.send(
            method, path, body, project=self.project, location=self.location, wait=self.wait
        )
        self.changed = True
        self.started = operation
        self.waiter.last = operation
        return operation

    def same_name_elsewhere(self) -> str | None:
        """The location of a cluster with this name in another location of the project."""
        try:
            answer = self.client.get(f"projects/{self.project}/locations/-/clusters")
        except GcpApiError as exc:
            self.warnings.append(
                f"Could not look for a cluster named {self.name} in other locations: {exc}"
            )
            return None
        for cluster in answer.get("clusters") or []:
            location = cluster.get("location") or _location_of_link(cluster.get("selfLink"))
            if cluster.get("name") == self.name and location != self.location:
                return location
        return None

    def observe(self, cluster: dict, wanted: dict) -> tuple[dict, dict]:
        """The actual state (with the default pool's size when node_count is compared), and the
        wanted state without node_count when the size cannot be known."""
        sizes = None
        pool_name = (self.params.get("default_pool") or {}).get("name") or "default-pool"
        pool = find_pool(cluster, pool_name)
        if wanted.get("default_pool.node_count") is not None and pool is not None:
            sizes = self.read_sizes(pool)
        actual = actual_state(cluster, self.params, self.project, sizes)
        if (
            wanted.get("default_pool.node_count") is not None
            and actual.get("default_pool.node_count") is None
        ):
            wanted = dict(wanted, **{"default_pool.node_count": None})
            self.warnings.append(
                f"default_pool.node_count was not compared: the size of node pool {pool_name} "
                "could not be read (Compute Engine instance group managers). Grant "
                "compute.instanceGroupManagers.get, or resize it with 'gcloud container "
                f"clusters resize {self.name} --node-pool {pool_name}'."
            )
        return wanted, actual

    def read_sizes(self, pool: dict) -> dict | None:
        """{zone: targetSize} of the pool's instance group managers; None when unknown."""
        return self.pool_sizes.read(pool)[0]

    # ----------------------------------------------------------------- state=present
    def present(self) -> None:
        wanted = wanted_state(self.params, self.project)
        idle = self.settle()
        cluster = self.client.get_or_none(self.path)
        if cluster is None:
            self.create(wanted, idle)
            return
        self.converge(cluster, wanted, idle)

    def create(self, wanted: dict, idle: bool) -> None:
        elsewhere = self.same_name_elsewhere()
        if elsewhere:
            self.fail(
                f"Cannot change location of cluster {self.name}: it exists in {elsewhere}, not "
                f"in {self.location}. The location of a cluster cannot change. Use the existing "
                "location, delete that cluster first (state: absent), or choose another name.",
                immutable_fields=["location"],
            )
        keys = set_keys(wanted)
        self.changed_fields = keys
        self.diff = diff_of(keys, wanted, None)
        if self.module.check_mode:
            self.changed = True
            self.exit(None)
        body = {"cluster": create_body(self.params, self.project)}
        try:
            operation = self.start("POST", f"{self.parent}/clusters", body)
        except GcpApiError as exc:
            if exc.status != 409:
                raise
            self.adopt(wanted)
            return
        if not self.wait:
            self.exit(self.client.get_or_none(self.path), pending=True)
        self.waiter.wait(operation)
        self.finish()

    def adopt(self, wanted: dict) -> None:
        """The create answered 409: the cluster appeared meanwhile. Adopt it if it matches."""
        self.changed_fields = []
        self.diff = None
        if self.wait:
            self.settle()
        cluster = self.client.get(self.path)
        wanted, actual = self.observe(cluster, wanted)
        keys = differences(wanted, actual)
        if keys:
            self.fail(
                f"Cluster {self.name} was created by someone else meanwhile (409 ALREADY_EXISTS) "
                f"and differs from the options in: {', '.join(keys)}. Nothing was changed: "
                "align the options with it, or delete it and run again.",
                cluster,
                differing_fields=keys,
                differences=diff_of(keys, wanted, actual),
            )
        self.adopted = True
        problem = status_problem(cluster)
        if problem:
            self.fail(problem, cluster)
        self.exit(cluster)

    def converge(self, cluster: dict, wanted: dict, idle: bool) -> None:
        problem = status_problem(cluster)
        if problem:
            self.fail(
                problem + " Delete it (state: absent) and run again, or repair it in the "
                "Google Cloud console.",
                cluster,
            )
        pool_name = (self.params.get("default_pool") or {}).get("name") or "default-pool"
        pool_keys = [k for k in set_keys(wanted) if k.startswith("default_pool.")]
        if pool_keys and find_pool(cluster, pool_name) is None:
            names = [p.get("name") for p in cluster.get("nodePools") or []]
            self.fail(
                f"Cluster {self.name} has no node pool named {pool_name} (it has: "
                f"{', '.join(names) or 'none'}), so {', '.join(pool_keys)} cannot be checked. "
                "Set default_pool.name to the pool to manage, or leave default_pool out.",
                cluster,
            )
        wanted, actual = self.observe(cluster, wanted)
        keys = differences(wanted, actual)
        current = cluster.get("currentMasterVersion")
        if "version" in keys and is_downgrade(wanted["version"], current):
            # Release channels upgrade the control plane on their own; GKE cannot go back.
            keys.remove("version")
            self.warnings.append(
                f"version {wanted['version']} is lower than the {current} the control plane of "
                f"{self.name} runs (GKE upgrades clusters of a release channel). GKE cannot "
                "downgrade a control plane's minor version: the version was left as it is. Set "
                "version to the running minor to silence this warning."
            )
        frozen = immutable_changes(keys)
        if frozen:
            self.diff = diff_of(frozen, wanted, actual)
            self.fail(
                f"Cannot change {', '.join(frozen)} of cluster {self.name}: GKE cannot change "
                "them in place and this module does not recreate clusters. Nothing was changed. "
                "Set them back to the cluster's values, or delete the cluster (state: absent) "
                "and create it again.",
                cluster,
                immutable_fields=frozen,
            )
        if not keys:
            if not idle:
                self.exit(cluster, pending=True)
            self.finish(cluster)
            return
        self.changed_fields = keys
        self.diff = diff_of(keys, wanted, actual)
        if self.module.check_mode:
            self.changed = True
            self.exit(cluster)
        if not idle:
            self.warnings.append(
                "An Operation is running on the cluster and wait is false: nothing was sent. "
                "Run again once it is done (or with wait: true)."
            )
            self.exit(cluster, pending=True)
        updates = plan_updates(keys, wanted, cluster, self.params, self.project)
        for index, update in enumerate(updates):
            operation = self.start(update["method"], self.path + update["suffix"], update["body"])
            if not self.wait:
                rest = [f for later in updates[index + 1 :] for f in later["fields"]]
                if rest:
                    self.warnings.append(
                        f"wait is false: {update['what']} was sent; {', '.join(rest)} still "
                        "differ. Run again once the Operation is done (or with wait: true)."
                    )
                self.exit(self.client.get_or_none(self.path), pending=True)
            self.waiter.wait(operation)
        self.finish()

    def finish(self, cluster: dict | None = None) -> None:
        """Read the cluster (unless given), fail on ERROR/DEGRADED, exit."""
        if cluster is None:
            cluster = self.client.get(self.path)
        problem = status_problem(cluster)
        if problem:
            self.fail(problem, cluster)
        self.exit(cluster)

    # ----------------------------------------------------------------- state=absent
    def absent(self) -> None:
        idle = self.settle()
        cluster = self.client.get_or_none(self.path)
        if cluster is None:
            self.exit(None)
        self.changed_fields = ["state"]
        self.diff = {"before": {"state": "present"}, "after": {"state": "absent"}}
        if self.module.check_mode:
            self.changed = True
            self.exit(cluster)
        if not idle:
            self.warnings.append(
                "An Operation is running on the cluster and wait is false: the delete was not "
                "sent. Run again once it is done (or with wait: true)."
            )
            self.exit(cluster, pending=True)
        try:
            operation = self.start("DELETE", self.path)
        except GcpApiError as exc:
            if exc.status == 404:
                self.changed_fields = []
                self.diff = None
                self.exit(None)
            raise
        if not self.wait:
            self.exit(self.client.get_or_none(self.path), pending=True)
        self.waiter.wait(operation)
        remaining = self.client.get_or_none(self.path)
        if remaining is not None:
            self.fail(
                f"Cluster {self.name} still exists after its delete Operation finished "
                f"(status {remaining.get('status')}). Run again, or check it in the console.",
                remaining,
            )
        self.exit(None)
