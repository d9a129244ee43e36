"""Upstream side: neutral ``ChatRequest`` → Chat Completions request body for a backend ``Profile``.

Backend differences (thinking switch, system folding, strictness) are read from the profile, never
from backend names; what the model can do (thinking by default, a forced ``tool_choice`` while
thinking, the reasoning replay field, effort levels, vision) from its card in the model table
(``pipeline.model_limits``). A forced ``tool_choice`` the model rejects while thinking is sent as it
came, with thinking off for that request. What the target cannot carry is reported through
``lose(what, detail)``. Facts: ../shared/PROTOCOLS.md §3.1, §4.2-4.5.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from msgspec import UNSET

from pipeline.model import (
    ChatRequest,
    ImagePart,
    Message,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
    part_kind,
    text_of,
)
from pipeline.model_limits import (
    ModelCard,
    card_for,
    display_not_carried,
    effort_not_sent,
    effort_word,
    image_refusal,
    thinking_for,
)
from pipeline.profiles import Profile
from pipeline.protocols.chat.models import (
    ENCODER,
    ChatCompletionRequest,
    ChatMessage,
    ContentPart,
    FunctionCall,
    FunctionDef,
    ImageUrl,
    JsonSchemaFormat,
    ResponseFormatOut,
    StreamOptions,
    ThinkingSwitch,
    Tool,
    ToolCall,
)
from pipeline.protocols.openai import LOCAL_SHELL_DESCRIPTION, LOCAL_SHELL_SCHEMA, freeform_parameters

Lose = Callable[[str, str], None]

IMAGE_PLACEHOLDER = "[image omitted: not supported by this model]"
TOOL_IMAGE_PLACEHOLDER = "[image omitted: tool results cannot carry images]"
TOOL_ERROR_PREFIX = "[tool error] "
TOOL_IMAGE_MOVED = "[image {n}: in the user message after the tool results]"
TOOL_IMAGE_LABEL = "[image {n}, returned by tool call {call_id}]"
_USER_BAD_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def _no_loss(what: str, detail: str) -> None:
    return None


def encode_request(
    request: ChatRequest,
    *,
    model: str,
    profile: Profile,
    card: ModelCard | None = None,
    stream: bool = True,
    lose: Lose | None = None,
) -> bytes:
    """The JSON body for ``POST /chat/completions`` on an upstream described by ``profile``, for
    ``model`` as ``card`` describes it (default: the model table's, ``card_for``)."""
    lose = lose or _no_loss
    card = card or card_for(model, profile)
    on = thinking_for(request, card, f"{model} on {profile.name}", lose)
    body = ChatCompletionRequest(
        model=model, messages=_messages(request, profile, card, on, lose), stream=stream
    )
    if stream and profile.stream_usage:
        body.stream_options = StreamOptions(include_usage=True)
    _thinking(body, request, profile, card, on, lose)
    if request.tools:
        body.tools = [_tool(spec, profile) for spec in request.tools]
        if request.tool_choice is not None:
            body.tool_choice = _tool_choice(request)
        if request.parallel_tool_calls is not None:
            body.parallel_tool_calls = request.parallel_tool_calls
    if request.max_output_tokens is not None:
        body.max_tokens = request.max_output_tokens
    if request.temperature is not None:
        body.temperature = request.temperature
    if request.top_p is not None:
        body.top_p = request.top_p
    if request.top_k is not None:
        if profile.send_top_k:
            body.top_k = request.top_k
        else:
            lose("top_k", f"{profile.name} does not accept top_k")
    if request.seed is not None:
        body.seed = request.seed
    if request.stop:
        stop = list(request.stop)
        if len(stop) > profile.max_stop:
            lose("stop", f"{len(stop)} stop sequences, {profile.name} accepts {profile.max_stop}")
            stop = stop[: profile.max_stop]
        body.stop = stop
    if request.user and profile.send_user:
        body.user = _USER_BAD_CHARS.sub("_", request.user)[:512]
    rf = request.response_format
    if rf is not None and rf.type != "text":
        if rf.type == "json_schema":
            schema = JsonSchemaFormat(name=rf.name or "response", schema=rf.schema or {})
            if rf.strict is not None:
                schema.strict = rf.strict
            body.response_format = ResponseFormatOut(type="json_schema", json_schema=schema)
        else:
            body.response_format = ResponseFormatOut(type=rf.type)
    return ENCODER.encode(body)




def _thinking(body: ChatCompletionRequest, request: ChatRequest, profile: Profile, card: ModelCard,
              on: bool, lose: Lose) -> None:
    effort = request.thinking.effort
    word = effort_word(card, effort)
    switch = profile.thinking_switch
    if switch == "deepseek":
        body.thinking = ThinkingSwitch(type="enabled" if on else "disabled")
        if on and word:
            body.reasoning_effort = word
    elif switch == "chat_template_kwargs":
        said = request.thinking.enabled is not None or effort == "none" or on != card.thinking_default
        if said:
            body.chat_template_kwargs = {"enable_thinking": on}
        if on and word:
            body.reasoning_effort = word
    elif word and request.thinking.enabled is not False:
        body.reasoning_effort = word
    if not on and body.reasoning_effort is UNSET:
        effort_not_sent(request, lose)
    if on:
        display_not_carried(request, profile.name, lose)


def _tool(spec: ToolSpec, profile: Profile) -> Tool:
    if spec.kind == "custom":
        fn = FunctionDef(name=spec.name, parameters=freeform_parameters(spec))
        if spec.description:
            fn.description = spec.description
        return Tool(function=fn)
    if spec.kind == "local_shell":
        return Tool(
            function=FunctionDef(
                name=spec.name or "local_shell",
                parameters=LOCAL_SHELL_SCHEMA,
                description=spec.description or LOCAL_SHELL_DESCRIPTION,
            )
        )
    fn = FunctionDef(name=spec.name, parameters=spec.parameters or _EMPTY_SCHEMA)
    if spec.description:
        fn.description = spec.description
    if profile.supports_strict and spec.strict:
        fn.strict = True
    return Tool(function=fn)


def _tool_choice(request: ChatRequest) -> str | dict[str, Any]:
    """The client's choice as it came (a forced one the model rejects while thinking went with
    thinking off: ``model_limits.thinking_on``)."""
    choice = request.tool_choice
    assert choice is not None
    mode = choice.mode
    if mode == "tool":
        if not choice.name:
            return "required"
        return {"type": "function", "function": {"name": choice.name}}
    return mode




def _messages(request: ChatRequest, profile: Profile, card: ModelCard, on: bool, lose: Lose) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    system = [text for text in request.system if text]
    folded = profile.fold_system
    if folded:
        for message in request.messages:
            if message.role == "system":
                text = text_of(message.parts, "system message", lose)
                if text:
                    system.append(text)
    if system:
        out.append(ChatMessage(role="system", content="\n\n".join(system)))
    replay_all = on and profile.reasoning_on_every_assistant
    field = card.reasoning_field
    # Images of tool results, carried by a user message after the run of tool messages (a Chat
    # tool message holds text only, and nothing may come between the results of one turn).
    refused = image_refusal(card, profile)
    moved: list[TextPart | ImagePart] | None = [] if refused is None else None
    for message in request.messages:
        role = message.role
        if moved and role != "tool":
            _user(Message(role="user", parts=tuple(moved)), profile, card, out, lose)
            moved.clear()
        if role == "assistant":
            msg = _assistant(message, lose)
            if on:
                reasoning = message.reasoning
                if reasoning is None and replay_all:
                    reasoning = ""
                if reasoning is not None:
                    if field == "reasoning":
                        msg.reasoning = reasoning
                    else:
                        msg.reasoning_content = reasoning
            out.append(msg)
        elif role == "tool":
            _tool_results(message.parts, out, lose, moved, refused)
        elif role == "system":
            if not folded:
                text = text_of(message.parts, "system message", lose)
                if text:
                    out.append(ChatMessage(role="system", content=text))
        else:
            _user(message, profile, card, out, lose)
    if moved:
        _user(Message(role="user", parts=tuple(moved)), profile, card, out, lose)
    return out



def _user(message: Message, profile: Profile, card: ModelCard, out: list[ChatMessage], lose: Lose) -> None:
    parts: list[ContentPart] = []
    has_image = False
    for part in message.parts:
        if isinstance(part, TextPart):
            parts.append(ContentPart(type="text", text=part.text))
        elif isinstance(part, ImagePart):
            refused = image_refusal(card, profile)
            if refused is None:
                has_image = True
                image = ImageUrl(url=part.url)
                if part.detail:
                    image.detail = part.detail
                parts.append(ContentPart(type="image_url", image_url=image))
            else:
                lose("image", f"{refused}; sent a placeholder")
                parts.append(ContentPart(type="text", text=IMAGE_PLACEHOLDER))
        elif isinstance(part, ToolResultPart):
            # Not the neutral convention (tool messages carry results), but keep it answerable.
            _tool_results((part,), out, lose)
        else:
            lose(part_kind(part), f"a {part_kind(part)} part cannot be sent in a user message")
    msg = ChatMessage(role="user")
    if has_image or (not profile.content_as_string and len(parts) > 1):
        msg.content = parts
    else:
        msg.content = "\n".join(p.text for p in parts if isinstance(p.text, str))
    if message.name:
        msg.name = message.name
    out.append(msg)


def _assistant(message: Message, lose: Lose) -> ChatMessage:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, ToolCallPart):
            calls.append(
                ToolCall(id=part.id, function=FunctionCall(name=part.name, arguments=part.arguments or "{}"))
            )
        elif isinstance(part, ThinkingPart):
            if part.text:
                lose("thinking_unresolved", "a thinking part reached the Chat encoder; dropped")
        elif isinstance(part, ImagePart):
            lose("image", "assistant messages cannot carry images; sent a placeholder")
            texts.append(IMAGE_PLACEHOLDER)
        else:
            lose(part_kind(part), "a tool result cannot be part of an assistant message")
    msg = ChatMessage(role="assistant")
    if calls:
        msg.tool_calls = calls
        msg.content = "\n".join(texts) if texts else None
    else:
        msg.content = "\n".join(texts)
    if message.name:
        msg.name = message.name
    return msg


