"""The Responses upstream encoder: neutral request → ``POST /responses`` body, per profile."""

from __future__ import annotations

import json

import msgspec

from pipeline.model import (
    ChatRequest,
    Message,
    TextPart,
    ThinkingConfig,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
)
from pipeline.profiles import PROFILES
from pipeline.protocols.responses.helpers import seal_data
from pipeline.protocols.responses.upstream_encode import encode_request, request_body

PATCH = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\n"
TOOLS = (
    ToolSpec(name="shell", parameters={"type": "object", "properties": {"cmd": {"type": "string"}}}),
    ToolSpec(name="apply_patch", kind="custom", grammar="start: x", syntax="lark", description="Patch files"),
    ToolSpec(name="local_shell", kind="local_shell"),
)
SEAL = ("dsr", seal_data("rs_1", "dsenc1.token"))


def history(seal: tuple[str, str] | None = SEAL, reasoning: str | None = "I will patch.",
            thinking: bool | None = None) -> ChatRequest:
    return ChatRequest(
        model="claude-opus-5-5", system=("You are Codex.",), tools=TOOLS, thinking=ThinkingConfig(enabled=thinking),
        messages=(
            Message(role="user", parts=(TextPart("patch it"),)),
            Message(role="assistant", reasoning=reasoning, upstream_seal=seal, parts=(
                TextPart("Patching."),
                ToolCallPart(id="call_1", name="apply_patch", arguments=json.dumps({"input": PATCH})),
                ToolCallPart(id="call_2", name="shell", arguments='{"cmd":"ls"}'))),
            Message(role="tool", parts=(ToolResultPart(call_id="call_1", content=(TextPart("Done"),)),)),
            Message(role="tool", parts=(ToolResultPart(call_id="call_2", content=(TextPart("a.txt"),),
                                                       is_error=True),)),
        ))


def body(request: ChatRequest, profile: str = "deepseek_responses", upstream_id: str = "dsr") -> tuple[dict, list]:
    losses: list = []
    out = request_body(request, model="deepseek-v4-flash", profile=PROFILES[profile], upstream_id=upstream_id,
                       lose=lambda what, detail: losses.append(what))
    return out, losses


