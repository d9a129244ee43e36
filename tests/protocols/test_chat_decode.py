"""Upstream side of the Chat codec: SSE streams and non-streaming bodies → neutral events.

Every stream fixture (chat_streams.py) is fed whole, byte by byte and in 50 seeded random splits
through ``SseDecoder`` + ``ChatStreamDecoder``; all must give identical, well-formed event streams.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

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
    Usage,
)
from pipeline.protocols.chat import ChatStreamDecoder, decode_response
from pipeline.sse import SseDecoder
from tests.protocols.chat_streams import (
    DEEPSEEK,
    DONE,
    DS_USAGE,
    DS_USAGE_EVENT,
    ERROR_CHUNK,
    KEEP_ALIVE,
    OLLAMA,
    OLLAMA_STREAM,
    PARALLEL,
    REASONING_TEXT,
    SINGLE_TOOL,
    STREAMS,
    TRUNCATED,
    VLLM,
    call,
    check_well_formed,
    chunk,
    random_split,
    run,
)


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_whole_bytewise_and_random_splits_agree(name: str) -> None:
    raw, profile = STREAMS[name]
    whole = run([raw], profile)
    check_well_formed(whole)
    assert run([raw[i : i + 1] for i in range(len(raw))], profile) == whole
    for seed in range(50):
        assert run(random_split(raw, seed), profile) == whole, f"seed {seed}"


def test_reasoning_then_text_with_usage_on_finish_chunk() -> None:
    assert run([REASONING_TEXT]) == [
        MessageStart(message_id="a1", model="deepseek-v4-pro"),
        BlockStart(index=0, block="thinking"),
        ThinkingDelta(index=0, text="The user wants"),
        ThinkingDelta(index=0, text=" a greeting."),
        BlockStop(index=0),
        BlockStart(index=1, block="text"),
        TextDelta(index=1, text="Hello"),
        TextDelta(index=1, text=", wörld \u2028 ✓"),
        BlockStop(index=1),
        DS_USAGE_EVENT,
        MessageStop(stop_reason="end_turn"),
    ]


def test_single_tool_call_streams_live_with_usage_chunk_after_finish() -> None:
    assert run([SINGLE_TOOL]) == [
        MessageStart(message_id="a1", model="deepseek-v4-pro"),
        BlockStart(index=0, block="thinking"),
        ThinkingDelta(index=0, text="Run the tests."),
        BlockStop(index=0),
        BlockStart(index=1, block="text"),
        TextDelta(index=1, text="Running"),
        BlockStop(index=1),
        BlockStart(index=2, block="tool_call", call_id="call_7f2a", name="shell_command"),
        ToolArgsDelta(index=2, fragment='{"command":'),
        ToolArgsDelta(index=2, fragment='"pytest -q"}'),
        BlockStop(index=2),
        Usage(input_tokens=10, output_tokens=4, cached_input_tokens=8, reasoning_tokens=2),
        MessageStop(stop_reason="tool_use"),
    ]


def test_interleaved_parallel_calls_first_live_others_whole_in_index_order() -> None:
    assert run([PARALLEL])[1:] == [
        BlockStart(index=0, block="tool_call", call_id="call_a", name="read"),
        ToolArgsDelta(index=0, fragment='{"pa'),
        ToolArgsDelta(index=0, fragment='th":"x"}'),
        BlockStop(index=0),
        BlockStart(index=1, block="tool_call", call_id="call_b", name="grep"),
        ToolArgsDelta(index=1, fragment='{"pattern":"y"}'),
        BlockStop(index=1),
        BlockStart(index=2, block="tool_call", call_id="call_c", name="ls"),
        ToolArgsDelta(index=2, fragment="{}"),
        BlockStop(index=2),
        Usage(input_tokens=3, output_tokens=2),
        MessageStop(stop_reason="tool_use"),
    ]


def test_ollama_reasoning_field_and_whole_calls() -> None:
    events = run([OLLAMA_STREAM], OLLAMA)
    assert events[0] == MessageStart(message_id="a1", model="qwen3")
    assert events[1:4] == [BlockStart(index=0, block="thinking"), ThinkingDelta(index=0, text="hmm"),
                           BlockStop(index=0)]
    assert [(e.call_id, e.name) for e in events if isinstance(e, BlockStart) and e.block == "tool_call"] == [
        ("call_x1", "f"), ("call_x2", "g")]
    assert [e.fragment for e in events if isinstance(e, ToolArgsDelta)] == ['{"a":1}', '{"b":2}']
    assert events[-2:] == [Usage(input_tokens=7, output_tokens=9), MessageStop(stop_reason="tool_use")]


def test_error_chunk_ends_the_stream_with_a_mapped_code() -> None:
    events = run([ERROR_CHUNK])
    assert isinstance(events[-1], StreamError)
    assert events[-1].error == ErrorInfo(code="overloaded", message="upstream overloaded", status=503)
    assert not any(isinstance(e, TextDelta) and e.text == "ignored" for e in events)


def test_truncated_stream_is_a_bad_gateway_error() -> None:
    events = run([TRUNCATED])
    assert events[-1] == StreamError(
        error=ErrorInfo(code="bad_gateway", message="upstream stream ended before finish_reason", status=502)
    )


def test_done_without_finish_reason_is_an_error() -> None:
    events = run([chunk({"content": "x"}), DONE])
    assert isinstance(events[-1], StreamError) and events[-1].error.code == "bad_gateway"


def test_end_of_bytes_after_finish_without_done_is_fine() -> None:
    events = run([chunk({"content": "x"}), chunk({}, "stop")])
    assert events[-1] == MessageStop(stop_reason="end_turn")


def test_frames_after_done_are_ignored() -> None:
    events = run([chunk({"content": "x"}, "stop"), DONE, chunk({"content": "more"}), DONE])
    assert events[-1] == MessageStop(stop_reason="end_turn")
    assert sum(isinstance(e, TextDelta) for e in events) == 1


def test_malformed_json_is_bad_gateway() -> None:
    events = run([chunk({"content": "x"}), b"data: {not json\n\n", chunk({}, "stop")])
    assert isinstance(events[-1], StreamError)
    assert events[-1].error.code == "bad_gateway" and events[-1].error.status == 502
    assert "malformed" in events[-1].error.message


def test_wrong_types_in_a_chunk_are_bad_gateway() -> None:
    events = run([b'data: {"id":"a","choices":[{"index":0,"delta":{"content":5}}]}\n\n'])
    assert events == [StreamError(error=events[0].error)] and events[0].error.code == "bad_gateway"


def test_insufficient_system_resource_is_overloaded() -> None:
    events = run([chunk({"content": "partial"}), chunk({}, "insufficient_system_resource"), DONE])
    assert events[-1] == StreamError(error=ErrorInfo(
        code="overloaded", message="upstream interrupted generation: insufficient_system_resource", status=503))


@pytest.mark.parametrize(
    ("finish", "reason"),
    [("length", "max_tokens"), ("content_filter", "refusal"), ("stop", "end_turn"), ("tool_calls", "end_turn")],
)
def test_finish_reason_mapping_without_tool_calls(finish: str, reason: str) -> None:
    assert run([chunk({"content": "x"}, finish), DONE])[-1] == MessageStop(stop_reason=reason)


@pytest.mark.parametrize("finish", ["stop", "tool_calls", "function_call"])
def test_finish_reason_with_tool_calls_is_tool_use(finish: str) -> None:
    events = run([chunk({"tool_calls": [call(0, id="c1", name="f", args="{}")]}, finish), DONE])
    assert events[-1] == MessageStop(stop_reason="tool_use")


def test_stop_sequence_detected_at_end_of_text() -> None:
    raw = [chunk({"content": "answer END"}), chunk({"content": "OF"}, "stop"), DONE]
    assert run(raw, stop=("ENDOF", "zzz"))[-1] == MessageStop(stop_reason="stop_sequence", stop_sequence="ENDOF")
    assert [e.text for e in run(raw, stop=("ENDOF",)) if isinstance(e, TextDelta)] == ["answer "]
    assert run(raw, stop=("zzz",))[-1] == MessageStop(stop_reason="end_turn")


def test_missing_and_duplicate_ids_are_generated_unique() -> None:
    events = run([
        chunk({"tool_calls": [call(0, name="f", args="{}")]}),
        chunk({"tool_calls": [call(1, id="dup", name="g", args="{}")]}),
        chunk({"tool_calls": [call(2, id="dup", name="h", args="{}")]}),
        chunk({}, "tool_calls"),
        DONE,
    ])
    ids = [e.call_id for e in events if isinstance(e, BlockStart)]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert ids[1] == "dup"
    for generated in (ids[0], ids[2]):
        assert generated is not None and generated.startswith("call_") and len(generated) == 5 + 24
        int(generated[5:], 16)


def test_id_repeated_on_every_fragment_is_one_call() -> None:
    events = run([
        chunk({"tool_calls": [call(0, id="c1", name="f", args='{"a"')]}),
        chunk({"tool_calls": [call(0, id="c1", args=":1}")]}),
        chunk({}, "tool_calls"),
    ])
    assert [e for e in events if isinstance(e, (BlockStart, ToolArgsDelta))] == [
        BlockStart(index=0, block="tool_call", call_id="c1", name="f"),
        ToolArgsDelta(index=0, fragment='{"a"'),
        ToolArgsDelta(index=0, fragment=":1}"),
    ]


def test_name_arriving_after_first_fragment_opens_the_block_late() -> None:
    events = run([
        chunk({"tool_calls": [call(0, id="c1", args='{"a"')]}),
        chunk({"tool_calls": [call(0, name="f", args=":1}")]}),
        chunk({}, "tool_calls"),
    ])
    assert [e for e in events if isinstance(e, (BlockStart, ToolArgsDelta))] == [
        BlockStart(index=0, block="tool_call", call_id="c1", name="f"),
        ToolArgsDelta(index=0, fragment='{"a"'),
        ToolArgsDelta(index=0, fragment=":1}"),
    ]


def test_text_after_a_tool_call_is_emitted_after_the_calls() -> None:
    events = run([
        chunk({"tool_calls": [call(0, id="c1", name="f", args='{"a"')]}),
        chunk({"content": "note"}),
        chunk({"tool_calls": [call(0, args=":1}")]}),
        chunk({}, "tool_calls"),
    ])
    check_well_formed(events)
    assert [type(e).__name__ for e in events[1:-1]] == [
        "BlockStart", "ToolArgsDelta", "ToolArgsDelta", "BlockStop", "BlockStart", "TextDelta", "BlockStop"]
    assert events[-1] == MessageStop(stop_reason="tool_use")


def test_reasoning_field_variants() -> None:
    # vLLM in transition sends both names with the same text: count it once.
    both = run([chunk({"reasoning": "r1", "reasoning_content": "r1"}, "stop")], VLLM)
    assert [e.text for e in both if isinstance(e, ThinkingDelta)] == ["r1"]
    # The non-profile name is accepted too, and `reasoning` may be an object.
    other = run([chunk({"reasoning": "a"}), chunk({"reasoning": {"text": "b"}}),
                 chunk({"reasoning": {"content": "c"}}, "stop")], DEEPSEEK)
    assert [e.text for e in other if isinstance(e, ThinkingDelta)] == ["a", "b", "c"]


def test_switching_kinds_opens_new_blocks_and_skips_empty_strings() -> None:
    events = run([
        chunk({"reasoning_content": "r", "content": ""}),
        chunk({"content": "t", "reasoning_content": ""}),
        chunk({"reasoning_content": "r2"}),
        chunk({}, "stop"),
    ])
    check_well_formed(events)
    assert [(e.index, e.block) for e in events if isinstance(e, BlockStart)] == [
        (0, "thinking"), (1, "text"), (2, "thinking")]


def test_missing_chunk_id_and_model_are_filled() -> None:
    events = run([b'data: {"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}\n\n'])
    start = events[0]
    assert isinstance(start, MessageStart) and start.message_id.startswith("chatcmpl-") and start.model == ""


def test_usage_falls_back_to_cached_tokens_details() -> None:
    usage = {"prompt_tokens": 100, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 64},
             "completion_tokens_details": None}
    events = run([chunk({"content": "x"}, "stop", usage=usage), DONE])
    assert events[-2] == Usage(input_tokens=100, output_tokens=5, cached_input_tokens=64)


def test_legacy_function_call_delta() -> None:
    events = run([chunk({"function_call": {"name": "f", "arguments": '{"a":'}}),
                  chunk({"function_call": {"arguments": "1}"}}, "function_call")])
    starts = [e for e in events if isinstance(e, BlockStart)]
    assert len(starts) == 1 and starts[0].name == "f" and starts[0].call_id.startswith("call_")
    assert "".join(e.fragment for e in events if isinstance(e, ToolArgsDelta)) == '{"a":1}'
    assert events[-1] == MessageStop(stop_reason="tool_use")


def test_event_error_frame() -> None:
    events = run([b'event: error\ndata: {"error":{"message":"too many","type":"rate_limit_error"}}\n\n'])
    assert events == [StreamError(error=ErrorInfo(code="rate_limit", message="too many", status=429))]


def test_keep_alives_produce_no_events_and_no_heartbeats() -> None:
    events = run([KEEP_ALIVE * 5, chunk({"content": "x"}, "stop"), DONE])
    assert not any(isinstance(e, Heartbeat) for e in events)
    assert [type(e) for e in events] == [MessageStart, BlockStart, TextDelta, BlockStop, MessageStop]


# ---------------------------------------------------------------- non-streaming bodies


def completion_body(message: dict[str, Any], finish: str | None, usage: dict[str, Any] | None = None) -> bytes:
    body: dict[str, Any] = {"id": "a1", "object": "chat.completion", "created": 1, "model": "deepseek-v4-pro",
                            "choices": [{"index": 0, "message": message, "finish_reason": finish}]}
    if usage is not None:
        body["usage"] = usage
    return json.dumps(body).encode()


def test_decode_response_matches_the_equivalent_stream() -> None:
    body = completion_body(
        {"role": "assistant", "content": "Running", "reasoning_content": "Run the tests.",
         "tool_calls": [{"id": "call_1", "type": "function",
                         "function": {"name": "shell", "arguments": '{"command":"pytest"}'}},
                        {"id": "call_2", "type": "function", "function": {"name": "ls", "arguments": "{}"}}]},
        "tool_calls", DS_USAGE)
    stream = run([
        chunk({"reasoning_content": "Run the tests."}),
        chunk({"content": "Running"}),
        chunk({"tool_calls": [call(0, id="call_1", name="shell", args='{"command":"pytest"}'),
                              call(1, id="call_2", name="ls", args="{}")]}),
        chunk({}, "tool_calls", usage=DS_USAGE),
        DONE,
    ])
    events = decode_response(body, DEEPSEEK)
    check_well_formed(events)
    assert events == stream


def test_decode_response_text_and_stop_sequence() -> None:
    events = decode_response(completion_body({"role": "assistant", "content": "a STOP b"}, "stop"), DEEPSEEK,
                             stop=("STOP",))
    assert events[-1] == MessageStop(stop_reason="stop_sequence", stop_sequence="STOP")
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["a "]


def test_stop_string_split_across_deltas_ends_the_answer_there() -> None:
    """The gateway matches stop strings itself (servers strip them): the text before the first
    match is emitted, a possible prefix is held back, and the decoder is done at the match."""
    decoder, frames = ChatStreamDecoder(DEEPSEEK, stop=("</answer>", "zzz")), SseDecoder()
    first = decoder.feed_many(frames.feed(chunk({"content": "yes </ans"})))
    assert [e.text for e in first if isinstance(e, TextDelta)] == ["yes "] and not decoder.done
    rest = decoder.feed_many(frames.feed(chunk({"content": "wer> more"}) + chunk({}, "stop") + DONE))
    assert decoder.done and not [e for e in rest if isinstance(e, TextDelta)]
    assert rest[-1] == MessageStop(stop_reason="stop_sequence", stop_sequence="</answer>")
    assert decoder.finish() == []


def test_held_stop_prefix_that_is_no_match_is_flushed() -> None:
    raw = [chunk({"content": "a </"}), chunk({"content": "b> c </"}), chunk({}, "stop"), DONE]
    events = run(raw, stop=("</answer>",))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "a </b> c </"
    assert events[-1] == MessageStop(stop_reason="end_turn")


def test_decode_response_failures() -> None:
    assert decode_response(b"nope", DEEPSEEK)[0].error.code == "bad_gateway"  # type: ignore[attr-defined]
    no_choices = decode_response(b'{"id":"x","choices":[]}', DEEPSEEK)
    assert isinstance(no_choices[0], StreamError) and "no choices" in no_choices[0].error.message
    err = decode_response(b'{"error":{"message":"ctx","code":"context_length_exceeded"}}', DEEPSEEK)
    assert err == [StreamError(error=ErrorInfo(code="context_length_exceeded", message="ctx", status=400))]
    overloaded = decode_response(completion_body({"content": "x"}, "insufficient_system_resource"), DEEPSEEK)
    assert isinstance(overloaded[-1], StreamError) and overloaded[-1].error.status == 503


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_feed_many_per_read_agrees_with_feed_per_frame(name: str) -> None:
    raw, profile = STREAMS[name]
    whole = run([raw], profile)
    for seed in range(20):
        sse = SseDecoder()
        dec = ChatStreamDecoder(profile)
        events: list[Any] = []
        for piece in random_split(raw, seed):
            events += dec.feed_many(sse.feed(piece))
        events += dec.feed_many(sse.close()) + dec.finish()
        assert events == whole, f"seed {seed}"
