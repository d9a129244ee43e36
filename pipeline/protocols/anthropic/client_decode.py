"""Anthropic Messages request JSON → neutral ``ChatRequest`` (../shared/PROTOCOLS.md §1.2-1.4, §5.1).

One msgspec pass decodes the top level into views, each message left as its bytes; messages are
then decoded one by one and their content blocks and tools converted per ``type``
(client_decode_blocks.py). ``role: "system"`` messages are folded into ``ChatRequest.system`` in
order; tool results become ``tool`` messages placed before the rest of their user turn; runs of
same-role user/assistant messages are merged, as Anthropic does.

The messages are a fold: each one changes the decoder's state (the neutral messages so far, whose
last one the next may merge into, the folded system texts, the losses) only by appending or by
replacing the last message. So the state after each message is four numbers and one reference,
and a session's next request, whose leading messages are the last request's byte for byte
(``pipeline.conversation``), resumes from the state after them: the same ``Message`` objects, and
only the new messages decoded. ``tests/protocols/test_anthropic_decode_memo.py`` proves the
resumed decode equals the whole one.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, get_args

import msgspec

from pipeline.conversation import Recall
from pipeline.errors import RequestError
from pipeline.model import (
    ChatRequest,
    Effort,
    Loss,
    Message,
    ResponseFormat,
    ServerTool,
    TextPart,
    ThinkingConfig,
    ToolChoice,
    ToolSpec,
)
from pipeline.protocols.anthropic.client_decode_blocks import BlockReader
from pipeline.protocols.anthropic.client_decode_echo import AnthropicEcho
from pipeline.protocols.anthropic.models import (
    ClientToolParam,
    MessageParam,
    MessagesRequestIn,
    MessagesResumed,
    OutputConfigParam,
    RawBlock,
    ThinkingParam,
    ToolChoiceParam,
)
from pipeline.protocols.request_body import decode_body, field_error
from pipeline.protocols.values import decode_value

_REQUEST_DECODER = msgspec.json.Decoder(MessagesRequestIn)
_RESUMED_DECODER = msgspec.json.Decoder(MessagesResumed)
_MESSAGE_DECODER = msgspec.json.Decoder(MessageParam)
MEMO = "anthropic.decode"  # this decoder's slot in a conversation's memory
_EFFORTS = frozenset(get_args(Effort))
_ROLES = ("user", "assistant", "system")


def decode_request(body: bytes, recall: Recall | None = None) -> tuple[ChatRequest, AnthropicEcho]:
    """Parse a ``/v1/messages`` (or ``count_tokens``) body.

    Args:
        body: the raw request body.
        recall: the request's view of its conversation's memory; unbound or ``None``: every
            message is decoded.

    Returns:
        The neutral request (what it cannot carry is listed in ``losses``) and the echo for the
        response encoder (``thinking.display``).

    Raises:
        RequestError: the body is not a JSON object, or a field has the wrong type or is
            missing; the message names the field path (``messages.3.content``).
    """
    recall = recall or Recall()
    wire, items, same = recall.read(body, b'"messages"', MEMO, _whole, _resumed)
    reader = BlockReader()
    system = _top_system(wire.system, reader)
    messages, folded, message_losses = _messages(items, same, recall)
    system.extend(folded)
    reader.losses.extend(message_losses)
    tools, server_tools = _tools(wire.tools or (), reader)
    tool_choice, parallel = _tool_choice(wire.tool_choice)
    thinking = _thinking(wire.thinking, wire.output_config, reader)
    if wire.mcp_servers:
        reader.lose("mcp_servers", "MCP connector servers are not forwarded")
    request = ChatRequest(
        model=wire.model,
        messages=messages,
        system=tuple(system),
        tools=tools,
        server_tools=server_tools,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        max_output_tokens=wire.max_tokens,
        temperature=wire.temperature,
        top_p=wire.top_p,
        top_k=wire.top_k,
        stop=tuple(wire.stop_sequences or ()),
        user=wire.metadata.user_id if wire.metadata else None,
        thinking=thinking,
        response_format=_response_format(wire.output_config, reader),
        stream=bool(wire.stream),
        losses=tuple(reader.losses),
    )
    return request, AnthropicEcho(thinking_display=thinking.display)


def _top_system(system: str | list[RawBlock] | None, reader: BlockReader) -> list[str]:
    if system is None:
        return []
    if isinstance(system, str):
        return [system] if system else []
    return reader.system_blocks(system, "system")


class _Fold(NamedTuple):
    """What decoding a request's messages left for the session's next request."""

    messages: tuple[Message, ...]
    folded: tuple[str, ...]  # system texts folded from ``role: "system"`` messages
    losses: tuple[Loss, ...]
    # After each wire message: (messages so far, the last of them, folded texts, losses).
    marks: tuple[tuple[int, Message | None, int, int], ...]


def _whole(body: bytes) -> tuple[MessagesRequestIn, list[msgspec.Raw]]:
    wire = decode_body(_REQUEST_DECODER, body)
    return wire, wire.messages


def _resumed(document: bytes) -> tuple[MessagesRequestIn, list[msgspec.Raw]] | None:
    wire = decode_body(_RESUMED_DECODER, document)
    return (wire, wire.resumed) if wire.messages is None else None


def _messages(items: list[msgspec.Raw], same: int, recall: Recall
              ) -> tuple[tuple[Message, ...], list[str], list[Loss]]:
    """The wire messages as neutral messages, the system texts folded from them, and their losses:
    ``items`` are the messages from the ``same``-th on, the ones before the session's last
    request's (``recall``), whose fold is resumed after them."""
    fold: _Fold | None = recall.before(MEMO)
    out: list[Message] = []
    folded: list[str] = []
    reader = BlockReader()
    start = 0
    if same:
        assert fold is not None  # Recall.read resumes only after a request whose fold was kept
        n, last, n_folded, n_losses = fold.marks[same - 1]
        out = [*fold.messages[:n - 1], last] if last is not None else []
        folded, reader.losses = list(fold.folded[:n_folded]), list(fold.losses[:n_losses])
        marks = list(fold.marks[:same])
        start = same
    else:
        marks = []
    for i, raw in enumerate(items, start):
        _message(_wire_message(raw, i), i, reader, out, folded)
        marks.append((len(out), out[-1] if out else None, len(folded), len(reader.losses)))
    messages = tuple(out)
    recall.keep(MEMO, _Fold(messages, tuple(folded), tuple(reader.losses), tuple(marks)))
    return messages, folded, reader.losses


