"""Chat Completions wire Structs (OpenAI chat API as of openai-python 2.x, plus DeepSeek/vLLM extras).

Encode side (what we send upstream) uses ``UNSET`` defaults, so absent fields are omitted and an
explicit ``None`` (assistant ``content: null``) is still written. Decode side Structs are views:
they declare only what we read and ignore everything else. Reference: ../shared/PROTOCOLS.md §3, §4.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

# Upstream request (encode side).


class FunctionCall(msgspec.Struct):
    name: str
    arguments: str


class ToolCall(msgspec.Struct, kw_only=True):
    id: str
    type: str = "function"
    function: FunctionCall


class ImageUrl(msgspec.Struct):
    url: str
    detail: str | UnsetType = UNSET


class ContentPart(msgspec.Struct):
    type: str
    text: str | UnsetType = UNSET
    image_url: ImageUrl | UnsetType = UNSET


class ChatMessage(msgspec.Struct):
    """One request message. Exactly one of the two reasoning fields is set, per profile."""

    role: str
    content: str | list[ContentPart] | None | UnsetType = UNSET
    name: str | UnsetType = UNSET
    tool_calls: list[ToolCall] | UnsetType = UNSET
    tool_call_id: str | UnsetType = UNSET
    reasoning_content: str | UnsetType = UNSET
    reasoning: str | UnsetType = UNSET


class FunctionDef(msgspec.Struct):
    name: str
    parameters: dict[str, Any]
    description: str | UnsetType = UNSET
    strict: bool | UnsetType = UNSET


class Tool(msgspec.Struct, kw_only=True):
    type: str = "function"
    function: FunctionDef


class StreamOptions(msgspec.Struct):
    include_usage: bool = True


class ThinkingSwitch(msgspec.Struct):
    """DeepSeek's ``thinking`` object."""

    type: str


class JsonSchemaFormat(msgspec.Struct):
    name: str
    schema: dict[str, Any]
    strict: bool | UnsetType = UNSET


class ResponseFormatOut(msgspec.Struct):
    type: str
    json_schema: JsonSchemaFormat | UnsetType = UNSET


class ChatCompletionRequest(msgspec.Struct):
    model: str
    messages: list[ChatMessage | msgspec.Raw]  # a Raw: a message encoded before (written as it is)
    stream: bool | UnsetType = UNSET
    stream_options: StreamOptions | UnsetType = UNSET
    max_tokens: int | UnsetType = UNSET
    temperature: float | UnsetType = UNSET
    top_p: float | UnsetType = UNSET
    top_k: int | UnsetType = UNSET
    seed: int | UnsetType = UNSET
    stop: list[str] | UnsetType = UNSET
    user: str | UnsetType = UNSET
    tools: list[Tool] | UnsetType = UNSET
    tool_choice: str | dict[str, Any] | UnsetType = UNSET
    parallel_tool_calls: bool | UnsetType = UNSET
    response_format: ResponseFormatOut | UnsetType = UNSET
    thinking: ThinkingSwitch | UnsetType = UNSET
    reasoning_effort: str | UnsetType = UNSET
    chat_template_kwargs: dict[str, Any] | UnsetType = UNSET


# Upstream stream (decode side).


class FunctionDeltaView(msgspec.Struct):
    name: str | None = None
    # A string fragment per the spec; ``Any`` so a server that sends an object still decodes.
    arguments: Any = None


class ToolCallDeltaView(msgspec.Struct):
    index: int | None = None
    id: str | None = None
    function: FunctionDeltaView | None = None


class DeltaView(msgspec.Struct):
    content: str | None = None
    reasoning_content: str | None = None
    # vLLM/Ollama: a string; some servers: an object with ``text`` / ``content``.
    reasoning: Any = None
    refusal: str | None = None
    tool_calls: list[ToolCallDeltaView] | None = None
    function_call: FunctionDeltaView | None = None


class ChoiceView(msgspec.Struct):
    index: int = 0
    delta: DeltaView | None = None
    finish_reason: str | None = None


class PromptDetailsView(msgspec.Struct):
    cached_tokens: int | None = None


class CompletionDetailsView(msgspec.Struct):
    reasoning_tokens: int | None = None


