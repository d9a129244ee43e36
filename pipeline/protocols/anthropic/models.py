"""Anthropic Messages API wire Structs (API version 2023-06-01, ../shared/PROTOCOLS.md §1).

Decode side: "views" of the request that declare only the fields we read; unknown fields are
ignored. The same views (``omit_defaults``: unset fields are not written) are the request body
the ``anthropic_messages`` upstream sends (``upstream_encode.py``). Content blocks arrive as
plain dicts and are converted per ``type`` (so an unknown block type is a loss, never a
validation error). Encode side: response and stream-event
Structs whose tag is the wire ``type``; the hot per-delta frames are byte templates in client_encode.py.
"""

from __future__ import annotations

from typing import Any

import msgspec

from pipeline.resume import RESUMED

RawBlock = dict[str, Any]


# Request views.


class MessageParam(msgspec.Struct, omit_defaults=True):
    role: str
    content: str | list[RawBlock]


class MetadataParam(msgspec.Struct, omit_defaults=True):
    user_id: str | None = None


class ThinkingParam(msgspec.Struct, omit_defaults=True):
    type: str
    budget_tokens: int | None = None
    display: str | None = None


class OutputFormatParam(msgspec.Struct, omit_defaults=True):
    type: str
    schema: dict[str, Any] | None = None


class OutputConfigParam(msgspec.Struct, omit_defaults=True):
    effort: str | None = None
    format: OutputFormatParam | None = None


class ToolChoiceParam(msgspec.Struct, omit_defaults=True):
    type: str
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class MessagesRequest(msgspec.Struct, omit_defaults=True):
    """``POST /v1/messages`` and ``/v1/messages/count_tokens`` bodies.

    ``context_management``, ``cache_control``, ``container``, ``service_tier`` and
    ``inference_geo`` are accepted and ignored (not declared).
    """

    model: str
    messages: list[MessageParam]
    system: str | list[RawBlock] | None = None
    max_tokens: int | None = None
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    tools: list[RawBlock] | None = None
    tool_choice: ToolChoiceParam | None = None
    thinking: ThinkingParam | None = None
    output_config: OutputConfigParam | None = None
    metadata: MetadataParam | None = None
    mcp_servers: Any = None


class MessagesRequestIn(MessagesRequest, omit_defaults=True):
    """A client's body as the decoder reads it: each message left as its bytes (``msgspec.Raw``),
    decoded one by one, so a session's next request decodes only the messages that are new
    (``pipeline.conversation``)."""

    messages: list[msgspec.Raw]  # type: ignore[assignment]


class MessagesResumed(MessagesRequestIn, omit_defaults=True):
    """A resumed document of a session's next body (``pipeline.resume``): the new messages under
    ``RESUMED``; ``messages`` only if the body gives that key twice (then it is parsed whole)."""

    messages: list[msgspec.Raw] | None = None  # type: ignore[assignment]
    resumed: list[msgspec.Raw] = msgspec.field(name=RESUMED, default_factory=list)


class ClientToolParam(msgspec.Struct):
    """A client tool (no ``type``, or ``type: "custom"``). ``defer_loading``,
    ``cache_control``, ``input_examples``, ``eager_input_streaming`` are ignored."""

    name: str
    input_schema: dict[str, Any]
    description: str | None = None
    strict: bool | None = None


# Content block views (converted from a RawBlock after dispatching on its ``type``).


class TextBlockParam(msgspec.Struct):
    text: str
    citations: list[Any] | None = None


class SourceParam(msgspec.Struct):
    """Image or document source: ``base64``, ``url``, ``text``, ``content`` or ``file``."""

    type: str
    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    content: str | list[RawBlock] | None = None


class ImageBlockParam(msgspec.Struct):
    source: SourceParam


class DocumentBlockParam(msgspec.Struct):
    source: SourceParam
    title: str | None = None
    context: str | None = None


class SearchResultBlockParam(msgspec.Struct):
    source: str
    title: str
    content: list[RawBlock]


class ToolUseBlockParam(msgspec.Struct):
    id: str
    name: str
    input: Any = msgspec.field(default_factory=dict)


class ToolResultBlockParam(msgspec.Struct):
    tool_use_id: str
    content: str | list[RawBlock] | None = None
    is_error: bool | None = None


class ThinkingBlockParam(msgspec.Struct):
    thinking: str
    signature: str | None = None


class RedactedThinkingBlockParam(msgspec.Struct):
    data: str


class ToolReferenceBlockParam(msgspec.Struct):
    tool_name: str


# Response side.


class WebSearchCitation(msgspec.Struct, tag="web_search_result_location", tag_field="type"):
    """A text block's citation of a web search result (the gateway's: ``encrypted_index`` is the
    result's seal)."""

    url: str
    title: str
    cited_text: str
    encrypted_index: str


