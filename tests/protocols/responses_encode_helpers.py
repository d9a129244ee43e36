"""Shared helpers for the Responses encoder tests: neutral event-script builders, ``run`` through
``ResponsesStreamEncoder``, and ``parse`` checking framing and every event against the openai SDK.
"""

from __future__ import annotations

import json
from typing import Any, get_args

import pydantic
from openai.types.responses import Response, ResponseStreamEvent
from openai.types.responses.response_error import ResponseError

from pipeline.events import (
    BlockStart,
    BlockStop,
    Event,
    MessageStart,
    MessageStop,
    SignatureDelta,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    Usage,
)
from pipeline.model import ChatRequest
from pipeline.protocols.responses import ResponsesStreamEncoder, decode_request
from pipeline.protocols.responses.client_decode_echo import ResponsesEcho

STREAM_EVENT = pydantic.TypeAdapter(ResponseStreamEvent)
SDK_CODES = set(get_args(ResponseError.model_fields["code"].annotation))
PATCH = '*** Begin Patch\n*** Add File: "a b.py"\n+print("héllo \\ 😀")\n*** End Patch\n'
TOOLS = [
    {"type": "function", "name": "shell", "parameters": {"type": "object"}},
    {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark", "definition": "x"}},
    {"type": "namespace", "name": "mcp__github", "tools": [{"type": "function", "name": "create_issue"}]},
    {"type": "local_shell"},
]


def make_request(**extra: Any) -> tuple[ChatRequest, ResponsesEcho]:
    """A decoded request offering ``TOOLS`` and asking for reasoning summaries (as Codex does with
    the setup catalog): the neutral request and the decoder's echo."""
    body = {"model": "deepseek-v4-pro", "input": "hi", "tools": TOOLS, "reasoning": {"summary": "auto"}, **extra}
    return decode_request(json.dumps(body).encode())


REQUEST = make_request()  # (request, echo), as the encoders take them: ResponsesStreamEncoder(*REQUEST)


def sdk_checkable(response: dict[str, Any]) -> dict[str, Any]:
    """Codex's failure codes (context_length_exceeded, invalid_prompt, ...) are not in the
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


def run(events: list[Event], decoded: tuple[ChatRequest, ResponsesEcho] = REQUEST, *,
        close: bool = True) -> list[dict[str, Any]]:
    encoder = ResponsesStreamEncoder(*decoded)
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
