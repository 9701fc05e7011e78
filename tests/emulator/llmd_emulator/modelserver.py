"""Model server: what a Gateway listener serves (Envoy routing + llm-d EPP + vLLM OpenAI API).

Each Gateway listener (opened by controllers/gateway.py) serves `gateway_app(ns, name)`:

- Routing follows the HTTPRoutes attached to the Gateway (PathPrefix/Exact matches, URLRewrite
  ReplacePrefixMatch). Envoy-like answers: 404 (empty) without a route, 503 "no healthy
  upstream" without a Ready pod, 426 Upgrade Required for HTTP/1.0 requests.
- Backends: a Service (round robin over its Ready pods) or an InferencePool (endpoint picker).
- Per pod, a fake vLLM: GET /v1/models (the `--served-model-name`, else `--model`, else
  "/mnt/models"), POST /v1/completions and /v1/chat/completions (OpenAI format, `stream: true`
  SSE with `stream_options.include_usage`, and with `continuous_usage_stats` the cumulative
  usage on every content chunk as vLLM sends it), GET /health. Tokens are whitespace words; text is
  deterministic per prompt; `max_tokens` is honoured (`ignore_eos: true` yields exactly that
  many). A wrong `model` gives vLLM's 404 NotFoundError.
- Latency is REAL time from `emu.config["model_server"]`: ttft_ms, itl_ms, tokens_per_chunk
  (change with the admin POST /config). Faults: admin POST /model-server/faults
  {"status": 503, "rate": 0.1} or {"status": 500, "count": 3}; {} clears. GET
  /model-server/stats counts answers by status and pod.

Gateway request ids: the Istio gateway's HTTP connection manager (Istio 1.27 `gateway.go`:
use_remote_address true, preserve_external_request_id unset, no internal addresses) treats every
caller as external and replaces the caller's `x-request-id` with a new UUID, which the EPP and vLLM
then see; vLLM answers with `id` `cmpl-<x-request-id>` (`chatcmpl-` for chat). No `x-request-id`
comes back in the answer's headers.

Endpoint picker: prompts are cut into blocks of `epp.block_size` characters (default 64, at most
`epp.max_blocks`, default 16) with chained CRC32 hashes. The Ready pod that served the longest
matching prefix gets the request (prefix hit); otherwise the pod with the fewest requests in
flight (then fewest served). The EPP pod (container "main") logs as gateway-api-inference-extension
v1.2.1 does with `--zap-encoder json` (controller-runtime zap: production encoder keys, RFC 3339
`ts`, `caller`; a V(n) line has level `Level(-n)`), at the verbosity of its own args (`-v`/`--v`,
default 2; `--zap-log-level` overrides it). Per request, at verbosity 3 or more:

    {"level":"Level(-3)","ts":"...","caller":"scheduling/framework/scheduler_profile.go:...",
     "msg":"Running picker plugin","x-request-id":..., ..., "plugin":"max-score-picker/..."}
    {"level":"Level(-3)","ts":"...","caller":"requestcontrol/director.go:266",
     "msg":"Request handled","x-request-id":"<uuid>","objectiveKey":"","incomingModelName":m,
     "targetModelName":m,"priority":0,"objectiveKey":"","incomingModelName":m,"targetModel":m,
     "endpoint":"<pod IP>:8000"}
    {"level":"Level(-3)",...,"msg":"Response generated","x-request-id":...,"usage":{...}}

(keys repeat as zap writes them: the logger's values, then the call's). At 2, nothing per request.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
import uuid
import weakref
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import HttpVersion10, web

from .controllers.vllm_logs import served_model_name

if TYPE_CHECKING:
    from .core import Emulator

Obj = dict[str, Any]
ROUTE_API = "gateway.networking.k8s.io/v1"
POOL_API = "inference.networking.k8s.io/v1"
DEFAULTS = {"ttft_ms": 0.0, "itl_ms": 0.0, "tokens_per_chunk": 1}
EPP_DEFAULTS = {"block_size": 64, "max_blocks": 16}
EPP_DEFAULT_VERBOSITY = 2  # logging.DEFAULT, the -v default of the EPP's runner.go
EPP_SCORERS = ("prefix-cache-scorer", "load-aware-scorer")  # KServe's default EndpointPickerConfig
EPP_PICKER = "max-score-picker"
_VERBOSITY_FLAG = re.compile(r"^--?(v|zap-log-level)(?:=(.*))?$")
_WATCHED = {"HTTPRoute", "Service", "InferencePool", "Pod", "Gateway"}
_VOCAB = [
    "the",
    "model",
    "answers",
    "with",
    "tokens",
    "that",
    "are",
    "words",
    "chosen",
    "from",
    "a",
    "small",
    "fixed",
    "vocabulary",
    "so",
    "every",
    "reply",
    "is",
    "deterministic",
    "for",
    "a",
    "given",
    "prompt",
    "while",
    "still",
    "looking",
    "like",
    "text",
    "produced",
    "by",
    "a",
    "language",
    "model",
    "serving",
    "requests",
    "behind",
    "an",
    "inference",
    "gateway",
    "on",
    "tensor",
    "processing",
    "units",
    "in",
    "a",
    "kubernetes",
    "cluster",
]
_SERVERS: weakref.WeakKeyDictionary[Any, ModelServer] = weakref.WeakKeyDictionary()
_JSON = "application/json"


def get(emu: Emulator) -> ModelServer:
    """The emulator's model server (created on first use)."""
    server = _SERVERS.get(emu)
    if server is None:
        server = _SERVERS[emu] = ModelServer(emu)
    return server


