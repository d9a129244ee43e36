"""Responses input items: messages and system prompts, assistant steps grouping reasoning, text
and calls, custom / local_shell calls, tool outputs, and hosted or unknown items as losses."""

from __future__ import annotations

import json

import pytest

from pipeline.events import SearchHit
from pipeline.model import ImagePart, Message, TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from pipeline.server_tools import search_error_text, search_gone_text, search_text
from tests.protocols.responses_decode_helpers import decode, fc, loss_keys, msg, out, reasoning, req


# ---------------------------------------------------------------- messages


def test_input_string_is_one_user_message() -> None:
    request = decode(req("hello"))
    assert request.messages == (Message(role="user", parts=(TextPart("hello"),)),)


def test_easy_message_without_type_and_string_content() -> None:
    request = decode(req([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]))
    assert [m.role for m in request.messages] == ["user", "assistant"]
    assert request.messages[1].parts == (TextPart("yo"),)


def test_instructions_then_leading_developer_then_in_place_system() -> None:
    request = decode(req([msg("developer", "dev1", "dev2"), msg("system", "sys"), msg("user", "q"),
                          msg("developer", "later")], instructions="inst"))
    assert request.system == ("inst", "dev1", "dev2", "sys")
    assert request.messages[-1] == Message(role="system", parts=(TextPart("later"),))


def test_user_parts_and_images() -> None:
    request = decode(req([msg("user", "look",
                              {"type": "input_image", "image_url": "data:image/png;base64,AAA=", "detail": "high"},
                              {"type": "input_image", "file_id": "file-1"},
                              {"type": "input_file", "file_id": "file-2"})]))
    parts = request.messages[0].parts
    assert parts == (TextPart("look"), ImagePart(url="data:image/png;base64,AAA=", detail="high"))
    assert loss_keys(request) == ["image", "content_part"]
    assert "input.0.content.2" in request.losses[0].detail


def test_assistant_output_text_and_refusal() -> None:
    item = {"type": "message", "role": "assistant", "phase": "final_answer",
            "content": [{"type": "output_text", "text": "a", "annotations": []},
                        {"type": "refusal", "refusal": "no"}]}
    request = decode(req([msg("user", "q"), item]))
    assert request.messages[1].parts == (TextPart("a"), TextPart("no"))
    assert loss_keys(request) == ["phase"]


# ---------------------------------------------------------------- steps and calls


def test_run_becomes_one_assistant_message_then_outputs() -> None:
    items = [msg("user", "go"), reasoning("think", "E1"), msg("assistant", {"type": "output_text", "text": "ok"}),
             fc("c1", args='{"a":1}'), fc("c2", args='{"b":2}'), out("c1", "r1"), out("c2", "r2")]
    request = decode(req(items))
    assert [m.role for m in request.messages] == ["user", "assistant", "tool", "tool"]
    parts = request.messages[1].parts
    assert parts == (ThinkingPart("think", "E1"), TextPart("ok"),
                     ToolCallPart(id="c1", name="shell", arguments='{"a":1}'),
                     ToolCallPart(id="c2", name="shell", arguments='{"b":2}'))
    assert request.messages[2].parts == (ToolResultPart(call_id="c1", content=(TextPart("r1"),)),)
    assert request.messages[3].parts[0].call_id == "c2"


def test_text_after_call_in_same_run_stays_in_the_step() -> None:
    items = [msg("user", "go"), fc("c1"), msg("assistant", {"type": "output_text", "text": "after"}), out("c1")]
    request = decode(req(items))
    step = request.messages[1]
    assert step.parts == (TextPart("after"), ToolCallPart(id="c1", name="shell", arguments='{"cmd":"ls"}'))


def test_consecutive_reasoning_items_all_kept_first() -> None:
    request = decode(req([msg("user", "q"), reasoning("a", "E1"), reasoning("b", None), fc("c1"), out("c1")]))
    assert request.messages[1].parts[:2] == (ThinkingPart("a", "E1"), ThinkingPart("b", None))


def test_reasoning_after_content_starts_a_new_step() -> None:
    items = [msg("user", "q"), reasoning("a", "E1"), msg("assistant", {"type": "output_text", "text": "one"}),
             reasoning("b", "E2"), msg("assistant", {"type": "output_text", "text": "two"})]
    request = decode(req(items))
    assert [m.role for m in request.messages] == ["user", "assistant", "assistant"]
    assert request.messages[2].parts == (ThinkingPart("b", "E2"), TextPart("two"))


def test_lonely_reasoning_is_kept_on_its_own_step() -> None:
    request = decode(req([msg("user", "q"), reasoning("a", "E1"), msg("user", "again")]))
    assert request.messages[1] == Message(role="assistant", parts=(ThinkingPart("a", "E1"),))


def test_reasoning_text_content_preferred_over_summary() -> None:
    item = reasoning("summary", None, content=["raw one", "raw two"])
    request = decode(req([msg("user", "q"), item, fc("c")]))
    assert request.messages[1].parts[0] == ThinkingPart("raw one\n\nraw two", None)


def test_reasoning_null_content_and_empty_summary() -> None:
    item = {"type": "reasoning", "summary": [], "content": None, "encrypted_content": "gw1.x"}
    request = decode(req([msg("user", "q"), item, fc("c")]))
    assert request.messages[1].parts[0] == ThinkingPart("", "gw1.x")


