"""tool_ids: ids, names, schemas, pairing, streamed calls and apply_patch, both ways, per profile."""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec
import pytest

from pipeline.events import BlockStart, BlockStop, Event, MessageStart, MessageStop, TextDelta, ToolArgsDelta, Usage
from pipeline.model import ChatRequest, Message, TextPart, ToolCallPart, ToolChoice, ToolResultPart, ToolSpec
from pipeline.protocols.anthropic import decode_request as decode_anthropic
from pipeline.protocols.chat import ChatStreamDecoder
from pipeline.protocols.chat.upstream_encode import encode_request
from pipeline.protocols.responses.client_decode import decode_request as decode_responses
from pipeline.sse import SseFrame
from pipeline.stage import RequestContext
from pipeline.testing import check_stage, make_attempt, make_context, run_stage
from stages.tool_ids import ToolIdMap
from stages.tool_ids.pairing import INTERRUPTED
from tests.captures import capture_body
from pipeline.profiles import PROFILES

FRESH = re.compile(r"call_[A-Za-z0-9]{24}")
LONG_MCP = "mcp__github__create_pull_request_review_comment_with_suggestions_v2"
PATCH = "*** Begin Patch\n*** Add File: notes.txt\n+written by tool\n*** End Patch"


def capture(name: str) -> bytes:
    return json.dumps(capture_body(name)).encode()


def stage() -> ToolIdMap:
    return ToolIdMap(ToolIdMap.Config(), stage_id="p.2.tool_ids")


def ctx_for(profile: str | None = "deepseek", client: str = "anthropic") -> RequestContext:
    ctx = make_context(client=client)
    if profile is not None:
        ctx.aim(make_attempt(PROFILES[profile]))
    return ctx


def head(call_id: str = "msg_1") -> list[Event]:
    return [MessageStart(message_id=call_id, model="upstream-model")]


def tool_block(index: int, call_id: str | None, name: str, args: str = "{}") -> list[Event]:
    deltas = [ToolArgsDelta(index=index, fragment=args)] if args else []
    return [BlockStart(index=index, block="tool_call", call_id=call_id, name=name), *deltas, BlockStop(index=index)]


def tail(reason: str = "tool_use") -> list[Event]:
    return [Usage(input_tokens=10, output_tokens=5), MessageStop(stop_reason=reason)]  # type: ignore[arg-type]


def turn(*messages: Message, tools: tuple[ToolSpec, ...] = (), **kw: Any) -> ChatRequest:
    return ChatRequest(model="client-model", messages=(Message(role="user", parts=(TextPart("go"),)), *messages),
                       tools=tools, **kw)


def assistant(*calls: ToolCallPart) -> Message:
    return Message(role="assistant", parts=calls)


def result(call_id: str, text: str = "done") -> Message:
    return Message(role="tool", parts=(ToolResultPart(call_id=call_id, content=(TextPart(text),)),))


def starts(events: list[Event]) -> list[BlockStart]:
    return [e for e in events if isinstance(e, BlockStart)]


def losses(ctx: RequestContext, what: str) -> list[str]:
    return [loss.detail for loss in ctx.losses if loss.what == what]


