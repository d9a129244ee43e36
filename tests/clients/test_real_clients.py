"""The real, unmodified clients (`claude -p`, `codex exec`) through multi-step tool loops.

Opt-in: ``pytest -m clients`` with ``GW_CLIENTS`` naming an npm prefix holding
@anthropic-ai/claude-code@2.1.330 and @openai/codex@0.169.0. Needs root for ``unshare --net``: the
gateway and the client run in a namespace with only loopback (the clients probe the internet).
The simulator runs as its own HTTP server behind an ``openai_chat`` upstream (``harness``), so
every request goes through the production transport, and it checks every replayed reasoning text.
Success is the client finishing the loop, every turn, thinking on — not an HTTP 200.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clients.harness import assert_loop, assert_replay_verified, run_client

pytestmark = pytest.mark.clients


class TestClaudeCode:
    def test_tool_loop_with_thinking(self, tmp_path: Path) -> None:
        """Two shell calls then a final answer; the files exist and the client reports success."""
        code, out, lines = run_client(
            tmp_path, "claude",
            "SIM:script shell echo hello > out.txt ;; shell cat out.txt ;; text All done: out.txt says hello.")
        assert code == 0, (out / "client.err").read_text()[-2000:]
        assert (out / "workdir" / "out.txt").read_text() == "hello\n"
        result = json.loads((out / "client.jsonl").read_text().splitlines()[-1])
        assert result["type"] == "result" and result["subtype"] == "success" and not result["is_error"]
        assert result["result"] == "All done: out.txt says hello."
        assert_loop(lines, 3)
        assert_replay_verified(out)

    def test_parallel_calls_and_a_file_write(self, tmp_path: Path) -> None:
        """Two parallel Bash calls in one turn, then Write, then text."""
        code, out, lines = run_client(
            tmp_path, "claude",
            "SIM:script parallel echo a > a.txt || echo b > b.txt ;; write notes.md written by claude ;; text done")
        assert code == 0, (out / "client.err").read_text()[-2000:]
        work = out / "workdir"
        assert (work / "a.txt").read_text() == "a\n" and (work / "b.txt").read_text() == "b\n"
        assert "written by claude" in (work / "notes.md").read_text()
        assert_loop(lines, 3)
        assert_replay_verified(out)

    def test_survives_429_and_503(self, tmp_path: Path) -> None:
        """The upstream answers the 2nd request with 429 and the 3rd with 503: the gateway retries."""
        code, out, lines = run_client(
            tmp_path, "claude", "SIM:script shell echo one > one.txt ;; shell echo two > two.txt ;; text ok",
            faults=[{"on_request": 2, "kind": "429"}, {"on_request": 3, "kind": "503"}])
        assert code == 0, (out / "client.err").read_text()[-2000:]
        assert (out / "workdir" / "two.txt").read_text() == "two\n"
        assert_loop(lines, 3)
        assert_replay_verified(out)
        assert sum(line["attempts"] for line in lines if line["endpoint"] == "generate") >= 5


class TestCodex:
    def test_tool_loop_with_apply_patch(self, tmp_path: Path) -> None:
        """exec_command, then a file write, then the final message. This hand-written config has no
        model catalog, so Codex gives deepseek-v4-pro fallback metadata and offers no apply_patch: the
        simulator writes the file with exec_command. The apply_patch path, with the config `setup
        codex` writes, is tests/clients/test_setup_clients.py."""
        code, out, lines = run_client(
            tmp_path, "codex", "SIM:script shell echo hello > out.txt ;; write notes.txt patched by codex ;; text All done.")
        assert code == 0, (out / "client.err").read_text()[-2000:]
        work = out / "workdir"
        assert (work / "out.txt").read_text() == "hello\n"
        assert (work / "notes.txt").read_text().strip() == "patched by codex"
        assert (out / "last_message.txt").read_text().strip() == "All done."
        assert_loop(lines, 3)
        assert_replay_verified(out)

    def test_survives_429_and_503(self, tmp_path: Path) -> None:
        """The 2nd request gets 429 and the 3rd 503 upstream; Codex never sees them."""
        code, out, lines = run_client(
            tmp_path, "codex", "SIM:script shell echo one > one.txt ;; shell echo two > two.txt ;; text ok",
            faults=[{"on_request": 2, "kind": "429"}, {"on_request": 3, "kind": "503"}])
        assert code == 0, (out / "client.err").read_text()[-2000:]
        assert (out / "workdir" / "two.txt").read_text() == "two\n"
        assert (out / "last_message.txt").read_text().strip() == "ok"
        assert_loop(lines, 3)
        assert_replay_verified(out)
