"""Tests for the DeepSeek simulator engine: validation 400s, directives, streaming shapes,
budgets, usage and faults, all sans-IO through ``Simulator.respond``.

The transport and the HTTP server are tested in ``test_simulator_io.py``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import pytest

from upstreams.simulator import SimConfig, Simulator, SimResponse
from upstreams.simulator.directives import find_prompt, tool_rounds
from upstreams.simulator.render import arg_pieces, text_pieces
from upstreams.simulator.testing import accumulate, chat_tools, sse_chunks

CAPTURES = Path(__file__).resolve().parents[2].parent / "shared" / "captures"
BASH = {"type": "function", "function": {"name": "Bash", "parameters": {
    "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}
EXEC = {"type": "function", "function": {"name": "exec_command", "parameters": {
    "type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}}


@cache
def _capture(name: str) -> dict[str, Any]:
    return json.loads((CAPTURES / name).read_text())


def capture_tools(name: str) -> list[dict[str, Any]]:
    """A capture's client tool list as the Chat function tools a gateway sends upstream."""
    return chat_tools(_capture(name)["body"]["tools"])


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def request(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "deepseek-v4-pro", "messages": messages, "stream": True, **extra}


def chat(sim: Simulator, body: dict[str, Any] | bytes,
         headers: dict[str, str] | None = None) -> SimResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return sim.respond("POST", "/v1/chat/completions", headers or {}, raw)


def frames(resp: SimResponse) -> list[Any]:
    assert resp.status == 200, resp.chunks
    return sse_chunks(d for _, d in resp.chunks)


def collect(chunks: list[Any]) -> dict[str, Any]:
    return accumulate(chunks)


REPLAY = "The `reasoning_content` in the thinking mode must be passed back to the API."


def error_of(sim: Simulator, body: dict | bytes, **kw) -> tuple[int, str]:
    resp = chat(sim, body, **kw)
    err = json.loads(b"".join(d for _, d in resp.chunks))["error"]
    return resp.status, err["message"]


def tool_turn(reasoning: object = "thinking", *, key: str = "reasoning_content",
              call_id: str = "call_1") -> list[dict]:
    assistant: dict = {"role": "assistant", "content": None, "tool_calls": [
        {"id": call_id, "type": "function",
         "function": {"name": "Bash", "arguments": '{"command":"ls"}'}}]}
    if reasoning is not ...:
        assistant[key] = reasoning
    return [user("run ls"), assistant, {"role": "tool", "tool_call_id": call_id, "content": "a"}]


