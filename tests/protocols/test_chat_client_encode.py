"""Client side of the Chat codec: neutral events → chunks / bodies, errors and model lists.

The official ``openai`` SDK is the judge: chunks and bodies are validated with its pydantic
models, and whole exchanges run through ``OpenAI(...)`` over an ``httpx.MockTransport`` (the SDK's
own SSE parsing, error mapping and stream accumulation; no server needed).
"""

from __future__ import annotations


from typing import Any

import httpx
import msgspec
import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from pipeline.errors import GatewayError, RequestError, UpstreamError
from pipeline.events import (
    BlockStart,
    BlockStop,
    ErrorInfo,
    Event,
    Heartbeat,
    MessageStart,
    MessageStop,
    SignatureDelta,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    Usage,
)
from pipeline.model import ChatRequest, Message, TextPart
from pipeline.protocols.base import ModelInfo
from pipeline.protocols.base import Reply
from pipeline.protocols.chat import ChatCodec
from pipeline.protocols.chat.client_decode_echo import ChatEcho

CODEC = ChatCodec()


# ---------------------------------------------------------------- stream encoder

TOOL_EVENTS: list[Event] = [
    MessageStart(message_id="chatcmpl-up1", model="deepseek-v4-pro"),
    Heartbeat(),
    BlockStart(index=0, block="thinking"),
    ThinkingDelta(index=0, text="Need the "),
    ThinkingDelta(index=0, text="weather."),
    SignatureDelta(index=0, signature="gw1.abc"),
    BlockStop(index=0),
    BlockStart(index=1, block="text"),
    TextDelta(index=1, text="Checking \u2028 ✓"),
    BlockStop(index=1),
    BlockStart(index=2, block="tool_call", call_id="call_a", name="weather"),
    ToolArgsDelta(index=2, fragment='{"city":'),
    ToolArgsDelta(index=2, fragment='"Paris"}'),
    BlockStop(index=2),
    BlockStart(index=3, block="tool_call", call_id="call_b", name="time"),
    ToolArgsDelta(index=3, fragment="{}"),
    BlockStop(index=3),
    Usage(input_tokens=100, output_tokens=20, cached_input_tokens=64, reasoning_tokens=5),
    MessageStop(stop_reason="tool_use"),
]


def encode_stream(events: list[Event], request: ChatRequest, reply: Reply | None = None) -> list[bytes]:
    encoder = (reply or CODEC.reply()).stream_encoder(request)
    frames: list[bytes] = []
    for event in events:
        frames += encoder.feed(event)
    frames += encoder.close()
    return frames


def data_frames(frames: list[bytes]) -> list[bytes]:
    """The JSON payload of every data frame except [DONE]; asserts the framing."""
    out = []
    for frame in frames:
        assert frame.endswith(b"\n\n") and frame.count(b"\n") == 2
        if frame.startswith(b":"):
            continue
        assert frame.startswith(b"data: ")
        payload = frame[6:-2]
        if payload != b"[DONE]":
            out.append(payload)
    return out


def chat_request(**kw: Any) -> ChatRequest:
    return ChatRequest(model="my-client-model", messages=(Message(role="user", parts=(TextPart("x"),)),), **kw)


