"""Mid-stream upstream failures with the real clients: each ends in the client's own retry.

Opt-in like ``test_real_clients.py`` (``pytest -m clients``, ``GW_CLIENTS``, root). The upstream
fails the second chat request of a tool loop (thinking on) once, after the gateway has sent the
200 and the first content, so the gateway cannot retry it any more: a dropped connection, a
stall past the upstream's ``idle_timeout_s`` (2 s here), or an error chunk. The gateway ends the
client's stream with the dialect's terminal error (Claude Code: ``event: error``
``overloaded_error`` / ``api_error``; Codex: ``response.failed`` with the retryable
``server_error``), the client sends the same request again, and the loop completes.

A drop in the middle of a long final answer (the thinking block done, text on screen) takes
each client's other path: Codex sends the request again (with the reasoning item it already
completed); Claude Code keeps the partial answer and asks for the rest ("Your response above was
cut off mid-stream. Resume ..."). Either way the session ends with the whole answer.

Codex runs with its own default retry settings (``request_max_retries`` 4, ``stream_max_retries``
5: codex-rs model-provider-info ``DEFAULT_*``), not the harness's 0. Claude Code writes its
retry decisions to a debug log (``DEBUG=1``, ``CLAUDE_CODE_DEBUG_LOGS_DIR``), read as evidence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.clients.harness import assert_loop, assert_replay_verified, client_events, run_client

pytestmark = pytest.mark.clients

PROMPT = "SIM:script shell echo one > one.txt ;; shell echo two > two.txt ;; text ok"
FAULTS = ["drop", "stall", "error_chunk"]
IDLE_S = 2.0
# The gateway's neutral code for each fault after the commit.
CODES = {"drop": "overloaded", "stall": "overloaded", "error_chunk": "api_error"}
# What the client is told (the gateway's message, which Codex quotes when it retries).
REASONS = {"drop": "connection lost mid-stream", "stall": f"no data for {IDLE_S:g}s (idle timeout)",
           "error_chunk": "Simulated mid-stream failure"}
# Pieces 10 ms apart: the fault (halfway through the answer) lands in a later read than the
# first content, so the client already has it; the stall outlasts the idle timeout.
SIM_OPTIONS = {"chunk_delay_s": 0.01, "stall_s": 3 * IDLE_S}
CODEX_DEFAULT_RETRIES = {"GW_CODEX_REQUEST_RETRIES": "4", "GW_CODEX_STREAM_RETRIES": "5"}


LONG = " ".join(f"word{i}" for i in range(60))
LONG_PROMPT = f"SIM:script shell echo one > one.txt ;; text {LONG}"


def run(tmp_path: Path, which: str, fault: str, env: dict[str, str],
        prompt: str = PROMPT) -> tuple[int, Path, list[dict[str, Any]]]:
    return run_client(tmp_path, which, prompt, [{"on_request": 2, "kind": fault}], sim_options=SIM_OPTIONS,
                      upstream={"idle_timeout_s": IDLE_S}, env=env)


def claude_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "claude-debug").mkdir()
    return {"DEBUG": "1", "CLAUDE_CODE_DEBUG_LOGS_DIR": str(tmp_path / "claude-debug")}


def claude_log(tmp_path: Path) -> str:
    return "\n".join(p.read_text() for p in (tmp_path / "claude-debug").glob("*.txt"))


def assert_client_retried(lines: list[dict[str, Any]], fault: str, *, turns: int = 3,
                          same: bool = True) -> dict[str, Any]:
    """The failed attempt reached the client (200, first byte sent, one gateway attempt, the
    fault's error), and the next request is the client sending the conversation again (``same``:
    unchanged; else with what it kept of the broken answer)."""
    generate = [line for line in lines if line["endpoint"] == "generate"]
    failed = [i for i, line in enumerate(generate) if line["error_code"]]
    assert len(failed) == 1 and len(generate) == turns + 1, [(g["status"], g["error_code"]) for g in generate]
    broken, again = generate[failed[0]], generate[failed[0] + 1]
    assert broken["status"] == 200 and broken["ttfb_ms"] is not None and broken["attempts"] == 1
    assert broken["error_code"] == CODES[fault] and not again["error_code"]
    if same:
        assert again["prompt_estimate"] == broken["prompt_estimate"]
    else:
        assert again["prompt_estimate"] > broken["prompt_estimate"]
    if fault == "stall":
        assert broken["duration_ms"] >= IDLE_S * 1000
    return broken


@pytest.mark.parametrize("fault", FAULTS)
def test_claude_code_retries_a_mid_stream_failure(tmp_path: Path, fault: str) -> None:
    code, out, lines = run(tmp_path, "claude", fault, claude_env(tmp_path))
    assert code == 0, (out / "client.err").read_text()[-2000:]
    assert (out / "workdir" / "one.txt").read_text() == "one\n"
    assert (out / "workdir" / "two.txt").read_text() == "two\n"
    result = client_events(out)[-1]
    assert result["type"] == "result" and result["subtype"] == "success" and not result["is_error"]
    assert result["result"] == "ok"
    assert_client_retried(lines, fault)
    assert_loop(lines, 3)
    assert_replay_verified(out)
    # Claude Code's own account: a mid-stream 529 streams again; a server error before any
    # output is sent again without streaming (its policy for api_error, not the gateway's).
    log = claude_log(tmp_path)
    wanted = ("falling back to non-streaming mode" if fault == "error_chunk"
              else "Mid-stream 529 before content — retrying streaming (1/")
    assert wanted in log, [line for line in log.splitlines() if "[WARN]" in line or "[ERROR]" in line]


@pytest.mark.parametrize("fault", FAULTS)
def test_codex_retries_a_mid_stream_failure(tmp_path: Path, fault: str) -> None:
    code, out, lines = run(tmp_path, "codex", fault, CODEX_DEFAULT_RETRIES)
    assert code == 0, (out / "client.err").read_text()[-2000:]
    assert (out / "workdir" / "one.txt").read_text() == "one\n"
    assert (out / "workdir" / "two.txt").read_text() == "two\n"
    assert (out / "last_message.txt").read_text().strip() == "ok"
    events = client_events(out)
    assert events[-1]["type"] == "turn.completed", events[-3:]
    assert_client_retried(lines, fault)
    assert_loop(lines, 3)
    assert_replay_verified(out)
    # Codex's own account: the stream error it retries, never the fatal "at capacity".
    errors = [e["message"] for e in events if e["type"] == "error"]
    assert not any("at capacity" in m for m in errors), errors
    retries = [m for m in errors if m.startswith("Reconnecting... 1/5 (stream disconnected")]
    assert len(retries) == 1, errors
    assert REASONS[fault] in retries[0], retries


def test_claude_code_resumes_an_answer_cut_mid_text(tmp_path: Path) -> None:
    """Text on screen: Claude Code keeps it and asks for the rest, which completes the answer."""
    code, out, lines = run(tmp_path, "claude", "drop", claude_env(tmp_path), LONG_PROMPT)
    assert code == 0, (out / "client.err").read_text()[-2000:]
    result = client_events(out)[-1]
    assert result["subtype"] == "success" and not result["is_error"] and result["result"] == LONG
    assert_client_retried(lines, "drop", turns=2, same=False)
    assert_replay_verified(out)
    assert "Mid-stream server error after 1 block(s) yielded" in claude_log(tmp_path)
    resumed = [e for e in client_events(out) if e["type"] == "user" and "cut off mid-stream" in str(e["message"])]
    assert len(resumed) == 1


def test_codex_retries_an_answer_cut_mid_text(tmp_path: Path) -> None:
    """Text on screen: Codex samples the turn again and the last message is the whole answer."""
    code, out, lines = run(tmp_path, "codex", "drop", CODEX_DEFAULT_RETRIES, LONG_PROMPT)
    assert code == 0, (out / "client.err").read_text()[-2000:]
    assert (out / "last_message.txt").read_text().strip() == LONG
    assert_client_retried(lines, "drop", turns=2, same=False)
    assert_replay_verified(out)
    errors = [e["message"] for e in client_events(out) if e["type"] == "error"]
    assert sum(m.startswith("Reconnecting... 1/5") for m in errors) == 1, errors
