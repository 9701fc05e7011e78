# Copyright: (c) 2026, llmd.gke contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A support bundle of an llmd.gke deployment, for the support_bundle module.

``Collector`` reads, through ``k8s_wait.KubeClient`` (GET and LIST only):

- the LLMInferenceService, its children (``llmisvc.children_of``: workload and scheduler
  Deployments, HTTPRoute, InferencePool) and its conditions;
- per namespace (the model's first, then the platform's): pods, Deployments, Services, Events,
  and of the Secrets only their name, type and key names, never their data;
- the last ``log_lines`` lines of every container of those pods (and of the previous container
  when it restarted);
- versions: the API server's, the kubelets', every Deployment's images, and the client tools'
  and Helm releases' when the module gives a command runner.

Everything is redacted before it is written (``redact_tree``): the values given by the caller
(the Hugging Face token, the registry credentials), every value held by the Secrets of the
collected namespaces (raw, base64 and, for registry configs, each ``auth`` and password), then
the patterns of ``llmisvc.redact`` (``hf_...`` tokens, Bearer tokens, ``*TOKEN*=value`` pairs).
``managedFields`` and ``last-applied-configuration`` annotations are dropped.

``summarise`` says what looks wrong with the rules of llmisvc_wait (``llmisvc.diagnose`` with no
grace for an Unschedulable pod) plus what a person checks next: the LLMInferenceService missing
or not Ready, children missing, Deployments not Available, pods not Ready or restarting, Warning
Events. ``write_archive`` writes one tar.gz (mode 0600) under one top directory.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from ansible_collections.llmd.gke.plugins.module_utils.k8s_wait import KubeError, Resource
from ansible_collections.llmd.gke.plugins.module_utils.llmisvc import (
    child_summary,
    conditions_of,
    diagnose,
    hf_refinement,
    is_ready,
    llmisvcs,
    log_entries,
    read_children,
    read_pod_log,
    redact,
)

REDACTED = "<redacted>"
DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
MIN_SECRET_LEN = 4  # a value given by the caller
# A value read from a Secret: shorter ones ("true", "admin") would blank out ordinary words
# everywhere in the bundle.
MIN_STORED_LEN = 6
NAMESPACED = (
    ("pods", Resource("v1", "pods")),
    ("deployments", Resource("apps/v1", "deployments")),
    ("services", Resource("v1", "services")),
    ("events", Resource("v1", "events")),
)


# ------------------------------------------------------------------------------------ redaction
def _decoded(value: str) -> str | None:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def secret_values(secrets: Iterable[dict], minimum: int = MIN_STORED_LEN) -> set[str]:
    """Every value a Secret holds (``minimum`` characters or more), as stored (base64) and
    decoded; for registry configs also each ``auth``, its decoded ``user:password`` and the
    password alone."""
    found: set[str] = set()

    def add(value) -> None:
        if isinstance(value, str) and len(value) >= minimum:
            found.add(value)

    def add_config(text: str) -> None:
        try:
            config = json.loads(text)
        except ValueError:
            return
        auths = (config.get("auths") if isinstance(config, dict) else None) or {}
        for entry in auths.values() if isinstance(auths, dict) else ():
            if not isinstance(entry, dict):
                continue
            for key in ("auth", "password", "identitytoken", "registrytoken"):
                add(entry.get(key))
            plain = _decoded(entry.get("auth") or "")
            if plain:
                add(plain)
                add(plain.partition(":")[2])

    for secret in secrets:
        for value in ((secret or {}).get("data") or {}).values():
            add(value)
            plain = _decoded(value) if isinstance(value, str) else None
            if plain is not None:
                add(plain)
                add(plain.strip())
                add_config(plain)
        for value in ((secret or {}).get("stringData") or {}).values():
            add(value)
            if isinstance(value, str):
                add_config(value)
    return found


def known_values(values: Iterable[str]) -> set[str]:
    """The caller's secret values, with their base64 forms and, for a registry auth config given
    as JSON text, each auth entry."""
    found: set[str] = set()
    for value in values:
        if not isinstance(value, str) or len(value) < MIN_SECRET_LEN:
            continue
        found.add(value)
        found.add(base64.b64encode(value.encode()).decode())
        found |= secret_values([{"stringData": {"v": value}}], MIN_SECRET_LEN)
    return found


