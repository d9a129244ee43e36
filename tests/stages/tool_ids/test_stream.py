"""tool_ids.stream: holding tool blocks, validating arguments, client ids and names, apply_patch."""

from __future__ import annotations

import json
import re

from pipeline.events import BlockStart, BlockStop, Heartbeat, MessageStart, MessageStop, StreamError, TextDelta
from pipeline.events import ErrorInfo, ToolArgsDelta, Usage
from stages.tool_ids.names import NameMap
from stages.tool_ids.stream import ToolMap, ToolStream

FRESH = re.compile(r"call_[A-Za-z0-9]{24}")


class Losses(list):
    def __call__(self, what: str, detail: str) -> None:
        self.append((what, detail))


def run(events, tool_map: ToolMap | None = None) -> tuple[list, Losses]:
    losses = Losses()
    stream = ToolStream(tool_map or ToolMap(), losses)
    out = [e for event in events for e in stream.feed(event)]
    out.extend(stream.close())
    return out, losses


def call(index: int, call_id: str | None, name: str, *fragments: str) -> list:
    return [BlockStart(index=index, block="tool_call", call_id=call_id, name=name),
            *(ToolArgsDelta(index=index, fragment=f) for f in fragments), BlockStop(index=index)]


def test_a_valid_call_is_released_unchanged_at_its_stop() -> None:
    """Nothing of the call is emitted before its BlockStop; then it comes out exactly as it came."""
    losses = Losses()
    stream = ToolStream(ToolMap(), losses)
    events = call(0, "call_ok", "Bash", '{"command":', '"ls"}')
    assert [stream.feed(e) for e in events[:-1]] == [[], [], []]
    assert stream.feed(events[-1]) == events and losses == []


def test_heartbeats_pass_while_a_call_is_held() -> None:
    """Keep-alives are not held back behind a long call."""
    losses = Losses()
    stream = ToolStream(ToolMap(), losses)
    stream.feed(BlockStart(index=0, block="tool_call", call_id="c1", name="Bash"))
    assert stream.feed(Heartbeat()) == [Heartbeat()]


def test_empty_arguments_are_valid_and_emit_no_delta() -> None:
    """{} is the meaning of no arguments; no empty fragment is invented."""
    out, losses = run(call(0, "c1", "ListAgents"))
    assert out == call(0, "c1", "ListAgents") and losses == []
    out, losses = run(call(0, "c1", "ListAgents", " ", "\n"))
    assert out == call(0, "c1", "ListAgents") and losses == []


def test_truncated_arguments_drop_the_block_and_renumber() -> None:
    """Cut-off JSON: the call is dropped, later blocks shift down, the stop reason says max_tokens."""
    events = [MessageStart(message_id="m", model="x"), BlockStart(index=0, block="text"),
              TextDelta(index=0, text="two calls"), BlockStop(index=0),
              *call(1, "c1", "Bash", '{"command":"echo hi'), *call(2, "c2", "Read", '{"path":"a"}'),
              BlockStart(index=3, block="text"), TextDelta(index=3, text="after"), BlockStop(index=3),
              Usage(output_tokens=9), MessageStop(stop_reason="tool_use")]
    out, losses = run(events)
    assert [e.index for e in out if hasattr(e, "index")] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert out[4] == BlockStart(index=1, block="tool_call", call_id="c2", name="Read")
    assert out[-1] == MessageStop(stop_reason="max_tokens")
    assert losses == [("tool_args", "call Bash dropped: its arguments are not valid JSON (cut off by the output "
                                    "limit?)")]


def test_non_object_arguments_are_dropped() -> None:
    """A JSON array is no call any client can carry."""
    out, losses = run([*call(0, "c1", "Bash", "[1, 2]"), MessageStop(stop_reason="tool_use")])
    assert out == [MessageStop(stop_reason="max_tokens")]
    assert losses[0][0] == "tool_args" and "list, not an object" in losses[0][1]


