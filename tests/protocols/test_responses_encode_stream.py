"""Responses stream lifecycles: event sequences for text and reasoning, stop reasons, usage,
heartbeats, echoed request settings, and the official openai SDK consuming our streams."""

from __future__ import annotations

import json

import httpx
import msgspec
import openai
import pytest

from pipeline.events import ErrorInfo, Heartbeat, StreamError, TextDelta, Usage
from pipeline.protocols.responses import ResponsesStreamEncoder
from tests.protocols.responses_encode_helpers import (
    PATCH, REQUEST, done_items, make_request, parse, run, start, stop, terminal, text_block, thinking_block,
    tool_block, types,
)


# ---------------------------------------------------------------- lifecycles


def test_text_answer_full_lifecycle() -> None:
    events = run(start() + text_block(0, "Hel", "lo") + stop(usage=Usage(input_tokens=10, output_tokens=2)))
    assert types(events) == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.content_part.added", "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed",
    ]
    created = events[0]["response"]
    assert created["status"] == "in_progress" and created["output"] == [] and created["usage"] is None
    assert created["model"] == "deepseek-v4-pro"  # the client's name, not the upstream's
    assert created["id"].startswith("resp_") and created["object"] == "response"
    assert events[4]["logprobs"] == [] and events[6]["text"] == "Hello"
    final = terminal(events)
    assert final["id"] == created["id"] and final["status"] == "completed"
    assert final["output"] == [done_items(events)[0]]
    assert final["output"][0]["content"] == [{"type": "output_text", "text": "Hello", "annotations": []}]
    assert final["output"][0]["id"].startswith("msg_")
    assert final["usage"] == {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                              "output_tokens": 2, "output_tokens_details": {"reasoning_tokens": 0},
                              "total_tokens": 12}


def test_reasoning_signature_and_function_call() -> None:
    events = run(start() + thinking_block(0, "Run ", "tests.", signature="gw1.ENVELOPE")
                 + tool_block(1, "shell", "call_7f", '{"cmd":', '"pytest"}')
                 + stop("tool_use", Usage(input_tokens=50, output_tokens=20, cached_input_tokens=32,
                                          reasoning_tokens=12)))
    assert types(events)[2:] == [
        "response.output_item.added", "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta", "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done", "response.reasoning_summary_part.done",
        "response.output_item.done", "response.output_item.added",
        "response.function_call_arguments.delta", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done", "response.completed",
    ]
    added = events[2]["item"]
    assert added["type"] == "reasoning" and added["summary"] == [] and added["status"] == "in_progress"
    reasoning, call = done_items(events)
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Run tests."}]
    assert reasoning["encrypted_content"] == "gw1.ENVELOPE"
    assert call == {"type": "function_call", "id": call["id"], "call_id": "call_7f", "name": "shell",
                    "arguments": '{"cmd":"pytest"}', "status": "completed"}
    assert events[12]["name"] == "shell" and events[12]["arguments"] == '{"cmd":"pytest"}'
    final = terminal(events)
    assert final["output"] == [reasoning, call]
    assert final["usage"]["input_tokens_details"]["cached_tokens"] == 32
    assert final["usage"]["output_tokens_details"]["reasoning_tokens"] == 12
    assert final["usage"]["total_tokens"] == 70
    assert {e["output_index"] for e in events[2:9]} == {0} and events[9]["output_index"] == 1


def test_summary_none_withholds_the_reasoning_text_but_keeps_its_envelope() -> None:
    """``reasoning.summary: none`` or absent: no summary part or delta, the item's summary empty,
    its ``encrypted_content`` the envelope all the same (the replay needs only that)."""
    decoded = make_request(reasoning={"effort": "high", "summary": "none"})
    script = start() + thinking_block(0, "secret ", "plan", signature="gw2.ENV") + text_block(1, "ok") + stop()
    events = run(script, decoded)
    assert not [t for t in types(events) if "reasoning" in t]
    reasoning, message = done_items(events)
    assert reasoning == {"type": "reasoning", "id": reasoning["id"], "summary": [], "encrypted_content": "gw2.ENV",
                         "status": "completed"}
    assert terminal(events)["output"] == [reasoning, message]
    assert "secret" not in json.dumps(events)
    shown = run(script, make_request(reasoning={"effort": "high", "summary": "auto"}))
    assert done_items(shown)[0]["summary"] == [{"type": "summary_text", "text": "secret plan"}]
    # No summary asked (Codex leaves the field out for its "none"; the API then writes none).
    for absent in ({"effort": "high"}, None):
        quiet = run(script, make_request(reasoning=absent))
        assert done_items(quiet)[0]["summary"] == [] and done_items(quiet)[0]["encrypted_content"] == "gw2.ENV"


def test_max_output_tokens_echoes_the_clients_value_not_the_budget() -> None:
    """A stage's budget (``token_budget`` fills ``max_output_tokens`` in) is not the client's."""
    request, echo = make_request()
    budgeted = msgspec.structs.replace(request, max_output_tokens=393_216)
    assert terminal(run(start() + stop(), (budgeted, echo)))["max_output_tokens"] is None
    request, echo = make_request(max_output_tokens=300)
    budgeted = msgspec.structs.replace(request, max_output_tokens=250)
    assert terminal(run(start() + stop(), (budgeted, echo)))["max_output_tokens"] == 300


def test_reasoning_without_signature_or_text() -> None:
    events = run(start() + thinking_block(0) + text_block(1, "x") + stop())
    reasoning = done_items(events)[0]
    assert reasoning["encrypted_content"] is None and reasoning["summary"] == []
    assert "response.reasoning_summary_part.added" not in types(events)


