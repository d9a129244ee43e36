"""Upstream side: neutral ``ChatRequest`` → an OpenAI Responses request body (``POST /responses``).

Always streamed and stateless (``stream: true``, ``store: false``: the whole history is sent every
turn). Backend differences are read from the ``Profile``: whether reasoning items' encrypted
content is asked for (``include``) and may come back, whether an assistant turn's reasoning may be
replayed as ``reasoning_text`` without it, whether ``custom`` (freeform) tools exist (llama.cpp's
``/v1/responses`` takes ``function`` tools only: a custom tool becomes a function with one string
``input``, the neutral form of its call, so nothing needs mapping back). A reasoning item's
``encrypted_content`` goes only to the upstream that made it (``Message.upstream_seal``'s id is
this upstream's). What the model can do (thinking by default, a forced ``tool_choice`` while
thinking, effort levels, vision) is its card's in the model table (``pipeline.model_limits``): a
forced ``tool_choice`` it rejects while thinking goes as it came, with thinking off for that
request. What cannot be carried is reported through ``lose(what, detail)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec

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
from pipeline.protocols.openai import LOCAL_SHELL_DESCRIPTION, LOCAL_SHELL_SCHEMA, freeform_parameters
from pipeline.protocols.responses.helpers import open_seal

Lose = Callable[[str, str], None]
Item = dict[str, Any]

IMAGE_PLACEHOLDER = "[image omitted: not supported by this model]"
TOOL_ERROR_PREFIX = "[tool error] "
_USER_BAD_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()


def _no_loss(what: str, detail: str) -> None:
    return None


def encode_request(request: ChatRequest, *, model: str, profile: Profile, upstream_id: str,
                   card: ModelCard | None = None, lose: Lose | None = None) -> bytes:
    """The JSON body for ``POST /responses`` on ``upstream_id``, described by ``profile``, for
    ``model`` as ``card`` describes it (default: the model table's, ``card_for``)."""
    return _ENCODER.encode(request_body(request, model=model, profile=profile, upstream_id=upstream_id, card=card,
                                        lose=lose))


def request_body(request: ChatRequest, *, model: str, profile: Profile, upstream_id: str,
                 card: ModelCard | None = None, lose: Lose | None = None) -> dict[str, Any]:
    """``encode_request``'s body before encoding (for tests and goldens)."""
    lose = lose or _no_loss
    card = card or card_for(model, profile)
    on = thinking_for(request, card, f"{model} on {profile.name}", lose)
    custom = {spec.name for spec in request.tools if spec.kind == "custom"} if profile.custom_tools else set()
    system = [text for text in request.system if text]
    body: dict[str, Any] = {"model": model}
    items = _items(request, profile, card, upstream_id, on, custom, system, lose)
    if system:
        body["instructions"] = "\n\n".join(system)
    body["input"] = items
    body["stream"] = True
    body["store"] = False
    _reasoning(body, request, profile, card, on, lose)
    if request.tools:
        body["tools"] = [_tool(spec, profile, custom) for spec in request.tools]
        if request.tool_choice is not None:
            body["tool_choice"] = _tool_choice(request, custom)
        if request.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.max_output_tokens is not None:
        body["max_output_tokens"] = request.max_output_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.top_k is not None:
        lose("top_k", "the Responses API has no top_k")
    if request.seed is not None:
        lose("seed", "the Responses API has no seed")
    if request.stop:
        lose("stop", "the Responses API has no stop sequences")
    if request.user and profile.send_user:
        body["user"] = _USER_BAD_CHARS.sub("_", request.user)[:512]
    rf = request.response_format
    if rf is not None and rf.type != "text":
        if rf.type == "json_schema":
            fmt: dict[str, Any] = {"type": "json_schema", "name": rf.name or "response", "schema": rf.schema or {}}
            if rf.strict is not None:
                fmt["strict"] = rf.strict
        else:
            fmt = {"type": "json_object"}
        body["text"] = {"format": fmt}
    return body


# ---------------------------------------------------------------- reasoning and tools


def _reasoning(body: dict[str, Any], request: ChatRequest, profile: Profile, card: ModelCard, on: bool,
               lose: Lose) -> None:
    effort = request.thinking.effort
    if not on:
        if card.thinking_default:  # the upstream would think unless told not to
            body["reasoning"] = {"effort": "none"}
        effort_not_sent(request, lose)
        return
    reasoning: dict[str, Any] = {}
    if effort and effort != "none":
        # Responses clients speak OpenAI's words: a model without levels gets the client's word.
        word = effort_word(card, effort) if card.reasoning_levels else effort
        if word:
            reasoning["effort"] = word
    reasoning["summary"] = "auto"
    body["reasoning"] = reasoning
    display_not_carried(request, profile.name, lose)
    if profile.encrypted_reasoning:
        body["include"] = ["reasoning.encrypted_content"]


def _tool(spec: ToolSpec, profile: Profile, custom: set[str]) -> dict[str, Any]:
    if spec.kind == "custom":
        if spec.name in custom:
            tool: dict[str, Any] = {"type": "custom", "name": spec.name}
            if spec.description:
                tool["description"] = spec.description
            if spec.grammar:
                tool["format"] = {"type": "grammar", "syntax": spec.syntax or "lark", "definition": spec.grammar}
            else:
                tool["format"] = {"type": "text"}
            return tool
        tool = {"type": "function", "name": spec.name, "parameters": freeform_parameters(spec)}
    elif spec.kind == "local_shell":
        tool = {"type": "function", "name": spec.name or "local_shell", "parameters": LOCAL_SHELL_SCHEMA,
                "description": spec.description or LOCAL_SHELL_DESCRIPTION}
        return tool
    else:
        tool = {"type": "function", "name": spec.name, "parameters": spec.parameters or _EMPTY_SCHEMA}
        if profile.supports_strict and spec.strict:
            tool["strict"] = True
    if spec.description:
        tool["description"] = spec.description
    return tool


def _tool_choice(request: ChatRequest, custom: set[str]) -> Any:
    """The client's choice as it came (a forced one the model rejects while thinking went with
    thinking off: ``model_limits.thinking_on``)."""
    choice = request.tool_choice
    assert choice is not None
    mode = choice.mode
    if mode == "tool":
        if not choice.name:
            return "required"
        return {"type": "custom" if choice.name in custom else "function", "name": choice.name}
    return mode


# ---------------------------------------------------------------- input items


def _items(request: ChatRequest, profile: Profile, card: ModelCard, upstream_id: str, on: bool, custom: set[str],
           system: list[str], lose: Lose) -> list[Item]:
    items: list[Item] = []
    calls: dict[str, str] = {}  # call id → the item type its output answers
    for message in request.messages:
        role = message.role
        if role == "assistant":
            _assistant(message, profile, upstream_id, on, custom, calls, items, lose)
        elif role == "tool":
            _results(message.parts, profile, card, calls, items, lose)
        elif role == "system":
            text = text_of(message.parts, "system message", lose)
            if not text:
                continue
            if profile.fold_system:
                system.append(text)
            else:
                items.append({"type": "message", "role": "developer",
                              "content": [{"type": "input_text", "text": text}]})
        else:
            _user(message, profile, card, calls, items, lose)
    return items



def _user(message: Message, profile: Profile, card: ModelCard, calls: dict[str, str], items: list[Item],
          lose: Lose) -> None:
    content: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            content.append({"type": "input_text", "text": part.text})
        elif isinstance(part, ImagePart):
            content.append(_image(part, profile, card, lose))
        elif isinstance(part, ToolResultPart):
            _results((part,), profile, card, calls, items, lose)
        else:
            lose(part_kind(part), f"a {part_kind(part)} part cannot be sent in a user message")
    if content:
        items.append({"type": "message", "role": "user", "content": content})


def _assistant(message: Message, profile: Profile, upstream_id: str, on: bool, custom: set[str],
               calls: dict[str, str], items: list[Item], lose: Lose) -> None:
    tool_calls = [p for p in message.parts if isinstance(p, ToolCallPart)]
    if on:
        reasoning = _reasoning_item(message, profile, upstream_id, bool(tool_calls), lose)
        if reasoning is not None:
            items.append(reasoning)
    texts: list[str] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, ThinkingPart):
            if part.text:
                lose("thinking_unresolved", "a thinking part reached the Responses encoder; dropped")
        elif isinstance(part, ImagePart):
            lose("image", "assistant messages cannot carry images; sent a placeholder")
            texts.append(IMAGE_PLACEHOLDER)
        elif isinstance(part, ToolResultPart):
            lose("tool_result", "a tool result cannot be part of an assistant message")
    if texts:
        items.append({"type": "message", "role": "assistant", "content": "\n".join(texts)})
    for call in tool_calls:
        if call.name in custom:
            calls[call.id] = "custom_tool_call_output"
            items.append({"type": "custom_tool_call", "call_id": call.id, "name": call.name,
                          "input": _custom_input(call.arguments)})
        else:
            calls[call.id] = "function_call_output"
            items.append({"type": "function_call", "call_id": call.id, "name": call.name,
                          "arguments": call.arguments or "{}"})


