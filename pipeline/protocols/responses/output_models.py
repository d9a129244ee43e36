"""Encode-side wire Structs: output items, the Response object and the SSE stream events.

Shapes follow openai-python ``types/responses/*.py`` (v3.5x) and ../shared/PROTOCOLS.md §2.4-2.5.
Fields the SDK requires are plain fields (always encoded, ``null`` included); optional ones
default to ``UNSET`` and are omitted. The ``type`` tag is always the first key.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

# Output items.


class SummaryText(msgspec.Struct, tag="summary_text", tag_field="type"):
    text: str


class OutputText(msgspec.Struct, tag="output_text", tag_field="type"):
    text: str
    annotations: list[Any] = msgspec.field(default_factory=list)


class ResponseReasoningItem(msgspec.Struct, tag="reasoning", tag_field="type", kw_only=True):
    id: str
    summary: list[SummaryText]
    encrypted_content: str | None
    status: str


class ResponseOutputMessage(msgspec.Struct, tag="message", tag_field="type", kw_only=True):
    id: str
    role: str
    status: str
    content: list[OutputText]


class ResponseFunctionToolCall(msgspec.Struct, tag="function_call", tag_field="type", kw_only=True):
    id: str
    call_id: str
    name: str
    arguments: str
    status: str
    namespace: str | UnsetType = UNSET


class ResponseCustomToolCall(msgspec.Struct, tag="custom_tool_call", tag_field="type", kw_only=True):
    id: str
    call_id: str
    name: str
    input: str
    status: str
    namespace: str | UnsetType = UNSET


class LocalShellExec(msgspec.Struct, tag="exec", tag_field="type", kw_only=True):
    command: list[str]
    timeout_ms: int | None
    working_directory: str | None
    env: dict[str, str]
    user: str | None


class ResponseLocalShellCall(msgspec.Struct, tag="local_shell_call", tag_field="type", kw_only=True):
    id: str
    call_id: str
    status: str
    action: LocalShellExec


class ResponseToolSearchCall(msgspec.Struct, tag="tool_search_call", tag_field="type", kw_only=True):
    """A call of a client-executed tool search: ``arguments`` is a JSON value, not a string."""

    id: str
    call_id: str
    execution: str
    status: str
    arguments: Any


class SearchSource(msgspec.Struct, tag="url", tag_field="type"):
    url: str


class SearchAction(msgspec.Struct, tag="search", tag_field="type", kw_only=True):
    query: str
    sources: list[SearchSource] | UnsetType = UNSET


class ResponseWebSearchCall(msgspec.Struct, tag="web_search_call", tag_field="type", kw_only=True):
    id: str
    status: str
    action: SearchAction


OutputItem = (
    ResponseReasoningItem
    | ResponseWebSearchCall
    | ResponseOutputMessage
    | ResponseFunctionToolCall
    | ResponseCustomToolCall
    | ResponseLocalShellCall
    | ResponseToolSearchCall
)

# The Response object.


class InputTokensDetails(msgspec.Struct):
    cached_tokens: int
    cache_write_tokens: int = 0


class OutputTokensDetails(msgspec.Struct):
    reasoning_tokens: int


class ResponseUsage(msgspec.Struct):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class ResponseError(msgspec.Struct):
    code: str
    message: str


class IncompleteDetails(msgspec.Struct):
    reason: str


class ResponseObject(msgspec.Struct, kw_only=True):
    id: str
    object: str = "response"
    created_at: int
    status: str
    model: str
    output: list[OutputItem]
    parallel_tool_calls: bool
    tool_choice: str | dict[str, str]
    tools: list[Any] = msgspec.field(default_factory=list)
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    usage: ResponseUsage | None = None
    completed_at: int | UnsetType = UNSET
    max_output_tokens: int | None = None
    temperature: float | UnsetType = UNSET
    top_p: float | UnsetType = UNSET
    metadata: dict[str, Any] | UnsetType = UNSET
    previous_response_id: str | UnsetType = UNSET  # the stored response this one continues


# Stream events.


class _Event(msgspec.Struct, tag_field="type"):
    sequence_number: int


class ResponseCreatedEvent(_Event, tag="response.created"):
    response: ResponseObject


class ResponseInProgressEvent(_Event, tag="response.in_progress"):
    response: ResponseObject


class ResponseCompletedEvent(_Event, tag="response.completed"):
    response: ResponseObject


class ResponseIncompleteEvent(_Event, tag="response.incomplete"):
    response: ResponseObject


class ResponseFailedEvent(_Event, tag="response.failed"):
    response: ResponseObject


class ResponseOutputItemAddedEvent(_Event, tag="response.output_item.added"):
    output_index: int
    item: OutputItem


class ResponseOutputItemDoneEvent(_Event, tag="response.output_item.done"):
    output_index: int
    item: OutputItem


class ResponseContentPartAddedEvent(_Event, tag="response.content_part.added"):
    item_id: str
    output_index: int
    content_index: int
    part: OutputText


class ResponseContentPartDoneEvent(_Event, tag="response.content_part.done"):
    item_id: str
    output_index: int
    content_index: int
    part: OutputText


class ResponseTextDeltaEvent(_Event, tag="response.output_text.delta"):
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[Any] = msgspec.field(default_factory=list)


class ResponseTextDoneEvent(_Event, tag="response.output_text.done"):
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[Any] = msgspec.field(default_factory=list)


class ResponseReasoningSummaryPartAddedEvent(_Event, tag="response.reasoning_summary_part.added"):
    item_id: str
    output_index: int
    summary_index: int
    part: SummaryText


class ResponseReasoningSummaryPartDoneEvent(_Event, tag="response.reasoning_summary_part.done"):
    item_id: str
    output_index: int
    summary_index: int
    part: SummaryText


class ResponseReasoningSummaryTextDeltaEvent(_Event, tag="response.reasoning_summary_text.delta"):
    item_id: str
    output_index: int
    summary_index: int
    delta: str


class ResponseReasoningSummaryTextDoneEvent(_Event, tag="response.reasoning_summary_text.done"):
    item_id: str
    output_index: int
    summary_index: int
    text: str


class ResponseFunctionCallArgumentsDeltaEvent(_Event, tag="response.function_call_arguments.delta"):
    item_id: str
    output_index: int
    delta: str


class ResponseFunctionCallArgumentsDoneEvent(_Event, tag="response.function_call_arguments.done"):
    item_id: str
    output_index: int
    name: str
    arguments: str


class ResponseCustomToolCallInputDeltaEvent(_Event, tag="response.custom_tool_call_input.delta"):
    item_id: str
    output_index: int
    delta: str


class ResponseCustomToolCallInputDoneEvent(_Event, tag="response.custom_tool_call_input.done"):
    item_id: str
    output_index: int
    input: str


class _ItemEvent(_Event):
    """An event that names only its item (the web_search_call progress events)."""

    item_id: str
    output_index: int


class ResponseWebSearchCallInProgressEvent(_ItemEvent, tag="response.web_search_call.in_progress"):
    pass


class ResponseWebSearchCallSearchingEvent(_ItemEvent, tag="response.web_search_call.searching"):
    pass


class ResponseWebSearchCallCompletedEvent(_ItemEvent, tag="response.web_search_call.completed"):
    pass


class ResponseErrorEvent(_Event, tag="error"):
    code: str | None
    message: str
    param: str | None = None


# Non-stream bodies.


class ErrorDetail(msgspec.Struct):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorEnvelope(msgspec.Struct):
    error: ErrorDetail


class InputTokens(msgspec.Struct):
    input_tokens: int
    object: str = "response.input_tokens"


__all__ = [
    "ErrorDetail",
    "ErrorEnvelope",
    "IncompleteDetails",
    "InputTokens",
    "InputTokensDetails",
    "LocalShellExec",
    "OutputItem",
    "OutputText",
    "OutputTokensDetails",
    "ResponseCompletedEvent",
    "ResponseContentPartAddedEvent",
    "ResponseContentPartDoneEvent",
    "ResponseCreatedEvent",
    "ResponseCustomToolCall",
    "ResponseCustomToolCallInputDeltaEvent",
    "ResponseCustomToolCallInputDoneEvent",
    "ResponseError",
    "ResponseErrorEvent",
    "ResponseFailedEvent",
    "ResponseFunctionCallArgumentsDeltaEvent",
    "ResponseFunctionCallArgumentsDoneEvent",
    "ResponseFunctionToolCall",
    "ResponseInProgressEvent",
    "ResponseIncompleteEvent",
    "ResponseLocalShellCall",
    "ResponseObject",
    "ResponseOutputItemAddedEvent",
    "ResponseOutputItemDoneEvent",
    "ResponseOutputMessage",
    "ResponseReasoningItem",
    "ResponseReasoningSummaryPartAddedEvent",
    "ResponseReasoningSummaryPartDoneEvent",
    "ResponseReasoningSummaryTextDeltaEvent",
    "ResponseReasoningSummaryTextDoneEvent",
    "ResponseTextDeltaEvent",
    "ResponseTextDoneEvent",
    "ResponseToolSearchCall",
    "ResponseUsage",
    "ResponseWebSearchCall",
    "ResponseWebSearchCallCompletedEvent",
    "ResponseWebSearchCallInProgressEvent",
    "ResponseWebSearchCallSearchingEvent",
    "SearchAction",
    "SearchSource",
    "SummaryText",
]