# ---------------------------------------------------------------- stops, usage, heartbeats


def test_no_usage_is_null() -> None:
    assert terminal(run(start() + text_block(0, "x") + stop()))["usage"] is None


def test_max_tokens_after_text_is_incomplete() -> None:
    events = run(start() + text_block(0, "partial answ") + stop("max_tokens"))
    final = terminal(events)
    assert events[-1]["type"] == "response.incomplete"
    assert final["status"] == "incomplete" and final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["output"][0]["content"][0]["text"] == "partial answ"


def test_max_tokens_cutting_a_call_never_announces_it() -> None:
    events = run(start() + text_block(0, "ok") + tool_block(1, "shell", "c1", '{"cmd": "rm -rf bu')
                 + stop("max_tokens", Usage(input_tokens=5, output_tokens=9)))
    assert all(e["item"]["type"] != "function_call" for e in events if e["type"] == "response.output_item.done")
    assert "response.function_call_arguments.done" not in types(events)
    final = terminal(events)
    assert final["status"] == "incomplete" and final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["output"][1]["status"] == "incomplete" and final["output"][1]["call_id"] == "c1"
    assert final["usage"]["output_tokens"] == 9


def test_max_tokens_right_after_a_whole_call_is_completed() -> None:
    events = run(start() + tool_block(0, "shell", "c1", '{"cmd":"ls"}') + stop("max_tokens"))
    assert done_items(events)[0]["call_id"] == "c1"
    assert terminal(events)["status"] == "completed"


def test_max_tokens_during_reasoning_is_incomplete() -> None:
    final = terminal(run(start() + thinking_block(0, "hmm") + stop("max_tokens")))
    assert final["status"] == "incomplete" and final["incomplete_details"]["reason"] == "max_output_tokens"


def test_refusal_is_content_filter() -> None:
    final = terminal(run(start() + text_block(0, "no") + stop("refusal")))
    assert final["status"] == "incomplete" and final["incomplete_details"]["reason"] == "content_filter"


def test_stop_sequence_completed() -> None:
    assert terminal(run(start() + text_block(0, "x") + stop("stop_sequence")))["status"] == "completed"


def test_heartbeats_are_in_progress_events() -> None:
    events = run([Heartbeat(), *start(), Heartbeat()] + text_block(0, "x") + [Heartbeat(), *stop()])
    assert types(events)[:3] == ["response.created", "response.in_progress", "response.in_progress"]
    assert types(events).count("response.in_progress") == 3  # the first heartbeat opened the response
    assert types(events)[-2] == "response.in_progress"  # the heartbeat after the text block


def test_events_after_terminal_are_ignored() -> None:
    encoder = ResponsesStreamEncoder(*REQUEST)
    frames = [f for e in start() + text_block(0, "x") + stop() for f in encoder.feed(e)]
    assert encoder.feed(TextDelta(index=0, text="late")) == []
    assert encoder.error(ErrorInfo(code="api_error", message="late")) == []
    assert encoder.close() == []
    assert parse(frames)[-1]["type"] == "response.completed"


def test_response_echoes_request_settings() -> None:
    request = make_request(parallel_tool_calls=False, tool_choice={"type": "function", "name": "create_issue"},
                           max_output_tokens=300, temperature=0.5, metadata={"k": "v"})
    final = terminal(run(start() + text_block(0, "x") + stop(), request))
    assert final["parallel_tool_calls"] is False
    assert final["tool_choice"] == {"type": "function", "name": "create_issue"}
    assert (final["max_output_tokens"], final["temperature"], final["metadata"]) == (300, 0.5, {"k": "v"})
    custom = make_request(tool_choice={"type": "custom", "name": "apply_patch"})
    assert terminal(run(start() + stop(), custom))["tool_choice"] == {"type": "custom", "name": "apply_patch"}


# ---------------------------------------------------------------- the official SDK end to end


def sdk_stream(body: bytes):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = openai.OpenAI(api_key="test", base_url="http://gateway.test/v1", http_client=http)
    return client.responses.stream(model="deepseek-v4-pro", input="hi")


def test_openai_sdk_stream_helper_accepts_the_stream() -> None:
    encoder = ResponsesStreamEncoder(*REQUEST)
    script = (start() + thinking_block(0, "plan", signature="gw1.S") + text_block(1, "Doing it.")
              + tool_block(2, "apply_patch", "c1", json.dumps({"input": PATCH}))
              + tool_block(3, "mcp__github__create_issue", "c2", '{"t":1}')
              + stop("tool_use", Usage(input_tokens=3, output_tokens=4)))
    body = b"".join(f for e in script for f in encoder.feed(e)) + b"".join(encoder.close())
    with sdk_stream(body) as stream:
        seen = [event.type for event in stream]
        final = stream.get_final_response()
    assert seen[-1] == "response.completed"
    assert [o.type for o in final.output] == ["reasoning", "message", "custom_tool_call", "function_call"]
    assert final.output[0].encrypted_content == "gw1.S"
    assert final.output[2].input == PATCH
    assert final.output_text == "Doing it."


def test_openai_sdk_yields_failure_events_without_raising() -> None:
    """Why both `error` and `response.failed` are sent: the SDK raises on neither."""
    encoder = ResponsesStreamEncoder(*REQUEST)
    script = start() + [StreamError(error=ErrorInfo(code="overloaded", message="busy"))]
    body = b"".join(f for e in script for f in encoder.feed(e))
    with sdk_stream(body) as stream:
        seen = [event.type for event in stream]
        with pytest.raises(RuntimeError, match="response.completed"):
            stream.get_final_response()
    assert seen[-2:] == ["error", "response.failed"]
