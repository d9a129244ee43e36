"""Upstream side: the neutral messages as Chat Completions messages, encoded one by one.

``chat_messages`` turns ``request.messages`` into the body's ``messages``: the leading system
message (built each time: the request's system texts, and, for a profile that folds them, the
``role: "system"`` messages' texts), then each neutral message's Chat messages, already encoded
(``msgspec.Raw``, which msgspec writes as it is). The translation is a fold: after each neutral
message its state is marked (how many Chat messages so far, how many losses, the tool results'
images waiting for the user message after the run of tool messages). With the request's
``Recall`` bound (``pipeline.conversation``), the fold is kept in a slot, and the session's next
request resumes it after the leading messages that are the very same objects (``same_prefix``):
their encoded bytes are reused and the losses their translation recorded reported again, in
order, so the body and the losses are byte for byte what the whole fold gives. What the output
depends on beside the messages (the profile, the model card, thinking on) is the slot's key:
another key translates everything again.

One translation reaches back: a tool message's text before its first result is appended to the
tool message before it. A fold in which that happened is not resumed after that earlier message
(``Fold.safe``), and a resumed fold whose first new message would reach into a reused message is
translated again from the start.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import msgspec

from pipeline.conversation import Recall, same_prefix
from pipeline.model import ImagePart, Message, TextPart, ThinkingPart, ToolCallPart, ToolResultPart, part_kind, text_of
from pipeline.model_limits import ModelCard, image_refusal
from pipeline.profiles import Profile
from pipeline.protocols.chat.models import ENCODER, ChatMessage, ContentPart, FunctionCall, ImageUrl, ToolCall

Lose = Callable[[str, str], None]
Encoded = list[ChatMessage | msgspec.Raw]

IMAGE_PLACEHOLDER = "[image omitted: not supported by this model]"
TOOL_IMAGE_PLACEHOLDER = "[image omitted: tool results cannot carry images]"
TOOL_ERROR_PREFIX = "[tool error] "
TOOL_IMAGE_MOVED = "[image {n}: in the user message after the tool results]"
TOOL_IMAGE_LABEL = "[image {n}, returned by tool call {call_id}]"


class _Mark(NamedTuple):
    """The fold's state after one neutral message."""

    encoded: int  # Chat messages so far
    losses: int  # losses so far
    moved: tuple[TextPart | ImagePart, ...]  # tool results' images waiting for their user message


class Fold(NamedTuple):
    """What translating a request's messages left for the session's next request (the slot's value)."""

    key: tuple[Profile, ModelCard, bool]
    messages: tuple[Message, ...]
    encoded: tuple[msgspec.Raw, ...]
    losses: tuple[tuple[str, str], ...]
    marks: tuple[_Mark, ...]
    safe: int  # resume after at most this many messages (a later one changed an earlier one's output)
    reused: int  # leading messages taken from the request before (for tests and the bench)


class _Losses:
    """A ``lose`` that keeps what it is told (reported once the fold is done: a fold started over
    reports nothing twice)."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, what: str, detail: str) -> None:
        self.seen.append((what, detail))


class _ReachesBack(Exception):
    """The first new message would change a reused (already encoded) one."""


def chat_messages(messages: tuple[Message, ...], system: Sequence[str], profile: Profile, card: ModelCard, on: bool,
                  lose: Lose, recall: Recall | None = None, slot: str = "") -> Encoded:
    """The body's ``messages`` for ``messages`` after the ``system`` texts (``on``: thinking is
    on); resumed from ``recall``'s slot ``slot`` when it holds the same key."""
    out: Encoded = []
    texts = [text for text in system if text]
    if profile.fold_system:
        for message in messages:
            if message.role == "system":
                text = text_of(message.parts, "system message", lose)
                if text:
                    texts.append(text)
    if texts:
        out.append(ChatMessage(role="system", content="\n\n".join(texts)))
    recall = recall or Recall()
    key = (profile, card, on)
    fold: Fold | None = recall.before(slot)
    if fold is not None and fold.key != key:
        fold = None
    try:
        encoded, kept = _fold(messages, key, fold)
    except _ReachesBack:
        encoded, kept = _fold(messages, key, None)
    for what, detail in kept.losses:
        lose(what, detail)
    recall.keep(slot, kept)
    out.extend(encoded)
    return out


def _fold(messages: tuple[Message, ...], key: tuple[Profile, ModelCard, bool],
          fold: Fold | None) -> tuple[list[msgspec.Raw], Fold]:
    profile, card, on = key
    log = _Losses()
    refused = image_refusal(card, profile)
    moved: list[TextPart | ImagePart] | None = [] if refused is None else None
    start = min(same_prefix(fold.messages, messages), fold.safe) if fold is not None else 0
    out: list[ChatMessage | msgspec.Raw] = []
    marks: list[_Mark] = []
    if fold is not None and start:
        mark = fold.marks[start - 1]
        out.extend(fold.encoded[:mark.encoded])
        log.seen.extend(fold.losses[:mark.losses])
        if moved is not None:
            moved.extend(mark.moved)
        marks.extend(fold.marks[:start])
    safe, owner = len(messages), -1
    replay_all = on and profile.reasoning_on_every_assistant
    field = card.reasoning_field
    for i in range(start, len(messages)):
        message = messages[i]
        role = message.role
        had = len(out)
        if moved and role != "tool":
            _user(Message(role="user", parts=tuple(moved)), profile, card, out, log)
            moved.clear()
        if role == "assistant":
            msg = _assistant(message, log)
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
            if out and _reaches_back(message):
                last = out[-1]
                if isinstance(last, msgspec.Raw):
                    raise _ReachesBack
                if last.role == "tool":
                    safe = min(safe, owner)
            _tool_results(message.parts, out, log, moved, refused)
        elif role == "system":
            if not profile.fold_system:
                text = text_of(message.parts, "system message", log)
                if text:
                    out.append(ChatMessage(role="system", content=text))
        else:
            _user(message, profile, card, out, log)
        if len(out) > had:
            owner = i
        marks.append(_Mark(len(out), len(log.seen), tuple(moved) if moved else ()))
    if moved:
        _user(Message(role="user", parts=tuple(moved)), profile, card, out, log)
    encoded = [m if isinstance(m, msgspec.Raw) else msgspec.Raw(ENCODER.encode(m)) for m in out]
    kept = Fold(key, messages, tuple(encoded), tuple(log.seen), tuple(marks), safe, start)
    return encoded, kept


def _reaches_back(message: Message) -> bool:
    """Whether a tool message has text before its first result (appended to the message before)."""
    for part in message.parts:
        if isinstance(part, ToolResultPart):
            return False
        if isinstance(part, TextPart):
            return True
    return False


def _user(message: Message, profile: Profile, card: ModelCard, out: Encoded, lose: Lose) -> None:
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


def _tool_results(parts: tuple[Any, ...], out: Encoded, lose: Lose,
                  moved: list[TextPart | ImagePart] | None = None, refused: str | None = None) -> None:
    """One tool message per result. A result's images go to ``moved`` (for the user message after
    the tool messages; each result's text says so), or without it are a placeholder and a loss
    (``refused``: why the model gets none)."""
    for part in parts:
        if not isinstance(part, ToolResultPart):
            prev = out[-1] if out else None
            if isinstance(part, TextPart) and isinstance(prev, ChatMessage) and prev.role == "tool":
                # Stray text beside a result: append it to that result rather than drop it.
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
           "Fold", "chat_messages"]
