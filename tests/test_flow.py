"""The response flow: hooks and encoder in the sender's task, batched writes, first frames at once,
``on_end`` flushes (sync and channel paths), frames buffered before an error still sent first."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import pytest
import trio

from pipeline.events import BlockStart, BlockStop, Event, MessageStart, MessageStop, TextDelta
from pipeline.stage import RequestContext, Stage
from pipeline.testing import make_context, sample_request
from tests.runner_helpers import Scripted, Sink, TaskTag, make_pipeline, run


class BurstMany(Scripted):
    """Hands the events over as the upstream hands one read's events (one ``emit`` each): a first
    delta, a pause, then a 200-event read."""

    async def stream(self, request, attempt, ctx) -> None:
        await attempt.emit([MessageStart(message_id="m", model="up")])
        await attempt.emit([BlockStart(index=0, block="text"), TextDelta(index=0, text="first ")])
        await trio.sleep(1)
        await attempt.emit([*(TextDelta(index=0, text=f"t{i} ") for i in range(self.deltas)),
                            BlockStop(index=0), MessageStop(stop_reason="end_turn")])


class TimedSink(Sink):
    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    async def send(self, message: dict) -> None:
        self.times.append(trio.current_time())
        await super().send(message)


class HoldAll(Stage):
    """Holds every text delta until the input ends (per-event form with ``on_end``)."""

    name = "hold_all"

    def on_event(self, event: Event, ctx: RequestContext) -> Sequence[Event]:
        if isinstance(event, TextDelta):
            ctx.state.setdefault("held", []).append(event)
            return ()
        if isinstance(event, BlockStop | MessageStop):
            ctx.state.setdefault("later", []).append(event)
            return ()
        return (event,)

    def on_end(self, ctx: RequestContext) -> Sequence[Event]:
        return [*ctx.state.get("held", []), *ctx.state.get("later", [])]


async def run_timed(pipe, request):
    from pipeline.runner import Outcome, Responder, run_pipeline

    ctx = make_context(deadline=trio.current_time() + 30)
    sink = TimedSink()
    outcome = Outcome()

    async def never() -> dict:
        await trio.sleep_forever()
        raise AssertionError

    await run_pipeline(pipe, request, pipe.codec.reply(), ctx, Responder(sink.send, ctx, outcome), never)
    return sink, outcome


class TestBatching:
    async def test_first_token_at_once_then_few_writes_for_a_burst(self, autojump_clock) -> None:
        """The first delta is written before the pause; the 200-event read after it takes a few
        writes (one, and the end of the body)."""
        t0 = trio.current_time()
        sink, outcome = await run_timed(make_pipeline([BurstMany(deltas=200)]), sample_request(stream=True))
        bodies = [(t, m) for t, m in zip(sink.times, sink.messages, strict=True) if m["type"] == "http.response.body"]
        first = next(t for t, m in bodies if b'"content":"first "' in m["body"])
        assert first - t0 < 0.5
        assert len(bodies) <= 4
        assert sink.body.count(b'"content":"t') == 200 and sink.body.endswith(b"data: [DONE]\n\n")
        assert outcome.stop_reason == "end_turn"

    async def test_terminal_frame_goes_out_with_the_end_of_the_body(self, autojump_clock) -> None:
        """When the upstream's body ends right after the terminal event (the normal case), both go
        out in one send."""
        sink, _ = await run_timed(make_pipeline([BurstMany(deltas=20)]), sample_request(stream=True))
        last = sink.messages[-1]
        assert last["type"] == "http.response.body" and last["more_body"] is False
        assert b'"finish_reason":"stop"' in last["body"] and last["body"].endswith(b"data: [DONE]\n\n")
        assert all(b'"finish_reason":"stop"' not in m.get("body", b"") for m in sink.messages[:-1])

    async def test_lingering_upstream_does_not_hold_the_terminal_event_and_a_hang_up_is_a_normal_end(
            self, autojump_clock) -> None:
        """An upstream that keeps its body open after the terminal event: the event goes out after
        TERMINAL_WAIT_S anyway; a client that hangs up then (Codex does) finished its request."""
        from pipeline.respond import TERMINAL_WAIT_S
        from pipeline.runner import Outcome, Responder, run_pipeline

        class Lingers(Scripted):
            async def stream(self, request, attempt, ctx) -> None:
                await attempt.commit()
                await attempt.emit([MessageStart(message_id="m", model="up"), BlockStart(index=0, block="text"),
                                     TextDelta(index=0, text="hi"), BlockStop(index=0),
                                     MessageStop(stop_reason="end_turn")])
                await trio.sleep_forever()  # the body's end never comes

        sink = TimedSink()
        hung_up = trio.Event()

        async def receive() -> dict:
            while b'"finish_reason":"stop"' not in sink.body:
                await trio.sleep(0.01)
            hung_up.set()
            return {"type": "http.disconnect"}

        ctx = make_context(deadline=trio.current_time() + 30)
        outcome = Outcome()
        t0 = trio.current_time()
        pipe = make_pipeline([Lingers()])
        await run_pipeline(pipe, sample_request(stream=True), pipe.codec.reply(), ctx,
                           Responder(sink.send, ctx, outcome), receive)
        assert hung_up.is_set() and trio.current_time() - t0 < TERMINAL_WAIT_S + 0.05
        assert outcome.status == 200 and outcome.error_code is None and outcome.stop_reason == "end_turn"
        assert b"error" not in sink.body


class TestOnEnd:
    async def test_held_events_are_flushed_at_the_end_of_input(self) -> None:
        """A per-event stage's ``on_end`` events reach the encoder (hooks and encoder in the sender's task)."""
        sink, outcome, _ = await run(make_pipeline([Scripted(deltas=3)], [HoldAll(None)]), sample_request(stream=True))
        assert b'"content":"t0 "' in sink.body and b'"content":"t2 "' in sink.body
        assert outcome.stop_reason == "end_turn" and sink.body.endswith(b"data: [DONE]\n\n")

    async def test_held_events_are_flushed_through_a_task_stage(self) -> None:
        """Between a per-event stage and the encoder a task-form stage: the flush goes through it."""
        stages = [TaskTag(TaskTag.Config(label="!")), HoldAll(None)]
        sink, outcome, _ = await run(make_pipeline([Scripted(deltas=2)], stages), sample_request(stream=True))
        assert b'"content":"t0 !"' in sink.body and b'"content":"t1 !"' in sink.body
        assert outcome.stop_reason == "end_turn"

    async def test_collecting_non_streaming(self) -> None:
        """Non-streaming requests get the flushed events in their one body."""
        sink, _, _ = await run(make_pipeline([Scripted(deltas=2)], [HoldAll(None)]), sample_request())
        assert msgspec.json.decode(sink.body)["choices"][0]["message"]["content"] == "t0 t1 "


class TestErrors:
    async def test_frames_buffered_before_a_failure_come_before_the_error(self) -> None:
        """A stage failing mid-burst: the frames already encoded are written, then the error."""

        class BoomLate(Stage):
            name = "boom_late"

            def on_event(self, event: Event, ctx: RequestContext) -> Sequence[Event]:
                if isinstance(event, TextDelta) and event.text == "t5 ":
                    raise RuntimeError("boom")
                return (event,)

        sink, outcome, _ = await run(make_pipeline([Scripted(deltas=10)], [BoomLate(None)]), sample_request(stream=True))
        body = sink.body
        assert b'"content":"t4 "' in body and b'"content":"t5 "' not in body
        assert body.index(b'"content":"t4 "') < body.index(b"internal error in the gateway: RuntimeError")
        assert outcome.error_code == "api_error"
