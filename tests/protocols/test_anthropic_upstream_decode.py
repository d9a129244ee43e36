"""Messages SSE → neutral events (``anthropic/upstream_decode.py``), whole and split anywhere, and
the upstream's error bodies."""

from __future__ import annotations

import json
import random

import msgspec
import pytest

from pipeline.events import (
    BlockStart,
    BlockStop,
    MessageStart,
    MessageStop,
    SignatureDelta,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    UpstreamSeal,
    Usage,
)
from pipeline.protocols.anthropic.upstream_decode import MessagesStreamDecoder, parse_error_body
from pipeline.sse import SseDecoder


def ev(kind: str, **payload) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n".encode()


STREAM = b"".join([
    ev("message_start", message={"id": "msg_1", "type": "message", "role": "assistant", "model": "deepseek-v4-pro",
                                 "content": [], "usage": {"input_tokens": 90, "cache_read_input_tokens": 10,
                                                          "output_tokens": 0}}),
    ev("ping"),
    ev("content_block_start", index=0, content_block={"type": "thinking", "thinking": "", "signature": ""}),
    ev("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "Let me "}),
    ev("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "think ü."}),
    ev("content_block_delta", index=0, delta={"type": "signature_delta", "signature": "c2ln"}),
    ev("content_block_stop", index=0),
    ev("content_block_start", index=1, content_block={"type": "redacted_thinking", "data": "xx"}),
    ev("content_block_stop", index=1),
    ev("content_block_start", index=2, content_block={"type": "text", "text": ""}),
    ev("content_block_delta", index=2, delta={"type": "text_delta", "text": "Running."}),
    ev("content_block_stop", index=2),
    ev("content_block_start", index=3, content_block={"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}),
    ev("content_block_delta", index=3, delta={"type": "input_json_delta", "partial_json": '{"comm'}),
    ev("content_block_delta", index=3, delta={"type": "input_json_delta", "partial_json": 'and":"ls"}'}),
    ev("content_block_stop", index=3),
    ev("content_block_start", index=4, content_block={"type": "tool_use", "id": "toolu_2", "name": "Noop", "input": {}}),
    ev("content_block_stop", index=4),
    ev("message_delta", delta={"stop_reason": "tool_use", "stop_sequence": None}, usage={"output_tokens": 42}),
    ev("message_stop"),
])
EXPECTED = [
    MessageStart(message_id="msg_1", model="deepseek-v4-pro"),
    BlockStart(index=0, block="thinking"),
    ThinkingDelta(index=0, text="Let me "),
    ThinkingDelta(index=0, text="think ü."),
    SignatureDelta(index=0, signature="c2ln"),
    UpstreamSeal(index=0, data="c2ln"),
    BlockStop(index=0),
    BlockStart(index=1, block="text"),
    TextDelta(index=1, text="Running."),
    BlockStop(index=1),
    BlockStart(index=2, block="tool_call", call_id="toolu_1", name="Bash"),
    ToolArgsDelta(index=2, fragment='{"comm'),
    ToolArgsDelta(index=2, fragment='and":"ls"}'),
    BlockStop(index=2),
    BlockStart(index=3, block="tool_call", call_id="toolu_2", name="Noop"),
    ToolArgsDelta(index=3, fragment="{}"),
    BlockStop(index=3),
    Usage(input_tokens=100, output_tokens=42, cached_input_tokens=10),
    MessageStop(stop_reason="tool_use"),
]


def decode(pieces: list[bytes]) -> list:
    sse, decoder = SseDecoder(), MessagesStreamDecoder()
    out: list = []
    for piece in pieces:
        out += decoder.feed_many(sse.feed(piece))
    return out + decoder.feed_many(sse.close()) + decoder.finish()


class TestStream:
    def test_whole(self) -> None:
        assert decode([STREAM]) == EXPECTED

    def test_a_block_no_neutral_block_carries_is_recorded_as_a_loss(self) -> None:
        """The upstream's redacted_thinking is skipped, never in silence (server tool blocks too)."""
        losses: list[tuple[str, str]] = []
        decoder = MessagesStreamDecoder(lose=lambda what, detail: losses.append((what, detail)))
        assert decoder.feed_many(SseDecoder().feed(STREAM)) + decoder.finish() == EXPECTED
        assert losses == [("upstream_block_dropped",
                           "the upstream's redacted_thinking block (no neutral block carries it)")]

    def test_redacted_thinking_for_an_anthropic_client(self) -> None:
        """``redacted=True`` (an Anthropic client of the real API): the block is a redacted
        thinking block, its data the signature and the UpstreamSeal, in its place; no loss."""
        losses: list[tuple[str, str]] = []
        decoder = MessagesStreamDecoder(lose=lambda what, detail: losses.append((what, detail)), redacted=True)
        out = decoder.feed_many(SseDecoder().feed(STREAM)) + decoder.finish()
        redacted = [BlockStart(index=1, block="thinking", redacted=True), SignatureDelta(index=1, signature="xx"),
                    UpstreamSeal(index=1, data="xx"), BlockStop(index=1)]
        renumbered = [msgspec.structs.replace(e, index=e.index + 1) if getattr(e, "index", 0) >= 1 else e
                      for e in EXPECTED[7:]]
        assert out == EXPECTED[:7] + redacted + renumbered and losses == []

    @pytest.mark.parametrize("seed", range(5))
    def test_random_splits_and_byte_by_byte(self, seed: int) -> None:
        rng = random.Random(seed)
        cuts = sorted(rng.sample(range(1, len(STREAM)), 40))
        pieces = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
        assert decode(pieces) == EXPECTED
        assert decode([STREAM[i:i + 1] for i in range(len(STREAM))]) == EXPECTED

    def test_cut_short_is_a_stream_error(self) -> None:
        out = decode([STREAM[:STREAM.index(b"event: message_delta")]])
        assert isinstance(out[-1], StreamError) and out[-1].error.code == "bad_gateway"

    @pytest.mark.parametrize(("payload", "code"), [
        ({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "overloaded"),
        ({"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long: 9 > 5"}},
         "context_length_exceeded"),
        ({"error": {"message": "Simulated", "type": "server_error", "code": "server_error"}}, "api_error"),
    ])
    def test_error_events(self, payload: dict, code: str) -> None:
        head = STREAM[:STREAM.index(b"event: content_block_start")]
        frame = f"event: error\ndata: {json.dumps(payload)}\n\n".encode() if "type" in payload else (
            f"data: {json.dumps(payload)}\n\n".encode())
        out = decode([head, frame, STREAM[len(head):]])
        assert out[0] == EXPECTED[0] and isinstance(out[-1], StreamError) and out[-1].error.code == code
        assert len(out) == 2

    @pytest.mark.parametrize(("reason", "neutral"), [("end_turn", "end_turn"), ("max_tokens", "max_tokens"),
                                                      ("stop_sequence", "stop_sequence"), ("refusal", "refusal"),
                                                      ("pause_turn", "end_turn")])
    def test_stop_reasons(self, reason: str, neutral: str) -> None:
        body = STREAM.replace(b'"stop_reason": "tool_use"', f'"stop_reason": "{reason}"'.encode())
        assert decode([body])[-1] == MessageStop(stop_reason=neutral)


class TestErrorBodies:
    def test_anthropic_shape(self) -> None:
        info = parse_error_body(529, b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}')
        assert (info.code, info.message) == ("overloaded", "Overloaded")
        info = parse_error_body(400, b'{"type":"error","error":{"type":"invalid_request_error",'
                                     b'"message":"prompt is too long: 300000 tokens > 200000 maximum"}}')
        assert info.code == "context_length_exceeded" and info.status == 400

    def test_deepseek_openai_shape(self) -> None:
        info = parse_error_body(400, b'{"error":{"message":"The `content[].thinking` in the thinking mode must be '
                                     b'passed back to the API.","type":"invalid_request_error","param":null,'
                                     b'"code":"invalid_request_error"}}')
        assert info.code == "invalid_request" and "must be passed back" in info.message
        limited = parse_error_body(429, b'{"error":{"message":"Rate Limit Reached"}}', retry_after="2")
        assert limited.code == "rate_limit" and limited.retry_after_s == 2.0
        assert parse_error_body(502, b"<html>bad gateway</html>").code == "overloaded"
