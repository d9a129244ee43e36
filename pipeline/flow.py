"""The response path's composition: the stages between the upstream and the ``Sink``.

``build_response_chain`` wires it. Per-event stages (``on_event`` + optional ``on_end``) run
synchronously in the task that sends the event, fused into one ``Hooks`` run (in the Sink, or in
front of the next task-form stage); task-form stages (``on_events``) get a task and zero-buffer
channels. The chain's entry is the attempt's ``Outlet`` (``send_many``, ``close``). The Sink, the
draining task and the ASGI side are ``pipeline.respond``. A non-streaming answer (``Collected``)
builds a chain into a collector for each try of the retry loop instead, so a try given up on
leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import trio

from pipeline.attempt import Outlet
from pipeline.errors import GatewayError
from pipeline.events import Event
from pipeline.protocols.base import Collector
from pipeline.respond import Hooks, Outcome, Sink
from pipeline.stage import RequestContext, Stage


class _Fused(trio.abc.SendChannel[Event]):
    """A channel into a task-form stage that runs per-event hooks before forwarding."""

    def __init__(self, target: _Channel, hooks: Hooks, nursery: trio.Nursery) -> None:
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
        hooks = Hooks(group[::-1], ctx)
        if into is sink:
            sink.hooks = hooks
            return sink
        return _Fused(into, hooks, nursery) if group else into

    def entry(into: _Channel) -> Sink | _Fused:
        fused = fuse(into)  # a bare memory channel when the stage nearest the upstream is task-form
        return fused if isinstance(fused, Sink | _Fused) else _Fused(fused, hooks=Hooks((), ctx), nursery=nursery)

    for stage in stages:  # YAML order = from the encoder outward
        if type(stage).has_event_hook():
            group.append(stage)
        elif type(stage).has_task_hook():
            outbox = fuse(target)
            s, r = trio.open_memory_channel[Event](0)
            nursery.start_soon(stage.on_events, r, outbox, ctx, name=f"stage:{stage.id}")
            target, group = s, []
    return entry(target)


class Collected:
    """A non-streaming answer: each try of the retry loop (``Plan.collect``) streams into a
    response chain, ``Sink`` and collector of its own, so a try given up on takes its partial
    answer and whatever its stages held with it (their ``ctx.state`` is rewound by the plan).
    ``body()`` is the answer of the try that ended."""

    __slots__ = ("_collector", "_ctx", "_outcome", "_stages", "_done")

    def __init__(self, stages: Sequence[Stage], ctx: RequestContext, outcome: Outcome,
                 collector: Callable[[], Collector]) -> None:
        self._stages = stages
        self._ctx = ctx
        self._outcome = outcome
        self._collector = collector  # a fresh codec collector (the fold of ``pipeline.assemble``)
        self._done: Collector | None = None

    async def attempt(self, stream: Callable[[Outlet], Awaitable[None]]) -> None:
        """One try: ``stream(outbox)`` runs the upstream into a fresh chain; returns once that
        chain has ended. A ``GatewayError`` from ``stream`` is raised as it is, the try's
        task-form stages cancelled."""
        collector = self._collector()
        sink = Sink(self._ctx, self._outcome, collector.feed)
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
        self._done = collector

    def body(self) -> bytes:
        """The collected JSON body. Raises the ``GatewayError`` of the answer's first in-stream
        error (a stage's) or of its missing end (the collector's fold decides both)."""
        collector = self._done
        assert collector is not None, "no try ended"
        return collector.body()


__all__ = ["Collected", "build_response_chain"]
