"""The neutral non-streaming fold (``pipeline/assemble.py``): one test per rule of its docstring,
the ``replay`` inverse, and the three codecs' collectors agreeing on the cases they once folded
each their own way (text after its block closed, two errors, a missing end)."""

from __future__ import annotations

import msgspec
import pytest

from pipeline.assemble import INCOMPLETE, Assembler, Completion, Text, Thinking, ToolCall, fold, replay
from pipeline.errors import GatewayError
from pipeline.events import (
    BlockStart,
    BlockStop,
    ErrorInfo,
    Event,
    Heartbeat,
    MessageStart,
    MessageStop,
    SignatureDelta,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    Usage,
)
from pipeline.model import ChatRequest
from pipeline.protocols.anthropic import AnthropicCodec
from pipeline.protocols.chat import ChatCodec
from pipeline.protocols.responses import ResponsesCodec

START = MessageStart(message_id="m1", model="deepseek-v4-pro")
END = MessageStop(stop_reason="end_turn")
FIRST = ErrorInfo(code="overloaded", message="the cause", status=503)
SECOND = ErrorInfo(code="invalid_request", message="a consequence", status=400)


def blocks(*events: Event) -> tuple[object, ...]:
    return fold([START, *events, END]).blocks


# ---------------------------------------------------------------- rule 1: order


def test_blocks_are_in_the_order_they_began_not_by_index() -> None:
    got = blocks(BlockStart(index=5, block="text"), TextDelta(index=5, text="a"), BlockStop(index=5),
                 BlockStart(index=2, block="tool_call", call_id="c", name="f"), BlockStop(index=2),
                 ThinkingDelta(index=0, text="late thought"))
    assert got == (Text(text="a"), ToolCall(call_id="c", name="f", arguments=""), Thinking(text="late thought"))


# ---------------------------------------------------------------- rule 2: a delta joins its block


def test_content_after_its_block_closed_is_kept_in_that_block() -> None:
    got = blocks(BlockStart(index=0, block="text"), TextDelta(index=0, text="Hel"), BlockStop(index=0),
                 BlockStart(index=1, block="tool_call", call_id="c", name="f"), ToolArgsDelta(index=1, fragment='{"a"'),
                 BlockStop(index=1), TextDelta(index=0, text="lo"), ToolArgsDelta(index=1, fragment=": 1}"))
    assert got == (Text(text="Hello"), ToolCall(call_id="c", name="f", arguments='{"a": 1}'))


def test_a_delta_without_its_block_opens_one_of_its_kind() -> None:
    got = blocks(TextDelta(index=3, text="x"), ToolArgsDelta(index=4, fragment="{}"), ThinkingDelta(index=9, text="t"))
    assert got == (Text(text="x"), ToolCall(call_id=None, name=None, arguments="{}"), Thinking(text="t"))


def test_a_delta_of_another_kind_than_its_index_block_opens_its_own() -> None:
    got = blocks(BlockStart(index=0, block="thinking"), ThinkingDelta(index=0, text="t"), TextDelta(index=0, text="x"),
                 BlockStop(index=0))
    assert got == (Thinking(text="t"), Text(text="x"))


def test_an_empty_delta_opens_nothing() -> None:
    assert blocks(TextDelta(index=0, text=""), ToolArgsDelta(index=1, fragment=""),
                  SignatureDelta(index=2, signature=""), ThinkingDelta(index=3, text="")) == ()


# ---------------------------------------------------------------- rule 3: a BlockStart opens a block


def test_a_reused_index_opens_a_new_block_and_the_old_keeps_its_content() -> None:
    got = blocks(BlockStart(index=0, block="tool_call", call_id="a", name="f"), ToolArgsDelta(index=0, fragment="{}"),
                 BlockStop(index=0), BlockStart(index=0, block="tool_call", call_id="b", name="g"),
                 ToolArgsDelta(index=0, fragment='{"x": 1}'), BlockStop(index=0))
    assert got == (ToolCall(call_id="a", name="f", arguments="{}"),
                   ToolCall(call_id="b", name="g", arguments='{"x": 1}'))


# ---------------------------------------------------------------- rule 4: concatenation


