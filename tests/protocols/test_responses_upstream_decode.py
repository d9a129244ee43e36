"""The Responses upstream decoder: SSE events → neutral events, fed whole, byte by byte and from the
simulator's own streams (each flavour), and its strictness (sequence numbers, terminal events)."""

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
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    UpstreamSeal,
    Usage,
)
from pipeline.protocols.responses.helpers import open_seal
from pipeline.protocols.responses.upstream_decode import ResponsesStreamDecoder, response_events
from pipeline.sse import SseDecoder
from upstreams.simulator import SimConfig, Simulator


def sse(events: list[dict]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def decode(data: bytes, pieces: int | None = None, seed: int = 0) -> list:
    """Events for ``data`` fed in ``pieces`` random splits (None: whole)."""
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), min(pieces, len(data) - 1))) if pieces else []
    sse_decoder, decoder = SseDecoder(), ResponsesStreamDecoder()
    out = []
    for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
        out += decoder.feed_many(sse_decoder.feed(data[a:b]))
    return out + decoder.feed_many(sse_decoder.close()) + decoder.finish()


def numbered(events: list[dict]) -> list[dict]:
    return [{**e, "sequence_number": n} for n, e in enumerate(events)]


RESP = {"id": "resp_1", "model": "deepseek-v4-flash", "status": "in_progress", "output": []}
USAGE = {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 64}, "output_tokens": 30,
         "output_tokens_details": {"reasoning_tokens": 12}, "total_tokens": 130}


def stream_with_everything() -> list[dict]:
    return numbered([
        {"type": "response.created", "response": RESP},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": None}},
        {"type": "response.reasoning_text.delta", "item_id": "rs_1", "output_index": 0, "content_index": 0,
         "delta": "Think "},
        {"type": "response.reasoning_text.delta", "item_id": "rs_1", "output_index": 0, "content_index": 0,
         "delta": "hard."},
        {"type": "response.output_item.done", "output_index": 0,
         "item": {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "dsenc1.abc",
                  "content": [{"type": "reasoning_text", "text": "Think hard."}]}},
        {"type": "response.output_item.added", "output_index": 1,
         "item": {"id": "msg_1", "type": "message", "role": "assistant", "content": []}},
        {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1, "content_index": 0,
         "delta": "Patching."},
        {"type": "response.output_item.done", "output_index": 1, "item": {"id": "msg_1", "type": "message"}},
        {"type": "response.output_item.added", "output_index": 2,
         "item": {"id": "fc_1", "type": "function_call", "call_id": "call_a", "name": "shell", "arguments": ""}},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 2, "delta": '{"cmd":'},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 2, "delta": '"ls"}'},
        {"type": "response.output_item.done", "output_index": 2, "item": {"id": "fc_1", "type": "function_call"}},
        {"type": "response.output_item.added", "output_index": 3,
         "item": {"id": "ct_1", "type": "custom_tool_call", "call_id": "call_b", "name": "apply_patch", "input": ""}},
        {"type": "response.custom_tool_call_input.delta", "item_id": "ct_1", "output_index": 3,
         "delta": '*** Begin Patch\n"q"\\'},
        {"type": "response.custom_tool_call_input.delta", "item_id": "ct_1", "output_index": 3,
         "delta": "\n*** End Patch"},
        {"type": "response.output_item.done", "output_index": 3, "item": {"id": "ct_1", "type": "custom_tool_call"}},
        {"type": "response.completed", "response": {**RESP, "status": "completed", "usage": USAGE}},
    ])


