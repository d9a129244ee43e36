"""structured_output: the request it sends for each profile, the answer held back and released,
the retry it asks for (``Redo``) and the client's error after the last try; the conformance suite.
The same through the real path, every dialect and both ways: tests/e2e/test_structured_output.py."""

from __future__ import annotations

import msgspec
import pytest

from pipeline.errors import Redo, RequestError
from pipeline.events import (
    BlockStart,
    BlockStop,
    ErrorInfo,
    Heartbeat,
    MessageStart,
    MessageStop,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from pipeline.model import ChatRequest, Message, ResponseFormat, TextPart, ToolChoice, ToolSpec
from pipeline.profiles import PROFILES
from pipeline.testing import check_stage, make_attempt, make_context, run_stage, sample_events
from stages.structured_output import StructuredOutput

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
          "required": ["city", "days"], "additionalProperties": False}


def stage(**options) -> StructuredOutput:
    return StructuredOutput(msgspec.convert(options, type=StructuredOutput.Config), stage_id="p.1.structured_output")


def ctx_for(profile: str = "deepseek"):
    ctx = make_context()
    ctx.aim(make_attempt(PROFILES[profile]))
    return ctx


def ask(text: str = "Plan a trip", fmt: ResponseFormat | None = None, **kwargs) -> ChatRequest:
    if fmt is None and "tool_choice" not in kwargs:
        fmt = ResponseFormat(type="json_schema", schema=SCHEMA, name="trip")
    return ChatRequest(model="m", messages=(Message(role="user", parts=(TextPart(text),)),), response_format=fmt,
                       **kwargs)


def text_answer(*pieces: str, stop: str = "end_turn") -> list:
    return [MessageStart(message_id="m1", model="m"), BlockStart(index=0, block="thinking"),
            ThinkingDelta(index=0, text="hmm"), BlockStop(index=0), BlockStart(index=1, block="text"),
            *[TextDelta(index=1, text=p) for p in pieces], BlockStop(index=1), MessageStop(stop_reason=stop)]


def tool_answer(name: str, *fragments: str) -> list:
    return [MessageStart(message_id="m1", model="m"), BlockStart(index=0, block="tool_call", call_id="c1", name=name),
            *[ToolArgsDelta(index=0, fragment=f) for f in fragments], BlockStop(index=0),
            MessageStop(stop_reason="tool_use")]


def feed(s: StructuredOutput, ctx, events: list) -> list:
    out: list = []
    for event in events:
        out.extend(s.on_event(event, ctx))
    return out + list(s.on_end(ctx))


class TestRequest:
    async def test_deepseek_gets_json_object_and_the_schema_in_the_system_prompt(self) -> None:
        sent, _ = await run_stage(stage(), [], request=ask(), ctx=ctx_for("deepseek"))
        assert sent.response_format == ResponseFormat(type="json_object")
        assert "json" in sent.system[-1].lower() and msgspec.json.encode(SCHEMA).decode() in sent.system[-1]
        assert "'trip'" in sent.system[-1]

    async def test_no_json_mode_no_format_sent(self) -> None:
        sent, _ = await run_stage(stage(), [], request=ask(), ctx=ctx_for("deepseek_anthropic"))
        assert sent.response_format is None and "JSON" in sent.system[-1]

    @pytest.mark.parametrize("profile", ["openai", "vllm", "llamacpp", "anthropic"])
    async def test_an_enforcing_upstream_gets_the_request_as_it_came(self, profile: str) -> None:
        request = ask()
        sent, _ = await run_stage(stage(), [], request=request, ctx=ctx_for(profile))
        assert sent is request

    async def test_a_json_object_request_gets_the_word_json_only_when_it_lacks_it(self) -> None:
        plain, _ = await run_stage(stage(), [], request=ask("Plan a trip", ResponseFormat(type="json_object")),
                                   ctx=ctx_for())
        said, _ = await run_stage(stage(), [], request=ask("Plan a trip as JSON", ResponseFormat(type="json_object")),
                                  ctx=ctx_for())
        assert "JSON" in plain.system[-1] and said.system == ()
        assert plain.response_format == said.response_format == ResponseFormat(type="json_object")

    async def test_an_invalid_schema_is_the_clients_400(self) -> None:
        with pytest.raises(RequestError, match="schema.properties.city"):
            await run_stage(stage(), [], ctx=ctx_for(), request=ask(fmt=ResponseFormat(
                type="json_schema", schema={"type": "object", "properties": {"city": {"type": 5}}})))

    async def test_text_requests_pass_untouched(self) -> None:
        request = ask(fmt=ResponseFormat(type="text"))
        sent, out = await run_stage(stage(), sample_events(), request=request, ctx=ctx_for())
        assert sent is request and out == sample_events()


