"""The response path after the upstream: fused stage hooks, the encoder, and a bounded byte buffer.

``build_response_chain`` wires it. Per-event stages (``on_event`` + optional ``on_end``) run
synchronously in the task that sends the event; task-form stages (``on_events``) get a task and
zero-buffer channels. The chain ends in a ``Sink``: it runs the last hooks and the encoder in the
sender's task and buffers the frames; the ASGI task drains the buffer with one ``send`` for
everything that became ready together (at most ``BATCH_S`` apart), so no event costs a task
switch. The buffer is bounded (``SINK_LIMIT`` bytes): a slow client stops the upstream.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any

import trio

from pipeline.errors import GatewayError
from pipeline.events import ErrorInfo, Event, Heartbeat, MessageStop, StreamError, TextDelta, ThinkingDelta
from pipeline.events import ToolArgsDelta
from pipeline.stage import RequestContext, Stage

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
JSON_HEADERS = [(b"content-type", b"application/json")]
SINK_LIMIT = 64 * 1024  # buffered bytes before the sender waits for the client
BATCH_S = 0.001  # longest a frame waits for more to join its write while the sender keeps busy
_DELTAS = frozenset({TextDelta, ThinkingDelta, ToolArgsDelta})

Hook = Callable[[Event, RequestContext], Sequence[Event]]
EndHook = Callable[[RequestContext], Sequence[Event]]


class _Hooks:
    """Per-event hooks in flow order (upstream side first), with their ``on_end`` flushes."""

    __slots__ = ("calls", "ctx", "ends")

    def __init__(self, stages: Sequence[Stage], ctx: RequestContext) -> None:
        self.ctx = ctx
        self.calls: tuple[Hook, ...] = tuple(s.on_event for s in stages)
        self.ends: tuple[tuple[int, EndHook], ...] = tuple(
            (i, s.on_end) for i, s in enumerate(stages) if type(s).has_end_hook())

    def run(self, events: Sequence[Event], start: int = 0) -> Sequence[Event]:
        ctx = self.ctx
        for hook in self.calls[start:]:
            if len(events) == 1:
                events = hook(events[0], ctx)
            else:
                events = [out for event in events for out in hook(event, ctx)]
        return events

    def end(self) -> list[Event]:
        """Input ended: each stage's held events, passed through the stages after it."""
        out: list[Event] = []
        for i, on_end in self.ends:
            out.extend(self.run(on_end(self.ctx), i + 1))
        return out


