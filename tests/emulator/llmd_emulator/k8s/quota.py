"""ResourceQuota: the admission plugin's check on pod creation and the usage the quota controller
writes in status.

Read from k8s.io/kubernetes: plugin/pkg/admission/resourcequota/controller.go (checkRequest:
`exceeded quota: <name>, requested: ..., used: ..., limited: ...`, `failed quota: <name>: ...`,
prettyPrint), pkg/quota/v1/evaluator/core/pods.go (podComputeUsageHelper, Constraints,
QuotaV1Pod), pkg/controller/resourcequota/resource_quota_controller.go (status.hard = spec.hard,
status.used for every hard resource, 0 when unused) and k8s.io/apimachinery
pkg/api/resource/quantity.go (CanonicalizeBytes: how a summed quantity prints).

Only the pod compute resources are evaluated; a ResourceQuota naming anything else (object
counts, storage, hugepages, scopes) is refused with an error naming the emulator gap.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..store import Store

Obj = dict[str, Any]
Quantity = tuple[Decimal, str]  # value, format ("DecimalSI" or "BinarySI")

_COMPUTE = {
    "pods",
    "count/pods",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
}
# Constraints: with a quota on these, every container must set them (pods.go validationSet).
_MUST_SPECIFY = ("cpu", "limits.cpu", "limits.memory", "memory", "requests.cpu", "requests.memory")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {exp: suffix for suffix, exp in _DECIMAL.items()}


class QuotaGap(ValueError):
    """A ResourceQuota the emulator does not evaluate."""


def parse(value: Any) -> Quantity:
    """A quantity string to its exact value and format."""
    text = str(value).strip()
    for suffix, power in _BINARY.items():
        if text.endswith(suffix):
            return Decimal(text[: -len(suffix)]) * (1024**power), "BinarySI"
    try:
        if text and text[-1] in _DECIMAL and text[-1] != "":
            return Decimal(text[:-1]) * Decimal(10) ** _DECIMAL[text[-1]], "DecimalSI"
        return Decimal(text), "DecimalSI"
    except InvalidOperation as exc:
        raise ValueError(f"quantities must match the regular expression: {text!r}") from exc


def canonical(quantity: Quantity) -> str:
    """Quantity.String(): BinarySI in the largest exact 1024 power (DecimalSI below 1024 or for
    fractions), DecimalSI with the largest exponent (a multiple of 3) giving an integer."""
    value, fmt = quantity
    if value == 0:
        return "0"
    if fmt == "BinarySI" and abs(value) >= 1024 and value == value.to_integral_value():
        power = 0
        while power < 6 and value % (1024 ** (power + 1)) == 0:
            power += 1
        mantissa = int(value / (1024**power))
        return f"{mantissa}{['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'][power]}"
    exp = 18
    while exp > -9 and (value / Decimal(10) ** exp) != (value / Decimal(10) ** exp).to_integral():
        exp -= 3
    mantissa = (value / Decimal(10) ** exp).to_integral_value()
    return f"{int(mantissa)}{_DECIMAL_SUFFIX[exp]}"


def _add(total: dict[str, Quantity], key: str, quantity: Quantity) -> None:
    """quota.Add: the sum keeps the format of the quantity first added."""
    if key in total:
        total[key] = (total[key][0] + quantity[0], total[key][1])
    else:
        total[key] = quantity


def _extended(name: str) -> bool:
    """An extended resource (quota only as `requests.<name>`): a domain outside kubernetes.io."""
    domain = name.partition("/")[0] if "/" in name else ""
    return bool(domain) and not domain.endswith("kubernetes.io")


def _container_usage(resources: Obj) -> dict[str, Quantity]:
    """podComputeUsageHelper for one container's requests and limits."""
    requests = {k: parse(v) for k, v in (resources.get("requests") or {}).items()}
    limits = {k: parse(v) for k, v in (resources.get("limits") or {}).items()}
    usage: dict[str, Quantity] = {}
    for name in ("cpu", "memory", "ephemeral-storage"):
        if name in requests:
            usage[name] = usage[f"requests.{name}"] = requests[name]
        if name in limits:
            usage[f"limits.{name}"] = limits[name]
    for name, quantity in requests.items():
        if _extended(name):
            usage[f"requests.{name}"] = quantity
    return usage


def pod_usage(pod: Obj) -> dict[str, Quantity]:
    """The pod's usage: the sum over containers, at least the largest init container."""
    spec = pod.get("spec") or {}
    total: dict[str, Quantity] = {}
    for container in spec.get("containers") or ():
        for key, quantity in _container_usage(container.get("resources") or {}).items():
            _add(total, key, quantity)
    for init in spec.get("initContainers") or ():
        for key, quantity in _container_usage(init.get("resources") or {}).items():
            if key not in total or quantity[0] > total[key][0]:
                total[key] = quantity
    one = (Decimal(1), "DecimalSI")
    return {"pods": one, "count/pods": one, **total}