class TestValidation:
    def test_malformed_json(self):
        """Malformed JSON is a 400 with the exact DeepSeek error object shape."""
        resp = chat(Simulator(), b"{nope")
        assert resp.status == 400
        body = json.loads(resp.chunks[0][1])
        assert set(body["error"]) == {"message", "type", "param", "code"}
        assert body["error"]["type"] == "invalid_request_error"
        assert body["error"]["code"] == "invalid_request_error"
        assert body["error"]["param"] is None
        assert body["error"]["message"].startswith("Failed to parse the request body as JSON")

    @pytest.mark.parametrize("missing", ["model", "messages"])
    def test_missing_field(self, missing):
        """A missing model or messages field is reported like serde does."""
        body = request([user("hi")])
        del body[missing]
        assert error_of(Simulator(), body) == (
            400, f"Failed to deserialize the JSON body into the target type: missing field "
                 f"`{missing}`")

    def test_unknown_model(self):
        """Unknown models are 'Model Not Exist'; config.models extends the accepted set."""
        unknown = request([user("hi")], model="gpt-5")
        assert error_of(Simulator(), unknown) == (400, "Model Not Exist")
        ok = chat(Simulator(SimConfig(models=("gpt-5",))), request([user("hi")], model="gpt-5"))
        assert ok.status == 200

    @pytest.mark.parametrize("model", ["deepseek-v4-pro", "deepseek-v4-flash", "deepseek-flash",
                                       "deepseek-chat", "deepseek-reasoner"])
    def test_known_models(self, model):
        """All of DeepSeek's model names are accepted."""
        assert chat(Simulator(), request([user("hi")], model=model)).status == 200

    def test_unknown_role(self):
        """A developer message is rejected with serde's unknown-variant wording."""
        status, message = error_of(Simulator(), request(
            [{"role": "developer", "content": "x"}, user("hi")]))
        assert status == 400
        assert "messages[0].role: unknown variant `developer`" in message
        assert "`system`, `user`, `assistant`, `tool`" in message

    def test_reasoning_content_key_absent(self):
        """Thinking on by default + a tool-call turn without the key is DeepSeek's 400."""
        assert error_of(Simulator(), request(tool_turn(...))) == (400, REPLAY)

    def test_reasoning_content_empty_string_accepted(self):
        """Presence is checked, not content: "" passes."""
        assert chat(Simulator(), request(tool_turn(""))).status == 200

    def test_reasoning_content_null_is_absent(self):
        """A null reasoning_content counts as absent (an Option on DeepSeek's side)."""
        assert error_of(Simulator(), request(tool_turn(None))) == (400, REPLAY)

    def test_reasoning_rule_thinking_explicit(self):
        """thinking enabled → 400; thinking disabled → accepted without the key."""
        enabled = request(tool_turn(...), thinking={"type": "enabled"})
        assert error_of(Simulator(), enabled)[0] == 400
        resp = chat(Simulator(), request(tool_turn(...), thinking={"type": "disabled"}))
        assert resp.status == 200

    def test_reasoning_rule_follows_thinking_default(self):
        """With thinking_default off and no thinking field, the rule does not apply."""
        sim = Simulator(SimConfig(thinking_default=False))
        assert chat(sim, request(tool_turn(...))).status == 200

    def test_replay_check_all_assistant(self):
        """replay_check=all_assistant also wants the key on plain assistant messages."""
        sim = Simulator(SimConfig(replay_check="all_assistant"))
        msgs = [user("a"), {"role": "assistant", "content": "b"}, user("c")]
        assert error_of(sim, request(msgs)) == (400, REPLAY)
        msgs[1]["reasoning_content"] = ""
        assert chat(sim, request(msgs)).status == 200

    def test_reasoning_field_reasoning(self):
        """With reasoning_field=reasoning the replay check looks at `reasoning`."""
        sim = Simulator(SimConfig(reasoning_field="reasoning"))
        status, message = error_of(sim, request(tool_turn("x")))
        assert status == 400 and "`reasoning`" in message
        assert chat(sim, request(tool_turn("x", key="reasoning"))).status == 200

    @pytest.mark.parametrize(("effort", "status"), [("low", 200), ("high", 200), ("max", 200),
                                                    ("medium", 400), ("xhigh", 400)])
    def test_reasoning_effort(self, effort, status):
        """Only low/high/max reach DeepSeek unmapped."""
        assert chat(Simulator(), request([user("hi")], reasoning_effort=effort)).status == status

    def test_thinking_type_variant(self):
        """thinking.type must be enabled/disabled (Anthropic's adaptive is a gateway bug)."""
        body = request([user("hi")], thinking={"type": "adaptive"})
        status, message = error_of(Simulator(), body)
        assert status == 400 and "unknown variant `adaptive`" in message

    @pytest.mark.parametrize(("value", "status"), [(0, 400), (1, 200), (393216, 200),
                                                   (393217, 400)])
    def test_max_tokens_range(self, value, status):
        """max_tokens must be in [1, 393216]."""
        resp = chat(Simulator(), request([user("hi")], max_tokens=value))
        assert resp.status == status
        if status == 400:
            assert b"the valid range of max_tokens is [1, 393216]" in resp.chunks[0][1]

    def test_tool_message_without_matching_call(self):
        """A tool message must answer a call of the preceding assistant message."""
        msgs = tool_turn("")
        msgs[2]["tool_call_id"] = "call_other"
        status, message = error_of(Simulator(), request(msgs))
        assert status == 400 and "must be a response to a preceding message" in message

    def test_unanswered_tool_call(self):
        """A tool call not answered before the next user message is a 400."""
        msgs = tool_turn("")[:2] + [user("next")]
        status, message = error_of(Simulator(), request(msgs))
        assert status == 400
        assert "must be followed by tool messages responding to each 'tool_call_id'" in message
        assert "call_1" in message

    def test_unanswered_trailing_tool_call(self):
        """A trailing assistant tool call without results is a 400 too."""
        assert error_of(Simulator(), request(tool_turn("")[:2]))[0] == 400

    def test_parallel_tool_results_accepted(self):
        """Two calls answered by two tool messages, in any order, pass."""
        calls = [{"id": i, "type": "function", "function": {"name": "Bash", "arguments": "{}"}}
                 for i in ("a", "b")]
        msgs = [user("x"),
                {"role": "assistant", "content": "", "reasoning_content": "", "tool_calls": calls},
                {"role": "tool", "tool_call_id": "b", "content": "1"},
                {"role": "tool", "tool_call_id": "a", "content": "2"}]
        assert chat(Simulator(), request(msgs)).status == 200

    def test_tool_content_must_be_string(self):
        """Tool output as a list of parts is rejected (DeepSeek wants a string)."""
        msgs = tool_turn("")
        msgs[2]["content"] = [{"type": "text", "text": "a"}]
        status, message = error_of(Simulator(), request(msgs))
        assert status == 400 and "messages[2].content: invalid type: sequence" in message

    def test_arguments_must_be_string(self):
        """Tool call arguments as an object (not JSON text) are rejected."""
        msgs = tool_turn("")
        msgs[1]["tool_calls"][0]["function"]["arguments"] = {"command": "ls"}
        status, message = error_of(Simulator(), request(msgs))
        assert status == 400 and "function.arguments: invalid type: map" in message

    def test_mid_system(self):
        """A late system message passes by default and is a 400 with reject_mid_system."""
        msgs = [user("a"), {"role": "system", "content": "late"}]
        assert chat(Simulator(), request(msgs)).status == 200
        assert chat(Simulator(SimConfig(reject_mid_system=True)), request(msgs)).status == 400

    @pytest.mark.parametrize(("name", "status"), [("a" * 64, 200), ("a" * 65, 400),
                                                  ("mcp__srv.tool", 400), ("ok-name_1", 200)])
    def test_tool_name_pattern(self, name, status):
        """Tool names must match ^[a-zA-Z0-9_-]{1,64}$."""
        tools = [{"type": "function", "function": {"name": name, "parameters": {}}}]
        assert chat(Simulator(), request([user("hi")], tools=tools)).status == status

    def test_custom_tool_type_rejected(self):
        """A Responses-style custom tool forwarded as-is is a 400."""
        tools = [{"type": "custom", "name": "apply_patch"}]
        status, message = error_of(Simulator(), request([user("hi")], tools=tools))
        assert status == 400 and "tools[0].type: unknown variant `custom`" in message

    @pytest.mark.parametrize(("count", "status"), [(16, 200), (17, 400)])
    def test_stop_count(self, count, status):
        """At most 16 stop sequences."""
        stop = [f"s{i}" for i in range(count)]
        assert chat(Simulator(), request([user("hi")], stop=stop)).status == status

    @pytest.mark.parametrize(("value", "status"), [("user_1-A", 200), ("a b", 400),
                                                   ("x" * 513, 400), ('{"id":1}', 400)])
    def test_user_pattern(self, value, status):
        """`user` must match [A-Za-z0-9_-]{1,512}."""
        assert chat(Simulator(), request([user("hi")], user=value)).status == status

    def test_context_too_long(self):
        """Prompt estimate + max_tokens above the window is a 400 naming both numbers."""
        sim = Simulator(SimConfig(context_window=100))
        status, message = error_of(sim, request([user("x" * 600)]))
        assert status == 400 and "maximum context length is 100 tokens" in message
        status, message = error_of(sim, request([user("hi")], max_tokens=95))
        assert status == 400 and "95 in the completion" in message

    def test_forced_tool_choice_with_thinking(self):
        """Thinking mode rejects required / named tool_choice; disabled thinking allows it."""
        tools = [BASH]
        for choice in ("required", {"type": "function", "function": {"name": "Bash"}}):
            body = request([user("hi")], tools=tools, tool_choice=choice)
            assert error_of(Simulator(), body) == (
                400, "Thinking mode does not support this tool_choice")
        resp = chat(Simulator(), request([user("hi")], tools=tools, tool_choice="required",
                                         thinking={"type": "disabled"}))
        assert collect(frames(resp))["calls"][0]["name"] == "Bash"

    def test_named_tool_choice_must_exist(self):
        """A named tool_choice must name an offered function."""
        body = request([user("hi")], tools=[BASH], thinking={"type": "disabled"},
                       tool_choice={"type": "function", "function": {"name": "Nope"}})
        assert error_of(Simulator(), body)[0] == 400

    def test_auth(self):
        """With api_key set, a missing or wrong Bearer key is 401 authentication_error."""
        sim = Simulator(SimConfig(api_key="sk-secret"))
        for headers in ({}, {"Authorization": "Bearer sk-wrong"}):
            resp = chat(sim, request([user("hi")]), headers=headers)
            err = json.loads(resp.chunks[0][1])["error"]
            assert resp.status == 401 and err["type"] == "authentication_error"
            assert "Authentication Fails" in err["message"]
        ok = chat(sim, request([user("hi")]), headers={"Authorization": "Bearer sk-secret"})
        assert ok.status == 200
        assert sim.respond("GET", "/models", {}, b"").status == 401