def setup(emu: Emulator) -> None:
    get(emu).add_admin_routes(emu.admin_routes)


@dataclass
class Endpoint:
    namespace: str
    name: str
    ip: str
    model: str
    inflight: int = 0
    served: int = 0


@dataclass
class Backend:
    kind: str  # "Service" or "InferencePool"
    key: str  # ns/name
    endpoints: list[Endpoint]
    epp_pod: tuple[str, str] | None = None  # (namespace, pod) whose log gets decisions
    epp_verbosity: int = EPP_DEFAULT_VERBOSITY
    prefixes: dict[int, str] = field(default_factory=dict)  # block hash -> pod name
    cursor: int = 0

    def __post_init__(self) -> None:
        self.by_name = {e.name: e for e in self.endpoints}


@dataclass
class Reply:
    """A generated answer, before it is sent."""

    ident: str
    created: int
    model: str
    chat: bool
    words: list[str]
    finish: str


@dataclass
class Rule:
    match_type: str
    path: str
    rewrite: str | None
    backend: Backend | None


def _ready(pod: Obj) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in pod.get("status", {}).get("conditions") or ()
    )


def _main_container(pod: Obj) -> Obj:
    containers = pod["spec"].get("containers") or [{}]
    return next((c for c in containers if c.get("name") == "main"), containers[0])


def _words(text: str) -> int:
    return len(text.split())


