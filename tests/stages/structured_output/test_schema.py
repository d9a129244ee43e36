"""structured_output's checker: the JSON Schema features the clients' schemas use, read like the
client reads the answer (white space and one code fence off), errors that name the JSON path."""

from __future__ import annotations

import pytest

from stages.structured_output.schema import OBJECT, Checker, SchemaProblem

# A Codex --output-schema style schema (strict: every property required, no others) with $defs.
SCHEMA = {
    "$defs": {"step": {"type": "object", "properties": {"cmd": {"type": "string", "pattern": "^[a-z]"},
                                                        "ok": {"type": "boolean"}},
                       "required": ["cmd", "ok"], "additionalProperties": False}},
    "type": "object",
    "properties": {"summary": {"type": "string", "minLength": 1},
                   "status": {"enum": ["done", "failed"]},
                   "steps": {"type": "array", "items": {"$ref": "#/$defs/step"}, "maxItems": 3},
                   "score": {"anyOf": [{"type": "number", "maximum": 1}, {"type": "null"}]}},
    "required": ["summary", "status", "steps", "score"],
    "additionalProperties": False,
}
GOOD = '{"summary": "ok", "status": "done", "steps": [{"cmd": "ls", "ok": true}], "score": null}'


@pytest.mark.parametrize("text, why", [
    ('{"summary": "", "status": "done", "steps": [], "score": 0.5}', "at $.summary: '' should be non-empty"),
    ('{"summary": "s", "status": "maybe", "steps": [], "score": 0.5}', "at $.status: 'maybe' is not one of"),
    ('{"summary": "s", "status": "done", "steps": [{"cmd": "Ls", "ok": true}], "score": 0}',
     "at $.steps[0].cmd: 'Ls' does not match"),
    ('{"summary": "s", "status": "done", "steps": [], "score": 2}', "at $.score: 2 is greater than the maximum of 1"),
    ('{"summary": "s", "status": "done", "steps": []}', "at $: 'score' is a required property"),
    ('{"summary": "s", "status": "done", "steps": [], "score": 0, "extra": 1}', "Additional properties"),
    ('{"summary": "s",', "the answer is not valid JSON"),
    ("  ", "the answer is empty"),
])
def test_a_violation_is_named_by_its_path(text: str, why: str) -> None:
    clean, problem = Checker(SCHEMA).text(text)
    assert problem is not None and why in problem


def test_a_valid_answer_and_its_clean_text() -> None:
    checker = Checker(SCHEMA)
    assert checker.text(GOOD) == (GOOD, None)
    assert checker.text(f"\n```json\n{GOOD}\n```\n") == (GOOD, None)
    assert checker.text(f"```\n{GOOD}```") == (GOOD, None)
    assert checker.text(f"Here it is: {GOOD}")[1] is not None  # prose around it is not taken off


def test_tool_arguments() -> None:
    checker = Checker(OBJECT)
    assert checker.arguments("") is None and checker.arguments('{"a": 1}') is None
    assert "not of type 'object'" in (checker.arguments("[]") or "")
    assert "not valid JSON" in (checker.arguments('{"a"') or "")


def test_an_invalid_schema_says_where() -> None:
    with pytest.raises(SchemaProblem, match=r"schema\.properties\.a\.type: 5 is not valid"):
        Checker({"type": "object", "properties": {"a": {"type": 5}}})


def test_the_schemas_draft_is_honoured() -> None:
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "string"}]}
    assert Checker(draft7).value([1]) is not None  # draft 7's tuple form of items
    assert Checker(draft7).value(["a", 1]) is None
