"""Upstream side: neutral ``ChatRequest`` → Anthropic Messages request body for a ``Profile``.

For ``type: anthropic_messages`` upstreams: the real Anthropic API (profile ``anthropic``) and
DeepSeek's Anthropic endpoint (``deepseek_anthropic``). The body is the decoder's own view Structs
(``models.py``, unset fields omitted); content blocks are plain dicts. What the profile says, and
not the backend's name, decides: system text always goes to ``system`` (neither accepts a
``role: "system"`` message), consecutive turns of one role are merged (tool results lead their
user turn), thinking goes back as a ``thinking`` block first in its assistant turn: the exact text
with the upstream's own signature (``Message.upstream_seal``, only when this upstream sealed it),
else, where the profile says so (``thinking_on_tool_turns``) and the upstream takes unsigned
blocks, an empty one on a tool turn. ``thinking`` disabled never goes with an effort; an effort
the model has no word for (no ``output_config``) is not sent. What the
model can do (thinking by default, a forced ``tool_choice`` while thinking, effort levels, vision)
is its card's in the model table (``pipeline.model_limits``): a forced ``tool_choice`` it rejects
while thinking goes as it came, with thinking off for that request. An upstream that wants the
final tool turn to start with its own signed thinking (``keep_client_thinking``: Anthropic) gets
thinking off for a request whose final tool turn has none (one made with thinking off), as
Anthropic advises. Where the real API checks them (``keep_client_thinking``,
``thinking_fixed_sampling``): a thinking budget of at least 1024 and below ``max_tokens`` (no
thinking when ``max_tokens`` leaves no room for one), and with thinking on no ``temperature`` but
1, no ``top_k``, no ``top_p`` below 0.95; no ``temperature`` above the profile's largest. What
cannot be carried is reported through ``lose(what, detail)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from pipeline.model import (
    ChatRequest,
    ImagePart,
    Message,
    Part,
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
from pipeline.protocols.anthropic.models import (
    MessageParam,
    MessagesRequest,
    MetadataParam,
    OutputConfigParam,
    OutputFormatParam,
    RawBlock,
    ThinkingParam,
    ToolChoiceParam,
)
from pipeline.protocols.openai import LOCAL_SHELL_DESCRIPTION, LOCAL_SHELL_SCHEMA, freeform_parameters

Lose = Callable[[str, str], None]

ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()
IMAGE_PLACEHOLDER = "[image omitted: not supported by this model]"
# The gateway's own envelopes (thinking_filter's gw2., the older gw1.): opened by thinking_filter
# for the upstream that sealed them, never sent anywhere as they are.
_ENVELOPE_PREFIXES = ("gw1.", "gw2.")
_MIN_BUDGET = 1024  # the Messages API's smallest thinking budget
_MIN_THINKING_TOP_P = 0.95  # the smallest top_p the Messages API takes with thinking on


def _no_loss(what: str, detail: str) -> None:
    return None


def encode_request(request: ChatRequest, *, model: str, profile: Profile, card: ModelCard | None = None,
                   upstream_id: str = "", stream: bool = True, lose: Lose | None = None) -> bytes:
    """The JSON body for ``POST /v1/messages`` on an upstream described by ``profile``, for ``model``
    as ``card`` describes it (default: the model table's, ``card_for``); a thinking block's
    signature is sent only when ``Message.upstream_seal`` names ``upstream_id``."""
    lose = lose or _no_loss
    card = card or card_for(model, profile)
    on = thinking_for(request, card, f"{model} on {profile.name}", lose)
    if on and profile.keep_client_thinking and _final_turn_unthought(request, upstream_id):
        on = False
        lose("thinking_off", "thinking disabled for this request: its final tool turn was made without thinking, "
                             f"and {profile.name} wants that turn to start with its own thinking block")
    max_tokens = request.max_output_tokens or card.max_output_tokens
    if on and profile.keep_client_thinking and max_tokens <= _MIN_BUDGET:
        lose("thinking", f"thinking not sent: max_tokens {max_tokens} leaves no room for {profile.name}'s "
                         f"smallest thinking budget ({_MIN_BUDGET}) below it")
        on = False
    system, messages = _messages(request, profile, card, upstream_id, on, lose)
    body = MessagesRequest(model=model, messages=messages, max_tokens=max_tokens)
    if system:
        body.system = "\n\n".join(system)
    if stream:
        body.stream = True
    _thinking(body, request, profile, card, on, max_tokens, lose)
    if request.tools:
        body.tools = [_tool(spec, profile) for spec in request.tools]
        choice = _tool_choice(request)
        if choice is not None:
            body.tool_choice = choice
    _sampling(body, request, profile, on, lose)
    if request.stop:
        body.stop_sequences = list(request.stop)
    if request.user and profile.send_user:
        body.metadata = MetadataParam(user_id=request.user[:256])
    _output_format(body, request, profile, lose)
    return ENCODER.encode(body)


# Parameters.


def _final_turn_unthought(request: ChatRequest, upstream_id: str) -> bool:
    """The request's final assistant turn has tool calls but no thinking this upstream signed (no
    thinking block of its own kept as it came, no seal of it): Anthropic's "a final assistant
    message must start with a thinking block" cannot be met with thinking on."""
    last = next((m for m in reversed(request.messages) if m.role == "assistant"), None)
    if last is None or not any(isinstance(p, ToolCallPart) for p in last.parts):
        return False
    own = any(isinstance(p, ThinkingPart) and p.signature for p in last.parts)
    sealed = last.upstream_seal is not None and last.upstream_seal[0] == upstream_id
    return not (own or sealed)


