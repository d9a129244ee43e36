"""Responses encoding: SSE event sequences validated by the openai SDK's own models, the collector,
error bodies, /v1/models, and a round trip of our output back through the decoder."""

from __future__ import annotations

import json
import random
from typing import Any, get_args

import httpx
import hypothesis
import msgspec
import hypothesis.strategies as st
import openai
import pydantic
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from openai.types.responses.response_error import ResponseError

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
from pipeline.model import ThinkingPart, ToolCallPart, ToolChoice
from pipeline.protocols.base import ModelInfo
from pipeline.protocols.responses import ResponsesCodec, ResponsesCollector, ResponsesStreamEncoder, decode_request
from pipeline.protocols.responses.argstream import InputStreamer, decode_input
from pipeline.protocols.responses.core import END_OF_STREAM

STREAM_EVENT = pydantic.TypeAdapter(ResponseStreamEvent)
SDK_CODES = set(get_args(ResponseError.model_fields["code"].annotation))
PATCH = '*** Begin Patch\n*** Add File: "a b.py"\n+print("héllo \\ 😀")\n*** End Patch\n'
TOOLS = [
    {"type": "function", "name": "shell", "parameters": {"type": "object"}},
    {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark", "definition": "x"}},
    {"type": "namespace", "name": "mcp__github", "tools": [{"type": "function", "name": "create_issue"}]},
    {"type": "local_shell"},
]


def make_request(**extra: Any):
    body = {"model": "deepseek-v4-pro", "input": "hi", "tools": TOOLS, **extra}
    return decode_request(json.dumps(body).encode())


REQUEST = make_request()


def sdk_checkable(response: dict[str, Any]) -> dict[str, Any]:
    """Codex's failure codes (context_length_exceeded, server_is_overloaded, ...) are not in the
    SDK's ``ResponseError.code`` Literal; the SDK parses streams without validating, so the code
    is swapped only for the validation (and asserted separately by the tests)."""
    error = response.get("error")
    if error is None or error["code"] in SDK_CODES:
        return response
    return {**response, "error": {**error, "code": "server_error"}}


def parse(frames: list[bytes]) -> list[dict[str, Any]]:
    """Check the framing, validate every event with the SDK's models, return the JSON objects."""
    events = []
    for frame in frames:
        assert frame.endswith(b"\n\n")
        head, data = frame[:-2].split(b"\n", 1)
        assert head.startswith(b"event: ") and data.startswith(b"data: ")
        obj = json.loads(data[6:])
        assert obj["type"] == head[7:].decode()
        if "response" in obj:
            patched = {**obj, "response": sdk_checkable(obj["response"])}
            STREAM_EVENT.validate_json(json.dumps(patched))
            Response.model_validate(patched["response"])
        else:
            STREAM_EVENT.validate_json(data[6:])
        events.append(obj)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def run(events: list[Event], request=REQUEST, *, close: bool = True) -> list[dict[str, Any]]:
    encoder = ResponsesStreamEncoder(request)
    frames = [f for event in events for f in encoder.feed(event)]
    if close:
        frames += encoder.close()
    return parse(frames)


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def start() -> list[Event]:
    return [MessageStart(message_id="m1", model="deepseek-v4-pro-upstream")]


def text_block(index: int, *chunks: str) -> list[Event]:
    return [BlockStart(index=index, block="text"), *(TextDelta(index=index, text=c) for c in chunks),
            BlockStop(index=index)]


def thinking_block(index: int, *chunks: str, signature: str | None = None) -> list[Event]:
    events: list[Event] = [BlockStart(index=index, block="thinking")]
    events += [ThinkingDelta(index=index, text=c) for c in chunks]
    if signature is not None:
        events.append(SignatureDelta(index=index, signature=signature))
    return [*events, BlockStop(index=index)]


def tool_block(index: int, name: str, call_id: str, *fragments: str) -> list[Event]:
    return [BlockStart(index=index, block="tool_call", call_id=call_id, name=name),
            *(ToolArgsDelta(index=index, fragment=f) for f in fragments), BlockStop(index=index)]


def stop(reason: str = "end_turn", usage: Usage | None = None) -> list[Event]:
    return [*([usage] if usage else []), MessageStop(stop_reason=reason)]  # type: ignore[arg-type]


def terminal(events: list[dict[str, Any]]) -> dict[str, Any]:
    assert events[-1]["type"] in ("response.completed", "response.incomplete", "response.failed")
    return events[-1]["response"]


def done_items(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["item"] for e in events if e["type"] == "response.output_item.done"]


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


def test_reasoning_without_signature_or_text() -> None:
    events = run(start() + thinking_block(0) + text_block(1, "x") + stop())
    reasoning = done_items(events)[0]
    assert reasoning["encrypted_content"] is None and reasoning["summary"] == []
    assert "response.reasoning_summary_part.added" not in types(events)


@pytest.mark.parametrize("seed", range(8))
def test_custom_apply_patch_call_streams_input(seed: int) -> None:
    args = json.dumps({"input": PATCH}, ensure_ascii=seed % 2 == 0)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(args)), 12))
    fragments = [args[a:b] for a, b in zip([0, *cuts], [*cuts, len(args)])]
    events = run(start() + tool_block(0, "apply_patch", "call_91", *fragments) + stop("tool_use"))
    added = events[2]["item"]
    assert (added["type"], added["name"], added["call_id"], added["input"]) == (
        "custom_tool_call", "apply_patch", "call_91", "")
    deltas = [e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta"]
    assert len(deltas) > 1 and "".join(deltas) == PATCH
    done = next(e for e in events if e["type"] == "response.custom_tool_call_input.done")
    assert done["input"] == PATCH
    item = done_items(events)[0]
    assert item["input"] == PATCH and item["status"] == "completed" and item["id"].startswith("ctc_")
    assert terminal(events)["output"] == [item]


@pytest.mark.parametrize(("args", "expected"), [
    (json.dumps(PATCH), PATCH),  # a bare JSON string
    ("*** Begin Patch\nraw\n*** End Patch", "*** Begin Patch\nraw\n*** End Patch"),  # not JSON at all
    (json.dumps({"patch": PATCH}), PATCH),  # one string value under another key
])
def test_custom_call_tolerates_other_argument_shapes(args: str, expected: str) -> None:
    events = run(start() + tool_block(0, "apply_patch", "c1", args[:5], args[5:]) + stop("tool_use"))
    deltas = [e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta"]
    assert deltas == [expected]
    assert done_items(events)[0]["input"] == expected


def test_namespaced_call_gets_client_name_and_namespace() -> None:
    events = run(start() + tool_block(0, "mcp__github__create_issue", "c1", "{}") + stop("tool_use"))
    for item in (events[2]["item"], done_items(events)[0]):
        assert item["name"] == "create_issue" and item["namespace"] == "mcp__github"


def test_tools_renamed_by_a_stage_still_map_back() -> None:
    """tool_ids renames ToolSpecs for the upstream and maps BlockStart.name back to the original;
    the encoder is built from the renamed request, so it relies on the decoder's client facts."""
    request = make_request(tool_choice={"type": "function", "name": "create_issue"})
    renamed = tuple(msgspec.structs.replace(t, name=f"tool_{i:08x}") for i, t in enumerate(request.tools))
    request = msgspec.structs.replace(request, tools=renamed,
                                      tool_choice=ToolChoice(mode="tool", name="tool_00000002"))
    events = run(start() + tool_block(0, "apply_patch", "c1", json.dumps({"input": "p"}))
                 + tool_block(1, "mcp__github__create_issue", "c2", "{}")
                 + tool_block(2, "local_shell", "c3", '{"command":["ls"]}') + stop("tool_use"), request)
    patch, issue, shell = done_items(events)
    assert (patch["type"], patch["name"], patch["input"]) == ("custom_tool_call", "apply_patch", "p")
    assert (issue["name"], issue["namespace"]) == ("create_issue", "mcp__github")
    assert shell["type"] == "local_shell_call"
    assert terminal(events)["tool_choice"] == {"type": "function", "name": "create_issue"}


def test_unknown_tool_is_a_function_call() -> None:
    events = run(start() + tool_block(0, "mystery", "c1", "{}") + stop("tool_use"))
    item = done_items(events)[0]
    assert (item["type"], item["name"]) == ("function_call", "mystery") and "namespace" not in item


def test_missing_call_id_is_generated_once() -> None:
    events = run(start() + [BlockStart(index=0, block="tool_call", name="shell"), BlockStop(index=0)]
                 + stop("tool_use"))
    call_ids = {events[2]["item"]["call_id"], done_items(events)[0]["call_id"]}
    assert len(call_ids) == 1 and call_ids.pop().startswith("call_")


def test_parallel_calls_in_order() -> None:
    events = run(start() + text_block(0, "Two things.") + tool_block(1, "shell", "c1", '{"cmd":"a"}')
                 + tool_block(2, "shell", "c2", '{"cmd":"b"}') + stop("tool_use"))
    items = done_items(events)
    assert [(i["type"], i.get("call_id")) for i in items] == [("message", None), ("function_call", "c1"),
                                                            ("function_call", "c2")]
    dones = [e["output_index"] for e in events if e["type"] == "response.output_item.done"]
    assert dones == [0, 1, 2]
    assert terminal(events)["output"] == items
    assert len({i["id"] for i in items}) == 3


def test_local_shell_call_and_fallback() -> None:
    events = run(start() + tool_block(0, "local_shell", "ls1", '{"command":["bash","-lc","ls"],',
                                      '"workdir":"/repo","timeout_ms":5000}')
                 + tool_block(1, "local_shell", "ls2", '{"command":"ls"}') + stop("tool_use"))
    assert types(events)[2:4] == ["response.output_item.added", "response.output_item.done"]
    shell, fallback = done_items(events)
    assert shell["type"] == "local_shell_call" and shell["call_id"] == "ls1"
    assert shell["action"] == {"type": "exec", "command": ["bash", "-lc", "ls"], "timeout_ms": 5000,
                               "working_directory": "/repo", "env": {}, "user": None}
    assert (fallback["type"], fallback["name"], fallback["arguments"]) == (
        "function_call", "local_shell", '{"command":"ls"}')


# ---------------------------------------------------------------- stops, usage, heartbeats


def test_no_usage_is_null() -> None:
    assert terminal(run(start() + text_block(0, "x") + stop()))["usage"] is None


def test_max_tokens_after_text_is_completed() -> None:
    final = terminal(run(start() + text_block(0, "partial answ") + stop("max_tokens")))
    assert final["status"] == "completed" and final["incomplete_details"] is None


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
    encoder = ResponsesStreamEncoder(REQUEST)
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


# ---------------------------------------------------------------- errors in the stream


@pytest.mark.parametrize(("code", "expected"), [
    ("context_length_exceeded", "context_length_exceeded"),
    ("rate_limit", "rate_limit_exceeded"),
    ("overloaded", "server_is_overloaded"),
    ("timeout", "server_is_overloaded"),
    ("bad_gateway", "server_is_overloaded"),
    ("billing", "insufficient_quota"),
    ("invalid_request", "invalid_prompt"),
    ("unprocessable", "invalid_prompt"),
    ("authentication", "invalid_prompt"),
    ("api_error", "server_error"),
])
def test_stream_error_mapping(code: str, expected: str) -> None:
    events = run(start() + [StreamError(error=ErrorInfo(code=code, message="upstream said no"))])
    assert types(events)[-2:] == ["error", "response.failed"]
    assert events[-2]["code"] == expected and events[-2]["param"] is None
    final = terminal(events)
    assert final["status"] == "failed" and final["error"]["code"] == expected


def test_rate_limit_message_carries_retry_hint() -> None:
    events = run(start() + [StreamError(error=ErrorInfo(code="rate_limit", message="Slow down", retry_after_s=2.5))])
    assert terminal(events)["error"]["message"] == "Slow down. Please try again in 2.5s."


def test_error_mid_text_leaves_items_incomplete() -> None:
    events = run(start() + text_block(0, "done") + [BlockStart(index=1, block="text"), TextDelta(index=1, text="par")]
                 + [StreamError(error=ErrorInfo(code="overloaded", message="busy"))])
    assert len(done_items(events)) == 1
    output = terminal(events)["output"]
    assert [o["status"] for o in output] == ["completed", "incomplete"]
    assert output[1]["content"][0]["text"] == "par"


def test_error_after_a_held_call_does_not_announce_it() -> None:
    encoder = ResponsesStreamEncoder(REQUEST)
    frames = [f for e in start() + tool_block(0, "shell", "c1", "{}") for f in encoder.feed(e)]
    frames += encoder.error(ErrorInfo(code="api_error", message="boom"))
    events = parse(frames)
    assert done_items(events) == []
    assert terminal(events)["output"][0]["status"] == "incomplete"


def test_error_before_any_event_still_opens_the_response() -> None:
    encoder = ResponsesStreamEncoder(REQUEST)
    events = parse(encoder.error(ErrorInfo(code="timeout", message="upstream timed out")))
    assert types(events) == ["response.created", "response.in_progress", "error", "response.failed"]


def test_close_without_stop_fails() -> None:
    events = run(start() + text_block(0, "x"))
    final = terminal(events)
    assert final["error"] == {"code": "server_error", "message": END_OF_STREAM}


# ---------------------------------------------------------------- the official SDK end to end


def sdk_stream(body: bytes):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = openai.OpenAI(api_key="test", base_url="http://gateway.test/v1", http_client=http)
    return client.responses.stream(model="deepseek-v4-pro", input="hi")


def test_openai_sdk_stream_helper_accepts_the_stream() -> None:
    encoder = ResponsesStreamEncoder(REQUEST)
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
    encoder = ResponsesStreamEncoder(REQUEST)
    script = start() + [StreamError(error=ErrorInfo(code="overloaded", message="busy"))]
    body = b"".join(f for e in script for f in encoder.feed(e))
    with sdk_stream(body) as stream:
        seen = [event.type for event in stream]
        with pytest.raises(RuntimeError, match="response.completed"):
            stream.get_final_response()
    assert seen[-2:] == ["error", "response.failed"]


# ---------------------------------------------------------------- collector


def collect(events: list[Event], request=REQUEST) -> dict[str, Any]:
    collector = ResponsesCollector(request)
    for event in events:
        collector.feed(event)
    body = collector.body()
    parsed = json.loads(body)
    Response.model_validate_json(json.dumps(sdk_checkable(parsed)))
    return parsed


def test_collector_full_response() -> None:
    body = collect(start() + thinking_block(0, "t", signature="gw1.Z") + text_block(1, "a", "b")
                   + tool_block(2, "shell", "c1", "{}") + stop("tool_use", Usage(input_tokens=1, output_tokens=2)))
    assert body["status"] == "completed" and body["model"] == "deepseek-v4-pro"
    assert [o["type"] for o in body["output"]] == ["reasoning", "message", "function_call"]
    assert body["output"][0]["encrypted_content"] == "gw1.Z"
    assert body["output"][1]["content"][0]["text"] == "ab"
    assert body["usage"]["total_tokens"] == 3


def test_collector_incomplete_and_failed() -> None:
    assert collect(start() + thinking_block(0, "t") + stop("max_tokens"))["status"] == "incomplete"
    failed = collect(start() + text_block(0, "x")
                     + [StreamError(error=ErrorInfo(code="context_length_exceeded", message="too long"))])
    assert failed["status"] == "failed" and failed["error"]["code"] == "context_length_exceeded"
    ended = collect(start())
    assert ended["status"] == "failed" and ended["error"]["message"] == END_OF_STREAM


def test_codec_wires_everything() -> None:
    codec = ResponsesCodec()
    assert codec.name == "responses"
    assert [(e.method, e.path, e.kind) for e in codec.endpoints] == [
        ("POST", "/v1/responses", "generate"), ("GET", "/v1/models", "models")]
    assert isinstance(codec.stream_encoder(REQUEST), ResponsesStreamEncoder)
    assert isinstance(codec.collector(REQUEST), ResponsesCollector)
    assert json.loads(codec.render_count(42)) == {"input_tokens": 42, "object": "response.input_tokens"}


# ---------------------------------------------------------------- HTTP errors and models


@pytest.mark.parametrize(("err", "status", "kind", "code"), [
    (RequestError("bad field"), 400, "invalid_request_error", None),
    (UpstreamError("too long", code="context_length_exceeded"), 400, "invalid_request_error",
     "context_length_exceeded"),
    (UpstreamError("key", code="authentication"), 401, "invalid_request_error", "invalid_api_key"),
    (UpstreamError("pay", code="billing"), 402, "insufficient_quota", "insufficient_quota"),
    (UpstreamError("busy", code="overloaded"), 503, "server_error", "server_is_overloaded"),
    (UpstreamError("slow", code="timeout"), 504, "server_error", None),
    (GatewayError("bug"), 500, "server_error", None),
])
def test_render_error(err: GatewayError, status: int, kind: str, code: str | None) -> None:
    rendered = ResponsesCodec().render_error(err)
    assert rendered.status == status
    assert (b"content-type", b"application/json") in rendered.headers
    assert json.loads(rendered.body) == {"error": {"message": err.message, "type": kind, "param": None,
                                                   "code": code}}


def test_render_rate_limit_with_retry_after() -> None:
    rendered = ResponsesCodec().render_error(UpstreamError("Rate limited", code="rate_limit", retry_after_s=1.2))
    assert rendered.status == 429
    assert (b"retry-after", b"2") in rendered.headers and (b"retry-after-ms", b"1200") in rendered.headers
    error = json.loads(rendered.body)["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert error["message"] == "Rate limited. Please try again in 1.2s."


def test_render_models() -> None:
    models = [ModelInfo(id="deepseek-v4-pro", upstream_model="deepseek-v4-pro", context_window=1_000_000,
                        max_output_tokens=384_000)]
    body = json.loads(ResponsesCodec().render_models(models))
    assert body == {"object": "list", "data": [{
        "id": "deepseek-v4-pro", "object": "model", "created": 0, "owned_by": "gateway",
        "context_window": 1_000_000, "max_output_tokens": 384_000}]}
    openai.types.Model.model_validate(body["data"][0])


# ---------------------------------------------------------------- round trip: our output as next input


def test_output_items_round_trip_through_the_decoder() -> None:
    """What Codex echoes back (done items, ids dropped) decodes to the same calls and envelope."""
    events = run(start() + thinking_block(0, "plan", signature="gw1.ROUND") + text_block(1, "Patching.")
                 + tool_block(2, "apply_patch", "c1", json.dumps({"input": PATCH}))
                 + tool_block(3, "mcp__github__create_issue", "c2", '{"title":"x"}')
                 + tool_block(4, "local_shell", "c3", '{"command":["ls"]}') + stop("tool_use"))
    echoed = [{k: v for k, v in item.items() if k != "id"} for item in done_items(events)]
    outputs = [{"type": "custom_tool_call_output", "call_id": "c1", "output": "ok"},
               {"type": "function_call_output", "call_id": "c2", "output": "ok"},
               {"type": "function_call_output", "call_id": "c3", "output": "ok"}]
    body = {"model": "deepseek-v4-pro", "input": [{"role": "user", "content": "go"}, *echoed, *outputs],
            "tools": TOOLS}
    request = decode_request(json.dumps(body).encode())
    step = request.messages[1]
    assert step.parts[0] == ThinkingPart("plan", "gw1.ROUND")
    calls = [p for p in step.parts if isinstance(p, ToolCallPart)]
    assert [(c.id, c.name, c.origin) for c in calls] == [
        ("c1", "apply_patch", "custom"), ("c2", "mcp__github__create_issue", "function"),
        ("c3", "local_shell", "local_shell")]
    assert json.loads(calls[0].arguments) == {"input": PATCH}
    assert [m.role for m in request.messages[2:]] == ["tool", "tool", "tool"]


# ---------------------------------------------------------------- the custom input streamer


@pytest.mark.parametrize("seed", range(30))
def test_input_streamer_random_splits(seed: int) -> None:
    rng = random.Random(seed)
    text = "".join(rng.choice(['a', '"', '\\', '\n', 'é', '😀', '\u2028', ' ', '\t']) for _ in range(80))
    args = json.dumps({"input": text}, ensure_ascii=rng.random() < 0.5)
    streamer, shown, i = InputStreamer(), [], 0
    while i < len(args):
        step = rng.randint(1, 9)
        shown.append(streamer.feed(args[i:i + step]))
        i += step
    value, rest = streamer.finish()
    assert value == text and "".join(shown) + rest == text


def test_input_streamer_byte_by_byte_and_whole() -> None:
    args = json.dumps({"input": PATCH})
    streamer = InputStreamer()
    assert "".join(streamer.feed(ch) for ch in args) == PATCH
    whole = InputStreamer()
    assert whole.feed(args) == PATCH and whole.finish() == (PATCH, "")


def test_input_streamer_stops_on_other_shapes() -> None:
    streamer = InputStreamer()
    assert streamer.feed('{"other": 1, "input": "x"}') == ""
    assert streamer.finish() == ("x", "x")
    assert decode_input("[1, 2]") == "[1, 2]" and decode_input('{"a": 1}') == '{"a": 1}'


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(text=st.text(), cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=12),
                  ascii_only=st.booleans())
def test_input_streamer_any_text_any_split(text: str, cuts: list[int], ascii_only: bool) -> None:
    args = json.dumps({"input": text}, ensure_ascii=ascii_only)
    points = sorted({c for c in cuts if c < len(args)})
    streamer = InputStreamer()
    shown = [streamer.feed(args[a:b]) for a, b in zip([0, *points], [*points, len(args)])]
    value, rest = streamer.finish()
    assert value == text and "".join(shown) + rest == text