def _wire_message(raw: msgspec.Raw, i: int) -> MessageParam:
    try:
        return _MESSAGE_DECODER.decode(raw)
    except msgspec.DecodeError as exc:  # ValidationError too: it is a DecodeError
        raise field_error(exc, f"messages.{i}", raw) from None


def _message(msg: MessageParam, i: int, reader: BlockReader, out: list[Message], system: list[str]) -> None:
    path = f"messages.{i}"
    if msg.role not in _ROLES:
        raise RequestError(f"{path}.role: expected one of 'user', 'assistant', 'system', got {msg.role!r}")
    cpath = f"{path}.content"
    if msg.role == "system":
        # DeepSeek rejects a system role mid-conversation (Profile.fold_system): fold it.
        # Claude Code sends one after the first user turn (captures/claude-*-1.json).
        if isinstance(msg.content, str):
            system.extend([msg.content] if msg.content else [])
        else:
            system.extend(reader.system_blocks(msg.content, cpath))
        return
    if isinstance(msg.content, str):
        role: Literal["user", "assistant"] = "assistant" if msg.role == "assistant" else "user"  # not system
        _append(out, Message(role=role, parts=(TextPart(msg.content),)))
    elif msg.role == "assistant":
        # A turn with web searches in it is several upstream turns: split at each result.
        for turn in reader.assistant_turns(msg.content, cpath):
            _append(out, turn) if turn.role == "assistant" else out.append(turn)
    else:
        results, parts = reader.user_blocks(msg.content, cpath)
        out.extend(results)
        if parts or not results:
            _append(out, Message(role="user", parts=tuple(parts)))


