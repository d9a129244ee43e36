"""Client side of the Chat codec: Chat Completions request bodies → neutral ``ChatRequest``."""

from __future__ import annotations


import json
from typing import Any

import pytest

from pipeline.errors import RequestError
from pipeline.model import (
    ChatRequest,
    ImagePart,
    Loss,
    Message,
    ResponseFormat,
    TextPart,
    ThinkingConfig,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
)
from pipeline.protocols.chat import ChatCodec
from pipeline.protocols.chat.client_decode_echo import ChatEcho

CODEC = ChatCodec()


def decode_both(body: dict[str, Any]) -> tuple[ChatRequest, object]:
    """The request and the echo the codec's reply carries for the encoder."""
    request, reply = CODEC.decode_request(json.dumps(body).encode())
    return request, reply.echo


def decode(body: dict[str, Any]) -> ChatRequest:
    return decode_both(body)[0]


# ---------------------------------------------------------------- decode_request


def test_decode_full_conversation() -> None:
    request, echo = decode_both({
        "model": "gpt-4.1",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
            {"role": "user", "name": "ann", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"}},
                {"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}},
            ]},
            {"role": "assistant", "content": None, "reasoning_content": "Look closer.",
             "tool_calls": [{"id": "call_1", "type": "function",
                             "function": {"name": "zoom", "arguments": "{\"x\":1}"}},
                            {"id": "call_2", "type": "custom", "custom": {"name": "patch", "input": "*** Begin"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "ok"}]},
            {"role": "system", "content": "late note"},
            {"role": "assistant", "content": "A cat.", "reasoning": "sure"},
        ],
        "future_field": {"ignored": True},
    })
    assert request.model == "gpt-4.1"
    assert request.system == ("Be brief.", "Use tools.")
    assert request.messages == (
        Message(role="user", name="ann", parts=(
            TextPart("what is this?"), ImagePart(url="data:image/png;base64,AAAA", detail="high"))),
        Message(role="assistant", reasoning="Look closer.", parts=(
            ToolCallPart(id="call_1", name="zoom", arguments='{"x":1}'),
            ToolCallPart(id="call_2", name="patch", arguments='{"input":"*** Begin"}', origin="custom"))),
        Message(role="tool", parts=(ToolResultPart(call_id="call_1", content=(TextPart("a cat"),)),)),
        Message(role="tool", parts=(ToolResultPart(call_id="call_2", content=(TextPart("ok"),)),)),
        Message(role="system", parts=(TextPart("late note"),)),
        Message(role="assistant", reasoning="sure", parts=(TextPart("A cat."),)),
    )
    assert [loss.what for loss in request.losses] == ["content_part"]
    assert request.stream is False
    assert echo == ChatEcho(include_usage=False)


def test_decode_options() -> None:
    request, echo = decode_both({
        "model": "m", "messages": [{"role": "user", "content": "hi"}],
        "stream": True, "stream_options": {"include_usage": True},
        "max_tokens": 100, "max_completion_tokens": 200, "temperature": 1, "top_p": 0.5, "seed": 3,
        "stop": "END", "user": "u-1", "parallel_tool_calls": False,
        "tools": [
            {"type": "function", "function": {"name": "f", "description": "d",
                                              "parameters": {"type": "object"}, "strict": True}},
            {"type": "function", "function": {"name": "g"}},
            {"type": "custom", "custom": {"name": "patch", "description": "p",
                                          "format": {"type": "grammar",
                                                     "grammar": {"definition": "start: x", "syntax": "lark"}}}},
            {"type": "web_search"},
        ],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "o", "schema": {"type": "object"},
                                                                   "strict": True}},
        "reasoning_effort": "high",
        "n": 2, "logprobs": True, "presence_penalty": 0.5, "frequency_penalty": 0, "logit_bias": {"1": 2},
    })
    assert request.stream is True and echo == ChatEcho(include_usage=True)
    assert request.max_output_tokens == 200
    assert (request.temperature, request.top_p, request.seed) == (1.0, 0.5, 3)
    assert request.stop == ("END",) and request.user == "u-1" and request.parallel_tool_calls is False
    assert request.tools == (
        ToolSpec(name="f", description="d", parameters={"type": "object"}, strict=True),
        ToolSpec(name="g"),
        ToolSpec(name="patch", description="p", kind="custom", grammar="start: x", syntax="lark"),
    )
    assert request.tool_choice == ToolChoice(mode="tool", name="f")
    assert request.response_format == ResponseFormat(type="json_schema", name="o", schema={"type": "object"},
                                                     strict=True)
    assert request.thinking == ThinkingConfig(effort="high")
    assert sorted(loss.what for loss in request.losses) == [
        "custom_tool", "logit_bias", "logprobs", "n", "presence_penalty", "tool"]