def _error(status: int, type_: str, message: str, param: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": status}}
    return web.Response(status=status, body=json.dumps(body), content_type=_JSON)


class ModelServer:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store
        self._version = 0
        self._tables: dict[tuple[str, str], tuple[int, list[Rule]]] = {}
        self._backends: dict[str, Backend] = {}  # survives rebuilds: keeps prefix memory
        self.faults: dict[str, Any] = {}
        self._fault_seen = 0
        self._uuid_seed = uuid.uuid4().int
        self._usage: dict[str, Obj] = {}
        self._ids = itertools.count(1)
        self.stats: Counter[str] = Counter()
        self.store.subscribe(self._on_event)

    def _on_event(self, _event: str, obj: Obj) -> None:
        if obj.get("kind") in _WATCHED:
            self._version += 1

    # --------------------------------------------------------------- config
    def _setting(self, name: str) -> float:
        return float((self.emu.config.get("model_server") or {}).get(name, DEFAULTS[name]))

    def _epp(self, name: str) -> int:
        return int((self.emu.config.get("epp") or {}).get(name, EPP_DEFAULTS[name]))

    # --------------------------------------------------------------- routing
    def gateway_app(self, ns: str, name: str) -> web.Application:
        app = web.Application()

        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.handle(request, (ns, name))

        app.router.add_route("*", "/{tail:.*}", handle)
        return app

    def _table(self, gateway: tuple[str, str]) -> list[Rule]:
        cached = self._tables.get(gateway)
        if cached and cached[0] == self._version:
            return cached[1]
        rules: list[Rule] = []
        for route in self.store.list(ROUTE_API, "HTTPRoute"):
            route_ns = route["metadata"]["namespace"]
            parents = {
                (ref.get("namespace") or route_ns, ref["name"])
                for ref in route["spec"].get("parentRefs") or ()
            }
            if gateway not in parents:
                continue
            for rule in route["spec"].get("rules") or ():
                backend = self._backend(route_ns, (rule.get("backendRefs") or [None])[0])
                rewrite = None
                for filt in rule.get("filters") or ():
                    path = ((filt.get("urlRewrite") or {}).get("path")) or {}
                    if path.get("type") == "ReplacePrefixMatch":
                        rewrite = path.get("replacePrefixMatch", "/")
                for match in rule.get("matches") or [{}]:
                    path = match.get("path") or {"type": "PathPrefix", "value": "/"}
                    rules.append(
                        Rule(path.get("type", "PathPrefix"), path["value"], rewrite, backend)
                    )
        rules.sort(key=lambda r: (r.match_type != "Exact", -len(r.path)))
        self._tables[gateway] = (self._version, rules)
        return rules

    def _backend(self, ns: str, ref: Obj | None) -> Backend | None:
        if ref is None:
            return None
        kind, target_ns = ref.get("kind", "Service"), ref.get("namespace") or ns
        key = f"{target_ns}/{ref['name']}"
        epp_pod, verbosity = None, EPP_DEFAULT_VERBOSITY
        if kind == "InferencePool":
            pool = self.store.get(POOL_API, "InferencePool", ref["name"], target_ns)
            selector = ((pool or {}).get("spec") or {}).get("selector")
            epp_ref = ((pool or {}).get("spec") or {}).get("endpointPickerRef") or {}
            epp_pod, verbosity = self._first_pod(target_ns, epp_ref.get("name"))
        else:
            svc = self.store.get("v1", "Service", ref["name"], target_ns)
            selector = ((svc or {}).get("spec") or {}).get("selector")
        pods = self.store.list("v1", "Pod", target_ns, label_selector=selector) if selector else []
        old = self._backends.get(f"{kind}:{key}")
        counts = {e.name: e for e in old.endpoints} if old else {}
        endpoints = []
        for pod in pods:
            if _ready(pod):
                name = pod["metadata"]["name"]
                endpoint = Endpoint(
                    target_ns,
                    name,
                    pod["status"].get("podIP", ""),
                    served_model_name(_main_container(pod)),
                )
                if name in counts:
                    endpoint.inflight, endpoint.served = counts[name].inflight, counts[name].served
                endpoints.append(endpoint)
        backend = Backend(kind, key, endpoints, epp_pod, verbosity, old.prefixes if old else {})
        self._backends[f"{kind}:{key}"] = backend
        return backend

    def _first_pod(self, ns: str, service: str | None) -> tuple[tuple[str, str] | None, int]:
        """The EPP pod behind the pool's endpointPickerRef Service, and its log verbosity."""
        svc = self.store.get("v1", "Service", service, ns) if service else None
        selector = ((svc or {}).get("spec") or {}).get("selector")
        pods = self.store.list("v1", "Pod", ns, label_selector=selector) if selector else []
        if not pods:
            return None, EPP_DEFAULT_VERBOSITY
        args = _main_container(pods[0]).get("args") or []
        return (ns, pods[0]["metadata"]["name"]), epp_verbosity(args)

    def _route(self, gateway: tuple[str, str], path: str) -> tuple[Rule, str] | None:
        for rule in self._table(gateway):
            if rule.match_type == "Exact":
                if path == rule.path:
                    return rule, rule.rewrite or path
                continue
            prefix = rule.path.rstrip("/")
            if path == prefix or path.startswith(prefix + "/") or not prefix:
                if rule.rewrite is None:
                    return rule, path
                rest = path[len(prefix) :]
                base = rule.rewrite.rstrip("/")
                return rule, (base + rest) if rest else (rule.rewrite or "/")
        return None

    # --------------------------------------------------------------- request
    async def handle(self, request: web.Request, gateway: tuple[str, str]) -> web.StreamResponse:
        if request.version == HttpVersion10:
            self.stats["426"] += 1
            return web.Response(status=426, headers={"server": "istio-envoy"})
        found = self._route(gateway, request.path)
        if found is None:
            self.stats["404"] += 1
            return web.Response(status=404, headers={"server": "istio-envoy"})
        rule, path = found
        backend = rule.backend
        if backend is None or not backend.endpoints:
            self.stats["503"] += 1
            return web.Response(
                status=503, text="no healthy upstream", headers={"server": "istio-envoy"}
            )
        fault = self._fault()
        if fault:
            self.stats[str(fault)] += 1
            return _error(
                fault,
                "InternalServerError" if fault >= 500 else "BadRequestError",
                f"injected fault {fault}",
            )
        body: Obj = {}
        if request.method == "POST":
            try:
                body = json.loads(await request.read() or b"{}")
            except ValueError:
                self.stats["400"] += 1
                return _error(400, "BadRequestError", "Invalid JSON body")
        # Envoy at the edge: a new x-request-id whatever the caller sent
        request_id = str(uuid.UUID(int=(self._uuid_seed + next(self._ids)) % 2**128, version=4))
        endpoint = self._pick(backend, body, path, request_id)
        endpoint.inflight += 1
        try:
            response = await self._vllm(request, path, body, endpoint, request_id)
        finally:
            endpoint.inflight -= 1
            endpoint.served += 1
        usage = self._usage.pop(request_id, None)
        if backend.kind == "InferencePool" and usage is not None:
            fields = [("usage", usage)]
            self._epp_log(
                backend, request_id, "handlers/response.go:61", "Response generated", fields
            )
        self.stats[str(response.status)] += 1
        self.stats[f"pod:{endpoint.name}"] += 1
        return response

    def _fault(self) -> int | None:
        faults = self.faults
        status = faults.get("status")
        if not status:
            return None
        if "count" in faults:
            if faults["count"] <= 0:
                return None
            faults["count"] -= 1
            return int(status)
        rate = float(faults.get("rate", 1.0))
        self._fault_seen += 1
        # deterministic: every 1/rate-th request fails
        if int(self._fault_seen * rate) > int((self._fault_seen - 1) * rate):
            return int(status)
        return None

    # --------------------------------------------------------------- EPP
    def _pick(self, backend: Backend, body: Obj, path: str, request_id: str) -> Endpoint:
        endpoints = backend.endpoints
        if backend.kind != "InferencePool" or not path.endswith("completions"):
            backend.cursor = (backend.cursor + 1) % len(endpoints)
            return endpoints[backend.cursor]
        prompt = _prompt_text(body)
        size, limit = self._epp("block_size"), self._epp("max_blocks")
        hashes, running = [], 0
        for start in range(0, min(len(prompt), size * limit), size):
            running = zlib.crc32(prompt[start : start + size].encode(), running)
            hashes.append(running)
        by_name, prefixes = backend.by_name, backend.prefixes
        chosen, matched = None, 0
        for i in range(len(hashes) - 1, -1, -1):
            chosen = by_name.get(prefixes.get(hashes[i], ""))
            if chosen is not None:
                matched = i + 1
                break
        hit = chosen is not None
        if chosen is None:
            chosen = min(endpoints, key=lambda e: (e.inflight, e.served))
        if len(backend.prefixes) > 200_000:
            backend.prefixes.clear()
        for h in hashes:
            backend.prefixes[h] = chosen.name
        model = body.get("model") or chosen.model
        # the director's logger values (HandleRequest) are on every line of the scheduling cycle
        context = [
            ("objectiveKey", ""),
            ("incomingModelName", model),
            ("targetModelName", model),
            ("priority", 0),
        ]
        for plugin in EPP_SCORERS:
            self._epp_log(
                backend,
                request_id,
                "framework/scheduler_profile.go:160",
                "Running scorer plugin",
                [*context, ("plugin", f"{plugin}/{plugin}")],
            )
        self._epp_log(
            backend,
            request_id,
            "framework/scheduler_profile.go:183",
            "Running picker plugin",
            [*context, ("plugin", f"{EPP_PICKER}/{EPP_PICKER}")],
        )
        self._epp_log(
            backend,
            request_id,
            "requestcontrol/director.go:266",
            "Request handled",
            context
            + [
                ("objectiveKey", ""),
                ("incomingModelName", model),
                ("targetModel", model),
                ("endpoint", f"{chosen.ip}:8000"),
            ],
        )
        self.stats["epp:prefix_hit" if hit else "epp:prefix_miss"] += 1
        self.stats["epp:matched_blocks"] += matched
        return chosen

    def _epp_log(
        self, backend: Backend, request_id: str, caller: str, msg: str, fields: list[tuple]
    ) -> None:
        """One V(3) line of the EPP, in zap JSON, when its verbosity lets it through."""
        if backend.epp_pod is None or backend.epp_verbosity < 3:
            return
        head = [
            ("level", "Level(-3)"),
            ("ts", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
            ("caller", caller),
            ("msg", msg),
            ("x-request-id", request_id),
        ]
        line = ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in head + fields)
        self.store.add_log(*backend.epp_pod, "main", "{" + line + "}")

    # --------------------------------------------------------------- vLLM
    async def _vllm(
        self, request: web.Request, path: str, body: Obj, endpoint: Endpoint, request_id: str
    ) -> web.StreamResponse:
        headers = {
            "server": "istio-envoy",
            "x-gateway-destination-endpoint": f"{endpoint.ip}:8000",
            "x-emulator-pod": endpoint.name,
        }
        if path == "/v1/models" and request.method == "GET":
            data = {
                "object": "list",
                "data": [
                    {
                        "id": endpoint.model,
                        "object": "model",
                        "created": int(time.time()),
                        "owned_by": "vllm",
                        "root": endpoint.model,
                        "parent": None,
                        "max_model_len": 2048,
                    }
                ],
            }
            return web.Response(body=json.dumps(data), content_type=_JSON, headers=headers)
        if path == "/health":
            return web.Response(headers=headers)
        chat = path == "/v1/chat/completions"
        if request.method != "POST" or path not in ("/v1/completions", "/v1/chat/completions"):
            return web.Response(
                status=404, body=b'{"detail":"Not Found"}', content_type=_JSON, headers=headers
            )
        model = body.get("model") or endpoint.model
        if model != endpoint.model:
            return _error(404, "NotFoundError", f"The model `{model}` does not exist.", "model")
        prompt = _prompt_text(body)
        if not prompt and not chat:
            return _error(400, "BadRequestError", "Either prompt or prompt_embeds must be provided")
        words = _generate(prompt, body, chat)
        usage = {
            "prompt_tokens": _words(prompt),
            "completion_tokens": len(words),
            "total_tokens": _words(prompt) + len(words),
        }
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        finish = "length" if limit is not None and len(words) >= int(limit) else "stop"
        created = int(time.time())
        ident = ("chatcmpl-" if chat else "cmpl-") + request_id
        if body.get("stream"):
            options = body.get("stream_options") or {}
            reply = Reply(ident, created, model, chat, words, finish)
            continuous = bool(
                options.get("include_usage") and options.get("continuous_usage_stats")
            )
            return await self._stream(
                request,
                headers,
                reply,
                usage if options.get("include_usage") else None,
                continuous=continuous,
            )
        await self._delay(len(words))
        text = " ".join(words)
        if chat:
            choice = {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": text,
                    "refusal": None,
                    "tool_calls": [],
                    "reasoning_content": None,
                },
                "logprobs": None,
                "finish_reason": finish,
                "stop_reason": None,
            }
        else:
            choice = {
                "index": 0,
                "text": text,
                "logprobs": None,
                "finish_reason": finish,
                "stop_reason": None,
                "prompt_logprobs": None,
            }
        data = {
            "id": ident,
            "object": "chat.completion" if chat else "text_completion",
            "created": created,
            "model": model,
            "choices": [choice],
            "usage": usage,
        }
        self._usage[request_id] = usage  # what the EPP reads from the answer body
        return web.Response(body=json.dumps(data), content_type=_JSON, headers=headers)

    async def _delay(self, tokens: int) -> None:
        ttft, itl = self._setting("ttft_ms"), self._setting("itl_ms")
        total = ttft + itl * max(0, tokens - 1)
        if total > 0:
            await asyncio.sleep(total / 1000)

    async def _stream(
        self,
        request: web.Request,
        headers: dict[str, str],
        reply: Reply,
        usage: Obj | None,
        *,
        continuous: bool = False,
    ) -> web.StreamResponse:
        ident, created, model, chat = reply.ident, reply.created, reply.model, reply.chat
        words, finish = reply.words, reply.finish
        response = web.StreamResponse(headers={**headers, "content-type": "text/event-stream"})
        await response.prepare(request)
        kind = "chat.completion.chunk" if chat else "text_completion"
        per_chunk = max(1, int(self._setting("tokens_per_chunk")))
        ttft, itl = self._setting("ttft_ms") / 1000, self._setting("itl_ms") / 1000
        start = time.perf_counter()

        async def send(choices: list[Obj], extra: Obj | None = None) -> None:
            chunk = {
                "id": ident,
                "object": kind,
                "created": created,
                "model": model,
                "choices": choices,
                **(extra or {}),
            }
            await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")

        def choice(text: str | None, reason: str | None, role: bool = False) -> Obj:
            if chat:
                delta: Obj = {"role": "assistant", "content": ""} if role else {}
                if text is not None:
                    delta["content"] = text
                return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
            return {
                "index": 0,
                "text": text or "",
                "logprobs": None,
                "finish_reason": reason,
                "stop_reason": None,
            }

        for i in range(0, len(words), per_chunk):
            # schedule against the start time so per-chunk overhead does not accumulate
            due = start + ttft + itl * i
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            if chat and i == 0:
                await send([choice(None, None, role=True)])
            text = " ".join(words[i : i + per_chunk]) + ("" if i + per_chunk >= len(words) else " ")
            last = i + per_chunk >= len(words)
            running = None
            if continuous and usage is not None:
                # vLLM's continuous_usage_stats: cumulative usage on every content chunk
                done = min(len(words), i + per_chunk)
                running = {
                    "usage": {
                        **usage,
                        "completion_tokens": done,
                        "total_tokens": usage["prompt_tokens"] + done,
                    }
                }
            await send([choice(text, finish if last else None)], running)
        if not words:
            await send([choice("", finish)])
        if usage is not None:
            await send([], {"usage": usage})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    # --------------------------------------------------------------- admin
    def add_admin_routes(self, routes: web.RouteTableDef) -> None:
        @routes.get("/model-server/faults")
        async def get_faults(_request: web.Request) -> web.Response:
            return web.json_response(self.faults)

        @routes.post("/model-server/faults")
        async def set_faults(request: web.Request) -> web.Response:
            body = await request.json() if request.can_read_body else {}
            if body and not isinstance(body.get("status"), int):
                return web.json_response({"error": "status (int) required"}, status=400)
            self.faults = dict(body)
            self._fault_seen = 0
            return web.json_response(self.faults)

        @routes.get("/model-server/stats")
        async def get_stats(_request: web.Request) -> web.Response:
            return web.json_response(dict(self.stats))


