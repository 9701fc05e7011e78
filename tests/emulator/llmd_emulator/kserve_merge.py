"""How KServe combines an LLMInferenceService with its LLMInferenceServiceConfigs (release-v0.15).

Read from opendatahub-io/kserve 9682be26 (see docs/conformance.md):

- `pkg/controller/llmisvc/config_merge.go` `combineBaseRefsConfig`: which well-known configs
  apply (scheduler when `router.scheduler` is set without a pool ref, the HTTP route when
  `router.route` is set without route refs, the workload template by topology), then the
  service's own `baseRefs`, then the service itself, merged left to right by `MergeSpecs`;
  each config is looked up in the service's namespace first, then in the KServe namespace.
- `mergeSpecs`: a strategic merge patch (k8s.io/apimachinery strategicpatch) of the override
  over the base: maps merge, lists whose Go type declares `patchStrategy:"merge"` merge by their
  `patchMergeKey` (containers by name, env by name, ports by containerPort, volumeMounts by
  mountPath...), every other list - `args` and `command` among them - is replaced whole.
- `ReplaceVariables`: the merged config, serialised to JSON, is executed as a Go text/template
  with the LLMInferenceService and `.GlobalConfig` as data and `ChildName` (knative
  kmeta.ChildName) as the only function; missing keys are errors.

Deliberate gaps (refused loudly, never answered plausibly): template actions other than field
paths and `ChildName` calls; multi-node (`worker`) and prefill/decode topologies; `$patch`
directives. The order of merged list items follows the base, new items appended (apimachinery
orders by `$setElementOrder`, which gives the same result for the one-container specs used here).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
PREFIX = "kserve-"
TEMPLATE = PREFIX + "config-llm-template"
SCHEDULER = PREFIX + "config-llm-scheduler"
ROUTE = PREFIX + "config-llm-router-route"
DECODE_TEMPLATE = PREFIX + "config-llm-decode-template"
PREFILL_TEMPLATE = PREFIX + "config-llm-prefill-template"
WELL_KNOWN = (
    TEMPLATE,
    DECODE_TEMPLATE,
    PREFIX + "config-llm-worker-data-parallel",
    PREFIX + "config-llm-decode-worker-data-parallel",
    PREFILL_TEMPLATE,
    PREFIX + "config-llm-prefill-worker-data-parallel",
    SCHEDULER,
    ROUTE,
)
STATUS_ANNOTATION_PREFIX = "serving.kserve.io/"


class CombineError(Exception):
    """What KServe reports in PresetsCombined=False (reason CombineBaseError)."""


# ------------------------------------------------------------------------- names
def child_name(parent: str, suffix: str) -> str:
    """knative.dev/pkg/kmeta.ChildName: parent+suffix, hashed when longer than 63."""
    longest, md5_len = 63, 32
    if len(parent) <= longest - len(suffix):
        return parent + suffix
    head = longest - md5_len - len(suffix)
    if head <= 0:
        raise CombineError(f"emulator gap: ChildName with a suffix of {len(suffix)} characters")
    return parent[:head] + hashlib.md5(parent.encode()).hexdigest() + suffix  # noqa: S324


# ------------------------------------------------------------- strategic merge
# patchMergeKey of the lists k8s.io/api/core/v1 declares patchStrategy "merge" for, by the Go
# type that holds them (PodSpec, Container). Lists not named here are replaced whole.
_POD_SPEC_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
}
_CONTAINER_KEYS = {
    "env": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
}
# Where LLMInferenceServiceSpec holds a PodSpec.
_POD_SPEC_PATHS = {
    ("template",),
    ("worker",),
    ("prefill", "template"),
    ("prefill", "worker"),
    ("router", "scheduler", "template"),
}


def _list_key(path: tuple[str, ...]) -> str | None:
    if len(path) >= 1 and path[:-1] in _POD_SPEC_PATHS:
        return _POD_SPEC_KEYS.get(path[-1])
    container_lists = ("containers", "initContainers", "ephemeralContainers")
    # (..., "containers", "*", "env"): a list of one Container of a PodSpec.
    if len(path) >= 3 and path[-3] in container_lists and path[:-3] in _POD_SPEC_PATHS:
        return _CONTAINER_KEYS.get(path[-1])
    return None


def strategic_merge(base: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    """Apply patch over base as strategicpatch.StrategicMergePatch does for these types."""
    if isinstance(patch, dict) and any(k.startswith("$") for k in patch):
        raise CombineError(f"emulator gap: strategic merge directive in {'.'.join(path)}")
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = strategic_merge(out[key], value, (*path, key))
            else:
                out[key] = copy.deepcopy(value)
        return out
    key = _list_key(path)
    if key and isinstance(base, list) and isinstance(patch, list):
        out = copy.deepcopy(base)
        index = {item.get(key): i for i, item in enumerate(out) if isinstance(item, dict)}
        for item in patch:
            at = index.get(item.get(key)) if isinstance(item, dict) else None
            if at is None:
                out.append(copy.deepcopy(item))
            else:
                # Items of a merged list are structs of their own (a Container, an EnvVar).
                out[at] = strategic_merge(out[at], item, (*path, "*"))
        return out
    return copy.deepcopy(patch)


def _with_defaults(spec: Obj) -> Obj:
    """LLMInferenceServiceSpec.SetDefaults: a template without containers keeps `[]`."""
    spec = copy.deepcopy(spec)
    for path in _POD_SPEC_PATHS:
        node: Any = spec
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.setdefault("containers", [])
    return spec


def merge_specs(*specs: Obj) -> Obj:
    """MergeSpecs: left to right, each later spec patched over the result so far."""
    out: Obj = copy.deepcopy(specs[0]) if specs else {}
    for spec in specs[1:]:
        out = strategic_merge(out, _with_defaults(spec))
    return out


# ---------------------------------------------------------------- Go templates
_ACTION = re.compile(r"\{\{(-)?\s*(.*?)\s*(-)?\}\}", re.S)
_TOKEN = re.compile(r'`[^`]*`|"(?:[^"\\]|\\.)*"|[^\s]+')


def _go_view(svc: Obj, global_config: Obj) -> Obj:
    """The fields of the template data (the LLMInferenceService and GlobalConfig) by Go name."""
    meta = svc.get("metadata") or {}
    model = (svc.get("spec") or {}).get("model") or {}
    object_meta = {
        "Name": meta.get("name", ""),
        "Namespace": meta.get("namespace", ""),
        "Labels": meta.get("labels") or {},
        "Annotations": meta.get("annotations") or {},
    }
    return {
        "ObjectMeta": object_meta,
        **object_meta,  # promoted from the embedded ObjectMeta
        "Spec": {
            "Model": {
                "Name": model.get("name") or meta.get("name", ""),
                "URI": model.get("uri", ""),
            }
        },
        "GlobalConfig": {
            "SystemNamespace": global_config.get("systemNamespace", ""),
            "IngressGatewayName": global_config.get("ingressGatewayName", ""),
            "IngressGatewayNamespace": global_config.get("ingressGatewayNamespace", ""),
            "UrlScheme": global_config.get("urlScheme", ""),
        },
    }


def _field(view: Obj, dotted: str) -> Any:
    node: Any = view
    for part in dotted.strip(".").split("."):
        if not isinstance(node, dict) or part not in node:
            raise CombineError(
                f'failed to merge config: template: config: executing "config" at <{dotted}>: '
                f"can't evaluate field {part}"
            )
        node = node[part]
    return node


def _argument(view: Obj, token: str) -> Any:
    if token.startswith("`"):
        return token[1:-1]
    if token.startswith('"'):
        return json.loads(token)
    if token.startswith("."):
        return _field(view, token)
    raise CombineError(f"emulator gap: template argument {token!r}")


_FUNCS: dict[str, Callable[..., str]] = {"ChildName": child_name}


def _evaluate(view: Obj, expression: str) -> str:
    tokens = _TOKEN.findall(expression)
    if not tokens:
        raise CombineError("failed to parse template config: empty action")
    name, *args = tokens
    if name in _FUNCS:
        value = _FUNCS[name](*(str(_argument(view, a)) for a in args))
    elif not args:
        value = _argument(view, name)
    else:
        raise CombineError(f"emulator gap: template action {{{{ {expression} }}}}")
    return "" if value is None else str(value)


def render(text: str, svc: Obj, global_config: Obj) -> str:
    """Execute text as KServe's ReplaceVariables does (a subset of Go text/template)."""
    view = _go_view(svc, global_config)
    out: list[str] = []
    pos = 0
    for match in _ACTION.finditer(text):
        literal = text[pos : match.start()]
        if match.group(1):
            literal = literal.rstrip()
        out.append(literal)
        out.append(_evaluate(view, match.group(2)))
        pos = match.end()
        if match.group(3):
            rest = text[pos:]
            pos += len(rest) - len(rest.lstrip())
    out.append(text[pos:])
    return "".join(out)


