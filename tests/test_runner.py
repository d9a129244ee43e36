"""The runner: hook order, backpressure, deadline, disconnect, retries and the error boundary.

The upstream here is a scripted in-memory one (the runner's contract is what is under test);
end-to-end behaviour against the simulator and real SDKs lives in tests/test_serve*.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import trio

from pipeline.errors import UpstreamError
from pipeline.events import BlockStart, Event, MessageStart, MessageStop, StreamError, TextDelta
from pipeline.respond import SINK_LIMIT
from pipeline.runner import Outcome, Responder, run_pipeline
from pipeline.stage import RequestContext, Stage
from pipeline.testing import make_context, sample_request
from tests.runner_helpers import Scripted, Sink, Tag, TaskTag, make_pipeline, never_disconnect, run


class TestOrder:
    async def test_request_in_yaml_order_response_in_reverse(self) -> None:
        """Request hooks run a→b→c; response hooks c→b→a, mixing sync and task forms."""
        stages = [Tag(Tag.Config(label="a")), TaskTag(TaskTag.Config(label="b")), Tag(Tag.Config(label="c"))]
        sink, outcome, ctx = await run(make_pipeline([Scripted(deltas=1)], stages), sample_request(stream=True))
        assert ctx.state["order"] == ["a", "b", "c"]
        assert b'"content":"t0 cba"' in sink.body
        assert outcome.stop_reason == "end_turn"

    async def test_non_streaming_collects_one_body(self) -> None:
        """stream=false folds the same events into one JSON body."""
        sink, _, _ = await run(make_pipeline([Scripted(deltas=2)]), sample_request())
        assert sink.status == 200
        body = msgspec.json.decode(sink.body)
        assert body["choices"][0]["message"]["content"] == "t0 t1 "


class TestBackpressure:
    async def test_upstream_waits_for_a_slow_client(self, autojump_clock) -> None:
        """The frames waiting for a blocked client are bounded (SINK_LIMIT bytes), then the upstream waits."""
        for stages in ([], [Tag(Tag.Config(label="x"))], [TaskTag(TaskTag.Config(label="x"))]):
            up = Scripted(deltas=5000)
            pipe = make_pipeline([up], stages)
            sink = Sink()
            sink.block = trio.Event()
            ctx = make_context()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run_pipeline, pipe, sample_request(stream=True), pipe.codec.reply(), ctx,
                                   Responder(sink.send, ctx, Outcome()), never_disconnect)
                await trio.sleep(1)
                frame = len(b'data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":1,"model":"test-model",'
                            b'"choices":[{"index":0,"delta":{"content":"t1000 x"},"logprobs":null,"finish_reason":null}]}\n\n')
                assert up.sent <= SINK_LIMIT // frame + 3
                sink.block.set()
            assert up.sent == 5000
            assert sink.body.count(b'"content":"t') == 5000

class TestCancellation:
    async def test_disconnect_cancels_the_upstream(self, autojump_clock) -> None:
        """http.disconnect cancels the request and the upstream stops within the same tick."""
        up = Scripted(deltas=10, stall_after=2)
        disconnect = trio.Event()

        async def receive() -> dict:
            await disconnect.wait()
            return {"type": "http.disconnect"}

        async with trio.open_nursery() as nursery:
            done = trio.Event()

            async def go() -> None:
                await run(make_pipeline([up]), sample_request(stream=True), receive=receive)
                done.set()

            nursery.start_soon(go)
            await trio.sleep(1)
            t0 = trio.current_time()
            disconnect.set()
            await done.wait()
        assert up.closed_at is not None and up.closed_at - t0 < 0.05

    async def test_deadline_after_commit_is_an_in_stream_error(self, autojump_clock) -> None:
        """A stalled stream past the deadline ends with the dialect's in-stream error."""
        up = Scripted(deltas=10, stall_after=1)
        sink, outcome, _ = await run(make_pipeline([up], deadline_s=5), sample_request(stream=True), deadline=5)
        assert sink.status == 200
        assert b'"error"' in sink.body and b"deadline" in sink.body
        assert outcome.error_code == "timeout"

    async def test_deadline_before_commit_is_an_http_error(self, autojump_clock) -> None:
        """A deadline hit before the upstream answered becomes an HTTP 504 in the dialect."""

        class Never(Scripted):
            async def stream(self, request, attempt, ctx) -> None:
                await trio.sleep_forever()

        sink, _, _ = await run(make_pipeline([Never()]), sample_request(stream=True), deadline=3)
        assert sink.status == 504


