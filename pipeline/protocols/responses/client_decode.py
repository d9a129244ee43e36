"""OpenAI Responses request JSON → neutral ``ChatRequest`` (PROTOCOLS §2.1-2.3, §5.3).

The top level is one msgspec pass; items (history.py) and tools (tools.py) are decoded one by
one after peeking at ``type``, so unknown kinds become losses, never a 400. The gateway is
stateless: ``previous_response_id`` (unless the app found the stored history it names, see
``pipeline.stored_responses``) and ``conversation`` get a clear 400.

A session's next body is read with its conversation's memory (``Recall.read``): the ``input``
items it shares with the last one, at the same offsets, are not parsed again, and the walk of
the items (``History``) resumes after them from what it kept, handing on the same messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, get_args

import msgspec

from pipeline.conversation import Recall
from pipeline.errors import RequestError
from pipeline.model import ChatRequest, Effort, ResponseFormat, ThinkingConfig, ToolSpec
from pipeline.protocols.request_body import decode_body
from pipeline.protocols.responses.client_decode_echo import ResponsesEcho, tool_choice_echo, tool_targets
from pipeline.protocols.responses.client_decode_history import Fold, History
from pipeline.protocols.responses.client_decode_reader import Reader
from pipeline.protocols.responses.client_decode_tools import decode_tool_choice, decode_tools
from pipeline.protocols.responses.models import ReasoningParam, ResponsesRequest, ResponsesResumed, TextParam

_REQUEST_DECODER = msgspec.json.Decoder(ResponsesRequest)
_RESUMED_DECODER = msgspec.json.Decoder(ResponsesResumed)
MEMO = "responses.decode"  # this decoder's slot in a conversation's memory
_EFFORTS: tuple[str, ...] = get_args(Effort)
_NULL = b"null"
_SUMMARIES = ("none", "auto", "concise", "detailed")
VERBOSITY_LOW = "Be concise: answer in as few words as the task allows (the client asked for low verbosity)."
VERBOSITY_HIGH = "Be thorough: explain your answers in full detail (the client asked for high verbosity)."
_VERBOSITY = {"low": VERBOSITY_LOW, "medium": None, "high": VERBOSITY_HIGH}

STATELESS = (
    "previous_response_id is not supported: this gateway is stateless; resend the full "
    "conversation in `input` (Codex does this by default)"
)
NO_CONVERSATION = (
    "conversation is not supported: this gateway is stateless; resend the full conversation "
    "in `input`"
)


def read_wire(body: bytes) -> ResponsesRequest:
    """The top level of a ``POST /v1/responses`` body (items and tools still raw).

    Raises:
        RequestError: invalid JSON, not an object, a mistyped top-level field.
    """
    return decode_body(_REQUEST_DECODER, body)


class Read(NamedTuple):
    """A body read with its conversation's memory (``read_request``): the top level and the
    ``input`` items from the ``same``-th on; the ones before are the remembered request's."""

    wire: ResponsesRequest
    items: list[msgspec.Raw]
    same: int

    def input(self, recall: Recall) -> str | list[msgspec.Raw] | None:
        """The request's whole ``input`` as sent (the leading items from memory)."""
        if not self.same:
            return self.wire.input
        return [*map(msgspec.Raw, recall.leading()), *self.items]


def read_request(body: bytes, recall: Recall) -> Read:
    """The top level of a ``POST /v1/responses`` body, read with ``recall`` (``read_wire``
    when it remembers nothing).

    Raises:
        RequestError: invalid JSON, not an object, a mistyped top-level field.
    """
    return Read(*recall.read(body, b'"input"', MEMO, _whole, _resumed))


def _whole(body: bytes) -> tuple[ResponsesRequest, list[msgspec.Raw]]:
    wire = read_wire(body)
    return wire, wire.input if isinstance(wire.input, list) else []


def _resumed(document: bytes) -> tuple[ResponsesRequest, list[msgspec.Raw]] | None:
    wire = decode_body(_RESUMED_DECODER, document)
    return (wire, wire.resumed) if wire.input is None else None


def decode_request(body: bytes, recall: Recall | None = None) -> tuple[ChatRequest, ResponsesEcho]:
    """Parse a ``POST /v1/responses`` body (``decode_read`` of ``read_request``, no stored history)."""
    recall = recall or Recall()
    return decode_read(read_request(body, recall), None, recall)


