# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readiness of a KServe LLMInferenceService (serving.kserve.io/v1alpha1) for llmisvc_wait.

The wait watches three things at once, each with a ``k8s_wait.Watcher`` (LIST, then WATCH from
the list's resourceVersion, resumed after a dropped stream) in its own thread feeding one queue:
the LLMInferenceService itself, the pods KServe labels ``app.kubernetes.io/name=<name>,
app.kubernetes.io/part-of=llminferenceservice`` (the vLLM workload and the endpoint picker) and
the Events of the namespace. Every change is evaluated at once: Ready (``Ready=True`` at the
current generation), or a clear failure (``diagnose``), or nothing yet. No sleep-and-poll loop:
the only timed wake-up is the end of the grace given to an Unschedulable pod.

What is derived, and from where (so a later call, for example the next progress slice of the
action plugin, derives the same from the cluster alone):

- ``diagnose``: waiting reasons of containers (ImagePullBackOff, ErrImagePull with an
  authentication or not-found error, CrashLoopBackOff, CreateContainerConfigError,
  InvalidImageName), OOMKilled terminations, ``PodScheduled=False`` with reason Unschedulable
  (a failure only when the cluster autoscaler refuses to scale up, ``NotTriggerScaleUp`` /
  ``FailedScaleUp``, or when it did not announce a scale-up (``TriggeredScaleUp``) within the
  grace since the condition's ``lastTransitionTime``), and conditions of the
  LLMInferenceService that are False with a terminal reason. The container log of a crashing
  container is read (``tail``) and redacted; a Hugging Face 401 or 403 in it changes the hint.
- ``build_timeline``: stages with their times, from the LLMInferenceService's
  ``creationTimestamp`` and ``Ready`` condition, the pod's ``PodScheduled`` condition and
  ``Pulled``/``Started`` events or container ``startedAt``, and vLLM's log lines (model loading,
  compilation, API server start), read with ``timestamps=true`` (or vLLM's own ``MM-DD
  HH:MM:SS`` stamp, taken as UTC, when the server gives no timestamps).

Nothing returned contains a Hugging Face token, a bearer token or a value given to redact.
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import (
    CONNECT_TIMEOUT,
    Deadline,
    KubeError,
    Resource,
    Watcher,
    condition,
)

try:
    from kubernetes import client as k8s_client
    from kubernetes.client.exceptions import ApiException
except ImportError:  # pragma: no cover - the module reports the missing library
    k8s_client = None

    class ApiException(Exception):  # noqa: N818 - stands for the client's class
        status = None
        reason = None


API = "serving.kserve.io/v1alpha1"
PLURAL = "llminferenceservices"
POOL_API = "inference.networking.k8s.io/v1"
ROUTE_API = "gateway.networking.k8s.io/v1"
PART_OF = "app.kubernetes.io/part-of=llminferenceservice"
WORKLOAD_COMPONENT = "llminferenceservice-workload"
SCHEDULER_COMPONENT = "llminferenceservice-router-scheduler"
LOG_TIMEOUT = 30.0

# Conditions False with these reasons do not heal by waiting (KServe release-v0.15 names and the
# Deployment reason after progressDeadlineSeconds).
TERMINAL_REASONS = frozenset(
    {
        "CombineBaseError",
        "GatewayFetchError",
        "InvalidSpec",
        "ValidationFailed",
        "SpecValidationFailed",
        "ConfigError",
        "ProgressDeadlineExceeded",
        "RefsInvalid",
    }
)
IMAGE_AUTH = re.compile(
    r"401|403|unauthorized|forbidden|authentication required|denied|not found|manifest unknown",
    re.I,
)
HF_401 = re.compile(
    r"401 Client Error|RepositoryNotFoundError|Invalid username or password|Invalid user token"
    r"|Unauthorized for url: https://huggingface",
    re.I,
)
HF_403 = re.compile(
    r"403 Client Error|GatedRepoError|Cannot access gated repo|not in the authorized list", re.I
)
SCALE_UP_REFUSED = ("NotTriggerScaleUp", "FailedScaleUp", "ScaleUpTimedOut")
SCALE_UP_STARTED = "TriggeredScaleUp"

# ------------------------------------------------------------------------------------ redaction
_SECRET_PATTERNS = (
    # Hugging Face tokens (user and organisation API tokens).
    (re.compile(r"\b(?:hf|api_org)_[A-Za-z0-9]{16,}\b"), "<redacted>"),
    # Authorization headers and bearer tokens.
    (re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1<redacted>"),
    (
        re.compile(r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?(?:basic\s+)?)[^\s\"',}]{8,}"),
        r"\1<redacted>",
    ),
    # KEY=value and "key": "value" pairs of tokens, passwords and keys.
    (
        re.compile(
            r"(?i)(\b[A-Z0-9_]*(?:token|password|passwd|secret|api[_-]?key)[\"']?"
            r"\s*[:=]\s*[\"']?)[^\s\"',}]{4,}"
        ),
        r"\1<redacted>",
    ),
)


def redact(text: str, values: Iterable[str] = ()) -> str:
    """text without Hugging Face or bearer tokens, token-like KEY=value pairs and ``values``."""
    if not isinstance(text, str) or not text:
        return text
    for value in sorted({v for v in values if isinstance(v, str) and len(v) >= 4}, key=len)[::-1]:
        text = text.replace(value, "<redacted>")
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_all(value, values: Iterable[str] = ()):
    """A copy of a JSON-like value with every string redacted."""
    values = tuple(values)
    if isinstance(value, str):
        return redact(value, values)
    if isinstance(value, dict):
        return {k: redact_all(v, values) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_all(v, values) for v in value]
    return value


# ---------------------------------------------------------------------------------- small parts
def llmisvcs(namespace: str) -> Resource:
    return Resource(API, PLURAL, namespace)


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 time (``Z`` or offset, optional fraction beyond microseconds), or None."""
    if not text or not isinstance(text, str):
        return None
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?", text.strip())
    if not match:
        return None
    base, fraction, zone = match.groups()
    fraction = (fraction or "")[:7]
    zone = "+00:00" if zone in (None, "Z") else zone
    try:
        return datetime.fromisoformat(f"{base}{fraction}{zone}").astimezone(UTC)
    except ValueError:
        return None


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def conditions_of(obj: dict | None) -> list[dict]:
    """type/status/reason/message (and lastTransitionTime) of an object's conditions."""
    out = []
    for cond in ((obj or {}).get("status") or {}).get("conditions") or ():
        if not isinstance(cond, dict):
            continue
        entry = {k: cond.get(k, "") for k in ("type", "status", "reason", "message")}
        if cond.get("lastTransitionTime"):
            entry["lastTransitionTime"] = cond["lastTransitionTime"]
        out.append(entry)
    return out


def is_ready(svc: dict | None) -> bool:
    """Ready=True, observed at the current generation."""
    if not svc:
        return False
    ready = condition(svc, "Ready")
    if not ready or ready.get("status") != "True":
        return False
    observed = (svc.get("status") or {}).get("observedGeneration")
    generation = (svc.get("metadata") or {}).get("generation")
    return observed is None or generation is None or observed >= generation


def _meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def _labels(obj: dict) -> dict:
    return _meta(obj).get("labels") or {}


def is_workload(pod: dict) -> bool:
    labels = _labels(pod)
    return (
        labels.get("kserve.io/component") == "workload"
        or labels.get("app.kubernetes.io/component") == WORKLOAD_COMPONENT
    )


def _created(obj: dict) -> str:
    return _meta(obj).get("creationTimestamp") or ""


def ordered_pods(pods: Iterable[dict]) -> list[dict]:
    """Workload pods first, newest first; then the others (the endpoint picker)."""
    pods = [p for p in pods if not _meta(p).get("deletionTimestamp")]
    newest = sorted(pods, key=_created, reverse=True)
    return [p for p in newest if is_workload(p)] + [p for p in newest if not is_workload(p)]


def _statuses(pod: dict) -> list[dict]:
    status = pod.get("status") or {}
    return list(status.get("initContainerStatuses") or ()) + list(
        status.get("containerStatuses") or ()
    )


def pod_summary(pod: dict) -> dict:
    """What a person asks first about a pod."""
    status = pod.get("status") or {}
    scheduled = condition(pod, "PodScheduled") or {}
    containers = []
    for cs in _statuses(pod):
        state = cs.get("state") or {}
        current = next(iter(state), "")
        last = ((cs.get("lastState") or {}).get("terminated")) or {}
        containers.append(
            {
                "name": cs.get("name"),
                "state": current,
                "reason": (state.get(current) or {}).get("reason", "") if current else "",
                "ready": bool(cs.get("ready")),
                "restart_count": cs.get("restartCount", 0),
                "last_terminated_reason": last.get("reason", ""),
            }
        )
    return {
        "name": _meta(pod).get("name"),
        "component": "workload" if is_workload(pod) else "scheduler",
        "phase": status.get("phase", ""),
        "node": (pod.get("spec") or {}).get("nodeName") or "",
        "ready": (condition(pod, "Ready") or {}).get("status") == "True",
        "scheduled": {
            "status": scheduled.get("status", ""),
            "reason": scheduled.get("reason", ""),
            "message": scheduled.get("message", ""),
        },
        "containers": containers,
    }


# ------------------------------------------------------------------------------------- children
def children_of(name: str) -> list[tuple[str, str, Resource, str]]:
    """(key, kind, resource, object name) of what KServe creates for the LLMInferenceService."""
    return [
        ("workload", "Deployment", Resource("apps/v1", "deployments"), f"{name}-kserve"),
        ("route", "HTTPRoute", Resource(ROUTE_API, "httproutes"), f"{name}-kserve-route"),
        ("pool", "InferencePool", Resource(POOL_API, "inferencepools"), f"{name}-inference-pool"),
        (
            "scheduler",
            "Deployment",
            Resource("apps/v1", "deployments"),
            f"{name}-kserve-router-scheduler",
        ),
    ]


def read_children(client, name: str, namespace: str) -> Iterator[tuple]:
    """(key, kind, object name, object or None, error message or None) of each child, one GET
    each (an error is reported with its child, not raised)."""
    for key, kind, resource, child in children_of(name):
        try:
            obj = client.get(Resource(resource.api_version, resource.plural, namespace), child)
        except KubeError as exc:
            yield key, kind, child, None, exc.message
            continue
        yield key, kind, child, obj, None


def child_summary(kind: str, name: str, obj: dict | None) -> dict:
    """The key status of a child: replicas for Deployments, parent conditions for the others."""
    out: dict = {"kind": kind, "name": name, "exists": obj is not None}
    if obj is None:
        return out
    status = obj.get("status") or {}
    if kind == "Deployment":
        available = condition(obj, "Available") or {}
        out.update(
            replicas=(obj.get("spec") or {}).get("replicas"),
            ready_replicas=status.get("readyReplicas", 0),
            available=available.get("status") == "True",
            conditions=conditions_of(obj),
        )
        return out
    parents = []
    for parent in status.get("parents") or ():
        ref = parent.get("parentRef") or {}
        parents.append(
            {
                "parent": "/".join(x for x in (ref.get("namespace"), ref.get("name")) if x),
                "conditions": conditions_of({"status": parent}),
            }
        )
    accepted = bool(parents) and all(
        any(c["type"] == "Accepted" and c["status"] == "True" for c in p["conditions"])
        for p in parents
    )
    out.update(parents=parents, accepted=accepted)
    if kind == "HTTPRoute":
        out["resolved_refs"] = bool(parents) and all(
            any(c["type"] == "ResolvedRefs" and c["status"] == "True" for c in p["conditions"])
            for p in parents
        )
    return out


# ------------------------------------------------------------------------------------ diagnosis
@dataclass
class Diagnosis:
    """Why the LLMInferenceService will not become Ready by waiting."""

    cause: str
    hint: str
    reason: str
    pod: str = ""
    container: str = ""
    message: str = ""
    log_tail: list = field(default_factory=list)
    read_log: bool = False  # the container log explains it: read its tail

    def as_dict(self) -> dict:
        return {
            "cause": self.cause,
            "hint": self.hint,
            "reason": self.reason,
            "pod": self.pod,
            "container": self.container,
            "message": self.message,
            "log_tail": list(self.log_tail),
        }


def _pull_hint(namespace: str, pull_secret: str) -> str:
    return (
        f"The image cannot be pulled: check that Secret {pull_secret} exists in namespace "
        f"{namespace} and is listed in the pod's imagePullSecrets (or its ServiceAccount's), and "
        "that it holds valid credentials for the image's registry (registry.redhat.io: a "
        "registry service account from access.redhat.com/terms-based-registry); check the image "
        "name and tag"
    )


def _events_for(events: Iterable[dict], pod: dict) -> list[dict]:
    uid, name = _meta(pod).get("uid"), _meta(pod).get("name")
    out = []
    for event in events:
        involved = event.get("involvedObject") or {}
        if involved.get("kind", "Pod") != "Pod":
            continue
        if (uid and involved.get("uid") == uid) or (
            not involved.get("uid") and involved.get("name") == name
        ):
            out.append(event)
    return sorted(out, key=event_time_key)


def event_time(event: dict) -> datetime | None:
    return parse_time(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or _created(event)
    )


def first_event_time(event: dict) -> datetime | None:
    return parse_time(
        event.get("firstTimestamp")
        or event.get("eventTime")
        or _created(event)
        or event.get("lastTimestamp")
    )


def event_time_key(event: dict) -> str:
    moment = event_time(event)
    return moment.isoformat() if moment else ""


def _unschedulable_hint(message: str) -> str:
    hints = []
    if "google.com/tpu" in message or "Insufficient" in message:
        hints.append(
            "not enough free TPU chips: check the TPU node pool's size and autoscaling maximum "
            "(a pool at 0 nodes grows only with autoscaling enabled), the region's TPU quota, and "
            "that no other pod holds the chips; google.com/tpu requested must equal the chips "
            "per node"
        )
    if "taint" in message:
        hints.append(
            "the pod does not tolerate a node taint: TPU nodes carry google.com/tpu=present:"
            "NoSchedule, so the pod needs that toleration"
        )
    if "affinity" in message or "selector" in message:
        hints.append(
            "no node matches the pod's nodeSelector: cloud.google.com/gke-tpu-accelerator and "
            "cloud.google.com/gke-tpu-topology must match the TPU node pool (check its machine "
            "type and topology), and the pool must exist"
        )
    if not hints or "no nodes available" in message:
        hints.append(
            "no node can take the pod: check that the TPU node pool exists and has nodes, or "
            "that autoscaling is enabled on it (a pool scaled to zero gets a node only through "
            "the cluster autoscaler)"
        )
    text = "; ".join(hints)
    return text[:1].upper() + text[1:]


def diagnose(
    svc: dict | None,
    pods: Iterable[dict],
    events: Iterable[dict],
    *,
    now: datetime,
    unschedulable_grace: float = 60.0,
    pull_secret: str = "redhat-pull-secret",
    hf_secret: str = "hf-token",
) -> tuple[Diagnosis | None, float | None]:
    """(a clear failure or None, seconds after which to look again even without a change)."""
    events = list(events)
    namespace = _meta(svc or {}).get("namespace", "")
    # A condition of the LLMInferenceService False with a terminal reason.
    for cond in conditions_of(svc):
        if cond["status"] == "False" and cond["reason"] in TERMINAL_REASONS:
            return (
                Diagnosis(
                    cause=f"condition {cond['type']} is False with reason {cond['reason']}: "
                    f"{cond['message']}".rstrip(": "),
                    hint=_terminal_hint(cond["reason"], namespace),
                    reason=cond["reason"],
                    message=cond["message"],
                ),
                None,
            )
    recheck = None
    for pod in ordered_pods(pods):
        name = _meta(pod).get("name", "")
        namespace = _meta(pod).get("namespace", namespace)
        for cs in _statuses(pod):
            state = cs.get("state") or {}
            waiting = state.get("waiting") or {}
            last = (cs.get("lastState") or {}).get("terminated") or {}
            terminated = state.get("terminated") or {}
            reason, message = waiting.get("reason", ""), waiting.get("message", "")
            where = dict(pod=name, container=cs.get("name", ""))
            if "OOMKilled" in (last.get("reason"), terminated.get("reason")):
                return (
                    Diagnosis(
                        cause=f"container {cs.get('name')} of pod {name} was OOMKilled "
                        f"(exit code {last.get('exitCode') or terminated.get('exitCode') or 137},"
                        f" {cs.get('restartCount', 0)} restarts)",
                        hint="The container ran out of memory: raise its memory limit, or lower "
                        "--max-model-len / --max-num-seqs / the KV cache share "
                        "(--gpu-memory-utilization), or use a machine type with more memory",
                        reason="OOMKilled",
                        message=message,
                        read_log=True,
                        **where,
                    ),
                    None,
                )
            if reason == "ImagePullBackOff" or (
                reason == "ErrImagePull" and IMAGE_AUTH.search(message or "")
            ):
                detail = _pull_message(_events_for(events, pod)) or message
                return (
                    Diagnosis(
                        cause=f"pod {name} cannot pull the image of container {cs.get('name')} "
                        f"({reason}): {detail}".rstrip(": "),
                        hint=_pull_hint(namespace, pull_secret),
                        reason=reason,
                        message=detail,
                        **where,
                    ),
                    None,
                )
            if reason in ("InvalidImageName", "CreateContainerConfigError", "CreateContainerError"):
                hint = (
                    "Fix the image reference in the LLMInferenceService template"
                    if reason == "InvalidImageName"
                    else "A Secret or ConfigMap the container refers to is missing or lacks the "
                    f"key (for the model: Secret {hf_secret} with key HF_TOKEN in namespace "
                    f"{namespace}); create it, the kubelet retries on its own"
                )
                return (
                    Diagnosis(
                        cause=f"container {cs.get('name')} of pod {name} cannot start "
                        f"({reason}): {message}".rstrip(": "),
                        hint=hint,
                        reason=reason,
                        message=message,
                        **where,
                    ),
                    None,
                )
            if reason == "CrashLoopBackOff":
                exit_code = last.get("exitCode")
                killed = probe_kill(_events_for(events, pod), cs.get("name", ""))
                if killed:
                    return (
                        Diagnosis(
                            cause=f"container {cs.get('name')} of pod {name} keeps being "
                            f"restarted by the kubelet: {killed}",
                            hint="The probe gives up before vLLM listens (download, TPU init "
                            "and XLA compile take 12-15 minutes on a first TPU start): give "
                            "the container a startupProbe that allows the whole start-up "
                            "(the model role sizes it from model_startup_timeout), so that the "
                            "liveness probe only runs once vLLM is up",
                            reason="ProbeKilled",
                            message=message,
                            read_log=True,
                            **where,
                        ),
                        None,
                    )
                return (
                    Diagnosis(
                        cause=f"container {cs.get('name')} of pod {name} keeps crashing "
                        f"(CrashLoopBackOff, {cs.get('restartCount', 0)} restarts, last exit "
                        f"code {exit_code if exit_code is not None else 'unknown'}"
                        f"{', ' + last['reason'] if last.get('reason') else ''})",
                        hint="Read the log lines below (log_tail) for the error; the container "
                        "exits during start-up",
                        reason="CrashLoopBackOff",
                        message=message,
                        read_log=True,
                        **where,
                    ),
                    None,
                )
        scheduled = condition(pod, "PodScheduled") or {}
        if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
            message = scheduled.get("message", "")
            autoscaler = [
                e for e in _events_for(events, pod) if e.get("reason") in (*SCALE_UP_REFUSED,)
            ]
            started = [e for e in _events_for(events, pod) if e.get("reason") == SCALE_UP_STARTED]
            refused_after_start = autoscaler and (
                not started or event_time_key(autoscaler[-1]) >= event_time_key(started[-1])
            )
            if refused_after_start:
                note = autoscaler[-1].get("message", "")
                return (
                    Diagnosis(
                        cause=f"pod {name} is Unschedulable and the cluster autoscaler will not "
                        f"add a node: {message}; autoscaler: {note}",
                        hint=_unschedulable_hint(message + " " + note),
                        reason="Unschedulable",
                        message=message,
                        pod=name,
                    ),
                    None,
                )
            if started:
                continue  # the autoscaler is adding a node for it: not a failure
            since = parse_time(scheduled.get("lastTransitionTime"))
            waited = (now - since).total_seconds() if since else 0.0
            if waited >= unschedulable_grace:
                return (
                    Diagnosis(
                        cause=f"pod {name} is Unschedulable for {waited:.0f} s and no cluster "
                        f"autoscaler scale-up was announced: {message}",
                        hint=_unschedulable_hint(message),
                        reason="Unschedulable",
                        message=message,
                        pod=name,
                    ),
                    None,
                )
            left = unschedulable_grace - waited
            recheck = left if recheck is None else min(recheck, left)
    return None, recheck


def _pull_message(events: list[dict]) -> str:
    for event in reversed(events):
        text = event.get("message") or ""
        if event.get("reason") == "Failed" and text.startswith("Failed to pull image"):
            return text
    return ""


def _terminal_hint(reason: str, namespace: str) -> str:
    if reason == "CombineBaseError":
        return (
            "A baseRefs entry names an LLMInferenceServiceConfig that does not exist in the "
            f"namespace {namespace} nor in the KServe namespace: run the kserve phase (it "
            "installs the well-known configs) or fix spec.baseRefs"
        )
    if reason == "GatewayFetchError":
        return (
            "The Gateway named in spec.router.gateway.refs does not exist: run the gateway phase "
            "or fix the reference"
        )
    if reason == "ProgressDeadlineExceeded":
        return (
            "The Deployment made no progress within its progressDeadlineSeconds: see the pods' "
            "events (kubectl describe pod)"
        )
    return "Fix the LLMInferenceService spec named in the message and apply it again"


def probe_kill(events: list[dict], container: str) -> str:
    """The kubelet's last "failed <probe> probe, will be restarted" for container, with why."""
    killing = [
        e
        for e in events
        if e.get("reason") == "Killing"
        and f"Container {container} failed " in (e.get("message") or "")
        and "probe, will be restarted" in (e.get("message") or "")
    ]
    if not killing:
        return ""
    text = killing[-1]["message"]
    kind = text.split(" failed ", 1)[1].split(" probe", 1)[0]
    failed = [
        e.get("message", "")
        for e in events
        if e.get("reason") == "Unhealthy" and e.get("message", "").lower().startswith(kind)
    ]
    return f"{text} ({failed[-1]})" if failed else text


# Log lines read to diagnose a crash (log_tail keeps the last log_lines of them).
DIAGNOSIS_LOG_LINES = 100
# A shell or vLLM refusing the command line: bash's "invalid option", vLLM's argparse errors.
COMMAND_LINE_ERROR = re.compile(
    r"^(\S*sh: .*: invalid option|\S*sh: .*: command not found|vllm serve: error: .*"
    r"|ValueError: No model specified!.*)$"
)


def command_line_refinement(diagnosis: Diagnosis, lines: list[str]) -> None:
    """The container's command line never starts vLLM: quote the error and say where to fix it."""
    found = next((line for line in lines if COMMAND_LINE_ERROR.match(line.strip())), None)
    if not found:
        return
    diagnosis.cause += f"; the command line does not start vLLM: {found.strip()}"
    diagnosis.hint = (
        "KServe's kserve-config-llm-template runs `/bin/bash -c <script>`, and the script calls "
        "`vllm serve /mnt/models --served-model-name <spec.model.name> --port 8000 "
        "${VLLM_ADDITIONAL_ARGS} ...`; `args` set in the LLMInferenceService replace that script "
        "whole. Pass extra vLLM arguments in the env VLLM_ADDITIONAL_ARGS (the model role does) "
        "and check them against `vllm serve --help` of the image"
    )
    diagnosis.reason = "InvalidCommandLine"


def hf_refinement(diagnosis: Diagnosis, lines: list[str], namespace: str, hf_secret: str) -> None:
    """A Hugging Face 401/403 in the log: say what to do about the token or the model's access."""
    text = "\n".join(lines)
    if HF_403.search(text):
        diagnosis.cause += "; the Hugging Face Hub refused access to the model (403)"
        diagnosis.hint = (
            "The Hugging Face token has no access to this gated model: accept the model's licence "
            "on its huggingface.co page with the account that owns the token (or use a token with "
            f"access), update Secret {hf_secret} in namespace {namespace}, then restart the pod"
        )
        diagnosis.reason = "HuggingFace403"
    elif HF_401.search(text):
        diagnosis.cause += "; the Hugging Face Hub refused the token (401)"
        diagnosis.hint = (
            f"The Hugging Face token was refused: check that Secret {hf_secret} in namespace "
            f"{namespace} holds a valid token (key HF_TOKEN; huggingface.co/settings/tokens) and "
            "that the model URI names an existing repository, then restart the pod"
        )
        diagnosis.reason = "HuggingFace401"


# ------------------------------------------------------------------------------------- timeline
LOG_STAGES = (
    ("model_loading", re.compile(r"(?i)loading (the )?(model|weights)|load(ing)? weights")),
    ("compiling", re.compile(r"(?i)\bcompil(ing|ation)\b")),
    ("server_starting", re.compile(r"(?i)starting vllm api server|started server process")),
)
_TS_PREFIX = re.compile(r"^(\d{4}-\d\d-\d\dT\S+)\s(.*)$")
_VLLM_STAMP = re.compile(r"\b(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\b")


def log_entries(lines: Iterable[str], now: datetime) -> list[tuple[datetime | None, str]]:
    """(time, text) of log lines read with timestamps=true, or stamped by vLLM (UTC assumed)."""
    out = []
    for line in lines:
        moment, text = None, line
        match = _TS_PREFIX.match(line)
        if match and parse_time(match.group(1)):
            moment, text = parse_time(match.group(1)), match.group(2)
        else:
            stamp = _VLLM_STAMP.search(line)
            if stamp:
                month, day, hour, minute, second = (int(x) for x in stamp.groups())
                with contextlib.suppress(ValueError):
                    moment = datetime(now.year, month, day, hour, minute, second, tzinfo=UTC)
                    if moment > now and (moment - now).days > 1:  # stamped last year
                        moment = moment.replace(year=now.year - 1)
        out.append((moment, text))
    return out


def log_stages(entries: list[tuple[datetime | None, str]]) -> dict[str, datetime]:
    """The time of the first log line of each start-up stage."""
    found: dict[str, datetime] = {}
    for moment, text in entries:
        if moment is None:
            continue
        for stage, pattern in LOG_STAGES:
            if stage not in found and pattern.search(text):
                found[stage] = moment
    return found


def timeline_pod(pods: Iterable[dict]) -> dict | None:
    """The workload pod the timeline follows: the first Ready one, else the newest."""
    workload = [p for p in ordered_pods(pods) if is_workload(p)]
    ready = [p for p in workload if (condition(p, "Ready") or {}).get("status") == "True"]
    if ready:
        return min(ready, key=lambda p: (condition(p, "Ready") or {}).get("lastTransitionTime", ""))
    return workload[0] if workload else None


def build_timeline(
    svc: dict | None,
    pods: Iterable[dict],
    events: Iterable[dict],
    log: list[tuple[datetime | None, str]] | None = None,
) -> list[dict]:
    """Stages reached, in order: created, scheduled, image_pulled, container_started,
    model_loading, compiling, server_starting, ready; each with its time (``at``), seconds since
    creation (``offset``) and how long it lasted until the next stage (``duration``)."""
    marks: dict[str, datetime] = {}
    created = parse_time(_created(svc or {}))
    if created:
        marks["created"] = created
    pod = timeline_pod(pods)
    if pod is not None:
        scheduled = condition(pod, "PodScheduled") or {}
        if scheduled.get("status") == "True":
            moment = parse_time(scheduled.get("lastTransitionTime"))
            if moment:
                marks["scheduled"] = moment
        own = _events_for(events, pod)
        for stage, reason in (("scaling_up", SCALE_UP_STARTED), ("image_pulled", "Pulled")):
            hits = [e for e in own if e.get("reason") == reason]
            if hits and first_event_time(hits[0]):
                marks[stage] = first_event_time(hits[0])
        started = [
            parse_time(((cs.get("state") or {}).get("running") or {}).get("startedAt"))
            for cs in (pod.get("status") or {}).get("containerStatuses") or ()
        ]
        started = [s for s in started if s]
        start_events = [first_event_time(e) for e in own if e.get("reason") == "Started"]
        start_events = [s for s in start_events if s]
        if start_events:
            marks["container_started"] = start_events[0]
        elif started:
            marks["container_started"] = min(started)
        if "image_pulled" not in marks and "container_started" in marks:
            marks["image_pulled"] = marks["container_started"]
        for stage, moment in log_stages(log or []).items():
            marks[stage] = moment
    ready = condition(svc, "Ready") or {}
    if ready.get("status") == "True" and parse_time(ready.get("lastTransitionTime")):
        marks["ready"] = parse_time(ready.get("lastTransitionTime"))
    order = [
        "created",
        "scaling_up",
        "scheduled",
        "image_pulled",
        "container_started",
        "model_loading",
        "compiling",
        "server_starting",
        "ready",
    ]
    # Conditions and events carry whole seconds, container starts and log lines fractions: a
    # stage never shows before the one it follows (they are seconds apart only in compressed time).
    stages: list[tuple[str, datetime]] = []
    for stage in order:
        if stage in marks:
            moment = marks[stage]
            stages.append((stage, max(moment, stages[-1][1]) if stages else moment))
    out = []
    for i, (stage, moment) in enumerate(stages):
        nxt = stages[i + 1][1] if i + 1 < len(stages) else None
        out.append(
            {
                "stage": stage,
                "at": iso(moment),
                "offset": round((moment - created).total_seconds(), 1) if created else None,
                "duration": round(max(0.0, (nxt - moment).total_seconds()), 1) if nxt else None,
            }
        )
    return out


def current_stage(svc: dict | None, pods: Iterable[dict], timeline: list[dict]) -> str:
    """A short phrase for the progress line."""
    if svc is None:
        return "not found yet"
    if is_ready(svc):
        return "Ready"
    pod = timeline_pod(pods)
    if pod is None:
        ready = condition(svc, "Ready") or {}
        why = f" ({ready.get('reason')})" if ready.get("reason") else ""
        return f"waiting for the workload pod{why}"
    summary = pod_summary(pod)
    if summary["scheduled"]["reason"] == "Unschedulable":
        if any(t["stage"] == "scaling_up" for t in timeline):
            return f"pod {summary['name']} Pending, cluster autoscaler adding a node"
        return f"pod {summary['name']} Pending (Unschedulable)"
    last = timeline[-1]["stage"] if timeline else "created"
    labels = {
        "created": "waiting for the workload pod",
        "scaling_up": "cluster autoscaler adding a node",
        "scheduled": "pulling the image",
        "image_pulled": "starting the container",
        "container_started": "vLLM starting",
        "model_loading": "loading the model",
        "compiling": "compiling the model (XLA)",
        "server_starting": "starting the API server",
    }
    reasons = [c["reason"] for c in summary["containers"] if c["reason"]]
    extra = f", {', '.join(reasons)}" if reasons else ""
    return f"pod {summary['name']} {summary['phase']}{extra}: {labels.get(last, last)}"


# ----------------------------------------------------------------------------------------- wait
@dataclass
class Outcome:
    """How a wait ended: ready, failed (diagnosis), timeout, pending (the slice ran out)."""

    status: str
    svc: dict | None
    pods: list
    events: list
    diagnosis: Diagnosis | None = None
    elapsed: float = 0.0
    message: str = ""


def read_pod_log(
    client, namespace: str, pod: str, container: str, tail: int | None, *, previous: bool = False
) -> list[str]:
    """Lines of a container's log (with timestamps); raises KubeError."""
    if k8s_client is None:  # pragma: no cover
        raise KubeError("the kubernetes client is not installed")
    api = k8s_client.CoreV1Api(client.api)
    kwargs = dict(container=container, timestamps=True, previous=previous)
    if tail:
        kwargs["tail_lines"] = tail
    try:
        response = api.read_namespaced_pod_log(
            pod,
            namespace,
            _preload_content=False,
            _request_timeout=(CONNECT_TIMEOUT, LOG_TIMEOUT),
            **kwargs,
        )
        text = response.data.decode("utf-8", "replace")
    except ApiException as exc:
        raise KubeError(
            client.redact(f"cannot read the log of {namespace}/{pod}/{container}: {exc.reason}"),
            status=exc.status,
            reason=str(exc.reason),
        ) from None
    except Exception as exc:  # urllib3 errors, timeouts
        raise KubeError(
            client.redact(f"cannot read the log of {namespace}/{pod}/{container}: {exc}")
        ) from None
    return text.splitlines()


_DONE = object()


class LlmisvcWaiter:
    """Waits for one LLMInferenceService; see the module docstring."""

    def __init__(
        self,
        client,
        name: str,
        namespace: str,
        *,
        log_lines: int = 25,
        fail_fast: bool = True,
        unschedulable_grace: float = 60.0,
        pull_secret: str = "redhat-pull-secret",
        hf_secret: str = "hf-token",
        redact_values: Iterable[str] = (),
        read_log: Callable | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.name = name
        self.namespace = namespace
        self.log_lines = log_lines
        self.fail_fast = fail_fast
        self.unschedulable_grace = unschedulable_grace
        self.pull_secret = pull_secret
        self.hf_secret = hf_secret
        self.redact_values = tuple(v for v in redact_values if v)
        self.read_log = read_log or (lambda *a, **k: read_pod_log(client, *a, **k))
        self.clock = clock
        self.wall = wall
        self.warnings: list[str] = []
        self.watchers: list[Watcher] = []

    # ------------------------------------------------------------------ watching
    def _watchers(self) -> dict[str, Watcher]:
        pods = Resource("v1", "pods", self.namespace)
        events = Resource("v1", "events", self.namespace)
        watchers = {
            "svc": Watcher(
                self.client, llmisvcs(self.namespace), field_selector=f"metadata.name={self.name}"
            ),
            "pods": Watcher(
                self.client, pods, label_selector=f"app.kubernetes.io/name={self.name},{PART_OF}"
            ),
            "events": Watcher(self.client, events),
        }
        self.watchers = list(watchers.values())
        return watchers

    @staticmethod
    def _pump(key: str, watcher: Watcher, deadline: Deadline, out: queue.Queue, stop) -> None:
        try:
            for snapshot in watcher.snapshots(deadline):
                if stop.is_set():
                    return
                out.put((key, snapshot, None))
        except KubeError as exc:
            out.put((key, None, exc))
        except Exception as exc:  # noqa: BLE001 - reported, never a traceback
            out.put((key, None, KubeError(f"{type(exc).__name__}: {exc}")))
        finally:
            out.put((key, _DONE, None))

    def wait(self, timeout: float, slice_seconds: float | None = None) -> Outcome:
        """Wait until Ready, a clear failure, the end of the slice (pending) or the timeout."""
        overall = Deadline(timeout, self.clock)
        budget = timeout if not slice_seconds else min(timeout, slice_seconds)
        deadline = Deadline(budget, self.clock)
        pending_status = "pending" if budget < timeout else "timeout"
        events: queue.Queue = queue.Queue()
        stop = threading.Event()
        state: dict = {}
        ended: set[str] = set()
        watchers = self._watchers()
        for key, watcher in watchers.items():
            threading.Thread(
                target=self._pump,
                args=(key, watcher, deadline, events, stop),
                name=f"llmisvc-watch-{key}",
                daemon=True,
            ).start()
        recheck_at = None
        try:
            while True:
                complete = all(k in state for k in watchers)
                wait = deadline.remaining()
                if recheck_at is not None:
                    wait = min(wait, max(0.0, recheck_at - self.clock()))
                if not complete and len(ended) < len(watchers):
                    wait = max(wait, 0.2)  # the first LISTs are still under way
                try:
                    item = events.get(timeout=wait) if wait > 0 else events.get_nowait()
                    batch = [item]
                    while True:
                        try:
                            batch.append(events.get_nowait())
                        except queue.Empty:
                            break
                except queue.Empty:
                    batch = []
                for key, snapshot, error in batch:
                    if snapshot is _DONE:
                        ended.add(key)
                    elif error is not None:
                        if key == "svc" or key not in state:
                            if key == "svc":
                                raise error
                            self.warnings.append(
                                f"cannot watch the {key} of namespace {self.namespace}: "
                                f"{error.message}"
                            )
                            state[key] = {}
                    else:
                        state[key] = snapshot
                if all(k in state for k in watchers):
                    svc = next(iter(state["svc"].values()), None)
                    pods, evs = list(state["pods"].values()), list(state["events"].values())
                    if svc is None:
                        return Outcome("missing", None, pods, evs, elapsed=overall.elapsed())
                    if is_ready(svc):
                        return Outcome("ready", svc, pods, evs, elapsed=overall.elapsed())
                    diagnosis, recheck = diagnose(
                        svc,
                        pods,
                        evs,
                        now=self.wall(),
                        unschedulable_grace=self.unschedulable_grace,
                        pull_secret=self.pull_secret,
                        hf_secret=self.hf_secret,
                    )
                    recheck_at = None if recheck is None else self.clock() + recheck + 0.05
                    if diagnosis is not None and self.fail_fast:
                        self._with_log(diagnosis)
                        return Outcome(
                            "failed", svc, pods, evs, diagnosis, elapsed=overall.elapsed()
                        )
                    if deadline.expired() or len(ended) == len(watchers):
                        if diagnosis is not None:
                            self._with_log(diagnosis)
                        return Outcome(
                            pending_status, svc, pods, evs, diagnosis, elapsed=overall.elapsed()
                        )
                elif deadline.expired() and len(ended) == len(watchers):
                    raise KubeError(
                        f"could not read LLMInferenceService {self.namespace}/{self.name} before "
                        "the deadline"
                    )
        finally:
            stop.set()

    # ---------------------------------------------------------------------- logs
    def _with_log(self, diagnosis: Diagnosis) -> None:
        if not diagnosis.read_log or not diagnosis.pod or not self.log_lines:
            return
        lines: list[str] = []
        for previous in (True, False):
            try:
                lines = self.read_log(
                    self.namespace,
                    diagnosis.pod,
                    diagnosis.container,
                    # Enough to find an error printed before a long usage text.
                    max(self.log_lines, DIAGNOSIS_LOG_LINES),
                    previous=previous,
                )
            except KubeError:
                continue
            if lines:
                break
        texts = [text for _moment, text in log_entries(lines, self.wall())]
        diagnosis.log_tail = [self.redact(t) for t in texts[-self.log_lines :]]
        if diagnosis.reason == "CrashLoopBackOff":
            hf_refinement(diagnosis, texts, self.namespace, self.hf_secret)
            command_line_refinement(diagnosis, texts)

    def workload_log(self, pods: list[dict]) -> list[tuple[datetime | None, str]]:
        """The timeline pod's main container log (one read), or [] when there is none yet."""
        pod = timeline_pod(pods)
        if pod is None:
            return []
        statuses = (pod.get("status") or {}).get("containerStatuses") or ()
        main = next((cs for cs in statuses if cs.get("name") == "main"), None) or next(
            iter(statuses), None
        )
        if not main or not (main.get("state") or {}).get("running"):
            return []
        try:
            lines = self.read_log(self.namespace, _meta(pod)["name"], main["name"], None)
        except KubeError as exc:
            self.warnings.append(self.redact(exc.message))
            return []
        return log_entries(lines, self.wall())

    def redact(self, text: str) -> str:
        text = self.client.redact(text) if hasattr(self.client, "redact") else text
        return redact(text, self.redact_values)

    # ------------------------------------------------------------------ children
    def children(self) -> dict:
        out = {}
        for key, kind, child, obj, error in read_children(self.client, self.name, self.namespace):
            if error:
                out[key] = {"kind": kind, "name": child, "exists": None, "error": error}
            else:
                out[key] = child_summary(kind, child, obj)
        return out

    def api_calls(self) -> dict:
        return {
            "lists": sum(w.lists for w in self.watchers),
            "watches": sum(w.watches for w in self.watchers),
        }


def result_of(waiter: LlmisvcWaiter, outcome: Outcome, *, with_children: bool = True) -> dict:
    """The module's return values for an outcome (redacted)."""
    svc = outcome.svc
    log = waiter.workload_log(outcome.pods) if svc is not None else []
    timeline = build_timeline(svc, outcome.pods, outcome.events, log)
    result = {
        "ready": outcome.status == "ready",
        "url": ((svc or {}).get("status") or {}).get("url"),
        "conditions": conditions_of(svc),
        "timeline": timeline,
        "stage": current_stage(svc, outcome.pods, timeline),
        "pods": [pod_summary(p) for p in ordered_pods(outcome.pods)],
        "elapsed": round(outcome.elapsed, 1),
    }
    if with_children:
        result["children"] = waiter.children()
    if outcome.diagnosis is not None:
        result["diagnosis"] = outcome.diagnosis.as_dict()
    return redact_all(result, waiter.redact_values)
