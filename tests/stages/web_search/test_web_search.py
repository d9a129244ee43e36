"""web_search end to end: the official SDKs → hypercorn → the gateway → the simulator server (its
own process, DeepSeek-strict, verifying reasoning replay), searches against a fake SearXNG on
127.0.0.1 (``tests/fake_searxng.py``). The client offers its hosted web search tool; the gateway
offers the model a function, runs the searches, feeds the results back and streams the next
round into the same answer, and the client sees its own hosted tool's blocks."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import structlog
import trio
import yaml

from tests.e2e.serving import SIM, SIM_KEY_ENV, open_gateway
from tests.fake_searxng import BRAVE_KEY, FakeSearxng
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


async def served(sim: Any, yaml_text: str, work: Callable[[str], Any], requests: int = 1) -> tuple[Any, list[dict]]:
    """Run ``work(url)`` (the SDK calls, in a thread) against a gateway for ``yaml_text``; returns
    its result and the ``request_finished`` lines of its ``requests`` requests."""
    async with open_gateway(yaml_text, sim=sim) as (url, _):
        with structlog.testing.capture_logs() as logs:
            result = await trio.to_thread.run_sync(lambda: work(url))
            await wait_finished(logs, requests)
    return result, finished_lines(logs)


class TestClaudeCodeSearch:
    """Claude Code's WebSearch: its own request, the hosted tool forced, thinking off."""

    @pytest.mark.parametrize("stream", [True, False])
    async def test_one_search_then_the_answer(self, sim, searxng, stream: bool) -> None:
        prompt = 'SIM:script call web_search {"query": "trio nurseries"} ;; text Trio nurseries run tasks.'
        reply, (line,) = await served(sim, config(searxng.url), lambda url: claude(
            url, [user(prompt)], stream=stream, tool_choice={"type": "tool", "name": "web_search"},
            thinking={"type": "disabled"}))
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
        assert line["status"] == 200 and not any(loss.startswith("server_tool") for loss in line["losses"])


    @pytest.mark.parametrize("stream", [True, False])
    async def test_an_answer_that_names_a_result_cites_it(self, sim, searxng, stream: bool) -> None:
        """The answer names two of the results' URLs: its text block cites those two (url, title,
        the snippet as cited_text, the result's seal), no other; sent back, the citations are no loss."""
        cited = ("https://docs.example.org/trio-nurseries/0", "https://news.example.net/trio-nurseries/2")
        prompt = ('SIM:script call web_search {"query": "trio nurseries"} ;; '
                  f"text See {cited[1]} and {cited[0]} for nurseries.")
        reply, (line,) = await served(sim, config(searxng.url), lambda url: claude(
            url, [user(prompt)], stream=stream, thinking={"type": "disabled"}))
        text = reply.content[-1]
        assert text.type == "text" and text.text == f"See {cited[1]} and {cited[0]} for nurseries."
        assert [c.type for c in text.citations] == ["web_search_result_location"] * 2
        assert [c.url for c in text.citations] == list(cited)  # in the results' order
        result = reply.content[1]
        by_url = {r.url: r for r in result.content}
        for citation in text.citations:
            assert citation.title == by_url[citation.url].title
            assert citation.encrypted_index == by_url[citation.url].encrypted_content
            assert citation.cited_text and len(citation.cited_text) <= 150
        again = [user(prompt), echoed(reply), user("SIM:text thanks")]
        _, (line,) = await served(sim, config(searxng.url), lambda url: claude(url, again, stream=stream,
                                                                                thinking={"type": "disabled"}))
        assert not any(loss.startswith("citations") for loss in line["losses"])

    async def test_an_answer_that_names_no_result_cites_none(self, sim, searxng) -> None:
        prompt = 'SIM:script call web_search {"query": "trio nurseries"} ;; text Nothing to cite.'
        reply, _ = await served(sim, config(searxng.url), lambda url: claude(url, [user(prompt)],
                                                                              thinking={"type": "disabled"}))
        assert reply.content[-1].citations is None


def echoed(reply: anthropic.types.Message) -> dict[str, Any]:
    return {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in reply.content]}