def redact_tree(value, values: Iterable[str]):
    """A copy of a JSON-like value with every string (and key) redacted."""
    values = tuple(values)
    if isinstance(value, str):
        return redact(value, values)
    if isinstance(value, dict):
        return {redact(str(k), values): redact_tree(v, values) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(v, values) for v in value]
    return value


def tidy(obj: dict) -> dict:
    """An object without managedFields and last-applied annotations (noise, and a copy of spec)."""
    obj = dict(obj)
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k not in DROPPED_ANNOTATIONS
    }
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    obj["metadata"] = meta
    return obj


def secret_summary(secret: dict) -> dict:
    """Name, type and key names of a Secret: never its data."""
    meta = secret.get("metadata") or {}
    keys = set((secret.get("data") or {}).keys()) | set((secret.get("stringData") or {}).keys())
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "type": secret.get("type", ""),
        "keys": sorted(keys),
        "labels": meta.get("labels") or {},
    }


# -------------------------------------------------------------------------------------- summary
def _name(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}".lstrip("/")


def _cond(obj: dict, type_: str) -> dict:
    return next((c for c in conditions_of(obj) if c["type"] == type_), {})


def summarise(
    svc: dict | None,
    children: dict,
    namespaces: dict[str, dict[str, list]],
    *,
    what: str,
    now: datetime,
    pull_secret: str = "redhat-pull-secret",
    hf_secret: str = "hf-token",
    model_namespace: str = "",
    logs: dict[str, list[str]] | None = None,
    log_lines: int = 20,
) -> dict:
    """{healthy, problems: [{where, what, hint}], diagnosis, ready, conditions}."""
    problems: list[dict] = []
    model = namespaces.get(model_namespace) or {}
    diagnosis = None
    if svc is None:
        problems.append(
            {
                "where": what,
                "what": "does not exist",
                "hint": "Run the model phase (ansible-playbook site.yml --tags model), or check "
                "the name and namespace",
            }
        )
    else:
        found, _recheck = diagnose(
            svc,
            [_between_crashes(p) for p in model.get("pods", []) if _belongs(p, svc)],
            model.get("events", []),
            now=now,
            unschedulable_grace=0.0,
            pull_secret=pull_secret,
            hf_secret=hf_secret,
        )
        if found is not None:
            if found.read_log and found.pod:
                base = f"logs/{model_namespace}/{found.pod}/{found.container}"
                lines = (logs or {}).get(f"{base}.previous.log") or (logs or {}).get(
                    f"{base}.log", []
                )
                texts = [text for _moment, text in log_entries(lines, now)]
                found.log_tail = texts[-log_lines:]
                if found.reason == "CrashLoopBackOff":
                    hf_refinement(found, texts, model_namespace, hf_secret)
            diagnosis = found.as_dict()
            problems.append({"where": found.pod or what, "what": found.cause, "hint": found.hint})
        if not is_ready(svc):
            ready = _cond(svc, "Ready")
            detail = ", ".join(x for x in (ready.get("reason"), ready.get("message")) if x)
            false = [
                f"{c['type']}={c['status']}" + (f" ({c['reason']})" if c.get("reason") else "")
                for c in conditions_of(svc)
                if c["status"] != "True"
            ]
            problems.append(
                {
                    "where": what,
                    "what": f"not Ready ({ready.get('status', 'no Ready condition')}"
                    f"{': ' + detail if detail else ''}); not True: {', '.join(false) or '-'}",
                    "hint": "See the conditions in llmisvc.json and the pods' events",
                }
            )
        for child in children.values():
            if child.get("exists") is False and child.get("kind") != "Deployment":
                problems.append(
                    {
                        "where": f"{child['kind']} {child['name']}",
                        "what": "does not exist",
                        "hint": "KServe creates it: see the controller's log "
                        "(logs of the KServe namespace)",
                    }
                )
            elif (
                child.get("kind") in ("HTTPRoute", "InferencePool")
                and child.get("exists")
                and not child.get("accepted")
            ):
                problems.append(
                    {
                        "where": f"{child['kind']} {child['name']}",
                        "what": "not Accepted by its gateway",
                        "hint": "Check the Gateway and istiod (logs of the gateway namespace)",
                    }
                )
    for namespace, found in namespaces.items():
        for deploy in found.get("deployments", []):
            spec = deploy.get("spec") or {}
            status = deploy.get("status") or {}
            wanted = spec.get("replicas", 1)
            if wanted and _cond(deploy, "Available").get("status") != "True":
                problems.append(
                    {
                        "where": f"Deployment {_name(deploy)}",
                        "what": f"not Available ({status.get('readyReplicas', 0)}/{wanted} ready)",
                        "hint": "See its pods below and their events",
                    }
                )
        for pod in found.get("pods", []):
            status = pod.get("status") or {}
            if status.get("phase") in ("Succeeded",):
                continue
            restarts = sum(
                cs.get("restartCount", 0) for cs in status.get("containerStatuses") or ()
            )
            reasons = sorted(
                {
                    ((cs.get("state") or {}).get("waiting") or {}).get("reason", "")
                    for cs in status.get("containerStatuses") or ()
                }
                - {""}
            )
            if _cond(pod, "Ready").get("status") != "True":
                problems.append(
                    {
                        "where": f"Pod {_name(pod)}",
                        "what": f"not Ready (phase {status.get('phase', '?')}"
                        f"{', ' + ', '.join(reasons) if reasons else ''})",
                        "hint": "See its events and log in the bundle",
                    }
                )
            elif restarts:
                problems.append(
                    {
                        "where": f"Pod {_name(pod)}",
                        "what": f"restarted {restarts} time(s)",
                        "hint": "See the previous container's log in the bundle",
                    }
                )
        warnings = Counter(
            e.get("reason", "")
            for e in found.get("events", [])
            if e.get("type") == "Warning" and not _settled(e, found.get("pods", []))
        )
        for reason, count in sorted(warnings.items()):
            problems.append(
                {
                    "where": f"namespace {namespace}",
                    "what": f"{count} Warning event(s) {reason}",
                    "hint": f"events/{namespace}.json",
                }
            )
    return {
        "healthy": not problems,
        "ready": is_ready(svc),
        "conditions": conditions_of(svc),
        "diagnosis": diagnosis,
        "problems": problems,
    }


