"""Responses request decoding of the real Codex captures: key facts, history kept verbatim,
custom and namespaced tools, reasoning on the call message, and the codec entry point."""

from __future__ import annotations

import json

import pytest

from pipeline.model import TextPart, ThinkingConfig, ThinkingPart, ToolCallPart, ToolChoice, ToolResultPart
from pipeline.protocols.responses import ResponsesCodec, decode_request
from pipeline.protocols.responses.client_decode import VERBOSITY_LOW
from pipeline.protocols.responses.client_decode_echo import ClientTool
from tests.protocols.responses_decode_helpers import CODEX, HOSTED, body_of, decode, decode_echo, loss_keys


# ---------------------------------------------------------------- real captures


def test_captures_present() -> None:
    assert len(CODEX) >= 12


@pytest.mark.parametrize("name", CODEX)
def test_capture_key_facts(name: str) -> None:
    body = body_of(name)
    request = decode(body)
    assert request.model == body["model"]
    assert request.stream is True
    assert request.tool_choice == ToolChoice(mode="auto")
    assert request.parallel_tool_calls is True
    # The system prompt is the developer messages (Codex sends no `instructions`), then the line
    # that carries Codex's text.verbosity "low".
    developer = [p["text"] for it in body["input"] if it.get("role") == "developer" for p in it["content"]]
    low = [VERBOSITY_LOW] if (body.get("text") or {}).get("verbosity") == "low" else []
    assert list(request.system) == developer + low
    assert request.system[0].startswith("You are")
    assert all(m.role != "system" for m in request.messages)
    users = [it for it in body["input"] if it.get("role") == "user"]
    assert sum(m.role == "user" for m in request.messages) == len(users)
    # Every client tool is offered; hosted ones are recorded as losses, never a 400.
    names = {t.name for t in request.tools}
    for tool in body["tools"]:
        if tool["type"] in ("function", "custom"):
            assert tool["name"] in names
        elif tool["type"] == "namespace":
            assert {f"{tool['name']}__{inner['name']}" for inner in tool["tools"]} <= names
        elif tool["type"] == "tool_search" and tool.get("execution") == "client":
            assert "tool_search" in names and decode_echo(body).tool_targets["tool_search"].kind == "tool_search"
        else:
            assert tool["type"] in HOSTED
            assert any(loss.what == "server_tool" and tool["type"] in loss.detail for loss in request.losses)
    echo = decode_echo(body)
    assert echo.store is False
    assert echo.include == ("reasoning.encrypted_content",)
    assert echo.prompt_cache_key == body["prompt_cache_key"]
    assert request.user is None  # prompt_cache_key is a conversation id, not a user


@pytest.mark.parametrize("name", CODEX)
def test_capture_history_never_dropped(name: str) -> None:
    """Every call and every output in the input survives, keyed by call_id, verbatim."""
    body = body_of(name)
    request = decode(body)
    calls = {p.id: p for m in request.messages if m.role == "assistant" for p in m.parts
             if isinstance(p, ToolCallPart)}
    results = {m.parts[0].call_id: m.parts[0] for m in request.messages if m.role == "tool"}
    for item in body["input"]:
        if item["type"] == "function_call":
            assert calls[item["call_id"]].arguments == item["arguments"]
            assert calls[item["call_id"]].name == item["name"]
        elif item["type"] == "custom_tool_call":
            assert json.loads(calls[item["call_id"]].arguments) == {"input": item["input"]}
        elif item["type"].endswith("_output"):
            assert results[item["call_id"]].content == (TextPart(item["output"]),)
    n_calls = sum(it["type"] in ("function_call", "custom_tool_call") for it in body["input"])
    assert len(calls) == n_calls
    assert len(results) == sum(it["type"].endswith("_output") for it in body["input"])


def test_capture_custom_apply_patch_tool() -> None:
    body = body_of("codex-write-file-1.json")
    spec = decode(body).tool("apply_patch")
    wire = next(t for t in body["tools"] if t["type"] == "custom")
    assert spec is not None and spec.kind == "custom"
    assert spec.grammar == wire["format"]["definition"]
    assert spec.syntax == "lark"
    assert spec.description == wire["description"]


def test_client_tool_facts_kept_for_the_encoder() -> None:
    """Stages may rename ToolSpecs for the upstream; the encoder still needs the client's view."""
    echo = decode_echo(body_of("codex-write-file-1.json"))
    assert echo.tool_targets == {"apply_patch": ClientTool("custom", "apply_patch", None),
                                 "tool_search": ClientTool("tool_search", "tool_search", None)}
    echo = decode_echo(body_of("codex-model-deepseek-chat-tool-1.json"))
    assert echo.tool_targets["multi_agent_v1__wait_agent"] == ClientTool("function", "wait_agent", "multi_agent_v1")
    assert "exec_command" not in echo.tool_targets  # plain functions need no facts
    assert echo.tool_choice == "auto"


def test_capture_namespace_flattened() -> None:
    body = body_of("codex-model-deepseek-chat-tool-1.json")
    request = decode(body)
    spec = request.tool("multi_agent_v1__spawn_agent")
    assert spec is not None
    assert (spec.namespace, spec.client_name, spec.kind) == ("multi_agent_v1", "spawn_agent", "function")
    assert spec.parameters["type"] == "object"
    assert "namespace_description" in loss_keys(request)
    assert request.thinking == ThinkingConfig()  # reasoning: {summary: auto} → upstream default
    assert decode_echo(body).reasoning_summary == "auto"


@pytest.mark.parametrize("name", ["codex-thinking-tool-2.json", "codex-model-deepseek-chat-thinking-tool-2.json"])
def test_capture_reasoning_rides_on_the_call_message(name: str) -> None:
    body = body_of(name)
    request = decode(body)
    rs = next(it for it in body["input"] if it["type"] == "reasoning")
    call = next(it for it in body["input"] if it["type"] == "function_call")
    step = next(m for m in request.messages if m.role == "assistant")
    assert step.parts[0] == ThinkingPart(text=rs["summary"][0]["text"],
                                         signature="ENC-scripted-0001-gAAAAABmZm9vYmFy==")
    assert step.parts[1] == ToolCallPart(id=call["call_id"], name="exec_command", arguments=call["arguments"])
    assert len(step.parts) == 2
    assert request.messages[-1].role == "tool"
    assert request.messages[-1].parts[0].call_id == call["call_id"]


def test_capture_write_file_custom_call() -> None:
    body = body_of("codex-write-file-2.json")
    request = decode(body)
    step = request.messages[-2]
    call = next(it for it in body["input"] if it["type"] == "custom_tool_call")
    assert step.role == "assistant"
    assert step.parts[0] == TextPart("Writing the file.")
    part = step.parts[1]
    assert isinstance(part, ToolCallPart) and part.origin == "custom" and part.name == "apply_patch"
    assert part.id == call["call_id"]
    assert json.loads(part.arguments) == {"input": call["input"]}
    result = request.messages[-1].parts[0]
    assert isinstance(result, ToolResultPart) and result.call_id == call["call_id"]
    assert "Success." in result.content[0].text  # type: ignore[union-attr]


def test_codec_decodes() -> None:
    codec = ResponsesCodec()
    raw = json.dumps(body_of("codex-text-1.json")).encode()
    request, reply = codec.decode_request(raw)
    assert (request, reply.echo) == decode_request(raw)
