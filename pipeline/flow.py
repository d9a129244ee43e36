"""The response path after the upstream: fused stage hooks, the encoder, and a bounded byte buffer.

``build_response_chain`` wires it. Per-event stages (``on_event`` + optional ``on_end``) run
synchronously in the task that sends the event; task-form stages (``on_events``) get a task and
zero-buffer channels. The chain ends in a ``Sink``: it runs the last hooks and the encoder in the
sender's task. The upstream hands it one read's events at a time and the Sink writes them from
that same task (status line, first delta at once, then one ASGI ``send`` per read), so neither an
event nor a write costs a task switch. Single events from a task-form stage are batched for the
draining task instead (at most ``BATCH_S`` apart). The buffer is bounded (``SINK_LIMIT`` bytes):
a slow client stops the upstream. A non-streaming answer (``Collected``) builds a chain into a
collector for each try of the retry loop instead, so a try given up on leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Any

import trio

from pipeline.attempt import Outlet
from pipeline.errors import GatewayError
from pipeline.events import (
    ErrorInfo,
    Event,
    Heartbeat,
    MessageStop,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from pipeline.stage import RequestContext, Stage

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
JSON_HEADERS = [(b"content-type", b"application/json")]
SINK_LIMIT = 64 * 1024  # buffered bytes before the sender waits for the client
BATCH_S = 0.001  # longest a frame waits for more to join its write while the sender keeps busy
TERMINAL_WAIT_S = 0.05  # longest the terminal event waits for the end of the upstream's body
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

    ``send_many`` (one upstream read's events) writes what it encoded itself, in the sender's
    task, through ``responder``: the status line with the first write, the first delta at once
    (time to first token), then one write per read. ``send`` (one event from a task-form stage)
    does not yield unless the buffer is full: it wakes the draining task (``stream_out``), which
    writes everything buffered in one go at the sender's next schedule point. One writer at a
    time (``_writing``), so frames keep their order.
    """

    def __init__(self, ctx: RequestContext, outcome: Any, feed: Callable[[Event], list[bytes] | None],
                 *, limit: int = SINK_LIMIT, responder: Any = None) -> None:
        self._ctx = ctx
        self._outcome = outcome
        self._feed = feed
        self._limit = limit
        self._responder = responder  # None: nothing is written from here (a collecting sink)
        self.hooks = _Hooks((), ctx)
        self._frames: list[bytes] = []
        self._size = 0
        self._since = 0.0  # when the oldest buffered frame was made (perf_counter)
        self._first_delta = False  # a text/thinking/tool delta went through
        self._first_taken = False  # and was handed to a writer at once
        self._data = trio.lowlevel.ParkingLot()  # the drainer waits here
        self._room = trio.lowlevel.ParkingLot()  # the sender waits here when the buffer is full
        self._drainer_waits = False
        self._sender_waits = False
        self._writing = False  # a task is in ``flush``
        self.closed = False
        self.terminal = False  # MessageStop or StreamError went through

    async def send(self, value: Event) -> None:
        """One event; the draining task writes it (batched with whatever else is ready by then)."""
        if self.closed:
            raise trio.ClosedResourceError("the response sink is closed")
        for event in self.hooks.run((value,)):
            self._consume(event)
        if not self._frames:
            return
        self._wake_drainer()
        # Time to first token: the first delta goes to the drainer before anything else is encoded;
        # a full buffer waits for the client.
        if (self._first_delta and not self._first_taken) or self._size >= self._limit:
            self._first_taken = self._first_delta
            await self._park()
            return
        # Once a batch is BATCH_S old, yield so that the drainer writes it (a sender may hand over
        # many events without yielding).
        now = perf_counter()
        if not self._since:
            self._since = now
        elif now - self._since >= BATCH_S:
            await trio.lowlevel.checkpoint()

    async def send_many(self, values: Sequence[Event]) -> None:
        """Every event of one upstream read, written by this task: the first delta at once, the
        rest in one write at the end (or whenever the buffer is full)."""
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
            if ((self._first_delta and not self._first_taken) or self._size >= self._limit) and self._frames:
                self._first_taken = self._first_delta
                await self._push()
        if self.terminal and self._frames and ctx.committed:
            # The end of the body normally follows at once: the draining task writes both in one
            # send (and the held frames on their own after TERMINAL_WAIT_S if it does not).
            self._wake_drainer()
        elif self._frames or not ctx.committed:
            await self._push()

    async def _push(self) -> None:
        """Write what is buffered from this task; if another task is writing, it takes it along
        (and a full buffer waits for it)."""
        if self._responder is not None and not self._writing:
            await self.flush()
        elif self._frames:
            self._wake_drainer()
            if self._size >= self._limit:
                await self._park()

    async def flush(self) -> None:
        """Write everything buffered (and the status line first, if it was not sent); a no-op
        while another task is writing, which then writes it."""
        responder = self._responder
        if self._writing or responder is None:
            return
        self._writing = True
        try:
            if not self._ctx.committed:
                await responder.start(200, SSE_HEADERS)
            while self._frames:
                terminal = self.terminal  # its frames are in what is taken now
                await responder.body(self.take())
                if terminal:
                    responder.complete = True
        finally:
            self._writing = False
            if self._frames or self.closed:
                self._wake_drainer()

    def _wake_drainer(self) -> None:
        if self._drainer_waits:
            self._drainer_waits = False
            self._data.unpark_all()

    async def _park(self) -> None:
        """Until a writer took what is buffered."""
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

    async def wait_closed(self) -> None:
        """Until the input ended."""
        while not self.closed:
            await self._drainer_park()

    async def wait(self) -> None:
        """Until there is work for the drainer: frames that no task is writing, or the end."""
        while self._writing or not (self._frames or self.closed):
            await self._drainer_park()

    async def _drainer_park(self) -> None:
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

    def __init__(self, target: _Channel, hooks: _Hooks, nursery: trio.Nursery) -> None:
        self._target = target
        self._hooks = hooks
        self._nursery = nursery

    async def send(self, value: Event) -> None:
        for event in self._hooks.run((value,)):
            await self._target.send(event)

    async def send_many(self, values: Sequence[Event]) -> None:
        """One upstream read's events, one by one into the task-form stage."""
        for event in self._hooks.run(values):
            await self._target.send(event)

    def close(self) -> None:
        tail = self._hooks.end()
        if tail:  # close is sync: held events go out from a short task, then the target closes
            self._nursery.start_soon(self._flush, tail)
        else:
            self._target.close()

    async def _flush(self, events: list[Event]) -> None:
        with self._target:
            for event in events:
                await self._target.send(event)

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()

    def __enter__(self) -> _Fused:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if TYPE_CHECKING:
    # What a link of the chain sends into: each has a sync close() and is a context manager (the
    # Outbox a task-form stage gets), which trio.abc.SendChannel is not.
    _Channel = Sink | _Fused | trio.MemorySendChannel[Event]


