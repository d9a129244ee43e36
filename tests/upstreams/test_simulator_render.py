"""Simulator rendering: the DeepSeek chunk envelope and stream order, the JSON answer, the
text/argument splitters, the max_tokens budget, usage fields and prompt-cache hits.
"""

from __future__ import annotations

import json

import msgspec

from tests.upstreams.simulator_helpers import BASH, chat, collect, frames, request, user
from upstreams.simulator import SimConfig, Simulator
from upstreams.simulator.render import arg_pieces, text_pieces


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