@pytest.mark.parametrize("include_usage", [False, True])
def test_stream_frames_validate_with_the_sdk_and_accumulate(include_usage: bool) -> None:
    frames = encode_stream(TOOL_EVENTS, chat_request(), CODEC.reply(ChatEcho(include_usage=include_usage)))
    assert frames[-1] == b"data: [DONE]\n\n" and frames.count(b"data: [DONE]\n\n") == 1
    assert b": keep-alive\n\n" in frames
    chunks = [ChatCompletionChunk.model_validate_json(p) for p in data_frames(frames)]
    assert {c.id for c in chunks} == {"chatcmpl-up1"}
    assert {c.model for c in chunks} == {"my-client-model"}
    assert chunks[0].choices[0].delta.role == "assistant"
    reasoning = "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content") or "" for c in chunks
                        if c.choices)
    assert reasoning == "Need the weather."
    assert b"gw1.abc" not in b"".join(frames)
    state = ChatCompletionStreamState()
    for c in chunks:
        state.handle_chunk(c)
    final = state.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Checking \u2028 ✓"
    assert [(t.id, t.function.name, t.function.arguments) for t in message.tool_calls or []] == [
        ("call_a", "weather", '{"city":"Paris"}'), ("call_b", "time", "{}")]
    assert final.choices[0].finish_reason == "tool_calls"
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1
    usage = usage_chunks[0].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (100, 20, 120)
    assert usage.prompt_tokens_details and usage.prompt_tokens_details.cached_tokens == 64
    assert usage.completion_tokens_details and usage.completion_tokens_details.reasoning_tokens == 5
    if include_usage:  # the usage chunk comes last, with choices: []
        assert chunks[-1].choices == [] and chunks[-2].choices[0].finish_reason == "tool_calls"
    else:
        assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("stop", "finish"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
     ("refusal", "content_filter")],
)
def test_finish_reason_mapping(stop: Any, finish: str) -> None:
    events: list[Event] = [MessageStart(message_id="x", model="m"), MessageStop(stop_reason=stop)]
    payloads = data_frames(encode_stream(events, chat_request()))
    assert ChatCompletionChunk.model_validate_json(payloads[-1]).choices[0].finish_reason == finish


def test_stream_error_renders_an_error_chunk_then_done_once() -> None:
    encoder = CODEC.reply().stream_encoder(chat_request())
    frames = encoder.feed(MessageStart(message_id="x", model="m"))
    frames += encoder.feed(StreamError(error=ErrorInfo(code="overloaded", message="busy", status=503)))
    assert encoder.feed(TextDelta(index=0, text="late")) == []
    assert encoder.close() == [] and encoder.error(ErrorInfo(code="api_error", message="again")) == []
    assert frames[-1] == b"data: [DONE]\n\n"
    assert msgspec.json.decode(frames[-2][6:]) == {
        "error": {"message": "busy", "type": "server_error", "param": None, "code": "server_is_overloaded"}}


def test_error_before_anything_else() -> None:
    frames = CODEC.reply().stream_encoder(chat_request()).error(ErrorInfo(code="rate_limit", message="slow down",
                                                                  status=429))
    assert msgspec.json.decode(frames[0][6:])["error"]["code"] == "rate_limit_exceeded"
    assert frames[1] == b"data: [DONE]\n\n"


# ---------------------------------------------------------------- collector


def collect(events: list[Event], request: ChatRequest, reply: Reply | None = None) -> bytes:
    collector = (reply or CODEC.reply()).collector(request)
    for event in events:
        collector.feed(event)
    return collector.body()


def test_collector_body_validates_with_the_sdk() -> None:
    completion = ChatCompletion.model_validate_json(collect(TOOL_EVENTS, chat_request()))
    assert completion.id == "chatcmpl-up1" and completion.model == "my-client-model"
    assert completion.object == "chat.completion"
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking \u2028 ✓"
    assert (choice.message.model_extra or {})["reasoning_content"] == "Need the weather."
    assert [(t.id, t.function.name, t.function.arguments) for t in choice.message.tool_calls or []] == [
        ("call_a", "weather", '{"city":"Paris"}'), ("call_b", "time", "{}")]
    usage = completion.usage
    assert usage is not None and usage.total_tokens == 120
    assert usage.prompt_tokens_details and usage.prompt_tokens_details.cached_tokens == 64
    assert usage.completion_tokens_details and usage.completion_tokens_details.reasoning_tokens == 5


def test_collector_tool_only_message_has_null_content() -> None:
    events: list[Event] = [MessageStart(message_id="x", model="m"),
                           BlockStart(index=0, block="tool_call", call_id="c", name="f"), BlockStop(index=0),
                           MessageStop(stop_reason="tool_use")]
    body = msgspec.json.decode(collect(events, chat_request()))
    assert body["choices"][0]["message"]["content"] is None
    assert body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == ""
    assert "usage" not in body and "reasoning_content" not in body["choices"][0]["message"]


