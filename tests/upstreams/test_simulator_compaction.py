"""The simulator's answer to a client's own context compaction, and the script resuming after it
in the history each client rebuilds (Claude Code: summary + preserved last turn; Codex: kept user
messages + summary); also the ``read`` step and ``{step}`` in ``SIM:think``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.upstreams.simulator_helpers import user
from upstreams.simulator.directives import is_compaction, plan_answer

# The opening of each client's compaction prompt, as sent by Claude Code 2.1.330 and Codex 0.169.
CLAUDE_COMPACT = ("CRITICAL: Respond with TEXT ONLY. Do NOT call any tools.\n\n- Do NOT use "
                  "Read, Bash, Grep, Glob, Edit, Write, or ANY other tool.\n...\nYour task is "
                  "to create a detailed summary of the conversation so far, paying close "
                  "attention to the user's explicit requests and your previous actions.")
CODEX_COMPACT = ("You are performing a CONTEXT CHECKPOINT COMPACTION. Create a handoff summary for "
                 "another LLM that will resume the task.")
READ = {"Read": {"type": "object", "properties": {"file_path": {"type": "string"}}}}
EXEC = {"exec_command": {"type": "object", "properties": {"cmd": {"type": "string"}}}}
STEPS = [f"read /w/f{i}.txt" for i in range(6)] + ["text finished"]
PROMPT = "SIM:think step {step} \u00e9\nSIM:script " + " ;; ".join(STEPS)


def _round(i: int, path: str) -> list[dict[str, Any]]:
    call = {"id": f"c{i}", "type": "function",
            "function": {"name": "Read", "arguments": json.dumps({"file_path": path})}}
    return [{"role": "assistant", "content": None, "reasoning_content": "r", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"c{i}", "content": "x" * 100}]


def _history(rounds: range) -> list[dict[str, Any]]:
    msgs = [{"role": "system", "content": "sys"}, user(PROMPT)]
    for i in rounds:
        msgs += _round(i, f"/w/f{i}.txt")
    return msgs


def _plan(msgs: list[dict[str, Any]], tools: dict[str, Any] = READ):
    return plan_answer(msgs, tools, "auto", False)


def _read_path(plan) -> str:
    (call,) = plan.calls
    return json.loads(call.arguments)["file_path"]


class TestReadStep:
    def test_read_tool_else_cat(self):
        """read: Claude Code's Read {file_path}; Codex (no Read) gets a shell cat."""
        assert _read_path(_plan(_history(range(0)))) == "/w/f0.txt"
        plan = _plan(_history(range(0)), EXEC)
        assert plan.calls[0].name == "exec_command"
        assert json.loads(plan.calls[0].arguments) == {"cmd": "cat /w/f0.txt"}
        limited = {"exec_command": {"type": "object", "properties": {
            "cmd": {"type": "string"}, "max_output_tokens": {"type": "integer"}}}}
        args = json.loads(_plan(_history(range(0)), limited).calls[0].arguments)
        assert args["cmd"] == "cat /w/f0.txt" and args["max_output_tokens"] >= 50_000

    def test_think_step_number(self):
        """{step} in SIM:think is the script step, so every turn's reasoning differs."""
        assert _plan(_history(range(0))).reasoning == "step 0 \u00e9"
        assert _plan(_history(range(2))).reasoning == "step 2 \u00e9"


class TestCompaction:
    def _summary(self, msgs: list[dict[str, Any]], prompt: str) -> str:
        msgs = [*msgs, user(prompt)]
        assert is_compaction(msgs)
        plan = _plan(msgs)
        assert plan.calls == [] and plan.reasoning and plan.fault is None
        assert re.search(r"<analysis>.*</analysis>\s*<summary>.*</summary>", plan.content, re.S)
        return plan.content

    def test_summary_carries_remaining_steps(self):
        """Three rounds done: the summary holds steps 3.. and the think line, nothing done."""
        summary = self._summary(_history(range(3)), CLAUDE_COMPACT)
        assert "SIM:script " + " ;; ".join(STEPS[3:]) in summary
        assert "SIM:think step {step} \u00e9" in summary
        assert "f0.txt" not in summary

    def test_claude_code_history_resumes(self):
        """Claude Code: [summary user message, the preserved last turn, a reminder]: step 4."""
        summary = self._summary(_history(range(3)), CLAUDE_COMPACT)
        rebuilt = [{"role": "system", "content": "sys"},
                   user("This session is being continued from a previous conversation...\n"
                        f"Summary:\n{summary}"),
                   *_round(3, "/w/f3.txt"), user("<system-reminder>files</system-reminder>")]
        assert _read_path(_plan(rebuilt)) == "/w/f4.txt"

    def test_codex_history_resumes_and_compacts_again(self):
        """Codex: [the original prompt, the summary] resumes at step 3; a second compaction
        summarises from the first summary on; past the end the script says its final text."""
        summary = self._summary(_history(range(3)), CODEX_COMPACT)
        rebuilt = [{"role": "system", "content": "sys"}, user(PROMPT),
                   user(f"Another language model started to solve this problem...\n{summary}")]
        assert _read_path(_plan(rebuilt)) == "/w/f3.txt"
        rebuilt += _round(3, "/w/f3.txt") + _round(4, "/w/f4.txt")
        again = self._summary(rebuilt, CODEX_COMPACT)
        assert "SIM:script " + " ;; ".join(STEPS[5:]) in again
        final = [rebuilt[0], user(PROMPT), user(again), *_round(5, "/w/f5.txt")]
        assert _plan(final).content == "finished"

    def test_finished_script_and_no_directive(self):
        """A finished script's summary keeps it finished; a plain prompt is summarised."""
        assert "SIM:script text done" in self._summary(_history(range(7)), CODEX_COMPACT)
        plain = self._summary([user("What is 2+2?")], CLAUDE_COMPACT)
        assert "SIM:" not in plain and "What is 2+2?" in plain

    def test_directive_beside_marker_is_not_compaction(self):
        """A user prompt that scripts the simulator is never taken for a compaction request."""
        msgs = [user("SIM:text CONTEXT CHECKPOINT COMPACTION")]
        assert not is_compaction(msgs)
        assert _plan(msgs).content == "CONTEXT CHECKPOINT COMPACTION"