class TestIds:
    async def test_invalid_client_ids_are_mapped_consistently(self) -> None:
        """A call id DeepSeek rejects becomes call_<hex> on the call and its result alike."""
        request = turn(assistant(ToolCallPart(id="fc.1:weird/id", name="Bash", arguments="{}")), result("fc.1:weird/id"))
        ctx = ctx_for()
        sent, _ = await run_stage(stage(), [], request=request, ctx=ctx)
        call, res = sent.messages[1].parts[0], sent.messages[2].parts[0]
        assert re.fullmatch(r"call_[0-9a-f]{24}", call.id) and res.call_id == call.id
        assert ctx.state["p.2.tool_ids"].id_reverse == {call.id: "fc.1:weird/id"}
        again, _ = await run_stage(stage(), [], request=request, ctx=ctx_for())
        assert again.messages[1].parts[0].id == call.id  # pure: the next turn maps the same way

    async def test_valid_ids_and_untouched_requests_pass_as_they_are(self) -> None:
        """Anthropic-style ids fit every profile: messages are not rebuilt."""
        request = turn(assistant(ToolCallPart(id="toolu_01ABC", name="Bash", arguments="{}")), result("toolu_01ABC"))
        sent, _ = await run_stage(stage(), [], request=request, ctx=ctx_for())
        assert sent.messages == request.messages and sent.messages[1] is request.messages[1]

    async def test_upstream_ids_valid_for_the_client_are_kept(self) -> None:
        """An upstream id that is new and Anthropic-safe reaches the client verbatim."""
        _, out = await run_stage(stage(), head() + tool_block(0, "call_7f2a", "Bash") + tail(), ctx=ctx_for())
        assert starts(out)[0].call_id == "call_7f2a"

    async def test_llamacpp_call_0_across_turns_becomes_unique(self) -> None:
        """llama.cpp says call_0 every turn: from turn 2 on the client gets fresh, distinct ids."""
        st = stage()
        events = head() + tool_block(0, "call_0", "Bash", '{"command":"ls"}') + tail()
        _, out1 = await run_stage(st, events, request=turn(), ctx=ctx_for("llamacpp"))
        first = starts(out1)[0].call_id
        assert first == "call_0"
        history = [assistant(ToolCallPart(id=first, name="Bash", arguments='{"command":"ls"}')), result(first)]
        _, out2 = await run_stage(st, events, request=turn(*history), ctx=ctx_for("llamacpp"))
        second = starts(out2)[0].call_id
        assert FRESH.fullmatch(second)
        history += [assistant(ToolCallPart(id=second, name="Bash", arguments="{}")), result(second)]
        _, out3 = await run_stage(st, events, request=turn(*history), ctx=ctx_for("llamacpp"))
        third = starts(out3)[0].call_id
        assert FRESH.fullmatch(third) and len({first, second, third}) == 3

    async def test_missing_and_invalid_upstream_ids_are_generated(self) -> None:
        """No id, or one with characters Anthropic rejects: a fresh id, unique within the response."""
        events = head() + tool_block(0, None, "Bash") + tool_block(1, "id with spaces", "Bash") + tail()
        _, out = await run_stage(stage(), events, ctx=ctx_for())
        ids = [s.call_id for s in starts(out)]
        assert all(FRESH.fullmatch(i) for i in ids) and ids[0] != ids[1]


class TestNames:
    TOOLS = (
        ToolSpec(name=LONG_MCP, parameters={"type": "object", "properties": {}}),
        ToolSpec(name="files.read/v2", parameters={"type": "object", "properties": {}}),
        ToolSpec(name="github__search issues", namespace="github", client_name="search issues"),
        ToolSpec(name="Bash", parameters={"type": "object", "properties": {}}),
    )

    async def test_names_round_trip(self) -> None:
        """Tools, history calls and tool_choice get accepted names; the response restores the originals."""
        history = (assistant(ToolCallPart(id="toolu_1", name=LONG_MCP, arguments="{}")), result("toolu_1"))
        request = turn(*history, tools=self.TOOLS, tool_choice=ToolChoice(mode="tool", name="files.read/v2"))
        ctx = ctx_for()
        sent, _ = await run_stage(stage(), [], request=request, ctx=ctx)
        pattern = PROFILES["deepseek"].tool_name_pattern
        upstream_names = [t.name for t in sent.tools]
        assert all(re.fullmatch(pattern, n) for n in upstream_names) and upstream_names[3] == "Bash"
        assert len(LONG_MCP) > 64 and len(upstream_names[0]) == 64
        assert sent.messages[1].parts[0].name == upstream_names[0]
        assert sent.tool_choice == ToolChoice(mode="tool", name=upstream_names[1])
        assert (sent.tools[2].namespace, sent.tools[2].client_name) == ("github", "search issues")

        events = head() + [e for i, n in enumerate(upstream_names) for e in tool_block(i, f"call_{i}", n)] + tail()
        _, out = await run_stage(stage(), events, request=request, ctx=ctx_for())
        assert [s.name for s in starts(out)] == [t.name for t in self.TOOLS]

    async def test_unknown_upstream_names_pass(self) -> None:
        """A name the model made up is not in the map: it reaches the client as it is."""
        _, out = await run_stage(stage(), head() + tool_block(0, "c1", "nonexistent_tool") + tail(),
                                 request=turn(tools=self.TOOLS), ctx=ctx_for())
        assert starts(out)[0].name == "nonexistent_tool"


