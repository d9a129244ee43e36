"""tool_ids: tool calls that survive any backend, both ways, driven by the upstream ``Profile``.

Request way (last, before the upstream encoder): pairing repaired, rejected call ids and tool names
mapped by pure functions (the next turn maps alike), schemas sanitised, ``strict`` where supported;
a ``ToolMap`` goes to ``ctx.state[self.id]``. Response way (first): ``stream``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec

from pipeline.conversation import same_prefix
from pipeline.events import Event
from pipeline.model import ChatRequest, Loss, Message, ToolCallPart, ToolResultPart, ToolSpec
from pipeline.profiles import Profile
from pipeline.stage import RequestContext, Stage, StageConfig
from stages.tool_ids.apply_patch import is_apply_patch
from stages.tool_ids.ids import upstream_id
from stages.tool_ids.names import NameMap, map_names
from stages.tool_ids.pairing import paired_after, repair_pairing
from stages.tool_ids.schemas import sanitise_cached
from stages.tool_ids.stream import ToolMap, ToolStream


class _Memo(NamedTuple):
    """What ``on_request`` made of a request's messages that needed no pairing repair, kept for
    the session's next request: when that one extends this one (the very same messages first,
    ``same_prefix``) for the same profile, and no name maps otherwise, these messages' mapped
    forms, ids and losses stand, and only the new messages are paired and mapped."""

    key: tuple[str, str, str]  # the profile's name and its id and name patterns
    inputs: tuple[Message, ...]
    calls: frozenset[str]  # every call id of the history (each answered)
    names: frozenset[str]  # every tool name of its calls
    forward: dict[str, str]  # the names map they were mapped with
    outputs: tuple[Message, ...]
    reverse: dict[str, str]  # upstream → client call id
    seen: frozenset[str]  # client call ids met
    losses: tuple[Loss, ...]  # recorded mapping them, in order


class ToolIdMap(Stage):
    name = "tool_ids"
    # The count of messages whose mapping came from the conversation memory (tests, the bench).
    shared_attributes = frozenset({"reused"})

    class Config(StageConfig, frozen=True, kw_only=True):
        # Repair call/result pairing in the history (orphan calls, stray or duplicate results).
        repair_pairing: bool = True
        # Sanitise tool parameter schemas for the upstream profile.
        sanitise_schemas: bool = True
        # Check and repair Codex apply_patch calls in the response.
        repair_apply_patch: bool = True

    def __init__(self, config: Config, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._key = self.id + ":response"  # ctx.state key of the per-response ToolStream
        self.reused = 0

    async def on_request(self, request: ChatRequest, ctx: RequestContext) -> ChatRequest:
        profile = ctx.profile
        messages = request.messages
        memo_key = (profile.name, profile.tool_id_pattern, profile.tool_name_pattern)
        memo: _Memo | None = ctx.recall.before(self.id)
        if memo is not None and (memo.key != memo_key or same_prefix(memo.inputs, messages) < len(memo.inputs)):
            memo = None  # reused only when this request extends the remembered one, which needed no repair
        new = messages[len(memo.inputs):] if memo is not None else messages
        if self.config.repair_pairing and (memo is None or not paired_after(new, memo.calls)):
            messages, notes = repair_pairing(messages)
            for note in notes:
                ctx.lose("tool_pairing", note)
            memo, new = None, messages
            paired = not notes
        else:
            paired = True
        calls = [p for m in new if m.role == "assistant" for p in m.parts if isinstance(p, ToolCallPart)]
        call_ids = frozenset(p.id for p in calls) | (memo.calls if memo is not None else frozenset())
        call_names = frozenset(p.name for p in calls) | (memo.names if memo is not None else frozenset())
        names = map_names(_tool_names(request, call_names), profile.tool_name_pattern)
        for name in names.unmappable:
            ctx.lose("tool_name", f"no form of tool name {name!r} fits {profile.name}'s pattern; sent as it is")
        if memo is not None and memo.forward != names.forward:
            memo, new = None, messages  # a name maps otherwise now: every message again
        reverse: dict[str, str] = dict(memo.reverse) if memo is not None else {}
        seen: set[str] = set(memo.seen) if memo is not None else set()
        mark = len(ctx.losses)
        for loss in memo.losses if memo is not None else ():  # the remembered messages' own, again
            ctx.lose(loss.what, loss.detail)
        mapped = tuple(_map_message(m, profile, names, reverse, seen, ctx) for m in new)
        if memo is not None:
            self.reused += len(memo.outputs)
            mapped = memo.outputs + mapped
        if paired:
            ctx.recall.keep(self.id, _Memo(memo_key, request.messages, call_ids, call_names, names.forward, mapped,
                                           reverse.copy(), frozenset(seen), tuple(ctx.losses[mark:])))
        tools = tuple(self._tool(spec, profile, names, ctx) for spec in request.tools)
        choice = request.tool_choice
        if choice is not None and choice.name:
            choice = msgspec.structs.replace(choice, name=names.up(choice.name))
        patch_tools = frozenset(s.name for s in request.tools if is_apply_patch(s)) \
            if self.config.repair_apply_patch else frozenset()
        ctx.state[self.id] = ToolMap(id_reverse=reverse, history_ids=frozenset(seen | set(reverse)),
                                     names=names, patch_tools=patch_tools)
        return msgspec.structs.replace(request, messages=mapped, tools=tools, tool_choice=choice)

    def _tool(self, spec: ToolSpec, profile: Profile, names: NameMap, ctx: RequestContext) -> ToolSpec:
        changes: dict[str, object] = {}
        if spec.name in names.forward:
            changes["name"] = names.forward[spec.name]
        if spec.kind == "function" and self.config.sanitise_schemas:
            schema, notes = sanitise_cached(spec.parameters, drop=profile.schema_drop_keywords,
                                            inline_refs=profile.inline_schema_refs)
            if schema is not spec.parameters:
                changes["parameters"] = schema
            if notes:
                ctx.lose("schema", f"tool {spec.name}: " + "; ".join(notes))
        if spec.strict is not None and not profile.supports_strict:
            changes["strict"] = None
            if spec.strict:
                ctx.lose("schema", f"tool {spec.name}: strict is not supported by {profile.name}")
        return msgspec.structs.replace(spec, **changes) if changes else spec

    def on_event(self, event: Event, ctx: RequestContext) -> Sequence[Event]:
        stream = ctx.state.get(self._key)
        if stream is None:
            stream = ctx.state[self._key] = ToolStream(ctx.state.get(self.id) or ToolMap(), ctx.loss_recorder())
        return stream.feed(event)

    def on_end(self, ctx: RequestContext) -> Sequence[Event]:
        stream = ctx.state.get(self._key)
        return stream.close() if stream is not None else ()


def _tool_names(request: ChatRequest, history: frozenset[str]) -> list[str]:
    """Every tool name of the request: its tools', its history calls' (``history``), its choice's."""
    names = [spec.name for spec in request.tools]
    names.extend(history)
    if request.tool_choice is not None and request.tool_choice.name:
        names.append(request.tool_choice.name)
    return names