def _thinking(body: MessagesRequest, request: ChatRequest, profile: Profile, card: ModelCard, on: bool,
              max_tokens: int, lose: Lose) -> None:
    asked = request.thinking
    effort = asked.effort if asked.effort not in (None, "none") else None
    if not on:
        if asked.enabled is not None or asked.effort == "none" or card.thinking_default:
            body.thinking = ThinkingParam(type="disabled")
        effort_not_sent(request, lose)  # DeepSeek: thinking disabled together with an effort is a 400
        return
    budget = asked.budget_tokens
    if profile.keep_client_thinking or budget is not None:  # the real API needs a budget below max_tokens
        budget = budget if budget is not None else max(_MIN_BUDGET, min(max_tokens // 2, 32_000))
        budget = min(max(budget, _MIN_BUDGET), max(max_tokens - 1, 1))
        if asked.budget_tokens is not None and budget != asked.budget_tokens:
            lose("budget_tokens", f"budget_tokens {asked.budget_tokens} sent as {budget}: at least {_MIN_BUDGET} "
                                  f"and below max_tokens ({max_tokens})")
    body.thinking = ThinkingParam(type="enabled", budget_tokens=budget)
    if profile.keep_client_thinking:  # the real API: it shows its thinking as the client asked
        body.thinking.display = asked.display
    else:
        display_not_carried(request, profile.name, lose)
    word = effort_word(card, effort)
    if word:
        body.output_config = OutputConfigParam(effort=word)
    elif effort is not None:  # local servers' /v1/messages: no output_config, no other effort knob
        lose("effort", f"effort {effort!r} not sent: {card.model} on {profile.name} has no effort levels")


def _sampling(body: MessagesRequest, request: ChatRequest, profile: Profile, on: bool, lose: Lose) -> None:
    fixed = on and profile.thinking_fixed_sampling
    if (temperature := request.temperature) is not None:
        if fixed and temperature != 1:
            lose("temperature", f"temperature {temperature} not sent: {profile.name} takes only 1 with thinking on")
        elif temperature > profile.max_temperature:
            lose("temperature", f"temperature {temperature} sent as {profile.max_temperature}, the largest "
                                f"{profile.name} takes")
            body.temperature = profile.max_temperature
        else:
            body.temperature = temperature
    if (top_p := request.top_p) is not None:
        if fixed and top_p < _MIN_THINKING_TOP_P:
            lose("top_p", f"top_p {top_p} not sent: {profile.name} takes {_MIN_THINKING_TOP_P} to 1 with thinking on")
        else:
            body.top_p = top_p
    if request.top_k is not None:
        if not profile.send_top_k:
            lose("top_k", f"{profile.name} ignores top_k; not sent")
        elif fixed:
            lose("top_k", f"top_k not sent: {profile.name} takes none with thinking on")
        else:
            body.top_k = request.top_k


def _output_format(body: MessagesRequest, request: ChatRequest, profile: Profile, lose: Lose) -> None:
    rf = request.response_format
    if rf is None or rf.type == "text":
        return
    if rf.type == "json_schema" and profile.output_format:
        config = body.output_config or OutputConfigParam()
        config.format = OutputFormatParam(type="json_schema", schema=rf.schema or {})
        body.output_config = config
        return
    lose("response_format", f"{rf.type} answers are not supported by {profile.name}; not sent")


def _tool(spec: ToolSpec, profile: Profile) -> RawBlock:
    """A Messages client tool; a freeform (custom) tool as a function of one string ``input``,
    ``local_shell`` with Codex's command array (as every upstream that takes only functions)."""
    if spec.kind == "custom":
        tool: RawBlock = {"name": spec.name, "input_schema": freeform_parameters(spec)}
    elif spec.kind == "local_shell":
        tool = {"name": spec.name or "local_shell", "input_schema": LOCAL_SHELL_SCHEMA}
    else:
        tool = {"name": spec.name, "input_schema": spec.parameters or {"type": "object", "properties": {}}}
    description = spec.description or (LOCAL_SHELL_DESCRIPTION if spec.kind == "local_shell" else "")
    if description:
        tool["description"] = description
    if spec.kind == "function" and profile.supports_strict and spec.strict:
        tool["strict"] = True
    return tool


def _tool_choice(request: ChatRequest) -> ToolChoiceParam | None:
    """The client's choice as it came (a forced one the model rejects while thinking went with
    thinking off: ``model_limits.thinking_on``)."""
    choice = request.tool_choice
    mode = choice.mode if choice is not None else "auto"
    if mode == "tool" and not (choice is not None and choice.name):
        mode = "required"
    param = ToolChoiceParam(type={"required": "any"}.get(mode, mode))
    if mode == "tool" and choice is not None:
        param.name = choice.name
    if request.parallel_tool_calls is False and mode != "none":
        param.disable_parallel_tool_use = True
    return param if choice is not None or param.disable_parallel_tool_use else None


# Messages.


def _messages(request: ChatRequest, profile: Profile, card: ModelCard, upstream_id: str, on: bool,
              lose: Lose) -> tuple[list[str], list[MessageParam]]:
    system = [text for text in request.system if text]
    turns: list[MessageParam] = []
    for message in request.messages:
        role = message.role
        if role == "system":  # neither API takes a system message in messages[]: fold it
            text = text_of(message.parts, "system message", lose)
            if text:
                system.append(text)
            continue
        if role == "assistant":
            blocks = _assistant(message, profile, upstream_id, on, lose)
            if not blocks:
                lose("empty_turn", "an assistant turn with nothing to carry was left out")
                continue
        else:
            blocks = _user(message.parts, profile, card, lose)
            if not blocks:
                continue
        wire = "assistant" if role == "assistant" else "user"
        last = turns[-1] if turns else None
        if last is not None and last.role == wire and isinstance(last.content, list):
            if wire == "user":  # the tool results lead their user turn, in order
                lead = next((j for j, b in enumerate(last.content) if not _is_result(b)), len(last.content))
                last.content[lead:lead] = [b for b in blocks if _is_result(b)]
                last.content += [b for b in blocks if not _is_result(b)]
            else:
                last.content += blocks
        else:
            turns.append(MessageParam(role=wire, content=blocks))
    return system, turns


def _is_result(block: RawBlock) -> bool:
    return block.get("type") == "tool_result"



def _user(parts: tuple[Part, ...], profile: Profile, card: ModelCard, lose: Lose) -> list[RawBlock]:
    blocks: list[RawBlock] = []
    for part in parts:
        if isinstance(part, TextPart):
            if part.text:  # the Messages API rejects empty text blocks
                blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            blocks.append(_image(part, profile, card, lose))
        elif isinstance(part, ToolResultPart):
            blocks.append(_result(part, profile, card, lose))
        else:
            lose(part_kind(part), f"a {part_kind(part)} part cannot be sent in a user turn")
    return blocks


def _image(part: ImagePart, profile: Profile, card: ModelCard, lose: Lose) -> RawBlock:
    refused = image_refusal(card, profile)
    if refused is not None:
        lose("image", f"{refused}; sent a placeholder")
        return {"type": "text", "text": IMAGE_PLACEHOLDER}
    if part.url.startswith("data:") and ";base64," in part.url:
        head, data = part.url[5:].split(";base64,", 1)
        return {"type": "image", "source": {"type": "base64", "media_type": head or "image/png", "data": data}}
    return {"type": "image", "source": {"type": "url", "url": part.url}}


def _result(part: ToolResultPart, profile: Profile, card: ModelCard, lose: Lose) -> RawBlock:
    content: list[RawBlock] = []
    for item in part.content:
        if isinstance(item, TextPart):
            if item.text:
                content.append({"type": "text", "text": item.text})
        else:
            content.append(_image(item, profile, card, lose))
    block: RawBlock = {"type": "tool_result", "tool_use_id": part.call_id}
    if content:
        plain = all(b["type"] == "text" for b in content)
        block["content"] = "\n".join(b["text"] for b in content) if plain else content
    if part.is_error:
        block["is_error"] = True
    return block


def _assistant(message: Message, profile: Profile, upstream_id: str, on: bool, lose: Lose) -> list[RawBlock]:
    thinking: list[RawBlock] = []
    rest: list[RawBlock] = []
    calls = False
    for part in message.parts:
        if isinstance(part, TextPart):
            if part.text:
                rest.append({"type": "text", "text": part.text})
        elif isinstance(part, ToolCallPart):
            calls = True
            rest.append({"type": "tool_use", "id": part.id, "name": part.name, "input": _input(part, lose)})
        elif isinstance(part, ThinkingPart):
            block = _client_thinking(part, profile, lose) if on else None
            if block is not None:
                thinking.append(block)
        elif isinstance(part, ImagePart):
            lose("image", "assistant turns cannot carry images; sent a placeholder")
            rest.append({"type": "text", "text": IMAGE_PLACEHOLDER})
        else:
            lose(part_kind(part), "a tool result cannot be part of an assistant turn")
    if on and not thinking:
        block = _replayed(message, profile, upstream_id, calls, lose)
        if block is not None:
            thinking.append(block)
    return thinking + rest


def _client_thinking(part: ThinkingPart, profile: Profile, lose: Lose) -> RawBlock | None:
    """A thinking block that reached the encoder as the client sent it (no thinking_filter, or
    a ``keep_client_thinking`` upstream's own)."""
    signature = part.signature or ""
    if part.redacted:
        if profile.keep_client_thinking:
            return {"type": "redacted_thinking", "data": signature}
        lose("redacted_thinking", f"{profile.name} rejects redacted_thinking; not sent")
        return None
    if signature.startswith(_ENVELOPE_PREFIXES):
        lose("foreign_thinking", "a gateway envelope is not sent upstream (thinking_filter opens it)")
        return None
    return {"type": "thinking", "thinking": part.text, "signature": signature}


def _replayed(message: Message, profile: Profile, upstream_id: str, calls: bool, lose: Lose) -> RawBlock | None:
    """The thinking block of ``Message.reasoning`` (the exact text thinking_filter restored, or a
    Chat client's ``reasoning_content``), signed with the upstream's own token when it sealed it."""
    seal = message.upstream_seal
    signature = seal[1] if seal is not None and seal[0] == upstream_id else ""
    text = message.reasoning
    if text is None and not signature:
        if calls and profile.thinking_on_tool_turns and not profile.keep_client_thinking:
            return {"type": "thinking", "thinking": "", "signature": ""}  # presence is what is checked
        return None
    if not signature and profile.keep_client_thinking:  # it checks signatures: unsigned is a 400
        if text:
            lose("unsigned_thinking", f"{profile.name} takes only thinking it signed; this reasoning was not sent")
        return None
    if not text and not signature and not calls:
        return None
    return {"type": "thinking", "thinking": text or "", "signature": signature}


def _input(part: ToolCallPart, lose: Lose) -> Any:
    try:
        value = _DECODER.decode(part.arguments) if part.arguments else {}
    except msgspec.DecodeError:
        value = None
    if isinstance(value, dict):
        return value
    lose("tool_args", f"call {part.name} arguments are not a JSON object; sent as {{}}")
    return {}



__all__ = ["ENCODER", "IMAGE_PLACEHOLDER", "encode_request"]