class TestSchemas:
    async def test_claude_code_tools_for_deepseek(self) -> None:
        """Real Claude Code tools: $schema gone everywhere, object tops; strict dropped with a loss."""
        request, _ = decode_anthropic(capture("claude-tool-1.json"))
        request = msgspec.structs.replace(request, tools=(*request.tools, ToolSpec(name="S", strict=True)))
        ctx = ctx_for("deepseek")
        sent, _ = await run_stage(stage(), [], request=request, ctx=ctx)
        assert all("$schema" not in json.dumps(t.parameters) for t in sent.tools)
        assert all(t.parameters["type"] == "object" and "properties" in t.parameters for t in sent.tools)
        assert sent.tools[-1].strict is None
        assert losses(ctx, "schema") == ["tool S: strict is not supported by deepseek"]

    async def test_llamacpp_inlines_refs(self) -> None:
        """llama.cpp: $ref inlined, recursion cut with a loss, format dropped with a loss."""
        params = {"type": "object", "properties": {"node": {"$ref": "#/$defs/Node"}, "at": {"$ref": "#/$defs/T"}},
                  "$defs": {"T": {"type": "string", "format": "date"},
                            "Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}}}
        ctx = ctx_for("llamacpp")
        sent, _ = await run_stage(stage(), [], request=turn(tools=(ToolSpec(name="walk", parameters=params),)), ctx=ctx)
        assert sent.tools[0].parameters == {"type": "object", "properties": {
            "node": {"type": "object", "properties": {"next": {}}}, "at": {"type": "string"}}}
        (detail,) = losses(ctx, "schema")
        assert detail.startswith("tool walk: ") and "recursive $ref #/$defs/Node" in detail and "format" in detail

    async def test_vllm_keeps_strict(self) -> None:
        """vLLM supports strict: kept, and the schema is left as it was."""
        params = {"type": "object", "properties": {"a": {"type": ["string", "null"]}}, "required": ["a"],
                  "additionalProperties": False}
        ctx = ctx_for("vllm")
        spec = ToolSpec(name="f", parameters=params, strict=True)
        sent, _ = await run_stage(stage(), [], request=turn(tools=(spec,)), ctx=ctx)
        assert sent.tools[0].strict is True and ctx.losses == []
        assert sent.tools[0].parameters["properties"]["a"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}

    async def test_without_an_upstream_the_default_profile_applies(self) -> None:
        """Unit-test contexts have no upstream: defaults (no keywords dropped, no strict)."""
        spec = ToolSpec(name="x.y", parameters={"$schema": "s"}, strict=True)
        sent, _ = await run_stage(stage(), [], request=turn(tools=(spec,)), ctx=ctx_for(None))
        assert sent.tools[0].name == "x_y" and sent.tools[0].parameters["$schema"] == "s"
        assert sent.tools[0].strict is None


class TestPairing:
    async def test_repairs_are_applied_and_reported(self) -> None:
        """Orphan, stray, out of order and duplicate in one history: each repaired with a loss."""
        call = lambda i: ToolCallPart(id=i, name="Bash", arguments="{}")  # noqa: E731
        request = turn(assistant(call("a"), call("b"), call("c")), result("c"), result("a"), result("a", "again"),
                       result("ghost"), Message(role="user", parts=(TextPart("stop"),)))
        ctx = ctx_for()
        sent, _ = await run_stage(stage(), [], request=request, ctx=ctx)
        roles = [(m.role, m.parts[0].call_id if m.role == "tool" else m.parts[0].text) for m in sent.messages[2:]]
        assert roles == [("tool", "a"), ("tool", "b"), ("tool", "c"), ("user", "[duplicate tool result for a]: again")]
        assert [p.text for p in sent.messages[5].parts] == [
            "[duplicate tool result for a]: again", "[tool result for ghost without a matching call]: done", "stop"]
        assert sent.messages[3].parts[0].content == (TextPart(INTERRUPTED),)
        assert len(losses(ctx, "tool_pairing")) == 5  # a moved, c moved, duplicate, stray, b orphaned

    async def test_encoded_upstream_request_pairs_every_call(self) -> None:
        """After the stage the Chat body answers every tool_call right after its assistant message."""
        call = ToolCallPart(id="fc.1", name="exec.command", arguments="{}")
        request = turn(assistant(call), Message(role="user", parts=(TextPart("interrupted"),)),
                       tools=(ToolSpec(name="exec.command"),))
        sent, _ = await run_stage(stage(), [], request=request, ctx=ctx_for())
        body = json.loads(encode_request(sent, model="deepseek-v4-pro", profile=PROFILES["deepseek"]))
        msgs = body["messages"]
        ids = [c["id"] for c in msgs[1]["tool_calls"]]
        assert msgs[2]["role"] == "tool" and msgs[2]["tool_call_id"] == ids[0] and msgs[3]["role"] == "user"
        assert msgs[1]["tool_calls"][0]["function"]["name"] == body["tools"][0]["function"]["name"] == "exec_command"


class TestStreaming:
    async def test_interleaved_parallel_calls_come_out_whole(self) -> None:
        """Two calls interleaved by index (via the real decoder) reach the client as two whole calls."""
        def frame(delta: dict[str, Any] | None = None, finish: str | None = None) -> SseFrame:
            chunk = {"id": "c", "model": "m", "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}
            return SseFrame(event=None, data=json.dumps(chunk).encode())

        def tc(index: int, args: str, call_id: str | None = None, name: str | None = None) -> SseFrame:
            call: dict[str, Any] = {"index": index, "function": {"arguments": args}}
            if call_id:
                call.update(id=call_id, type="function")
                call["function"]["name"] = name
            return frame({"tool_calls": [call]})

        frames = [frame({"role": "assistant", "content": ""}), tc(0, "", "call_0", "Read"), tc(1, "", "call_0", "Bash"),
                  tc(0, '{"path":'), tc(1, '{"command":'), tc(0, '"a.txt"}'), tc(1, '"ls"}'),
                  frame(finish="tool_calls"), SseFrame(event=None, data=b"[DONE]")]
        decoder = ChatStreamDecoder(PROFILES["llamacpp"])
        events = [e for f in frames for e in decoder.feed(f)] + decoder.finish()
        _, out = await run_stage(stage(), events, ctx=ctx_for("llamacpp"))
        calls = starts(out)
        args = {s.name: "".join(e.fragment for e in out if isinstance(e, ToolArgsDelta) and e.index == s.index)
                for s in calls}
        assert args == {"Read": '{"path":"a.txt"}', "Bash": '{"command":"ls"}'}
        assert len({s.call_id for s in calls}) == 2 and [s.index for s in calls] == [0, 1]
        assert out[-1] == MessageStop(stop_reason="tool_use")

    async def test_truncated_arguments_are_dropped_with_max_tokens(self) -> None:
        """A call cut off mid-JSON never reaches the client; indexes stay contiguous."""
        events = head() + [BlockStart(index=0, block="text"), TextDelta(index=0, text="ok"), BlockStop(index=0)]
        events += tool_block(1, "call_a", "Write", '{"path":"a","content":"unfinish') + tool_block(2, "call_b", "Bash")
        ctx = ctx_for()
        _, out = await run_stage(stage(), events + tail("tool_use"), ctx=ctx)
        assert [(s.index, s.name) for s in starts(out)] == [(0, None), (1, "Bash")]
        assert out[-1] == MessageStop(stop_reason="max_tokens")
        assert len(losses(ctx, "tool_args")) == 1


class TestApplyPatch:
    @pytest.mark.parametrize("args", [
        json.dumps({"input": json.dumps({"input": PATCH})}),
        json.dumps({"input": f"```diff\n{PATCH}\n```"}),
        json.dumps({"input": f"apply_patch <<'EOF'\n{PATCH}\nEOF"}),
        json.dumps({"input": f"cat <<EOF | apply_patch\n{PATCH}\nEOF\n"}),
        json.dumps({"input": PATCH.removesuffix("\n*** End Patch")}),
        json.dumps({"input": PATCH.replace("\n", "\r\n")}),
        json.dumps(PATCH),
        json.dumps({"patch": PATCH}),
    ])
    async def test_codex_wrappers_are_repaired(self, args: str) -> None:
        """Codex's real request (freeform apply_patch): each wrapper comes off; one clean delta."""
        request, _ = decode_responses(capture("codex-write-file-1.json"))
        ctx = ctx_for("deepseek", client="responses")
        events = head() + tool_block(0, "call_p", "apply_patch", "") + tail()
        events[2:2] = [ToolArgsDelta(index=0, fragment=args[:9]), ToolArgsDelta(index=0, fragment=args[9:])]
        _, out = await run_stage(stage(), events, request=request, ctx=ctx)
        deltas = [e for e in out if isinstance(e, ToolArgsDelta)]
        assert len(deltas) == 1 and json.loads(deltas[0].fragment) == {"input": PATCH}
        assert losses(ctx, "apply_patch_repaired")

    async def test_invalid_patch_passes_through_with_a_loss(self) -> None:
        """Not a patch even after repair: sent as it came; Codex reports the error to the model."""
        request, _ = decode_responses(capture("codex-write-file-1.json"))
        ctx = ctx_for("deepseek", client="responses")
        events = head() + tool_block(0, "call_p", "apply_patch", json.dumps({"input": "edit notes.txt please"})) + tail()
        _, out = await run_stage(stage(), events, request=request, ctx=ctx)
        assert out == events
        assert losses(ctx, "apply_patch_invalid") == ["the patch must start with '*** Begin Patch'"]

    async def test_other_tools_are_not_patch_checked(self) -> None:
        """A JSON string input on an ordinary tool is not treated as a patch."""
        request, _ = decode_responses(capture("codex-write-file-1.json"))
        ctx = ctx_for("deepseek", client="responses")
        args = json.dumps({"cmd": "echo hi"})
        events = head() + tool_block(0, "call_x", "exec_command", args) + tail()
        _, out = await run_stage(stage(), events, request=request, ctx=ctx)
        assert out == events and ctx.losses == []


async def test_conformance() -> None:
    """tool_ids follows the stage contract."""
    await check_stage(stage())