def _map_message(message: Message, profile: Profile, names: NameMap, reverse: dict[str, str], seen: set[str],
                 ctx: RequestContext) -> Message:
    """Call ids and tool names of one message in their upstream form (the message itself if unchanged)."""
    parts = list(message.parts)
    changed = False
    for j, part in enumerate(parts):
        if isinstance(part, ToolCallPart):
            call_id = _up_id(part.id, profile, reverse, seen, ctx)
            name = names.up(part.name)
            if call_id != part.id or name != part.name:
                parts[j], changed = msgspec.structs.replace(part, id=call_id, name=name), True
        elif isinstance(part, ToolResultPart):
            call_id = _up_id(part.call_id, profile, reverse, seen, ctx)
            if call_id != part.call_id:
                parts[j], changed = msgspec.structs.replace(part, call_id=call_id), True
    return msgspec.structs.replace(message, parts=tuple(parts)) if changed else message


def _up_id(client_id: str, profile: Profile, reverse: dict[str, str], seen: set[str], ctx: RequestContext) -> str:
    first = client_id not in seen
    seen.add(client_id)
    mapped = upstream_id(client_id, profile.tool_id_pattern)
    if mapped is None:
        if first:
            ctx.lose("tool_id", f"no form of call id {client_id!r} fits {profile.name}'s pattern; sent as it is")
        return client_id
    if mapped != client_id:
        reverse[mapped] = client_id
    return mapped


__all__ = ["ToolIdMap"]