def _settled(event: dict, pods: list[dict]) -> bool:
    """A Warning about a pod that is gone, or Ready since: history, not a current problem."""
    involved = event.get("involvedObject") or {}
    if involved.get("kind") != "Pod":
        return False
    pod = next(
        (p for p in pods if (p.get("metadata") or {}).get("name") == involved.get("name")), None
    )
    return pod is None or _cond(pod, "Ready").get("status") == "True"


def _between_crashes(pod: dict) -> dict:
    """A pod whose container runs again after exiting with an error, not Ready yet, seen as the
    CrashLoopBackOff it is between two crashes: a bundle is one snapshot, and llmisvc_wait's rule
    looks at the waiting reason, which a crashing container has only part of the time."""
    if _cond(pod, "Ready").get("status") == "True":
        return pod
    status = dict(pod.get("status") or {})
    statuses = []
    for cs in status.get("containerStatuses") or ():
        last = (cs.get("lastState") or {}).get("terminated") or {}
        state = cs.get("state") or {}
        if (
            state.get("running")
            and not cs.get("ready")
            and cs.get("restartCount", 0)
            and last.get("exitCode") not in (None, 0)
        ):
            statuses.append(
                dict(cs, state={"waiting": {"reason": "CrashLoopBackOff", "message": ""}})
            )
        else:
            statuses.append(cs)
    status["containerStatuses"] = statuses
    return dict(pod, status=status)


def _belongs(pod: dict, svc: dict) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return labels.get("app.kubernetes.io/name") == (svc.get("metadata") or {}).get("name")


def summary_text(summary: dict, what: str) -> str:
    lines = [
        f"{what}: {'Ready' if summary['ready'] else 'NOT Ready'}; "
        f"{len(summary['problems'])} problem(s) found."
    ]
    for problem in summary["problems"]:
        lines.append(f"- {problem['where']}: {problem['what']}. {problem['hint']}.")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ collector