def test_namespaced_function_call_is_flattened() -> None:
    request = decode(req([msg("user", "q"), fc("c1", name="create_issue", namespace="mcp__github")]))
    assert request.messages[1].parts[0].name == "mcp__github__create_issue"  # type: ignore[union-attr]


def test_custom_tool_call_and_output() -> None:
    items = [msg("user", "q"), {"type": "custom_tool_call", "call_id": "c9", "name": "apply_patch",
                                "input": "*** Begin Patch\n\"q\"\n*** End Patch"},
             out("c9", "Done", kind="custom_tool_call_output")]
    request = decode(req(items))
    call = request.messages[1].parts[0]
    assert isinstance(call, ToolCallPart) and call.origin == "custom"
    assert json.loads(call.arguments) == {"input": "*** Begin Patch\n\"q\"\n*** End Patch"}
    assert request.messages[2].parts == (ToolResultPart(call_id="c9", content=(TextPart("Done"),)),)


def test_local_shell_call_and_outputs() -> None:
    shell = {"type": "local_shell_call", "call_id": "ls1", "status": "completed",
             "action": {"type": "exec", "command": ["bash", "-lc", "ls"], "timeout_ms": 10000,
                        "working_directory": "/repo", "env": {"A": "1"}, "user": None}}
    items = [msg("user", "q"), shell, out("ls1", "a.txt"),
             {"type": "local_shell_call", "call_id": "ls2", "action": {"command": ["pwd"]}},
             {"type": "local_shell_call_output", "id": "ls2", "output": "/repo"}]
    request = decode(req(items))
    call = request.messages[1].parts[0]
    assert isinstance(call, ToolCallPart)
    assert (call.id, call.name, call.origin) == ("ls1", "local_shell", "local_shell")
    assert json.loads(call.arguments) == {"command": ["bash", "-lc", "ls"], "workdir": "/repo", "timeout_ms": 10000}
    assert json.loads(request.messages[3].parts[0].arguments) == {"command": ["pwd"]}  # type: ignore[union-attr]
    assert request.messages[4].parts == (ToolResultPart(call_id="ls2", content=(TextPart("/repo"),)),)
    assert loss_keys(request) == ["local_shell_action"]


def test_tool_output_parts_text_and_image() -> None:
    output = [{"type": "input_text", "text": "screenshot"},
              {"type": "input_image", "image_url": "data:image/png;base64,iVBO", "detail": "high"},
              {"type": "input_file", "file_data": "x"}]
    request = decode(req([msg("user", "q"), fc("c"), out("c", output)]))
    assert request.messages[2].parts[0] == ToolResultPart(
        call_id="c", content=(TextPart("screenshot"), ImagePart(url="data:image/png;base64,iVBO", detail="high")))
    assert loss_keys(request) == ["content_part"]


def test_empty_output_is_empty_content() -> None:
    request = decode(req([msg("user", "q"), fc("c"), out("c", "")]))
    assert request.messages[2].parts == (ToolResultPart(call_id="c", content=()),)


@pytest.mark.parametrize("kind", ["web_search_call", "image_generation_call", "compaction", "tool_search_call",
                                  "tool_search_output", "item_reference", "mcp_call", "brand_new_item"])
def test_hosted_and_unknown_items_dropped_with_loss(kind: str) -> None:
    items = [msg("user", "q"), reasoning("a", "E"), {"type": kind, "id": "x1", "status": "completed"},
             fc("c1"), out("c1")]
    request = decode(req(items))
    assert loss_keys(request) == ["input_item"]
    # A tool search without execution "client" is one OpenAI's servers ran (Codex's are client-run).
    hosted = " of a server-run search" if kind.startswith("tool_search") else ""
    assert request.losses[0].detail == f"input.2: {kind} item{hosted} dropped"
    # The dropped item does not split the step.
    assert [type(p).__name__ for p in request.messages[1].parts] == ["ThinkingPart", "ToolCallPart"]


def test_a_gateway_web_search_sent_back_with_its_id_is_a_call_and_its_result() -> None:
    """A web_search_call whose id is the gateway's (ws_ + the call id): the call, then a result
    from the sources' URLs (the snippets were not kept: a loss); a failed one is an error result."""
    search = {"type": "web_search_call", "id": "ws_c1", "status": "completed",
              "action": {"type": "search", "query": "q", "sources": [{"type": "url", "url": "https://a.example/"}]}}
    failed = {"type": "web_search_call", "id": "ws_c2", "status": "failed", "action": {"type": "search", "query": "r"}}
    codex = {"type": "web_search_call", "id": "ws_c3", "status": "completed", "action": {"type": "search", "query": "s"}}
    request = decode(req([msg("user", "q"), reasoning("a", "E"), search, failed, codex, msg("assistant", "done")]))
    assert [m.role for m in request.messages] == ["user", "assistant", "tool", "assistant", "tool", "assistant", "tool",
                                                  "assistant"]
    assert request.messages[1].parts[1] == ToolCallPart(id="c1", name="web_search", arguments='{"query":"q"}')
    assert request.messages[2].parts == (ToolResultPart(call_id="c1", content=(
        TextPart(search_text("q", [SearchHit(url="https://a.example/")])),)),)
    assert request.messages[4].parts == (ToolResultPart(call_id="c2", content=(
        TextPart(search_error_text("unavailable")),), is_error=True),)
    assert request.messages[6].parts == (ToolResultPart(call_id="c3", content=(TextPart(search_gone_text("s")),)),)
    assert loss_keys(request) == ["web_search_result", "web_search_result"]  # Codex keeps no sources
