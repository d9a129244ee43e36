"""The real, unmodified clients (`claude -p`, `codex exec`) through multi-step tool loops.

Opt-in: ``pytest -m clients`` with ``GW_CLIENTS`` naming an npm prefix holding
@anthropic-ai/claude-code@2.1.330 and @openai/codex@0.169.0. Needs root for ``unshare --net``: the
gateway and the client run in a namespace with only loopback (the clients probe the internet).
Success is the client finishing the loop, every turn, thinking on — not an HTTP 200.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.clients

HERE = Path(__file__).resolve().parent
CLIENTS = os.environ.get("GW_CLIENTS", "")

CONFIG = """
upstreams:
  sim:
    type: simulator
    options: {{verify_replay: true, faults: {faults}}}
pipelines:
  claude:
    mount: /sim
    client: anthropic
    stages: [thinking_filter, token_budget, tool_ids]
    upstream: sim
  codex:
    mount: /sim
    client: responses
    stages: [thinking_filter, token_budget, tool_ids]
    upstream: sim
"""


def _skip_reason() -> str | None:
    if not CLIENTS or not (Path(CLIENTS) / "node_modules" / ".bin" / "claude").exists():
        return "GW_CLIENTS does not name an npm prefix with claude and codex installed"
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return "needs root and unshare for a loopback-only network namespace"
    return None


def run_client(tmp_path: Path, which: str, prompt: str, faults: str = "[]") -> tuple[int, Path, list[dict]]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    config = tmp_path / "pipelines.yaml"
    config.write_text(CONFIG.format(faults=faults))
    out = tmp_path / "out"
    env = {**os.environ, "GW_PYTHON": sys.executable}
    proc = subprocess.run(
        ["unshare", "--net", "--", "bash", "-c", 'ip link set lo up && exec "$@"', "isolate",
         str(HERE / "run_client.sh"), CLIENTS, str(config), str(out), which, "/sim", prompt],
        env=env, timeout=300, capture_output=True, text=True)
    lines = [json.loads(line) for line in (out / "gateway.log").read_text().splitlines()
             if line.startswith("{") and '"request_finished"' in line]
    return proc.returncode, out, lines


def assert_loop(lines: list[dict], turns: int) -> None:
    generate = [line for line in lines if line["endpoint"] == "generate"]
    ok = [line for line in generate if line["status"] == 200 and not line["error_code"]]
    assert len(ok) == turns, [(line["status"], line["error_code"]) for line in generate]
    # Every turn after the first replays the previous turns' reasoning from the envelope.
    assert [line["replay_rung"] for line in ok[1:]] == ["envelope"] * (turns - 1)


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

    def test_survives_429_and_503(self, tmp_path: Path) -> None:
        """The upstream answers the 2nd request with 429 and the 3rd with 503: the gateway retries."""
        code, out, lines = run_client(
            tmp_path, "claude", "SIM:script shell echo one > one.txt ;; shell echo two > two.txt ;; text ok",
            faults='[{on_request: 2, kind: "429"}, {on_request: 3, kind: "503"}]')
        assert code == 0, (out / "client.err").read_text()[-2000:]
        assert (out / "workdir" / "two.txt").read_text() == "two\n"
        assert_loop(lines, 3)
        assert sum(line["attempts"] for line in lines if line["endpoint"] == "generate") >= 5


class TestCodex:
    def test_tool_loop_with_apply_patch(self, tmp_path: Path) -> None:
        """exec_command, then a freeform apply_patch write, then the final message."""
        code, out, lines = run_client(
            tmp_path, "codex", "SIM:script shell echo hello > out.txt ;; write notes.txt patched by codex ;; text All done.")
        assert code == 0, (out / "client.err").read_text()[-2000:]
        work = out / "workdir"
        assert (work / "out.txt").read_text() == "hello\n"
        assert (work / "notes.txt").read_text().strip() == "patched by codex"
        assert (out / "last_message.txt").read_text().strip() == "All done."
        assert_loop(lines, 3)

    def test_survives_429_and_503(self, tmp_path: Path) -> None:
        """The 2nd request gets 429 and the 3rd 503 upstream; Codex never sees them."""
        code, out, lines = run_client(
            tmp_path, "codex", "SIM:script shell echo one > one.txt ;; shell echo two > two.txt ;; text ok",
            faults='[{on_request: 2, kind: "429"}, {on_request: 3, kind: "503"}]')
        assert code == 0, (out / "client.err").read_text()[-2000:]
        assert (out / "workdir" / "two.txt").read_text() == "two\n"
        assert (out / "last_message.txt").read_text().strip() == "ok"
        assert_loop(lines, 3)