class TestRouting:
    def test_paths(self):
        """Both chat paths answer; /models lists DeepSeek models; others are 404 JSON."""
        sim = Simulator(SimConfig(models=("extra",)))
        body = json.dumps(request([user("hi")])).encode()
        assert sim.respond("POST", "/chat/completions", {}, body).status == 200
        assert sim.respond("POST", "/v1/chat/completions", {}, body).status == 200
        models = json.loads(sim.respond("GET", "/v1/models", {}, b"").chunks[0][1])
        assert models["object"] == "list"
        ids = [m["id"] for m in models["data"]]
        assert "deepseek-v4-pro" in ids and "extra" in ids
        assert all(m["object"] == "model" and m["owned_by"] == "deepseek" for m in models["data"])
        missing = sim.respond("POST", "/v1/responses", {}, body)
        assert missing.status == 404
        assert json.loads(missing.chunks[0][1])["error"]["message"]

    def test_requests_recorded(self):
        """Decoded request bodies are kept, bounded by config.history."""
        sim = Simulator(SimConfig(history=2))
        for i in range(3):
            chat(sim, request([user(f"q{i}")]))
        assert [r["messages"][0]["content"] for r in sim.requests] == ["q1", "q2"]
        assert sim.chat_requests == 3


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
        """response_format json_object makes text answers JSON."""
        got = collect(frames(chat(Simulator(), request(
            [user("SIM:text hi")], response_format={"type": "json_object"}))))
        assert json.loads(got["content"]) == {"answer": "hi"}

    def test_unknown_directive_is_visible(self):
        """An unknown directive is answered with a text saying so, never ignored."""
        got = collect(frames(chat(Simulator(), request([user("SIM:dance now")]))))
        assert "SIM:dance" in got["content"]


