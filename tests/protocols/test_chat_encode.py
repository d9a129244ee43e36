"""Upstream side of the Chat codec: neutral ``ChatRequest`` → request bodies per backend profile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pipeline.model import (
    ChatRequest,
    ImagePart,
    Loss,
    Message,
    ResponseFormat,
    TextPart,
    ThinkingConfig,
    ThinkingPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
)
from pipeline.protocols.anthropic import AnthropicCodec
from pipeline.protocols.chat import encode_request
from pipeline.protocols.chat.upstream_encode import IMAGE_PLACEHOLDER, TOOL_IMAGE_PLACEHOLDER
from pipeline.protocols.responses import ResponsesCodec
from tests.captures import capture_paths
from pipeline.profiles import PROFILES, Profile

DEEPSEEK = PROFILES["deepseek"]
VLLM = PROFILES["vllm"]
LLAMACPP = PROFILES["llamacpp"]
OLLAMA = PROFILES["ollama"]

SHELL = ToolSpec(name="shell", description="Run a command.",
                 parameters={"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]},
                 strict=True)
APPLY_PATCH = ToolSpec(name="apply_patch", description="Edit files.", kind="custom",
                       grammar='start: "*** Begin Patch" ...', syntax="lark")
LOCAL_SHELL = ToolSpec(name="local_shell", kind="local_shell")

# A tool loop: user → assistant (reasoning + call) → tool → assistant text (no reasoning known) → user.
HISTORY = (
    Message(role="user", parts=(TextPart("run the tests"),)),
    Message(role="system", parts=(TextPart("<env>cwd=/repo</env>"),)),
    Message(role="assistant", reasoning="I should run pytest.",
            parts=(TextPart("Running."), ToolCallPart(id="call_1", name="shell", arguments='{"cmd":"pytest"}'))),
    Message(role="tool", parts=(ToolResultPart(call_id="call_1", content=(TextPart("1 failed"),)),)),
    Message(role="assistant", parts=(TextPart("One test failed."),)),
    Message(role="user", parts=(TextPart("fix it"),)),
)


def encode(request: ChatRequest, profile: Profile, **kw: Any) -> tuple[dict[str, Any], list[Loss]]:
    losses: list[Loss] = []
    body = encode_request(request, model="up-model", profile=profile,
                          lose=lambda what, detail: losses.append(Loss(what, detail)), **kw)
    return json.loads(body), losses


def req(**kw: Any) -> ChatRequest:
    kw.setdefault("model", "client-model")
    kw.setdefault("messages", HISTORY)
    return ChatRequest(**kw)


# ---------------------------------------------------------------- deepseek


def test_deepseek_default_thinking_is_explicit_and_replays_on_every_assistant() -> None:
    body, losses = encode(req(system=("You are Codex.",), tools=(SHELL,)), DEEPSEEK)
    assert body["model"] == "up-model"
    assert body["thinking"] == {"type": "enabled"}
    assert "reasoning_effort" not in body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [
        {"role": "system", "content": "You are Codex.\n\n<env>cwd=/repo</env>"},
        {"role": "user", "content": "run the tests"},
        {"role": "assistant", "content": "Running.", "reasoning_content": "I should run pytest.",
         "tool_calls": [{"id": "call_1", "type": "function",
                         "function": {"name": "shell", "arguments": '{"cmd":"pytest"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "1 failed"},
        {"role": "assistant", "content": "One test failed.", "reasoning_content": ""},
        {"role": "user", "content": "fix it"},
    ]
    assert body["tools"] == [{"type": "function", "function": {
        "name": "shell", "description": "Run a command.", "parameters": SHELL.parameters}}]  # no strict
    assert losses == []


@pytest.mark.parametrize(
    ("effort", "word"),
    [("minimal", "low"), ("low", "low"), ("medium", "high"), ("high", "high"), ("xhigh", "max"), ("max", "max")],
)
def test_deepseek_effort_words(effort: str, word: str) -> None:
    body, _ = encode(req(thinking=ThinkingConfig(effort=effort)), DEEPSEEK)  # type: ignore[arg-type]
    assert body["thinking"] == {"type": "enabled"} and body["reasoning_effort"] == word


@pytest.mark.parametrize(
    "thinking", [ThinkingConfig(enabled=False, effort="high"), ThinkingConfig(effort="none"),
                 ThinkingConfig(enabled=True, effort="none")]
)
def test_deepseek_thinking_off_sends_disabled_no_effort_no_reasoning(thinking: ThinkingConfig) -> None:
    body, _ = encode(req(thinking=thinking), DEEPSEEK)
    assert body["thinking"] == {"type": "disabled"}
    assert "reasoning_effort" not in body
    assert all("reasoning_content" not in m and "reasoning" not in m for m in body["messages"])


def test_an_effort_with_thinking_disabled_is_a_loss_not_sent() -> None:
    """Claude Code 2.1.166's sub-agents send ``thinking: {type: disabled}`` with
    ``output_config.effort``: DeepSeek gets thinking disabled and no effort, and the effort it did
    not get is in the loss report, on every switch (an effort without a ``disabled`` says nothing)."""
    for profile in (DEEPSEEK, VLLM, OLLAMA):
        body, losses = encode(req(thinking=ThinkingConfig(enabled=False, effort="high")), profile)
        assert "reasoning_effort" not in body
        assert [(loss.what, loss.detail) for loss in losses] == [("effort", "effort 'high' not sent: thinking is disabled")]
    for thinking in (ThinkingConfig(effort="none"), ThinkingConfig(enabled=False), ThinkingConfig(effort="high")):
        _, losses = encode(req(thinking=thinking), DEEPSEEK)
        assert losses == []
    _, losses = encode(req(thinking=ThinkingConfig(effort="xhigh")), OLLAMA)  # no switch: the effort is sent
    assert losses == []


def test_deepseek_forced_tool_choice_is_sent_with_thinking_off_and_a_loss() -> None:
    """DeepSeek rejects a forced tool_choice while thinking: the client needs that call, so the
    choice goes as it came and thinking is off for the request (a ``thinking_off`` loss)."""
    body, losses = encode(req(tools=(SHELL,), tool_choice=ToolChoice(mode="tool", name="shell")), DEEPSEEK)
    assert body["tool_choice"] == {"type": "function", "function": {"name": "shell"}}
    assert body["thinking"] == {"type": "disabled"} and "reasoning_effort" not in body
    assert [loss.what for loss in losses] == ["thinking_off"] and "'shell'" in losses[0].detail
    body, losses = encode(req(tools=(SHELL,), tool_choice=ToolChoice(mode="required")), DEEPSEEK)
    assert body["tool_choice"] == "required" and body["thinking"] == {"type": "disabled"}
    assert losses[0].what == "thinking_off"
    # Without tools nothing is forced: thinking stays on.
    body, losses = encode(req(tool_choice=ToolChoice(mode="required")), DEEPSEEK)
    assert body["thinking"] == {"type": "enabled"} and not losses


def test_deepseek_forced_tool_choice_without_thinking_is_kept() -> None:
    off = ThinkingConfig(enabled=False)
    body, losses = encode(req(tools=(SHELL,), tool_choice=ToolChoice(mode="tool", name="shell"), thinking=off),
                          DEEPSEEK)
    assert body["tool_choice"] == {"type": "function", "function": {"name": "shell"}}
    body, _ = encode(req(tools=(SHELL,), tool_choice=ToolChoice(mode="required"), thinking=off), DEEPSEEK)
    assert body["tool_choice"] == "required"
    body, _ = encode(req(tools=(SHELL,), tool_choice=ToolChoice(mode="none"), parallel_tool_calls=False), DEEPSEEK)
    assert body["tool_choice"] == "none" and body["parallel_tool_calls"] is False
    assert losses == []


def test_no_tools_means_no_tool_choice() -> None:
    body, _ = encode(req(tool_choice=ToolChoice(mode="auto"), parallel_tool_calls=True), DEEPSEEK)
    assert "tools" not in body and "tool_choice" not in body and "parallel_tool_calls" not in body


def test_custom_and_local_shell_tools_become_functions() -> None:
    custom_call = ToolCallPart(id="call_p", name="apply_patch", arguments='{"input":"*** Begin Patch\\n"}',
                               origin="custom")
    messages = (Message(role="user", parts=(TextPart("patch"),)),
                Message(role="assistant", parts=(custom_call,)),
                Message(role="tool", parts=(ToolResultPart(call_id="call_p", content=(TextPart("done"),)),)))
    body, _ = encode(req(messages=messages, tools=(APPLY_PATCH, LOCAL_SHELL)), DEEPSEEK)
    patch, shell = body["tools"]
    assert patch == {"type": "function", "function": {
        "name": "apply_patch", "description": "Edit files.",
        "parameters": {"type": "object", "properties": {"input": {
            "type": "string",
            "description": 'The raw tool input. It must match this grammar (lark):\nstart: "*** Begin Patch" ...'}},
            "required": ["input"]}}}
    assert shell["function"]["name"] == "local_shell"
    params = shell["function"]["parameters"]
    assert params["required"] == ["command"]
    assert params["properties"]["command"]["type"] == "array"
    assert params["properties"]["workdir"]["type"] == "string"
    assert params["properties"]["timeout_ms"]["type"] == "integer"
    assistant = body["messages"][1]
    assert assistant["content"] is None
    assert assistant["tool_calls"][0]["function"]["arguments"] == '{"input":"*** Begin Patch\\n"}'


def test_tool_results_errors_images_and_thinking_parts_record_losses() -> None:
    messages = (
        Message(role="user", parts=(TextPart("look"), ImagePart(url="data:image/png;base64,AAAA", detail="low"))),
        Message(role="assistant", parts=(ThinkingPart(text="foreign", signature="sig"), ThinkingPart(text=""),
                                         ToolCallPart(id="c1", name="shot", arguments=""))),
        Message(role="tool", parts=(ToolResultPart(call_id="c1", is_error=True,
                                                   content=(TextPart("boom"), ImagePart(url="https://x/y.png"))),)),
    )
    body, losses = encode(req(messages=messages, tools=(SHELL,)), DEEPSEEK)
    user, assistant, tool, images = body["messages"]
    assert user["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
    ]
    assert assistant == {"role": "assistant", "content": None, "reasoning_content": "",
                         "tool_calls": [{"id": "c1", "type": "function",
                                         "function": {"name": "shot", "arguments": "{}"}}]}
    # A Chat tool message carries text only: the result's image follows in a user message.
    assert tool == {"role": "tool", "tool_call_id": "c1",
                    "content": "[tool error] boom\n[image 1: in the user message after the tool results]"}
    assert images == {"role": "user", "content": [
        {"type": "text", "text": "[image 1, returned by tool call c1]"},
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}
    assert sorted(loss.what for loss in losses) == ["thinking_unresolved"]


def test_tool_result_images_follow_the_whole_turn_of_results() -> None:
    """Two parallel results with images: both tool messages first (nothing may come between the
    results of one turn), then one user message with both images; a profile without images gets
    the placeholder and a loss instead."""
    calls = Message(role="assistant", parts=(ToolCallPart(id="a", name="shot", arguments="{}"),
                                             ToolCallPart(id="b", name="shot", arguments="{}")))
    results = tuple(Message(role="tool", parts=(ToolResultPart(call_id=c, content=(
        TextPart(f"shot {c}"), ImagePart(url=f"data:image/png;base64,{c}AAA"))),)) for c in "ab")
    messages = (Message(role="user", parts=(TextPart("go"),)), calls, *results,
                Message(role="user", parts=(TextPart("and?"),)))
    body, losses = encode(req(messages=messages, tools=(SHELL,)), DEEPSEEK)
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["user", "assistant", "tool", "tool", "user", "user"]
    moved = body["messages"][4]["content"]
    assert [p.get("text") or p["image_url"]["url"] for p in moved] == [
        "[image 1, returned by tool call a]", "data:image/png;base64,aAAA",
        "[image 2, returned by tool call b]", "data:image/png;base64,bAAA"]
    assert body["messages"][3]["content"] == "shot b\n[image 2: in the user message after the tool results]"
    assert not losses
    for profile, model, why in ((PROFILES["llamacpp"], "up-model", "up-model has no image input"),
                                (DEEPSEEK, "deepseek-v4-pro", "deepseek-v4-pro has no image input")):
        losses = []
        body = json.loads(encode_request(req(messages=messages, tools=(SHELL,)), model=model, profile=profile,
                                         lose=lambda what, detail: losses.append(Loss(what, detail))))
        assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool", "tool", "user"]
        assert body["messages"][2]["content"] == f"shot a\n{TOOL_IMAGE_PLACEHOLDER}"
        assert [(loss.what, loss.detail) for loss in losses] == [("image", f"{why}; sent a placeholder")] * 2


def test_sampling_stop_user_and_response_format() -> None:
    request = req(max_output_tokens=4096, temperature=0.2, top_p=0.9, top_k=40, seed=7,
                  stop=tuple(f"s{i}" for i in range(20)), user="user@example.com/42 ü",
                  response_format=ResponseFormat(type="json_schema", name="out", schema={"type": "object"},
                                                 strict=True))
    body, losses = encode(request, DEEPSEEK)
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["seed"]) == (4096, 0.2, 0.9, 7)
    assert "top_k" not in body
    assert body["stop"] == [f"s{i}" for i in range(16)]
    assert body["user"] == "user_example_com_42__"
    assert body["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True}}
    assert sorted(loss.what for loss in losses) == ["stop", "top_k"]
    body, _ = encode(req(user="x" * 600, response_format=ResponseFormat(type="json_object")), DEEPSEEK)
    assert body["user"] == "x" * 512 and body["response_format"] == {"type": "json_object"}
    body, _ = encode(req(response_format=ResponseFormat(type="text")), DEEPSEEK)
    assert "response_format" not in body


def test_non_streaming_has_no_stream_options() -> None:
    body, _ = encode(req(), DEEPSEEK, stream=False)
    assert body["stream"] is False and "stream_options" not in body


def test_body_is_compact_json_and_lose_is_optional() -> None:
    raw = encode_request(req(top_k=3), model="m", profile=DEEPSEEK)
    assert b"\n" not in raw and b": " not in raw
    assert msgspec.json.decode(raw)["model"] == "m"


# ---------------------------------------------------------------- vllm, llama.cpp, ollama


def test_vllm_reasoning_field_template_kwargs_top_k_and_strict() -> None:
    body, losses = encode(req(tools=(SHELL,), top_k=20, user="u1"), VLLM)
    assert "chat_template_kwargs" not in body and "thinking" not in body  # client did not say
    assistants = [m for m in body["messages"] if m["role"] == "assistant"]
    assert assistants[0]["reasoning"] == "I should run pytest." and "reasoning_content" not in assistants[0]
    assert "reasoning" not in assistants[1]  # not every assistant on vLLM
    assert body["top_k"] == 20 and "user" not in body
    assert body["tools"][0]["function"]["strict"] is True
    assert losses == []
    body, _ = encode(req(thinking=ThinkingConfig(enabled=False)), VLLM)
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert all("reasoning" not in m for m in body["messages"])
    body, _ = encode(req(thinking=ThinkingConfig(enabled=True, effort="high")), VLLM)
    assert body["chat_template_kwargs"] == {"enable_thinking": True} and "reasoning_effort" not in body


def test_llamacpp_images_become_placeholders() -> None:
    messages = (Message(role="user", parts=(TextPart("what is this"), ImagePart(url="https://x/cat.png"))),)
    body, losses = encode(req(messages=messages), LLAMACPP)
    assert body["messages"] == [{"role": "user", "content": f"what is this\n{IMAGE_PLACEHOLDER}"}]
    assert [loss.what for loss in losses] == ["image"]


def test_system_messages_stay_in_place_when_not_folding() -> None:
    profile = msgspec.structs.replace(LLAMACPP, fold_system=False)
    body, _ = encode(req(system=("top",)), profile)
    assert [m["role"] for m in body["messages"]] == ["system", "user", "system", "assistant", "tool", "assistant",
                                                      "user"]
    assert body["messages"][0]["content"] == "top"
    assert body["messages"][2]["content"] == "<env>cwd=/repo</env>"


def test_ollama_effort_words_without_a_switch() -> None:
    body, _ = encode(req(thinking=ThinkingConfig(effort="xhigh")), OLLAMA)
    assert body["reasoning_effort"] == "high" and "thinking" not in body and "chat_template_kwargs" not in body
    body, _ = encode(req(thinking=ThinkingConfig(enabled=False, effort="xhigh")), OLLAMA)
    assert "reasoning_effort" not in body
    body, _ = encode(req(thinking=ThinkingConfig(enabled=True)), OLLAMA)
    assert body["messages"][2]["reasoning"] == "I should run pytest."


def test_multiple_text_parts_as_list_when_profile_allows_lists() -> None:
    messages = (Message(role="user", parts=(TextPart("a"), TextPart("b"))),)
    body, _ = encode(req(messages=messages), DEEPSEEK)
    assert body["messages"] == [{"role": "user", "content": "a\nb"}]
    profile = msgspec.structs.replace(DEEPSEEK, content_as_string=False)
    body, _ = encode(req(messages=messages), profile)
    assert body["messages"][0]["content"] == [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]


# ---------------------------------------------------------------- real client captures → upstream bodies

CAPTURE_FILES = [p for p in capture_paths() if json.loads(p.read_text())["method"] == "POST"]


def _client_codec(path: str) -> Any:
    return AnthropicCodec() if path == "/v1/messages" else ResponsesCodec()


@pytest.mark.parametrize("profile_name", ["deepseek", "vllm", "ollama", "llamacpp"])
@pytest.mark.parametrize("capture", CAPTURE_FILES, ids=[p.stem for p in CAPTURE_FILES])
def test_captured_requests_encode_to_valid_chat_bodies(capture: Path, profile_name: str) -> None:
    """Claude Code / Codex requests (decoded by their codecs) become bodies each backend accepts."""
    record = json.loads(capture.read_text())
    request, _ = _client_codec(record["path"]).decode_request(json.dumps(record["body"]).encode())
    profile = PROFILES[profile_name]
    body, losses = encode(request, profile)
    messages = body["messages"]
    roles = [m["role"] for m in messages]
    assert roles[0] == "system" and roles.count("system") == 1  # Claude's mid-history system is folded
    assert "user" in roles
    pending: set[str] = set()
    for message in messages:  # every tool call is answered before the next non-tool message
        if message["role"] == "tool":
            pending.discard(message["tool_call_id"])
            assert isinstance(message["content"], str)
            continue
        assert not pending, f"unanswered tool calls {pending}"
        for tool_call in message.get("tool_calls", ()):
            assert tool_call["type"] == "function" and json.loads(tool_call["function"]["arguments"]) is not None
            pending.add(tool_call["id"])
    assert not pending
    assert body["tools"] and all(t["type"] == "function" and t["function"]["parameters"]["type"] == "object"
                                 for t in body["tools"])
    assistants = [m for m in messages if m["role"] == "assistant"]
    if profile_name == "deepseek":
        assert body["thinking"] == {"type": "enabled"}
        assert all(isinstance(m.get("reasoning_content"), str) for m in assistants)
    echoed_thinking = "thinking-tool-2" in capture.stem
    assert any(loss.what == "thinking_unresolved" for loss in losses) == echoed_thinking
    if "codex-write-file" in capture.stem:
        patch = next(t["function"] for t in body["tools"] if t["function"]["name"] == "apply_patch")
        assert patch["parameters"]["required"] == ["input"]
        assert "grammar" in patch["parameters"]["properties"]["input"]["description"]


def test_a_thinking_display_is_a_loss_on_chat_upstreams() -> None:
    """DeepSeek returns its raw reasoning: a display other than ``omitted`` cannot be honoured."""
    request = req(thinking=ThinkingConfig(enabled=True, display="summarized"))
    _, losses = encode(request, DEEPSEEK)
    assert [loss.what for loss in losses] == ["thinking_display"]
    _, losses = encode(req(thinking=ThinkingConfig(enabled=False, display="summarized")), DEEPSEEK)
    assert losses == []  # no thinking, nothing to show
