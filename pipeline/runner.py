"""Run one request through a pipeline: request hooks, upstream, response hooks, encoder.

Request hooks run in YAML order, for each upstream tried (``pipeline.retry.Plan``: one
``Attempt`` per upstream, the first shaped before the client's encoder is built). The upstream
runs in the request's own task (retries and fallback until it commits, i.e. the client's HTTP
status is decided, or for a collected ``stream: false`` answer until its end; before that a
failure is an HTTP error in the client's dialect). Response hooks run in reverse YAML order
(``pipeline.flow``): per-event stages, the encoder and the writes run in the task that read the
upstream; task-form stages run as trio tasks joined by zero-buffer channels, their frames written
by the draining task, which also writes the end of the body. A disconnect watcher cancels
everything; a deadline bounds it. One error boundary renders errors as HTTP before the first byte
and as the dialect's in-stream error after it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio

from pipeline.errors import GatewayError
from pipeline.flow import Collected, build_response_chain
from pipeline.model import ChatRequest
from pipeline.protocols.base import Reply, StreamEncoder
from pipeline.registry import Pipeline
from pipeline.respond import JSON_HEADERS, Outcome, Responder, Send, Sink, stream_out
from pipeline.retry import Plan
from pipeline.stage import RequestContext

Receive = Callable[[], Awaitable[dict[str, Any]]]

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
            if responder.finished:
                # The body ended: hypercorn closes the stream from inside that final send, and
                # whoever sent it ends the request.
                return
            # After the terminal event the client may hang up before the body's end (Codex does):
            # that is the normal end too, and the upstream's remaining bytes are not waited for.
            if not responder.complete:
                gone.append(True)
            scope.cancel()
            return


async def _drain(sink: Sink, encoder: StreamEncoder, responder: Responder, scope: trio.CancelScope) -> None:
    """The streamed response's draining task; the request is over when it is."""
    await stream_out(sink, encoder, responder)
    scope.cancel()


async def run_pipeline(pipeline: Pipeline, request: ChatRequest, reply: Reply, ctx: RequestContext,
                       responder: Responder, receive: Receive) -> None:
    """Everything after decoding: hooks, upstream, encoding, errors. Never raises GatewayError.

    ``reply`` is the codec's answer to the decoded request (its echo, which the stages never
    see); the encoder is built from it, the request as the stages shaped it for the first
    upstream, and their prompt estimate (``ctx.prompt_estimate``).
    """
    outcome = responder.outcome
    encoder: StreamEncoder | None = None
    sink: Sink | None = None
    gone: list[bool] = []
    failure: GatewayError | None = None
    with trio.CancelScope(deadline=ctx.deadline) as deadline_scope:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch_disconnect, receive, nursery.cancel_scope, gone, responder)
                plan = Plan(pipeline, request, ctx)
                request = await plan.first(ctx)  # the request hooks, for the first upstream
                estimate = ctx.prompt_estimate
                if request.stream:  # built after the hooks: from the shaped request and its estimate
                    encoder = reply.stream_encoder(request, prompt_estimate=estimate)
                    sink = Sink(ctx, outcome, encoder.feed, responder=responder)
                    outbox = build_response_chain(pipeline.stages, ctx, nursery, sink)
                    nursery.start_soon(_drain, sink, encoder, responder, nursery.cancel_scope)
                    await plan.run(outbox, ctx, outcome)  # a fallback upstream is shaped for anew
                else:  # collected: a chain per try, so a try that fails mid-answer is retried
                    answer = Collected(pipeline.stages, ctx, outcome,
                                       partial(reply.collector, request, prompt_estimate=estimate))
                    await plan.collect(answer, ctx, outcome)
                    body = answer.body()
                    await responder.pass_gate()
                    await responder.whole(200, JSON_HEADERS, body)
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
    if failure is None and ctx.committed and not responder.complete:
        failure = GatewayError("the response stream ended before the message was complete", code="bad_gateway")
    if failure is not None:
        await send_failure(pipeline, failure, responder, encoder, sink.take() if sink is not None else b"")


async def send_failure(pipeline: Pipeline, err: GatewayError, responder: Responder, encoder: StreamEncoder | None,
                       pending: bytes = b"") -> None:
    """The error in the client's dialect: an HTTP error before the status, else in-stream after
    ``pending`` (frames encoded before the failure and not yet written)."""
    outcome = responder.outcome
    outcome.error_code = err.code
    if not responder.ctx.committed:
        rendered = pipeline.codec.render_error(err)
        await responder.whole(rendered.status, rendered.headers, rendered.body)
        return
    if encoder is not None and not responder.finished:
        frames = encoder.error(err.info())
        await responder.body(pending + b"".join(frames), more=False)


__all__ = ["Outcome", "Receive", "Responder", "Send", "run_pipeline", "send_failure"]