def test_deltas_and_signature_pieces_concatenate() -> None:
    got = blocks(BlockStart(index=0, block="thinking"), ThinkingDelta(index=0, text="a"),
                 ThinkingDelta(index=0, text="b"), SignatureDelta(index=0, signature="gw1."),
                 SignatureDelta(index=0, signature="xyz"), BlockStop(index=0))
    assert got == (Thinking(text="ab", signature="gw1.xyz"),)


def test_a_signature_without_its_thinking_block_opens_one_and_is_kept() -> None:
    got = blocks(BlockStart(index=0, block="text"), TextDelta(index=0, text="x"),
                 SignatureDelta(index=0, signature="s"))
    assert got == (Text(text="x"), Thinking(text="", signature="s"))
    assert blocks(BlockStart(index=0, block="thinking"), BlockStop(index=0)) == (Thinking(text="", signature=None),)


# ---------------------------------------------------------------- rule 5: identity and summaries


def test_the_first_message_start_names_the_message_and_the_last_summaries_stand() -> None:
    done = fold([START, MessageStart(message_id="m2", model="other"), Usage(input_tokens=1, output_tokens=1),
                 MessageStop(stop_reason="max_tokens"), Usage(input_tokens=5, output_tokens=7),
                 MessageStop(stop_reason="stop_sequence", stop_sequence="END")])
    assert (done.message_id, done.model) == ("m1", "deepseek-v4-pro")
    assert done.usage == Usage(input_tokens=5, output_tokens=7)
    assert (done.stop_reason, done.stop_sequence, done.error) == ("stop_sequence", "END", None)


# ---------------------------------------------------------------- rule 6: after MessageStop


def test_content_after_message_stop_is_kept() -> None:
    done = fold([START, BlockStart(index=0, block="text"), TextDelta(index=0, text="a"), BlockStop(index=0), END,
                 TextDelta(index=0, text="b"), BlockStart(index=1, block="tool_call", call_id="c", name="f")])
    assert done.blocks == (Text(text="ab"), ToolCall(call_id="c", name="f", arguments=""))
    assert done.error is None and done.stop_reason == "end_turn"


# ---------------------------------------------------------------- rule 7: the first error


def test_the_first_error_is_the_answer_and_nothing_after_it_counts() -> None:
    done = fold([START, BlockStart(index=0, block="text"), TextDelta(index=0, text="partial"),
                 StreamError(error=FIRST), TextDelta(index=0, text=" more"), StreamError(error=SECOND),
                 BlockStart(index=1, block="text"), Usage(output_tokens=9), END])
    assert done.error == FIRST
    assert done.blocks == (Text(text="partial"),)  # what came before it
    assert (done.stop_reason, done.usage) == (None, None)  # a later MessageStop does not make it a success


def test_an_error_after_message_stop_still_makes_the_answer_an_error() -> None:
    done = fold([START, BlockStart(index=0, block="text"), TextDelta(index=0, text="a"), END, StreamError(error=FIRST)])
    assert done.error == FIRST and done.stop_reason == "end_turn"


# ---------------------------------------------------------------- rule 8: a missing end


def test_input_that_ends_without_stop_or_error_is_incomplete() -> None:
    done = fold([START, BlockStart(index=0, block="text"), TextDelta(index=0, text="a"), BlockStop(index=0)])
    assert done.error == INCOMPLETE and done.error.code == "bad_gateway" and done.blocks == (Text(text="a"),)
    assert fold([]).error == INCOMPLETE


# ---------------------------------------------------------------- rule 9: heartbeats


def test_heartbeats_change_nothing() -> None:
    events: list[Event] = [START, BlockStart(index=0, block="text"), TextDelta(index=0, text="a"),
                           BlockStop(index=0), END]
    beating = [e for event in events for e in (Heartbeat(), event)] + [Heartbeat()]
    assert fold(beating) == fold(events) == Completion(message_id="m1", model="deepseek-v4-pro",
                                                       blocks=(Text(text="a"),), stop_reason="end_turn")


def test_completion_may_be_asked_again_and_is_frozen() -> None:
    assembler = Assembler()
    for event in (START, TextDelta(index=0, text="a")):
        assembler.feed(event)
    first = assembler.completion()
    assembler.feed(END)
    assert first.error == INCOMPLETE and assembler.completion().error is None
    with pytest.raises(AttributeError):
        first.error = None  # type: ignore[misc]


# ---------------------------------------------------------------- replay


