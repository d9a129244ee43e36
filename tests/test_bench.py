"""The bench's inputs are what the real clients send: session bodies change from one request to the
next as Claude Code's and Codex's do (the captures' ``*-thinking-tool-1`` / ``-2`` pairs), bodies
below the capture's size are cut to size, and the bench gateway runs the shipped pipelines' stages."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.history import grow, session
from tests.captures import capture_body

ROOT = Path(__file__).resolve().parents[1]


def _marks(messages: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(message, block) of every cache_control in the messages."""
    return [(i, j) for i, m in enumerate(messages) if isinstance(m["content"], list)
            for j, block in enumerate(m["content"]) if "cache_control" in block]


def test_the_captures_move_claude_codes_cache_breakpoint() -> None:
    """What the bench mimics: turn 1's last message carries the breakpoint, turn 2's does and
    turn 1's last message no longer does."""
    one = capture_body("claude-thinking-tool-1.json")["messages"]
    two = capture_body("claude-thinking-tool-2.json")["messages"]
    assert _marks(one) == [(len(one) - 1, len(one[-1]["content"]) - 1)]
    assert _marks(two) == [(len(two) - 1, len(two[-1]["content"]) - 1)]


@pytest.mark.parametrize("turn_bytes", [None, 2_000])
def test_a_messages_session_moves_the_breakpoint_to_the_last_message(turn_bytes: int | None) -> None:
    bodies = session("messages", 120_000, "fake-whole", 4, turn_bytes)
    previous: list[dict[str, Any]] | None = None
    for body in bodies:
        messages = json.loads(body.data)["messages"]
        assert _marks(messages) == [(len(messages) - 1, len(messages[-1]["content"]) - 1)]
        if previous is not None:
            n = len(previous)
            assert messages[:n - 1] == previous[:n - 1]  # byte-equal as encoded: the same dicts, same order
            last = messages[n - 1]
            assert last != previous[-1]
            assert {**last["content"][-1], "cache_control": {"type": "ephemeral"}} == previous[-1]["content"][-1]
            assert len(messages) == n + 2  # one tool turn: the assistant's call, the user's result
        previous = messages
    encoded = [b.data for b in bodies]
    for before, after in pairwise(encoded):
        mark = before.rindex(b',"cache_control":{"type":"ephemeral"}', 0, before.index(b'],"system":'))
        assert after.startswith(before[:mark])  # what changed is the breakpoint, then the new turn
        assert after[mark:].startswith(b"}]},{")


def test_a_responses_session_only_appends() -> None:
    """Codex sends the same fields (prompt_cache_key, client_metadata) and items, then the new ones."""
    one = capture_body("codex-thinking-tool-1.json")
    two = capture_body("codex-thinking-tool-2.json")
    assert {k: v for k, v in one.items() if k != "input"} == {k: v for k, v in two.items() if k != "input"}
    assert two["input"][:len(one["input"])] == one["input"]
    bodies = [json.loads(b.data) for b in session("responses", 120_000, "fake-whole", 3, None)]
    for before, after in pairwise(bodies):
        assert {k: v for k, v in before.items() if k != "input"} == {k: v for k, v in after.items() if k != "input"}
        assert after["input"][:len(before["input"])] == before["input"]
        assert len(after["input"]) == len(before["input"]) + 3


@pytest.mark.parametrize("path", ["messages", "responses"])
@pytest.mark.parametrize("target", [10_000, 30_000])
def test_bodies_below_the_capture_are_the_capture_cut_to_size(path: str, target: int) -> None:
    body = grow(path, target, "fake-whole")
    data = json.loads(body.data)
    assert target * 0.95 <= len(body.data) <= target
    assert body.reasoning_by_call  # its sealed reasoning turn kept whole
    names = {t.get("name") for t in data["tools"]}
    assert ("Read" if path == "messages" else "exec_command") in names


def _stages(config: Path) -> dict[str, tuple[str, list[str]]]:
    pipelines = yaml.safe_load(config.read_text())["pipelines"]
    return {name: (p["client"], p["stages"]) for name, p in pipelines.items()}


def test_the_bench_pipelines_run_the_shipped_stages() -> None:
    """Each bench pipeline runs the stages the shipped pipeline of its client runs, in order."""
    shipped = {client: stages for client, stages in _stages(ROOT / "pipelines.yaml").values()}
    bench = _stages(ROOT / "bench" / "pipelines.yaml")
    assert {name: stages for name, (client, stages) in bench.items()} == {
        name: shipped[client] for name, (client, _) in bench.items()}
