"""Simulator engine state, sans-IO: routing of DeepSeek's paths and /models, the bounded request
history, and verify_replay checking echoed reasoning and calls against what was generated.
"""

from __future__ import annotations

import json

from tests.upstreams.simulator_helpers import BASH, chat, collect, frames, request, user
from upstreams.simulator import SimConfig, Simulator


class TestRouting:
    def test_paths(self):
        """Both chat paths answer; /models lists DeepSeek models; a Chat body at /v1/responses (the
        Responses mode) is a 400 naming the Chat field; others are 404 JSON."""
        sim = Simulator(SimConfig(models=("extra",)))
        body = json.dumps(request([user("hi")])).encode()
        assert sim.respond("POST", "/chat/completions", {}, body).status == 200
        assert sim.respond("POST", "/v1/chat/completions", {}, body).status == 200
        models = json.loads(sim.respond("GET", "/v1/models", {}, b"").chunks[0][1])
        assert models["object"] == "list"
        ids = [m["id"] for m in models["data"]]
        assert "deepseek-v4-pro" in ids and "extra" in ids
        assert all(m["object"] == "model" and m["owned_by"] == "deepseek" for m in models["data"])
        wrong = sim.respond("POST", "/v1/responses", {}, body)
        assert wrong.status == 400
        assert "Unrecognized request argument supplied: messages" in wrong.chunks[0][1].decode()
        missing = sim.respond("POST", "/v1/completions", {}, body)
        assert missing.status == 404
        assert json.loads(missing.chunks[0][1])["error"]["message"]

    def test_requests_recorded(self):
        """Decoded request bodies are kept, bounded by config.history."""
        sim = Simulator(SimConfig(history=2))
        for i in range(3):
            chat(sim, request([user(f"q{i}")]))
        assert [r["messages"][0]["content"] for r in sim.requests] == ["q1", "q2"]
        assert sim.chat_requests == 3


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

    def test_every_byte_compared_and_counted(self):
        """A reasoning text that differs only in its bytes (NFD vs NFC, a trailing space) is a
        400; /_sim/stats counts each request's tool-call turns, verified and unknown."""
        sim = Simulator(SimConfig(verify_replay=True, api_key="k"))
        auth = {"Authorization": "Bearer k"}
        msgs = [user("SIM:think caf\u00e9 plan\nSIM:script shell ls ;; text fine")]
        got = collect(frames(chat(sim, request(msgs, tools=[BASH]), auth)))
        assert got["reasoning"] == "caf\u00e9 plan"
        call = got["calls"][0]
        assistant = {"role": "assistant", "content": None, "reasoning_content": got["reasoning"],
                     "tool_calls": [{"id": call["id"], "type": "function", "function": {
                         "name": "Bash", "arguments": call["arguments"]}}]}
        stranger = {"role": "assistant", "content": None, "reasoning_content": "x",
                    "tool_calls": [{"id": "call_elsewhere", "type": "function", "function": {
                        "name": "Bash", "arguments": "{}"}}]}
        follow = [msgs[0], stranger, {"role": "tool", "tool_call_id": "call_elsewhere",
                                      "content": "y"},
                  assistant, {"role": "tool", "tool_call_id": call["id"], "content": "x"}]
        assert chat(sim, request(follow, tools=[BASH]), auth).status == 200
        for wrong in ("cafe\u0301 plan", "caf\u00e9 plan "):
            assistant["reasoning_content"] = wrong
            assert chat(sim, request(follow, tools=[BASH]), auth).status == 400
        assert sim.respond("GET", "/_sim/stats", {}, b"").status == 401
        stats = json.loads(sim.respond("GET", "/_sim/stats", auth, b"").chunks[0][1])
        assert stats["chat_requests"] == 4 and stats["emitted_calls"] == 1
        assert stats["last_request_bytes"] == len(json.dumps(request(follow, tools=[BASH])))
        assert stats["replay"][1] == {"request": 2, "tool_turns": 2, "verified_turns": 1,
                                      "unknown_turns": 1, "verified_bytes": len("café plan".encode())}
        assert [c["request"] for c in stats["replay"]] == [1, 2]