class Sink(trio.abc.SendChannel[Event]):
    """The chain's end: hooks, then ``feed(event) -> frames | None``, into a bounded buffer.

    ``send`` does not yield unless the buffer is full: the sender's next read is the schedule
    point at which the draining task wakes and writes everything buffered in one go.
    """

    def __init__(self, ctx: RequestContext, outcome: Any, feed: Callable[[Event], list[bytes] | None],
                 *, limit: int = SINK_LIMIT) -> None:
        self._ctx = ctx
        self._outcome = outcome
        self._feed = feed
        self._limit = limit
        self.hooks = _Hooks((), ctx)
        self._frames: list[bytes] = []
        self._size = 0
        self._since = 0.0  # when the oldest buffered frame was made (perf_counter)
        self._first_delta = False  # a text/thinking/tool delta went through
        self._first_taken = False  # and the sender waited for the drainer to take it
        self._data = trio.lowlevel.ParkingLot()  # the drainer waits here
        self._room = trio.lowlevel.ParkingLot()  # the sender waits here when the buffer is full
        self._drainer_waits = False
        self._sender_waits = False
        self.closed = False
        self.terminal = False  # MessageStop or StreamError went through

    async def send(self, value: Event) -> None:
        await self.send_many((value,))

    async def send_many(self, values: Sequence[Event]) -> None:
        """``send`` for every event of one upstream read, with one await for all of them."""
        if self.closed:
            raise trio.ClosedResourceError("the response sink is closed")
        ctx = self._ctx
        calls = self.hooks.calls
        consume = self._consume
        for value in values:
            events: Sequence[Event] = (value,)
            for hook in calls:
                if len(events) == 1:
                    events = hook(events[0], ctx)
                else:
                    events = [out for event in events for out in hook(event, ctx)]
            for event in events:
                consume(event)
            # Time to first token: the first delta goes to the drainer before the rest of the read
            # is encoded; a full buffer waits for the client.
            if ((self._first_delta and not self._first_taken) or self._size >= self._limit) and self._frames:
                self._first_taken = self._first_delta
                self._wake_drainer()
                await self._park()
        if not self._frames:
            return
        self._wake_drainer()
        # Once a batch is BATCH_S old, yield so that the drainer writes it (a read may hold many
        # events that the upstream hands over without yielding).
        now = perf_counter()
        if not self._since:
            self._since = now
        elif now - self._since >= BATCH_S:
            await trio.lowlevel.checkpoint()

    def _wake_drainer(self) -> None:
        if self._drainer_waits:
            self._drainer_waits = False
            self._data.unpark_all()

    async def _park(self) -> None:
        """Until the drainer took what is buffered."""
        self._sender_waits = True
        await self._room.park()

    def _consume(self, event: Event) -> None:
        kind = type(event)
        if kind not in _DELTAS:
            self._outcome.observe(event)
            if kind is MessageStop or kind is StreamError:
                self.terminal = True
        elif not self._first_delta:
            self._first_delta = True
        frames = self._feed(event)
        if frames:
            self._frames += frames
            self._size += len(frames[0]) if len(frames) == 1 else sum(map(len, frames))

    def close(self) -> None:
        if self.closed:
            return
        for event in self.hooks.end():
            self._consume(event)
        self.closed = True
        self._drainer_waits = False
        self._data.unpark_all()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()

    def take(self) -> bytes:
        """Everything buffered, as one bytes object; the sender may go on."""
        frames = self._frames
        self._frames, self._size, self._since = [], 0, 0.0
        if self._sender_waits:
            self._sender_waits = False
            self._room.unpark_all()
        return frames[0] if len(frames) == 1 else b"".join(frames)

    async def wait(self) -> None:
        """Until something is buffered or the input ended."""
        if not self._frames and not self.closed:
            self._drainer_waits = True
            try:
                await self._data.park()
            finally:
                self._drainer_waits = False

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Fused(trio.abc.SendChannel[Event]):
    """A channel into a task-form stage that runs per-event hooks before forwarding."""

    def __init__(self, target: trio.abc.SendChannel[Event], hooks: _Hooks, nursery: trio.Nursery) -> None:
        self._target = target
        self._hooks = hooks
        self._nursery = nursery

    async def send(self, value: Event) -> None:
        for event in self._hooks.run((value,)):
            await self._target.send(event)

    def close(self) -> None:
        tail = self._hooks.end()
        if tail:  # close is sync: held events go out from a short task, then the target closes
            self._nursery.start_soon(self._flush, tail)
        else:
            self._target.close()  # type: ignore[attr-defined]

    async def _flush(self, events: list[Event]) -> None:
        with self._target:  # type: ignore[attr-defined]
            for event in events:
                await self._target.send(event)

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()

    def __enter__(self) -> _Fused:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_response_chain(stages: Sequence[Stage], ctx: RequestContext, nursery: trio.Nursery, sink: Sink
                         ) -> trio.abc.SendChannel[Event]:
    """Wire the response path into ``sink``; returns the upstream's outbox.

    Events flow upstream → last YAML stage → … → first YAML stage → sink (encoder).
    """
    target: trio.abc.SendChannel[Event] = sink
    group: list[Stage] = []  # per-event stages since the last task-form one, nearest the encoder first

    def fuse(into: trio.abc.SendChannel[Event]) -> trio.abc.SendChannel[Event]:
        hooks = _Hooks(group[::-1], ctx)
        if into is sink:
            sink.hooks = hooks
            return sink
        return _Fused(into, hooks, nursery) if group else into

    for stage in stages:  # YAML order = from the encoder outward
        if type(stage).has_event_hook():
            group.append(stage)
        elif type(stage).has_task_hook():
            outbox = fuse(target)
            s, r = trio.open_memory_channel[Event](0)
            nursery.start_soon(stage.on_events, r, outbox, ctx, name=f"stage:{stage.id}")
            target, group = s, []
    return fuse(target)


def stream_sink(ctx: RequestContext, outcome: Any, encoder: Any) -> Sink:
    return Sink(ctx, outcome, encoder.feed)


async def stream_out(sink: Sink, encoder: Any, responder: Any) -> None:
    """Send the status, then whatever the sink buffered, one ASGI ``send`` per batch."""
    await responder.start(200, SSE_HEADERS)
    while True:
        await sink.wait()
        data = sink.take()
        if sink.closed:
            if sink.terminal:  # else a stage failed or the chain ended early: the error boundary finishes it
                await responder.body(data + b"".join(encoder.close()), more=False)
            elif data:
                await responder.body(data)
            return
        if data:
            await responder.body(data)


class Collecting:
    """The non-streaming sink's ``feed``: events into the codec's collector; the first error kept."""

    __slots__ = ("collector", "error")

    def __init__(self, collector: Any) -> None:
        self.collector = collector
        self.error: ErrorInfo | None = None

    def feed(self, event: Event) -> None:
        if isinstance(event, StreamError):
            self.error = self.error or event.error
        elif not isinstance(event, Heartbeat) and self.error is None:
            self.collector.feed(event)


async def collect_out(sink: Sink, collecting: Collecting, responder: Any) -> None:
    while not sink.closed:
        await sink.wait()
        sink.take()
    if collecting.error is not None:
        raise GatewayError.from_info(collecting.error)
    await responder.whole(200, JSON_HEADERS, collecting.collector.body())


__all__ = ["JSON_HEADERS", "SINK_LIMIT", "SSE_HEADERS", "Collecting", "Sink", "build_response_chain",
           "collect_out", "stream_out", "stream_sink"]