def epp_verbosity(args: list) -> int:
    """The EPP's verbosity from its args, as Go's flag package and runner.go read them.

    `-v N`, `-v=N`, `--v N`, `--v=N` (the last wins); `--zap-log-level` overrides -v: a number is
    the verbosity, `debug` 1, `info` 0, anything else quieter.
    """
    verbosity, zap_level = EPP_DEFAULT_VERBOSITY, None
    items = [str(a) for a in args]
    for index, arg in enumerate(items):
        match = _VERBOSITY_FLAG.match(arg)
        if match is None:
            continue
        value = match.group(2)
        if value is None:
            value = items[index + 1] if index + 1 < len(items) else ""
        if match.group(1) == "v":
            if value.isdigit():
                verbosity = int(value)
        else:
            zap_level = int(value) if value.isdigit() else {"debug": 1, "info": 0}.get(value, -1)
    return verbosity if zap_level is None else zap_level


def _prompt_text(body: Obj) -> str:
    if "messages" in body:
        parts = []
        for message in body.get("messages") or ():
            content = message.get("content")
            if isinstance(content, list):
                parts += [p.get("text", "") for p in content if isinstance(p, dict)]
            elif content:
                parts.append(str(content))
        return "\n".join(parts)
    prompt = body.get("prompt", "")
    if isinstance(prompt, list):
        return " ".join(str(p) for p in prompt)
    return str(prompt)


def _generate(prompt: str, body: Obj, chat: bool) -> list[str]:
    seed = zlib.crc32(prompt.encode())
    natural = 16 + seed % 48
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is None:
        limit = natural if chat else 16
    count = int(limit) if body.get("ignore_eos") else min(int(limit), natural)
    return [_VOCAB[(seed + i * 7919) % len(_VOCAB)] for i in range(max(0, count))]
