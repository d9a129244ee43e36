"""web_search end to end: the official SDKs → hypercorn → the gateway → the simulator server (its
own process, DeepSeek-strict, verifying reasoning replay), searches against a fake SearXNG on
127.0.0.1 (``tests/fake_searxng.py``). The client offers its hosted web search tool; the gateway
offers the model a function, runs the searches, feeds the results back and streams the next
round into the same answer, and the client sees its own hosted tool's blocks."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest
import structlog
import trio

from tests.e2e.serving import SIM, open_gateway
from tests.fake_searxng import FakeSearxng
from tests.resilience.dialects import finished_lines, wait_finished

WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 8}


def config(searxng: str, stages: str = "thinking_filter, token_budget, tool_ids") -> str:
    return f"""
upstreams:
  deepseek: {{{SIM}}}
pipelines:
  claude_code:
    client: anthropic
    upstream: deepseek
    stages: [{{web_search: {{provider: searxng, options: {{base_url: '{searxng}'}}, max_results: 3,
                            timeout_s: 2}}}}, {stages}]
  codex: {{client: responses, upstream: deepseek, stages: [{{web_search: {{options: {{base_url: '{searxng}'}}}}}},
                                                          {stages}]}}
"""


def claude(url: str, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None,
           stream: bool = True, **kwargs: Any) -> anthropic.types.Message:
    client = anthropic.Anthropic(base_url=url, api_key="dummy", max_retries=0)
    args: dict[str, Any] = {"model": "claude-opus-5-5", "max_tokens": 16000, "messages": messages,
                            "tools": tools if tools is not None else [WEB_SEARCH], **kwargs}
    if not stream:
        return client.messages.create(**args)
    with client.messages.stream(**args) as s:
        return s.get_final_message()


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def kinds(message: anthropic.types.Message) -> list[str]:
    return [block.type for block in message.content]


@pytest.fixture
def searxng():
    with FakeSearxng() as fake:
        yield fake


class TestClaudeCodeSearch:
    """Claude Code's WebSearch: its own request, the hosted tool forced, thinking off."""

    @pytest.mark.parametrize("stream", [True, False])
    async def test_one_search_then_the_answer(self, sim, searxng, stream: bool) -> None:
        prompt = 'SIM:script call web_search {"query": "trio nurseries"} ;; text Trio nurseries run tasks.'
        async with open_gateway(config(searxng.url), sim=sim) as (url, _):
            with structlog.testing.capture_logs() as logs:
                reply = await trio.to_thread.run_sync(lambda: claude(
                    url, [user(prompt)], stream=stream, tool_choice={"type": "tool", "name": "web_search"},
                    thinking={"type": "disabled"}))
                await wait_finished(logs, 1)
        assert kinds(reply) == ["server_tool_use", "web_search_tool_result", "text"]
        call, result, text = reply.content
        assert call.name == "web_search" and call.input == {"query": "trio nurseries"}
        assert result.tool_use_id == call.id
        assert [r.url for r in result.content] == [f"https://{h}/trio-nurseries/{i}" for i, h in
                                                   enumerate(("docs.example.org", "blog.example.com",
                                                              "news.example.net"))]
        assert result.content[0].title == "Result 0 for trio nurseries" and result.content[0].encrypted_content
        assert text.text == "Trio nurseries run tasks."
        assert reply.stop_reason == "end_turn"
        assert reply.usage.server_tool_use is not None and reply.usage.server_tool_use.web_search_requests == 1
        assert searxng.queries == ["trio nurseries"]
        first, second = sim.requests()
        assert first["tool_choice"] == {"type": "function", "function": {"name": "web_search"}}
        assert [t["function"]["name"] for t in first["tools"]] == ["web_search"]
        assert second["tool_choice"] == "auto"
        assistant, tool = second["messages"][-2:]
        assert assistant["tool_calls"][0]["function"]["name"] == "web_search"
        assert tool["role"] == "tool" and "Result 0 for trio nurseries" in tool["content"]
        assert "https://docs.example.org/trio-nurseries/0" in tool["content"]
        (line,) = finished_lines(logs)
        assert line["status"] == 200 and not any(loss.startswith("server_tool") for loss in line["losses"])


def echoed(reply: anthropic.types.Message) -> dict[str, Any]:
    return {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in reply.content]}