def _reasoning_item(message: Message, profile: Profile, upstream_id: str, has_calls: bool,
                    lose: Lose) -> Item | None:
    """The reasoning item that goes back before an assistant turn, or ``None``."""
    item: Item = {"type": "reasoning", "summary": []}
    seal = message.upstream_seal
    opened = open_seal(seal[1]) if seal is not None and seal[0] == upstream_id else None
    if opened is not None and opened.encrypted_content:
        if opened.id:
            item["id"] = opened.id
        item["encrypted_content"] = opened.encrypted_content
    reasoning = message.reasoning
    if reasoning is None and has_calls and profile.reasoning_on_every_assistant:
        reasoning = ""
    if reasoning is not None and profile.reasoning_text_replay:
        item["content"] = [{"type": "reasoning_text", "text": reasoning}]
    elif reasoning and "encrypted_content" not in item:
        lose("reasoning", f"{profile.name} takes back only its own reasoning items: this turn's is not replayed")
    if "encrypted_content" in item or "content" in item:
        return item
    return None


def _custom_input(arguments: str) -> str:
    """A custom call's raw input from its neutral arguments (``{"input": ...}``)."""
    try:
        value = _DECODER.decode(arguments)
    except msgspec.DecodeError:
        return arguments
    if isinstance(value, dict) and isinstance(value.get("input"), str):
        return value["input"]
    return arguments