def _append(out: list[Message], msg: Message) -> None:
    """Append, merging into the previous message when both are user or both assistant."""
    if out and out[-1].role == msg.role and msg.role in ("user", "assistant"):
        prev = out[-1]
        out[-1] = msgspec.structs.replace(prev, parts=prev.parts + msg.parts)
    else:
        out.append(msg)


def _tools(wire: list[RawBlock] | tuple[()],
           reader: BlockReader) -> tuple[tuple[ToolSpec, ...], tuple[ServerTool, ...]]:
    """The client tools, and the Anthropic-defined ones (web_search_20250305, bash_2025...,
    text_editor_...), which are not offered upstream as they are (a loss) but kept as
    ``ServerTool``s for routing and the tools the gateway runs itself."""
    specs: list[ToolSpec] = []
    server: list[ServerTool] = []
    for i, raw in enumerate(wire):
        path = f"tools.{i}"
        kind = raw.get("type")
        if kind is not None and kind != "custom":
            name = raw.get("name")
            reader.lose("server_tool", f"{path}: {kind} ({name or '?'}) dropped")
            server.append(ServerTool(kind=str(kind), name=name if isinstance(name, str) else "",
                                     options={k: v for k, v in raw.items() if k not in ("type", "name")}))
            continue
        tool = decode_value(raw, ClientToolParam, path)
        specs.append(
            ToolSpec(
                name=tool.name,
                description=tool.description or "",
                parameters=tool.input_schema,
                strict=tool.strict,
            )
        )
    return tuple(specs), tuple(server)


def _tool_choice(wire: ToolChoiceParam | None) -> tuple[ToolChoice | None, bool | None]:
    if wire is None:
        return None, None
    parallel = False if wire.disable_parallel_tool_use else None
    if wire.type == "auto":
        return ToolChoice(mode="auto"), parallel
    if wire.type == "any":
        return ToolChoice(mode="required"), parallel
    if wire.type == "none":
        return ToolChoice(mode="none"), parallel
    if wire.type == "tool":
        if not wire.name:
            raise RequestError("tool_choice.name: field required for type 'tool'")
        return ToolChoice(mode="tool", name=wire.name), parallel
    raise RequestError(f"tool_choice.type: expected one of 'auto', 'any', 'tool', 'none', got {wire.type!r}")


def _thinking(wire: ThinkingParam | None, config: OutputConfigParam | None, reader: BlockReader) -> ThinkingConfig:
    # The Messages API thinks only when asked: a request without ``thinking`` (Claude Code's
    # small-model calls: titles, summaries) is thinking off, not the upstream's default (DeepSeek's:
    # on), so it is sent with thinking disabled and keeps its own budget.
    enabled: bool | None = False
    budget: int | None = None
    display: str | None = None
    if wire is not None:
        display = wire.display
        if wire.type == "enabled":
            enabled, budget = True, wire.budget_tokens
        elif wire.type == "adaptive":
            enabled = True
        elif wire.type == "disabled":
            enabled = False
        else:
            enabled = None
            reader.lose("thinking", f"thinking.type {wire.type!r} not understood; upstream default used")
    effort: Any = None
    if config is not None and config.effort is not None:
        if config.effort in _EFFORTS:
            effort = config.effort
        else:
            reader.lose("effort", f"output_config.effort {config.effort!r} not understood")
    if effort is None and budget is not None:
        # PROTOCOLS §5.1: budget < 4096 → low, < 32768 → high, else max (approximate).
        effort = "low" if budget < 4096 else "high" if budget < 32768 else "max"
    return ThinkingConfig(enabled=enabled, effort=effort, budget_tokens=budget, display=display)


def _response_format(config: OutputConfigParam | None, reader: BlockReader) -> ResponseFormat | None:
    if config is None or config.format is None:
        return None
    if config.format.type == "json_schema":
        return ResponseFormat(type="json_schema", schema=config.format.schema or {})
    reader.lose("output_format", f"output_config.format type {config.format.type!r} ignored")
    return None


__all__ = ["decode_request"]
