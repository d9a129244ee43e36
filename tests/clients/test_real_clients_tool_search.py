"""The real Codex 0.169.0 finding a deferred tool with its own ``tool_search`` (issue 17).

With a model catalog that says ``supports_search_tool``, Codex defers its sub-agent tools (the
``multi_agent_v1`` namespace) behind a client-executed ``tool_search`` and does not list them in
``tools``. The simulator is told to search, then to call a tool the search found: Codex runs the
search itself (BM25 over its deferred tools), sends the result back as a ``tool_search_output``,
the gateway offers the tools it names, and Codex routes the model's call of
``multi_agent_v1.close_agent`` to its own handler, whose answer (an unknown agent id) is the
tool's output. Opt-in like the other real-client tests (``pytest -m clients``, ``GW_CLIENTS``, root).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.setup import codex_catalog, served
from tests.clients.harness import SIM_URL, assert_replay_verified, gateway_config, run_client, sim_requests

pytestmark = pytest.mark.clients

PROMPT = ('SIM:script call tool_search {"query": "close agent", "limit": 3} ;; '
          'call multi_agent_v1__close_agent {"target": "agent-1"} ;; text closed it')


def tool_names(body: dict) -> list[str]:
    return [t["function"]["name"] for t in body.get("tools", [])]


def searching_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``python -m pipeline setup codex``'s catalog, with ``supports_search_tool`` on."""
    config = tmp_path / "catalog-pipelines.yaml"
    config.write_text(json.dumps(gateway_config()))
    monkeypatch.setenv("GW_SIM_URL", SIM_URL)
    catalog = codex_catalog(served(str(config), "responses", host="127.0.0.1", port=8000, pipeline_id=None))
    for model in catalog["models"]:
        model["supports_search_tool"] = True
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))
    return path


def test_codex_finds_and_calls_a_deferred_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = searching_catalog(tmp_path, monkeypatch)
    code, out, lines = run_client(tmp_path, "codex", PROMPT, codex_config=f"model_catalog_json = {json.dumps(str(catalog))}")
    assert code == 0, (out / "client.err").read_text()[-2000:]
    assert (out / "last_message.txt").read_text().strip() == "closed it"
    first, second, third = sim_requests(out)
    assert "tool_search" in tool_names(first)
    assert not [n for n in tool_names(first) if n.startswith("multi_agent_v1__")]  # deferred by Codex
    assert "multi_agent_v1__close_agent" in tool_names(second)  # loaded by Codex's own search
    search_result = next(m for m in second["messages"] if m["role"] == "tool")
    assert "multi_agent_v1__close_agent" in search_result["content"]
    close_result = [m for m in third["messages"] if m["role"] == "tool"][-1]
    assert "agent-1" in close_result["content"]  # Codex's close_agent handler answered the call
    assert "unsupported" not in close_result["content"].lower()
    # The search is never a dropped hosted tool any more; every turn's reasoning was replayed.
    assert not [loss for line in lines for loss in line.get("losses") or () if "tool_search" in loss]
    assert all(line["status"] == 200 for line in lines if line["endpoint"] == "generate")
    assert_replay_verified(out)
