"""Shared helpers for the simulator engine tests: request builders, ``chat`` through
``Simulator.respond``, SSE frame decoding, and tool lists taken from the real-client captures.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from tests.captures import load_capture
from upstreams.simulator import Simulator, SimResponse
from upstreams.simulator.testing import accumulate, chat_tools, sse_chunks

BASH = {"type": "function", "function": {"name": "Bash", "parameters": {
    "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}
EXEC = {"type": "function", "function": {"name": "exec_command", "parameters": {
    "type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}}


_capture = cache(load_capture)


def capture_tools(name: str) -> list[dict[str, Any]]:
    """A capture's client tool list as the Chat function tools a gateway sends upstream."""
    return chat_tools(_capture(name)["body"]["tools"])


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def request(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "deepseek-v4-pro", "messages": messages, "stream": True, **extra}


def chat(sim: Simulator, body: dict[str, Any] | bytes,
         headers: dict[str, str] | None = None) -> SimResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return sim.respond("POST", "/v1/chat/completions", headers or {}, raw)


def frames(resp: SimResponse) -> list[Any]:
    assert resp.status == 200, resp.chunks
    return sse_chunks(d for _, d in resp.chunks)


def collect(chunks: list[Any]) -> dict[str, Any]:
    return accumulate(chunks)


REPLAY = "The `reasoning_content` in the thinking mode must be passed back to the API."


def error_of(sim: Simulator, body: dict | bytes, **kw) -> tuple[int, str]:
    resp = chat(sim, body, **kw)
    err = json.loads(b"".join(d for _, d in resp.chunks))["error"]
    return resp.status, err["message"]


def tool_turn(reasoning: object = "thinking", *, key: str = "reasoning_content",
              call_id: str = "call_1") -> list[dict]:
    assistant: dict = {"role": "assistant", "content": None, "tool_calls": [
        {"id": call_id, "type": "function",
         "function": {"name": "Bash", "arguments": '{"command":"ls"}'}}]}
    if reasoning is not ...:
        assistant[key] = reasoning
    return [user("run ls"), assistant, {"role": "tool", "tool_call_id": call_id, "content": "a"}]
