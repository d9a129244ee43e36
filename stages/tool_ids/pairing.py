"""Call/result pairing repairs: ``repair_pairing`` puts one ``tool`` message per call right after its
assistant message, in call order. A result belongs to the nearest earlier call with its id (ids
repeat across turns), else the first later one. Unanswered calls get an error result; results
without a call, and second results, become user text.
"""

from __future__ import annotations

import msgspec

from pipeline.model import ImagePart, Message, Part, TextPart, ToolCallPart, ToolResultPart

INTERRUPTED = "no result: the call was interrupted"


class _Call:
    __slots__ = ("id", "message", "name", "order", "result")

    def __init__(self, message: int, order: int, part: ToolCallPart) -> None:
        self.message = message
        self.order = order
        self.id = part.id
        self.name = part.name
        self.result: _Result | None = None


class _Result:
    __slots__ = ("extras", "key", "message", "part", "whole")

    def __init__(self, key: tuple[int, int], part: ToolResultPart, whole: Message | None) -> None:
        self.key = key  # (message index, part index)
        self.message = key[0]
        self.part = part
        self.whole = whole  # the original tool message when this is its only result
        self.extras: list[Part] = []  # other parts of a tool message, kept with its first result


def repair_pairing(messages: tuple[Message, ...]) -> tuple[tuple[Message, ...], list[str]]:
    """The repaired history and one note per repair (empty when the input was already paired)."""
    results, per_message, unclaimed, notes = _pair(messages, frozenset())
    if not notes:
        return messages, notes
    return _rebuild(messages, results, per_message, unclaimed), notes


def paired_after(messages: tuple[Message, ...], answered: frozenset[str]) -> bool:
    """Whether a history that needed no repair, whose calls are ``answered`` (each had its
    result), followed by ``messages``, still needs none: what ``repair_pairing`` of the whole
    would say, looking only at what is new. (In such a history every result follows its call,
    so new calls claim no earlier result; a new result with an earlier call's id is a second.)"""
    return not _pair(messages, answered)[3]


def _pair(messages: tuple[Message, ...], answered: frozenset[str]) -> tuple[
        dict[int, list[_Result]], dict[int, list[_Call]], dict[tuple[int, int], str], list[str]]:
    """Each message's results, each message's calls, the results sent as user text (and why),
    and the notes; ``answered``: ids of answered calls before ``messages``."""
    calls: dict[str, list[_Call]] = {}
    per_message: dict[int, list[_Call]] = {}
    for i, message in enumerate(messages):
        if message.role != "assistant":
            continue
        for part in message.parts:
            if isinstance(part, ToolCallPart):
                call = _Call(i, len(per_message.get(i, ())), part)
                calls.setdefault(part.id, []).append(call)
                per_message.setdefault(i, []).append(call)
    notes: list[str] = []
    unclaimed: dict[tuple[int, int], str] = {}  # result key → why it is sent as user text
    results: dict[int, list[_Result]] = {}
    for i, message in enumerate(messages):
        found = _results_of(i, message)
        results[i] = found
        for result in found:
            call_id = result.part.call_id
            owner = _claimer(calls.get(call_id, ()), i, call_id in answered)
            if owner is None:
                unclaimed[result.key] = "without a matching call"
                notes.append(f"result for {call_id} has no matching call; sent as user text")
            elif owner is _ANSWERED or owner.result is not None:
                unclaimed[result.key] = "duplicate"
                notes.append(f"duplicate result for {call_id}; the first is kept, this one sent as user text")
            else:
                owner.result = result
                if result.whole is None or result.message != owner.message + 1 + owner.order:
                    notes.append(f"result for {owner.id} moved next to its call")
    for slots in per_message.values():
        for call in slots:
            if call.result is None:
                notes.append(f"call {call.id} ({call.name}) had no result; sent {INTERRUPTED!r}")
    return results, per_message, unclaimed, notes


_ORIGINAL, _MADE, _ABSORBED = 0, 1, 2  # a user message as sent, made from a result, or both


