"""Neutral ChatRequest → Messages request body (``anthropic/upstream_encode.py``) per profile."""

from __future__ import annotations

import json

import msgspec

from pipeline.model import (
    ChatRequest,
    ImagePart,
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
from pipeline.profiles import PROFILES
from pipeline.protocols.anthropic.upstream_encode import IMAGE_PLACEHOLDER, encode_request

DSA = PROFILES["deepseek_anthropic"]
ANTHROPIC = PROFILES["anthropic"]
BASH = ToolSpec(name="Bash", parameters={"type": "object", "properties": {"command": {"type": "string"}}})


def encode(request: ChatRequest, profile=DSA, upstream_id: str = "dsa") -> tuple[dict, list[tuple[str, str]]]:
    losses: list[tuple[str, str]] = []
    body = encode_request(request, model="deepseek-v4-pro", profile=profile, upstream_id=upstream_id,
                          lose=lambda what, detail: losses.append((what, detail)))
    return json.loads(body), losses


def tool_history(*, reasoning: str | None = "I will run ls.", seal: tuple[str, str] | None = ("dsa", "sig-1"),
                 parts: tuple = ()) -> ChatRequest:
    return ChatRequest(model="claude-opus-4-7", tools=(BASH,), thinking=ThinkingConfig(enabled=True), messages=(
        Message(role="user", parts=(TextPart("go"),)),
        Message(role="assistant", reasoning=reasoning, upstream_seal=seal,
                parts=(*parts, TextPart("Listing."), ToolCallPart(id="toolu_1", name="Bash", arguments='{"command":"ls"}'),
                       ToolCallPart(id="toolu_2", name="Bash", arguments='{"command":"pwd"}'))),
        Message(role="tool", parts=(ToolResultPart(call_id="toolu_1", content=(TextPart("a.txt"),)),)),
        Message(role="tool", parts=(ToolResultPart(call_id="toolu_2", content=(TextPart("/w"),), is_error=True),)),
        Message(role="user", parts=(TextPart("and now?"),)),
    ))


class TestMessages:
    def test_system_messages_fold_into_system_and_turns_alternate(self) -> None:
        request = ChatRequest(model="m", system=("You are terse.",), messages=(
            Message(role="user", parts=(TextPart("a"),)),
            Message(role="system", parts=(TextPart("Reminder."),)),
            Message(role="user", parts=(TextPart("b"),)),
        ))
        body, losses = encode(request)
        assert body["system"] == "You are terse.\n\nReminder."
        assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                                  {"type": "text", "text": "b"}]}]
        assert not losses and body["max_tokens"] == DSA.max_output_tokens and body["stream"] is True

    def test_tool_turn_carries_exact_thinking_with_this_upstreams_signature_first(self) -> None:
        body, losses = encode(tool_history())
        assistant = body["messages"][1]["content"]
        assert assistant[0] == {"type": "thinking", "thinking": "I will run ls.", "signature": "sig-1"}
        assert [b["type"] for b in assistant] == ["thinking", "text", "tool_use", "tool_use"]
        assert assistant[2] == {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}
        results = body["messages"][2]["content"]  # both results, in order, lead one user turn
        assert results == [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt"},
                           {"type": "tool_result", "tool_use_id": "toolu_2", "content": "/w", "is_error": True},
                           {"type": "text", "text": "and now?"}]
        assert len(body["messages"]) == 3 and not losses

    def test_another_upstreams_seal_is_never_sent(self) -> None:
        body, _ = encode(tool_history(seal=("claude", "anthropic-sig")))
        assert body["messages"][1]["content"][0] == {"type": "thinking", "thinking": "I will run ls.", "signature": ""}

    def test_unknown_reasoning_on_a_tool_turn_is_an_empty_thinking_block(self) -> None:
        body, _ = encode(tool_history(reasoning=None, seal=None))
        assert body["messages"][1]["content"][0] == {"type": "thinking", "thinking": "", "signature": ""}
        off, _ = encode(ChatRequest(model="m", thinking=ThinkingConfig(enabled=False),
                                    messages=tool_history().messages))
        assert off["thinking"] == {"type": "disabled"}
        assert [b["type"] for b in off["messages"][1]["content"]] == ["text", "tool_use", "tool_use"]

    def test_anthropic_takes_only_what_it_signed(self) -> None:
        signed = tool_history(seal=("claude", "anthropic-sig")).messages[1]
        earlier = tool_history(seal=None)
        history = msgspec.structs.replace(earlier, messages=(
            *earlier.messages[:4], msgspec.structs.replace(signed, parts=tuple(
                ToolCallPart(id=p.id + "b", name=p.name, arguments=p.arguments) if isinstance(p, ToolCallPart) else p
                for p in signed.parts)),
            Message(role="tool", parts=(ToolResultPart(call_id="toolu_1b", content=(TextPart("a"),)),)),
            Message(role="tool", parts=(ToolResultPart(call_id="toolu_2b", content=(TextPart("b"),)),))))
        body, losses = encode(history, ANTHROPIC, "claude")
        assert body["messages"][1]["content"][0]["type"] == "text"
        assert {w for w, _ in losses} == {"unsigned_thinking"}
        assert body["messages"][3]["content"][0]["signature"] == "anthropic-sig"

    def test_anthropic_final_tool_turn_without_its_thinking_turns_thinking_off(self) -> None:
        """Anthropic wants the final tool turn to start with its own signed thinking: a turn made
        without thinking (a forced tool_choice) cannot, so that request goes with thinking off."""
        body, losses = encode(tool_history(seal=None), ANTHROPIC, "claude")
        assert body["thinking"] == {"type": "disabled"}
        assert [b["type"] for b in body["messages"][1]["content"]] == ["text", "tool_use", "tool_use"]
        assert {w for w, _ in losses} == {"thinking_off"}

    def test_client_thinking_blocks(self) -> None:
        """Blocks that reached the encoder as the client sent them: an Anthropic upstream gets its
        own back (redacted too); DeepSeek never gets redacted_thinking nor a gateway envelope."""
        parts = (ThinkingPart(text="", signature="opaque", redacted=True), ThinkingPart(text="t", signature="gw2.abc"),
                 ThinkingPart(text="mine", signature="own-sig"))
        body, losses = encode(tool_history(reasoning=None, seal=None, parts=parts))
        assert body["messages"][1]["content"][0] == {"type": "thinking", "thinking": "mine", "signature": "own-sig"}
        assert {w for w, _ in losses} == {"redacted_thinking", "foreign_thinking"}
        body, _ = encode(tool_history(reasoning=None, seal=None, parts=parts[:1] + parts[2:]), ANTHROPIC, "claude")
        assert body["messages"][1]["content"][:2] == [{"type": "redacted_thinking", "data": "opaque"},
                                                      {"type": "thinking", "thinking": "mine", "signature": "own-sig"}]

    def test_images(self) -> None:
        request = ChatRequest(model="m", messages=(Message(role="user", parts=(
            TextPart("see"), ImagePart("data:image/png;base64,AAAA"))),))
        body, losses = encode(request)
        assert body["messages"][0]["content"][1] == {"type": "text", "text": IMAGE_PLACEHOLDER}
        assert [w for w, _ in losses] == ["image"]
        body, _ = encode(request, ANTHROPIC)
        assert body["messages"][0]["content"][1] == {
            "type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}


class TestParameters:
    def test_thinking_and_effort(self) -> None:
        on, _ = encode(ChatRequest(model="m", thinking=ThinkingConfig(enabled=True, effort="xhigh", budget_tokens=4000),
                                   messages=(Message(role="user", parts=(TextPart("x"),)),)))
        assert on["thinking"] == {"type": "enabled", "budget_tokens": 4000} and on["output_config"] == {"effort": "max"}
        off, losses = encode(ChatRequest(model="m", thinking=ThinkingConfig(enabled=False, effort="low"),
                                         messages=(Message(role="user", parts=(TextPart("x"),)),)))
        assert off["thinking"] == {"type": "disabled"} and "output_config" not in off
        assert [w for w, _ in losses] == ["effort"]
        real, _ = encode(ChatRequest(model="m", max_output_tokens=8000, thinking=ThinkingConfig(enabled=True),
                                     messages=(Message(role="user", parts=(TextPart("x"),)),)), ANTHROPIC)
        assert real["thinking"] == {"type": "enabled", "budget_tokens": 4000}  # the real API needs one

    def test_the_real_apis_sampling_and_budget_rules(self) -> None:
        """With thinking on the real API takes temperature 1 only, no top_k, top_p from 0.95 and a
        budget of at least 1024 below max_tokens: the rest is not sent, each a loss (DeepSeek's
        endpoint takes them); without thinking any temperature up to 1, and top_k."""
        user = (Message(role="user", parts=(TextPart("x"),)),)
        asked = ChatRequest(model="m", temperature=0.3, top_p=0.5, top_k=40, max_output_tokens=8000,
                            thinking=ThinkingConfig(enabled=True, budget_tokens=500), messages=user)
        real, losses = encode(asked, ANTHROPIC)
        assert not {"temperature", "top_p", "top_k"} & set(real)
        assert real["thinking"] == {"type": "enabled", "budget_tokens": 1024}
        assert [w for w, _ in losses] == ["budget_tokens", "temperature", "top_p", "top_k"]
        fine, losses = encode(ChatRequest(model="m", temperature=1, top_p=0.95, max_output_tokens=8000,
                                          thinking=ThinkingConfig(enabled=True, budget_tokens=8000), messages=user),
                              ANTHROPIC)
        assert (fine["temperature"], fine["top_p"], fine["thinking"]["budget_tokens"]) == (1, 0.95, 7999)
        assert [w for w, _ in losses] == ["budget_tokens"]
        deepseek, losses = encode(msgspec.structs.replace(asked, top_k=None))
        assert (deepseek["temperature"], deepseek["top_p"]) == (0.3, 0.5)
        off = msgspec.structs.replace(asked, temperature=1.7, thinking=ThinkingConfig(enabled=False))
        plain, losses = encode(off, ANTHROPIC)
        assert (plain["temperature"], plain["top_p"], plain["top_k"]) == (1.0, 0.5, 40)
        assert [w for w, _ in losses] == ["temperature"]
        tiny, losses = encode(msgspec.structs.replace(asked, temperature=None, top_p=None, top_k=None,
                                                      max_output_tokens=1000), ANTHROPIC)
        assert tiny["thinking"] == {"type": "disabled"} and [w for w, _ in losses] == ["thinking"]

    def test_an_effort_the_profile_has_no_setting_for_is_a_loss(self) -> None:
        """local_anthropic (vLLM, llama.cpp, Ollama /v1/messages): no output_config, no other knob."""
        body, losses = encode(ChatRequest(model="m", thinking=ThinkingConfig(enabled=True, effort="high"),
                                          messages=(Message(role="user", parts=(TextPart("x"),)),)),
                              PROFILES["local_anthropic"])
        assert body["thinking"] == {"type": "enabled"} and "output_config" not in body
        assert losses == [("effort", "effort 'high' not sent: deepseek-v4-pro on local_anthropic has no effort levels")]

    def test_ignored_and_unsupported_parameters(self) -> None:
        request = ChatRequest(model="m", top_k=5, user="u1", stop=("END",), temperature=0.5, parallel_tool_calls=False,
                              tools=(BASH, ToolSpec(name="apply_patch", kind="custom", grammar="start: x")),
                              tool_choice=ToolChoice(mode="tool", name="Bash"),
                              response_format=ResponseFormat(type="json_schema", schema={"type": "object"}),
                              messages=(Message(role="user", parts=(TextPart("x"),)),))
        body, losses = encode(request)
        assert "top_k" not in body and "metadata" not in body and body["stop_sequences"] == ["END"]
        # Forced while DeepSeek thinks: the choice goes as it came, with thinking off.
        assert body["tool_choice"] == {"type": "tool", "name": "Bash", "disable_parallel_tool_use": True}
        assert body["thinking"] == {"type": "disabled"}
        assert body["tools"][1]["input_schema"]["properties"]["input"]["type"] == "string"
        assert "output_config" not in body
        assert {w for w, _ in losses} == {"top_k", "thinking_off", "response_format"}
        real, _ = encode(request, ANTHROPIC)
        assert real["top_k"] == 5 and real["metadata"] == {"user_id": "u1"}
        assert real["output_config"] == {"format": {"type": "json_schema", "schema": {"type": "object"}}}


def test_thinking_display_goes_to_the_real_api_and_is_a_loss_elsewhere() -> None:
    """Anthropic's ``thinking.display`` (Claude Code sends ``updates``, a client may ask
    ``summarized``): the real API shows its thinking as asked, so it gets the display; DeepSeek
    returns its raw reasoning whole, so there it is a loss. ``omitted`` the client encoder honours."""
    for display in ("summarized", "updates"):
        request = ChatRequest(model="m", messages=(Message(role="user", parts=(TextPart("hi"),)),),
                              thinking=ThinkingConfig(enabled=True, budget_tokens=2048, display=display))
        out, losses = encode(request, ANTHROPIC, "anthropic")
        assert out["thinking"]["display"] == display and not [w for w, _ in losses if w == "thinking_display"]
        out, losses = encode(request)
        assert "display" not in out["thinking"]
        assert [w for w, _ in losses] == ["thinking_display"] and repr(display) in losses[0][1]
    omitted = ChatRequest(model="m", messages=(Message(role="user", parts=(TextPart("hi"),)),),
                          thinking=ThinkingConfig(enabled=True, display="omitted"))
    assert encode(omitted)[1] == []