class TestStreamShape:
    def test_chunk_envelope(self):
        """Every chunk has DeepSeek's envelope; role first; reasoning before content; [DONE]."""
        resp = chat(Simulator(), request([user("SIM:shell ls")], tools=[BASH],
                                         stream_options={"include_usage": True}))
        assert resp.status == 200
        assert (b"content-type", b"text/event-stream; charset=utf-8") in resp.headers
        chunks = frames(resp)
        assert chunks[-1] == "[DONE]"
        data = chunks[:-1]
        assert len({c["id"] for c in data}) == 1
        for c in data:
            assert c["object"] == "chat.completion.chunk" and c["model"] == "deepseek-v4-pro"
            assert isinstance(c["created"], int) and "usage" in c
            for choice in c["choices"]:
                assert set(choice) == {"index", "delta", "logprobs", "finish_reason"}
        assert data[0]["choices"][0]["delta"]["role"] == "assistant"
        kinds = []
        for c in data:
            if not c["choices"]:
                continue
            d = c["choices"][0]["delta"]
            kind = ("reasoning" if d.get("reasoning_content") else "content" if d.get("content")
                    else "tool" if d.get("tool_calls") else None)
            if kind and (not kinds or kinds[-1] != kind):
                kinds.append(kind)
        assert kinds == ["reasoning", "content", "tool"]
        tool_frags = [d["choices"][0]["delta"]["tool_calls"][0] for d in data
                      if d["choices"] and d["choices"][0]["delta"].get("tool_calls")]
        head, rest = tool_frags[0], tool_frags[1:]
        assert head["id"].startswith("call_00_") and head["type"] == "function"
        assert head["function"] == {"name": "Bash", "arguments": ""}
        assert len(rest) >= 2 and all(set(f) == {"index", "function"} for f in rest)
        finish = [c for c in data if c["choices"] and c["choices"][0]["finish_reason"]]
        assert len(finish) == 1 and finish[0]["choices"][0]["finish_reason"] == "tool_calls"
        assert data[-1]["choices"] == [] and data[-1]["usage"]["total_tokens"] > 0
        assert all(c["usage"] is None for c in data[:-1])

    def test_no_usage_without_include_usage(self):
        """Without stream_options.include_usage there is no usage chunk."""
        chunks = frames(chat(Simulator(), request([user("hi")])))
        assert all("usage" not in c for c in chunks[:-1]) and chunks[-2]["choices"]

    def test_usage_on_finish_chunk(self):
        """usage_on_finish_chunk puts usage beside finish_reason (some servers)."""
        chunks = frames(chat(Simulator(SimConfig(usage_on_finish_chunk=True)),
                             request([user("hi")], stream_options={"include_usage": True})))
        assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
        assert chunks[-2]["usage"]["prompt_tokens"] > 0

    def test_thinking_off(self):
        """thinking disabled: no reasoning field at all."""
        resp = chat(Simulator(), request([user("hi")], thinking={"type": "disabled"}))
        assert b"reasoning" not in b"".join(d for _, d in resp.chunks)
        assert collect(frames(resp))["content"].startswith("Simulated answer")

    def test_reasoning_field_variant(self):
        """reasoning_field=reasoning imitates vLLM/Ollama output."""
        resp = chat(Simulator(SimConfig(reasoning_field="reasoning")), request([user("hi")]))
        raw = b"".join(d for _, d in resp.chunks)
        assert b'"reasoning":"' in raw and b"reasoning_content" not in raw

    def test_non_streaming_matches_stream(self):
        """The JSON answer carries what the stream carries."""
        body = request([user("SIM:shell ls")], tools=[BASH])
        streamed = collect(frames(chat(Simulator(), body)))
        resp = chat(Simulator(), {**body, "stream": False})
        doc = json.loads(resp.chunks[0][1])
        assert doc["object"] == "chat.completion"
        msg = doc["choices"][0]["message"]
        assert msg["reasoning_content"] == streamed["reasoning"]
        assert msg["content"] == streamed["content"]
        assert [tc["function"] for tc in msg["tool_calls"]] == [
            {"name": c["name"], "arguments": c["arguments"]} for c in streamed["calls"]]
        assert doc["choices"][0]["finish_reason"] == "tool_calls"
        assert int(dict(resp.headers)[b"content-length"]) == len(resp.chunks[0][1])

    def test_splitters_roundtrip(self):
        """Text and argument splitting never lose or reorder characters."""
        text = "  leading and   trailing spaces\nnew line "
        assert "".join(text_pieces(text)) == text
        args = json.dumps({"command": 'echo "a\\b" > c', "x": [1, 2]})
        pieces = arg_pieces(args)
        assert len(pieces) >= 2 and "".join(pieces) == args


