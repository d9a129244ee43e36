"""Responses request decoding: real Codex captures, every item and tool type, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import RequestError
from pipeline.model import (
    ImagePart,
    Message,
    ResponseFormat,
    TextPart,
    ThinkingConfig,
    ThinkingPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from pipeline.protocols.responses import ResponsesCodec, decode_request
from pipeline.protocols.responses.decode import STATELESS

CAPTURES = Path(__file__).resolve().parents[2].parent / "shared" / "captures"
CODEX = sorted(p.name for p in CAPTURES.glob("codex-*.json"))
HOSTED = {"web_search", "tool_search", "image_generation", "file_search", "code_interpreter"}


def body_of(name: str) -> dict[str, Any]:
    return json.loads((CAPTURES / name).read_text())["body"]


def decode(body: dict[str, Any]):
    return decode_request(json.dumps(body).encode())


def req(items: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-x", "input": items, **extra}


def msg(role: str, *parts: dict[str, Any] | str) -> dict[str, Any]:
    content = [{"type": "input_text", "text": p} if isinstance(p, str) else p for p in parts]
    return {"type": "message", "role": role, "content": content}


def fc(call_id: str, name: str = "shell", args: str = '{"cmd":"ls"}', **extra: Any) -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": args, **extra}


def out(call_id: str, output: Any = "ok", kind: str = "function_call_output") -> dict[str, Any]:
    return {"type": kind, "call_id": call_id, "output": output}


def reasoning(summary: str = "plan", enc: str | None = "ENC", content: list[str] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "reasoning", "summary": [{"type": "summary_text", "text": summary}],
                            "encrypted_content": enc}
    if content is not None:
        item["content"] = [{"type": "reasoning_text", "text": t} for t in content]
    return item


def loss_keys(request) -> list[str]:
    return [loss.what for loss in request.losses]


def error_of(body: Any) -> str:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(RequestError) as info:
        decode_request(raw)
    assert info.value.status == 400
    return info.value.message


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
    # The system prompt is the developer messages (Codex sends no `instructions`).
    developer = [p["text"] for it in body["input"] if it.get("role") == "developer" for p in it["content"]]
    assert list(request.system) == developer
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
        else:
            assert tool["type"] in HOSTED
            assert any(loss.what == "server_tool" and tool["type"] in loss.detail for loss in request.losses)
    assert request.client_extras["store"] is False
    assert request.client_extras["include"] == ["reasoning.encrypted_content"]
    assert request.client_extras["prompt_cache_key"] == body["prompt_cache_key"]
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
    extras = decode(body_of("codex-write-file-1.json")).client_extras
    assert extras["tool_targets"] == {"apply_patch": {"kind": "custom", "name": "apply_patch", "namespace": None}}
    extras = decode(body_of("codex-model-deepseek-chat-tool-1.json")).client_extras
    assert extras["tool_targets"]["multi_agent_v1__wait_agent"] == {
        "kind": "function", "name": "wait_agent", "namespace": "multi_agent_v1"}
    assert "exec_command" not in extras["tool_targets"]  # plain functions need no facts
    assert extras["tool_choice"] == "auto"


def test_capture_namespace_flattened() -> None:
    request = decode(body_of("codex-model-deepseek-chat-tool-1.json"))
    spec = request.tool("multi_agent_v1__spawn_agent")
    assert spec is not None
    assert (spec.namespace, spec.client_name, spec.kind) == ("multi_agent_v1", "spawn_agent", "function")
    assert spec.parameters["type"] == "object"
    assert "namespace_description" in loss_keys(request)
    assert request.thinking == ThinkingConfig()  # reasoning: {summary: auto} → upstream default
    assert request.client_extras["reasoning_summary"] == "auto"


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
    assert codec.decode_request(raw) == decode_request(raw)


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
    assert request.losses[0].detail == f"input.2: {kind} item dropped"
    # The dropped item does not split the step.
    assert [type(p).__name__ for p in request.messages[1].parts] == ["ThinkingPart", "ToolCallPart"]


# ---------------------------------------------------------------- tools and tool_choice


def test_tools_every_kind() -> None:
    tools = [
        {"type": "function", "name": "f", "description": "d", "strict": True,
         "parameters": {"type": "object", "properties": {}}},
        {"type": "function", "name": "g", "strict": False},
        {"type": "custom", "name": "free", "format": {"type": "text"}},
        {"type": "custom", "name": "rx", "format": {"type": "grammar", "syntax": "regex", "definition": "a+"}},
        {"type": "local_shell"},
        {"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "in1"},
                                                      {"type": "custom", "name": "in2"},
                                                      {"type": "web_search"}]},
        {"type": "web_search_preview"}, {"type": "mcp", "server_label": "x"}, {"type": "computer_use_preview"},
    ]
    request = decode(req("q", tools=tools))
    by = {t.name: t for t in request.tools}
    assert list(by) == ["f", "g", "free", "rx", "local_shell", "ns__in1", "ns__in2"]
    assert by["f"].strict is True and by["g"].strict is None and by["g"].parameters == {}
    assert (by["free"].kind, by["free"].grammar) == ("custom", None)
    assert (by["rx"].grammar, by["rx"].syntax) == ("a+", "regex")
    assert by["local_shell"].kind == "local_shell"
    assert by["local_shell"].parameters["properties"]["command"]["type"] == "array"
    assert (by["ns__in2"].kind, by["ns__in2"].client_name, by["ns__in2"].namespace) == ("custom", "in2", "ns")
    assert loss_keys(request) == ["server_tool"] * 4
    assert request.losses[0].detail.startswith("tools.5.tools.2: web_search")


@pytest.mark.parametrize(("choice", "expected", "losses"), [
    ("auto", ToolChoice(mode="auto"), []),
    ("none", ToolChoice(mode="none"), []),
    ("required", ToolChoice(mode="required"), []),
    ({"type": "function", "name": "f"}, ToolChoice(mode="tool", name="f"), []),
    ({"type": "function", "name": "in1"}, ToolChoice(mode="tool", name="ns__in1"), []),
    ({"type": "custom", "name": "free"}, ToolChoice(mode="tool", name="free"), []),
    ({"type": "allowed_tools", "mode": "required", "tools": []}, ToolChoice(mode="required"), ["tool_choice"]),
    ({"type": "web_search_preview"}, ToolChoice(mode="auto"), ["tool_choice"]),
    (None, None, []),
])
def test_tool_choice(choice: Any, expected: ToolChoice | None, losses: list[str]) -> None:
    tools = [{"type": "function", "name": "f"}, {"type": "custom", "name": "free"},
             {"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "in1"}]}]
    request = decode(req("q", tools=tools, tool_choice=choice))
    assert request.tool_choice == expected
    assert loss_keys(request) == losses


def test_tool_choice_absent() -> None:
    assert decode(req("q")).tool_choice is None


# ---------------------------------------------------------------- parameters


@pytest.mark.parametrize(("reasoning_param", "expected"), [
    (None, ThinkingConfig()),
    ({"summary": "auto"}, ThinkingConfig()),
    ({"effort": "none"}, ThinkingConfig(enabled=False)),
    ({"effort": "minimal"}, ThinkingConfig(enabled=True, effort="minimal")),
    ({"effort": "high", "summary": "detailed"}, ThinkingConfig(enabled=True, effort="high")),
    ({"effort": "xhigh"}, ThinkingConfig(enabled=True, effort="xhigh")),
    ({"effort": "max"}, ThinkingConfig(enabled=True, effort="max")),
])
def test_reasoning_effort(reasoning_param: Any, expected: ThinkingConfig) -> None:
    assert decode(req("q", reasoning=reasoning_param)).thinking == expected


def test_reasoning_summary_kept() -> None:
    assert decode(req("q", reasoning={"effort": "low", "summary": "concise"})).client_extras[
        "reasoning_summary"] == "concise"


def test_text_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    fmt = {"type": "json_schema", "name": "out", "schema": schema, "strict": True}
    assert decode(req("q", text={"format": fmt, "verbosity": "low"})).response_format == ResponseFormat(
        type="json_schema", schema=schema, name="out", strict=True)
    assert decode(req("q", text={"format": {"type": "json_object"}})).response_format == ResponseFormat(
        type="json_object")
    assert decode(req("q", text={"format": {"type": "text"}})).response_format is None
    assert decode(req("q", text={"verbosity": "high"})).response_format is None


def test_scalar_parameters_and_extras() -> None:
    request = decode(req("q", max_output_tokens=500, temperature=0.2, top_p=0.9, parallel_tool_calls=False,
                         stream=False, safety_identifier="sid", metadata={"k": "v"}, store=True,
                         service_tier="auto", unknown_field={"x": 1}))
    assert (request.max_output_tokens, request.temperature, request.top_p) == (500, 0.2, 0.9)
    assert request.parallel_tool_calls is False and request.stream is False
    assert request.user == "sid"
    assert request.client_extras == {"store": True, "metadata": {"k": "v"}}
    assert request.losses == ()
    assert decode(req("q", user="u1", safety_identifier="sid")).user == "u1"


def test_unsupported_options_are_losses() -> None:
    request = decode(req("q", service_tier="flex", truncation="auto", prompt={"id": "pmpt_1"}))
    assert loss_keys(request) == ["service_tier", "truncation", "prompt"]


def test_previous_response_id_refused() -> None:
    with pytest.raises(RequestError) as info:
        decode(req("q", previous_response_id="resp_1"))
    assert info.value.message == STATELESS
    assert info.value.code == "invalid_request" and info.value.status == 400
    assert decode(req("q", previous_response_id=None)).messages  # null is fine


def test_conversation_refused() -> None:
    assert error_of(req("q", conversation="conv_1")).startswith("conversation is not supported")
    assert decode(req("q", conversation=None)).messages


# ---------------------------------------------------------------- validation errors


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "request body is not valid JSON"),
    (b"[1, 2]", "request body must be a JSON object"),
    ({"input": "q"}, "model: field required"),
    ({"model": 5, "input": "q"}, "model: expected `str`, got `int`"),
    ({"model": "", "input": "q"}, "model: must be a non-empty string"),
    ({"model": "m"}, "input: field required"),
    ({"model": "m", "input": 3}, "input: expected `str | array | null`, got `int`"),
    (req([msg("user", "q"), msg("user", "q"), msg("user", "q"), fc(7)]), "input.3.call_id: expected `str`, got `int`"),  # type: ignore[arg-type]
    (req([msg("user", "q"), msg("user", "q"), {"type": "function_call", "name": "f", "arguments": "{}"}]),
     "input.2.call_id: field required"),
    (req([{"type": "message", "role": "tool", "content": "x"}]), "input.0.role: expected one of"),
    (req([{"content": "x"}]), "input.0.type: field required"),
    (req(["just a string"]), "input.0: expected `object`, got `str`"),
    (req([msg("user", {"type": "input_text"})]), "input.0.content.0.text: field required"),
    (req([{"type": "function_call_output", "call_id": "c", "output": 5}]), "input.0.output: expected"),
    (req([{"type": "local_shell_call_output", "output": "x"}]), "input.0.call_id: field required"),
    (req("q", tools=[{"type": "function"}]), "tools.0.name: field required"),
    (req("q", tools=[{"name": "f"}]), "tools.0.type: field required"),
    (req("q", tools=[{"type": "custom", "name": "c", "format": {"type": "grammar"}}]),
     "tools.0.format.definition: field required"),
    (req("q", tool_choice="sometimes"), "tool_choice: expected one of"),
    (req("q", tool_choice={"type": "function"}), "tool_choice.name: field required"),
    (req("q", reasoning={"effort": "extreme"}), "reasoning.effort: expected one of none, minimal"),
    (req("q", max_output_tokens=0), "max_output_tokens: must be >= 1"),
    (req("q", text={"format": {"type": "json_schema", "name": "x"}}), "text.format.schema: field required"),
    (req("q", text={"format": {"type": "yaml"}}), "text.format.type: expected text, json_object or json_schema"),
    (req("q", temperature="hot"), "temperature: expected `float | null`, got `str`"),
])
def test_validation_errors(body: Any, message: str) -> None:
    assert error_of(body).startswith(message)
