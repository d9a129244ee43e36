"""Helpers for tests that drive or inspect the simulator (public, like ``pipeline.testing``).

``sse_chunks`` decodes Chat Completions SSE bytes into JSON chunks (``"[DONE]"`` kept as a
string, undecodable data lines as ``bytes``); ``accumulate`` folds them into the answer a client
would see; ``chat_tools`` turns Anthropic or Responses tool definitions (as found in the
captures) into the Chat Completions function tools a gateway would send upstream.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from pipeline.sse import SseDecoder

_DECODE = msgspec.json.Decoder()

# How a freeform (custom) tool reaches a Chat upstream: one string parameter (PROTOCOLS.md §5).
FREEFORM_PARAMETERS = {"type": "object", "properties": {"input": {
    "type": "string", "description": "raw input matching the grammar"}},
    "required": ["input"]}


def sse_chunks(pieces: Iterable[bytes]) -> list[Any]:
    """Decode SSE pieces: JSON chunks as dicts, ``"[DONE]"``, bad data lines as bytes."""
    decoder = SseDecoder()
    frames = []
    for piece in pieces:
        frames += decoder.feed(piece)
    frames += decoder.close()
    out: list[Any] = []
    for frame in frames:
        if frame.data == b"[DONE]":
            out.append("[DONE]")
            continue
        try:
            out.append(_DECODE.decode(frame.data))
        except msgspec.DecodeError:
            out.append(frame.data)
    return out


def accumulate(chunks: list[Any], reasoning_field: str = "reasoning_content") -> dict[str, Any]:
    """Fold chunks into ``{reasoning, content, calls: [{id, name, arguments}], finish, usage}``.

    Tool-call fragments are keyed on ``index`` (never on ``id``), as a client must.
    """
    reasoning, content = [], []
    calls: dict[int, dict[str, str]] = {}
    finish = usage = None
    for chunk in chunks:
        if not isinstance(chunk, dict):
            continue
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            reasoning.append(delta.get(reasoning_field) or "")
            content.append(delta.get("content") or "")
            for frag in delta.get("tool_calls") or ():
                call = calls.setdefault(frag["index"], {"id": "", "name": "", "arguments": ""})
                call["id"] = frag.get("id") or call["id"]
                fn = frag.get("function") or {}
                call["name"] = fn.get("name") or call["name"]
                call["arguments"] += fn.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    return {"reasoning": "".join(reasoning), "content": "".join(content),
            "calls": [calls[i] for i in sorted(calls)], "finish": finish, "usage": usage}


def chat_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Anthropic (``input_schema``) or Responses (``function`` / ``custom``) tools → Chat tools.

    Hosted tools (``web_search``, ``tool_search``) and ``namespace`` groups are skipped.
    """
    out = []
    for tool in tools:
        kind = tool.get("type")
        if "input_schema" in tool:
            params = tool["input_schema"]
        elif kind == "function":
            params = tool.get("parameters") or {}
        elif kind == "custom":
            params = FREEFORM_PARAMETERS
        else:
            continue
        fn = {"name": tool["name"], "description": tool.get("description", ""),
              "parameters": params}
        out.append({"type": "function", "function": fn})
    return out


__all__ = ["FREEFORM_PARAMETERS", "accumulate", "chat_tools", "sse_chunks"]
