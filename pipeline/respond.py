"""The response's far end: the ``Sink`` that runs the last per-event hooks and the encoder and
buffers frames, the draining task (``stream_out``), and the ASGI side (``Responder``, ``Outcome``).

The upstream hands the chain one read's events at a time (``Sink.send_many``, the attempt's
``Outlet``) and the Sink writes them from that same task: the status line, the first delta at
once (time to first token), then one ASGI ``send`` per read, so neither an event nor a write costs
a task switch. Single events from a task-form stage (``Sink.send``) are batched for the draining
task instead (at most ``BATCH_S`` apart). The buffer is bounded (``SINK_LIMIT`` bytes): a slow
client stops the upstream. ``pipeline.flow`` wires the stages in front of it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from time import perf_counter
from typing import Any

import trio

from pipeline.events import (
    Event,
    MessageStop,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    Usage,
)
from pipeline.protocols.base import StreamEncoder
from pipeline.stage import RequestContext, Stage
from pipeline.store.base import StoreError

Send = Callable[[dict[str, Any]], Awaitable[None]]

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


class Hooks:
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
    """The ASGI ``send`` side of one response; remembers whether the status was sent, whether the
    client has the terminal event (``complete``) and whether the body ended (``finished``).

    The end of the body (and a whole response) is sent shielded from cancellation: hypercorn ends
    the exchange inside that ``send`` (it delivers ``http.disconnect`` to the app, then re-arms
    the keep-alive timer or closes the connection, both at checkpoints), and a cancellation there,
    by the disconnect watcher or the deadline, would leave the connection open for good. The write
    itself is shielded by hypercorn anyway.

    ``gate``, when set, is awaited once before the terminal event is written (``pass_gate``):
    a stored Response is recorded there, so a client that has the end can chain on it at once.
    """

    __slots__ = ("_send", "complete", "ctx", "finished", "gate", "outcome")

    def __init__(self, send: Send, ctx: RequestContext, outcome: Outcome) -> None:
        self._send = send
        self.ctx = ctx
        self.outcome = outcome
        self.complete = False
        self.finished = False
        self.gate: Callable[[], Awaitable[None]] | None = None

    async def pass_gate(self) -> None:
        """The gate, then what the response hooks queued for the store (``ctx.store_writes``;
        a store that fails is logged: the client still gets its answer)."""
        gate, self.gate = self.gate, None
        if gate is not None:
            await gate()
        ctx = self.ctx
        store = ctx.store
        if ctx.store_writes and store is not None:
            writes, ctx.store_writes = ctx.store_writes, []
            try:
                for key, value, ttl_s in writes:
                    await store.put(key, value, ttl_s)
            except StoreError as exc:
                ctx.log.error("store_write_failed", writes=len(writes), error=str(exc))

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.outcome.status = status
        self.ctx.committed = True
        self.outcome.first_byte = time.perf_counter()
        await self._send({"type": "http.response.start", "status": status,
                          "headers": [*headers, (b"x-request-id", self.ctx.request_id.encode())]})

    async def body(self, data: bytes, *, more: bool = True) -> None:
        if more:
            await self._send({"type": "http.response.body", "body": data, "more_body": True})
            return
        self.finished = self.complete = True
        with trio.CancelScope(shield=True):
            await self._send({"type": "http.response.body", "body": data, "more_body": False})

    async def whole(self, status: int, headers: list[tuple[bytes, bytes]], data: bytes) -> None:
        with trio.CancelScope(shield=True):
            await self.start(status, headers + [(b"content-length", str(len(data)).encode())])
            await self.body(data, more=False)


class Sink(trio.abc.SendChannel[Event]):
    """The chain's end: hooks, then ``feed(event) -> frames | None``, into a bounded buffer.

    ``send_many`` (one upstream read's events) writes what it encoded itself, in the sender's
    task, through ``responder``: the status line with the first write, the first delta at once
    (time to first token), then one write per read. ``send`` (one event from a task-form stage)
    does not yield unless the buffer is full: it wakes the draining task (``stream_out``), which
    writes everything buffered in one go at the sender's next schedule point. One writer at a
    time (``_writing``), so frames keep their order.
    """

    def __init__(self, ctx: RequestContext, outcome: Outcome, feed: Callable[[Event], list[bytes] | None],
                 *, limit: int = SINK_LIMIT, responder: Responder | None = None) -> None:
        self._ctx = ctx
        self._outcome = outcome
        self._feed = feed
        self._limit = limit
        self._responder = responder  # None: nothing is written from here (a collecting sink)
        self.hooks = Hooks((), ctx)
        self._frames: list[bytes] = []
        self._size = 0
        self._since = 0.0  # when the oldest buffered frame was made (perf_counter)
        self._first_delta = False  # a text/thinking/tool delta went through
        self._first_taken = False  # and was handed to a writer at once
        self._data = trio.lowlevel.ParkingLot()  # the drainer waits here
        self._room = trio.lowlevel.ParkingLot()  # the sender waits here when the buffer is full
        # Independent facts, not one state:
        self._drainer_waits = False  # the draining task is parked in ``_data``
        self._sender_waits = False  # a sender is parked in ``_room`` until the buffer is taken
        self._writing = False  # a task is in ``flush``
        self.closed = False  # the input ended (``close``)
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
                if terminal and (responder.gate is not None or self._ctx.store_writes):
                    await responder.pass_gate()
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


async def stream_out(sink: Sink, encoder: StreamEncoder, responder: Responder) -> None:
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
            await responder.pass_gate()
            await responder.body(data + b"".join(encoder.close()), more=False)
        elif data:
            await responder.body(data)
        return


__all__ = ["BATCH_S", "JSON_HEADERS", "SINK_LIMIT", "SSE_HEADERS", "TERMINAL_WAIT_S", "Hooks", "Outcome",
           "Responder", "Send", "Sink", "stream_out"]