class Collector:
    """Reads what a bundle holds; ``collect()`` returns (files, summary, warnings)."""

    def __init__(
        self,
        client,
        name: str,
        namespace: str,
        namespaces: Iterable[str] = (),
        *,
        log_lines: int = 200,
        redact_values: Iterable[str] = (),
        pull_secret: str = "redhat-pull-secret",
        hf_secret: str = "hf-token",
        read_log: Callable | None = None,
        tool_versions: Callable[[], dict] | None = None,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.name = name
        self.namespace = namespace
        self.namespaces = [namespace] + [n for n in dict.fromkeys(namespaces) if n != namespace]
        self.log_lines = log_lines
        self.given = tuple(v for v in redact_values if v)
        self.pull_secret = pull_secret
        self.hf_secret = hf_secret
        self.read_log = read_log or (lambda *a, **k: read_pod_log(client, *a, **k))
        self.tool_versions = tool_versions
        self.wall = wall
        self.warnings: list[str] = []
        self.values: set[str] = set()

    def _list(self, resource: Resource) -> list[dict]:
        try:
            return list(self.client.list(resource).get("items") or [])
        except KubeError as exc:
            if exc.status != 404:
                self.warnings.append(f"cannot list {resource.describe()}: {exc.message}")
            return []

    def _scrub(self, value):
        return redact_tree(value, self.values)

    def collect(self) -> tuple[dict[str, bytes], dict, list[str]]:
        now = self.wall()
        secrets: dict[str, list] = {}
        found: dict[str, dict[str, list]] = {}
        for ns in self.namespaces:
            secrets[ns] = self._list(Resource("v1", "secrets", ns))
            found[ns] = {
                key: self._list(Resource(res.api_version, res.plural, ns))
                for key, res in NAMESPACED
            }
        # Every value a Secret of these namespaces holds, and the caller's, is redacted.
        self.values = known_values(self.given) | secret_values(
            s for items in secrets.values() for s in items
        )
        what = f"LLMInferenceService {self.namespace}/{self.name}"
        try:
            svc = self.client.get(llmisvcs(self.namespace), self.name)
        except KubeError as exc:
            self.warnings.append(f"cannot read {what}: {exc.message}")
            svc = None
        children = {}
        for key, kind, child, obj, error in read_children(self.client, self.name, self.namespace):
            if error:
                children[key] = {"kind": kind, "name": child, "exists": None, "error": error}
                continue
            children[key] = {"kind": kind, "name": child, "exists": obj is not None}
            if obj is not None:
                children[key]["object"] = tidy(obj)
                children[key].update(
                    {k: v for k, v in child_summary(kind, child, obj).items() if k != "exists"}
                )
        logs = self._logs(found)
        summary = summarise(
            svc,
            children,
            found,
            what=what,
            now=now,
            pull_secret=self.pull_secret,
            hf_secret=self.hf_secret,
            model_namespace=self.namespace,
            logs=logs,
        )
        files: dict[str, object] = {
            "llmisvc.json": {
                "object": tidy(svc) if svc else None,
                "conditions": conditions_of(svc),
                "ready": is_ready(svc),
            },
            "children.json": children,
        }
        for ns in self.namespaces:
            for key, _res in NAMESPACED:
                files[f"{key}/{ns}.json"] = [tidy(o) for o in found[ns][key]]
            files[f"secrets/{ns}.json"] = [secret_summary(s) for s in secrets[ns]]
        files["versions.json"] = self._versions(found)
        files["summary.json"] = summary
        out: dict[str, bytes] = {}
        for path, content in files.items():
            out[path] = (json.dumps(self._scrub(content), indent=2, sort_keys=True) + "\n").encode()
        for path, lines in logs.items():
            text = "\n".join(self._scrub(list(lines)))
            out[path] = (text + ("\n" if text else "")).encode()
        summary = self._scrub(summary)
        out["summary.txt"] = summary_text(summary, what).encode()
        self.warnings = [redact(w, self.values) for w in self.warnings]
        return out, summary, self.warnings

    def _logs(self, found: dict[str, dict[str, list]]) -> dict[str, list[str]]:
        logs: dict[str, list[str]] = {}
        if not self.log_lines:
            return logs
        for ns, kinds in found.items():
            for pod in kinds["pods"]:
                pod_name = (pod.get("metadata") or {}).get("name", "")
                status = pod.get("status") or {}
                for cs in list(status.get("initContainerStatuses") or ()) + list(
                    status.get("containerStatuses") or ()
                ):
                    container = cs.get("name", "")
                    state = cs.get("state") or {}
                    runs = [(False, "", bool(state.get("running") or state.get("terminated")))]
                    if cs.get("restartCount", 0):
                        runs.append((True, ".previous", False))
                    for previous, suffix, must in runs:
                        try:
                            lines = self.read_log(
                                ns, pod_name, container, self.log_lines, previous=previous
                            )
                        except KubeError as exc:
                            if not must:
                                continue  # a waiting container, or no previous one: no log
                            lines = [f"(log not readable: {exc.message})"]
                        logs[f"logs/{ns}/{pod_name}/{container}{suffix}.log"] = lines
        return logs

    def _versions(self, found: dict[str, dict[str, list]]) -> dict:
        versions: dict = {"collected_at": self.wall().strftime("%Y-%m-%dT%H:%M:%SZ")}
        try:
            versions["kubernetes"] = self.client._json("/version", None, "GET /version")
        except KubeError as exc:
            versions["kubernetes"] = {"error": exc.message}
        nodes = self._list(Resource("v1", "nodes"))
        versions["nodes"] = [
            {
                "name": (n.get("metadata") or {}).get("name"),
                "pool": ((n.get("metadata") or {}).get("labels") or {}).get(
                    "cloud.google.com/gke-nodepool", ""
                ),
                "kubelet": ((n.get("status") or {}).get("nodeInfo") or {}).get(
                    "kubeletVersion", ""
                ),
            }
            for n in nodes
        ]
        images = []
        for kinds in found.values():
            for deploy in kinds["deployments"]:
                template = ((deploy.get("spec") or {}).get("template") or {}).get("spec") or {}
                for container in list(template.get("initContainers") or ()) + list(
                    template.get("containers") or ()
                ):
                    images.append(
                        {
                            "deployment": _name(deploy),
                            "container": container.get("name"),
                            "image": container.get("image"),
                        }
                    )
        versions["images"] = images
        crds = self._list(Resource("apiextensions.k8s.io/v1", "customresourcedefinitions"))
        versions["crds"] = sorted(
            {
                f"{(c.get('metadata') or {}).get('name')}: "
                + ",".join(
                    v.get("name", "")
                    for v in (c.get("spec") or {}).get("versions") or ()
                    if v.get("served")
                )
                for c in crds
            }
        )
        if self.tool_versions is not None:
            versions.update(self.tool_versions())
        return versions


# -------------------------------------------------------------------------------------- archive
def archive_name(name: str, namespace: str, moment: datetime) -> str:
    return f"llmd-support-{namespace}-{name}-{moment.strftime('%Y%m%dT%H%M%SZ')}"


def write_archive(files: dict[str, bytes], dest_dir: str, root: str) -> str:
    """Write files under root/ into dest_dir/root.tar.gz (mode 0600, atomically); its path."""
    os.makedirs(dest_dir, mode=0o700, exist_ok=True)
    path = os.path.join(dest_dir, f"{root}.tar.gz")
    stamp = time.time()
    fd, tmp = tempfile.mkstemp(prefix=".bundle-", dir=dest_dir)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for member in sorted(files):
                data = files[member]
                info = tarfile.TarInfo(f"{root}/{member}")
                info.size = len(data)
                info.mode = 0o600
                info.mtime = int(stamp)
                tar.addfile(info, io.BytesIO(data))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def leaks(files: dict[str, bytes], values: Iterable[str]) -> list[str]:
    """Paths of files that still contain one of values (a last check before writing)."""
    found = []
    for path, data in files.items():
        text = data.decode("utf-8", "replace")
        if any(v in text for v in values if len(v) >= MIN_SECRET_LEN):
            found.append(path)
    return found