class UsageView(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_cache_hit_tokens: int | None = None  # DeepSeek
    prompt_tokens_details: PromptDetailsView | None = None
    completion_tokens_details: CompletionDetailsView | None = None


class ChunkView(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    choices: list[ChoiceView] | None = None
    usage: UsageView | None = None
    error: Any = None


class ChunkRestView(msgspec.Struct):
    """A chunk after the first: id and model are read once (``ChunkView``), not per token."""

    choices: list[ChoiceView] | None = None
    usage: UsageView | None = None
    error: Any = None


class ToolCallView(msgspec.Struct):
    id: str | None = None
    function: FunctionDeltaView | None = None


class MessageView(msgspec.Struct):
    content: Any = None
    reasoning_content: str | None = None
    reasoning: Any = None
    refusal: str | None = None
    tool_calls: list[ToolCallView] | None = None
    function_call: FunctionDeltaView | None = None


class ResponseChoiceView(msgspec.Struct):
    index: int = 0
    message: MessageView | None = None
    finish_reason: str | None = None


class ResponseView(msgspec.Struct):
    """A non-streaming ``chat.completion`` body."""

    id: str | None = None
    model: str | None = None
    choices: list[ResponseChoiceView] | None = None
    usage: UsageView | None = None
    error: Any = None


# Client request (decode side).


class ImageUrlIn(msgspec.Struct):
    url: str
    detail: str | None = None


class ContentPartIn(msgspec.Struct):
    type: str
    text: str | None = None
    refusal: str | None = None
    image_url: ImageUrlIn | str | None = None


class FunctionCallIn(msgspec.Struct):
    name: str
    arguments: str = ""


class CustomCallIn(msgspec.Struct):
    name: str
    input: str = ""


class ToolCallIn(msgspec.Struct):
    id: str
    type: str = "function"
    function: FunctionCallIn | None = None
    custom: CustomCallIn | None = None


class MessageIn(msgspec.Struct):
    role: str
    content: str | list[ContentPartIn] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None
    reasoning_content: str | None = None
    reasoning: Any = None
    function_call: Any = None


class FunctionIn(msgspec.Struct):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class GrammarIn(msgspec.Struct):
    definition: str
    syntax: str | None = None


class CustomFormatIn(msgspec.Struct):
    type: str = "text"
    grammar: GrammarIn | None = None


class CustomIn(msgspec.Struct):
    name: str
    description: str | None = None
    format: CustomFormatIn | None = None


class ToolIn(msgspec.Struct):
    type: str = "function"
    function: FunctionIn | None = None
    custom: CustomIn | None = None


class NamedIn(msgspec.Struct):
    name: str


class ToolChoiceIn(msgspec.Struct):
    type: str
    function: NamedIn | None = None
    custom: NamedIn | None = None
    allowed_tools: dict[str, Any] | None = None


class JsonSchemaIn(msgspec.Struct):
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None


class ResponseFormatIn(msgspec.Struct):
    type: str
    json_schema: JsonSchemaIn | None = None


class StreamOptionsIn(msgspec.Struct):
    include_usage: bool | None = None


class ThinkingIn(msgspec.Struct):
    type: str
    budget_tokens: int | None = None


class ReasoningIn(msgspec.Struct):
    effort: str | None = None


class ChatRequestIn(msgspec.Struct):
    """What a plain OpenAI Chat client sends; unknown fields are ignored."""

    model: str
    messages: list[MessageIn]
    stream: bool | None = None
    stream_options: StreamOptionsIn | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    user: str | None = None
    tools: list[ToolIn] | None = None
    tool_choice: str | ToolChoiceIn | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormatIn | None = None
    reasoning_effort: str | None = None
    reasoning: ReasoningIn | None = None
    thinking: ThinkingIn | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    n: int | None = None
    logprobs: bool | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, Any] | None = None


# Shared codecs.

ENCODER = msgspec.json.Encoder()
CHUNK_DECODER = msgspec.json.Decoder(ChunkView)
CHUNK_REST_DECODER = msgspec.json.Decoder(ChunkRestView)
RESPONSE_DECODER = msgspec.json.Decoder(ResponseView)
REQUEST_DECODER = msgspec.json.Decoder(ChatRequestIn)
ANY_DECODER = msgspec.json.Decoder()

__all__ = [
    "ANY_DECODER",
    "CHUNK_DECODER",
    "CHUNK_REST_DECODER",
    "ENCODER",
    "REQUEST_DECODER",
    "RESPONSE_DECODER",
    "ChatCompletionRequest",
    "ChatMessage",
    "ChatRequestIn",
    "ChunkView",
    "ContentPart",
    "FunctionCall",
    "FunctionDef",
    "ImageUrl",
    "JsonSchemaFormat",
    "MessageIn",
    "ResponseFormatOut",
    "ResponseView",
    "StreamOptions",
    "ThinkingSwitch",
    "Tool",
    "ToolCall",
    "UsageView",
]
