"""The durable reasoning ledger (stages/thinking_filter/ledger.py) across replicas: a Claude
Code-shaped tool loop (the official ``anthropic`` SDK, thinking on) whose client strips every
thinking block from the history it resends, through three gateway processes on one real
redis-server, each turn on another replica, one restarted in the middle, to the simulator server
verifying every replayed ``reasoning_content`` byte for byte. No envelope comes back and no
replica's memory has the turn before: the ledger in the store is what replays it. ``/metrics``
of the replicas count the rungs that served."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.e2e.messages_loop import stripped_loop
from tests.e2e.replicas import pipeline, replicas

PIPELINES = pipeline("claude_code", "anthropic")
TURNS = 24
OUTPUT = 44_000  # characters per tool result: ~1 MB of history by the last turn


def rungs(url: str, metric: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics").text
    found: dict[str, float] = {}
    for rung, value in re.findall(metric + r'\{[^}]*rung="(\w+)"[^}]*\} (\S+)', text):
        found[rung] = found.get(rung, 0) + float(value)
    return found


def test_stripped_thinking_replayed_across_replicas(sim, redis_url: str, tmp_path: Path) -> None:
    sim.reset(verify_replay=True)
    with replicas(tmp_path, sim, redis_url, "ledger:", PIPELINES) as group:
        script = "SIM:script " + " ;; ".join([f"shell echo {i}" for i in range(TURNS)] + ["text all done"])
        prompt = [{"role": "user", "content": script}]
        before, messages = stripped_loop(group.url, range(TURNS // 2), prompt, OUTPUT)
        group.restart(1)
        after, _ = stripped_loop(group.url, range(TURNS // 2, TURNS + 1), messages, OUTPUT)
        replies = before + after
        assert len(replies) == TURNS + 1 and replies[-1].content[-1].text == "all done"
        stats = sim.stats()
        assert stats["emitted_calls"] == stats["verified_calls"] == TURNS
        assert stats["replay"][-1]["verified_turns"] == TURNS
        assert stats["max_request_bytes"] > 1_000_000
        served: dict[str, float] = {}
        turns: dict[str, float] = {}
        for replica in group.processes:  # the replica restarted took its old counters with it
            for rung, n in rungs(replica.url, "gateway_reasoning_replay_total").items():
                served[rung] = served.get(rung, 0) + n
            for rung, n in rungs(replica.url, "gateway_reasoning_replay_turns_total").items():
                turns[rung] = turns.get(rung, 0) + n
        # Every request after the first needed the ledger for some turn (the turn before it was
        # always another replica's); what a replica made or read once its memory cache had.
        assert served.get("ledger", 0) >= TURNS - TURNS // 3 - 1 and set(served) <= {"ledger", "not_needed"}, served
        assert turns["ledger"] >= served["ledger"] and turns["cache"] > 0 and set(turns) == {"ledger", "cache"}, turns
