"""tool_ids.schemas: keyword dropping, $ref inlining, type arrays, the top-level object rule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stages.tool_ids import schemas
from stages.tool_ids.schemas import EMPTY_OBJECT, MAX_REF_EXPANSIONS, resolve_pointer, sanitise_cached, sanitise_schema
from tests.captures import capture_body
from pipeline.profiles import PROFILES


def keys_anywhere(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_anywhere(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_anywhere(v)}
    return set()


def test_claude_code_schemas_for_deepseek() -> None:
    """Every Claude Code tool schema loses $schema (silently) and keeps everything else."""
    tools = capture_body("claude-tool-1.json")["tools"]
    for tool in tools:
        original = tool["input_schema"]
        out, notes = sanitise_schema(original, drop=PROFILES["deepseek"].schema_drop_keywords)
        assert "$schema" not in keys_anywhere(out)
        assert out["type"] == "object" and isinstance(out["properties"], dict)
        assert out == {k: v for k, v in original.items() if k != "$schema"} | {"properties": original["properties"]}
        assert notes == []


def test_keywords_are_dropped_only_as_keywords() -> None:
    """A property named "format" survives; the format keyword inside it is dropped and reported."""
    schema = {"type": "object", "properties": {
        "format": {"type": "string", "format": "date-time"},
        "items": {"type": "array", "items": {"type": "string", "format": "uri"}},
        "choice": {"enum": [{"format": "kept: data, not a schema"}]},
    }}
    out, notes = sanitise_schema(schema, drop=("format",))
    assert out["properties"]["format"] == {"type": "string"}
    assert out["properties"]["items"] == {"type": "array", "items": {"type": "string"}}
    assert out["properties"]["choice"] == {"enum": [{"format": "kept: data, not a schema"}]}
    assert notes == ["dropped keyword format (2x)"]
    assert schema["properties"]["format"]["format"] == "date-time"  # the input is not mutated


def test_top_level_gets_type_and_properties() -> None:
    """Missing type/properties at the top are added; {} and None become the empty object schema."""
    assert sanitise_schema({}) == (EMPTY_OBJECT, [])
    assert sanitise_schema(None) == (EMPTY_OBJECT, [])
    out, notes = sanitise_schema({"required": [], "properties": {"a": {"type": "string"}}})
    assert out == {"type": "object", "required": [], "properties": {"a": {"type": "string"}}} and notes == []
    out, _ = sanitise_schema({"anyOf": [{"type": "object", "properties": {"a": {}}}]})
    assert out["type"] == "object" and out["properties"] == {} and "anyOf" in out


def test_top_level_non_object_is_replaced_with_a_loss() -> None:
    """type: string at the top cannot be called with object arguments: empty object + note."""
    out, notes = sanitise_schema({"type": "string", "maxLength": 3})
    assert out == EMPTY_OBJECT
    assert notes and "not an object" in notes[0]
    out, notes = sanitise_schema({"type": ["object", "null"], "properties": {}})
    assert out == {"type": "object", "properties": {}} and notes == []


def test_type_arrays_become_anyof() -> None:
    """["string", "null"] → anyOf with type keywords in the branch and annotations outside."""
    schema = {"type": "object", "properties": {
        "name": {"type": ["string", "null"], "description": "who", "maxLength": 5},
        "one": {"type": ["integer"]},
        "multi": {"type": ["string", "number"], "minimum": 1},
    }}
    out, notes = sanitise_schema(schema)
    assert out["properties"]["name"] == {
        "description": "who", "anyOf": [{"type": "string", "maxLength": 5}, {"type": "null"}]}
    assert out["properties"]["one"] == {"type": "integer"}
    assert out["properties"]["multi"]["anyOf"] == [{"type": "string", "minimum": 1}, {"type": "number", "minimum": 1}]
    assert notes == []


def test_refs_are_inlined_for_llamacpp() -> None:
    """llama.cpp: $ref to $defs/definitions resolved in place, defs removed, format dropped."""
    profile = PROFILES["llamacpp"]
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"when": {"$ref": "#/$defs/Stamp"}, "who": {"$ref": "#/definitions/Person",
                                                                     "description": "the author"}},
        "$defs": {"Stamp": {"type": "string", "format": "date-time"}},
        "definitions": {"Person": {"type": "object", "properties": {"born": {"$ref": "#/$defs/Stamp"}}}},
    }
    out, notes = sanitise_schema(schema, drop=profile.schema_drop_keywords, inline_refs=profile.inline_schema_refs)
    assert out == {"type": "object", "properties": {
        "when": {"type": "string"},
        "who": {"type": "object", "properties": {"born": {"type": "string"}}, "description": "the author"},
    }}
    assert "$ref" not in keys_anywhere(out)
    assert notes == ["dropped keyword format (2x)"]


def test_recursive_and_unresolvable_refs_become_empty_with_notes() -> None:
    """A recursive ref stops at {} (guarded), an external ref too; each is reported."""
    schema = {"type": "object", "properties": {
        "tree": {"$ref": "#/$defs/Node"}, "ext": {"$ref": "https://example.com/s.json"}, "me": {"$ref": "#"}},
        "$defs": {"Node": {"type": "object", "properties": {"kids": {"type": "array",
                                                                     "items": {"$ref": "#/$defs/Node"}}}}}}
    out, notes = sanitise_schema(schema, inline_refs=True)
    assert out["properties"]["tree"]["properties"]["kids"]["items"] == {}
    assert out["properties"]["ext"] == {} and out["properties"]["me"] == {}
    assert any("recursive $ref #/$defs/Node" in n for n in notes)
    assert any("unresolvable $ref https://example.com/s.json" in n for n in notes)
    assert any("recursive $ref #" in n for n in notes)


def test_exponential_refs_are_bounded() -> None:
    """A chain of defs each used twice would explode; expansions stop at the budget."""
    defs = {f"D{i}": {"type": "object", "properties": {"a": {"$ref": f"#/$defs/D{i + 1}"},
                                                      "b": {"$ref": f"#/$defs/D{i + 1}"}}} for i in range(30)}
    defs["D30"] = {"type": "string"}
    out, notes = sanitise_schema({"type": "object", "properties": {"x": {"$ref": "#/$defs/D0"}}, "$defs": defs},
                                 inline_refs=True)
    assert any(f"over {MAX_REF_EXPANSIONS} expansions" in n for n in notes)
    assert len(notes) == len(set(notes)) <= 31  # one note per distinct ref, not per occurrence
    assert out["type"] == "object"


def test_refs_kept_without_inline() -> None:
    """vLLM/DeepSeek (no inlining): $ref and $defs stay as they are."""
    schema = {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": {"A": {"type": "string"}}}
    out, notes = sanitise_schema(schema, inline_refs=PROFILES["vllm"].inline_schema_refs)
    assert out == schema and notes == []


@pytest.mark.parametrize(("ref", "expected"), [
    ("#", "ROOT"), ("#/$defs/A", {"type": "string"}), ("#/properties/a~1b", {"x": 1}),
    ("#/properties/t~0", {"y": 2}), ("#/anyOf/1", {"z": 3}), ("#/anyOf/7", None), ("#anchor", None),
    ("other.json#/x", None), ("#/%24defs/A", {"type": "string"}),
])
def test_resolve_pointer(ref: str, expected: Any) -> None:
    """JSON pointers with ~0/~1 escapes, percent-encoding and list indexes."""
    root = {"$defs": {"A": {"type": "string"}}, "properties": {"a/b": {"x": 1}, "t~": {"y": 2}},
            "anyOf": [{}, {"z": 3}]}
    assert resolve_pointer(root, ref) == (root if expected == "ROOT" else expected)


class TestCache:
    """The same tools come every turn: their sanitised schemas are remembered by content."""

    def test_same_content_same_answer_without_sanitising_again(self, monkeypatch: pytest.MonkeyPatch) -> None:
        schema = {"$schema": "x", "type": "object", "properties": {"a": {"type": ["string", "null"]}}}
        first, notes = sanitise_cached(schema, drop=("$schema",), inline_refs=False)
        calls: list[object] = []
        monkeypatch.setattr(schemas, "sanitise_schema", lambda *a, **k: calls.append(a) or ({}, []))
        again, notes_again = sanitise_cached(json.loads(json.dumps(schema)), drop=("$schema",), inline_refs=False)
        assert again == first and "$schema" not in again and notes_again == notes and not calls

    def test_unchanged_schema_is_returned_as_it_is(self) -> None:
        schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
        for _ in range(2):
            out, notes = sanitise_cached(schema, drop=(), inline_refs=False)
            assert out is schema and notes == ()

    def test_profile_settings_are_part_of_the_key(self) -> None:
        schema = {"type": "object", "$defs": {"d": {"type": "string"}}, "properties": {"x": {"$ref": "#/$defs/d"}}}
        kept, _ = sanitise_cached(schema, drop=(), inline_refs=False)
        inlined, _ = sanitise_cached(schema, drop=(), inline_refs=True)
        assert kept["properties"]["x"] == {"$ref": "#/$defs/d"} and inlined["properties"]["x"] == {"type": "string"}

    def test_bounded(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(schemas, "CACHE_SIZE", 4)
        for i in range(10):
            sanitise_cached({"type": "object", "properties": {f"p{i}": {}}}, drop=(), inline_refs=False)
        assert len(schemas._CACHE) <= 4