class TestBody:
    def test_deepseek_responses(self) -> None:
        out, losses = body(history())
        assert out["model"] == "deepseek-v4-flash" and out["stream"] is True and out["store"] is False
        assert out["instructions"] == "You are Codex."
        assert out["include"] == ["reasoning.encrypted_content"]
        assert out["reasoning"] == {"summary": "auto"}
        kinds = [(i["type"], i.get("role")) for i in out["input"]]
        assert kinds == [("message", "user"), ("reasoning", None), ("message", "assistant"),
                         ("custom_tool_call", None), ("function_call", None),
                         ("custom_tool_call_output", None), ("function_call_output", None)]
        reasoning = out["input"][1]
        # This upstream's own item goes back with its id and encrypted_content, and the text.
        assert reasoning == {"type": "reasoning", "summary": [], "id": "rs_1", "encrypted_content": "dsenc1.token",
                             "content": [{"type": "reasoning_text", "text": "I will patch."}]}
        assert out["input"][3] == {"type": "custom_tool_call", "call_id": "call_1", "name": "apply_patch",
                                   "input": PATCH}
        assert out["input"][6]["output"] == "[tool error] a.txt"
        assert [t["type"] for t in out["tools"]] == ["function", "custom", "function"]
        assert out["tools"][1]["format"] == {"type": "grammar", "syntax": "lark", "definition": "start: x"}
        assert out["tools"][2]["name"] == "local_shell" and "command" in out["tools"][2]["parameters"]["properties"]
        assert losses == []
        assert json.loads(encode_request(history(), model="deepseek-v4-flash", profile=PROFILES["deepseek_responses"],
                                         upstream_id="dsr")) == out

    def test_another_upstreams_seal_never_goes_out(self) -> None:
        """DeepSeek's encrypted_content is for DeepSeek: aimed elsewhere, the text is all that goes."""
        out, _ = body(history(), upstream_id="other")
        assert out["input"][1] == {"type": "reasoning", "summary": [],
                                   "content": [{"type": "reasoning_text", "text": "I will patch."}]}
        assert "dsenc1" not in json.dumps(out)

    def test_openai_takes_back_only_its_own_items(self) -> None:
        out, losses = body(history(thinking=True), profile="openai", upstream_id="other")
        assert not [i for i in out["input"] if i["type"] == "reasoning"] and losses == ["reasoning"]
        own, losses = body(history(("oa", seal_data("rs_9", "oai-token")), thinking=True), profile="openai",
                           upstream_id="oa")
        assert own["input"][1] == {"type": "reasoning", "summary": [], "id": "rs_9", "encrypted_content": "oai-token"}
        assert losses == []

    def test_unknown_reasoning_of_a_tool_turn_goes_back_empty(self) -> None:
        """DeepSeek's rule: with thinking on, a tool-call turn carries its reasoning ("" if unknown)."""
        out, _ = body(history(seal=None, reasoning=None))
        assert out["input"][1] == {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text",
                                                                                     "text": ""}]}

    def test_llamacpp_gets_function_tools_only(self) -> None:
        out, _ = body(history(), profile="llamacpp", upstream_id="local")
        assert {t["type"] for t in out["tools"]} == {"function"}
        patch = out["tools"][1]
        assert patch["name"] == "apply_patch" and patch["parameters"]["required"] == ["input"]
        assert "start: x" in patch["parameters"]["properties"]["input"]["description"]
        call = out["input"][3]
        assert call["type"] == "function_call" and json.loads(call["arguments"]) == {"input": PATCH}
        assert out["input"][5]["type"] == "function_call_output"
        assert "include" not in out and "encrypted_content" not in json.dumps(out)

    def test_thinking_off_and_effort(self) -> None:
        off, _ = body(ChatRequest(model="m", thinking=ThinkingConfig(enabled=False),
                                  messages=(Message(role="user", parts=(TextPart("hi"),)),)))
        assert off["reasoning"] == {"effort": "none"} and "include" not in off
        # Claude Code 2.1.166's sub-agent shape: thinking disabled with an effort. Not sent: a loss.
        sub, losses = body(ChatRequest(model="m", thinking=ThinkingConfig(enabled=False, effort="high"),
                                       messages=(Message(role="user", parts=(TextPart("hi"),)),)))
        assert sub["reasoning"] == {"effort": "none"}
        assert losses == ["effort"]
        high, _ = body(ChatRequest(model="m", thinking=ThinkingConfig(effort="medium"),
                                   messages=(Message(role="user", parts=(TextPart("hi"),)),)))
        assert high["reasoning"] == {"effort": "high", "summary": "auto"}
        oa, _ = body(ChatRequest(model="m", thinking=ThinkingConfig(enabled=True, effort="xhigh"),
                                 messages=(Message(role="user", parts=(TextPart("hi"),)),)), profile="openai")
        assert oa["reasoning"] == {"effort": "xhigh", "summary": "auto"}
        plain, _ = body(ChatRequest(model="m", messages=(Message(role="user", parts=(TextPart("hi"),)),)),
                        profile="openai")
        assert "reasoning" not in plain

    def test_what_responses_cannot_carry_is_a_loss(self) -> None:
        request = ChatRequest(model="m", stop=("END",), seed=3, top_k=5, tools=TOOLS[:1],
                              tool_choice=ToolChoice(mode="tool", name="shell"),
                              messages=(Message(role="user", parts=(TextPart("hi"),)),))
        out, losses = body(request)
        assert sorted(losses) == ["seed", "stop", "thinking_off", "top_k"]
        # Forced while thinking, which DeepSeek rejects: the choice goes, thinking is off.
        assert out["tool_choice"] == {"type": "function", "name": "shell"}
        assert out["reasoning"] == {"effort": "none"}
        forced, _ = body(request, profile="openai")
        assert forced["tool_choice"] == {"type": "function", "name": "shell"}

    def test_mid_conversation_system_is_folded(self) -> None:
        request = ChatRequest(model="m", system=("first",), messages=(
            Message(role="user", parts=(TextPart("hi"),)), Message(role="system", parts=(TextPart("later"),))))
        out, _ = body(request)
        assert out["instructions"] == "first\n\nlater" and len(out["input"]) == 1


def test_a_thinking_display_is_a_loss_on_responses_upstreams() -> None:
    request = ChatRequest(model="m", messages=(Message(role="user", parts=(TextPart("hi"),)),),
                          thinking=ThinkingConfig(enabled=True, display="summarized"))
    assert body(request)[1] == ["thinking_display"]
    assert body(msgspec.structs.replace(request, thinking=ThinkingConfig(enabled=True)))[1] == []
