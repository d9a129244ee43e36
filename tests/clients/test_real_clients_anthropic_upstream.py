"""The real, unmodified clients (``claude -p``, ``codex exec``) through the ``anthropic_messages``
upstream (profile ``deepseek_anthropic``) to the simulator's DeepSeek-Anthropic mode: three-turn
tool loops with thinking on.

Opt-in like ``test_real_clients`` (``pytest -m clients``, root, ``GW_CLIENTS``). The simulator
400s a tool turn without its thinking block, a ``role: "system"`` message, a foreign signature or
a non-DeepSeek model, and (``verify_replay``) any turn whose thinking text or signature is not
exactly its own, so the loop finishing is the proof.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clients.harness import assert_loop, assert_replay_verified, run_client, sim_stats

pytestmark = pytest.mark.clients

DEEPSEEK_ANTHROPIC = {"type": "anthropic_messages", "profile": "deepseek_anthropic", "base_url": "${GW_SIM_URL}/anthropic",
                      "models": {"default": "deepseek-v4-pro", "claude-opus*": "deepseek-v4-pro",
                                 "claude-haiku*": "deepseek-v4-flash", "claude-sonnet*": "deepseek-v4-flash",
                                 "*haiku*": "deepseek-v4-flash"}}


class TestClaudeCodeOnDeepSeekAnthropic:
    def test_tool_loop_with_thinking(self, tmp_path: Path) -> None:
        code, out, lines = run_client(
            tmp_path, "claude",
            "SIM:script shell echo hello > out.txt ;; shell cat out.txt ;; text All done: out.txt says hello.",
            upstream=DEEPSEEK_ANTHROPIC)
        assert code == 0, (out / "client.err").read_text()[-2000:]
        assert (out / "workdir" / "out.txt").read_text() == "hello\n"
        result = json.loads((out / "client.jsonl").read_text().splitlines()[-1])
        assert result["type"] == "result" and result["subtype"] == "success" and not result["is_error"]
        assert result["result"] == "All done: out.txt says hello."
        assert_loop(lines, 3)
        assert_replay_verified(out)
        stats = sim_stats(out)
        assert [check["verified_turns"] for check in stats["replay"]][-2:] == [1, 2]


class TestCodexOnDeepSeekAnthropic:
    def test_tool_loop_with_thinking(self, tmp_path: Path) -> None:
        code, out, lines = run_client(
            tmp_path, "codex", "SIM:script shell echo hello > out.txt ;; shell cat out.txt ;; text All done.",
            upstream=DEEPSEEK_ANTHROPIC)
        assert code == 0, (out / "client.err").read_text()[-2000:]
        assert (out / "workdir" / "out.txt").read_text() == "hello\n"
        assert (out / "last_message.txt").read_text().strip() == "All done."
        assert_loop(lines, 3)
        assert_replay_verified(out)
