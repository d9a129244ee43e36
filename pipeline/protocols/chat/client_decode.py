"""Client side: a plain OpenAI Chat Completions request body → neutral ``ChatRequest``.

Accepts the OpenAI shape plus common extras (DeepSeek ``thinking``, ``reasoning_content`` /
``reasoning`` on assistant messages, ``chat_template_kwargs.enable_thinking``, Ollama-style
``reasoning.effort``). Unknown fields are ignored; fields we cannot honour become ``Loss`` entries;
malformed input raises ``RequestError`` naming the field. Facts: ../shared/PROTOCOLS.md §3.1, §4.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import get_args

from pipeline.conversation import Recall
from pipeline.errors import RequestError
from pipeline.losses import record
from pipeline.model import (
    ChatRequest,
    Effort,
    ImagePart,
    Loss,
    Message,
    Part,
    ResponseFormat,
    TextPart,
    ThinkingConfig,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
)
from pipeline.protocols.chat.client_decode_echo import ChatEcho
from pipeline.protocols.chat.helpers import reasoning_text
from pipeline.protocols.chat.models import (
    ENCODER,
    REQUEST_DECODER,
    ChatRequestIn,
    ContentPartIn,
    MessageIn,
    ToolChoiceIn,
    ToolIn,
)
from pipeline.protocols.request_body import decode_body

_EFFORTS: tuple[str, ...] = get_args(Effort)
_SYSTEM_ROLES = ("system", "developer")


def decode_chat_request(body: bytes, recall: Recall | None = None) -> tuple[ChatRequest, ChatEcho]:
    """Parse a Chat Completions request into the neutral request and the echo for the chunk
    encoder (``stream_options.include_usage``). Raises ``RequestError`` on malformed input."""
    raw = decode_body(REQUEST_DECODER, body)
    if not raw.messages:
        raise RequestError("`messages` must contain at least one message")
    losses: list[Loss] = []
    system: list[str] = []
    messages: list[Message] = []
    leading = True
    for i, m in enumerate(raw.messages):
        role = m.role
        if role in _SYSTEM_ROLES:
            text = "\n".join(p.text for p in _parts(m.content, i, losses, images=False) if isinstance(p, TextPart))
            if leading:
                if text:
                    system.append(text)
            else:
                messages.append(Message(role="system", parts=(TextPart(text),)))
            continue
        leading = False
        if role == "user":
            messages.append(Message(role="user", parts=tuple(_parts(m.content, i, losses)), name=m.name))
        elif role == "assistant":
            messages.append(_assistant(m, i, losses))
        elif role == "tool":
            messages.append(_tool_message(m, i, losses))
        else:
            raise RequestError(
                f"messages[{i}].role: unsupported role {role!r} "
                "(expected system, developer, user, assistant or tool)"
            )
    _unsupported(raw, losses)
    stop: tuple[str, ...] = ()
    if isinstance(raw.stop, str):
        stop = (raw.stop,) if raw.stop else ()
    elif raw.stop:
        stop = tuple(s for s in raw.stop if s)
    request = ChatRequest(
        model=raw.model,
        messages=tuple(messages),
        system=tuple(system),
        tools=_tools(raw.tools or (), losses),
        tool_choice=_tool_choice(raw.tool_choice, losses),
        parallel_tool_calls=raw.parallel_tool_calls,
        max_output_tokens=raw.max_completion_tokens if raw.max_completion_tokens is not None else raw.max_tokens,
        temperature=raw.temperature,
        top_p=raw.top_p,
        top_k=raw.top_k,
        stop=stop,
        seed=raw.seed,
        user=raw.user or None,
        thinking=_thinking(raw),
        response_format=_response_format(raw),
        stream=bool(raw.stream),
        losses=tuple(losses),
    )
    return request, ChatEcho(include_usage=raw.stream_options is not None and bool(raw.stream_options.include_usage))




def _parts(
    content: str | list[ContentPartIn] | None, i: int, losses: list[Loss], *, images: bool = True
) -> list[TextPart | ImagePart]:
    if content is None:
        return []
    if isinstance(content, str):
        return [TextPart(content)] if content else []
    out: list[TextPart | ImagePart] = []
    for j, part in enumerate(content):
        kind = part.type
        if kind == "text" or kind == "input_text":  # input_text: Responses-style clients
            if part.text is None:
                raise RequestError(f"messages[{i}].content[{j}].text is required for a text part")
            out.append(TextPart(part.text))
        elif kind == "refusal":
            out.append(TextPart(part.refusal or ""))
        elif kind == "image_url":
            image = part.image_url
            if image is None:
                raise RequestError(f"messages[{i}].content[{j}].image_url is required for an image_url part")
            url, detail = (image, None) if isinstance(image, str) else (image.url, image.detail)
            if images:
                out.append(ImagePart(url=url, detail=detail))
            else:
                record(losses, "image", f"messages[{i}]: an image in a system message was dropped")
        else:
            record(losses, "content_part", f"messages[{i}].content[{j}]: type {kind!r} dropped")
    return out


def _assistant(m: MessageIn, i: int, losses: list[Loss]) -> Message:
    parts: list[Part] = list(_parts(m.content, i, losses))
    for j, call in enumerate(m.tool_calls or ()):
        if call.type == "function":
            if call.function is None:
                raise RequestError(f"messages[{i}].tool_calls[{j}].function is required")
            parts.append(ToolCallPart(id=call.id, name=call.function.name, arguments=call.function.arguments))
        elif call.type == "custom":
            if call.custom is None:
                raise RequestError(f"messages[{i}].tool_calls[{j}].custom is required")
            arguments = ENCODER.encode({"input": call.custom.input}).decode()
            parts.append(ToolCallPart(id=call.id, name=call.custom.name, arguments=arguments, origin="custom"))
        else:
            raise RequestError(f"messages[{i}].tool_calls[{j}].type: unsupported type {call.type!r}")
    if m.function_call is not None:
        record(losses, "function_call", f"messages[{i}]: legacy function_call dropped")
    reasoning = m.reasoning_content if m.reasoning_content is not None else reasoning_text(m.reasoning)
    return Message(role="assistant", parts=tuple(parts), reasoning=reasoning, name=m.name)


def _tool_message(m: MessageIn, i: int, losses: list[Loss]) -> Message:
    if not m.tool_call_id:
        raise RequestError(f"messages[{i}].tool_call_id is required for a tool message")
    content = tuple(_parts(m.content, i, losses))
    return Message(role="tool", parts=(ToolResultPart(call_id=m.tool_call_id, content=content),), name=m.name)




def _tools(tools: Sequence[ToolIn], losses: list[Loss]) -> tuple[ToolSpec, ...]:
    out: list[ToolSpec] = []
    for k, tool in enumerate(tools):
        if tool.type == "function":
            fn = tool.function
            if fn is None:
                raise RequestError(f"tools[{k}].function is required for a function tool")
            out.append(
                ToolSpec(name=fn.name, description=fn.description or "", parameters=fn.parameters or {},
                         strict=fn.strict)
            )
        elif tool.type == "custom":
            custom = tool.custom
            if custom is None:
                raise RequestError(f"tools[{k}].custom is required for a custom tool")
            grammar = syntax = None
            if custom.format is not None and custom.format.grammar is not None:
                grammar, syntax = custom.format.grammar.definition, custom.format.grammar.syntax
            out.append(ToolSpec(name=custom.name, description=custom.description or "", kind="custom",
                                grammar=grammar, syntax=syntax))
            record(losses, "custom_tool", f"{custom.name}: called as a function with {{\"input\": ...}}")
        else:
            record(losses, "tool", f"tools[{k}]: tool type {tool.type!r} is not supported; dropped")
    return tuple(out)


def _tool_choice(choice: str | ToolChoiceIn | None, losses: list[Loss]) -> ToolChoice | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice in ("auto", "none", "required"):
            return ToolChoice(mode=choice)  # type: ignore[arg-type]  # one of the three, checked above
        raise RequestError(f"tool_choice: expected 'auto', 'none', 'required' or an object, got {choice!r}")
    if choice.type == "function" or choice.type == "custom":
        named = choice.function if choice.type == "function" else choice.custom
        if named is None:
            raise RequestError(f"tool_choice.{choice.type}.name is required")
        return ToolChoice(mode="tool", name=named.name)
    if choice.type == "allowed_tools":
        mode = (choice.allowed_tools or {}).get("mode", "auto")
        record(losses, "tool_choice", "allowed_tools subset is not enforced")
        return ToolChoice(mode="required" if mode == "required" else "auto")
    raise RequestError(f"tool_choice.type: unsupported type {choice.type!r}")


def _response_format(raw: ChatRequestIn) -> ResponseFormat | None:
    rf = raw.response_format
    if rf is None or rf.type == "text":
        return None
    if rf.type == "json_object":
        return ResponseFormat(type="json_object")
    if rf.type == "json_schema":
        js = rf.json_schema
        if js is None:
            raise RequestError("response_format.json_schema is required when type is 'json_schema'")
        return ResponseFormat(type="json_schema", schema=js.schema, name=js.name, strict=js.strict)
    raise RequestError(f"response_format.type: unsupported type {rf.type!r}")


def _thinking(raw: ChatRequestIn) -> ThinkingConfig:
    effort = raw.reasoning_effort
    if effort is None and raw.reasoning is not None:
        effort = raw.reasoning.effort
    if effort is not None and effort not in _EFFORTS:
        raise RequestError(f"reasoning_effort: expected one of {', '.join(_EFFORTS)}, got {effort!r}")
    enabled: bool | None = None
    budget: int | None = None
    if raw.thinking is not None:
        kind = raw.thinking.type
        if kind == "enabled":
            enabled = True
        elif kind == "disabled":
            enabled = False
        elif kind not in ("auto", "adaptive"):
            raise RequestError(f"thinking.type: expected 'enabled' or 'disabled', got {kind!r}")
        budget = raw.thinking.budget_tokens
    elif raw.chat_template_kwargs and isinstance(raw.chat_template_kwargs.get("enable_thinking"), bool):
        enabled = raw.chat_template_kwargs["enable_thinking"]
    if effort == "none" and enabled is None:
        enabled = False
    # effort is None or in _EFFORTS (checked above): a str mypy cannot narrow to the Literal.
    return ThinkingConfig(enabled=enabled, effort=effort, budget_tokens=budget)  # type: ignore[arg-type]


def _unsupported(raw: ChatRequestIn, losses: list[Loss]) -> None:
    if raw.n is not None and raw.n > 1:
        record(losses, "n", f"n={raw.n}: only one choice is generated")
    if raw.logprobs:
        record(losses, "logprobs", "logprobs are not returned")
    if raw.presence_penalty:
        record(losses, "presence_penalty", str(raw.presence_penalty))
    if raw.frequency_penalty:
        record(losses, "frequency_penalty", str(raw.frequency_penalty))
    if raw.logit_bias:
        record(losses, "logit_bias", f"{len(raw.logit_bias)} entries")


__all__ = ["decode_chat_request"]