def test_collector_raises_the_stream_error_or_incomplete() -> None:
    with pytest.raises(GatewayError) as info:
        collect([MessageStart(message_id="x", model="m"),
                 StreamError(error=ErrorInfo(code="context_length_exceeded", message="too long", status=400))],
                chat_request())
    assert (info.value.code, info.value.status, info.value.message) == ("context_length_exceeded", 400, "too long")
    with pytest.raises(UpstreamError):
        collect([MessageStart(message_id="x", model="m"), BlockStart(index=0, block="text")], chat_request())


# ---------------------------------------------------------------- errors and models


@pytest.mark.parametrize(
    ("err", "status", "etype", "ecode"),
    [
        (RequestError("bad field"), 400, "invalid_request_error", "invalid_request_error"),
        (UpstreamError("too long", code="context_length_exceeded"), 400, "invalid_request_error",
         "context_length_exceeded"),
        (UpstreamError("who are you", code="authentication"), 401, "authentication_error", "invalid_api_key"),
        (UpstreamError("pay", code="billing"), 402, "insufficient_quota", "insufficient_quota"),
        (UpstreamError("params", code="unprocessable"), 422, "invalid_request_error", "unprocessable_entity"),
        (UpstreamError("boom", code="api_error"), 500, "server_error", "server_error"),
        (UpstreamError("busy", code="overloaded"), 503, "server_error", "server_is_overloaded"),
    ],
)
def test_render_error(err: GatewayError, status: int, etype: str, ecode: str) -> None:
    rendered = CODEC.render_error(err)
    assert rendered.status == status
    assert (b"content-type", b"application/json") in rendered.headers
    assert msgspec.json.decode(rendered.body) == {
        "error": {"message": err.message, "type": etype, "param": None, "code": ecode}}


def test_render_rate_limit_has_retry_after() -> None:
    rendered = CODEC.render_error(UpstreamError("slow down", code="rate_limit", retry_after_s=2.2))
    assert rendered.status == 429 and (b"retry-after", b"3") in rendered.headers
    unknown = CODEC.render_error(UpstreamError("slow down", code="rate_limit"))
    assert (b"retry-after", b"1") in unknown.headers
    assert all(k != b"retry-after" for k, _ in CODEC.render_error(UpstreamError("x", code="api_error")).headers)


def test_render_models() -> None:
    models = [ModelInfo(id="deepseek-v4-pro", upstream_model="deepseek-v4-pro", context_window=1_048_576,
                        max_output_tokens=393_216, owned_by="deepseek")]
    assert msgspec.json.decode(CODEC.render_models(models)) == {"object": "list", "data": [{
        "id": "deepseek-v4-pro", "object": "model", "created": 0, "owned_by": "deepseek",
        "context_window": 1_048_576, "max_output_tokens": 393_216}]}


def test_endpoints() -> None:
    assert CODEC.name == "chat"
    assert {(e.method, e.path, e.kind) for e in CODEC.endpoints} == {
        ("POST", "/v1/chat/completions", "generate"), ("GET", "/v1/models", "models")}


# ---------------------------------------------------------------- the official SDK end to end (MockTransport)


def sdk_client(events: list[Event] | None = None, error: GatewayError | None = None,
               seen: list[tuple[ChatRequest, object]] | None = None) -> openai.OpenAI:
    """An OpenAI client whose transport runs our codec: decode the SDK's body, answer with events."""

    def handler(http_request: httpx.Request) -> httpx.Response:
        if http_request.url.path == "/v1/models":
            models = [ModelInfo(id="m1", upstream_model="u1", context_window=10, max_output_tokens=5)]
            return httpx.Response(200, content=CODEC.render_models(models))
        if error is not None:
            rendered = CODEC.render_error(error)
            return httpx.Response(rendered.status, headers=[(k.decode(), v.decode()) for k, v in rendered.headers],
                                  content=rendered.body)
        request, reply = CODEC.decode_request(http_request.content)
        if seen is not None:
            seen.append((request, reply.echo))
        assert events is not None
        if request.stream:
            return httpx.Response(200, headers={"content-type": "text/event-stream"},
                                  content=b"".join(encode_stream(events, request, reply)))
        return httpx.Response(200, headers={"content-type": "application/json"},
                              content=collect(events, request, reply))

    transport = httpx.MockTransport(handler)
    return openai.OpenAI(api_key="sk-test", base_url="http://gateway.test/v1", max_retries=0,
                         http_client=httpx.Client(transport=transport))