def _rebuild(messages: tuple[Message, ...], results: dict[int, list[_Result]], per_message: dict[int, list[_Call]],
             unclaimed: dict[tuple[int, int], str]) -> tuple[Message, ...]:
    """The repaired history. Text made from results joins the user turns around it, since the
    tool messages between them are gone (roles must alternate in some chat templates)."""
    out: list[tuple[Message, int]] = []
    for i, message in enumerate(messages):
        if message.role == "tool" and results[i]:
            for result in results[i]:
                why = unclaimed.get(result.key)
                if why is not None:
                    _add_made(out, Message(role="user", parts=_as_text(result, why)))
        elif results[i]:
            parts = _inline_unclaimed(i, message, unclaimed)
            if parts or not message.parts:
                out.append((msgspec.structs.replace(message, parts=parts), _ORIGINAL))
        elif message.role == "user" and out and out[-1][1] != _ORIGINAL:
            prev, kind = out.pop()
            base = message if kind == _MADE else prev
            out.append((msgspec.structs.replace(base, parts=prev.parts + message.parts), _ORIGINAL))
        else:
            out.append((message, _ORIGINAL))
        for call in per_message.get(i, ()):
            out.append((_tool_message(call), _ORIGINAL))
    return tuple(message for message, _ in out)


def _add_made(out: list[tuple[Message, int]], made: Message) -> None:
    if out and out[-1][0].role == "user":
        prev, kind = out[-1]
        out[-1] = (msgspec.structs.replace(prev, parts=prev.parts + made.parts), _MADE if kind == _MADE else _ABSORBED)
    else:
        out.append((made, _MADE))


def _results_of(index: int, message: Message) -> list[_Result]:
    found = [(j, p) for j, p in enumerate(message.parts) if isinstance(p, ToolResultPart)]
    if not found:
        return []
    whole = message if message.role == "tool" and len(found) == 1 else None
    results = [_Result((index, j), part, whole) for j, part in found]
    if message.role == "tool":
        results[0].extras = [p for p in message.parts if not isinstance(p, ToolResultPart)]
    return results


def _claimer(candidates: list[_Call] | tuple[()], index: int, earlier: bool) -> _Call | None:
    """The nearest call before ``index`` with this id (``_ANSWERED``: one before the messages
    looked at, ``earlier``), else the first one after it."""
    before = [c for c in candidates if c.message < index]
    if before:
        return before[-1]
    if earlier:
        return _ANSWERED
    return next((c for c in candidates if c.message > index), None)


_ANSWERED = _Call(-1, 0, ToolCallPart(id="", name="", arguments=""))  # an earlier call, already answered


def _tool_message(call: _Call) -> Message:
    result = call.result
    if result is None:
        part = ToolResultPart(call_id=call.id, content=(TextPart(INTERRUPTED),), is_error=True)
        return Message(role="tool", parts=(part,))
    if result.whole is not None:
        return result.whole
    return Message(role="tool", parts=(result.part, *result.extras))


def _as_text(result: _Result, why: str) -> tuple[Part, ...]:
    part = result.part
    texts = [p.text for p in part.content if isinstance(p, TextPart)]
    texts.extend(p.text for p in result.extras if isinstance(p, TextPart))
    label = "duplicate tool result for" if why == "duplicate" else "tool result for"
    suffix = "" if why == "duplicate" else f" {why}"
    error = "[error] " if part.is_error else ""
    head = TextPart(f"[{label} {part.call_id}{suffix}]: {error}" + "\n".join(texts))
    images: list[Part] = [p for p in part.content if isinstance(p, ImagePart)]
    images.extend(p for p in result.extras if isinstance(p, ImagePart))
    return (head, *images)


def _inline_unclaimed(index: int, message: Message, unclaimed: dict[tuple[int, int], str]) -> tuple[Part, ...]:
    """A user/assistant message's own parts: claimed results leave, unclaimed ones become text."""
    parts: list[Part] = []
    for j, part in enumerate(message.parts):
        if not isinstance(part, ToolResultPart):
            parts.append(part)
            continue
        why = unclaimed.get((index, j))
        if why is not None:
            parts.extend(_as_text(_Result((index, j), part, None), why))
    return tuple(parts)


__all__ = ["INTERRUPTED", "paired_after", "repair_pairing"]