@pytest.mark.parametrize(
    ("extra", "thinking"),
    [
        ({"thinking": {"type": "disabled"}}, ThinkingConfig(enabled=False)),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}, "reasoning_effort": "max"},
         ThinkingConfig(enabled=True, effort="max", budget_tokens=1024)),
        ({"reasoning_effort": "none"}, ThinkingConfig(enabled=False, effort="none")),
        ({"reasoning": {"effort": "low"}}, ThinkingConfig(effort="low")),
        ({"chat_template_kwargs": {"enable_thinking": False}}, ThinkingConfig(enabled=False)),
        ({}, ThinkingConfig()),
    ],
)
def test_decode_thinking_switches(extra: dict[str, Any], thinking: ThinkingConfig) -> None:
    assert decode({"model": "m", "messages": [{"role": "user", "content": "x"}], **extra}).thinking == thinking


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("auto", ToolChoice(mode="auto")), ("none", ToolChoice(mode="none")), ("required", ToolChoice(mode="required")),
     ({"type": "custom", "custom": {"name": "patch"}}, ToolChoice(mode="tool", name="patch")),
     ({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": []}}, ToolChoice(mode="required"))],
)
def test_decode_tool_choice(choice: Any, expected: ToolChoice) -> None:
    assert decode({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": choice}).tool_choice \
        == expected


def test_decode_stop_list_and_max_tokens_and_json_object() -> None:
    request = decode({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": ["a", "", "b"],
                      "max_tokens": 50, "response_format": {"type": "json_object"}})
    assert request.stop == ("a", "b") and request.max_output_tokens == 50
    assert request.response_format == ResponseFormat(type="json_object")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "request body must be a JSON object"),
        (b'{"messages": []}', "model: field required"),
        (b'{"model": "m", "messages": []}', "`messages` must contain at least one message"),
        (b'{"model": "m", "messages": [{"role": 1}]}', "messages.0.role: expected `str`"),
        (b'{"model": "m", "messages": [{"role": "user", "content": 5}]}', "messages.0.content: expected `str | array | null`"),
        (b'{"model": "m", "messages": [{"role": "function", "content": "x"}]}', "messages[0].role"),
        (b'{"model": "m", "messages": [{"role": "tool", "content": "x"}]}', "messages[0].tool_call_id"),
        (b'{"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]}',
         "messages[0].content[0].text"),
        (b'{"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function"}]}]}',
         "messages[0].tool_calls[0].function"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "huge"}',
         "reasoning_effort"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "any"}', "tool_choice"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": "10"}', "max_tokens: expected `int | null`, got `str`"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "thinking": {"type": "on"}}',
         "thinking.type"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}}',
         "response_format.type"),
    ],
)
def test_decode_errors_name_the_field(body: bytes, needle: str) -> None:
    with pytest.raises(RequestError) as info:
        CODEC.decode_request(body)
    assert needle in info.value.message
    assert info.value.status == 400 and info.value.code == "invalid_request"


def test_losses_are_carried_on_the_request() -> None:
    request = decode({"model": "m", "messages": [{"role": "system", "content": [
        {"type": "text", "text": "s"}, {"type": "image_url", "image_url": "https://x/y.png"}]},
        {"role": "user", "content": "x"}]})
    assert request.system == ("s",)
    assert request.losses == (Loss("image", "messages[0]: an image in a system message was dropped"),)
