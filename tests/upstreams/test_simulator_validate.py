"""Simulator request validation, sans-IO through ``Simulator.respond``: DeepSeek's 400s for
bad bodies, models, roles, reasoning replay, tools and limits, and the 401 for bad keys.
"""

from __future__ import annotations

import json

import pytest

from tests.upstreams.simulator_helpers import (
    BASH, REPLAY, chat, collect, error_of, frames, request, tool_turn, user,
)
from upstreams.simulator import SimConfig, Simulator


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

    def test_a_named_tool_choice_is_that_call_and_no_other(self):
        """A named tool_choice makes the call to that tool only, even where the directive would
        call another, with the tool's required string arguments filled in."""
        read = {"type": "function", "function": {"name": "Read", "parameters": {
            "type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}}}
        resp = chat(Simulator(), request([user("SIM:shell ls")], tools=[BASH, read], thinking={"type": "disabled"},
                                         tool_choice={"type": "function", "function": {"name": "Read"}}))
        calls = collect(frames(resp))["calls"]
        assert [c["name"] for c in calls] == ["Read"] and json.loads(calls[0]["arguments"]) == {"file_path": "forced"}

    def test_images_are_for_flash_only(self):
        """DeepSeek has image input on Flash only: an image to Pro is a 400, to Flash it is read."""
        image = {"role": "user", "content": [{"type": "text", "text": "SIM:text ok"},
                                             {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]}
        status, message = error_of(Simulator(), request([image]))
        assert status == 400 and "does not support image input" in message
        assert chat(Simulator(), request([image], model="deepseek-v4-flash")).status == 200

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
