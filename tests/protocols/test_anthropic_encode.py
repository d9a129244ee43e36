"""Anthropic encoding: SSE streams checked with the official SDK, the collector, errors, models."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import msgspec
import pydantic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.shared import ErrorResponse

from pipeline.errors import GatewayError
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
from pipeline.model import ChatRequest
from pipeline.protocols.anthropic import AnthropicCodec, AnthropicCollector, AnthropicStreamEncoder
from pipeline.protocols.anthropic.client_decode_echo import NO_ECHO, AnthropicEcho
from pipeline.protocols.anthropic.client_encode import render_models
from pipeline.sse import SseDecoder
from tests.protocols.anthropic_sdk import sdk_client

STREAM_EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)
REQUEST = ChatRequest(model="claude-opus-5-5", stream=True)


def encode(events: list[Event], request: ChatRequest = REQUEST, echo: AnthropicEcho = NO_ECHO, *,
           prompt_estimate: int | None = None) -> bytes:
    encoder = AnthropicStreamEncoder(request, echo, prompt_estimate=prompt_estimate)
    frames: list[bytes] = []
    for event in events:
        frames.extend(encoder.feed(event))
    frames.extend(encoder.close())
    assert all(isinstance(f, bytes) and f.endswith(b"\n\n") for f in frames)
    return b"".join(frames)


def collect(events: list[Event], request: ChatRequest = REQUEST, echo: AnthropicEcho = NO_ECHO, *,
            prompt_estimate: int | None = None) -> bytes:
    collector = AnthropicCollector(request, echo, prompt_estimate=prompt_estimate)
    for event in events:
        collector.feed(event)
    return collector.body()


def frames(stream: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Parse SSE; every frame must have an event: line equal to its JSON type."""
    decoder = SseDecoder()
    parsed = decoder.feed(stream) + decoder.close()
    out = []
    for frame in parsed:
        assert frame.event is not None
        data = json.loads(frame.data)
        assert data["type"] == frame.event
        out.append((frame.event, data))
    return out


def sdk_validate(stream: bytes) -> list[Any]:
    """Validate every frame with the SDK's pydantic models; return the parsed stream events."""
    events = []
    for name, data in frames(stream):
        if name == "ping":
            assert data == {"type": "ping"}
        elif name == "error":
            ErrorResponse.model_validate(data)
        else:
            events.append(STREAM_EVENT.validate_json(json.dumps(data)))
    return events


def accumulate(stream: bytes) -> dict[str, Any]:
    snapshot = None
    bufs: dict[int, bytes] = {}
    for event in sdk_validate(stream):
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=bufs)
    assert snapshot is not None
    return snapshot.model_dump(exclude_none=True)


def ask(client: anthropic.Anthropic) -> Any:
    with client.messages.stream(model="claude-opus-5-5", max_tokens=100,
                                messages=[{"role": "user", "content": "hi"}]) as stream:
        return stream.get_final_message()


TEXT = [
    MessageStart(message_id="chatcmpl-abc123", model="deepseek-v4-pro"),
    BlockStart(index=0, block="text"),
    TextDelta(index=0, text="Hello"),
    TextDelta(index=0, text=""),
    TextDelta(index=0, text=", wörld \u2028 \"quoted\"\n"),
    BlockStop(index=0),
    Usage(input_tokens=1200, output_tokens=7, cached_input_tokens=1000),
    MessageStop(stop_reason="end_turn"),
]

THINKING_TOOL = [
    MessageStart(message_id="m1", model="deepseek-v4-pro"),
    BlockStart(index=0, block="thinking"),
    ThinkingDelta(index=0, text="Need the "),
    ThinkingDelta(index=0, text="shell."),
    SignatureDelta(index=0, signature="gw1.c2ln"),
    BlockStop(index=0),
    BlockStart(index=1, block="text"),
    TextDelta(index=1, text="Running."),
    BlockStop(index=1),
    BlockStart(index=2, block="tool_call", call_id="toolu_01", name="Bash"),
    ToolArgsDelta(index=2, fragment='{"command": "ec'),
    ToolArgsDelta(index=2, fragment=""),
    ToolArgsDelta(index=2, fragment='ho hi"}'),
    BlockStop(index=2),
    Usage(input_tokens=50, output_tokens=30, reasoning_tokens=12),
    MessageStop(stop_reason="tool_use"),
]