def decode_read(read: Read, prior: Sequence[msgspec.Raw] | None = None,
                recall: Recall | None = None) -> tuple[ChatRequest, ResponsesEcho]:
    """Decode a read ``POST /v1/responses`` body.

    Args:
        read: the body as ``read_request`` read it.
        prior: the stored items ``previous_response_id`` names, oldest first (each response's
            input, then its output), read before ``input``; ``None``: no stored history, so
            ``previous_response_id`` is refused.
        recall: the memory ``read`` was read with: the walk resumes from what it kept for the
            leading items, and keeps what it made of these (not for a chained request, whose
            history is not its body's).

    ``user`` falls back to ``safety_identifier`` (its successor in the API), never to
    ``prompt_cache_key`` (a per-conversation id, not an end-user id). ``prompt_cache_key``,
    ``store``, ``include``, ``metadata``, ``max_output_tokens`` and ``reasoning.summary`` go to
    the echo, with the client-facing tool facts the encoder needs after stages renamed tools for
    the upstream. ``text.verbosity`` ``low`` / ``high`` becomes the system prompt's last line.
    The tools a client-run ``tool_search`` loaded (in its ``tool_search_output`` items) are
    offered after the request's own.

    Returns:
        The neutral request (what it cannot carry is listed in ``losses``) and the echo for the
        response encoder.

    Raises:
        RequestError: invalid JSON, not an object, a missing or mistyped field (the message
            names its path, e.g. ``input.3.call_id``), or a stateful feature.
    """
    wire, same = read.wire, read.same
    recall = recall or Recall()
    if wire.previous_response_id is not None and prior is None:
        raise RequestError(STATELESS, code="invalid_request")
    if _given(wire.conversation):
        raise RequestError(NO_CONVERSATION, code="invalid_request")
    if not wire.model:
        raise RequestError("model: must be a non-empty string")
    if wire.input is None and not same:
        raise RequestError("input: field required (this gateway is stateless; send the whole conversation)")
    if wire.max_output_tokens is not None and wire.max_output_tokens < 1:
        raise RequestError(f"max_output_tokens: must be >= 1, got {wire.max_output_tokens}")

    reader = Reader()
    history = History(reader)
    if isinstance(wire.input, str):
        if prior:
            history.read(list(prior), stored=len(prior))
        history.read_text(wire.input)
    elif prior is not None:  # chained: the history is the stored one, then the whole input
        history.read([*prior, *read.input(recall)], stored=len(prior))  # type: ignore[misc]  # a list here
    else:
        if same:
            fold: Fold | None = recall.before(MEMO)
            assert fold is not None  # Recall.read resumes only after a request whose walk was kept
            history.resume(fold, same)
        history.read(read.items, start=same)
        recall.keep(MEMO, history.fold())
    system = [wire.instructions, *history.system] if wire.instructions else history.system
    offered, searches = decode_tools(wire.tools or [], reader)
    tools = _with_loaded(offered, history.loaded)
    tool_choice = decode_tool_choice(wire.tool_choice, tools, reader)
    thinking = _thinking(wire.reasoning)
    summary = _summary(wire.reasoning, reader)
    verbosity = _verbosity(wire.text)
    _unsupported(wire, reader)
    request = ChatRequest(
        model=wire.model,
        messages=tuple(history.messages),
        system=(*system, verbosity) if verbosity else tuple(system),
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
    echo = ResponsesEcho(
        tool_targets=tool_targets(tools, searches),
        tool_choice=tool_choice_echo(tool_choice, tools) if tool_choice is not None else None,
        metadata=dict(wire.metadata) if wire.metadata else None,
        store=wire.store,
        include=tuple(wire.include) if wire.include is not None else None,
        prompt_cache_key=wire.prompt_cache_key,
        reasoning_summary=summary,
        max_output_tokens=wire.max_output_tokens,
        previous_response_id=wire.previous_response_id,
    )
    return request, echo


def _with_loaded(offered: tuple[ToolSpec, ...], loaded: list[ToolSpec]) -> tuple[ToolSpec, ...]:
    """The request's tools, then those the client's tool searches loaded (Codex sends them only
    in the ``tool_search_output`` items: the Responses API offers them from there), once each."""
    if not loaded:
        return offered
    names = {spec.name for spec in offered}
    extra = []
    for spec in loaded:
        if spec.name not in names:
            names.add(spec.name)
            extra.append(spec)
    return (*offered, *extra)


def _summary(reasoning: ReasoningParam | None, reader: Reader) -> str | None:
    """``reasoning.summary``: ``none`` or absent withholds the reasoning text from the client
    (the API writes no summary unless asked), ``auto`` shows the upstream's reasoning as the
    summary; ``concise`` and ``detailed`` ask for a form of
    summary no upstream of this gateway but OpenAI writes (DeepSeek and local servers return their
    raw reasoning): it is shown whole, and the loss says so."""
    if reasoning is None:
        return None
    summary = reasoning.summary or reasoning.generate_summary
    if summary is None:
        return None
    if summary not in _SUMMARIES:
        raise RequestError(f"reasoning.summary: expected one of {', '.join(_SUMMARIES)}, got {summary!r}")
    if summary in ("concise", "detailed"):
        reader.lose("reasoning_summary", f"reasoning.summary {summary!r}: the upstream's reasoning is shown as "
                    "it came (DeepSeek's is its raw reasoning, not a summary)")
    return summary


def _verbosity(text: TextParam | None) -> str | None:
    """``text.verbosity`` as an instruction line at the end of the system prompt (``medium``, the
    API's default, and absent: none); no upstream of this gateway takes the setting itself."""
    verbosity = text.verbosity if text is not None else None
    if verbosity is None:
        return None
    if verbosity not in _VERBOSITY:
        raise RequestError(f"text.verbosity: expected one of low, medium, high, got {verbosity!r}")
    return _VERBOSITY[verbosity]


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


__all__ = ["MEMO", "NO_CONVERSATION", "STATELESS", "Read", "decode_read", "decode_request", "read_request",
           "read_wire"]
