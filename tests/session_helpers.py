"""Random sessions of neutral messages, for the parts of the request path that a session's next
request resumes (``pipeline.conversation``): messages of every role and part (sometimes nonsense:
a loss), each request the one before with messages appended, one changed, or rewound. What is not
changed stays the very same objects, as the client decoders hand them over."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from hypothesis import strategies as st

from pipeline.conversation import Conversations, Recall
from pipeline.model import ImagePart, Message, TextPart, ThinkingPart, ToolCallPart, ToolResultPart

_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_image = st.builds(ImagePart, url=st.sampled_from(["data:image/png;base64,AAAA", "https://x/y.png"]),
                   detail=st.sampled_from([None, "low"]))
_call = st.builds(ToolCallPart, id=st.sampled_from(["c1", "c2"]), name=st.just("shell"),
                  arguments=st.sampled_from(["", '{"a":1}']))
_result = st.builds(ToolResultPart, call_id=st.sampled_from(["c1", "c2"]),
                    content=st.lists(st.one_of(st.builds(TextPart, _text), _image), max_size=3).map(tuple),
                    is_error=st.booleans())
_part = st.one_of(st.builds(TextPart, _text), _image, _call, _result, st.builds(ThinkingPart, _text))
_usual = {"user": st.one_of(st.builds(TextPart, _text), _image),
          "assistant": st.one_of(st.builds(TextPart, _text), _call),
          "tool": st.one_of(_result, st.builds(TextPart, _text)), "system": st.builds(TextPart, _text)}


@st.composite
def message(draw: Any) -> Message:
    """One neutral message, most often of its role's usual parts, now and then of any."""
    role = draw(st.sampled_from(["user", "assistant", "tool", "tool", "system"]))
    part = _usual[role] if draw(st.integers(0, 4)) else _part
    return Message(role=role, parts=tuple(draw(st.lists(part, max_size=3))),
                   reasoning=draw(st.sampled_from([None, None, "", "why"])) if role == "assistant" else None,
                   name=draw(st.sampled_from([None, None, "ann"])))


history_step = st.one_of(
    st.tuples(st.just("append"), st.lists(message(), min_size=1, max_size=4)),
    st.tuples(st.just("change"), st.integers(0, 40), message()),
    st.tuples(st.just("rewind"), st.integers(0, 40)),
)


def next_history(history: list[Message], step: tuple[Any, ...]) -> list[Message]:
    """The session's next history after ``step`` (another kind of step leaves it as it is)."""
    kind = step[0]
    if kind == "append":
        return history + step[1]
    if kind == "change" and history:
        i = step[1] % len(history)
        return [*history[:i], step[2], *history[i + 1:]]
    if kind == "rewind":
        return history[:step[1] % (len(history) + 1)]
    return history


def bound(memory: Conversations, messages: Sequence[Message]) -> Recall:
    """A request's recall bound as a client decoder binds it, the history items being the
    messages' bytes (equal bytes for equal messages)."""
    recall = memory.recall("scope")
    items = [msgspec.Raw(msgspec.json.encode(m)) for m in messages]
    recall.history(items, sum(len(i) for i in items))
    return recall


__all__ = ["bound", "history_step", "message", "next_history"]