COMPLETIONS = [  # completions a fold can make: each has a stop or an error
    Completion(message_id="m", model="x", stop_reason="end_turn"),
    Completion(message_id="m", model="x", blocks=(
        Thinking(text="why", signature="gw1.sig"), Thinking(text=""), Text(text="a"), Text(text=""),
        ToolCall(call_id="c1", name="Bash", arguments='{"command": "ls"}'),
        ToolCall(call_id=None, name=None, arguments="")),
        usage=Usage(input_tokens=3, output_tokens=4, cached_input_tokens=1, reasoning_tokens=2),
        stop_reason="stop_sequence", stop_sequence="END"),
    Completion(blocks=(Text(text="partial"),), error=FIRST),
    Completion(stop_reason="end_turn", error=FIRST),
    Completion(blocks=(Thinking(text="", signature="only"),), error=INCOMPLETE),
]


@pytest.mark.parametrize("completion", COMPLETIONS)
def test_replay_folds_back_into_the_same_completion(completion: Completion) -> None:
    events = replay(completion)
    assert fold(events) == completion
    # Well formed: MessageStart, blocks 0, 1, ... each started and stopped before the next.
    assert isinstance(events[0], MessageStart)
    starts = [e.index for e in events if isinstance(e, BlockStart)]
    stops = [e.index for e in events if isinstance(e, BlockStop)]
    assert starts == stops == list(range(len(completion.blocks)))


def test_replay_of_a_drifted_stream_is_well_formed_and_keeps_everything() -> None:
    drifted = fold([START, BlockStart(index=0, block="text"), TextDelta(index=0, text="a"), BlockStop(index=0),
                    TextDelta(index=0, text="b"), END])
    assert [type(e).__name__ for e in replay(drifted)] == [
        "MessageStart", "BlockStart", "TextDelta", "BlockStop", "MessageStop"]
    assert replay(drifted)[2] == TextDelta(index=0, text="ab")


# ---------------------------------------------------------------- the codecs share it

CODECS = {"anthropic": AnthropicCodec(), "responses": ResponsesCodec(), "chat": ChatCodec()}
REQUEST = ChatRequest(model="client-model", stream=False)


def collected(dialect: str, events: list[Event]) -> bytes:
    collector = CODECS[dialect].reply().collector(REQUEST)
    for event in events:
        collector.feed(event)
    return collector.body()


def text_of(dialect: str, body: bytes) -> str:
    data = msgspec.json.decode(body)
    if dialect == "anthropic":
        return "".join(b["text"] for b in data["content"] if b["type"] == "text")
    if dialect == "responses":
        return "".join(p["text"] for item in data["output"] if item["type"] == "message" for p in item["content"])
    return data["choices"][0]["message"]["content"] or ""


@pytest.mark.parametrize("dialect", CODECS)
def test_every_codec_keeps_text_that_came_after_its_block_closed(dialect: str) -> None:
    """The Anthropic and Responses collectors used to drop it, Chat's kept it."""
    events: list[Event] = [START, BlockStart(index=0, block="text"), TextDelta(index=0, text="first half, "),
                           BlockStop(index=0), TextDelta(index=0, text="second half"), END]
    assert text_of(dialect, collected(dialect, events)) == "first half, second half"


@pytest.mark.parametrize("dialect", CODECS)
def test_every_codec_raises_the_first_error(dialect: str) -> None:
    """Chat's collector used to keep the last one; Responses' rendered a 200 ``failed`` body."""
    events: list[Event] = [START, BlockStart(index=0, block="text"), TextDelta(index=0, text="partial"),
                           StreamError(error=FIRST), StreamError(error=SECOND), END]
    with pytest.raises(GatewayError) as caught:
        collected(dialect, events)
    assert (caught.value.code, caught.value.status, caught.value.message) == ("overloaded", 503, "the cause")


@pytest.mark.parametrize("dialect", CODECS)
def test_every_codec_raises_for_an_answer_without_its_end(dialect: str) -> None:
    """Anthropic's collector used to call it ``end_turn``, Responses' a 200 ``failed`` body."""
    with pytest.raises(GatewayError) as caught:
        collected(dialect, [START, BlockStart(index=0, block="text"), TextDelta(index=0, text="cut")])
    assert (caught.value.code, caught.value.message) == ("bad_gateway", INCOMPLETE.message)