def _tool_results(parts: tuple[Any, ...], out: list[ChatMessage], lose: Lose,
                  moved: list[TextPart | ImagePart] | None = None, refused: str | None = None) -> None:
    """One tool message per result. A result's images go to ``moved`` (for the user message after
    the tool messages; each result's text says so), or without it are a placeholder and a loss
    (``refused``: why the model gets none)."""
    for part in parts:
        if not isinstance(part, ToolResultPart):
            if isinstance(part, TextPart) and out and out[-1].role == "tool":
                # Stray text beside a result: append it to that result rather than drop it.
                prev = out[-1]
                prev.content = f"{prev.content}\n{part.text}" if prev.content else part.text
            else:
                lose(part_kind(part), "only a tool result can be sent in a tool message")
            continue
        texts: list[str] = []
        for item in part.content:
            if isinstance(item, TextPart):
                texts.append(item.text)
            elif moved is not None:
                n = sum(isinstance(p, ImagePart) for p in moved) + 1
                texts.append(TOOL_IMAGE_MOVED.format(n=n))
                moved.extend((TextPart(TOOL_IMAGE_LABEL.format(n=n, call_id=part.call_id)), item))
            else:
                lose("image", f"{refused or 'a Chat tool message carries text only'}; sent a placeholder")
                texts.append(TOOL_IMAGE_PLACEHOLDER)
        content = "\n".join(texts)
        if part.is_error:
            content = TOOL_ERROR_PREFIX + content
        out.append(ChatMessage(role="tool", tool_call_id=part.call_id, content=content))



__all__ = ["IMAGE_PLACEHOLDER", "TOOL_ERROR_PREFIX", "TOOL_IMAGE_LABEL", "TOOL_IMAGE_MOVED", "TOOL_IMAGE_PLACEHOLDER",
           "encode_request"]