class TestBudgetAndUsage:
    def test_tiny_budget_reasoning_only(self):
        """A tiny max_tokens goes to reasoning: empty content, finish length."""
        resp = chat(Simulator(), request([user("SIM:text a long answer here")], max_tokens=3,
                                         stream_options={"include_usage": True}))
        got = collect(frames(resp))
        assert got["finish"] == "length" and got["content"] == "" and got["reasoning"]
        use = got["usage"]
        assert use["completion_tokens"] == use["completion_tokens_details"]["reasoning_tokens"]
        assert use["completion_tokens"] <= 3

    def test_content_cut(self):
        """A budget past the reasoning cuts the content."""
        body = request([user("SIM:text " + "word " * 50)], thinking={"type": "disabled"},
                       max_tokens=10, stream_options={"include_usage": True})
        got = collect(frames(chat(Simulator(), body)))
        assert got["finish"] == "length" and 0 < len(got["content"]) < 250
        assert got["usage"]["completion_tokens"] <= 10

    def test_tool_call_cut(self):
        """A budget ending inside the tool call gives truncated arguments and length."""
        body = request([user('SIM:call Bash {"command": "' + "x" * 200 + '"}')], tools=[BASH],
                       thinking={"type": "disabled"}, max_tokens=40)
        got = collect(frames(chat(Simulator(), body)))
        assert got["finish"] == "length"
        assert got["calls"] and len(got["calls"][0]["arguments"]) < 200

    def test_usage_fields(self):
        """Usage has DeepSeek's fields; prompt_tokens estimates tools+messages bytes / 4."""
        body = request([user("hello")], tools=[BASH], stream_options={"include_usage": True})
        use = collect(frames(chat(Simulator(), body)))["usage"]
        expected = len(msgspec.json.encode([body["tools"], body["messages"]])) // 4
        assert use["prompt_tokens"] == expected
        assert use["total_tokens"] == use["prompt_tokens"] + use["completion_tokens"]
        assert use["prompt_cache_hit_tokens"] + use["prompt_cache_miss_tokens"] == expected
        assert use["prompt_tokens_details"] == {"cached_tokens": use["prompt_cache_hit_tokens"]}
        assert use["completion_tokens_details"]["reasoning_tokens"] > 0

    def test_cache_hits_grow_with_shared_prefix(self):
        """A continuation of the same conversation hits the cache in 64-token units."""
        sim = Simulator()
        system = {"role": "system", "content": "You are a helpful agent. " * 200}
        first = request([system, user("q1")], stream_options={"include_usage": True})
        use1 = collect(frames(chat(sim, first)))["usage"]
        assert use1["prompt_cache_hit_tokens"] == 0
        second = request([system, user("q1"), {"role": "assistant", "content": "a1"}, user("q2")],
                         stream_options={"include_usage": True})
        use2 = collect(frames(chat(sim, second)))["usage"]
        hit = use2["prompt_cache_hit_tokens"]
        assert hit > 0 and hit % 64 == 0 and hit < use2["prompt_tokens"]
        assert hit >= use1["prompt_tokens"] - 64


