"""Stored Responses across replicas: three gateway processes (``hypercorn -k trio pipeline:app``,
as users run it) on one real redis-server serve a Responses tool loop of dozens of turns chained
by ``previous_response_id``, each turn on another replica than the one before, one replica
restarted in the middle, the official ``openai`` SDK as the client and the simulator server
verifying every replayed reasoning text. Any replica answers ``retrieve`` and ``input_items``
for a response another one made, and a delete on one is seen by all."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from tests.e2e.replicas import pipeline, replicas
from tests.e2e.stored_loop import chained_loop, script

PIPELINES = pipeline("agents", "responses")
TURNS = 30
OUTPUT = 36_000  # characters per tool output: ~1 MB of history by the last turn


def test_three_replicas_one_restarted(sim, redis_url: str, tmp_path: Path) -> None:
    sim.reset(verify_replay=True)
    with replicas(tmp_path, sim, redis_url, "replicas:", PIPELINES) as group:
        served: list[str] = []

        def url_of_turn(k: int) -> str:
            served.append(group.url(k))
            return f"{group.url(k)}/v1"

        prompt = [{"role": "user", "content": script(TURNS)}]
        before, items = chained_loop(url_of_turn, range(TURNS // 2), prompt, output_size=OUTPUT)
        group.restart(1)  # a new process: nothing of the old one's memory
        after, _ = chained_loop(url_of_turn, range(TURNS // 2, TURNS + 1), items, before[-1].id, output_size=OUTPUT)
        responses = before + after
        assert len(responses) == TURNS + 1 and responses[-1].output_text == "all done"
        assert all(a != b for a, b in zip(served, served[1:], strict=False))  # each turn on another replica
        assert group.processes[1].url in served  # the restarted one served turns after its restart
        stats = sim.stats()
        assert stats["emitted_calls"] == stats["verified_calls"] == TURNS
        assert stats["replay"][-1]["verified_turns"] == TURNS
        assert stats["max_request_bytes"] > 1_000_000

        clients = [openai.OpenAI(base_url=f"{r.url}/v1", api_key="x", max_retries=0) for r in group.processes]
        first = responses[0]  # made by replica 0, before the restart
        for client in clients:
            assert client.responses.retrieve(first.id).output[0].type == "reasoning"
            assert len(list(client.responses.input_items.list(responses[-1].id, limit=100))) == 1 + 4 * TURNS
        clients[2].responses.delete(responses[5].id)
        for client in clients:
            with pytest.raises(openai.NotFoundError):
                client.responses.retrieve(responses[5].id)
