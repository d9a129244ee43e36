"""The neutral response event stream: block-structured, shared by all three protocols.

A well-formed stream is ``MessageStart``, then blocks (``BlockStart`` → deltas → ``BlockStop``;
indexes 0, 1, 2 … in order; at most one block open at a time), then ``Usage`` (optional) and
``MessageStop``. ``StreamError`` may end a stream at any point. ``Heartbeat`` may appear anywhere
(upstream keep-alive while queued). Only the upstream decoder infers block boundaries; client
encoders never guess.
"""

from __future__ import annotations

from typing import Literal

import msgspec

BlockKind = Literal["text", "thinking", "tool_call"]
StopReason = Literal["end_turn", "max_tokens", "tool_use", "stop_sequence", "refusal"]


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    """Base of every event; subclasses set an explicit snake_case tag and repeat ``frozen=True``
    (msgspec inherits it; a type checker reading the dataclass transform does not)."""


class MessageStart(Event, frozen=True, tag="message_start"):
    message_id: str
    model: str
    """The upstream model that answers (the client's name is on the request)."""


class BlockStart(Event, frozen=True, tag="block_start"):
    """``redacted`` marks a thinking block an upstream sent encrypted (Anthropic's
    ``redacted_thinking``): no text, its opaque data comes as the block's signature. Upstream
    decoders emit one only for an Anthropic client, the only one that can carry it back."""

    index: int
    block: BlockKind
    call_id: str | None = None
    name: str | None = None
    redacted: bool = False
    server: bool = False
    """A tool call the gateway runs itself (``pipeline.server_tools``): the client sees its own
    hosted tool's call (Anthropic ``server_tool_use``, Responses ``web_search_call``)."""


class TextDelta(Event, frozen=True, tag="text_delta"):
    index: int
    text: str


class ThinkingDelta(Event, frozen=True, tag="thinking_delta"):
    index: int
    text: str


class SignatureDelta(Event, frozen=True, tag="signature_delta"):
    """Opaque signature for a thinking block (our envelope); comes just before its BlockStop."""

    index: int
    signature: str


class UpstreamSeal(Event, frozen=True, tag="upstream_seal"):
    """An upstream's opaque token for the thinking block at ``index`` (a DeepSeek or Anthropic
    thinking signature; a Responses reasoning item's id and encrypted_content as JSON): what that
    upstream needs back with the block's reasoning on a later turn. ``thinking_filter`` keeps it
    in the envelope, keyed by the upstream's id; client encoders and the fold ignore it."""

    index: int
    data: str


class ToolArgsDelta(Event, frozen=True, tag="tool_args_delta"):
    index: int
    fragment: str


class BlockStop(Event, frozen=True, tag="block_stop"):
    index: int


class SearchHit(msgspec.Struct, frozen=True, kw_only=True):
    """One web search result, as a provider gave it."""

    url: str
    title: str = ""
    snippet: str = ""
    page_age: str | None = None


class SearchResult(Event, frozen=True, tag="search_result"):
    """The result of a web search the gateway ran for the server call ``call_id``: a block of its
    own at ``index`` (no start, deltas or stop). ``error`` is set (an Anthropic
    ``web_search_tool_result_error`` code: ``unavailable``, ``max_uses_exceeded``, ...) when the
    search failed; the model was told so and the request goes on."""

    index: int
    call_id: str
    query: str = ""
    hits: tuple[SearchHit, ...] = ()
    error: str | None = None


class Usage(Event, frozen=True, tag="usage"):
    """Token counts. ``input_tokens`` includes ``cached_input_tokens`` (Chat/Responses view);
    ``output_tokens`` includes ``reasoning_tokens``."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    web_search_requests: int = 0
    """Searches the gateway ran for this answer (Anthropic ``usage.server_tool_use``)."""
    rounds: int = 1
    """Upstream requests summed here (more than one when the gateway ran tools between them)."""


class MessageStop(Event, frozen=True, tag="message_stop"):
    stop_reason: StopReason
    stop_sequence: str | None = None


class ErrorInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A neutral error; ``code`` is one of ``pipeline.errors.CODES``."""

    code: str
    message: str
    status: int = 500
    retry_after_s: float | None = None


class StreamError(Event, frozen=True, tag="stream_error"):
    error: ErrorInfo


class Heartbeat(Event, frozen=True, tag="heartbeat"):
    pass


AnyEvent = (
    MessageStart
    | BlockStart
    | TextDelta
    | ThinkingDelta
    | SignatureDelta
    | UpstreamSeal
    | ToolArgsDelta
    | BlockStop
    | SearchResult
    | Usage
    | MessageStop
    | StreamError
    | Heartbeat
)

EVENT_DECODER = msgspec.json.Decoder(AnyEvent)
EVENT_ENCODER = msgspec.json.Encoder()

__all__ = [
    "EVENT_DECODER",
    "EVENT_ENCODER",
    "AnyEvent",
    "BlockKind",
    "BlockStart",
    "BlockStop",
    "ErrorInfo",
    "Event",
    "Heartbeat",
    "SearchHit",
    "SearchResult",
    "MessageStart",
    "MessageStop",
    "SignatureDelta",
    "StopReason",
    "StreamError",
    "TextDelta",
    "ThinkingDelta",
    "ToolArgsDelta",
    "UpstreamSeal",
    "Usage",
]