class TestFaults:
    def test_schedule(self):
        """Scheduled faults hit exactly the numbered chat requests."""
        sim = Simulator(SimConfig(faults=[{"on_request": 2, "kind": "429"},
                                          {"on_request": 3, "kind": "503"}]))
        statuses = [chat(sim, request([user("hi")])) for _ in range(4)]
        assert [r.status for r in statuses] == [200, 429, 503, 200]
        assert (b"retry-after", b"1") in statuses[1].headers
        assert json.loads(statuses[2].chunks[0][1])["error"]["message"]

    def test_bad_schedule(self):
        """Unknown kinds and duplicate request numbers fail at construction."""
        with pytest.raises(ValueError, match="bad scheduled fault"):
            Simulator(SimConfig(faults=[{"on_request": 1, "kind": "explode"}]))
        with pytest.raises(ValueError, match="two faults"):
            Simulator(SimConfig(faults=[{"on_request": 1, "kind": "500"},
                                        {"on_request": 1, "kind": "503"}]))

    @pytest.mark.parametrize("kind", ["429", "500", "503"])
    def test_http_directive(self, kind):
        """SIM:fault with an HTTP kind answers that status."""
        assert chat(Simulator(), request([user(f"SIM:fault {kind}")])).status == int(kind)

    def test_drop(self):
        """drop: some frames, then the connection is cut before the finish chunk."""
        resp = chat(Simulator(), request([user("SIM:fault drop\nSIM:text one two three four")]))
        assert resp.drop_after is not None and 0 < resp.drop_after < len(resp.chunks)
        sent = b"".join(d for _, d in resp.chunks[:resp.drop_after])
        assert b"finish_reason\":\"stop" not in sent and b"[DONE]" not in sent

    def test_truncate(self):
        """truncate: a clean end without finish_reason or [DONE]."""
        resp = chat(Simulator(), request([user("SIM:fault truncate")]))
        chunks = frames(resp)
        assert resp.drop_after is None and "[DONE]" not in chunks
        assert all(c["choices"][0]["finish_reason"] is None for c in chunks)

    def test_badchunk(self):
        """badchunk: one data line is not JSON; the stream still ends with [DONE]."""
        resp = chat(Simulator(), request([user("SIM:fault badchunk")]))
        bad = [d for _, d in resp.chunks if d.startswith(b"data: {")]
        broken = []
        for d in bad:
            try:
                json.loads(d[6:])
            except ValueError:
                broken.append(d)
        assert len(broken) == 1 and resp.chunks[-1][1] == b"data: [DONE]\n\n"

    def test_keepalive_and_slow_and_stall(self):
        """keepalive adds comments first; slow delays every piece; stall one long pause."""
        cfg = SimConfig(slow_chunk_s=0.5, stall_s=7.0)
        keep = chat(Simulator(cfg), request([user("SIM:fault keepalive")]))
        assert [d for _, d in keep.chunks[:3]] == [b": keep-alive\n\n"] * 3
        slow = chat(Simulator(cfg), request([user("SIM:fault slow")]))
        assert {t for t, _ in slow.chunks} == {0.5}
        stall = chat(Simulator(cfg), request([user("SIM:fault stall")]))
        assert sorted(t for t, _ in stall.chunks)[-2:] == [0.0, 7.0]

    def test_config_keepalives_and_delay(self):
        """keepalive_comments and chunk_delay_s shape every stream."""
        resp = chat(Simulator(SimConfig(keepalive_comments=2, chunk_delay_s=0.1)),
                    request([user("hi")]))
        assert [d for _, d in resp.chunks[:2]] == [b": keep-alive\n\n"] * 2
        assert all(t == 0.1 for t, _ in resp.chunks[2:])

    def test_overload(self):
        """overload ends with DeepSeek's insufficient_system_resource."""
        body = request([user("SIM:fault overload\nSIM:text a b c d")])
        got = collect(frames(chat(Simulator(), body)))
        assert got["finish"] == "insufficient_system_resource"

    def test_error_chunk(self):
        """error_chunk ends the stream with a top-level error object."""
        chunks = frames(chat(Simulator(), request([user("SIM:fault error_chunk")])))
        assert "error" in chunks[-1] and "[DONE]" not in chunks

    def test_once(self):
        """fault ... once fails the first attempt only, so a client retry succeeds."""
        sim = Simulator()
        body = request([user("SIM:fault 503 once\nSIM:text ok")])
        assert [chat(sim, body).status for _ in range(3)] == [503, 200, 200]

    def test_json_faults(self):
        """Non-streaming: drop cuts the body under its content-length; truncate omits it."""
        body = request([user("SIM:fault drop")], stream=False)
        resp = chat(Simulator(), body)
        assert resp.drop_after == 1
        assert int(dict(resp.headers)[b"content-length"]) == sum(len(d) for _, d in resp.chunks)
        trunc = chat(Simulator(), request([user("SIM:fault truncate")], stream=False))
        assert b"content-length" not in dict(trunc.headers)
        with pytest.raises(ValueError):
            json.loads(trunc.chunks[-1][1])
        keep = chat(Simulator(), request([user("SIM:fault keepalive")], stream=False))
        assert json.loads(b"".join(d for _, d in keep.chunks))["object"] == "chat.completion"
        assert keep.chunks[0][1] == b"\n"


class TestVerifyReplay:
    def test_echo_must_match(self):
        """verify_replay: the echoed reasoning and call must be what was generated."""
        sim = Simulator(SimConfig(verify_replay=True))
        msgs = [user("SIM:script shell ls ;; text fine")]
        got = collect(frames(chat(sim, request(msgs, tools=[BASH]))))
        call = got["calls"][0]
        assistant = {"role": "assistant", "content": got["content"],
                     "reasoning_content": got["reasoning"],
                     "tool_calls": [{"id": call["id"], "type": "function", "function": {
                         "name": "Bash", "arguments": json.dumps({"command": "ls"})}}]}
        follow = [*msgs, assistant, {"role": "tool", "tool_call_id": call["id"], "content": "x"}]
        assert collect(frames(chat(sim, request(follow, tools=[BASH]))))["content"] == "fine"
        assistant["reasoning_content"] = ""
        assert chat(sim, request(follow, tools=[BASH])).status == 400
        assistant["reasoning_content"] = got["reasoning"]
        assistant["tool_calls"][0]["function"]["arguments"] = '{"command":"rm -rf /"}'
        assert chat(sim, request(follow, tools=[BASH])).status == 400
