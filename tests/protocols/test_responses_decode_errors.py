"""Responses request validation: malformed bodies, items, tools and parameters are 400
RequestErrors whose messages name the offending path."""

from __future__ import annotations

from typing import Any

import pytest

from tests.protocols.responses_decode_helpers import error_of, fc, msg, req


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


# ---------------------------------------------------------------- invalid UTF-8 inside embedded values

# msgspec checks the UTF-8 of a Raw value (items, tools, tool_choice) only when it is decoded, so
# its DecodeError surfaced after the top-level decode (a 500 under msgspec 0.23.0).
ITEM = b'{"type":"message","role":"user","content":[{"type":"input_text","text":"ok \xc3("}]}'
CHOICE = b'{"type":"function","name":"\xc0\xaf"}'


@pytest.mark.parametrize(("body", "message"), [
    (b'{"model":"m","input":[' + ITEM + b"]}", f"input.0: invalid UTF-8 encoded string at byte {ITEM.index(0xC3)} of this value"),
    (b'{"model":"m","input":[{"type":"message","role":"user","content":"q"},' + ITEM + b"]}",
     "input.1: invalid UTF-8 encoded string"),
    (b'{"model":"m","input":[{"type":"function_call","call_id":"c","name":"f","arguments":"\xed\xa0\x80"}]}',
     "input.0: invalid UTF-8 encoded string"),
    (b'{"model":"m","input":"q","tools":[{"type":"function","name":"\xff","parameters":{}}]}',
     "tools.0: invalid UTF-8 encoded string"),
    (b'{"model":"m","input":"q","tools":[{"type":"namespace","name":"n","description":"d",'
     b'"tools":[{"type":"function","name":"f\xfe","parameters":{}}]}]}', "tools.0.tools.0: invalid UTF-8 encoded string"),
    (b'{"model":"m","input":"q","tool_choice":' + CHOICE + b"}",
     f"tool_choice: invalid UTF-8 encoded string at byte {CHOICE.index(0xC0)} of this value"),
    (b'{"model":"\xff","input":"q"}', "request body is not valid JSON: Invalid UTF-8 encoded string at byte 10 of the body"),
])
def test_invalid_utf8_is_a_400_naming_the_path(body: bytes, message: str) -> None:
    assert error_of(body).startswith(message)
