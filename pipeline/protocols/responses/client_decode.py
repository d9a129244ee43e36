"""OpenAI Responses request JSON → neutral ``ChatRequest`` (PROTOCOLS §2.1-2.3, §5.3).

The top level is one msgspec pass; items (history.py) and tools (tools.py) are decoded one by
one after peeking at ``type``, so unknown kinds become losses, never a 400. The gateway is
stateless: ``previous_response_id`` and ``conversation`` get a clear 400.
"""

from __future__ import annotations

from typing import get_args

import msgspec

from pipeline.errors import RequestError
from pipeline.model import ChatRequest, Effort, ResponseFormat, ThinkingConfig
from pipeline.protocols.request_body import decode_body
from pipeline.protocols.responses.client_decode_echo import ResponsesEcho, tool_choice_echo, tool_targets
from pipeline.protocols.responses.client_decode_history import History
from pipeline.protocols.responses.client_decode_reader import Reader
from pipeline.protocols.responses.client_decode_tools import decode_tool_choice, decode_tools
from pipeline.protocols.responses.models import ReasoningParam, ResponsesRequest, TextParam

_REQUEST_DECODER = msgspec.json.Decoder(ResponsesRequest)
_EFFORTS: tuple[str, ...] = get_args(Effort)
_NULL = b"null"

STATELESS = (
    "previous_response_id is not supported: this gateway is stateless; resend the full "
    "conversation in `input` (Codex does this by default)"
)
NO_CONVERSATION = (
    "conversation is not supported: this gateway is stateless; resend the full conversation "
    "in `input`"
)


def decode_request(body: bytes) -> tuple[ChatRequest, ResponsesEcho]:
    """Parse a ``POST /v1/responses`` body.

    Args:
        body: the raw request body.

    ``user`` falls back to ``safety_identifier`` (its successor in the API), never to
    ``prompt_cache_key`` (a per-conversation id, not an end-user id). ``prompt_cache_key``,
    ``store``, ``include``, ``metadata`` and ``reasoning.summary`` go to the echo, with the
    client-facing tool facts the encoder needs after stages renamed tools for the upstream.

    Returns:
        The neutral request (what it cannot carry is listed in ``losses``) and the echo for the
        response encoder.

    Raises:
        RequestError: invalid JSON, not an object, a missing or mistyped field (the message
            names its path, e.g. ``input.3.call_id``), or a stateful feature.
    """
    wire = decode_body(_REQUEST_DECODER, body)

    if wire.previous_response_id is not None:
        raise RequestError(STATELESS, code="invalid_request")
    if _given(wire.conversation):
        raise RequestError(NO_CONVERSATION, code="invalid_request")
    if not wire.model:
        raise RequestError("model: must be a non-empty string")
    if wire.input is None:
        raise RequestError("input: field required (this gateway is stateless; send the whole conversation)")
    if wire.max_output_tokens is not None and wire.max_output_tokens < 1:
        raise RequestError(f"max_output_tokens: must be >= 1, got {wire.max_output_tokens}")

    reader = Reader()
    history = History(reader)
    if wire.instructions:
        history.system.append(wire.instructions)
    if isinstance(wire.input, str):
        history.read_text(wire.input)
    else:
        history.read(wire.input)
    tools = decode_tools(wire.tools or [], reader)
    tool_choice = decode_tool_choice(wire.tool_choice, tools, reader)
    thinking = _thinking(wire.reasoning)
    _unsupported(wire, reader)
    request = ChatRequest(
        model=wire.model,
        messages=tuple(history.messages),
        system=tuple(history.system),
        tools=tools,
        server_tools=tuple(reader.server_tools),
        tool_choice=tool_choice,
        parallel_tool_calls=wire.parallel_tool_calls,
        max_output_tokens=wire.max_output_tokens,
        temperature=wire.temperature,
        top_p=wire.top_p,
        user=wire.user or wire.safety_identifier,
        thinking=thinking,
        response_format=_response_format(wire.text),
        stream=bool(wire.stream),
        losses=tuple(reader.losses),
    )
    reasoning = wire.reasoning
    echo = ResponsesEcho(
        tool_targets=tool_targets(tools),
        tool_choice=tool_choice_echo(tool_choice, tools) if tool_choice is not None else None,
        metadata=dict(wire.metadata) if wire.metadata else None,
        store=wire.store,
        include=tuple(wire.include) if wire.include is not None else None,
        prompt_cache_key=wire.prompt_cache_key,
        reasoning_summary=(reasoning.summary or reasoning.generate_summary) if reasoning is not None else None,
    )
    return request, echo


def _thinking(reasoning: ReasoningParam | None) -> ThinkingConfig:
    """``reasoning`` null/absent or without ``effort`` → upstream default (``enabled=None``)."""
    if reasoning is None:
        return ThinkingConfig()
    effort = reasoning.effort
    if effort is None:
        return ThinkingConfig()
    if effort not in _EFFORTS:
        raise RequestError(f"reasoning.effort: expected one of {', '.join(_EFFORTS)}, got {effort!r}")
    if effort == "none":
        return ThinkingConfig(enabled=False)
    return ThinkingConfig(enabled=True, effort=effort)  # type: ignore[arg-type]  # in _EFFORTS (checked above)


def _response_format(text: TextParam | None) -> ResponseFormat | None:
    if text is None or text.format is None or text.format.type == "text":
        return None
    fmt = text.format
    if fmt.type == "json_object":
        return ResponseFormat(type="json_object")
    if fmt.type == "json_schema":
        if fmt.schema is None:
            raise RequestError("text.format.schema: field required for json_schema")
        return ResponseFormat(type="json_schema", schema=fmt.schema, name=fmt.name, strict=fmt.strict)
    raise RequestError(f"text.format.type: expected text, json_object or json_schema, got {fmt.type!r}")


def _unsupported(wire: ResponsesRequest, reader: Reader) -> None:
    if wire.service_tier not in (None, "auto", "default"):
        reader.lose("service_tier", f"service_tier {wire.service_tier!r} not available upstream")
    if wire.truncation == "auto":
        reader.lose("truncation", "truncation 'auto' not applied: the input is sent whole")
    if _given(wire.prompt):
        reader.lose("prompt", "stored prompt templates are not available; prompt ignored")


def _given(raw: msgspec.Raw) -> bool:
    """An embedded value that is present and not ``null``."""
    return len(raw) > 0 and bytes(raw) != _NULL


__all__ = ["NO_CONVERSATION", "STATELESS", "decode_request"]