def _image(part: ImagePart, profile: Profile, card: ModelCard, lose: Lose) -> dict[str, Any]:
    """An ``input_image`` part, or the placeholder text where the model or endpoint takes none."""
    refused = image_refusal(card, profile)
    if refused is not None:
        lose("image", f"{refused}; sent a placeholder")
        return {"type": "input_text", "text": IMAGE_PLACEHOLDER}
    return {"type": "input_image", "image_url": part.url, "detail": part.detail or "auto"}


def _results(parts: tuple[Any, ...], profile: Profile, card: ModelCard, calls: dict[str, str], items: list[Item],
             lose: Lose) -> None:
    for part in parts:
        if not isinstance(part, ToolResultPart):
            lose(part_kind(part), "only a tool result can be sent in a tool message")
            continue
        content: list[dict[str, Any]] = []
        texts: list[str] = []
        for piece in part.content:
            if isinstance(piece, TextPart):
                texts.append(piece.text)
                content.append({"type": "input_text", "text": piece.text})
            else:
                image = _image(piece, profile, card, lose)
                content.append(image)
                if image["type"] == "input_text":
                    texts.append(image["text"])
        output: str | list[dict[str, Any]]
        if len(content) > len(texts):  # an image: the list form
            output = content
            if part.is_error:
                content.insert(0, {"type": "input_text", "text": TOOL_ERROR_PREFIX.strip()})
        else:
            output = (TOOL_ERROR_PREFIX if part.is_error else "") + "\n".join(texts)
        kind = calls.get(part.call_id, "function_call_output")
        items.append({"type": kind, "call_id": part.call_id, "output": output})



__all__ = ["IMAGE_PLACEHOLDER", "TOOL_ERROR_PREFIX", "encode_request", "request_body"]
