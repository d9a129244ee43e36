"""A new user's path: ``python -m pipeline setup claude|codex --write``, then the real client with
those settings alone (nothing of the client's own configuration in its environment).

Codex: the written catalog makes ``deepseek-v4-pro`` first-class: the freeform ``apply_patch``
tool is offered (the upstream sees it as a function carrying the grammar), no fallback-metadata
warning, the catalog's reasoning level and parallel tool calls reach the upstream, and the file
is created by ``apply_patch``, not by a shell fallback. Claude Code: a tool loop with thinking,
with the main model the settings name, and the table's window as the one Claude Code reports.
Opt-in like the other real-client tests (``pytest -m clients``, ``GW_CLIENTS``, root).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.model_limits import MODELS
from tests.clients.harness import assert_loop, assert_replay_verified, run_client, sim_requests

pytestmark = pytest.mark.clients


def tool_names(body: dict) -> list[str]:
    return [t["function"]["name"] for t in body.get("tools", [])]


def called(body: dict) -> list[str]:
    """The tool calls of the assistant turns the client sent back."""
    return [c["function"]["name"] for m in body["messages"] if m["role"] == "assistant"
            for c in m.get("tool_calls") or []]


def test_codex_with_the_written_home(tmp_path: Path) -> None:
    code, out, lines = run_client(
        tmp_path, "codex", "SIM:script shell echo hello > out.txt ;; write notes.txt patched by codex ;; text All done.",
        setup=True)
    err = (out / "client.err").read_text()
    assert code == 0, err[-2000:]
    events = (out / "client.jsonl").read_text()
    # Without the catalog Codex warns here (an `error` event in the --json stream) and offers no apply_patch.
    assert "fallback metadata" not in events + err and "Model metadata" not in events + err, events[-2000:]
    config = (out / "home" / "config.toml").read_text()
    assert 'model = "deepseek-v4-pro"' in config and 'wire_api = "responses"' in config
    work = out / "workdir"
    assert (work / "out.txt").read_text() == "hello\n"
    assert (work / "notes.txt").read_text() == "patched by codex\n"
    assert (out / "last_message.txt").read_text().strip() == "All done."
    bodies = sim_requests(out)
    assert len(bodies) == 3
    first = bodies[0]
    assert first["model"] == "deepseek-v4-pro"
    assert "apply_patch" in tool_names(first)
    patch_tool = next(t["function"] for t in first["tools"] if t["function"]["name"] == "apply_patch")
    assert "FREEFORM" in patch_tool["description"]  # Codex's freeform tool, not its JSON function variant
    assert "Begin Patch" in patch_tool["parameters"]["properties"]["input"]["description"]  # its Lark grammar
    assert first["reasoning_effort"] == MODELS["deepseek-v4-pro"].default_reasoning_level
    assert first.get("parallel_tool_calls") is not False
    assert called(bodies[2]) == ["exec_command", "apply_patch"]  # the file came from apply_patch
    assert_loop(lines, 3)
    assert_replay_verified(out)


def test_claude_code_with_the_written_settings(tmp_path: Path) -> None:
    code, out, lines = run_client(
        tmp_path, "claude",
        "SIM:script shell echo hello > out.txt ;; shell cat out.txt ;; text All done: out.txt says hello.",
        setup=True)
    err = (out / "client.err").read_text()
    assert code == 0, err[-2000:]
    settings = json.loads((out / "home" / ".claude" / "settings.json").read_text())
    assert settings["env"]["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8000/sim"
    assert settings["env"]["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == str(MODELS["deepseek-v4-pro"].context_window)
    assert (out / "workdir" / "out.txt").read_text() == "hello\n"
    result = json.loads((out / "client.jsonl").read_text().splitlines()[-1])
    assert result["type"] == "result" and result["subtype"] == "success" and not result["is_error"]
    assert result["result"] == "All done: out.txt says hello."
    # The window Claude Code works with (it compacts near it) is the table's, not its guess for a
    # model it does not know (1,000,000 without CLAUDE_CODE_MAX_CONTEXT_TOKENS).
    assert result["modelUsage"]["deepseek-v4-pro"]["contextWindow"] == MODELS["deepseek-v4-pro"].context_window
    main = [line for line in lines if line["endpoint"] == "generate" and line["model"] == "deepseek-v4-pro"]
    assert len(main) == 3, [(line["model"], line["status"]) for line in lines]
    assert_loop(main, 3)
    assert_replay_verified(out)
