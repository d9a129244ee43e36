"""``pipeline.attempt`` and the retry loop's ``Plan``: one attempt per upstream tried, the request
stages run against each (not once per request, not once per retry), and a discarded shaping leaves
no trace (its losses, its stage state) in what the serving attempt reports.
"""

from __future__ import annotations

import msgspec
import trio

from pipeline.attempt import Attempt
from pipeline.config import PipelineConfig, RetryConfig
from pipeline.model import ChatRequest
from pipeline.protocols.anthropic import AnthropicCodec
from pipeline.registry import Pipeline
from pipeline.runner import Outcome, Responder, run_pipeline
from pipeline.stage import RequestContext, Stage
from pipeline.testing import make_context, sample_request
from pipeline.upstream import ModelLimits, UpstreamConfig
from tests.runner_helpers import Flaky, Sink, busy, never_disconnect


class Recorder(Stage):
    """Records what each shaping saw and leaves traces a second shaping must not inherit."""

    name = "recorder"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[str, str, int, bool]] = []

    async def on_request(self, request: ChatRequest, ctx: RequestContext) -> ChatRequest:
        attempt = ctx.attempt
        assert attempt is not None
        self.seen.append((attempt.upstream_id, attempt.model, attempt.limits.context_window, self.id in ctx.state))
        ctx.state[self.id] = attempt.upstream_id
        ctx.lose("shaped_for", attempt.upstream_id)
        return msgspec.structs.replace(request, max_output_tokens=attempt.limits.max_output_tokens)


def upstream(uid: str, errors: list, model: str, window: int) -> Flaky:
    up = Flaky(uid, errors)
    up.config = UpstreamConfig(type="flaky", models={"default": model},
                               limits={model: ModelLimits(context_window=window, max_output_tokens=window // 4)})
    return up


async def serve(upstreams: list[Flaky], stage: Recorder, **retry: object) -> tuple[RequestContext, Outcome, Sink]:
    conf = PipelineConfig(client="anthropic", upstream=[u.id for u in upstreams],
                          retry=RetryConfig(**retry))  # type: ignore[arg-type]
    pipe = Pipeline("p", conf, AnthropicCodec(), [stage], upstreams)
    ctx = make_context(deadline=trio.current_time() + 60, client="anthropic")
    ctx.lose("decoded", "a loss of the decoder's, which every attempt keeps")
    sink, outcome = Sink(), Outcome()
    await run_pipeline(pipe, sample_request(stream=True), ctx, Responder(sink.send, ctx, outcome), never_disconnect)
    return ctx, outcome, sink


async def test_each_upstream_gets_its_own_shaping_once(autojump_clock) -> None:
    a = upstream("a", [busy(), busy(), busy()], "big-model", 1_000_000)
    b = upstream("b", [busy()], "small-model", 16_384)
    stage = Recorder(None, stage_id="p.0.recorder")
    ctx, outcome, sink = await serve([a, b], stage, attempts_per_upstream=2, budget=6)
    assert sink.status == 200
    assert outcome.attempts == 4  # a twice, then b twice (its first try fails too)
    # Shaped once per upstream, each time for that upstream, never seeing the other's state.
    assert stage.seen == [("a", "big-model", 1_000_000, False), ("b", "small-model", 16_384, False)]
    assert ctx.upstream_id == "b" and ctx.upstream_model == "small-model"
    assert ctx.state[stage.id] == "b"
    assert [(loss.what, loss.detail) for loss in ctx.losses] == [
        ("decoded", "a loss of the decoder's, which every attempt keeps"), ("shaped_for", "b")]


async def test_a_retry_on_the_same_upstream_reuses_the_shaped_request(autojump_clock) -> None:
    a = upstream("a", [busy(), busy()], "big-model", 1_000_000)
    stage = Recorder(None, stage_id="p.0.recorder")
    _, outcome, sink = await serve([a], stage, attempts_per_upstream=3)
    assert sink.status == 200 and outcome.attempts == 3
    assert len(stage.seen) == 1


def test_attempt_aimed_maps_the_model_and_its_limits() -> None:
    up = upstream("u", [], "local-16k", 16_384)
    attempt = Attempt.aimed(up, "claude-opus-5-5")
    assert (attempt.upstream_id, attempt.model, attempt.limits.max_output_tokens) == ("u", "local-16k", 4_096)
    assert attempt.profile is up.profile and attempt.target is up and attempt.tries == 0