class TestMainLoopSearch:
    """A client that offers the hosted tool beside its own, thinking on, and sends the answer back."""

    async def test_search_turn_replays_exactly_on_the_next_turn(self, sim, searxng) -> None:
        prompt = ('SIM:script call web_search {"query": "hypercorn trio"} ;; '
                  'call web_search {"query": "hypercorn workers"} ;; text Hypercorn serves trio apps.')
        sim.reset(verify_replay=True)
        async with open_gateway(config(searxng.url), sim=sim) as (url, _):
            with structlog.testing.capture_logs() as logs:
                reply = await trio.to_thread.run_sync(lambda: claude(url, [user(prompt)],
                                                                     thinking={"type": "adaptive"}))
                history = [user(prompt), echoed(reply), user("SIM:text thanks, noted.")]
                again = await trio.to_thread.run_sync(lambda: claude(url, history, thinking={"type": "adaptive"}))
                await wait_finished(logs, 2)
        assert kinds(reply) == ["thinking", "server_tool_use", "web_search_tool_result",
                                "thinking", "server_tool_use", "web_search_tool_result", "thinking", "text"]
        assert reply.usage.server_tool_use.web_search_requests == 2
        assert again.content[-1].text == "thanks, noted."
        assert searxng.queries == ["hypercorn trio", "hypercorn workers"]
        rounds = sim.requests()
        assert len(rounds) == 4  # three rounds of the first answer, one of the second
        # The next turn carries the search rounds as the upstream saw them: calls, results, reasoning.
        inner = [m for m in rounds[2]["messages"] if m["role"] != "system"]
        replayed = [m for m in rounds[3]["messages"] if m["role"] != "system"]
        assert [m["role"] for m in replayed] == ["user", "assistant", "tool", "assistant", "tool", "assistant", "user"]
        assert replayed[:5] == inner
        stats = sim.stats()
        assert [(c["tool_turns"], c["verified_turns"], c["unknown_turns"]) for c in stats["replay"]] == [
            (0, 0, 0), (1, 1, 0), (2, 2, 0), (2, 2, 0)]
        lines = finished_lines(logs)
        assert [line["status"] for line in lines] == [200, 200]
        assert lines[1]["replay_rung"] == "envelope"
        assert not any(loss.startswith(("server_tool", "web_search")) for line in lines for loss in line["losses"])


def codex(url: str, items: list[dict[str, Any]], *, stream: bool = True,
          tools: list[dict[str, Any]] | None = None) -> tuple[Any, list[str]]:
    client = openai.OpenAI(base_url=url + "/v1", api_key="dummy", max_retries=0)
    args: dict[str, Any] = {"model": "deepseek-v4-pro", "input": items, "store": False,
                            "tools": tools if tools is not None else [{"type": "web_search"}],
                            "include": ["reasoning.encrypted_content"], "reasoning": {"effort": "high"}}
    if not stream:
        return client.responses.create(**args), []
    with client.responses.stream(**args) as s:
        names = [event.type for event in s]
        return s.get_final_response(), names


class TestCodexSearch:
    """Codex offers ``web_search`` on every request and shows ``web_search_call`` items."""

    @pytest.mark.parametrize("stream", [True, False])
    async def test_web_search_call_items(self, sim, searxng, stream: bool) -> None:
        prompt = 'SIM:script call web_search {"query": "codex web search"} ;; text Codex searched.'
        async with open_gateway(config(searxng.url), sim=sim) as (url, _):
            with structlog.testing.capture_logs() as logs:
                response, names = await trio.to_thread.run_sync(lambda: codex(url, [user(prompt)], stream=stream))
                await wait_finished(logs, 1)
        assert [o.type for o in response.output] == ["reasoning", "web_search_call", "reasoning", "message"]
        call = response.output[1]
        assert call.status == "completed" and call.action.type == "search"
        assert call.action.query == "codex web search"
        assert [s.url for s in call.action.sources] == [f"https://docs.example.org/codex-web-search/{i}" if i == 0
                                                        else s.url for i, s in enumerate(call.action.sources)]
        assert len(call.action.sources) == 5  # the stage's default max_results
        assert response.output_text == "Codex searched."
        assert searxng.queries == ["codex web search"]
        if stream:
            searching = [n for n in names if n.startswith("response.web_search_call.")]
            assert searching == ["response.web_search_call.in_progress", "response.web_search_call.searching",
                                 "response.web_search_call.completed"]
        (line,) = finished_lines(logs)
        assert line["status"] == 200 and not any(loss.startswith("server_tool") for loss in line["losses"])