class TextBlock(msgspec.Struct, tag="text", tag_field="type", omit_defaults=True):
    text: str
    citations: list[WebSearchCitation] | None = None


class ThinkingBlock(msgspec.Struct, tag="thinking", tag_field="type"):
    thinking: str
    signature: str


class ToolUseBlock(msgspec.Struct, tag="tool_use", tag_field="type"):
    id: str
    name: str
    input: Any


class RedactedThinkingBlock(msgspec.Struct, tag="redacted_thinking", tag_field="type"):
    data: str


class ServerToolUseBlock(msgspec.Struct, tag="server_tool_use", tag_field="type"):
    id: str
    name: str
    input: Any


class WebSearchResultEntry(msgspec.Struct, tag="web_search_result", tag_field="type"):
    url: str
    title: str
    encrypted_content: str
    page_age: str | None = None


class WebSearchError(msgspec.Struct, tag="web_search_tool_result_error", tag_field="type"):
    error_code: str


class WebSearchToolResultBlock(msgspec.Struct, tag="web_search_tool_result", tag_field="type"):
    tool_use_id: str
    content: list[WebSearchResultEntry] | WebSearchError


ContentBlock = (TextBlock | ThinkingBlock | RedactedThinkingBlock | ToolUseBlock | ServerToolUseBlock
                | WebSearchToolResultBlock)


class OutputTokensDetails(msgspec.Struct):
    thinking_tokens: int


class ServerToolUsage(msgspec.Struct):
    web_search_requests: int


class MessageUsage(msgspec.Struct, omit_defaults=True):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    output_tokens_details: OutputTokensDetails | None = None
    server_tool_use: ServerToolUsage | None = None


class MessageBody(msgspec.Struct, tag="message", tag_field="type"):
    """A full ``Message`` (non-streaming body, and the ``message_start`` payload)."""

    id: str
    role: str
    model: str
    content: list[ContentBlock]
    stop_reason: str | None
    stop_sequence: str | None
    usage: MessageUsage


class MessageStartEvent(msgspec.Struct, tag="message_start", tag_field="type"):
    message: MessageBody


class ContentBlockStartEvent(msgspec.Struct, tag="content_block_start", tag_field="type"):
    index: int
    content_block: ContentBlock


class ContentBlockStopEvent(msgspec.Struct, tag="content_block_stop", tag_field="type"):
    index: int


class MessageDelta(msgspec.Struct):
    stop_reason: str | None
    stop_sequence: str | None


class MessageDeltaEvent(msgspec.Struct, tag="message_delta", tag_field="type"):
    delta: MessageDelta
    usage: MessageUsage


class ErrorObject(msgspec.Struct):
    type: str
    message: str


class ErrorEvent(msgspec.Struct, tag="error", tag_field="type"):
    """The in-stream ``event: error`` payload and the HTTP error body (``request_id`` omitted)."""

    error: ErrorObject


class ModelEntry(msgspec.Struct, tag="model", tag_field="type"):
    id: str
    display_name: str
    created_at: str
    max_input_tokens: int
    max_tokens: int
    lifecycle: str = "active"


class ModelList(msgspec.Struct):
    data: list[ModelEntry]
    has_more: bool
    first_id: str | None
    last_id: str | None


class TokenCount(msgspec.Struct):
    input_tokens: int


__all__ = [
    "ClientToolParam",
    "ContentBlock",
    "ContentBlockStartEvent",
    "ContentBlockStopEvent",
    "DocumentBlockParam",
    "ErrorEvent",
    "ErrorObject",
    "ImageBlockParam",
    "MessageBody",
    "MessageDelta",
    "MessageDeltaEvent",
    "MessageParam",
    "MessageStartEvent",
    "MessageUsage",
    "MessagesRequest",
    "MessagesRequestIn",
    "MessagesResumed",
    "MetadataParam",
    "ModelEntry",
    "ModelList",
    "OutputConfigParam",
    "OutputFormatParam",
    "OutputTokensDetails",
    "RawBlock",
    "RedactedThinkingBlock",
    "RedactedThinkingBlockParam",
    "SearchResultBlockParam",
    "ServerToolUsage",
    "ServerToolUseBlock",
    "SourceParam",
    "TextBlock",
    "TextBlockParam",
    "ThinkingBlock",
    "ThinkingBlockParam",
    "ThinkingParam",
    "TokenCount",
    "ToolChoiceParam",
    "ToolReferenceBlockParam",
    "ToolResultBlockParam",
    "ToolUseBlock",
    "ToolUseBlockParam",
    "WebSearchError",
    "WebSearchResultEntry",
    "WebSearchToolResultBlock",
]
