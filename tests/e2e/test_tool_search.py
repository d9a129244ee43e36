"""Codex's client-executed ``tool_search`` end to end (issue 17): the official openai SDK →
hypercorn → gateway (shipped stages) → ``openai_chat`` (and ``openai_responses``,
``anthropic_messages``) → the strict simulator (its own process, ``verify_replay``).

The search reaches DeepSeek as a function; the model's call of it comes back as a
``tool_search_call`` item, which the client runs; its ``tool_search_output`` goes back in the
history, and the tools it loaded (Codex sends them only there) are offered to the model on the
next turn: the simulator can call a deferred, namespaced tool only because it was offered, and its
call reaches the client by its namespace. The reasoning of the search turn is replayed exactly.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
import trio

from tests.captures import capture_body
from tests.e2e.responses_loop import echoed, final_response
from tests.e2e.serving import SIM, SIM_KEY_ENV, open_gateway

# Codex's pipeline (the shipped stages) on each upstream protocol, each at the simulator's own mode.
UPSTREAMS = {
    "chat": SIM,
    "responses": "type: openai_responses, base_url: '${SIM_URL}', profile: deepseek_responses, api_key_env: "
                 + SIM_KEY_ENV + ", models: {default: deepseek-v4-pro}",
    "anthropic": "type: anthropic_messages, base_url: '${SIM_URL}/anthropic', profile: deepseek_anthropic, "
                 "api_key_env: " + SIM_KEY_ENV + ", models: {default: deepseek-v4-pro}",
}


def config(upstream: str) -> str:
    return f"""
upstreams:
  sim: {{{UPSTREAMS[upstream]}}}
pipelines:
  codex: {{client: responses, stages: [thinking_filter, token_budget, tool_ids], upstream: sim}}
"""


CODEX_TOOLS = capture_body("codex-tool-1.json")["tools"]  # exec_command, ..., tool_search, web_search
SEARCH = next(t for t in CODEX_TOOLS if t["type"] == "tool_search")
EXEC = next(t for t in CODEX_TOOLS if t.get("name") == "exec_command")
CLOSE = {"type": "function", "name": "close_agent", "description": "Close a sub-agent", "strict": False,
         "defer_loading": True, "parameters": {"type": "object", "properties": {"target": {"type": "string"}},
                                               "required": ["target"], "additionalProperties": False}}
LOADED = {"type": "namespace", "name": "multi_agent_v1", "description": "Tools for sub-agents.",
          "tools": [CLOSE, {**CLOSE, "name": "wait_agent", "description": "Wait for a sub-agent"}]}
PROMPT = ('SIM:script call tool_search {"query": "close agent", "limit": 2} ;; '
          'call multi_agent_v1__close_agent {"target": "agent-1"} ;; text closed it')


def answer(client: openai.OpenAI, items: list[dict[str, Any]], stream: bool) -> Any:
    return final_response(client, stream=stream, model="gpt-5.5", input=items, tools=[EXEC, SEARCH], store=False,
                          include=["reasoning.encrypted_content"], reasoning={"effort": "high", "summary": "auto"})


def codex_loop(base_url: str, stream: bool) -> tuple[list[Any], list[dict[str, Any]]]:
    """Codex's part: run the search over its deferred tools, echo every item back (without ids)."""
    client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0)
    items: list[dict[str, Any]] = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": PROMPT}]}]
    responses = []
    for _ in range(4):
        response = answer(client, items, stream)
        responses.append(response)
        items += echoed(response, keep_status=True)
        calls = [o for o in response.output if o.type in ("function_call", "tool_search_call")]
        for call in calls:
            if call.type == "tool_search_call":
                assert call.arguments == {"query": "close agent", "limit": 2}
                items.append({"type": "tool_search_output", "call_id": call.call_id, "status": "completed",
                              "execution": "client", "tools": [LOADED]})
            else:
                items.append({"type": "function_call_output", "call_id": call.call_id, "output": "closed"})
        if not calls:
            break
    return responses, items


async def run_loop(sim, stream: bool, upstream: str = "chat") -> tuple[list[Any], list[dict[str, Any]]]:
    sim.reset(verify_replay=True)
    async with open_gateway(config(upstream), sim=sim) as (url, _):
        with trio.fail_after(120):
            return await trio.to_thread.run_sync(codex_loop, f"{url}/v1", stream)


def upstream_tools(body: dict[str, Any]) -> list[str]:
    """The tool names an upstream was offered (Chat nests them in ``function``)."""
    return [t["function"]["name"] if "function" in t else t["name"] for t in body.get("tools", [])]


class TestToolSearch:
    async def test_search_then_a_deferred_tool_streaming(self, sim) -> None:
        responses, _ = await run_loop(sim, stream=True)
        self.check(responses, sim)

    async def test_search_then_a_deferred_tool_not_streaming(self, sim) -> None:
        responses, _ = await run_loop(sim, stream=False)
        self.check(responses, sim)
        first, second, _ = sim.requests()
        # The search went up as a call of the function and its result, with the turn's reasoning.
        turn = next(m for m in second["messages"] if m["role"] == "assistant")
        assert turn["tool_calls"][0]["function"]["name"] == "tool_search" and turn["reasoning_content"]
        result = next(m for m in second["messages"] if m["role"] == "tool")
        assert result["tool_call_id"] == turn["tool_calls"][0]["id"]
        assert "multi_agent_v1__close_agent" in result["content"]

    @pytest.mark.parametrize("upstream", ["responses", "anthropic"])
    async def test_on_the_other_upstream_protocols(self, sim, upstream: str) -> None:
        responses, _ = await run_loop(sim, stream=True, upstream=upstream)
        self.check(responses, sim)

    @staticmethod
    def check(responses: list[Any], sim) -> None:
        assert [r.status for r in responses] == ["completed"] * 3
        search = next(o for o in responses[0].output if o.type == "tool_search_call")
        assert search.execution == "client" and search.call_id
        assert [o.type for o in responses[0].output] == ["reasoning", "tool_search_call"]
        close = next(o for o in responses[1].output if o.type == "function_call")
        assert (close.namespace, close.name, json.loads(close.arguments)) == ("multi_agent_v1", "close_agent",
                                                                             {"target": "agent-1"})
        assert responses[2].output_text == "closed it"
        first, second, third = sim.requests()
        assert "tool_search" in upstream_tools(first)
        assert "multi_agent_v1__close_agent" not in upstream_tools(first)  # deferred: not loaded yet
        assert {"tool_search", "multi_agent_v1__close_agent", "multi_agent_v1__wait_agent"} <= set(upstream_tools(second))
        assert upstream_tools(second) == upstream_tools(third)
        replay = sim.stats()["replay"]
        assert replay and all(c["unknown_turns"] == 0 and c["verified_turns"] == c["tool_turns"] for c in replay)
        assert replay[-1]["tool_turns"] == 2