def build_response_chain(stages: Sequence[Stage], ctx: RequestContext, nursery: trio.Nursery, sink: Sink
                         ) -> Sink | _Fused:
    """Wire the response path into ``sink``; returns the chain's entry (the attempt's ``Outlet``).

    Events flow upstream → last YAML stage → … → first YAML stage → sink (encoder).
    """
    target: _Channel = sink
    group: list[Stage] = []  # per-event stages since the last task-form one, nearest the encoder first

    def fuse(into: _Channel) -> _Channel:
        hooks = _Hooks(group[::-1], ctx)
        if into is sink:
            sink.hooks = hooks
            return sink
        return _Fused(into, hooks, nursery) if group else into

    def entry(into: _Channel) -> Sink | _Fused:
        fused = fuse(into)
        return fused if isinstance(fused, Sink | _Fused) else _Fused(fused, hooks=_Hooks((), ctx), nursery=nursery)

    for stage in stages:  # YAML order = from the encoder outward
        if type(stage).has_event_hook():
            group.append(stage)
        elif type(stage).has_task_hook():
            outbox = fuse(target)
            s, r = trio.open_memory_channel[Event](0)
            nursery.start_soon(stage.on_events, r, outbox, ctx, name=f"stage:{stage.id}")
            target, group = s, []
    return entry(target)


async def stream_out(sink: Sink, encoder: Any, responder: Any) -> None:
    """The draining task (started with the request, so it writes nothing before there is
    something to write): whatever a sender left buffered, and at the end the encoder's closing
    frames, with the status line first if no sender wrote it."""
    while True:
        await sink.wait()
        if not sink.closed and sink.terminal:
            with trio.move_on_after(TERMINAL_WAIT_S):
                await sink.wait_closed()
        if not sink.closed:
            await sink.flush()
            continue
        data = sink.take()
        if not responder.ctx.committed:
            await responder.start(200, SSE_HEADERS)
        if sink.terminal:  # else a stage failed or the chain ended early: the error boundary finishes it
            await responder.body(data + b"".join(encoder.close()), more=False)
        elif data:
            await responder.body(data)
        return


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


class Collected:
    """A non-streaming answer: each try of the retry loop (``Plan.collect``) streams into a
    response chain, ``Sink`` and collector of its own, so a try given up on takes its partial
    answer and whatever its stages held with it (their ``ctx.state`` is rewound by the plan).
    ``body()`` is the answer of the try that ended."""

    __slots__ = ("_collector", "_ctx", "_outcome", "_stages", "_done")

    def __init__(self, stages: Sequence[Stage], ctx: RequestContext, outcome: Any,
                 collector: Callable[[], Any]) -> None:
        self._stages = stages
        self._ctx = ctx
        self._outcome = outcome
        self._collector = collector  # a fresh codec collector
        self._done: Collecting | None = None

    async def attempt(self, stream: Callable[[Outlet], Awaitable[None]]) -> None:
        """One try: ``stream(outbox)`` runs the upstream into a fresh chain; returns once that
        chain has ended. A ``GatewayError`` from ``stream`` is raised as it is, the try's
        task-form stages cancelled."""
        collecting = Collecting(self._collector())
        sink = Sink(self._ctx, self._outcome, collecting.feed)
        failure: GatewayError | None = None
        async with trio.open_nursery() as nursery:
            outbox = build_response_chain(self._stages, self._ctx, nursery, sink)
            try:
                await stream(outbox)
            except GatewayError as err:
                failure = err
                nursery.cancel_scope.cancel()
            else:
                while not sink.closed:
                    await sink.wait()
                    sink.take()
        if failure is not None:
            raise failure
        self._done = collecting

    def body(self) -> bytes:
        """The collected JSON body. Raises the ``GatewayError`` a stage's in-stream error makes."""
        collecting = self._done
        assert collecting is not None, "no try ended"
        if collecting.error is not None:
            raise GatewayError.from_info(collecting.error)
        return collecting.collector.body()


__all__ = ["JSON_HEADERS", "SINK_LIMIT", "SSE_HEADERS", "Collected", "Collecting", "Sink", "build_response_chain",
           "stream_out"]