class TestMainLoopSearch:
    """A client that offers the hosted tool beside its own, thinking on, and sends the answer back."""

    async def test_search_turn_replays_exactly_on_the_next_turn(self, sim, searxng) -> None:
        prompt = ('SIM:script call web_search {"query": "hypercorn trio"} ;; '
                  'call web_search {"query": "hypercorn workers"} ;; text Hypercorn serves trio apps.')
        sim.reset(verify_replay=True)

        def session(url: str) -> tuple[anthropic.types.Message, anthropic.types.Message]:
            first = claude(url, [user(prompt)], thinking={"type": "adaptive"})
            history = [user(prompt), echoed(first), user("SIM:text thanks, noted.")]
            return first, claude(url, history, thinking={"type": "adaptive"})

        (reply, again), lines = await served(sim, config(searxng.url), session, 2)
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
        (response, names), (line,) = await served(sim, config(searxng.url),
                                                  lambda url: codex(url, [user(prompt)], stream=stream))
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
        assert line["status"] == 200 and not any(loss.startswith("server_tool") for loss in line["losses"])


    async def test_options_the_search_does_not_apply_are_losses(self, sim, searxng) -> None:
        """Codex's ``external_web_access`` / ``search_context_size`` / ``user_location``: the gateway's
        search has no such knobs, so each is named in one ``web_search_option`` loss, not ignored."""
        prompt = 'SIM:script call web_search {"query": "knobs"} ;; text Done.'
        tool = {"type": "web_search", "external_web_access": False, "search_context_size": "low",
                "user_location": {"type": "approximate", "country": "FR"},
                "filters": {"allowed_domains": ["docs.example.org"]}}
        (response, _), (line,) = await served(sim, config(searxng.url),
                                              lambda url: codex(url, [user(prompt)], tools=[tool]))
        assert response.output_text == "Done."
        (loss,) = [loss for loss in line["losses"] if loss.startswith("web_search_option")]
        assert "external_web_access, search_context_size, user_location not applied" in loss
        assert "filters." not in loss  # allowed_domains is applied


def search_reply(url: str, prompt: str, tool: dict[str, Any] | None = None, **kwargs: Any) -> anthropic.types.Message:
    return claude(url, [user(prompt)], tools=[tool or WEB_SEARCH], thinking={"type": "disabled"}, **kwargs)


class TestOneSearchReplay:
    async def test_one_search_turn_replays_each_round_with_its_own_reasoning(self, sim, searxng) -> None:
        """One search, then the answer: the answer's reasoning stays on its own (split) turn, it is
        not added to the search call's turn (the simulator compares that turn's text exactly)."""
        sim.reset(verify_replay=True)
        prompt = 'SIM:script call web_search {"query": "one"} ;; text one found'

        def session(url: str) -> anthropic.types.Message:
            first = claude(url, [user(prompt)], thinking={"type": "adaptive"})
            return claude(url, [user(prompt), echoed(first), user("SIM:text ok")], thinking={"type": "adaptive"})

        again, lines = await served(sim, config(searxng.url), session, 2)
        assert again.content[-1].text == "ok"
        assert sim.stats()["replay"][-1]["verified_turns"] == 1
        assert [line["replay_rung"] for line in lines] == ["not_needed", "envelope"]
        assert not any(loss.startswith("misplaced") for line in lines for loss in line["losses"])


class TestRules:
    """max_uses, the client's domain rules, and a provider that fails: the model reads an error,
    the request never fails."""

    async def test_max_uses_then_the_model_is_told(self, sim, searxng) -> None:
        prompt = ('SIM:script call web_search {"query": "first"} ;; call web_search {"query": "second"} ;; '
                  'text done')
        tool = {**WEB_SEARCH, "max_uses": 1}
        reply, (line,) = await served(sim, config(searxng.url), lambda url: search_reply(url, prompt, tool))
        assert kinds(reply) == ["server_tool_use", "web_search_tool_result", "server_tool_use",
                                "web_search_tool_result", "text"]
        assert len(reply.content[1].content) == 3
        assert reply.content[3].content.type == "web_search_tool_result_error"
        assert reply.content[3].content.error_code == "max_uses_exceeded"
        assert reply.usage.server_tool_use.web_search_requests == 1
        assert searxng.queries == ["first"]
        last = sim.requests()[-1]["messages"][-1]
        assert last["role"] == "tool" and "Web search error: max_uses_exceeded" in last["content"]
        assert line["status"] == 200

    @pytest.mark.parametrize(("rule", "hosts"), [
        ({"allowed_domains": ["example.org"]}, ["docs.example.org", "docs.example.org"]),
        ({"blocked_domains": ["blog.example.com"]}, ["docs.example.org", "news.example.net", "docs.example.org"]),
    ])
    async def test_domain_rules(self, sim, searxng, rule: dict[str, Any], hosts: list[str]) -> None:
        prompt = 'SIM:script call web_search {"query": "domains"} ;; text done'
        reply, _ = await served(sim, config(searxng.url), lambda url: search_reply(url, prompt, {**WEB_SEARCH, **rule}))
        assert [r.url.split("/")[2] for r in reply.content[1].content] == hosts
        tool_text = sim.requests()[-1]["messages"][-1]["content"]
        assert "blog.example.com" not in tool_text if "blocked_domains" in rule else "news." not in tool_text

    @pytest.mark.parametrize("mode", ["fail", "hang"])
    async def test_a_provider_failure_is_a_search_error(self, sim, searxng, mode: str) -> None:
        searxng.mode = mode
        prompt = 'SIM:script call web_search {"query": "broken"} ;; text answered without results'
        with trio.fail_after(20):
            reply, (line,) = await served(sim, config(searxng.url), lambda url: search_reply(url, prompt))
        assert kinds(reply) == ["server_tool_use", "web_search_tool_result", "text"]
        assert reply.content[1].content.error_code == "unavailable"
        assert reply.content[2].text == "answered without results"
        assert line["status"] == 200 and line["error_code"] is None
        assert "Web search error: unavailable" in sim.requests()[-1]["messages"][-1]["content"]

    async def test_brave_hosted_provider_with_its_key_by_env_name(self, sim, searxng, monkeypatch) -> None:
        yaml_text = config(searxng.url).replace(
            "provider: searxng, options: {base_url: '%s'}" % searxng.url,
            "provider: brave, options: {base_url: '%s', api_key_env: GW_TEST_BRAVE_KEY}" % searxng.url)
        assert "provider: brave" in yaml_text
        prompt = 'SIM:script call web_search {"query": "brave"} ;; text done'
        monkeypatch.delenv("GW_TEST_BRAVE_KEY", raising=False)
        reply, _ = await served(sim, yaml_text, lambda url: search_reply(url, prompt))
        assert reply.content[1].content.error_code == "unavailable"  # no key: an error the model reads
        assert searxng.queries == []
        monkeypatch.setenv("GW_TEST_BRAVE_KEY", BRAVE_KEY)
        reply, _ = await served(sim, yaml_text, lambda url: search_reply(url, prompt))
        hits = reply.content[1].content
        assert [h.url for h in hits] == [f"https://{h}/brave/{i}" for i, h in enumerate(
            ("docs.example.org", "blog.example.com", "news.example.net"))]
        assert hits[0].page_age == "2026-11-01T00:00:00"
        assert BRAVE_KEY not in json.dumps(sim.requests())


