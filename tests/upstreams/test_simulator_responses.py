"""The simulator's Responses mode (``POST /responses``): its stream, and the 400s that make a
translation bug fail (foreign or tampered encrypted_content, missing reasoning, Chat fields)."""

from __future__ import annotations

import json

import msgspec
import pytest

from upstreams.simulator import SimConfig, Simulator

PATCH_TOOL = {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark",
                                                                 "definition": "start: x"}}
SHELL = {"type": "function", "name": "shell", "parameters": {
    "type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}}}}


def post(sim: Simulator, body: dict):
    return sim.respond("POST", "/responses", {}, msgspec.json.encode(body))


def events(answer) -> list[dict]:
    data = b"".join(piece for _, piece in answer.chunks).decode()
    return [json.loads(line[6:]) for line in data.split("\n") if line.startswith("data: ")]


def request(inputs: list, **extra) -> dict:
    return {"model": "deepseek-v4-pro", "stream": True, "store": False, "tools": [SHELL, PATCH_TOOL],
            "reasoning": {"summary": "auto"}, "input": inputs, **extra}


def error(answer) -> str:
    assert answer.status == 400, answer.chunks
    return json.loads(answer.chunks[0][1])["error"]["message"]


def first_turn(sim: Simulator, prompt: str = "SIM:script write a.txt hi ;; text done") -> tuple[list, list[dict]]:
    """The prompt and the items of the first answer as a client echoes them (output items, then outputs)."""
    inputs = [{"type": "message", "role": "user", "content": prompt}]
    out = events(post(sim, request(inputs)))
    done = next(e for e in out if e["type"] == "response.completed")["response"]["output"]
    return inputs, done


class TestStream:
    def test_deepseek_flavour(self) -> None:
        sim = Simulator()
        _, out = first_turn(sim)
        stream = events(post(Simulator(), request([{"type": "message", "role": "user",
                                                    "content": "SIM:write a.txt hi"}])))
        assert [e["sequence_number"] for e in stream] == list(range(len(stream)))
        kinds = [e["type"] for e in stream]
        assert "response.reasoning_text.delta" in kinds and "response.reasoning_summary_text.delta" not in kinds
        assert "response.custom_tool_call_input.delta" in kinds and kinds[-1] == "response.completed"
        reasoning, call = out[0], out[-1]
        assert reasoning["type"] == "reasoning" and reasoning["encrypted_content"].startswith("dsenc1.")
        assert reasoning["content"][0]["type"] == "reasoning_text"
        assert call["type"] == "custom_tool_call" and call["input"].startswith("*** Begin Patch\n*** Add File: a.txt")
        raw = b"".join(piece for _, piece in post(sim, request([{"type": "message", "role": "user",
                                                                "content": "hi"}])).chunks)
        assert b"[DONE]" not in raw and raw.startswith(b"event: response.created\ndata: ")

    def test_openai_flavour_summarises_and_seals_only_when_asked(self) -> None:
        sim = Simulator(SimConfig(responses_flavour="openai"))
        prompt = [{"type": "message", "role": "user", "content": "SIM:shell ls"}]
        plain = events(post(sim, request(prompt)))
        assert "response.reasoning_summary_text.delta" in [e["type"] for e in plain]
        assert plain[-1]["response"]["output"][0]["encrypted_content"] is None
        asked = events(post(sim, request(prompt, include=["reasoning.encrypted_content"])))
        assert asked[-1]["response"]["output"][0]["encrypted_content"].startswith("oaienc1.")

    def test_budget_gives_incomplete_and_error_chunk_an_error_event(self) -> None:
        sim = Simulator(SimConfig(faults=({"on_request": 2, "kind": "error_chunk"},)))
        cut = events(post(sim, request([{"type": "message", "role": "user", "content": "hi"}], max_output_tokens=3)))
        assert cut[-1]["type"] == "response.incomplete"
        assert cut[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
        failed = events(post(sim, request([{"type": "message", "role": "user", "content": "SIM:text a b c d e f"}])))
        assert failed[-1]["type"] == "error"


class TestReplay:
    def replayed(self, sim: Simulator, change=None):
        inputs, out = first_turn(sim)
        echoed = [dict(item) for item in out]
        if change:
            change(echoed)
        call = echoed[-1]
        return post(sim, request([*inputs, *echoed, {"type": "custom_tool_call_output", "call_id": call["call_id"],
                                                      "output": "Done"}]))

    def test_own_encrypted_content_verifies(self) -> None:
        sim = Simulator(SimConfig(verify_replay=True))
        answer = self.replayed(sim)
        assert answer.status == 200 and events(answer)[-1]["response"]["output"][-1]["content"][0]["text"] == "done"
        assert sim.stats.sealed_items == 1 and sim.stats.verified_calls == 1

    def test_reasoning_text_alone_is_accepted_and_verified(self) -> None:
        sim = Simulator(SimConfig(verify_replay=True))
        assert self.replayed(sim, lambda items: items[0].pop("encrypted_content")).status == 200

        def altered(items):
            items[0].pop("encrypted_content")
            items[0]["content"] = [{"type": "reasoning_text", "text": "something else"}]
        assert "differs from what was generated" in error(self.replayed(Simulator(SimConfig(verify_replay=True)),
                                                                        altered))

    def test_a_replay_that_differs_is_told_in_this_apis_terms(self) -> None:
        """verify_replay's 400 names the input item (the reasoning item, its reasoning_text or
        encrypted_content; the call item), as DeepSeek's Responses API would, not Chat fields."""
        def altered(items):
            items[0].pop("encrypted_content")
            items[0]["content"] = [{"type": "reasoning_text", "text": "something else"}]

        def other_patch(items):
            items[-1]["input"] = items[-1]["input"].replace("+hi", "+bye")
        for change, at, what in ((altered, "input[1]: the reasoning item (its encrypted_content or reasoning_text "
                                           "content) differs from what was generated with call", "something else"),
                                 (other_patch, "input[3]: the call", "differs from what was generated")):
            message = error(self.replayed(Simulator(SimConfig(verify_replay=True)), change))
            assert message.startswith(at) and what in message, message
            assert "reasoning_content" not in message and "messages[" not in message and "tool call" not in message

    @pytest.mark.parametrize("token", ["gw2.AAAA-the-gateways-envelope", "dsenc1.e30.0000", "oaienc1.xyz.abc"])
    def test_foreign_or_tampered_encrypted_content_is_rejected(self, token: str) -> None:
        def swap(items):
            items[0]["encrypted_content"] = token
        assert "could not be verified" in error(self.replayed(Simulator(), swap))

    def test_another_simulators_token_is_rejected(self) -> None:
        other = Simulator()
        _, out = first_turn(other)

        def swap(items):
            items[0]["encrypted_content"] = out[0]["encrypted_content"]
        assert "could not be verified" in error(self.replayed(Simulator(), swap))

    def test_a_tool_turn_without_its_reasoning_is_rejected(self) -> None:
        message = error(self.replayed(Simulator(), lambda items: items.pop(0)))
        assert "reasoning item of a turn with tool calls must be passed back" in message

    def test_openai_flavour_refuses_text_only_reasoning(self) -> None:
        sim = Simulator(SimConfig(responses_flavour="openai"))
        assert "needs the encrypted_content" in error(
            self.replayed(sim, lambda items: items[0].update(encrypted_content=None) or items[0].pop(
                "encrypted_content")))


class TestRequestShape:
    @pytest.mark.parametrize(("body", "text"), [
        ({"messages": []}, "Unrecognized request argument supplied: messages"),
        ({"previous_response_id": "resp_1"}, "stores no responses"),
        ({"include": ["file_search_call.results"]}, "Supported values are"),
        ({"tools": [{"type": "function", "function": {"name": "x"}, "name": "x"}]}, "Chat Completions tool"),
        ({"input": [{"type": "message", "role": "assistant",
                     "content": [{"type": "input_text", "text": "x"}]}]}, "'output_text'"),
        ({"input": [{"type": "web_search_call"}]}, "Supported values are"),
    ])
    def test_strict_400s(self, body: dict, text: str) -> None:
        base = request([{"type": "message", "role": "user", "content": "hi"}])
        assert text in error(post(Simulator(), {**base, **body}))

    def test_llamacpp_takes_function_tools_only(self) -> None:
        sim = Simulator(SimConfig(responses_flavour="llamacpp"))
        assert "only function tools" in error(post(sim, request([{"type": "message", "role": "user", "content": "x"}])))


class TestNonStreaming:
    def test_a_response_object(self) -> None:
        answer = post(Simulator(), {**request([{"type": "message", "role": "user", "content": "SIM:shell ls"}]),
                                    "stream": False})
        assert answer.status == 200 and (b"content-type", b"application/json") in answer.headers
        body = json.loads(b"".join(piece for _, piece in answer.chunks))
        assert body["object"] == "response" and body["status"] == "completed"
        assert [o["type"] for o in body["output"]] == ["reasoning", "message", "function_call"]
        assert body["usage"]["output_tokens_details"]["reasoning_tokens"] > 0
