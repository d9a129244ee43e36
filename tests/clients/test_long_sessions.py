"""Long real-client sessions: 30 file reads of 60 KB each, thinking on, past 1 MB of history,
through each client's own context compaction and on to the end of the script.

The simulator (its own server process, ``harness``) verifies every replayed tool-call turn's
``reasoning_content`` byte for byte and counts what it compared; it answers the client's
compaction prompt with a summary that carries the remaining script steps, so the loop resumes at
the step it had reached. The compaction itself is proven from the client's own record: Claude
Code's ``compact_boundary`` system message, Codex's ``compacted`` rollout item.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.clients.harness import client_events, run_client, sim_stats

pytestmark = pytest.mark.clients

FILES = 30
FILE_BYTES = 60_000
# Varied bytes in every turn's reasoning (non-ASCII, an emoji, quotes, a backslash, markup),
# different per step, ~1.2 KB: what is replayed must be exactly this.
THINK = ("Step {step}: reading the next file \u2014 \u00abgr\u00f6\u00dfer\u00bb \u6570\u636e "
         "\U0001f9e0 \"quoted\" back\\slash <tag> &amp; tab\there. ") * 12
FINAL = "All files read."
# Claude Code 2.1.330 compacts at window - min(max output, 20000) - 13000 tokens, the window
# being min(model window, CLAUDE_CODE_AUTO_COMPACT_WINDOW) (the env floor is 100k): 287,000
# tokens, ~1.1 MB of history at the simulator's ~3.9 bytes per token.
CLAUDE_ENV = {"CLAUDE_CODE_AUTO_COMPACT_WINDOW": "320000"}
# Codex 0.169 compacts (a local summarisation turn: the provider is not OpenAI) once the last
# response's total tokens reach min(model_auto_compact_token_limit, 90% of the window), and caps
# model_context_window at 272,000 for a model it has no metadata for: 244,800 tokens, ~980 KB
# of history; the request that follows adds a 60 KB file, so compaction sees > 1 MB. Tool output
# is kept up to tool_output_token_limit (default 10,000 tokens, less than one file).
CODEX_CONFIG = """model_context_window = 272000
model_auto_compact_token_limit = 244800
tool_output_token_limit = 20000"""


def _write_files(work: Path) -> None:
    rnd = random.Random(13)
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta"]
    for i in range(FILES):
        lines, size, k = [], 0, 0
        while size < FILE_BYTES:
            k += 1
            line = f"file {i:02d} line {k:05d}: " + " ".join(rnd.choices(words, k=10))
            lines.append(line)
            size += len(line) + 1
        (work / f"f{i:02d}.txt").write_text("\n".join(lines) + "\n")


def _session(tmp_path: Path, which: str,
             **kw: Any) -> tuple[int, Path, list[dict[str, Any]], list[Path]]:
    work = tmp_path / "out" / "workdir"
    paths = [work / f"f{i:02d}.txt" for i in range(FILES)]
    prompt = ("Read the files one after another.\nSIM:think " + THINK + "\nSIM:script "
              + " ;; ".join([f"read {p}" for p in paths] + [f"text {FINAL}"]))
    code, out, lines = run_client(tmp_path, which, prompt, prepare=_write_files, timeout=240, **kw)
    return code, out, lines, paths


def _assert_replayed_exactly(out: Path, lines: list[dict[str, Any]], compactions: int) -> None:
    """All turns completed; every emitted call came back and every tool-call turn of every
    request was compared byte for byte with what the simulator generated; > 1 MB of history."""
    generate = [line for line in lines if line["endpoint"] == "generate"]
    assert all(line["status"] == 200 and not line["error_code"] for line in generate), [
        (line["status"], line["error_code"]) for line in generate if line["status"] != 200]
    # The script's requests (31) and one summarisation request per compaction.
    assert len(generate) == FILES + 1 + compactions
    assert {line["replay_rung"] for line in generate} <= {"envelope", "not_needed"}
    stats = sim_stats(out)
    checks = stats["replay"]
    assert len(checks) == stats["chat_requests"] == len(generate)
    assert all(c["unknown_turns"] == 0 and c["verified_turns"] == c["tool_turns"] for c in checks)
    # The gateway restored every request's reasoning from its envelopes; only requests with no
    # tool-call turn in their history (the first, Codex's first after compaction) needed none.
    rungs = [line["replay_rung"] for line in generate]
    assert [r == "envelope" for r in rungs] == [c["tool_turns"] > 0 for c in checks], rungs
    assert stats["emitted_calls"] == stats["verified_calls"] == FILES
    assert sum(c["verified_turns"] for c in checks) > 2 * FILES
    # Each verified turn compared at least the ~1.2 KB reasoning of THINK (for step 0).
    shortest = len(THINK.strip().replace("{step}", "0").encode())
    assert all(c["verified_bytes"] >= c["verified_turns"] * shortest for c in checks)
    assert stats["max_request_bytes"] > 1_000_000, stats["max_request_bytes"]


class TestClaudeCodeLong:
    def test_reads_past_1mb_through_auto_compact(self, tmp_path: Path) -> None:
        code, out, lines, paths = _session(tmp_path, "claude", env=CLAUDE_ENV)
        assert code == 0, (out / "client.err").read_text()[-2000:]
        events = client_events(out)
        result = events[-1]
        assert result["type"] == "result" and result["subtype"] == "success", result
        assert result["result"] == FINAL
        boundaries = [i for i, e in enumerate(events)
                      if e.get("type") == "system" and e.get("subtype") == "compact_boundary"]
        assert boundaries, "Claude Code never compacted"
        assert all(events[i]["compact_metadata"]["trigger"] == "auto" for i in boundaries)
        reads = [(i, block["input"]["file_path"]) for i, e in enumerate(events)
                 if e.get("type") == "assistant" for block in e["message"]["content"]
                 if block.get("type") == "tool_use"]
        # Every file read once, in order: the script resumed at the right step.
        assert [path for _, path in reads] == [str(p) for p in paths]
        results = [i for i, e in enumerate(events) if e.get("type") == "user"
                   and any(b.get("type") == "tool_result" and not b.get("is_error")
                           for b in e["message"]["content"] if isinstance(b, dict))]
        assert len(results) == FILES
        assert all(len(_text(b["content"])) >= FILE_BYTES for i in results
                   for b in events[i]["message"]["content"] if b.get("type") == "tool_result")
        assert sum(i > boundaries[-1] for i in results) >= 3, "too few turns after compaction"
        _assert_replayed_exactly(out, lines, len(boundaries))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def _rollout(out: Path) -> list[dict[str, Any]]:
    (path,) = (out / "home" / "sessions").rglob("rollout-*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class TestCodexLong:
    def test_reads_past_1mb_through_auto_compact(self, tmp_path: Path) -> None:
        code, out, lines, paths = _session(tmp_path, "codex", codex_config=CODEX_CONFIG)
        assert code == 0, (out / "client.err").read_text()[-2000:]
        assert (out / "last_message.txt").read_text().strip() == FINAL
        commands = [e["item"]["command"] for e in client_events(out)
                    if e.get("type") == "item.completed"
                    and e["item"].get("type") == "command_execution"]
        assert len(commands) == FILES
        assert all(str(p) in cmd for p, cmd in zip(paths, commands, strict=True)), commands
        # Codex exec's --json has no compaction item; its session rollout records it.
        rollout = _rollout(out)
        compacted = [i for i, item in enumerate(rollout) if item["type"] == "compacted"]
        assert compacted, "Codex never compacted"
        outputs = [i for i, item in enumerate(rollout) if item["type"] == "response_item"
                   and item["payload"].get("type") == "function_call_output"]
        assert len(outputs) == FILES
        # Whole files: Codex kept every output untruncated.
        assert all(len(_text(rollout[i]["payload"]["output"])) >= FILE_BYTES
                   and "truncated" not in _text(rollout[i]["payload"]["output"]) for i in outputs)
        assert sum(i > compacted[-1] for i in outputs) >= 3, "too few turns after compaction"
        _assert_replayed_exactly(out, lines, len(compacted))
