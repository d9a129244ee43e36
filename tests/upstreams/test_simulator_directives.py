"""Simulator directives (``SIM:text``, ``shell``, ``write``, ``parallel``, ``call``, ``script`` ...):
the scripted answers and tool calls they plan, against the real clients' tool lists.
"""

from __future__ import annotations

import json

import pytest

from tests.upstreams.simulator_helpers import (
    BASH, EXEC, capture_tools, chat, collect, error_of, frames, request, tool_turn, user,
)
from upstreams.simulator import SimConfig, Simulator
from upstreams.simulator.directives import find_prompt, tool_rounds


class TestDirectives:
    def test_no_directive(self):
        """Without a directive the answer quotes the prompt."""
        got = collect(frames(chat(Simulator(), request([user("What is   2+2?")]))))
        assert got["content"] == "Simulated answer to: What is 2+2?"
        assert got["finish"] == "stop" and got["calls"] == []

    def test_text(self):
        """SIM:text answers exactly the given words."""
        got = collect(frames(chat(Simulator(), request([user("SIM:text exactly  this")]))))
        assert got["content"] == "exactly  this"

    def test_shell_claude_tools(self):
        """Claude Code's tool list gets a Bash {command} call."""
        tools = capture_tools("claude-tool-1.json")
        got = collect(frames(chat(Simulator(), request([user("SIM:shell echo hello > out.txt")],
                                                       tools=tools))))
        assert [(c["name"], json.loads(c["arguments"])) for c in got["calls"]] == [
            ("Bash", {"command": "echo hello > out.txt"})]
        assert got["finish"] == "tool_calls"
        assert "echo hello > out.txt" in got["reasoning"]

    def test_shell_codex_tools(self):
        """Codex's tool list gets an exec_command {cmd} call."""
        tools = capture_tools("codex-tool-1.json")
        got = collect(frames(chat(Simulator(), request([user("SIM:shell ls -la")], tools=tools))))
        assert [(c["name"], json.loads(c["arguments"])) for c in got["calls"]] == [
            ("exec_command", {"cmd": "ls -la"})]

    @pytest.mark.parametrize(("name", "prop", "expected"), [
        ("shell_command", {"type": "string"}, "ls"),
        ("shell", {"type": "array", "items": {"type": "string"}}, ["bash", "-lc", "ls"]),
        ("local_shell", {"type": "array"}, ["bash", "-lc", "ls"]),
    ])
    def test_shell_other_tools(self, name, prop, expected):
        """shell_command takes a string, shell/local_shell an argv array."""
        tools = [{"type": "function", "function": {"name": name, "parameters": {
            "type": "object", "properties": {"command": prop}}}}]
        got = collect(frames(chat(Simulator(), request([user("SIM:shell ls")], tools=tools))))
        assert json.loads(got["calls"][0]["arguments"]) == {"command": expected}

    def test_shell_without_shell_tool(self):
        """No shell tool offered: a text answer says so."""
        got = collect(frames(chat(Simulator(), request([user("SIM:shell ls")]))))
        assert got["calls"] == [] and got["content"].startswith("No shell tool is available")

    def test_write_claude(self):
        """Claude Code's Write tool gets {file_path, content}."""
        tools = capture_tools("claude-write-file-1.json")
        got = collect(frames(chat(Simulator(), request(
            [user("SIM:write /tmp/a.txt hello world\\nsecond")], tools=tools))))
        assert [(c["name"], json.loads(c["arguments"])) for c in got["calls"]] == [
            ("Write", {"file_path": "/tmp/a.txt", "content": "hello world\nsecond\n"})]

    def test_write_codex_apply_patch(self):
        """Codex's apply_patch (a function with `input` upstream) gets an Add File patch."""
        tools = capture_tools("codex-write-file-1.json")
        got = collect(frames(chat(Simulator(), request([user("SIM:write notes.txt a b\\nc")],
                                                       tools=tools))))
        assert [(c["name"], json.loads(c["arguments"])) for c in got["calls"]] == [
            ("apply_patch", {"input": "*** Begin Patch\n*** Add File: notes.txt\n+a b\n+c\n"
                                      "*** End Patch\n"})]

    def test_write_shell_fallback(self):
        """Only a shell tool: the file is written with printf."""
        got = collect(frames(chat(Simulator(), request([user("SIM:write o.txt it's")],
                                                       tools=[EXEC]))))
        cmd = json.loads(got["calls"][0]["arguments"])["cmd"]
        assert cmd == "printf '%s' 'it'\"'\"'s\n' > o.txt"

    def test_parallel(self):
        """SIM:parallel makes several calls with interleaved fragments by index."""
        resp = chat(Simulator(), request([user("SIM:parallel ls -la /tmp || pwd || date -u")],
                                         tools=[BASH]))
        chunks = frames(resp)
        got = collect(chunks)
        assert [json.loads(c["arguments"])["command"] for c in got["calls"]] == [
            "ls -la /tmp", "pwd", "date -u"]
        assert len({c["id"] for c in got["calls"]}) == 3
        order = [tc["index"] for c in chunks if isinstance(c, dict) and c["choices"]
                 for tc in c["choices"][0]["delta"].get("tool_calls", [])]
        assert order != sorted(order)  # interleaved

    def test_parallel_not_interleaved(self):
        """interleave_parallel=False sends each call's fragments together."""
        resp = chat(Simulator(SimConfig(interleave_parallel=False)),
                    request([user("SIM:parallel ls || pwd")], tools=[BASH]))
        order = [tc["index"] for c in frames(resp) if isinstance(c, dict) and c["choices"]
                 for tc in c["choices"][0]["delta"].get("tool_calls", [])]
        assert order == sorted(order) and set(order) == {0, 1}

    def test_call(self):
        """SIM:call calls any offered tool with the given JSON arguments."""
        tools = capture_tools("claude-tool-1.json")
        got = collect(frames(chat(Simulator(), request(
            [user('SIM:call Read {"file_path": "/etc/hosts"}')], tools=tools))))
        assert got["calls"][0]["name"] == "Read"
        assert json.loads(got["calls"][0]["arguments"]) == {"file_path": "/etc/hosts"}

    def test_call_with_a_field_of_the_latest_result(self):
        """``{{result.KEY}}`` in SIM:call's arguments is that field of the latest tool result (the
        id Codex's spawn_agent returned, for wait_agent); a result without it is said, not guessed."""
        tools = [{"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
                 for name in ("spawn", "wait")]
        msgs = tool_turn("")
        msgs[0] = user('SIM:script call spawn {} ;; call wait {"targets": ["{{result.agent_id}}"]}')
        msgs[2]["content"] = '{"agent_id": "019a-agent", "nickname": "Dewey"}'
        got = collect(frames(chat(Simulator(), request(msgs, tools=tools))))
        assert [(c["name"], json.loads(c["arguments"])) for c in got["calls"]] == [
            ("wait", {"targets": ["019a-agent"]})]
        msgs[2]["content"] = "not json"
        got = collect(frames(chat(Simulator(), request(msgs, tools=tools))))
        assert got["calls"] == [] and "needs agent_id from the latest tool result" in got["content"]

    def test_prompt_in_markup_and_parts(self):
        """Directives are found anywhere in the last user message's text parts."""
        msg = {"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>\nnoise\n</system-reminder>\n"},
            {"type": "text", "text": "<task>SIM:text wrapped</task>"}]}
        got = collect(frames(chat(Simulator(), request([msg]))))
        assert got["content"] == "wrapped</task>"

    def test_script_steps(self):
        """SIM:script picks step k after k tool-result rounds, then 'done'."""
        sim = Simulator()
        prompt = user("SIM:script shell echo hello > out.txt ;; shell cat out.txt ;; text all good")
        msgs = [prompt]
        seen = []
        for k in range(4):
            got = collect(frames(chat(sim, request(msgs, tools=[BASH]))))
            if not got["calls"]:
                seen.append(got["content"])
                msgs += [{"role": "assistant", "content": got["content"], "reasoning_content": ""},
                         user(f"again {k}")]
                break
            call = got["calls"][0]
            seen.append(json.loads(call["arguments"])["command"])
            msgs += [{"role": "assistant", "content": got["content"] or None,
                      "reasoning_content": got["reasoning"],
                      "tool_calls": [{"id": call["id"], "type": "function", "function": {
                          "name": call["name"], "arguments": call["arguments"]}}]},
                     {"role": "tool", "tool_call_id": call["id"], "content": f"out {k}"}]
        assert seen == ["echo hello > out.txt", "cat out.txt", "all good"]
        # A later prompt without a directive is a fresh question.
        got = collect(frames(chat(sim, request(msgs, tools=[BASH]))))
        assert got["content"] == "Simulated answer to: again 2"

    def test_script_past_end_is_done(self):
        """A one-step directive answered by a tool result ends with 'done'."""
        msgs = tool_turn("")
        msgs[0] = user("SIM:shell ls")
        got = collect(frames(chat(Simulator(), request(msgs, tools=[BASH]))))
        assert got["content"] == "done" and got["finish"] == "stop"

    def test_note_after_tool_result_is_not_a_prompt(self):
        """A directive-less user note right after a tool result keeps the script going."""
        msgs = tool_turn("")
        msgs[0] = user("SIM:script shell ls ;; text second step")
        msgs.append(user("<system-reminder>note</system-reminder>"))
        assert find_prompt(msgs) == 0 and tool_rounds(msgs, 0) == 1
        got = collect(frames(chat(Simulator(), request(msgs, tools=[BASH]))))
        assert got["content"] == "second step"

    def test_parallel_round_counts_once(self):
        """Tool results of one parallel turn count as one script step."""
        msgs = [user("x"), {"role": "assistant", "content": None, "tool_calls": [
            {"id": i, "type": "function", "function": {"name": "Bash", "arguments": "{}"}}
            for i in ("a", "b")]}, {"role": "tool", "tool_call_id": "a", "content": "1"},
            {"role": "tool", "tool_call_id": "b", "content": "2"}]
        assert tool_rounds(msgs, 0) == 1

    def test_result(self):
        """SIM:script ... ;; result echoes the latest tool output."""
        msgs = tool_turn("")
        msgs[0] = user("SIM:script shell cat f ;; result")
        msgs[2]["content"] = "file body"
        got = collect(frames(chat(Simulator(), request(msgs, tools=[BASH]))))
        assert got["content"] == "Tool result: file body"

    def test_think(self):
        """SIM:think sets the reasoning text."""
        body = request([user("SIM:think pondering\nSIM:text ok")])
        got = collect(frames(chat(Simulator(), body)))
        assert got["reasoning"] == "pondering" and got["content"] == "ok"

    def test_tool_choice_none(self):
        """tool_choice none turns a planned call into text."""
        got = collect(frames(chat(Simulator(), request([user("SIM:shell ls")], tools=[BASH],
                                                       tool_choice="none"))))
        assert got["calls"] == [] and "disabled" in got["content"]

    def test_json_mode(self):
        """response_format json_object makes text answers JSON; a JSON object is answered as it is."""
        got = collect(frames(chat(Simulator(), request(
            [user("Reply in JSON.\nSIM:text hi")], response_format={"type": "json_object"}))))
        assert json.loads(got["content"]) == {"answer": "hi"}
        got = collect(frames(chat(Simulator(), request(
            [user('Reply in JSON.\nSIM:text {"a": [1, 2]}')], response_format={"type": "json_object"}))))
        assert got["content"] == '{"a": [1, 2]}'

    def test_json_mode_needs_the_word_json(self):
        """DeepSeek's JSON mode needs "json" in the system or user prompt: without it, a 400;
        json_schema (not enforced by DeepSeek) is not held to it."""
        status, message = error_of(Simulator(), request([user("SIM:text hi")],
                                                        response_format={"type": "json_object"}))
        assert status == 400 and "must contain the word 'json'" in message
        for messages in ([{"role": "system", "content": "Answer in Json."}, user("SIM:text hi")],
                         [user([{"type": "text", "text": "a JSON answer"}, {"type": "text", "text": "SIM:text hi"}])]):
            assert frames(chat(Simulator(), request(messages, response_format={"type": "json_object"})))
        assert frames(chat(Simulator(), request([user("SIM:text hi")], response_format={"type": "json_schema"})))

    def test_invalid_on_demand(self):
        """SIM:invalid replaces a text answer's content, or a tool answer's arguments, with its
        text; with ``once`` only the first time the prompt reaches the step, so a second try of
        the same request (a note appended as a user message) gets the planned answer."""
        sim = Simulator()
        prompt = user('SIM:invalid once {"a": \nSIM:text {"a": 1}')
        first = collect(frames(chat(sim, request([prompt]))))
        again = collect(frames(chat(sim, request([prompt, user("That was not JSON: answer again.")]))))
        assert (first["content"], again["content"]) == ('{"a":', '{"a": 1}')
        always = user('SIM:invalid {"b": 2}\nSIM:call Bash {"command": "ls"}')
        for _ in range(2):
            got = collect(frames(chat(sim, request([always], tools=[BASH]))))
            assert [c["arguments"] for c in got["calls"]] == ['{"b": 2}']

    def test_a_note_after_the_prompt_is_not_the_prompt(self):
        """A user message without a directive right after the prompt: the prompt is the one before."""
        assert find_prompt([user("SIM:text a"), user("please answer again")]) == 0
        assert find_prompt([user("hello"), {"role": "assistant", "content": "hi"}, user("again")]) == 2

    def test_unknown_directive_is_visible(self):
        """An unknown directive is answered with a text saying so, never ignored."""
        got = collect(frames(chat(Simulator(), request([user("SIM:dance now")]))))
        assert "SIM:dance" in got["content"]
