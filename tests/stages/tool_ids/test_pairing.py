"""tool_ids.pairing: orphan calls, stray results, out-of-order and duplicate results."""

from __future__ import annotations

from pipeline.model import ImagePart, Message, TextPart, ToolCallPart, ToolResultPart
from stages.tool_ids.pairing import INTERRUPTED, repair_pairing


def user(text: str) -> Message:
    return Message(role="user", parts=(TextPart(text),))


def calls(*ids: str) -> Message:
    return Message(role="assistant", parts=(TextPart("working"),
                                            *(ToolCallPart(id=i, name="Bash", arguments="{}") for i in ids)))


def result(call_id: str, text: str = "ok", **kw) -> Message:
    return Message(role="tool", parts=(ToolResultPart(call_id=call_id, content=(TextPart(text),), **kw),))


def shape(messages) -> list[tuple[str, str]]:
    """(role, call id or text) per message, to compare layouts."""
    out = []
    for m in messages:
        part = m.parts[0]
        if isinstance(part, ToolResultPart):
            out.append((m.role, part.call_id))
        elif isinstance(part, TextPart):
            out.append((m.role, part.text))
        else:
            out.append((m.role, type(part).__name__))
    return out


def test_well_paired_history_is_returned_as_is() -> None:
    """No repair: the very same tuple comes back, with no notes."""
    history = (user("go"), calls("a", "b"), result("a"), result("b"), user("next"))
    out, notes = repair_pairing(history)
    assert out is history and notes == []


def test_orphan_call_gets_an_interrupted_result() -> None:
    """A call the user interrupted is answered right after its message, as an error."""
    history = (user("go"), calls("a", "b"), result("a"), user("stop, do something else"))
    out, notes = repair_pairing(history)
    assert shape(out) == [("user", "go"), ("assistant", "working"), ("tool", "a"), ("tool", "b"),
                          ("user", "stop, do something else")]
    stub = out[3].parts[0]
    assert stub == ToolResultPart(call_id="b", content=(TextPart(INTERRUPTED),), is_error=True)
    assert notes == [f"call b (Bash) had no result; sent {INTERRUPTED!r}"]


def test_trailing_call_without_result_is_answered() -> None:
    """A history that ends on an unanswered call still gets a result for it."""
    out, notes = repair_pairing((user("go"), calls("z")))
    assert shape(out)[-1] == ("tool", "z") and len(notes) == 1


def test_stray_result_becomes_user_text() -> None:
    """A result whose call is gone is kept as labelled user text (images too)."""
    stray = Message(role="tool", parts=(ToolResultPart(call_id="gone", content=(
        TextPart("late output"), ImagePart(url="data:image/png;base64,AAAA")), is_error=True),))
    out, notes = repair_pairing((calls("a"), result("a"), stray, Message(role="assistant", parts=(TextPart("k"),))))
    assert out[2] == Message(role="user", parts=(
        TextPart("[tool result for gone without a matching call]: [error] late output"),
        ImagePart(url="data:image/png;base64,AAAA")))
    assert notes == ["result for gone has no matching call; sent as user text"]


def test_text_made_from_results_joins_the_user_turns_around_it() -> None:
    """user, stray, user would be two user turns in a row: they become one (roles alternate)."""
    named = Message(role="user", parts=(TextPart("next"),), name="alice")
    out, _ = repair_pairing((user("go"), result("gone"), named, calls("a"), result("a")))
    assert out[0] == Message(role="user", parts=(
        TextPart("go"), TextPart("[tool result for gone without a matching call]: ok"), TextPart("next")))
    out, _ = repair_pairing((calls("a"), result("a"), result("gone"), result("gone2"), named))
    assert [m.role for m in out] == ["assistant", "tool", "user"]
    assert out[2].name == "alice" and [p.text for p in out[2].parts][-1] == "next" and len(out[2].parts) == 3
    history = (user("one"), user("two"))  # adjacent user turns the client sent are left alone
    assert repair_pairing(history)[0] is history


def test_out_of_order_results_move_next_to_their_calls() -> None:
    """Results in the wrong order, or after later messages, go right after their call in call order."""
    history = (user("go"), calls("a", "b"), result("b"), user("hm"), result("a"))
    out, notes = repair_pairing(history)
    assert shape(out) == [("user", "go"), ("assistant", "working"), ("tool", "a"), ("tool", "b"), ("user", "hm")]
    assert out[2] is history[4] and out[3] is history[2]  # moved, not rebuilt
    assert sorted(notes) == ["result for a moved next to its call", "result for b moved next to its call"]


def test_result_before_its_call_is_moved_after_it() -> None:
    """A result placed before its call is claimed by the later call."""
    out, notes = repair_pairing((user("go"), result("a"), calls("a"), user("next")))
    assert shape(out) == [("user", "go"), ("assistant", "working"), ("tool", "a"), ("user", "next")]
    assert notes == ["result for a moved next to its call"]


def test_duplicate_results_keep_the_first() -> None:
    """The second result for one call becomes user text; the first stays the answer."""
    history = (user("go"), calls("a"), result("a", "first"), result("a", "second"), user("next"))
    out, notes = repair_pairing(history)
    assert out[2].parts[0].content == (TextPart("first"),)
    assert out[3] == Message(role="user", parts=(TextPart("[duplicate tool result for a]: second"), TextPart("next")))
    assert notes == ["duplicate result for a; the first is kept, this one sent as user text"]


def test_repeated_ids_across_turns_pair_with_the_nearest_call() -> None:
    """llama.cpp reuses call_0 every turn: each result answers the call just before it."""
    history = (user("1"), calls("call_0"), result("call_0", "one"), calls("call_0"), result("call_0", "two"))
    out, notes = repair_pairing(history)
    assert out is history and notes == []
    broken = (user("1"), calls("call_0"), calls("call_0"), result("call_0", "two"))
    out, notes = repair_pairing(broken)
    assert shape(out) == [("user", "1"), ("assistant", "working"), ("tool", "call_0"), ("assistant", "working"),
                          ("tool", "call_0")]
    assert out[2].parts[0].is_error and out[4].parts[0].content == (TextPart("two"),)


def test_results_inside_a_user_message_are_moved_out() -> None:
    """A user message carrying results (non-conventional) keeps its text; the results move."""
    mixed = Message(role="user", parts=(ToolResultPart(call_id="a", content=(TextPart("ok"),)), TextPart("thanks"),
                                        ToolResultPart(call_id="nope")))
    out, notes = repair_pairing((user("go"), calls("a"), mixed))
    assert shape(out) == [("user", "go"), ("assistant", "working"), ("tool", "a"),
                          ("user", "thanks")]
    assert out[3].parts[1] == TextPart("[tool result for nope without a matching call]: ")
    assert len(notes) == 2


def test_a_tool_message_with_two_results_is_split() -> None:
    """Two results in one tool message become one message each, extras kept with the first."""
    both = Message(role="tool", parts=(ToolResultPart(call_id="b"), TextPart("note"), ToolResultPart(call_id="a")))
    out, _ = repair_pairing((user("go"), calls("a", "b"), both))
    assert shape(out)[2:] == [("tool", "a"), ("tool", "b")]
    assert out[3].parts == (ToolResultPart(call_id="b"), TextPart("note"))