BASH = {"name": "Bash", "description": "Run a shell command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}


class TestRealSize:
    async def test_a_search_in_a_megabyte_session(self, sim, searxng) -> None:
        """Dozens of tool turns (~1 MB) of history, an earlier search turn replayed in it, a new
        search: every round resends the whole prompt and the answer still comes in one request."""
        earlier = 'SIM:script call web_search {"query": "earlier"} ;; text noted'
        turns: list[dict[str, Any]] = []
        for k in range(40):
            turns.append({"role": "assistant", "content": [
                {"type": "tool_use", "id": f"toolu_{k:04d}", "name": "Bash", "input": {"command": f"cat f{k}"}}]})
            turns.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": f"toolu_{k:04d}", "content": f"line {k} " * 3500}]})
        prompt = 'SIM:script call web_search {"query": "now"} ;; text found it'

        def session(url: str) -> tuple[Any, int]:
            first = search_reply(url, earlier)
            history = [user(earlier), echoed(first), user("go on"), *turns, user(prompt)]
            size = len(json.dumps(history))
            return claude(url, history, tools=[BASH, WEB_SEARCH], thinking={"type": "disabled"}), size

        (reply, size), lines = await served(sim, config(searxng.url), session, 2)
        assert size > 1_000_000
        assert kinds(reply) == ["server_tool_use", "web_search_tool_result", "text"]
        assert reply.content[-1].text == "found it"
        assert searxng.queries == ["earlier", "now"]
        last = sim.requests()[-1]
        assert len(json.dumps(last)) > 1_000_000
        replayed = [m for m in last["messages"] if m["role"] == "tool"]
        assert replayed[0]["content"].startswith('Web search results for "earlier":')
        assert [line["status"] for line in lines] == [200, 200]


class TestReadme:
    async def test_the_readme_example_runs_a_search_in_each_pipeline(self, sim, searxng, monkeypatch) -> None:
        """The README's web search example, as written, with its upstream pointed at the simulator
        server and its providers at the fakes: Claude Code's pipeline searches SearXNG, Codex's Brave."""
        readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
        example = readme.split("### Web search run by the gateway", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
        conf = yaml.safe_load(example)
        conf["upstreams"]["deepseek"].update(base_url="${SIM_URL}", api_key_env=SIM_KEY_ENV)
        for pipe in conf["pipelines"].values():
            pipe["stages"][0]["web_search"]["options"]["base_url"] = searxng.url
        monkeypatch.setenv("BRAVE_API_KEY", BRAVE_KEY)
        prompt = 'SIM:script call web_search {"query": "readme"} ;; text done'

        def both(url: str) -> tuple[Any, Any]:
            return search_reply(url, prompt), codex(url, [user(prompt)])[0]

        (reply, response), lines = await served(sim, json.dumps(conf), both, 2)
        assert kinds(reply) == ["server_tool_use", "web_search_tool_result", "text"]
        assert len(reply.content[1].content) == 5
        assert [o.type for o in response.output][1] == "web_search_call"
        assert searxng.queries == ["readme", "readme"]
        assert [line["pipeline"] for line in lines] == ["claude_code", "codex"]


class TestFallback:
    async def test_a_fallback_is_shaped_afresh_with_the_search(self, sim, searxng) -> None:
        """The stage takes the hosted tool's loss off the decoder's list: a fallback's shaping
        starts from that list again, so the log line names only the serving attempt's losses."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            closed = sock.getsockname()[1]
        yaml_text = f"""
upstreams:
  primary: {{type: openai_chat, base_url: 'http://127.0.0.1:{closed}', profile: deepseek, connect_timeout_s: 2,
            models: {{default: deepseek-v4-pro}}}}
  deepseek: {{{SIM}}}
pipelines:
  claude_code:
    client: anthropic
    upstream: [primary, deepseek]
    retry: {{attempts_per_upstream: 1}}
    stages: [{{web_search: {{options: {{base_url: '{searxng.url}'}}}}}}, thinking_filter, token_budget, tool_ids]
"""
        prompt = 'SIM:script call web_search {"query": "fallback"} ;; text done'
        reply, (line,) = await served(sim, yaml_text, lambda url: search_reply(url, prompt, max_tokens=900_000))
        assert kinds(reply) == ["server_tool_use", "web_search_tool_result", "text"]
        assert line["upstream"] == "deepseek" and line["attempts"] == 2
        assert [loss.split(":")[0] for loss in line["losses"]] == ["max_tokens_clamped"]


class TestResponsesHistory:
    async def test_an_sdk_client_sends_the_search_back_with_its_id(self, sim, searxng) -> None:
        """A Responses client that keeps the web_search_call's id: the upstream gets the search
        turn again (its call with its exact reasoning, verified by the simulator), the result
        rebuilt from the sources' URLs (the snippets are a recorded loss)."""
        sim.reset(verify_replay=True)
        prompt = 'SIM:script call web_search {"query": "responses history"} ;; text noted'

        def session(url: str) -> tuple[Any, Any]:
            first, _ = codex(url, [user(prompt)])
            items = [o.model_dump(exclude_none=True) for o in first.output]
            return first, codex(url, [user(prompt), *items, user("SIM:text thanks")])[0]

        (first, again), lines = await served(sim, config(searxng.url), session, 2)
        assert [o.type for o in first.output] == ["reasoning", "web_search_call", "reasoning", "message"]
        assert again.output_text == "thanks"
        body = sim.requests()[-1]
        messages = [m for m in body["messages"] if m["role"] != "system"]
        assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant", "user"]
        (call,) = messages[1]["tool_calls"]
        assert call["function"] == {"name": "web_search", "arguments": '{"query":"responses history"}'}
        assert messages[2]["content"].startswith('Web search results for "responses history":')
        assert "https://docs.example.org/responses-history/0" in messages[2]["content"]
        assert sim.stats()["replay"][-1]["verified_turns"] == 1
        assert lines[1]["replay_rung"] == "envelope"
        assert any(loss.startswith("web_search_result") for loss in lines[1]["losses"])

    async def test_a_client_that_keeps_no_call_id_keeps_the_next_turns_reasoning(self, sim, searxng) -> None:
        """A web_search_call sent back without its id is dropped (a loss); the envelope of the
        round after it is bound by the calls the client kept, so the shell call's turn gets its
        own reasoning (verified by the simulator) and thinking stays on."""
        sim.reset(verify_replay=True)
        prompt = 'SIM:script call web_search {"query": "no id"} ;; call exec_command {"cmd": "ls"} ;; text done'
        exec_tool = {"type": "function", "name": "exec_command", "description": "Run a command", "strict": False,
                     "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}
        tools = [{"type": "web_search"}, exec_tool]

        def session(url: str) -> Any:
            first, _ = codex(url, [user(prompt)], tools=tools)
            items = [o.model_dump(exclude_none=True) for o in first.output]
            for item in items:
                if item["type"] == "web_search_call":
                    del item["id"]
            call = next(o for o in first.output if o.type == "function_call")
            items.append({"type": "function_call_output", "call_id": call.call_id, "output": "a.txt"})
            return codex(url, [user(prompt), *items], tools=tools)[0]

        _, lines = await served(sim, config(searxng.url), session, 2)
        assert lines[1]["status"] == 200 and lines[1]["replay_rung"] == "envelope"
        assert any("web_search_call item dropped" in loss for loss in lines[1]["losses"])
        check = sim.stats()["replay"][-1]
        assert (check["tool_turns"], check["verified_turns"], check["unknown_turns"]) == (1, 1, 0)