class TestDecode:
    def test_every_item_kind(self) -> None:
        events = response_events(stream_with_everything())
        assert events[0] == MessageStart(message_id="resp_1", model="deepseek-v4-flash")
        assert [e for e in events if isinstance(e, BlockStart)] == [
            BlockStart(index=0, block="thinking"), BlockStart(index=1, block="text"),
            BlockStart(index=2, block="tool_call", call_id="call_a", name="shell"),
            BlockStart(index=3, block="tool_call", call_id="call_b", name="apply_patch")]
        assert "".join(e.text for e in events if isinstance(e, ThinkingDelta)) == "Think hard."
        assert [e.text for e in events if isinstance(e, TextDelta)] == ["Patching."]
        args = {i: "".join(e.fragment for e in events if isinstance(e, ToolArgsDelta) and e.index == i) for i in (2, 3)}
        assert json.loads(args[2]) == {"cmd": "ls"}
        # The custom call's raw input is the neutral {"input": ...}, escaped fragment by fragment.
        assert json.loads(args[3]) == {"input": '*** Begin Patch\n"q"\\\n*** End Patch'}
        seal = next(e for e in events if isinstance(e, UpstreamSeal))
        assert seal.index == 0 and open_seal(seal.data) == open_seal('{"id":"rs_1","encrypted_content":"dsenc1.abc"}')
        assert events.index(seal) == events.index(BlockStop(index=0)) - 1  # before the block ends
        assert events[-2:] == [Usage(input_tokens=100, output_tokens=30, cached_input_tokens=64, reasoning_tokens=12),
                               MessageStop(stop_reason="tool_use")]

    @pytest.mark.parametrize("pieces", [None, 7, 50, 400])
    def test_any_split_gives_the_same_events(self, pieces: int | None) -> None:
        data = sse(stream_with_everything())
        whole = decode(data)
        assert not any(isinstance(e, StreamError) for e in whole)
        merged = _merged(decode(data, pieces, seed=pieces or 0))
        assert merged == _merged(whole)

    def test_summaries_and_done_only_items(self) -> None:
        """OpenAI's summary deltas (parts joined by a blank line); a server that sends only the
        finished items still gives the whole answer."""
        events = response_events(numbered([
            {"type": "response.created", "response": RESP},
            {"type": "response.output_item.added", "output_index": 0, "item": {"id": "rs", "type": "reasoning"}},
            {"type": "response.reasoning_summary_text.delta", "item_id": "rs", "output_index": 0, "summary_index": 0,
             "delta": "One."},
            {"type": "response.reasoning_summary_text.delta", "item_id": "rs", "output_index": 0, "summary_index": 1,
             "delta": "Two."},
            {"type": "response.output_item.done", "output_index": 0, "item": {"id": "rs", "type": "reasoning"}},
            {"type": "response.output_item.done", "output_index": 1, "item": {
                "id": "m", "type": "message", "content": [{"type": "output_text", "text": "Whole text."}]}},
            {"type": "response.output_item.done", "output_index": 2, "item": {
                "id": "f", "type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a":1}'}},
            {"type": "response.completed", "response": {**RESP, "status": "completed"}},
        ]))
        assert "".join(e.text for e in events if isinstance(e, ThinkingDelta)) == "One.\n\nTwo."
        assert [e.text for e in events if isinstance(e, TextDelta)] == ["Whole text."]
        assert [e.fragment for e in events if isinstance(e, ToolArgsDelta)] == ['{"a":1}']
        assert not any(isinstance(e, UpstreamSeal) for e in events)  # no encrypted_content, no seal
        assert events[-1] == MessageStop(stop_reason="tool_use")

    def test_done_sentinel_is_ignored_and_no_sequence_numbers_are_fine(self) -> None:
        data = sse([{"type": "response.created", "response": RESP},
                    {"type": "response.output_text.delta", "item_id": "m", "output_index": 0, "delta": "hi"},
                    {"type": "response.completed", "response": RESP}]) + b"data: [DONE]\n\n"
        events = decode(data)
        assert [type(e) for e in events] == [MessageStart, BlockStart, TextDelta, BlockStop, MessageStop]


class TestHostedItems:
    def test_an_item_without_a_neutral_block_leaves_the_open_one_alone(self) -> None:
        events = response_events(numbered([
            {"type": "response.created", "response": RESP},
            {"type": "response.output_item.added", "output_index": 0, "item": {"id": "m", "type": "message"}},
            {"type": "response.output_text.delta", "item_id": "m", "output_index": 0, "delta": "a"},
            {"type": "response.output_item.done", "output_index": 1, "item": {"id": "ws", "type": "web_search_call"}},
            {"type": "response.output_text.delta", "item_id": "m", "output_index": 0, "delta": "b"},
            {"type": "response.output_item.done", "output_index": 0, "item": {"id": "m", "type": "message"}},
            {"type": "response.completed", "response": RESP},
        ]))
        assert [type(e) for e in events] == [MessageStart, BlockStart, TextDelta, TextDelta, BlockStop, MessageStop]


class TestStrictness:
    def test_sequence_numbers_must_increase(self) -> None:
        events = stream_with_everything()
        events[5]["sequence_number"] = 3
        out = response_events(events)
        assert isinstance(out[-1], StreamError) and "sequence_number 3 after 4" in out[-1].error.message

    def test_a_stream_without_a_terminal_event_is_an_error(self) -> None:
        out = response_events(stream_with_everything()[:-1])
        assert isinstance(out[-1], StreamError) and out[-1].error.code == "bad_gateway"
        assert "before response.completed" in out[-1].error.message

    def test_a_delta_for_a_closed_item_is_an_error(self) -> None:
        events = stream_with_everything()
        late = {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1, "delta": "late"}
        events.insert(9, late)
        out = response_events(numbered(events))
        assert isinstance(out[-1], StreamError) and "msg_1" in out[-1].error.message

    def test_malformed_event(self) -> None:
        out = decode(b'event: response.created\ndata: {"type": "response.created",\n\n')
        assert isinstance(out[-1], StreamError) and "malformed" in out[-1].error.message


class TestTerminals:
    def test_incomplete_is_max_tokens_or_refusal(self) -> None:
        for reason, stop in (("max_output_tokens", "max_tokens"), ("content_filter", "refusal")):
            out = response_events([{"type": "response.incomplete", "response": {
                **RESP, "status": "incomplete", "incomplete_details": {"reason": reason}}}])
            assert out[-1] == MessageStop(stop_reason=stop)

    @pytest.mark.parametrize(("event", "code"), [
        ({"type": "response.failed", "response": {**RESP, "status": "failed", "error": {
            "code": "rate_limit_exceeded", "message": "Rate limit reached. Please try again in 2.5s."}}}, "rate_limit"),
        ({"type": "response.failed", "response": {**RESP, "status": "failed", "error": {
            "code": "server_is_overloaded", "message": "busy"}}}, "overloaded"),
        ({"type": "error", "code": "context_length_exceeded", "message": "too long", "param": None},
         "context_length_exceeded"),
        ({"type": "error", "code": "server_error", "message": "boom", "param": None}, "api_error"),
    ])
    def test_failures(self, event: dict, code: str) -> None:
        out = response_events([{"type": "response.created", "response": RESP}, event])
        assert isinstance(out[-1], StreamError) and out[-1].error.code == code


class TestAgainstTheSimulator:
    """The simulator's own streams decode to the planned answer, in every flavour."""

    @pytest.mark.parametrize("flavour", ["deepseek", "openai", "llamacpp"])
    def test_flavours(self, flavour: str) -> None:
        sim = Simulator(SimConfig(responses_flavour=flavour))
        tools = [{"type": "function", "name": "shell", "parameters": {
            "type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}}}}]
        body = {"model": "deepseek-v4-pro", "stream": True, "store": False, "tools": tools,
                "include": ["reasoning.encrypted_content"], "reasoning": {"effort": "high", "summary": "auto"},
                "input": [{"type": "message", "role": "user", "content": "SIM:shell ls -la"}]}
        answer = sim.respond("POST", "/v1/responses", {}, msgspec.json.encode(body))
        assert answer.status == 200, answer.chunks
        data = b"".join(piece for _, piece in answer.chunks)
        assert b"[DONE]" not in data
        events = decode(data, 40, seed=3)
        assert events[-1] == MessageStop(stop_reason="tool_use")
        thinking = "".join(e.text for e in events if isinstance(e, ThinkingDelta))
        assert thinking and "shell" in thinking
        call = next(e for e in events if isinstance(e, BlockStart) and e.block == "tool_call")
        args = "".join(e.fragment for e in events if isinstance(e, ToolArgsDelta))
        assert call.name == "shell" and json.loads(args) == {"command": ["bash", "-lc", "ls -la"]}
        seals = [e for e in events if isinstance(e, UpstreamSeal)]
        assert len(seals) == (0 if flavour == "llamacpp" else 1)


def _merged(events: list) -> list:
    """Adjacent deltas of one block joined (a split changes how text is cut, nothing else)."""
    out: list = []
    for e in events:
        prev = out[-1] if out else None
        if type(e) is type(prev) and isinstance(e, (TextDelta, ThinkingDelta)) and e.index == prev.index:
            out[-1] = type(e)(index=e.index, text=prev.text + e.text)
        elif type(e) is type(prev) and isinstance(e, ToolArgsDelta) and e.index == prev.index:
            out[-1] = ToolArgsDelta(index=e.index, fragment=prev.fragment + e.fragment)
        else:
            out.append(e)
    return out
