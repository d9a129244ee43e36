"""``pipeline.attempt`` and the retry loop's ``Plan``: one attempt per upstream tried, the request
stages run against each (not once per request, not once per retry), and a discarded shaping leaves
no trace (its losses, its stage state) in what the serving attempt reports.
"""

from __future__ import annotations

import msgspec
import pytest
import trio

from pipeline.attempt import Attempt
from pipeline.config import PipelineConfig, RetryConfig
from pipeline.errors import ConfigError
from pipeline.events import BlockStart, BlockStop, ErrorInfo, Event, MessageStart, MessageStop, StreamError, TextDelta
from pipeline.model import ChatRequest
from pipeline.protocols.anthropic import AnthropicCodec
from pipeline.registry import Pipeline, build_upstream
from pipeline.runner import Outcome, Responder, run_pipeline
from pipeline.stage import RequestContext, Stage
from pipeline.testing import make_context, sample_request
from pipeline.upstream import ModelLimits, Upstream, UpstreamConfig
from tests.runner_helpers import Flaky, Sink, busy, make_pipeline, never_disconnect, run


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
    await run_pipeline(pipe, sample_request(stream=True), pipe.codec.reply(), ctx, Responder(sink.send, ctx, outcome), never_disconnect)
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
    assert attempt.profile is up.profile and attempt.target is up and attempt.tries == 1


# The emit / commit / close seam: what an upstream hands its events to.

class Scripts(Upstream):
    """Plays one script of emits per call (the last one again for later calls) and records the
    attempt each call got."""

    def __init__(self, *scripts: list[list[Event]], key: str | None = None) -> None:
        super().__init__(UpstreamConfig(type="scripts"), upstream_id="s")
        self.scripts, self.key = list(scripts), key
        self.seen: list[tuple[Attempt, bool, int]] = []

    async def stream(self, request: ChatRequest, attempt: Attempt, ctx: RequestContext) -> None:
        self.seen.append((attempt, ctx.attempt is attempt, attempt.tries))
        attempt.hide(self.key)
        script = self.scripts.pop(0) if len(self.scripts) > 1 else self.scripts[0]
        for events in script:
            await attempt.emit(list(events))


START = [MessageStart(message_id="m", model="up")]
ANSWER = [[BlockStart(index=0, block="text"), TextDelta(index=0, text="ok")], [BlockStop(index=0)],
          [MessageStop(stop_reason="end_turn")]]


def failure(message: str = "busy", code: str = "overloaded", status: int = 503) -> list[Event]:
    return [StreamError(error=ErrorInfo(code=code, message=message, status=status))]


async def test_each_try_is_an_attempt_of_its_own_and_the_context_names_it(autojump_clock) -> None:
    up = Scripts([START, failure()], [START, failure()], [START, *ANSWER])
    sink, outcome, _ = await run(make_pipeline([up]), sample_request(stream=True))
    assert sink.status == 200 and b'"content":"ok"' in sink.body and outcome.attempts == 3
    attempts = [a for a, _, _ in up.seen]
    assert len({id(a) for a in attempts}) == 3  # one object per try
    assert [(is_ctx, tries) for _, is_ctx, tries in up.seen] == [(True, 1), (True, 2), (True, 3)]
    assert [a.committed for a in attempts] == [False, False, True]


async def test_a_lone_message_start_is_held_so_an_error_after_it_is_still_retried(autojump_clock) -> None:
    """DeepSeek sends ``MessageStart`` with its first chunk: it decides nothing, and the client's
    body has the serving try's only."""
    up = Scripts([[MessageStart(message_id="first", model="up")], failure()],
                 [[MessageStart(message_id="second", model="up")], *ANSWER])
    sink, outcome, _ = await run(make_pipeline([up]), sample_request(stream=True))
    assert sink.status == 200 and outcome.attempts == 2
    assert b"first" not in sink.body and b"second" in sink.body


