"""Decode-side wire views of an OpenAI Responses ``POST /v1/responses`` body.

Views declare only the fields the decoder reads (msgspec ignores the rest). Items and tools stay
``msgspec.Raw`` at the top level and are decoded after peeking at ``type``. Field reference:
openai-python ``types/responses/response_create_params.py``, PROTOCOLS §2.1-2.3.
"""

from __future__ import annotations

from typing import Any

import msgspec

from pipeline.resume import RESUMED


class ReasoningParam(msgspec.Struct):
    effort: str | None = None
    summary: str | None = None
    generate_summary: str | None = None  # deprecated alias of ``summary``


class TextFormatParam(msgspec.Struct):
    type: str
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None


class TextParam(msgspec.Struct):
    format: TextFormatParam | None = None
    verbosity: str | None = None


class ResponsesRequest(msgspec.Struct):
    """The top level of a create-response body."""

    model: str
    input: str | list[msgspec.Raw] | None = None
    instructions: str | None = None
    tools: list[msgspec.Raw] | None = None
    tool_choice: msgspec.Raw = msgspec.Raw()  # empty when absent; Raw cannot be in a union
    parallel_tool_calls: bool | None = None
    reasoning: ReasoningParam | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    text: TextParam | None = None
    stream: bool | None = None
    store: bool | None = None
    include: list[str] | None = None
    prompt_cache_key: str | None = None
    service_tier: str | None = None
    metadata: dict[str, Any] | None = None
    truncation: str | None = None
    user: str | None = None
    safety_identifier: str | None = None
    previous_response_id: str | None = None
    conversation: msgspec.Raw = msgspec.Raw()  # empty when absent; Raw cannot be in a union
    background: bool | None = None
    prompt: msgspec.Raw = msgspec.Raw()  # empty when absent; Raw cannot be in a union


class ResponsesResumed(ResponsesRequest):
    """A resumed document of a session's next body (``pipeline.resume``): the new ``input`` items
    under ``RESUMED``; ``input`` only if the body gives that key twice (then it is parsed whole)."""

    resumed: list[msgspec.Raw] = msgspec.field(name=RESUMED, default_factory=list)


# Input items.


class ItemHead(msgspec.Struct):
    """Just enough of an item to dispatch on: EasyInputMessage may omit ``type``."""

    type: str | None = None
    role: str | None = None


class ContentPartParam(msgspec.Struct):
    """Any content part: input_text, output_text, refusal, input_image, input_file, ..."""

    type: str
    text: str | None = None
    refusal: str | None = None
    image_url: str | None = None
    file_id: str | None = None
    detail: str | None = None


class MessageItem(msgspec.Struct):
    role: str
    content: str | list[ContentPartParam] = ""
    phase: str | None = None


class SummaryPart(msgspec.Struct):
    text: str
    type: str = "summary_text"


class ReasoningItem(msgspec.Struct):
    summary: list[SummaryPart] | None = None
    content: list[ContentPartParam] | None = None
    encrypted_content: str | None = None


class FunctionCallItem(msgspec.Struct):
    call_id: str
    name: str
    arguments: str
    namespace: str | None = None


class CustomToolCallItem(msgspec.Struct):
    call_id: str
    name: str
    input: str
    namespace: str | None = None


class LocalShellAction(msgspec.Struct):
    command: list[str]
    type: str = "exec"
    timeout_ms: int | None = None
    working_directory: str | None = None
    env: dict[str, str] | None = None
    user: str | None = None


class LocalShellCallItem(msgspec.Struct):
    call_id: str
    action: LocalShellAction


class ToolSearchCallItem(msgspec.Struct):
    """tool_search_call: ``arguments`` is a JSON value (Codex: ``{query, limit?}``), not a string."""

    call_id: str | None = None
    execution: str | None = None
    arguments: Any = None


class WebSearchCallItem(msgspec.Struct):
    """web_search_call: Codex sends only ``status`` and ``action`` back; an SDK client its ``id`` too."""

    id: str | None = None
    status: str | None = None
    action: dict[str, Any] | None = None


class ToolSearchOutputItem(msgspec.Struct):
    """tool_search_output: the tools the search loaded (function / namespace definitions)."""

    call_id: str | None = None
    execution: str | None = None
    status: str | None = None
    tools: list[msgspec.Raw] = msgspec.field(default_factory=list)


class ToolOutputItem(msgspec.Struct):
    """function_call_output / custom_tool_call_output."""

    call_id: str
    output: str | list[ContentPartParam]


class LocalShellOutputItem(msgspec.Struct):
    """local_shell_call_output: the SDK names the call in ``id``; accept ``call_id`` too."""

    output: str
    call_id: str | None = None
    id: str | None = None


# Tools.


class ToolHead(msgspec.Struct):
    type: str


class FunctionToolParam(msgspec.Struct):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class CustomFormatParam(msgspec.Struct):
    type: str = "text"
    syntax: str | None = None
    definition: str | None = None


class CustomToolParam(msgspec.Struct):
    name: str
    description: str | None = None
    format: CustomFormatParam | None = None


class NamespaceToolParam(msgspec.Struct):
    name: str
    description: str | None = None
    tools: list[msgspec.Raw] = msgspec.field(default_factory=list)


class ToolSearchToolParam(msgspec.Struct):
    """``tool_search``: ``execution`` "client" (Codex runs the search itself) or hosted."""

    execution: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None


class ToolChoiceParam(msgspec.Struct):
    """Object forms of ``tool_choice``: function, custom, allowed_tools, hosted tool types."""

    type: str
    name: str | None = None
    mode: str | None = None


__all__ = [
    "ContentPartParam",
    "CustomFormatParam",
    "CustomToolCallItem",
    "CustomToolParam",
    "FunctionCallItem",
    "FunctionToolParam",
    "ItemHead",
    "LocalShellAction",
    "LocalShellCallItem",
    "LocalShellOutputItem",
    "MessageItem",
    "NamespaceToolParam",
    "ReasoningItem",
    "ReasoningParam",
    "ResponsesRequest",
    "ResponsesResumed",
    "SummaryPart",
    "TextFormatParam",
    "TextParam",
    "ToolChoiceParam",
    "ToolHead",
    "ToolOutputItem",
    "ToolSearchCallItem",
    "ToolSearchOutputItem",
    "WebSearchCallItem",
    "ToolSearchToolParam",
]
