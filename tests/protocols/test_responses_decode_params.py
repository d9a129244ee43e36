"""Responses request options: tools of every kind, tool_choice, reasoning effort, text format,
scalar parameters and extras, losses for unsupported options, and refused stateful options."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.errors import RequestError
from pipeline.model import ResponseFormat, ThinkingConfig, ToolChoice
from pipeline.protocols.responses.client_decode import STATELESS, VERBOSITY_HIGH, VERBOSITY_LOW
from pipeline.protocols.responses.client_decode_echo import ResponsesEcho
from tests.protocols.responses_decode_helpers import decode, decode_echo, error_of, loss_keys, req


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
    assert decode_echo(req("q", reasoning={"effort": "low", "summary": "concise"})).reasoning_summary == "concise"


@pytest.mark.parametrize(("summary", "losses"), [
    ("none", []), ("auto", []), ("concise", ["reasoning_summary"]), ("detailed", ["reasoning_summary"])])
def test_reasoning_summary_values(summary: str, losses: list[str]) -> None:
    """A summary the upstream cannot write (DeepSeek gives raw reasoning) is said in a loss."""
    body = req("q", reasoning={"effort": "high", "summary": summary})
    request = decode(body)
    assert decode_echo(body).reasoning_summary == summary and loss_keys(request) == losses
    assert all("raw reasoning, not a summary" in loss.detail for loss in request.losses)
    assert "reasoning.summary: expected one of none, auto, concise, detailed" in error_of(
        req("q", reasoning={"summary": "brief"}))


def test_text_verbosity_is_a_system_line() -> None:
    """Codex sends ``low`` on every request: it reaches the model as the system prompt's last line."""
    low = decode(req([{"type": "message", "role": "developer", "content": "You are Codex."},
                      {"type": "message", "role": "user", "content": "q"}], text={"verbosity": "low"}))
    assert low.system == ("You are Codex.", VERBOSITY_LOW) and not low.losses
    assert decode(req("q", text={"verbosity": "high"})).system == (VERBOSITY_HIGH,)
    assert decode(req("q", text={"verbosity": "medium"})).system == ()  # the API's default: nothing to say
    assert decode(req("q")).system == ()
    assert "text.verbosity: expected one of low, medium, high" in error_of(req("q", text={"verbosity": "max"}))


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
    body = req("q", max_output_tokens=500, temperature=0.2, top_p=0.9, parallel_tool_calls=False,
               stream=False, safety_identifier="sid", metadata={"k": "v"}, store=True,
               service_tier="auto", unknown_field={"x": 1})
    request = decode(body)
    assert (request.max_output_tokens, request.temperature, request.top_p) == (500, 0.2, 0.9)
    assert request.parallel_tool_calls is False and request.stream is False
    assert request.user == "sid"
    assert decode_echo(body) == ResponsesEcho(store=True, metadata={"k": "v"}, max_output_tokens=500)
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