PARALLEL = [
    MessageStart(message_id="m2", model="x"),
    BlockStart(index=0, block="tool_call", call_id="call_a", name="Read"),
    ToolArgsDelta(index=0, fragment='{"path": "a.txt"}'),
    BlockStop(index=0),
    BlockStart(index=1, block="tool_call", call_id="call_b", name="Read"),
    ToolArgsDelta(index=1, fragment='{"path": '),
    ToolArgsDelta(index=1, fragment='"b.txt"}'),
    BlockStop(index=1),
    BlockStart(index=2, block="tool_call", call_id="call_c", name="Noop"),
    BlockStop(index=2),
    MessageStop(stop_reason="tool_use"),
]


class TestStream:
    def test_text_stream_shape(self):
        """A text answer gives the canonical Anthropic event order, each valid for the SDK."""
        stream = encode(TEXT)
        names = [name for name, _ in frames(stream)]
        assert names == ["message_start", "content_block_start", "content_block_delta", "content_block_delta",
                         "content_block_stop", "message_delta", "message_stop"]
        events = sdk_validate(stream)
        start = events[0].message
        assert start.model == "claude-opus-5-5"
        assert start.id == "msg_chatcmpl" + "abc123"
        assert start.usage.output_tokens == 1 and start.usage.input_tokens == 0
        delta = events[-2]
        assert delta.delta.stop_reason == "end_turn" and delta.delta.stop_sequence is None
        assert (delta.usage.input_tokens, delta.usage.cache_read_input_tokens) == (200, 1000)
        assert (delta.usage.output_tokens, delta.usage.cache_creation_input_tokens) == (7, 0)

    def test_text_matches_sdk_and_collector(self):
        """The SDK's accumulation of the stream equals the collector's non-stream body."""
        snapshot = accumulate(encode(TEXT))
        body = Message.model_validate_json(collect(TEXT)).model_dump(exclude_none=True)
        assert snapshot == body
        assert body["content"] == [{"type": "text", "text": 'Hello, wörld \u2028 "quoted"\n'}]

    def test_thinking_tool_stream(self):
        """Thinking with signature, text and a tool call arrive as blocks 0,1,2 for the SDK."""
        stream = encode(THINKING_TOOL)
        parsed = frames(stream)
        start = next(d for n, d in parsed if n == "content_block_start")
        assert start["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
        tool_start = [d for n, d in parsed if n == "content_block_start"][2]
        assert tool_start["content_block"] == {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {}}
        json_deltas = [d["delta"]["partial_json"] for n, d in parsed
                       if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta"]
        assert json_deltas == ['{"command": "ec', 'ho hi"}']
        message = ask(sdk_client(stream))
        assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]
        assert message.content[0].thinking == "Need the shell."
        assert message.content[0].signature == "gw1.c2ln"
        assert message.content[2].input == {"command": "echo hi"}
        assert message.stop_reason == "tool_use"
        assert message.usage.output_tokens == 30
        assert message.usage.output_tokens_details.thinking_tokens == 12

    def test_thinking_tool_matches_collector(self):
        """Streaming and non-streaming agree on thinking, signature and tool input."""
        body = Message.model_validate_json(collect(THINKING_TOOL)).model_dump(exclude_none=True)
        assert accumulate(encode(THINKING_TOOL)) == body

    def test_parallel_tool_calls(self):
        """Parallel calls are sequential tool_use blocks; an empty-args call gets no delta and input {}."""
        stream = encode(PARALLEL)
        parsed = frames(stream)
        indexes = [d["index"] for n, d in parsed if n.startswith("content_block")]
        assert indexes == [0, 0, 0, 1, 1, 1, 1, 2, 2]
        message = ask(sdk_client(stream))
        assert [(b.id, b.input) for b in message.content] == [
            ("call_a", {"path": "a.txt"}), ("call_b", {"path": "b.txt"}), ("call_c", {})]
        body = Message.model_validate_json(collect(PARALLEL)).model_dump(exclude_none=True)
        assert accumulate(stream) == body

    def test_encoder_numbers_blocks(self):
        """Wire block indexes are the encoder's own 0,1,... whatever the neutral indexes are."""
        stream = encode([
            MessageStart(message_id="m", model="x"),
            BlockStart(index=4, block="text"), TextDelta(index=4, text="a"), BlockStop(index=4),
            BlockStart(index=9, block="text"), TextDelta(index=9, text="b"), BlockStop(index=9),
            MessageStop(stop_reason="end_turn"),
        ])
        assert [d["index"] for n, d in frames(stream) if "index" in d] == [0, 0, 0, 1, 1, 1]

    def test_redacted_thinking(self):
        """A redacted thinking block is one redacted_thinking block, its data (the signature) whole
        in its content_block_start, no deltas; streamed and collected alike, for the SDK too."""
        events = [*THINKING_TOOL[:6],
                  BlockStart(index=1, block="thinking", redacted=True), SignatureDelta(index=1, signature="gw2.RDX"),
                  BlockStop(index=1), *THINKING_TOOL[6:]]
        stream = encode(events)
        parsed = [(n, d) for n, d in frames(stream) if d.get("index") == 1]
        assert parsed == [("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
            "type": "redacted_thinking", "data": "gw2.RDX"}}), ("content_block_stop", {"type": "content_block_stop",
                                                                                        "index": 1})]
        message = ask(sdk_client(stream))
        assert [b.type for b in message.content] == ["thinking", "redacted_thinking", "text", "tool_use"]
        assert accumulate(stream) == Message.model_validate_json(collect(events)).model_dump(exclude_none=True)
        without = encode([MessageStart(message_id="m", model="x"), BlockStart(index=0, block="thinking", redacted=True),
                          BlockStop(index=0), MessageStop(stop_reason="end_turn")])
        assert accumulate(without)["content"] == [{"type": "redacted_thinking", "data": ""}]

    def test_thinking_without_signature(self):
        """A thinking block with no SignatureDelta gets no invented signature_delta."""
        stream = encode([
            MessageStart(message_id="m", model="x"),
            BlockStart(index=0, block="thinking"), ThinkingDelta(index=0, text="t"), BlockStop(index=0),
            MessageStop(stop_reason="end_turn"),
        ])
        assert b"signature_delta" not in stream
        assert accumulate(stream)["content"] == [{"type": "thinking", "thinking": "t", "signature": ""}]

    def test_display_omitted(self):
        """With thinking display "omitted", thinking text is withheld but the signature is sent."""
        request, echo = ChatRequest(model="c"), AnthropicEcho(thinking_display="omitted")
        events = THINKING_TOOL
        stream = encode(events, request, echo)
        assert b"thinking_delta" not in stream
        snapshot = accumulate(stream)
        assert snapshot["content"][0] == {"type": "thinking", "thinking": "", "signature": "gw1.c2ln"}
        body = Message.model_validate_json(collect(events, request, echo)).model_dump(exclude_none=True)
        assert body == snapshot

    def test_input_estimate_in_message_start(self):
        """message_start carries the stages' prompt estimate; message_delta the real counts."""
        request = ChatRequest(model="c")
        parsed = frames(encode(TEXT, request, prompt_estimate=4321))
        assert parsed[0][1]["message"]["usage"] == {
            "input_tokens": 4321, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        assert parsed[-2][1]["usage"]["input_tokens"] == 200

    def test_estimate_stands_in_for_missing_usage(self):
        """Without the upstream's usage, message_delta and the collected body report the estimate."""
        no_usage = [e for e in TEXT if not isinstance(e, Usage)]
        parsed = frames(encode(no_usage, REQUEST, prompt_estimate=77))
        assert parsed[-2][1]["usage"]["input_tokens"] == 77
        assert msgspec.json.decode(collect(no_usage, REQUEST, prompt_estimate=77))["usage"]["input_tokens"] == 77
        assert msgspec.json.decode(collect(no_usage, REQUEST))["usage"]["input_tokens"] == 0

    def test_signature_only_on_thinking(self):
        """A stray SignatureDelta on a text block is not rendered."""
        stream = encode([MessageStart(message_id="m", model="x"), BlockStart(index=0, block="text"),
                         SignatureDelta(index=0, signature="s"), BlockStop(index=0),
                         MessageStop(stop_reason="end_turn")])
        assert b"signature_delta" not in stream
        sdk_validate(stream)

    def test_heartbeat_pings(self):
        """Heartbeats become ping events (after message_start), ignored by the SDK."""
        events = [Heartbeat(), *TEXT[:3], Heartbeat(), *TEXT[3:]]
        stream = encode(events)
        names = [name for name, _ in frames(stream)]
        assert names[:2] == ["message_start", "ping"]
        assert names.count("ping") == 2 and names.count("message_start") == 1
        assert ask(sdk_client(stream)).content[0].text.startswith("Hello")

    def test_error_mid_stream(self):
        """A StreamError ends the stream with event: error, which the SDK raises."""
        info = ErrorInfo(code="overloaded", message="Upstream overloaded", status=503)
        events = [*TEXT[:3], StreamError(error=info), TextDelta(index=0, text="late"), MessageStop(stop_reason="end_turn")]
        stream = encode(events)
        parsed = frames(stream)
        assert parsed[-1] == ("error", {"type": "error",
                                        "error": {"type": "overloaded_error", "message": "Upstream overloaded"}})
        assert b"late" not in stream and b"message_stop" not in stream
        sdk_validate(stream)
        with pytest.raises(anthropic.APIStatusError) as caught:
            ask(sdk_client(stream))
        assert "overloaded_error" in str(caught.value)

    @pytest.mark.parametrize(("code", "kind"), [
        ("overloaded", "overloaded_error"), ("bad_gateway", "overloaded_error"),
        ("timeout", "overloaded_error"), ("api_error", "api_error")])
    def test_mid_stream_failure_is_an_error_claude_code_retries(self, code, kind):
        """An upstream drop or stall (overloaded, bad_gateway, timeout) after the first content is
        ``overloaded_error``, which Claude Code 2.1.330 retries as a mid-stream 529 (streaming
        again); an upstream error chunk keeps its ``api_error``, a server error it retries (again,
        or without streaming before any output). Claude Code classifies what its SDK raises by
        the body's type."""
        stream = encode([*TEXT[:3], StreamError(error=ErrorInfo(code=code, message="lost"))])
        assert frames(stream)[-1] == ("error", {"type": "error", "error": {"type": kind, "message": "lost"}})
        with pytest.raises(anthropic.APIStatusError) as caught:
            ask(sdk_client(stream))
        assert caught.value.body == {"type": "error", "error": {"type": kind, "message": "lost"}}

    def test_error_method(self):
        """error() renders one error frame; the encoder is silent afterwards."""
        encoder = AnthropicStreamEncoder(REQUEST)
        (frame,) = encoder.error(ErrorInfo(code="rate_limit", message="slow down", status=429))
        assert frame.startswith(b"event: error\ndata: ")
        assert b'"rate_limit_error"' in frame
        assert encoder.feed(Heartbeat()) == [] and encoder.error(ErrorInfo(code="api_error", message="x")) == []

    def test_nothing_after_message_stop(self):
        """Events after MessageStop produce nothing; close() is always empty."""
        encoder = AnthropicStreamEncoder(REQUEST)
        for event in TEXT:
            encoder.feed(event)
        assert encoder.feed(Heartbeat()) == [] and encoder.close() == []

    def test_stop_sequence_and_missing_usage(self):
        """stop_sequence is echoed; without Usage the delta still has output_tokens."""
        stream = encode([MessageStart(message_id="msg_keep", model="x"),
                         MessageStop(stop_reason="stop_sequence", stop_sequence="END")])
        parsed = frames(stream)
        assert parsed[0][1]["message"]["id"] == "msg_keep"
        assert parsed[1][1]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "END"}
        assert parsed[1][1]["usage"]["output_tokens"] == 0
        sdk_validate(stream)

    def test_byte_at_a_time_parse(self):
        """The SSE output parses identically when fed to an SSE reader byte by byte."""
        stream = encode(THINKING_TOOL)
        decoder = SseDecoder()
        got = [f for i in range(len(stream)) for f in decoder.feed(stream[i:i + 1])] + decoder.close()
        assert [(f.event, json.loads(f.data)) for f in got] == frames(stream)