def counted(pod: Obj) -> bool:
    """QuotaV1Pod: terminal pods use no quota."""
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def check_quota_spec(quota: Obj) -> None:
    """Refuse what the emulator does not evaluate (loud, not a quota that never counts)."""
    spec = quota.get("spec") or {}
    name = (quota.get("metadata") or {}).get("name")
    if spec.get("scopes") or spec.get("scopeSelector"):
        raise _gap(name, "quota scopes (spec.scopes, spec.scopeSelector) are not evaluated")
    unknown = sorted(
        key
        for key in spec.get("hard") or {}
        if key not in _COMPUTE
        and not (key.startswith("requests.") and _extended(key.removeprefix("requests.")))
    )
    if unknown:
        raise _gap(
            name,
            f"quota on {', '.join(unknown)} is not evaluated (only pods, count/pods, cpu, "
            "memory, ephemeral-storage, their requests./limits. forms and requests.<extended "
            "resource>)",
        )
    for key, value in (spec.get("hard") or {}).items():
        try:
            parse(value)
        except ValueError as exc:
            from ..store import Invalid  # the store imports this module

            raise Invalid(
                f'ResourceQuota "{name}" is invalid: spec.hard[{key}]: Invalid value: '
                f'"{value}": quantities must match the regular expression '
                "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
            ) from exc


def _gap(name: str | None, what: str) -> Exception:
    from ..store import Invalid  # the store imports this module

    return Invalid(f'ResourceQuota "{name}" refused by llmd-emulator: emulator gap: {what}')


def namespace_usage(store: Store, namespace: str) -> dict[str, Quantity]:
    """The summed usage of the namespace's non-terminal pods (the quota controller's count)."""
    total: dict[str, Quantity] = {}
    for pod in store.list("v1", "Pod", namespace):
        if counted(pod):
            for key, quantity in pod_usage(pod).items():
                _add(total, key, quantity)
    return total


def quota_status(quota: Obj, usage: dict[str, Quantity]) -> Obj:
    """status as the quota controller writes it: hard = spec.hard, used for each hard key."""
    spec_hard = (quota.get("spec") or {}).get("hard") or {}
    hard = {key: canonical(parse(value)) for key, value in spec_hard.items()}
    used = {key: canonical(usage[key]) if key in usage else "0" for key in hard}
    return {"hard": hard, "used": used}


def _pretty(values: dict[str, str]) -> str:
    return ",".join(f"{key}={values[key]}" for key in sorted(values))


def admit_pod(store: Store, pod: Obj, namespace: str, requested: str) -> None:
    """The ResourceQuota admission plugin on pod creation (checkRequest)."""
    quotas = store.list("v1", "ResourceQuota", namespace)
    if not quotas:
        return
    from ..store import Forbidden  # the store imports this module

    def forbid(message: str) -> Forbidden:
        return Forbidden(
            f'pods "{requested}" is forbidden: {message}', {"name": requested, "kind": "pods"}
        )

    delta = pod_usage(pod)
    usage = namespace_usage(store, namespace)
    for quota in quotas:
        name = quota["metadata"]["name"]
        hard = (quota.get("spec") or {}).get("hard") or {}
        required = [r for r in _MUST_SPECIFY if r in hard]
        missing: dict[str, list[str]] = {}
        spec = pod.get("spec") or {}
        for container in [*(spec.get("containers") or ()), *(spec.get("initContainers") or ())]:
            own = _container_usage(container.get("resources") or {})
            for resource in required:
                if resource not in own:
                    missing.setdefault(resource, []).append(container.get("name", ""))
        if missing:
            parts = [f"{r} for: {','.join(missing[r])}" for r in sorted(missing)]
            raise forbid(f"failed quota: {name}: must specify {'; '.join(parts)}")
        requested_usage = {k: v for k, v in delta.items() if k in hard}
        exceeded = [
            key
            for key, quantity in requested_usage.items()
            if usage.get(key, (Decimal(0), ""))[0] + quantity[0] > parse(hard[key])[0]
        ]
        if exceeded:
            status = quota_status(quota, usage)
            raise forbid(
                f"exceeded quota: {name}, "
                f"requested: {_pretty({k: canonical(requested_usage[k]) for k in exceeded})}, "
                f"used: {_pretty({k: status['used'][k] for k in exceeded})}, "
                f"limited: {_pretty({k: status['hard'][k] for k in exceeded})}"
            )