class TestTextAnswer:
    async def test_a_valid_answer_goes_on_whole_after_its_end(self) -> None:
        s, ctx = stage(), ctx_for()
        await s.on_request(ask(), ctx)
        events = text_answer('{"city": "Oslo",', ' "days": 3}')
        held = [out for e in events[:-1] for out in s.on_event(e, ctx)]
        assert held == []
        assert list(s.on_event(events[-1], ctx)) == events
        assert ctx.fields["structured_output"] == {"tries": 1}

    async def test_a_fenced_answer_goes_on_without_its_fence(self) -> None:
        s, ctx = stage(), ctx_for("deepseek_anthropic")
        await s.on_request(ask(), ctx)
        out = feed(s, ctx, text_answer('```json\n{"city": "Oslo", ', '"days": 3}\n```\n'))
        assert "".join(e.text for e in out if isinstance(e, TextDelta)) == '{"city": "Oslo", "days": 3}'

    @pytest.mark.parametrize("pieces, why", [
        (('{"city": "Oslo"',), "not valid JSON"),
        (('{"city": "Oslo", "days": 0}',), "at $.days: 0 is less than the minimum of 1"),
        (('{"city": "Oslo", "days": 2, "x": 1}',), "Additional properties are not allowed"),
        (("",), "empty"),
    ])
    async def test_an_invalid_answer_asks_for_another_try_with_the_error(self, pieces, why) -> None:
        s, ctx = stage(), ctx_for()
        request = await s.on_request(ask(), ctx)
        with pytest.raises(Redo, match="the JSON schema 'trip'") as caught:
            feed(s, ctx, text_answer(*pieces))
        assert why in str(caught.value)
        again = caught.value.amend(request)
        assert again.messages[:-1] == request.messages and again.system == request.system
        note = again.messages[-1]
        assert note.role == "user" and why in note.parts[0].text and pieces[0][:10] in note.parts[0].text

    async def test_after_the_retries_the_client_gets_a_422_after_the_start(self) -> None:
        s, ctx = stage(), ctx_for()
        await s.on_request(ask(), ctx)
        with pytest.raises(Redo):
            feed(s, ctx, text_answer("nope"))
        del ctx.state[s.id + ":answer"]  # the retry loop's rewind
        out = feed(s, ctx, text_answer("still nope"))
        assert [type(e) for e in out] == [MessageStart, StreamError]
        error = out[1].error
        assert (error.code, error.status) == ("unprocessable", 422)
        assert "after 2 tries" in error.message and "not valid JSON" in error.message
        assert ctx.fields["structured_output"]["tries"] == 2

    async def test_no_retries_errs_at_once(self) -> None:
        s, ctx = stage(retries=0), ctx_for()
        await s.on_request(ask(), ctx)
        out = feed(s, ctx, text_answer("nope"))
        assert isinstance(out[-1], StreamError) and "after 1 try" in out[-1].error.message

    async def test_a_tool_turn_is_released_at_the_call_and_not_checked(self) -> None:
        s, ctx = stage(), ctx_for()
        await s.on_request(ask(), ctx)
        events = [MessageStart(message_id="m", model="m"), BlockStart(index=0, block="text"),
                  TextDelta(index=0, text="Looking."), BlockStop(index=0),
                  BlockStart(index=1, block="tool_call", call_id="c", name="Bash"),
                  ToolArgsDelta(index=1, fragment="{}"), BlockStop(index=1), MessageStop(stop_reason="tool_use")]
        first = [out for e in events[:5] for out in s.on_event(e, ctx)]
        assert first == events[:5]
        assert feed(s, ctx, events[5:]) == events[5:]

    async def test_an_answer_cut_by_the_budget_is_reported_as_cut(self) -> None:
        s, ctx = stage(), ctx_for()
        await s.on_request(ask(), ctx)
        events = text_answer('{"city": "Os', stop="max_tokens")
        assert feed(s, ctx, events) == events

    async def test_an_upstream_error_or_a_lost_end_releases_what_was_held(self) -> None:
        s, ctx = stage(), ctx_for()
        await s.on_request(ask(), ctx)
        events = text_answer('{"city"')[:-2]
        error = StreamError(error=ErrorInfo(code="overloaded", message="dropped"))
        assert feed(s, ctx, [*events, error]) == [*events, error]
        del ctx.state[s.id + ":answer"]
        assert feed(s, ctx, events) == events  # the stream ended without its stop: nothing kept back

    async def test_a_keepalive_while_held(self) -> None:
        s, ctx = stage(keepalive_s=0.000001), ctx_for()
        await s.on_request(ask(), ctx)
        out = [e for event in text_answer('{"city": "Oslo", "days": 3}')[:-1] for e in s.on_event(event, ctx)]
        assert out and all(isinstance(e, Heartbeat) for e in out)  # only keep-alives while it is held


