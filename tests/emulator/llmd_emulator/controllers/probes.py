"""The kubelet's probes against an emulated vLLM server (k8s.io/kubernetes pkg/kubelet/prober).

A probe runs first after `initialDelaySeconds` (default 0), then every `periodSeconds` (default
10); `failureThreshold` (default 3) consecutive failures fail it. A failed liveness or startup
probe kills the container, which restarts under the pod's restart back-off; liveness and
readiness probes do not run before a startup probe has succeeded. The emulated vLLM listens
`ready` seconds after its start (download, TPU init and XLA compile, compressed by the time
scale) on the port and scheme of its effective command line (`--port`, TLS when both
`--ssl-certfile` and `--ssl-keyfile` are given): before that, or on another port, an HTTP probe
gets "connection refused".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Kill:
    """When (seconds after the container started) and why the kubelet kills the container."""

    at: float
    failures: int
    probe: str
    message: str


def _timing(probe: Obj) -> tuple[float, float, int]:
    return (
        float(probe.get("initialDelaySeconds") or 0),
        float(probe.get("periodSeconds") or 10),
        int(probe.get("failureThreshold") or 3),
    )


def _port(container: Obj, value: Any) -> int | None:
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    for port in container.get("ports") or ():
        if port.get("name") == value:
            return int(port["containerPort"])
    return None


def _refusal(container: Obj, probe: Obj, serve: Any) -> str | None:
    """Why this probe fails even against a listening server (None: it passes then)."""
    http = probe.get("httpGet")
    tcp = probe.get("tcpSocket")
    target = http or tcp
    if target is None:
        return None  # exec and grpc probes: not about vLLM's HTTP port
    port = _port(container, target.get("port"))
    scheme = (http or {}).get("scheme", "HTTP")
    url = f"{scheme.lower()}://POD_IP:{port}{(http or {}).get('path', '')}"
    if port != serve.port:
        return f'Get "{url}": dial tcp POD_IP:{port}: connect: connection refused'
    if http and scheme == "HTTPS" and not serve.tls:
        return f'Get "{url}": http: server gave HTTP response to HTTPS client'
    if http and scheme == "HTTP" and serve.tls:
        return "HTTP probe failed with statuscode: 400"
    return None


def _refused(container: Obj, probe: Obj) -> str:
    http = probe.get("httpGet") or probe.get("tcpSocket") or {}
    port = _port(container, http.get("port"))
    scheme = (probe.get("httpGet") or {}).get("scheme", "HTTP").lower()
    path = (probe.get("httpGet") or {}).get("path", "")
    return (
        f'Get "{scheme}://POD_IP:{port}{path}": dial tcp POD_IP:{port}: connect: connection refused'
    )


def kill_time(container: Obj, serve: Any, ready: float) -> Kill | None:
    """The first kill a start-up of `ready` seconds meets, or None when the probes let it run."""
    startup = container.get("startupProbe")
    liveness = container.get("livenessProbe")
    if startup:
        delay, period, threshold = _timing(startup)
        deadline = delay + period * (threshold - 1)
        refusal = _refusal(container, startup, serve)
        if refusal or ready > deadline:
            message = refusal or _refused(container, startup)
            return Kill(deadline, threshold, "startup", f"Startup probe failed: {message}")
        ready = max(ready, delay)  # liveness starts once the startup probe succeeded
    if liveness:
        delay, period, threshold = _timing(liveness)
        deadline = (ready if startup else 0.0) + delay + period * (threshold - 1)
        refusal = _refusal(container, liveness, serve)
        if refusal or (not startup and ready > deadline):
            message = refusal or _refused(container, liveness)
            return Kill(deadline, threshold, "liveness", f"Liveness probe failed: {message}")
    return None


def readiness_failure(container: Obj, serve: Any) -> str | None:
    """The event message of a readiness probe that fails against the running server."""
    probe = container.get("readinessProbe")
    if not probe:
        return None
    refusal = _refusal(container, probe, serve)
    return f"Readiness probe failed: {refusal}" if refusal else None