def test_stream_ending_inside_a_call_drops_it() -> None:
    """StreamError or end of input with a call open: the broken call never reaches the client."""
    error = StreamError(error=ErrorInfo(code="bad_gateway", message="cut"))
    out, losses = run([BlockStart(index=0, block="tool_call", call_id="c", name="Bash"),
                       ToolArgsDelta(index=0, fragment="{}"), error])
    assert out == [error] and losses[0][0] == "tool_args"
    out, losses = run([BlockStart(index=0, block="tool_call", call_id="c", name="Bash")])
    assert out == [] and len(losses) == 1


def test_new_block_without_a_stop_closes_the_held_call() -> None:
    """A malformed upstream stream (no BlockStop) still yields a well-formed, validated block."""
    out, _ = run([BlockStart(index=0, block="tool_call", call_id="c", name="Bash"),
                  ToolArgsDelta(index=0, fragment="{}"), *call(1, "d", "Read", "{}")])
    assert [type(e).__name__ for e in out] == ["BlockStart", "ToolArgsDelta", "BlockStop", "BlockStart",
                                               "ToolArgsDelta", "BlockStop"]


def test_ids_missing_invalid_or_repeated_are_replaced() -> None:
    """Missing, non-Anthropic-safe, history and in-response repeats get fresh unique ids."""
    tool_map = ToolMap(history_ids=frozenset({"call_0"}))
    events = [*call(0, None, "A", "{}"), *call(1, "fc.1:x", "A", "{}"), *call(2, "call_0", "A", "{}"),
              *call(3, "call_1", "A", "{}"), *call(4, "call_1", "A", "{}")]
    out, _ = run(events, tool_map)
    ids = [e.call_id for e in out if isinstance(e, BlockStart)]
    assert ids[3] == "call_1"
    assert all(FRESH.fullmatch(i) for i in (ids[0], ids[1], ids[2], ids[4]))
    assert len(set(ids)) == 5


def test_mapped_history_id_is_never_leaked() -> None:
    """An upstream echo of a mapped id maps back to a history id, a repeat: it gets a fresh id."""
    tool_map = ToolMap(id_reverse={"call_abc": "weird.id"}, history_ids=frozenset({"weird.id", "call_abc"}))
    out, _ = run(call(0, "call_abc", "A", "{}"), tool_map)
    assert FRESH.fullmatch(out[0].call_id)


def test_names_map_back_to_the_client_original() -> None:
    """The upstream-facing name becomes exactly the client's name again."""
    names = NameMap(forward={"a.b": "a_b"}, reverse={"a_b": "a.b"})
    out, _ = run(call(0, "c", "a_b", "{}") + call(1, "d", "other", "{}"), ToolMap(names=names))
    assert [e.name for e in out if isinstance(e, BlockStart)] == ["a.b", "other"]


def test_apply_patch_repaired_as_one_delta() -> None:
    """A fenced patch is re-emitted clean as a single ToolArgsDelta, with the repair recorded."""
    patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch"
    args = json.dumps({"input": f"```\n{patch}\n```"})
    out, losses = run(call(0, "c", "apply_patch", args[:10], args[10:]), ToolMap(patch_tools=frozenset({"apply_patch"})))
    deltas = [e for e in out if isinstance(e, ToolArgsDelta)]
    assert len(deltas) == 1 and json.loads(deltas[0].fragment) == {"input": patch}
    assert losses == [("apply_patch_repaired", "markdown code fence removed")]


def test_apply_patch_invalid_passes_with_a_loss() -> None:
    """An invalid patch goes on as the model wrote it (Codex reports the error to the model)."""
    args = json.dumps({"input": "*** Begin Patch\nnot a patch\n*** End Patch"})
    events = call(0, "c", "apply_patch", args[:7], args[7:])
    out, losses = run(events, ToolMap(patch_tools=frozenset({"apply_patch"})))
    assert out == events
    assert [w for w, _ in losses] == ["apply_patch_invalid"]