class TestForcedTool:
    TOOL = ToolSpec(name="record", parameters=SCHEMA)

    def request(self) -> ChatRequest:
        return ask(tools=(self.TOOL,), tool_choice=ToolChoice(mode="tool", name="record"))

    async def test_valid_arguments_go_on(self) -> None:
        s, ctx = stage(), ctx_for()
        sent = await s.on_request(self.request(), ctx)
        assert sent == self.request()  # nothing to add: the schema is the tool's
        events = tool_answer("record", '{"city": "Oslo", ', '"days": 3}')
        assert feed(s, ctx, events) == events

    @pytest.mark.parametrize("fragments, why", [
        (('{"city": "Oslo"}',), "'days' is a required property"),
        (("[1, 2]",), "is not of type 'object'"),
    ])
    async def test_invalid_arguments_ask_for_another_try(self, fragments, why) -> None:
        s, ctx = stage(), ctx_for()
        request = await s.on_request(self.request(), ctx)
        with pytest.raises(Redo, match="the tool 'record'") as caught:
            feed(s, ctx, tool_answer("record", *fragments))
        assert why in str(caught.value)
        note = caught.value.amend(request).messages[-1].parts[0].text
        assert "Call 'record' again" in note and why in note

    async def test_no_call_of_the_forced_tool_is_invalid(self) -> None:
        s, ctx = stage(), ctx_for()
        await s.on_request(self.request(), ctx)
        with pytest.raises(Redo, match="no call to the tool 'record'"):
            feed(s, ctx, text_answer("I would rather talk."))

    async def test_a_strict_tool_on_a_strict_upstream_is_not_checked(self) -> None:
        s, ctx = stage(), ctx_for("openai")
        strict = msgspec.structs.replace(self.TOOL, strict=True)
        await s.on_request(ask(tools=(strict,), tool_choice=ToolChoice(mode="tool", name="record")), ctx)
        events = tool_answer("record", "[]")
        assert feed(s, ctx, events) == events


async def test_conformance() -> None:
    await check_stage(stage(), request=ask())
    await check_stage(stage())