SDK_MESSAGES: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
SDK_TOOLS: list[Any] = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]


def test_sdk_streaming_round_trip() -> None:
    seen: list[tuple[ChatRequest, object]] = []
    client = sdk_client(TOOL_EVENTS, seen=seen)
    stream = client.chat.completions.create(model="my-client-model", messages=SDK_MESSAGES, tools=SDK_TOOLS,
                                            stream=True, stream_options={"include_usage": True},
                                            reasoning_effort="high")
    chunks = list(stream)
    request, echo = seen[0]
    assert request.tools[0].name == "weather" and request.thinking.effort == "high"
    assert echo == ChatEcho(include_usage=True)
    calls: dict[int, list[str]] = {}
    for c in chunks:
        for choice in c.choices:
            for tc in choice.delta.tool_calls or []:
                calls.setdefault(tc.index, []).append(tc.function.arguments if tc.function else "")
    assert {i: "".join(parts) for i, parts in calls.items()} == {0: '{"city":"Paris"}', 1: "{}"}
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 120


def test_sdk_stream_helper_accumulates() -> None:
    client = sdk_client(TOOL_EVENTS)
    with client.chat.completions.stream(model="my-client-model", messages=SDK_MESSAGES, tools=SDK_TOOLS) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.tool_calls is not None
    assert final.choices[0].message.tool_calls[0].function.arguments == '{"city":"Paris"}'


def test_sdk_non_streaming_round_trip() -> None:
    completion = sdk_client(TOOL_EVENTS).chat.completions.create(model="my-client-model", messages=SDK_MESSAGES)
    assert isinstance(completion, ChatCompletion)
    assert completion.choices[0].message.content == "Checking \u2028 ✓"
    assert completion.usage is not None and completion.usage.prompt_tokens == 100


def test_sdk_in_stream_error_raises_api_error() -> None:
    events: list[Event] = [MessageStart(message_id="x", model="m"), BlockStart(index=0, block="text"),
                           TextDelta(index=0, text="par"),
                           StreamError(error=ErrorInfo(code="overloaded", message="upstream busy", status=503))]
    stream = sdk_client(events).chat.completions.create(model="m", messages=SDK_MESSAGES, stream=True)
    with pytest.raises(openai.APIError, match="upstream busy"):
        list(stream)


@pytest.mark.parametrize(
    ("error", "exc"),
    [
        (UpstreamError("too long", code="context_length_exceeded"), openai.BadRequestError),
        (UpstreamError("slow down", code="rate_limit", retry_after_s=1), openai.RateLimitError),
        (UpstreamError("nope", code="authentication"), openai.AuthenticationError),
        (UpstreamError("busy", code="overloaded"), openai.InternalServerError),
    ],
)
def test_sdk_maps_rendered_errors(error: GatewayError, exc: type[Exception]) -> None:
    with pytest.raises(exc) as info:
        sdk_client(error=error).chat.completions.create(model="m", messages=SDK_MESSAGES)
    assert isinstance(info.value, openai.APIStatusError) and info.value.status_code == error.status
    assert isinstance(info.value.body, dict) and info.value.body["message"] == error.message


def test_sdk_models_list() -> None:
    models = list(sdk_client().models.list())
    assert [m.id for m in models] == ["m1"]
    assert (models[0].model_extra or {})["context_window"] == 10
