"""Run one request through a pipeline: request hooks, upstream, response hooks, encoder.

Request hooks run in YAML order. The upstream is started with ``nursery.start`` so the client's
HTTP status is decided on the upstream's 2xx headers (before that: retries, fallback, or an HTTP
error in the client's dialect). Response hooks run in reverse YAML order: task-form stages as trio
tasks joined by zero-buffer channels; per-event stages fused into the channel feeding them (no
task). A disconnect watcher cancels everything; a deadline bounds it. One error boundary renders
errors as HTTP before the first byte and as the dialect's in-stream error after it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
import trio

from pipeline.errors import GatewayError, UpstreamError
from pipeline.events import Event, Heartbeat, MessageStop, StreamError, Usage
from pipeline.model import ChatRequest
from pipeline.registry import Pipeline
from pipeline.stage import RequestContext, Stage
from upstreams.base import Upstream

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
JSON_HEADERS = [(b"content-type", b"application/json")]

# Retry policy before the first byte (issue: resilience). Attempts per upstream, then fallback.
RETRIES_PER_UPSTREAM = 2
BACKOFF_BASE_S = 0.25
BACKOFF_CAP_S = 4.0
RETRY_AFTER_CAP_S = 8.0

log = structlog.get_logger("gateway")


class Outcome:
    """What the request_finished line and the metrics report."""

    __slots__ = ("error_code", "first_byte", "input_tokens", "output_tokens", "cached_tokens",
                 "reasoning_tokens", "status", "stop_reason", "attempts")

    def __init__(self) -> None:
        self.status = 0
        self.stop_reason: str | None = None
        self.error_code: str | None = None
        self.first_byte: float | None = None
        self.input_tokens = self.output_tokens = self.cached_tokens = self.reasoning_tokens = 0
        self.attempts = 0

    def observe(self, event: Event) -> None:
        if isinstance(event, Usage):
            self.input_tokens = event.input_tokens
            self.output_tokens = event.output_tokens
            self.cached_tokens = event.cached_input_tokens
            self.reasoning_tokens = event.reasoning_tokens
        elif isinstance(event, MessageStop):
            self.stop_reason = event.stop_reason
        elif isinstance(event, StreamError):
            self.error_code = event.error.code


class Responder:
    """The ASGI ``send`` side of one response; remembers whether the status was sent."""

    __slots__ = ("_send", "ctx", "finished", "outcome")

    def __init__(self, send: Send, ctx: RequestContext, outcome: Outcome) -> None:
        self._send = send
        self.ctx = ctx
        self.outcome = outcome
        self.finished = False

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.outcome.status = status
        self.ctx.committed = True
        self.outcome.first_byte = time.perf_counter()
        await self._send({"type": "http.response.start", "status": status, "headers": headers})

    async def body(self, data: bytes, *, more: bool = True) -> None:
        if not more:
            self.finished = True
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def whole(self, status: int, headers: list[tuple[bytes, bytes]], data: bytes) -> None:
        await self.start(status, headers + [(b"content-length", str(len(data)).encode())])
        await self.body(data, more=False)


class _Fused(trio.abc.SendChannel[Event]):
    """A send channel that runs sync ``on_event`` hooks before forwarding (no task needed)."""

    def __init__(self, target: trio.abc.SendChannel[Event], hooks: Sequence[Callable[..., Sequence[Event]]],
                 ctx: RequestContext) -> None:
        self._target = target
        self._hooks = tuple(hooks)
        self._ctx = ctx

    async def send(self, value: Event) -> None:
        events: Sequence[Event] = (value,)
        for hook in self._hooks:
            if len(events) == 1:
                events = hook(events[0], self._ctx)
            else:
                events = [out for e in events for out in hook(e, self._ctx)]
        for event in events:
            await self._target.send(event)

    async def aclose(self) -> None:
        await self._target.aclose()

    def close(self) -> None:
        self._target.close()  # type: ignore[attr-defined]

    def __enter__(self) -> _Fused:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_response_chain(stages: Sequence[Stage], ctx: RequestContext, nursery: trio.Nursery
                         ) -> tuple[trio.abc.SendChannel[Event], trio.MemoryReceiveChannel[Event]]:
    """Wire the response path; returns (the upstream's outbox, the encoder's inbox).

    Events flow upstream → last YAML stage → … → first YAML stage → encoder.
    """
    final_send, final_recv = trio.open_memory_channel[Event](0)
    target: trio.abc.SendChannel[Event] = final_send
    hooks: list[Callable[..., Sequence[Event]]] = []  # nearest-the-encoder first
    for stage in stages:  # YAML order = from the encoder outward
        if type(stage).has_event_hook():
            hooks.append(stage.on_event)
        elif type(stage).has_task_hook():
            outbox = _Fused(target, hooks[::-1], ctx) if hooks else target
            s, r = trio.open_memory_channel[Event](0)
            nursery.start_soon(stage.on_events, r, outbox, ctx, name=f"stage:{stage.id}")
            target, hooks = s, []
    return (_Fused(target, hooks[::-1], ctx) if hooks else target), final_recv


async def _upstream_task(upstream: Upstream, request: ChatRequest, out: trio.abc.SendChannel[Event],
                         ctx: RequestContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    started = False

    class _Status:
        def started(self, value: None = None) -> None:
            nonlocal started
            started = True
            task_status.started(value)

    try:
        await upstream.stream(request, out, ctx, task_status=_Status())  # type: ignore[arg-type]
    except GatewayError as err:
        if not started:
            raise
        await out.send(StreamError(error=err.info()))
    finally:
        if started:
            out.close()  # type: ignore[attr-defined]


def _backoff(attempt: int, err: UpstreamError) -> float:
    if err.retry_after_s is not None:
        return min(err.retry_after_s, RETRY_AFTER_CAP_S)
    return random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))


async def start_upstream(pipeline: Pipeline, request: ChatRequest, out: trio.abc.SendChannel[Event],
                         ctx: RequestContext, nursery: trio.Nursery, outcome: Outcome) -> None:
    """Start the first upstream that answers 2xx: retries with backoff, then the fallback list."""
    last: UpstreamError | None = None
    for upstream in pipeline.upstreams:
        ctx.upstream_id, ctx.upstream = upstream.id, upstream
        for attempt in range(RETRIES_PER_UPSTREAM + 1):
            outcome.attempts += 1
            try:
                await nursery.start(_upstream_task, upstream, request, out, ctx)
                return
            except UpstreamError as err:
                if not err.retryable:
                    raise
                last = err
                ctx.log.info("upstream_retry", upstream=upstream.id, attempt=attempt, code=err.code, status=err.status)
                if attempt < RETRIES_PER_UPSTREAM:
                    await trio.sleep(_backoff(attempt, err))
    assert last is not None
    raise last


def _unwrap(exc: BaseException) -> BaseException:
    """The first meaningful leaf of a (nested) exception group."""
    while isinstance(exc, BaseExceptionGroup):
        leaves = [e for e in exc.exceptions if not isinstance(e, trio.Cancelled)] or list(exc.exceptions)
        gateway = [e for e in leaves if isinstance(e, GatewayError | BaseExceptionGroup)]
        exc = (gateway or leaves)[0]
    return exc


async def _watch_disconnect(receive: Receive, scope: trio.CancelScope, gone: list[bool], responder: Responder) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if not responder.finished:  # a disconnect after the last byte is the normal end
                gone.append(True)
                scope.cancel()
            return


async def run_pipeline(pipeline: Pipeline, request: ChatRequest, ctx: RequestContext, responder: Responder,
                       receive: Receive) -> None:
    """Everything after decoding: hooks, upstream, encoding, errors. Never raises GatewayError."""
    codec, outcome = pipeline.codec, responder.outcome
    encoder: Any = None
    gone: list[bool] = []
    failure: GatewayError | None = None
    with trio.CancelScope(deadline=ctx.deadline) as deadline_scope:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch_disconnect, receive, nursery.cancel_scope, gone, responder)
                for stage in pipeline.request_stages:
                    request = await stage.on_request(request, ctx)
                if request.stream:  # built after the hooks: stages may enrich client_extras
                    encoder = codec.stream_encoder(request)
                outbox, inbox = build_response_chain(pipeline.stages, ctx, nursery)
                await start_upstream(pipeline, request, outbox, ctx, nursery, outcome)
                if encoder is not None:
                    await _stream_out(encoder, inbox, responder, outcome)
                else:
                    await _collect_out(codec, request, inbox, responder, outcome)
                nursery.cancel_scope.cancel()
        except BaseException as exc:  # the error boundary
            leaf = _unwrap(exc)
            if isinstance(leaf, GatewayError):
                failure = leaf
            elif isinstance(leaf, trio.Cancelled) or isinstance(exc, trio.Cancelled):
                raise
            elif isinstance(leaf, Exception):
                ctx.log.exception("stage_failed", error=repr(leaf))
                failure = GatewayError(f"internal error in the gateway: {type(leaf).__name__}", code="api_error")
            else:
                raise
    if gone:
        outcome.error_code = outcome.error_code or "client_disconnected"
        outcome.status = outcome.status or 499
        return
    if deadline_scope.cancelled_caught and failure is None:
        failure = GatewayError(f"request exceeded the pipeline deadline of {pipeline.config.deadline_s:g}s",
                               code="timeout", blame="gateway")
    if failure is None and ctx.committed and not responder.finished:
        failure = GatewayError("the response stream ended before the message was complete", code="bad_gateway")
    if failure is not None:
        await send_failure(pipeline, failure, responder, encoder)


async def send_failure(pipeline: Pipeline, err: GatewayError, responder: Responder, encoder: Any) -> None:
    outcome = responder.outcome
    outcome.error_code = err.code
    if not responder.ctx.committed:
        rendered = pipeline.codec.render_error(err)
        await responder.whole(rendered.status, rendered.headers, rendered.body)
        return
    if encoder is not None and not responder.finished:
        frames = encoder.error(err.info())
        await responder.body(b"".join(frames), more=False)


async def _stream_out(encoder: Any, inbox: trio.MemoryReceiveChannel[Event], responder: Responder,
                      outcome: Outcome) -> None:
    await responder.start(200, SSE_HEADERS)
    terminal = False
    async for event in inbox:
        outcome.observe(event)
        terminal = terminal or isinstance(event, MessageStop | StreamError)
        frames = encoder.feed(event)
        if frames:
            await responder.body(frames[0] if len(frames) == 1 else b"".join(frames))
    if terminal:  # else a stage failed or the chain ended early: the error boundary finishes it
        await responder.body(b"".join(encoder.close()), more=False)


async def _collect_out(codec: Any, request: ChatRequest, inbox: trio.MemoryReceiveChannel[Event],
                       responder: Responder, outcome: Outcome) -> None:
    collector = codec.collector(request)
    async for event in inbox:
        outcome.observe(event)
        if isinstance(event, StreamError):
            raise GatewayError.from_info(event.error)
        if not isinstance(event, Heartbeat):
            collector.feed(event)
    await responder.whole(200, JSON_HEADERS, collector.body())


__all__ = ["Outcome", "Responder", "build_response_chain", "run_pipeline", "send_failure", "start_upstream"]
