"""The ASGI application: lifespan (trio check, config, upstream clients), routing, request intake.

``app`` reads ``PIPELINES_CONFIG`` (default ``./pipelines.yaml``) at startup. Each pipeline's
client codec serves its endpoints under the pipeline's ``mount``. Gateway-level endpoints:
``GET /healthz`` and ``GET /metrics``. The store (``pipeline.store``) is opened at startup; the
Responses codec's stored responses go through ``pipeline.stored_responses``. Request intake
enforces gateway keys, the body cap, the content encoding and the JSON nesting limit, then hands
over to ``pipeline.runner``.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

import trio

from pipeline import fatal, hypercorn_patch, metrics
from pipeline import log as gwlog
from pipeline.attempt import Attempt
from pipeline.config import GatewayConfig, ServerConfig, StoreConfig, load_config
from pipeline.conversation import Conversations
from pipeline.errors import GatewayError, RequestError
from pipeline.intake import (
    KEY_REFUSED,
    drain,
    key_index,
    key_matches,
    plain,
    read_body,
    refused,
    request_id,
)
from pipeline.json_depth import DepthMemo
from pipeline.protocols.base import ModelInfo
from pipeline.registry import Pipeline, build_pipelines, open_stages, open_upstreams, routes
from pipeline.reload import Generation, watch
from pipeline.reload import log as reload_log
from pipeline.respond import JSON_HEADERS, Outcome, Responder, Send
from pipeline.routing import choose
from pipeline.runner import Receive, run_pipeline
from pipeline.stage import RequestContext
from pipeline.store import Store, open_store
from pipeline.store.base import StoreError
from pipeline.stored_responses import StoredResponses
from pipeline.tokens import estimate_request_tokens
from pipeline.upstream import Upstream
from pipeline.usage import KeyUsage

TRIO_FIX = "pipeline:app needs the trio worker: run `hypercorn -k trio pipeline:app`"


class Gateway:
    """An ASGI app over a set of pipelines. ``Gateway(config)`` for tests; ``app`` for hypercorn."""

    def __init__(self, config: GatewayConfig | None = None, *, config_path: str | None = None) -> None:
        self._config = config
        self._config_path = config_path
        self.pipelines: dict[str, Pipeline] = {}
        self.upstreams: dict[str, Upstream] = {}
        self.routes: dict[tuple[str, str], list[tuple[Pipeline, str]]] = {}
        # Routes with one ``{id}`` segment: (method, before it, after it, the pipelines serving it).
        self.templates: list[tuple[str, str, str, list[tuple[Pipeline, str]]]] = []
        self.store: Store | None = None
        self._store_config = StoreConfig()
        self.stored: StoredResponses | None = None
        self.usage: KeyUsage | None = None  # per gateway key usage and limits, in the store
        self.ready = False
        self.server: Any = None
        self.metrics_keys: tuple[bytes, ...] = ()  # what GET /metrics accepts (none: open), set at startup
        self._gen = Generation({}, {})  # the configuration serving new requests (pipeline.reload)
        self._depth = DepthMemo()  # the nesting check, resumed after what a session's last body passed
        self.conversations = Conversations()  # what a session's earlier requests already cost
        self._served = 0  # configurations served so far: a reload starts the memory afresh

    @property
    def config_path(self) -> str | None:
        """The pipelines file this gateway reads (and reloads); ``None`` when given a config."""
        if self._config is not None:
            return None
        return self._config_path or os.environ.get("PIPELINES_CONFIG", "pipelines.yaml")

    async def startup(self) -> None:
        config = self._config
        if config is None:
            assert self.config_path is not None
            config = load_config(self.config_path)
        pipelines, upstreams = build_pipelines(config)
        table = routes(pipelines)
        gen = Generation(pipelines, upstreams)
        # The store is the process's, opened once: a reload keeps it (a new `store:` needs a restart).
        store = open_store(config.store)
        await store.open()
        self.store, self._store_config = store, config.store
        self.stored = StoredResponses(store, config.store.responses_ttl_s)
        self.usage = KeyUsage(store)
        await open_upstreams(upstreams)
        await open_stages(pipelines)
        self._serve(config, gen, table)
        self.ready = True
        reload_log.info("gateway_started", pid=os.getpid(), pipelines=len(pipelines), upstreams=len(upstreams),
                       config=self.config_path)
        # Everything built so far (modules, codecs, pipelines) lives as long as the process: out of
        # the collector's generations, a full collection no longer walks it (a multi-ms pause).
        # Startup's own garbage is collected first, so it is not frozen with it.
        gc.collect()
        gc.freeze()

    def _serve(self, config: GatewayConfig, gen: Generation, table: dict[tuple[str, str], list[tuple[Pipeline, str]]],
               ) -> None:
        """Serve ``gen`` from the next request on (no await here: a request sees one configuration)."""
        self.server = config.server
        self._served += 1
        memory = config.server.conversation_memory_mb * 1024 * 1024
        if (memory, config.server.conversation_entries) != (self.conversations.max_bytes, self.conversations.entries):
            self.conversations = Conversations(max_bytes=memory, entries=config.server.conversation_entries)
        hypercorn_patch.apply(write_timeout_s=config.server.write_timeout_s)
        gwlog.configure(config.server.log_level, json=config.server.log_json)
        self._gen, self.pipelines, self.upstreams, self.routes = gen, gen.pipelines, gen.upstreams, table
        self.templates = [(method, path.partition("{id}")[0], path.partition("{id}")[2], found)
                          for (method, path), found in table.items() if "{id}" in path]
        self.metrics_keys = _metrics_keys(config.server, gen.pipelines.values())

    async def reload(self, reason: str = "SIGHUP") -> bool:
        """Load the pipelines file again and serve it from the next request on; requests already
        running finish on the configuration they began with. A file that does not load, build or
        open is refused with one ``config_reload_refused`` line and the current one keeps serving."""
        path = self.config_path
        if path is None or not self.ready:
            return False
        try:
            config = load_config(path)
            pipelines, upstreams = build_pipelines(config)
            table = routes(pipelines)
        except Exception as exc:  # noqa: BLE001 -- a stage's import or __init__ may raise anything
            reload_log.warning("config_reload_refused", reason=reason, config=path, error=fatal.one_line(exc))
            return False
        gen = Generation(pipelines, upstreams)
        try:
            await open_upstreams(upstreams)
            await open_stages(pipelines)
        except Exception as exc:  # noqa: BLE001 -- as above, for a stage's open()
            await gen.close()
            reload_log.warning("config_reload_refused", reason=reason, config=path, error=fatal.one_line(exc))
            return False
        if config.store != self._store_config:
            reload_log.warning("config_reload_store_kept", config=path,
                               store=self.store.where if self.store is not None else None,
                               error="a changed `store:` takes effect at the next start; the open store is kept")
        old = self._gen
        self._serve(config, gen, table)
        reload_log.info("config_reloaded", reason=reason, config=path, pipelines=len(pipelines),
                       upstreams=len(upstreams), open_on_previous=old.active)
        await old.retire()
        return True

    async def shutdown(self) -> None:
        await self._gen.close()
        if self.store is not None:
            await self.store.aclose()
            self.store = None
        self.ready = False

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                trio.lowlevel.current_trio_token()
            except RuntimeError:
                fatal.exit_startup(TRIO_FIX, status=2)  # a usage error: one line naming the fix
        async with trio.open_nursery() as nursery:  # the reload watcher lives as long as the server
            while True:
                if message["type"] == "lifespan.startup":
                    failure = await self._start()
                    if failure is not None:
                        await send({"type": "lifespan.startup.failed", "message": failure})
                        return
                    if self.config_path is not None:
                        nursery.start_soon(watch, self.config_path, self.server.reload_poll_s, self.reload)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    nursery.cancel_scope.cancel()
                    await self.shutdown()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
                message = await receive()

    async def _start(self) -> str | None:
        """Run ``startup``; its failure as one line. The served app (it reads its own config) never
        runs on after a failed start: it prints that line and exits non-zero (``pipeline.fatal``)."""
        try:
            await self.startup()
        except Exception as exc:  # noqa: BLE001 -- a stage's own import or __init__ may raise anything
            failure = fatal.one_line(exc)
            if self._config is None:
                fatal.exit_startup(failure)
            return failure
        return None

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            trio.lowlevel.current_trio_token()
        except RuntimeError:
            raise RuntimeError(TRIO_FIX) from None
        if not self.ready:  # a server without lifespan support
            failure = await self._start()
            if failure is not None:
                raise RuntimeError(failure)
        gen = self._gen  # this request's configuration, to its end (a reload serves the next ones)
        gen.active += 1
        try:
            await self._http(scope, receive, send)
        finally:
            await gen.leave()

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        if path == "/healthz" and method in ("GET", "HEAD"):
            await plain(send, 200, b'{"status":"ok"}', JSON_HEADERS)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if path == "/metrics" and method == "GET":
            await self._metrics(headers, receive, send)
            return
        candidates = self.routes.get((method, path))
        model_id = ""
        if not candidates and method == "GET":  # GET /v1/models/{id}: the models route's pipelines
            head, _, model_id = path.rpartition("/")
            listing = self.routes.get(("GET", head)) if model_id else None
            if listing and all(kind == "models" for _, kind in listing):
                candidates = [(pipe, "model") for pipe, _ in listing]
        if not candidates:
            candidates, model_id = self._templated(method, path)
        if not candidates:
            await self._no_route(method, path, headers, receive, send)
            return
        pipe, kind = _choose(candidates, headers)
        if kind == "hello":
            await plain(send, 200, b"", [(b"content-length", b"0")])
            return
        ctx = RequestContext(
            request_id=request_id(headers.get("x-request-id")),
            pipeline_id=pipe.id, client=pipe.codec.name, headers=headers,
            deadline=trio.current_time() + pipe.config.deadline_s,
        )
        ctx.upstream_id = pipe.upstreams[0].id
        ctx.store = self.store
        outcome = Outcome()
        responder = Responder(send, ctx, outcome)
        request_model: str | None = None
        key: str | None = None  # the env variable name of the gateway key the client sent
        try:
            if pipe.api_keys:
                index = key_index(pipe.api_keys, headers)
                if index is None:
                    await drain(receive, True)  # the 401, not a reset, for a client still sending
                    raise GatewayError(KEY_REFUSED, code="authentication", blame="client")
                key = pipe.config.api_keys_env[index]
            if kind == "models":
                await responder.whole(200, JSON_HEADERS, pipe.codec.render_models(self._models(pipe)))
                return
            if kind == "model":
                info = next((m for m in self._models(pipe) if m.id == model_id), None)
                if info is None:
                    raise GatewayError(f"model {model_id!r} not found", code="not_found", blame="client")
                await responder.whole(200, JSON_HEADERS, pipe.codec.render_model(info))
                return
            if kind.startswith("response_"):  # a stored response; model_id is its id
                await responder.whole(200, JSON_HEADERS, await self._stored_response(kind, model_id, scope))
                return
            # A conversation's memory is one tenant's (pipeline, gateway key) under one configuration.
            ctx.recall = self.conversations.recall(f"{self._served}\0{pipe.id}\0{key or ''}")
            body = await read_body(receive, headers, self.server.max_body_bytes, self.server.body_timeout_s,
                                    pipe.config.deadline_s, ctx.deadline)
            if self.server.max_json_depth and self._depth.exceeds(body, self.server.max_json_depth):
                raise RequestError(f"request body nests JSON deeper than {self.server.max_json_depth} levels")
            if kind == "generate" and self.stored is not None and self.stored.serves(pipe.codec):
                request, reply, kept = await self.stored.decode(pipe.codec, body, ctx)  # type: ignore[arg-type]
                responder.gate = kept.save if kept is not None else None
            else:
                request, reply = pipe.codec.decode_request(body, ctx.recall)
            request_model = request.model
            ctx.losses.extend(request.losses)
            if kind == "count_tokens":  # counted for the route's first upstream, as the request would be sent
                route = choose(pipe.routing, request, headers)
                attempt = Attempt.aimed(route.upstreams[0], request.model, model=route.model)
                ctx.aim(attempt)
                # The token budget's own count: the upstream's tokenizer when it has one, else the
                # calibrated estimate, so what the client is told is what the window is guarded with.
                exact = await attempt.count_tokens(request, ctx)
                n = exact if exact is not None else estimate_request_tokens(request, attempt.model, ctx.recall,
                                                                            "count_tokens")
                await responder.whole(200, JSON_HEADERS, pipe.codec.render_count(n))
                return
            if self.usage is None:
                await run_pipeline(pipe, request, reply, ctx, responder, receive)
            else:
                async with self.usage.admitted(pipe, key, pipe.config.deadline_s):
                    await run_pipeline(pipe, request, reply, ctx, responder, receive)
        except Exception as exc:  # a fault outside run_pipeline too: the dialect's error, never hypercorn's 500
            err = exc if isinstance(exc, GatewayError) else _internal(ctx, exc)
            outcome.error_code = err.code
            if not ctx.committed:
                rendered = pipe.codec.render_error(err)
                reply_headers = rendered.headers
                if err.code == "request_timeout":  # the rest of the body is not read: the exchange ends
                    reply_headers = [*reply_headers, (b"connection", b"close")]
                await responder.whole(rendered.status, reply_headers, rendered.body)
        finally:
            if kind in ("generate", "count_tokens"):
                gwlog.request_finished(ctx, outcome, kind=kind, model=request_model)
                metrics.observe(ctx, outcome)
            served = ctx.attempt  # the try that served: its upstream prices its model
            if kind == "generate" and key is not None and self.usage is not None and outcome.attempts \
                    and served is not None and served.target is not None:
                await self.usage.account(key, served.model, outcome, served.target.price(served.model))

    async def _no_route(self, method: str, path: str, headers: dict[str, str], receive: Receive, send: Send) -> None:
        """404 (405 with ``allow`` for a known path) in the dialect of the pipelines mounted there."""
        allowed = sorted({m for (m, p) in self.routes if p == path})
        code, status = ("method_not_allowed", 405) if allowed else ("not_found", 404)
        message = f"no route for {method} {path}"
        pipe = _dialect(self.pipelines.values(), path, headers)
        if pipe is None:
            await refused(receive, send, status, message, code)
            return
        await drain(receive, True)
        rendered = pipe.codec.render_error(GatewayError(message, code=code, status=status, blame="client"))
        extra = [(b"allow", ", ".join(allowed).encode())] if allowed else []
        await plain(send, status, rendered.body,
                     [*rendered.headers, *extra, (b"content-length", str(len(rendered.body)).encode())])

    async def _metrics(self, headers: dict[str, str], receive: Receive, send: Send) -> None:
        if self.metrics_keys and not key_matches(self.metrics_keys, headers):
            await refused(receive, send, 401, KEY_REFUSED, "authentication_error")
            return
        body = metrics.render()
        if self.usage is not None:  # every replica's per-key totals, from the store
            try:
                body += await self.usage.render(self.pipelines.values())
            except StoreError as exc:
                body += f"# gateway_key_* not shown: the store did not answer ({exc})\n".encode()
        await plain(send, 200, body, [(b"content-type", b"text/plain; version=0.0.4")])

    def _templated(self, method: str, path: str) -> tuple[list[tuple[Pipeline, str]] | None, str]:
        """The pipelines of the route whose ``{id}`` segment ``path`` fills, and the id."""
        for want, head, tail, found in self.templates:
            if method == want and path.startswith(head) and path.endswith(tail):
                ident = path[len(head):len(path) - len(tail)]
                if ident and "/" not in ident:
                    return found, ident
        return None, ""

    async def _stored_response(self, kind: str, response_id: str, scope: dict[str, Any]) -> bytes:
        stored = self.stored
        assert stored is not None  # set at startup
        if kind == "response_get":
            return await stored.get(response_id)
        if kind == "response_delete":
            return await stored.delete(response_id)
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
        return await stored.input_items(response_id, query)

    def _models(self, pipe: Pipeline) -> list[ModelInfo]:
        infos: list[ModelInfo] = []
        for up in pipe.upstreams:
            for client_id, upstream_model in up.advertised_models():
                lim = up.limits(upstream_model)
                infos.append(ModelInfo(id=client_id, upstream_model=upstream_model, context_window=lim.context_window,
                                       max_output_tokens=lim.max_output_tokens, owned_by=up.id))
        return infos


def _choose(candidates: list[tuple[Pipeline, str]], headers: dict[str, str]) -> tuple[Pipeline, str]:
    """Several pipelines on one path (``/v1/models``): Anthropic's shape when asked by header."""
    if len(candidates) > 1:
        want_anthropic = "anthropic-version" in headers
        for pipe, kind in candidates:
            if (pipe.codec.name == "anthropic") == want_anthropic:
                return pipe, kind
    return candidates[0]


