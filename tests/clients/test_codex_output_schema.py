"""The real Codex's ``codex exec --output-schema FILE`` against the gateway and the simulator
(DeepSeek's rules: ``json_object`` only, the word "json" required): Codex sends the schema as
``text.format`` json_schema on every turn, the gateway sends DeepSeek ``json_object`` with the
schema in the system prompt, and the last message Codex prints validates against the schema: after
a tool turn, and after an answer that did not validate the first time (one retry, which Codex
never sees). Opt-in like the other real-client tests (``-m clients``)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tests.clients.harness import run_client, sim_requests

pytestmark = pytest.mark.clients

# What a user writes for --output-schema (Codex sends it with strict: true).
SCHEMA = {"type": "object", "properties": {
    "summary": {"type": "string", "minLength": 1},
    "files": {"type": "array", "items": {"type": "string"}},
    "status": {"enum": ["done", "failed"]}},
    "required": ["summary", "files", "status"], "additionalProperties": False}
ANSWER = {"summary": "Wrote a.txt", "files": ["a.txt"], "status": "done"}


def codex(tmp_path: Path, prompt: str) -> tuple[dict, list[dict]]:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    code, out, lines = run_client(tmp_path, "codex", prompt,
                                  env={"GW_CODEX_ARGS": shlex.join(["--output-schema", str(schema)])})
    assert code == 0, (out / "client.err").read_text()[-2000:]
    printed = json.loads((out / "last_message.txt").read_text())
    Draft202012Validator(SCHEMA).validate(printed)
    bodies = sim_requests(out)
    assert bodies and all(b["response_format"] == {"type": "json_object"} for b in bodies)
    assert all(json.dumps(SCHEMA, separators=(",", ":")) in b["messages"][0]["content"] for b in bodies)
    return printed, lines


def test_output_schema_after_a_tool_turn(tmp_path: Path) -> None:
    printed, lines = codex(tmp_path, f"SIM:script shell echo hi > a.txt ;; text {json.dumps(ANSWER)}")
    assert printed == ANSWER
    generate = [line for line in lines if line["endpoint"] == "generate"]
    assert [line["status"] for line in generate] == [200, 200]
    assert generate[-1]["structured_output"] == {"tries": 1}


def test_output_schema_fixed_by_the_retry(tmp_path: Path) -> None:
    """The first answer breaks the schema ("status": "maybe"); the gateway's retry gets a valid one
    and Codex prints that, having seen nothing of the first."""
    bad = {**ANSWER, "status": "maybe"}
    printed, lines = codex(tmp_path, f"SIM:invalid once {json.dumps(bad)}\nSIM:text {json.dumps(ANSWER)}")
    assert printed == ANSWER
    (line,) = [line for line in lines if line["endpoint"] == "generate"]
    assert line["structured_output"] == {"tries": 2} and line["attempts"] == 2
