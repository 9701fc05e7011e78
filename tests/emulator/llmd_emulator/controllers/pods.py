"""kubelet stand-in: drives each scheduled pod through its container states in emulated time.

Timings (emulated seconds) come from `emu.config["pods"]`, see DEFAULT_TIMING. LLM workload
pods (label kserve.io/component=workload or a vLLM image) take the long vLLM path and are the
ones the workload failure scenarios (see scenarios.py) act on.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import scenarios, vllm_cli
from ..store import now_iso
from . import probes, vllm_logs
from .base import Obj, controller_of, set_condition

if TYPE_CHECKING:
    from ..core import Emulator

DEFAULT_TIMING = {
    "pull_seconds": 2.0,
    "ready_seconds": 3.0,
    "vllm_pull_seconds": 60.0,
    "vllm_ready_seconds": 600.0,
    "job_seconds": 5.0,
    "crash_seconds": 45.0,
    "backoff_seconds": 10.0,
    "max_backoff_seconds": 300.0,
}
_POD_IPS = (f"10.8.{i // 250}.{i % 250 + 2}" for i in itertools.count())


def is_llm_workload(pod: Obj) -> bool:
    labels = pod["metadata"].get("labels") or {}
    if labels.get("kserve.io/component") == "workload":
        return True
    return any("vllm" in (c.get("image") or "") for c in pod["spec"].get("containers") or ())


def _owner_deployment_name(pod: Obj) -> str:
    """The Deployment a ReplicaSet pod belongs to (the ReplicaSet name minus its hash)."""
    ref = controller_of(pod, "ReplicaSet")
    return ref["name"].rsplit("-", 1)[0] if ref else ""


class PodRunner:
    """One asyncio task per scheduled pod; cancelled when the pod is deleted."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store
        self._tasks: dict[str, asyncio.Task] = {}
        self.store.subscribe(self._on_event)

    @property
    def timing(self) -> dict[str, float]:
        return {**DEFAULT_TIMING, **(self.emu.config.get("pods") or {})}

    def _on_event(self, event: str, obj: Obj) -> None:
        if obj.get("kind") != "Pod" or obj.get("apiVersion") != "v1":
            return
        uid = obj["metadata"]["uid"]
        if event == "DELETED":
            task = self._tasks.pop(uid, None)
            if task:
                task.cancel()
        elif (
            obj["spec"].get("nodeName")
            and uid not in self._tasks
            and obj["status"].get("phase") == "Pending"
            and not obj["status"].get("containerStatuses")
        ):
            self._tasks[uid] = self.emu.spawn(self._run(obj))

    # ------------------------------------------------------------ status helpers
    def _write(self, pod: Obj, mutate: Callable[[Obj], None]) -> Obj | None:
        """Apply mutate to the stored pod's status; None (and stop) when the pod is gone."""
        meta = pod["metadata"]
        current = self.store.get("v1", "Pod", meta["name"], meta["namespace"])
        if current is None or current["metadata"]["uid"] != meta["uid"]:
            raise asyncio.CancelledError
        mutate(current)
        return self.store.update_status(current)

    def _event(self, pod: Obj, reason: str, message: str, type_: str = "Normal") -> None:
        self.store.record_event(pod, reason, message, type_, component="kubelet")

    def _log(self, pod: Obj, container: str, line: str) -> None:
        self.store.add_log(pod["metadata"]["namespace"], pod["metadata"]["name"], container, line)

    def _containers(self, pod: Obj) -> list[Obj]:
        return pod["spec"].get("containers") or []

    def _set_containers(self, pod: Obj, ready: bool, **state: Obj) -> None:
        """Set every container's state (waiting/running/terminated) and readiness."""

        def mutate(current: Obj) -> None:
            status = current["status"]
            old = {c["name"]: c for c in status.get("containerStatuses") or ()}
            statuses = []
            for c in self._containers(current):
                prev = old.get(c["name"], {})
                statuses.append(
                    {
                        "name": c["name"],
                        "image": c.get("image", ""),
                        "imageID": prev.get("imageID", ""),
                        "containerID": prev.get("containerID", ""),
                        "ready": ready,
                        "started": "running" in state,
                        "restartCount": prev.get("restartCount", 0),
                        "state": state,
                        "lastState": prev.get("lastState", {}),
                    }
                )
            status["containerStatuses"] = statuses
            conds = status.setdefault("conditions", [])
            names = ", ".join(c["name"] for c in self._containers(current))
            unready = ("ContainersNotReady", f"containers with unready status: [{names}]")
            for type_ in ("ContainersReady", "Ready"):
                if ready:
                    set_condition(conds, type_, "True")
                else:
                    set_condition(conds, type_, "False", *unready)
            if "running" in state and status.get("phase") == "Pending":
                status["phase"] = "Running"

        self._write(pod, mutate)

    # ------------------------------------------------------------------ lifecycle
    async def _sleep(self, seconds: float) -> None:
        await self.emu.clock.sleep(seconds)

    async def _run(self, pod: Obj) -> None:
        try:
            await self._lifecycle(pod)
        except asyncio.CancelledError:
            pass
        finally:
            self._tasks.pop(pod["metadata"]["uid"], None)

    async def _lifecycle(self, pod: Obj) -> None:
        timing = self.timing
        llm = is_llm_workload(pod)
        ip = next(_POD_IPS)
        inits = pod["spec"].get("initContainers") or []

        def start(current: Obj) -> None:
            status = current["status"]
            status.update(podIP=ip, podIPs=[{"ip": ip}], hostIP="10.128.0.2", startTime=now_iso())
            status.setdefault("qosClass", "BestEffort")
            conds = status.setdefault("conditions", [])
            set_condition(conds, "PodReadyToStartContainers", "False")
            if inits:
                status["initContainerStatuses"] = [
                    {
                        "name": c["name"],
                        "image": c.get("image", ""),
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "started": False,
                        "state": {"waiting": {"reason": "PodInitializing"}},
                        "lastState": {},
                    }
                    for c in inits
                ]
                names = ", ".join(c["name"] for c in inits)
                set_condition(
                    conds,
                    "Initialized",
                    "False",
                    "ContainersNotInitialized",
                    f"containers with incomplete status: [{names}]",
                )
            else:
                set_condition(conds, "Initialized", "True")
            set_condition(conds, "PodScheduled", "True")

        self._write(pod, start)
        # kubelet generateAPIPodStatus: with init containers the containers wait as
        # PodInitializing (ContainerCreating without), and so do the init containers not run yet.
        self._set_containers(
            pod, False, waiting={"reason": "PodInitializing" if inits else "ContainerCreating"}
        )
        await self._mount_volumes(pod)
        for c in self._containers(pod):
            self._event(pod, "Pulling", f'Pulling image "{c.get("image", "")}"')
        await self._sleep(timing["vllm_pull_seconds" if llm else "pull_seconds"])
        if llm:
            await self._image_pull_backoff(pod)
        if inits:
            await self._run_init_containers(pod, inits, timing["pull_seconds"])
        await self._container_config(pod)
        self._start_containers(pod, restart=False)
        if controller_of(pod, "Job"):
            await self._complete(pod, timing["job_seconds"])
            return
        if llm:
            await self._vllm_start(pod)
        else:
            await self._sleep(timing["ready_seconds"])
        await self._hold_if_operator(pod)
        self._set_containers(pod, True, running={"startedAt": now_iso()})

    def _missing(self, pod: Obj, kind: str, name: str, optional: bool | None) -> str | None:
        """The kubelet's secret/configmap manager: NotFound as `secret "x" not found`."""
        namespace = pod["metadata"]["namespace"]
        if optional or self.store.get("v1", kind, name, namespace) is not None:
            return None
        return f'{kind.lower()} "{name}" not found'

    def _volume_error(self, pod: Obj) -> tuple[str, str] | None:
        """The first volume whose Secret or ConfigMap is missing (pkg/volume/secret, configmap,
        projected SetUpAt) and the error."""
        for volume in pod["spec"].get("volumes") or ():
            refs = []
            if "secret" in volume:
                src = volume["secret"] or {}
                refs.append(("Secret", src.get("secretName", ""), src.get("optional")))
            if "configMap" in volume:
                src = volume["configMap"] or {}
                refs.append(("ConfigMap", src.get("name", ""), src.get("optional")))
            for source in (volume.get("projected") or {}).get("sources") or ():
                for field, kind in (("secret", "Secret"), ("configMap", "ConfigMap")):
                    if field in source:
                        src = source[field] or {}
                        refs.append((kind, src.get("name", ""), src.get("optional")))
            errors = [e for ref in refs if (e := self._missing(pod, *ref))]
            if errors:
                # a projected volume aggregates its sources' errors (utilerrors.NewAggregate)
                message = errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]"
                return volume["name"], message
        return None

    async def _mount_volumes(self, pod: Obj) -> None:
        """The volume manager retries a failed mount: the pod stays ContainerCreating with a
        Warning FailedMount `MountVolume.SetUp failed for volume "v" : <error>` each try
        (operationexecutor GenerateError), until the object exists."""
        while (failure := self._volume_error(pod)) is not None:
            volume, error = failure
            self._event(
                pod,
                "FailedMount",
                f'MountVolume.SetUp failed for volume "{volume}" : {error}',
                "Warning",
            )
            await self._sleep(self.timing["backoff_seconds"])

    def _env_error(self, pod: Obj) -> str | None:
        """kubelet makeEnvironmentVariables: a missing non-optional envFrom or valueFrom
        Secret/ConfigMap, or a missing key (`couldn't find key k in Secret ns/name`)."""
        namespace = pod["metadata"]["namespace"]
        for container in self._containers(pod):
            for env_from in container.get("envFrom") or ():
                for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    if field in env_from:
                        ref = env_from[field] or {}
                        error = self._missing(pod, kind, ref.get("name", ""), ref.get("optional"))
                        if error:
                            return error
            for env in container.get("env") or ():
                value_from = env.get("valueFrom") or {}
                for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                    if field not in value_from:
                        continue
                    ref = value_from[field] or {}
                    name, key = ref.get("name", ""), ref.get("key", "")
                    obj = self.store.get("v1", kind, name, namespace)
                    if obj is None:
                        if not ref.get("optional"):
                            return f'{kind.lower()} "{name}" not found'
                    elif key not in {
                        **(obj.get("data") or {}),
                        **(obj.get("stringData") or {}),
                    } and (not ref.get("optional")):
                        return f"couldn't find key {key} in {kind} {namespace}/{name}"
        return None

    async def _container_config(self, pod: Obj) -> None:
        """kuberuntime startContainer: generateContainerConfig fails, a Warning `Failed`
        "Error: <err>" and the container waits in CreateContainerConfigError; the pod worker
        retries until the object exists."""
        while (error := self._env_error(pod)) is not None:
            self._set_containers(
                pod, False, waiting={"reason": "CreateContainerConfigError", "message": error}
            )
            self._event(pod, "Failed", f"Error: {error}", "Warning")
            await self._sleep(self.timing["backoff_seconds"])

    async def _run_init_containers(self, pod: Obj, inits: list[Obj], seconds: float) -> None:
        """Each init container runs to completion, in order (the model download among them);
        the status shows the ones done (terminated Completed), the one running, the rest
        waiting PodInitializing, as the kubelet writes it."""
        done_statuses: list[Obj] = []

        def status_of(init: Obj, state: Obj, ready: bool) -> Obj:
            return {
                "name": init["name"],
                "image": init.get("image", ""),
                "imageID": "",
                "ready": ready,
                "restartCount": 0,
                "started": "running" in state,
                "state": state,
                "lastState": {},
            }

        def write(running: int) -> None:
            statuses = list(done_statuses)
            for index, init in enumerate(inits[len(done_statuses) :], len(done_statuses)):
                if index == running:
                    statuses.append(status_of(init, {"running": {"startedAt": now_iso()}}, False))
                else:
                    statuses.append(
                        status_of(init, {"waiting": {"reason": "PodInitializing"}}, False)
                    )

            def mutate(current: Obj) -> None:
                current["status"]["initContainerStatuses"] = statuses

            self._write(pod, mutate)

        for index, init in enumerate(inits):
            self._event(pod, "Created", f"Created container: {init['name']}")
            self._event(pod, "Started", f"Started container {init['name']}")
            started = now_iso()
            write(index)
            await self._sleep(seconds)
            terminated = {
                "reason": "Completed",
                "exitCode": 0,
                "startedAt": started,
                "finishedAt": now_iso(),
            }
            done_statuses.append(status_of(init, {"terminated": terminated}, True))

        def done(current: Obj) -> None:
            current["status"]["initContainerStatuses"] = done_statuses
            set_condition(current["status"]["conditions"], "Initialized", "True")

        self._write(pod, done)

    def _start_containers(self, pod: Obj, restart: bool) -> None:
        if restart:  # the kubelet keeps the log of the instance before
            meta = pod["metadata"]
            for c in self._containers(pod):
                self.store.restart_log(meta["namespace"], meta["name"], c["name"])

        def ids(current: Obj) -> None:
            for status in current["status"].get("containerStatuses") or ():
                digest = uuid.uuid5(uuid.NAMESPACE_URL, status["image"]).hex * 2
                status["imageID"] = f"{status['image'].split(':')[0]}@sha256:{digest}"
                status["containerID"] = f"containerd://{uuid.uuid4().hex}{uuid.uuid4().hex}"
            set_condition(current["status"]["conditions"], "PodReadyToStartContainers", "True")

        self._write(pod, ids)
        self._set_containers(pod, False, running={"startedAt": now_iso()})
        for c in self._containers(pod):
            if not restart:
                self._event(pod, "Pulled", f'Successfully pulled image "{c.get("image", "")}"')
            self._event(pod, "Created", f"Created container: {c['name']}")
            self._event(pod, "Started", f"Started container {c['name']}")

    async def _image_pull_backoff(self, pod: Obj) -> None:
        backoff = self.timing["backoff_seconds"]
        while scenarios.active(self.emu, "image-pull-backoff"):
            for c in self._containers(pod):
                image = c.get("image", "")
                registry = image.split("/")[0]
                pull_error = (
                    f'failed to pull and unpack image "{image}": failed to resolve reference '
                    f'"{image}": unexpected status from HEAD request to https://{registry}/v2/: '
                    "401 Unauthorized"
                )
                self._event(
                    pod, "Failed", f'Failed to pull image "{image}": {pull_error}', "Warning"
                )
                self._event(pod, "Failed", "Error: ErrImagePull", "Warning")
            message = f"rpc error: code = Unknown desc = {pull_error}"
            self._set_containers(pod, False, waiting={"reason": "ErrImagePull", "message": message})
            await self._sleep(1)
            self._set_containers(
                pod,
                False,
                waiting={
                    "reason": "ImagePullBackOff",
                    "message": f'Back-off pulling image "{image}"',
                },
            )
            self._event(pod, "BackOff", f'Back-off pulling image "{image}"')
            self._event(pod, "Failed", "Error: ImagePullBackOff", "Warning")
            await self._sleep(backoff)
            backoff = min(backoff * 2, self.timing["max_backoff_seconds"])

    async def _vllm_start(self, pod: Obj) -> None:
        """Start vLLM as its effective command line and the kubelet's probes allow."""
        timing = self.timing
        backoff = timing["backoff_seconds"]
        main = self._containers(pod)[0]
        while failure := scenarios.crash_failure(self.emu):
            await self._sleep(timing["crash_seconds"])
            if failure == "oom-killed":
                lines, reason, code = vllm_logs.oom_lines(), "OOMKilled", 137
            else:
                status = 401 if failure.endswith("401") else 403
                lines, reason, code = vllm_logs.hf_failure(main, status), "Error", 1
            for line in lines:
                self._log(pod, main["name"], line)
            await self._crash(pod, main["name"], reason, code, backoff)
            backoff = min(backoff * 2, timing["max_backoff_seconds"])
            self._start_containers(pod, restart=True)
        result = vllm_cli.effective(main)
        while isinstance(result, vllm_cli.Failed):
            # The process exits at once with what bash or vLLM printed; restartPolicy Always.
            await self._sleep(1)
            for line in result.lines:
                self._log(pod, main["name"], line)
            await self._crash(pod, main["name"], "Error", result.exit_code, backoff)
            backoff = min(backoff * 2, timing["max_backoff_seconds"])
            self._start_containers(pod, restart=True)
        meta = pod["metadata"]
        current = self.store.get("v1", "Pod", meta["name"], meta["namespace"]) or pod
        ip = current["status"].get("podIP", "")
        ready = timing["vllm_ready_seconds"]
        while (kill := probes.kill_time(main, result, ready)) is not None:
            await self._startup_logs(pod, main, ready, until=kill.at)
            for _failure in range(kill.failures):
                self._event(pod, "Unhealthy", kill.message.replace("POD_IP", ip), "Warning")
            self._event(
                pod,
                "Killing",
                f"Container {main['name']} failed {kill.probe} probe, will be restarted",
            )
            await self._crash(pod, main["name"], "Error", 137, backoff)
            backoff = min(backoff * 2, timing["max_backoff_seconds"])
            self._start_containers(pod, restart=True)
        await self._startup_logs(pod, main, ready)
        while (unready := probes.readiness_failure(main, result)) is not None:
            self._event(pod, "Unhealthy", unready.replace("POD_IP", ip), "Warning")
            await self._sleep(10)

    async def _startup_logs(
        self, pod: Obj, main: Obj, ready: float, until: float | None = None
    ) -> None:
        """vLLM's start-up lines at their share of `ready` seconds, up to `until`."""
        elapsed = 0.0
        for fraction, line in vllm_logs.startup(main):
            at = fraction * ready
            if until is not None and at > until:
                break
            await self._sleep(max(0.0, at - elapsed))
            elapsed = at
            self._log(pod, main["name"], line)
        if until is not None:
            await self._sleep(max(0.0, until - elapsed))

    async def _crash(
        self, pod: Obj, container: str, reason: str, code: int, backoff: float
    ) -> None:
        meta = pod["metadata"]
        terminated = {
            "reason": reason,
            "exitCode": code,
            "startedAt": now_iso(),
            "finishedAt": now_iso(),
            "containerID": f"containerd://{uuid.uuid4().hex}",
        }

        def record(current: Obj) -> None:
            for status in current["status"].get("containerStatuses") or ():
                if status["name"] == container:
                    status["restartCount"] = status.get("restartCount", 0) + 1
                    status["lastState"] = {"terminated": terminated}

        self._write(pod, record)
        message = (
            f"back-off {int(backoff)}s restarting failed container={container} "
            f"pod={meta['name']}_{meta['namespace']}({meta['uid']})"
        )
        self._set_containers(pod, False, waiting={"reason": "CrashLoopBackOff", "message": message})
        self._event(
            pod,
            "BackOff",
            f"Back-off restarting failed container {container} in pod "
            f"{meta['name']}_{meta['namespace']}({meta['uid']})",
            "Warning",
        )
        await self._sleep(backoff)

    async def _hold_if_operator(self, pod: Obj) -> None:
        """operator-held:<name>: the readiness probe keeps failing while the scenario is on."""
        name = _owner_deployment_name(pod)
        warned = False
        while name and scenarios.held(self.emu, name):
            if not warned:
                self._event(
                    pod,
                    "Unhealthy",
                    "Readiness probe failed: HTTP probe failed with statuscode: 503",
                    "Warning",
                )
                warned = True
            await self._sleep(10)

    async def _complete(self, pod: Obj, seconds: float) -> None:
        await self._sleep(seconds)
        finished = {
            "terminated": {
                "reason": "Completed",
                "exitCode": 0,
                "startedAt": now_iso(),
                "finishedAt": now_iso(),
            }
        }
        self._set_containers(pod, False, **finished)

        def succeed(current: Obj) -> None:
            current["status"]["phase"] = "Succeeded"
            for cond in current["status"]["conditions"]:
                if cond["type"] in ("Ready", "ContainersReady"):
                    cond.update(reason="PodCompleted", message="")

        self._write(pod, succeed)
