# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TPU slice shapes that GKE accepts, and the checks that keep a node pool request valid.

One table, used by preflight (through the ``tpu_slice_info`` module) and by the node pool module,
so a shape is judged the same way everywhere. Source: cloud.google.com/tpu/docs/v6e (the v6e
table in the project's reference notes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

V6E_ACCELERATOR = "tpu-v6e-slice"
# Zones reported with TPU v6e. Availability changes: hints name them as candidates to check, not
# as a guarantee.
V6E_ZONES = (
    "us-central1-b",
    "us-east1-d",
    "us-east5-a",
    "us-east5-b",
    "us-south1-a",
    "us-south1-b",
    "europe-west4-a",
    "asia-northeast1-b",
    "southamerica-west1-a",
)
V6E_CHIPS_PER_VM = {
    "ct6e-standard-1t": 1,
    "ct6e-standard-4t": 4,
    "ct6e-standard-8t": 8,
}

# (topology, machine type, VMs per slice). Chips per slice = product of the topology.
V6E_SHAPES = (
    ("1x1", "ct6e-standard-1t", 1),
    ("2x2", "ct6e-standard-4t", 1),
    ("2x4", "ct6e-standard-8t", 1),
    ("2x4", "ct6e-standard-4t", 2),
    ("4x4", "ct6e-standard-4t", 4),
    ("4x8", "ct6e-standard-4t", 8),
    ("8x8", "ct6e-standard-4t", 16),
    ("8x16", "ct6e-standard-4t", 32),
    ("16x16", "ct6e-standard-4t", 64),
)


class TpuShapeError(ValueError):
    """The requested machine type, topology and node counts do not form a valid TPU slice pool."""


@dataclass(frozen=True)
class TpuSlice:
    """A valid TPU slice pool shape and what GKE derives from it."""

    accelerator: str
    machine_type: str
    topology: str
    chips_per_node: int
    nodes_per_slice: int
    chips_per_slice: int
    multi_host: bool

    @property
    def api_tpu_topology(self) -> str | None:
        """``placementPolicy.tpuTopology`` to send: GKE rejects it for single-host slices."""
        return self.topology if self.multi_host else None

    def as_dict(self) -> dict:
        data = asdict(self)
        data["api_tpu_topology"] = self.api_tpu_topology
        data["node_selector"] = {
            "cloud.google.com/gke-tpu-accelerator": self.accelerator,
            "cloud.google.com/gke-tpu-topology": self.topology,
        }
        return data


def topology_chips(topology: str) -> int:
    """Chips in a topology such as ``2x4`` (the product of its dimensions)."""
    try:
        dims = [int(part) for part in topology.lower().split("x")]
    except ValueError:
        dims = []
    if not dims or any(d < 1 for d in dims):
        raise TpuShapeError(f"topology {topology!r} is not of the form AxB (for example 2x2)")
    chips = 1
    for dim in dims:
        chips *= dim
    return chips


def valid_topologies(machine_type: str) -> list[str]:
    return [topo for topo, mtype, _vms in V6E_SHAPES if mtype == machine_type]


def resolve_slice(machine_type: str, topology: str | None = None) -> TpuSlice:
    """Return the slice for a machine type and topology, or raise TpuShapeError with the reason.

    Without a topology, the machine type's single-host topology is used.
    """
    if machine_type not in V6E_CHIPS_PER_VM:
        known = ", ".join(sorted(V6E_CHIPS_PER_VM))
        raise TpuShapeError(f"machine type {machine_type!r} is not a TPU v6e type; known: {known}")
    topologies = valid_topologies(machine_type)
    if topology is None:
        topology = next(
            topo for topo, mtype, vms in V6E_SHAPES if mtype == machine_type and vms == 1
        )
    topology = topology.lower()
    topology_chips(topology)
    for topo, mtype, vms in V6E_SHAPES:
        if topo == topology and mtype == machine_type:
            chips_per_vm = V6E_CHIPS_PER_VM[mtype]
            return TpuSlice(
                accelerator=V6E_ACCELERATOR,
                machine_type=mtype,
                topology=topo,
                chips_per_node=chips_per_vm,
                nodes_per_slice=vms,
                chips_per_slice=chips_per_vm * vms,
                multi_host=vms > 1,
            )
    offered_on = sorted({mtype for topo, mtype, _vms in V6E_SHAPES if topo == topology})
    hint = f"; {topology} is offered on {', '.join(offered_on)}" if offered_on else ""
    raise TpuShapeError(
        f"topology {topology} is not offered on {machine_type} "
        f"(valid: {', '.join(topologies)}){hint}"
    )


def check_node_counts(
    tpu: TpuSlice,
    node_count: int,
    autoscaling: bool = False,
    min_nodes: int | None = None,
    max_nodes: int | None = None,
) -> None:
    """Raise TpuShapeError when the node counts do not fit the slice.

    A single-host pool holds any number of independent slices. A multi-host slice is one unit:
    its pool has exactly as many nodes as the slice has VMs, and autoscales atomically between
    0 and that count.
    """
    if node_count < 0:
        raise TpuShapeError(f"node count {node_count} is negative")
    if autoscaling:
        if min_nodes is None or max_nodes is None:
            raise TpuShapeError("autoscaling needs both a minimum and a maximum node count")
        if min_nodes < 0:
            raise TpuShapeError(f"autoscaling minimum {min_nodes} is negative")
        if min_nodes > max_nodes:
            raise TpuShapeError(
                f"autoscaling minimum {min_nodes} is greater than the maximum {max_nodes}"
            )
        if not min_nodes <= node_count <= max_nodes:
            raise TpuShapeError(
                f"node count {node_count} is outside the autoscaling range {min_nodes}..{max_nodes}"
            )
    if not tpu.multi_host:
        return
    vms = tpu.nodes_per_slice
    if node_count not in (0, vms):
        raise TpuShapeError(
            f"a {tpu.topology} slice on {tpu.machine_type} is multi-host with {vms} VMs: "
            f"the node count must be {vms} (or 0), not {node_count}"
        )
    if autoscaling and (min_nodes not in (0, vms) or max_nodes != vms):
        raise TpuShapeError(
            f"a multi-host {tpu.topology} slice scales as one unit: autoscaling must be "
            f"0..{vms} or {vms}..{vms}, not {min_nodes}..{max_nodes}"
        )


def max_chips(tpu: TpuSlice, node_count: int, autoscaling: bool, max_nodes: int | None) -> int:
    """Chips the pool may hold at most (what the TPU quota must cover)."""
    nodes = max_nodes if autoscaling and max_nodes is not None else node_count
    return nodes * tpu.chips_per_node


# --------------------------------------------------------------------------- node verification
TPU_TAINT_KEY = "google.com/tpu"
TPU_RESOURCE = "google.com/tpu"
ACCELERATOR_LABEL = "cloud.google.com/gke-tpu-accelerator"
TOPOLOGY_LABEL = "cloud.google.com/gke-tpu-topology"


def _is_ready(node: dict) -> bool:
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def node_problems(nodes: list, tpu: dict, lasting_only: bool = False) -> list[str]:
    """What is wrong with the Nodes of a TPU pool, one message per problem (empty when fine).

    ``tpu`` is ``TpuSlice.as_dict()`` (accelerator, topology, chips_per_node). Each Node must be
    Ready, carry the accelerator and topology labels GKE sets, the ``google.com/tpu=present:
    NoSchedule`` taint, and ``google.com/tpu`` capacity equal to the chips per node.
    A Node that is not Ready yet or whose TPU device plugin has not registered the chips yet (no
    or zero capacity) may still become right; ``lasting_only`` leaves those out, so that a caller
    waiting for the nodes can stop at once on a problem that waiting will not fix.
    """
    problems = []
    transient = []
    chips = str(tpu["chips_per_node"])
    for node in nodes or []:
        meta = node.get("metadata") or {}
        name = meta.get("name", "?")
        labels = meta.get("labels") or {}
        for label, wanted in (
            (ACCELERATOR_LABEL, tpu["accelerator"]),
            (TOPOLOGY_LABEL, tpu["topology"]),
        ):
            if labels.get(label) != wanted:
                problems.append(
                    f"Node {name}: label {label} is {labels.get(label)!r}, expected {wanted!r} "
                    "(GKE sets it from the pool's machine type and topology: check the pool was "
                    "created with the intended llmd_tpu_machine_type and llmd_tpu_topology)."
                )
        taints = (node.get("spec") or {}).get("taints") or []
        if not any(
            t.get("key") == TPU_TAINT_KEY
            and t.get("value") == "present"
            and t.get("effect") == "NoSchedule"
            for t in taints
        ):
            problems.append(
                f"Node {name}: the taint {TPU_TAINT_KEY}=present:NoSchedule is missing (GKE adds "
                "it to TPU nodes; without it other workloads land on the TPU VM)."
            )
        capacity = ((node.get("status") or {}).get("capacity") or {}).get(TPU_RESOURCE)
        if str(capacity) != chips:
            (transient if capacity in (None, "0", 0) else problems).append(
                f"Node {name}: capacity {TPU_RESOURCE} is {capacity!r}, expected {chips} (the TPU "
                "device plugin has not registered the chips yet, or the node is not a "
                f"{tpu['machine_type']} VM)."
            )
        if not _is_ready(node):
            transient.append(f"Node {name} is not Ready (kubectl describe node {name}).")
    return problems if lasting_only else problems + transient
