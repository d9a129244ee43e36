"""Scripted in-memory upstreams, stages and an ASGI sink for the runner, flow, retry and attempt
tests (the runner's contract is what those test; the simulator and real SDKs are the e2e tests')."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import trio

from pipeline.config import PipelineConfig
from pipeline.errors import UpstreamError
from pipeline.events import BlockStart, BlockStop, Event, MessageStart, MessageStop, TextDelta
from pipeline.model import ChatRequest
from pipeline.protocols.chat import ChatCodec
from pipeline.registry import Pipeline
from pipeline.runner import Outcome, Responder, run_pipeline
from pipeline.stage import RequestContext, Stage
from pipeline.testing import make_context
from pipeline.upstream import Upstream, UpstreamConfig


class Scripted(Upstream):
    """Emits text deltas; can fail before start, stall, or count how far the consumer read."""

    def __init__(self, *, deltas: int = 3, fail: list[UpstreamError] | None = None, stall_after: int | None = None,
                 uid: str = "scripted") -> None:
        super().__init__(UpstreamConfig(type="scripted"), upstream_id=uid)
        self.deltas, self.fail, self.stall_after = deltas, list(fail or []), stall_after
        self.sent = 0
        self.calls = 0
        self.closed_at: float | None = None

    async def stream(self, request, attempt, ctx) -> None:
        self.calls += 1
        if self.fail:
            raise self.fail.pop(0)
        await attempt.commit()
        try:
            await attempt.emit([MessageStart(message_id="m", model="up")])
            await attempt.emit([BlockStart(index=0, block="text")])
            for i in range(self.deltas):
                if self.stall_after is not None and i >= self.stall_after:
                    await trio.sleep_forever()
                await attempt.emit([TextDelta(index=0, text=f"t{i} ")])
                self.sent += 1
            await attempt.emit([BlockStop(index=0)])
            await attempt.emit([MessageStop(stop_reason="end_turn")])
        finally:
            self.closed_at = trio.current_time()


class Tag(Stage):
    """Appends its name to every text delta and records request-hook order in ctx.state."""

    name = "tag"

    class Config(msgspec.Struct, frozen=True, kw_only=True):
        label: str

    async def on_request(self, request: ChatRequest, ctx: RequestContext) -> ChatRequest:
        ctx.state.setdefault("order", []).append(self.config.label)
        return request

    def on_event(self, event: Event, ctx: RequestContext) -> Sequence[Event]:
        if isinstance(event, TextDelta):
            return (msgspec.structs.replace(event, text=event.text + self.config.label),)
        return (event,)


class TaskTag(Tag):
    """The same, as a task-form stage."""

    on_event = None  # type: ignore[assignment]

    async def on_events(self, inbox, outbox, ctx) -> None:
        with outbox:
            async for event in inbox:
                for e in Tag.on_event(self, event, ctx):
                    await outbox.send(e)


def make_pipeline(upstreams: list[Upstream], stages: list[Stage] | None = None, deadline_s: float = 30) -> Pipeline:
    conf = PipelineConfig(client="chat", upstream=[u.id for u in upstreams], deadline_s=deadline_s)
    return Pipeline("t", conf, ChatCodec(), stages or [], upstreams)


class Sink:
    """The ASGI send side: every message, optionally held back until ``block`` is set."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.block: trio.Event | None = None

    async def send(self, message: dict) -> None:
        if self.block is not None:
            await self.block.wait()
        self.messages.append(message)

    @property
    def status(self) -> int:
        return next(m["status"] for m in self.messages if m["type"] == "http.response.start")

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(next(m["headers"] for m in self.messages if m["type"] == "http.response.start"))

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages if m["type"] == "http.response.body")


async def never_disconnect() -> dict:
    await trio.sleep_forever()
    raise AssertionError


async def run(pipe: Pipeline, request: ChatRequest, *, receive=never_disconnect, deadline: float = 30):
    ctx = make_context(deadline=trio.current_time() + deadline)
    sink = Sink()
    outcome = Outcome()
    await run_pipeline(pipe, request, pipe.codec.reply(), ctx, Responder(sink.send, ctx, outcome), receive)
    return sink, outcome, ctx


class Flaky(Upstream):
    """Fails with the given errors first (one per call), then answers "ok"."""

    def __init__(self, uid: str, errors: list[UpstreamError]) -> None:
        super().__init__(UpstreamConfig(type="flaky"), upstream_id=uid)
        self.errors = list(errors)
        self.calls: list[float] = []

    async def stream(self, request, attempt, ctx) -> None:
        self.calls.append(trio.current_time())
        if self.errors:
            raise self.errors.pop(0)
        await attempt.commit()
        for event in (MessageStart(message_id="m", model="x"), BlockStart(index=0, block="text"),
                      TextDelta(index=0, text="ok"), BlockStop(index=0), MessageStop(stop_reason="end_turn")):
            await attempt.emit([event])


def busy(retry_after_s: float | None = None) -> UpstreamError:
    code, status = ("rate_limit", 429) if retry_after_s is not None else ("overloaded", 503)
    return UpstreamError("busy", code=code, status=status, retry_after_s=retry_after_s, retryable=True)
