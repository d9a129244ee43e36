"""The real, unmodified clients (``codex exec``, ``claude -p``) through the ``openai_responses``
upstream to the simulator's DeepSeek Responses mode: three-turn tool loops with thinking on
(Codex's apply_patch included).

Opt-in like ``test_real_clients`` (``pytest -m clients``, root, ``GW_CLIENTS``). The simulator
verifies every replayed reasoning item (its own encrypted_content, or the exact text) and 400s a
foreign one, so the loop finishing is the proof.
"""

from __future__ import annotations

from pathlib import Path

import json

import pytest

from tests.clients.harness import assert_loop, assert_replay_verified, run_client, sim_requests, sim_stats

pytestmark = pytest.mark.clients

DEEPSEEK_RESPONSES = {"type": "openai_responses", "profile": "deepseek_responses"}


class TestCodexOnDeepSeekResponses:
    def test_tool_loop_with_apply_patch(self, tmp_path: Path) -> None:
        """exec_command, then a freeform apply_patch write, then the final message. The home
        ``setup codex`` writes (its model catalog) makes Codex offer apply_patch; it goes upstream as
        a ``custom`` tool and comes back as a ``custom_tool_call`` item."""
        code, out, lines = run_client(
            tmp_path, "codex", "SIM:script shell echo hello > out.txt ;; write notes.txt patched by codex ;; text All done.",
            upstream=DEEPSEEK_RESPONSES, setup=True)
        assert code == 0, (out / "client.err").read_text()[-2000:]
        work = out / "workdir"
        assert (work / "out.txt").read_text() == "hello\n"
        assert (work / "notes.txt").read_text().strip() == "patched by codex"
        assert (out / "last_message.txt").read_text().strip() == "All done."
        assert_loop(lines, 3)
        assert_replay_verified(out)
        stats = sim_stats(out)
        # Turns 2 and 3 sent back 1 and 2 reasoning items, each with the simulator's own encrypted_content.
        assert stats["reasoning_items"] == stats["sealed_items"] == 3
        bodies = sim_requests(out)
        assert {t["name"]: t["type"] for t in bodies[0]["tools"]}.get("apply_patch") == "custom"
        calls = [i["type"] + ":" + i["name"] for i in bodies[2]["input"] if i.get("type", "").endswith("call")]
        assert calls == ["function_call:exec_command", "custom_tool_call:apply_patch"]  # the file came from apply_patch


class TestClaudeCodeOnDeepSeekResponses:
    def test_tool_loop_with_thinking(self, tmp_path: Path) -> None:
        code, out, lines = run_client(
            tmp_path, "claude",
            "SIM:script shell echo hello > out.txt ;; shell cat out.txt ;; text All done: out.txt says hello.",
            upstream=DEEPSEEK_RESPONSES)
        assert code == 0, (out / "client.err").read_text()[-2000:]
        assert (out / "workdir" / "out.txt").read_text() == "hello\n"
        result = json.loads((out / "client.jsonl").read_text().splitlines()[-1])
        assert result["type"] == "result" and result["subtype"] == "success" and not result["is_error"]
        assert result["result"] == "All done: out.txt says hello."
        assert_loop(lines, 3)
        assert_replay_verified(out)
        stats = sim_stats(out)
        assert stats["reasoning_items"] == stats["sealed_items"] == 3 and stats["chat_requests"] == 3