class TestCollector:
    def test_invalid_tool_json_kept_raw(self):
        """Arguments that are not a JSON object are kept under input._raw."""
        events = [MessageStart(message_id="m", model="x"),
                  BlockStart(index=0, block="tool_call", call_id="c1", name="T"),
                  ToolArgsDelta(index=0, fragment='{"a": '), BlockStop(index=0),
                  BlockStart(index=1, block="tool_call", call_id="c2", name="T"),
                  ToolArgsDelta(index=1, fragment="[1]"), BlockStop(index=1),
                  MessageStop(stop_reason="tool_use")]
        message = Message.model_validate_json(collect(events))
        assert message.content[0].input == {"_raw": '{"a": '}
        assert message.content[1].input == {"_raw": "[1]"}

    def test_stream_error_raises(self):
        """A StreamError makes body() raise the matching GatewayError."""
        collector = AnthropicCollector(REQUEST)
        for event in [*TEXT[:3], StreamError(error=ErrorInfo(code="timeout", message="slow", status=504))]:
            collector.feed(event)
        with pytest.raises(GatewayError) as caught:
            collector.body()
        assert caught.value.code == "timeout" and caught.value.status == 504

    def test_usage_and_model(self):
        """The body echoes the client's model and maps usage (input excludes cache reads)."""
        message = Message.model_validate_json(collect(TEXT))
        assert message.model == "claude-opus-5-5" and message.role == "assistant"
        assert message.usage.input_tokens == 200 and message.usage.cache_read_input_tokens == 1000
        assert message.stop_reason == "end_turn"

    def test_sdk_non_streaming(self):
        """The SDK reads the collector's body as a non-streaming response."""
        client = sdk_client(collect(THINKING_TOOL), headers={"content-type": "application/json"})
        message = client.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}])
        assert message.content[0].signature == "gw1.c2ln"
        assert message.content[2].input == {"command": "echo hi"}


class TestCodec:
    def test_endpoints(self):
        """The codec serves messages, count_tokens, models and hello."""
        codec = AnthropicCodec()
        routes = {(e.method, e.path): e.kind for e in codec.endpoints}
        assert codec.name == "anthropic"
        assert routes == {
            ("POST", "/v1/messages"): "generate",
            ("POST", "/v1/messages/count_tokens"): "count_tokens",
            ("GET", "/v1/models"): "models",
            ("HEAD", "/api/hello"): "hello",
            ("GET", "/api/hello"): "hello",
        }

    def test_delegation(self):
        """Codec methods produce the module functions' output."""
        codec = AnthropicCodec()
        assert isinstance(codec.reply().stream_encoder(REQUEST), AnthropicStreamEncoder)
        collector = codec.reply().collector(REQUEST)
        for event in TEXT:
            collector.feed(event)
        assert msgspec.json.decode(collector.body())["content"][0]["text"].startswith("Hello")
        assert codec.render_count(3) == b'{"input_tokens":3}'
        assert codec.render_error(GatewayError("x", code="not_found")).status == 404
        assert codec.render_models([]) == render_models([])