class TestErrors:
    async def test_retry_then_success(self, autojump_clock) -> None:
        """A retryable failure before the first byte is retried with backoff."""
        up = Scripted(fail=[UpstreamError("busy", code="overloaded", retryable=True, retry_after_s=1)])
        sink, outcome, _ = await run(make_pipeline([up]), sample_request(stream=True))
        assert sink.status == 200 and up.calls == 2 and outcome.attempts == 2

    async def test_fallback_to_next_upstream(self, autojump_clock) -> None:
        """When retries on one upstream are exhausted, the next upstream of the list serves."""
        bad = Scripted(fail=[UpstreamError("down", code="overloaded", retryable=True)] * 3, uid="a")
        good = Scripted(uid="b")
        sink, _, ctx = await run(make_pipeline([bad, good]), sample_request(stream=True))
        assert sink.status == 200 and ctx.upstream_id == "b" and bad.calls == 3

    async def test_non_retryable_error_is_rendered_in_dialect(self) -> None:
        """A 400 from upstream is not retried and reaches the client as an OpenAI error body."""
        up = Scripted(fail=[UpstreamError("bad field", code="invalid_request", status=400)])
        sink, outcome, _ = await run(make_pipeline([up]), sample_request(stream=True))
        assert sink.status == 400 and up.calls == 1
        assert msgspec.json.decode(sink.body)["error"]["message"] == "bad field"
        assert outcome.error_code == "invalid_request"

    async def test_failing_stage_after_commit_gives_in_stream_error(self) -> None:
        """A stage that raises mid-stream ends the stream with an error event, not a crash."""

        class Boom(Stage):
            name = "boom"

            def on_event(self, event, ctx):
                if isinstance(event, TextDelta):
                    raise RuntimeError("boom")
                return (event,)

        sink, outcome, _ = await run(make_pipeline([Scripted()], [Boom(None)]), sample_request(stream=True))
        assert sink.status == 200
        assert b"internal error in the gateway: RuntimeError" in sink.body
        assert outcome.error_code == "api_error"

    async def test_stream_error_event_non_streaming_becomes_http_error(self, autojump_clock) -> None:
        """An upstream StreamError in a non-streaming request becomes an HTTP error (once the
        attempts are used up: it is retried, see ``TestCollectedRetry``)."""

        class Dies(Scripted):
            async def stream(self, request, attempt, ctx) -> None:
                await attempt.commit()
                from pipeline.events import ErrorInfo

                await attempt.emit([MessageStart(message_id="m", model="x")])
                await attempt.emit([StreamError(error=ErrorInfo(code="overloaded", message="gone", status=503))])

        sink, _, _ = await run(make_pipeline([Dies()]), sample_request())
        assert sink.status == 503



class HalfThenWhole(Scripted):
    """The first call commits, sends half an answer and fails (an upstream ``StreamError``, or
    ``raises`` after the commit); the later calls answer whole."""

    def __init__(self, failure: StreamError | UpstreamError, **kwargs) -> None:
        super().__init__(**kwargs)
        self.failure = failure

    async def stream(self, request, attempt, ctx) -> None:
        if self.calls:
            await super().stream(request, attempt, ctx)
            return
        self.calls += 1
        await attempt.commit()
        for event in (MessageStart(message_id="m1", model="up"), BlockStart(index=0, block="text"),
                      TextDelta(index=0, text="half "), TextDelta(index=0, text="answer ")):
            await attempt.emit([event])
        if isinstance(self.failure, UpstreamError):
            raise self.failure
        await attempt.emit([self.failure])


class HoldAll(Stage):
    """Holds every text delta in per-response state and lets them out at MessageStop."""

    name = "hold"

    def on_event(self, event: Event, ctx: RequestContext) -> Sequence[Event]:
        held = ctx.state.setdefault(self.id, [])
        if isinstance(event, TextDelta):
            held.append(event)
            return ()
        if isinstance(event, MessageStop):
            return (*held, event)
        return (event,)


class TestCollectedRetry:
    """stream=false: a failure after the upstream's first content is retried (the client has
    nothing yet); the failed try's partial answer and stage state are gone."""

    async def test_a_retryable_failure_mid_answer_is_retried_and_leaves_nothing(self, autojump_clock) -> None:
        from pipeline.events import ErrorInfo

        stages = [Tag(Tag.Config(label="a")), TaskTag(TaskTag.Config(label="b")), HoldAll(None)]
        for failure in (StreamError(error=ErrorInfo(code="bad_gateway", message="cut", status=502)),
                        UpstreamError("lost", code="overloaded", retryable=True)):
            up = HalfThenWhole(failure, deltas=2)
            sink, outcome, ctx = await run(make_pipeline([up], stages), sample_request())
            assert sink.status == 200 and up.calls == 2 and outcome.attempts == 2
            body = msgspec.json.decode(sink.body)
            assert body["choices"][0]["message"]["content"] == "t0 bat1 ba"  # each delta once, tagged by both stages
            assert outcome.error_code is None and ctx.state["order"] == ["a", "b"]

    async def test_a_deterministic_failure_mid_answer_is_not_retried(self, autojump_clock) -> None:
        from pipeline.events import ErrorInfo

        up = HalfThenWhole(StreamError(error=ErrorInfo(code="invalid_request", message="no", status=400)))
        sink, outcome, _ = await run(make_pipeline([up]), sample_request())
        assert sink.status == 400 and up.calls == 1 and outcome.attempts == 1
        assert msgspec.json.decode(sink.body)["error"]["message"] == "no"