async def test_an_answer_that_ends_before_any_content_is_a_retryable_bad_gateway(autojump_clock) -> None:
    up = Scripts([START], [START, *ANSWER])
    sink, outcome, _ = await run(make_pipeline([up]), sample_request(stream=True))
    assert sink.status == 200 and outcome.attempts == 2
    always_empty = Scripts([START])
    sink, outcome, _ = await run(make_pipeline([always_empty]), sample_request(stream=True))
    assert sink.status == 502 and outcome.error_code == "bad_gateway"
    assert b"s: the answer ended before any content" in sink.body


async def test_an_error_after_the_commit_is_in_stream_streamed_and_retried_collected(autojump_clock) -> None:
    half = [START, ANSWER[0], failure("cut mid-answer")]
    up = Scripts(half, [START, *ANSWER])
    sink, outcome, _ = await run(make_pipeline([up]), sample_request(stream=True))
    assert sink.status == 200 and outcome.attempts == 1 and b"cut mid-answer" in sink.body
    up = Scripts(half, [START, *ANSWER])
    sink, outcome, _ = await run(make_pipeline([up]), sample_request(stream=False))
    assert sink.status == 200 and outcome.attempts == 2
    assert msgspec.json.decode(sink.body)["choices"][0]["message"]["content"] == "ok"


async def test_the_upstream_key_never_reaches_the_client_in_an_error(autojump_clock) -> None:
    key = "sk-live-0123456789abcdef"
    leaky = failure(f"bad key {key}", code="invalid_request", status=400)
    for script, status in (([START, leaky], 400), ([START, *ANSWER[:1], leaky], 200)):
        up = Scripts(script, key=key)
        sink, _, _ = await run(make_pipeline([up]), sample_request(stream=True))
        assert sink.status == status and b"bad key" in sink.body and key.encode() not in sink.body


class Legacy(Upstream):
    """An upstream written against the contract before the attempt seam."""

    async def stream(self, request, out, ctx, *, task_status=None) -> None:  # type: ignore[override]
        raise AssertionError("never called")


def test_an_upstream_written_for_the_old_contract_is_refused_at_startup_in_one_line() -> None:
    with pytest.raises(ConfigError) as caught:
        build_upstream("old", {"type": "tests.test_attempt:Legacy"})
    message = str(caught.value)
    assert "\n" not in message and "upstream 'old'" in message
    assert "stream(request, attempt, ctx)" in message and "attempt.emit" in message


async def test_the_readme_custom_upstream_serves_the_official_sdk_through_hypercorn() -> None:
    """The README's example upstream, by ``module:attr``, streamed and collected, Chat and Anthropic."""
    import anthropic
    import openai

    from tests.e2e.serving import open_gateway

    yaml_text = ("upstreams:\n  echo: {type: 'custom_upstream.echo:Echo', models: {default: echo-1}}\n"
                 "pipelines:\n  chat: {client: chat, upstream: echo, mount: /c}\n"
                 "  claude: {client: anthropic, upstream: echo, mount: /a}\n")
    async with open_gateway(yaml_text) as (base, _):
        def chat() -> tuple[str, str]:
            client = openai.OpenAI(base_url=f"{base}/c/v1", api_key="x", max_retries=0)
            whole = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "?"}])
            chunks = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "?"}],
                                                    stream=True)
            streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            return whole.choices[0].message.content or "", streamed

        def claude() -> tuple[str, str]:
            client = anthropic.Anthropic(base_url=f"{base}/a", api_key="x", max_retries=0)
            args = {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "?"}]}
            whole = client.messages.create(**args)  # type: ignore[call-overload]
            with client.messages.stream(**args) as stream:  # type: ignore[arg-type]
                final = stream.get_final_message()
            return whole.content[0].text, final.content[0].text  # type: ignore[union-attr]

        assert await trio.to_thread.run_sync(chat) == ("hi", "hi")
        assert await trio.to_thread.run_sync(claude) == ("hi", "hi")