def _dialect(pipelines: Iterable[Pipeline], path: str, headers: dict[str, str]) -> Pipeline | None:
    """The pipeline whose dialect answers an unknown route: the longest mount the path is under;
    among its pipelines the Anthropic one when the client sent ``anthropic-version``, else another."""
    under = [p for p in pipelines if path == p.config.mount or path.startswith(p.config.mount + "/")]
    if not under:
        return None
    longest = max(len(p.config.mount) for p in under)
    under = [p for p in under if len(p.config.mount) == longest]
    want_anthropic = "anthropic-version" in headers
    return next((p for p in under if (p.codec.name == "anthropic") == want_anthropic), under[0])


def _metrics_keys(server: ServerConfig, pipelines: Iterable[Pipeline]) -> tuple[bytes, ...]:
    """The keys ``GET /metrics`` accepts, none when it is open: every pipeline's gateway keys
    unless ``metrics_require_key`` is false (unset: required as soon as any pipeline has keys)."""
    if server.metrics_require_key is False:
        return ()
    return tuple(key for pipe in pipelines for key in pipe.api_keys)


def _internal(ctx: RequestContext, exc: Exception) -> GatewayError:
    """A bug outside ``run_pipeline`` (decoding, counting, the models list): logged with its
    traceback, answered as the dialect's 500."""
    ctx.log.error("request_failed", error=repr(exc), exc_info=exc)
    return GatewayError(f"internal error in the gateway: {type(exc).__name__}", code="api_error")


app = Gateway()

__all__ = ["TRIO_FIX", "Gateway", "app"]
