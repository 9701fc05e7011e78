"""Failure scenarios: names, validation and the predicates controllers use.

Scenarios live in `emu.scenario` (a set of names, chosen with --scenario or the admin API):

- image-pull-backoff: LLM workload pods stay Waiting ErrImagePull / ImagePullBackOff.
- crashloop-hf-401, crashloop-hf-403: the vLLM container exits with a Hugging Face 401/403
  traceback and goes into CrashLoopBackOff.
- oom-killed: the vLLM container is OOMKilled (exit code 137) and restarts in a back-off loop.
- unschedulable-tpu: no TPU capacity; pods requesting google.com/tpu stay Pending, no scale-up.
- gateway-no-address: Gateways stay Programmed=False (AddressNotAssigned).
- gateway-hostname: Gateways get a Hostname address (localhost) instead of 127.0.0.1.
- operator-held:<name>: pods of Deployments whose name contains <name> never become Ready.
- gke-tpu-stockout: a TPU node pool create meets GCE_STOCKOUT (gke.py: the Operation stays
  RUNNING with the stock-out in its detail and conditions, the cluster stays locked, until GKE
  gives up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core import Emulator

SIMPLE = frozenset(
    {
        "image-pull-backoff",
        "crashloop-hf-401",
        "crashloop-hf-403",
        "oom-killed",
        "unschedulable-tpu",
        "gateway-no-address",
        "gateway-hostname",
        "gke-tpu-stockout",
    }
)
HELD_PREFIX = "operator-held:"
CRASH_FAILURES = ("crashloop-hf-401", "crashloop-hf-403", "oom-killed")


def validate(name: str) -> str:
    """Return name if it is a known scenario, else raise ValueError."""
    if name in SIMPLE or (name.startswith(HELD_PREFIX) and len(name) > len(HELD_PREFIX)):
        return name
    known = ", ".join(sorted(SIMPLE) + [HELD_PREFIX + "<name>"])
    raise ValueError(f"unknown scenario {name!r}; known: {known}")


def active(emu: Emulator, name: str) -> bool:
    return name in emu.scenario


def crash_failure(emu: Emulator) -> str | None:
    """The active scenario that makes LLM workload (vLLM) containers exit, if any."""
    return next((name for name in CRASH_FAILURES if name in emu.scenario), None)


def held(emu: Emulator, deployment_name: str) -> bool:
    """True when an operator-held:<name> scenario matches this Deployment name."""
    return any(
        s.startswith(HELD_PREFIX) and s[len(HELD_PREFIX) :] in deployment_name for s in emu.scenario
    )


def describe() -> dict[str, Any]:
    """Scenario names for the admin API."""
    return {"simple": sorted(SIMPLE), "parameterised": [HELD_PREFIX + "<name>"]}
