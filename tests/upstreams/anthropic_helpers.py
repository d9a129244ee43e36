"""Shared helpers for the simulator's Messages-mode tests: ``post`` through ``Simulator.respond``
(an SSE stream decoded into its events), and a first tool turn's blocks as a client keeps them."""

from __future__ import annotations

import json
from typing import Any

from upstreams.simulator import Simulator

BASH = {"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}
PATH = "/anthropic/v1/messages"
PROMPT = "SIM:script shell ls ;; text done"


def post(sim: Simulator, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, Any]:
    resp = sim.respond("POST", PATH, headers or {}, json.dumps(body).encode())
    raw = b"".join(d for _, d in resp.chunks)
    if resp.status != 200 or not body.get("stream"):
        return resp.status, json.loads(raw)
    events = [json.loads(line[6:]) for frame in raw.split(b"\n\n") for line in frame.split(b"\n")
              if line.startswith(b"data: ")]
    return resp.status, events


def first_turn(sim: Simulator, make: Any, prompt: str = PROMPT) -> list[dict[str, Any]]:
    """The assistant content blocks of the answer to a one-call script (a request body from
    ``make``), as a client keeps them."""
    status, events = post(sim, make([{"role": "user", "content": prompt}]))
    assert status == 200
    blocks: dict[int, dict[str, Any]] = {}
    for event in events:
        if event["type"] == "content_block_start":
            blocks[event["index"]] = dict(event["content_block"])
        elif event["type"] == "content_block_delta":
            block, delta = blocks[event["index"]], event["delta"]
            key = {"thinking_delta": "thinking", "signature_delta": "signature", "text_delta": "text",
                   "input_json_delta": "partial"}[delta["type"]]
            block[key] = block.get(key, "") + delta[{"partial": "partial_json"}.get(key, key)]
    for block in blocks.values():
        if block["type"] == "tool_use":
            block["input"] = json.loads(block.pop("partial"))
    return [blocks[i] for i in sorted(blocks)]


def history(blocks: list[dict[str, Any]], prompt: str = PROMPT) -> list[dict[str, Any]]:
    call = next(b for b in blocks if b["type"] == "tool_use")
    return [{"role": "user", "content": prompt},
            {"role": "assistant", "content": blocks},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "a.txt"}]}]
