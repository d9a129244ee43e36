"""The real clients' web search, run by the gateway against a fake SearXNG on 127.0.0.1.

Claude Code 2.1.330: the main loop loads the deferred WebSearch tool (ToolSearch), calls it, and
WebSearch makes its own request offering the hosted ``web_search_20250305`` tool (forced, thinking
off): the gateway runs the search and answers with ``server_tool_use`` + ``web_search_tool_result``
blocks, which WebSearch turns into its tool result; the main loop answers from it. Codex 0.169
offers ``web_search`` on every request and shows ``web_search_call`` items.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clients.harness import (
    WEB_SEARCH_STAGES,
    assert_loop,
    assert_replay_verified,
    client_events,
    run_client,
    sim_requests,
)

pytestmark = pytest.mark.clients


def queries(out: Path) -> list[str]:
    path = out / "searxng_queries.txt"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class TestClaudeCode:
    def test_web_search_answers_from_the_results(self, tmp_path: Path) -> None:
        inner = json.dumps('SIM:call web_search {"query": "trio structured concurrency"}')
        prompt = ('SIM:script call ToolSearch {"query": "select:WebSearch", "max_results": 1} ;; '
                  f'call WebSearch {{"query": {inner}}} ;; result')
        code, out, lines = run_client(tmp_path, "claude", prompt, stages=WEB_SEARCH_STAGES)
        assert code == 0, (out / "client.err").read_text()[-3000:]
        assert queries(out) == ["trio structured concurrency"]
        events = client_events(out)
        final = next(e for e in reversed(events) if e.get("type") == "result")
        # The main loop's answer is WebSearch's tool result: the fake's links, as Claude Code lists them.
        assert "https://docs.example.org/trio-structured-concurrency/0" in final["result"], final
        assert "Result 0 for trio structured concurrency" in final["result"]
        # WebSearch's own request: the hosted tool became the gateway's function, forced.
        search = [r for r in sim_requests(out) if any(t["function"]["name"] == "web_search"
                                                      for t in r.get("tools") or [])]
        assert len(search) == 2  # the search round and the round that answers from the results
        # WebSearch forces its tool; Claude Code sends no thinking switch there, so DeepSeek thinks
        # (the deepseek profile's default) and cannot take a forced choice: the profile sends auto.
        assert [r["tool_choice"] for r in search] == ["auto", "auto"]
        assert [[t["function"]["name"] for t in r["tools"]] for r in search] == [["web_search"], ["web_search"]]
        assert search[1]["messages"][-1]["role"] == "tool"
        assert "Result 0 for trio structured concurrency" in search[1]["messages"][-1]["content"]
        generate = [line for line in lines if line["endpoint"] == "generate"]
        assert all(line["status"] == 200 and not line["error_code"] for line in generate), generate


class TestCodex:
    def test_web_search_call_is_shown_and_answered(self, tmp_path: Path) -> None:
        prompt = 'SIM:script call web_search {"query": "codex search through the gateway"} ;; text Searched: done.'
        code, out, lines = run_client(tmp_path, "codex", prompt, stages=WEB_SEARCH_STAGES)
        assert code == 0, (out / "client.err").read_text()[-3000:]
        assert queries(out) == ["codex search through the gateway"]
        events = client_events(out)
        searches = [(e["type"], e["item"]["query"]) for e in events if (e.get("item") or {}).get("type") == "web_search"]
        assert searches == [("item.started", ""), ("item.completed", "codex search through the gateway")]
        assert (out / "last_message.txt").read_text().strip() == "Searched: done."
        generate = [line for line in lines if line["endpoint"] == "generate"]
        assert all(line["status"] == 200 and not line["error_code"] for line in generate), generate

    def test_a_search_then_a_shell_call_in_one_session(self, tmp_path: Path) -> None:
        """Codex sends the search back as a web_search_call with its id and query but without its
        sources: the upstream's next turn has the search call again with its exact reasoning and a
        result saying the results were not kept (a loss), then the shell call; both verified by
        the simulator, thinking on."""
        prompt = ('SIM:script call web_search {"query": "gateway web search"} ;; shell echo hi > hi.txt ;; '
                  'text All done.')
        code, out, lines = run_client(tmp_path, "codex", prompt, stages=WEB_SEARCH_STAGES)
        assert code == 0, (out / "client.err").read_text()[-3000:]
        assert (out / "workdir" / "hi.txt").read_text() == "hi\n"
        assert (out / "last_message.txt").read_text().strip() == "All done."
        assert queries(out) == ["gateway web search"]
        assert_loop(lines, 2)
        stats = assert_replay_verified(out)
        assert stats["verified_calls"] == 2  # the search call (replayed by Codex) and the shell call
        second = [line for line in lines if line["endpoint"] == "generate"][1]
        assert any(loss.startswith("web_search_result") for loss in second["losses"])
        replayed = sim_requests(out)[-1]["messages"]
        calls = [c["function"]["name"] for m in replayed for c in m.get("tool_calls") or []]
        assert calls == ["web_search", "exec_command"]
        result = next(m for m in replayed if m["role"] == "tool")
        assert result["content"].startswith('Web search results for "gateway web search": not kept')