# ------------------------------------------------------------------- combine
def _has(spec: Obj, *path: str) -> bool:
    node: Any = spec
    for part in path:
        if not isinstance(node, dict) or node.get(part) is None:
            return False
        node = node[part]
    return True


def well_known_refs(resolved: Obj) -> list[str]:
    """The well-known configs combineBaseRefsConfig applies to a resolved spec, in order."""
    router = resolved.get("router") or {}
    refs = []
    if _has(resolved, "router", "scheduler") and not _has(router, "scheduler", "pool", "ref"):
        refs.append(SCHEDULER)
    if _has(resolved, "router", "route") and not ((router["route"].get("http") or {}).get("refs")):
        refs.append(ROUTE)
    if resolved.get("worker") is not None or _has(resolved, "prefill"):
        raise CombineError("emulator gap: multi-node and prefill/decode topologies")
    refs.append(TEMPLATE)
    return refs


def workload_selector(name: str) -> dict[str, str]:
    """GetWorkloadLabelSelector (workload.go)."""
    return {
        "app.kubernetes.io/part-of": "llminferenceservice",
        "app.kubernetes.io/name": name,
        "kserve.io/component": "workload",
    }


def combine(
    svc: Obj, get_config: Callable[[str], Obj | None], global_config: Obj
) -> tuple[Obj, list[str]]:
    """(combined spec, configs applied) for svc, or CombineError with KServe's message.

    get_config(name) returns the LLMInferenceServiceConfig from the service's namespace or the
    KServe namespace, or None when neither has it.
    """
    meta = svc["metadata"]
    name, ns = meta["name"], meta["namespace"]
    system_ns = global_config.get("systemNamespace", "")

    def config(ref: str) -> Obj:
        found = get_config(ref)
        if found is None:
            raise CombineError(
                f'failed to get LLMInferenceServiceConfig "{ref}" from namespaces ["{ns}", '
                f'"{system_ns}"]: llminferenceserviceconfigs.serving.kserve.io "{ref}" not found'
            )
        return found.get("spec") or {}

    base_refs = [r.get("name", "") for r in svc["spec"].get("baseRefs") or ()]
    resolved = merge_specs(svc["spec"], *(config(r) for r in base_refs))
    refs = [*well_known_refs(resolved), *base_refs]
    spec = merge_specs(*(config(r) for r in refs), svc["spec"])

    scheduler = (spec.get("router") or {}).get("scheduler")
    if isinstance(scheduler, dict):
        pool_spec = (scheduler.get("pool") or {}).get("spec")
        if isinstance(pool_spec, dict) and not pool_spec.get("selector"):
            pool_spec["selector"] = workload_selector(name)
        template = scheduler.get("template")
        if isinstance(template, dict) and not template.get("serviceAccountName"):
            template["serviceAccountName"] = child_name(name, "-epp-sa")

    # The template data is the service, with the model name a baseRef may have set.
    data = copy.deepcopy(svc)
    model_name = (resolved.get("model") or {}).get("name")
    if model_name:
        data["spec"].setdefault("model", {})["name"] = model_name
    document = {"metadata": meta, "spec": spec}
    try:
        rendered = json.loads(render(json.dumps(document, ensure_ascii=False), data, global_config))
    except json.JSONDecodeError as err:
        raise CombineError(f"failed to unmarshal config from template: {err}") from err
    spec = rendered["spec"]

    router = spec.get("router") or {}
    http = (router.get("route") or {}).get("http") or {}
    route_spec = http.get("spec")
    gateway_refs = (router.get("gateway") or {}).get("refs") or []
    if isinstance(route_spec, dict) and gateway_refs:
        route_spec["parentRefs"] = [
            {
                "group": "gateway.networking.k8s.io",
                "kind": "Gateway",
                "name": ref["name"],
                "namespace": ref.get("namespace", ""),
            }
            for ref in gateway_refs
        ]
    if isinstance(route_spec, dict) and router.get("scheduler") is None:
        for rule in route_spec.get("rules") or ():
            for backend in rule.get("backendRefs") or ():
                if is_default_pool_ref(name, backend):
                    backend.update(
                        group="", kind="Service", name=child_name(name, "-kserve-workload-svc")
                    )
    return spec, refs


POOL_GROUPS = ("inference.networking.x-k8s.io", "inference.networking.k8s.io")


def is_default_pool_ref(name: str, backend: Obj) -> bool:
    """isDefaultBackendRef: the InferencePool (either group) KServe names for the service."""
    return (
        backend.get("group", "") in POOL_GROUPS
        and backend.get("kind") == "InferencePool"
        and backend.get("name") == child_name(name, "-inference-pool")
    )
