"""Shared helpers for the Responses request decoder tests: the Codex captures, wire item builders
(``msg``, ``fc``, ``out``, ``reasoning``), ``decode`` (the request), ``decode_echo`` (the echo for
the encoder) and ``error_of`` for the expected 400s.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.errors import RequestError
from pipeline.protocols.responses import decode_request
from tests.captures import capture_body, capture_paths

CODEX = [p.name for p in capture_paths("codex-*.json")]
HOSTED = {"web_search", "tool_search", "image_generation", "file_search", "code_interpreter"}


body_of = capture_body


def decode(body: dict[str, Any]):
    return decode_request(json.dumps(body).encode())[0]


def decode_echo(body: dict[str, Any]):
    """What the decoder tells the encoder about ``body`` (a ``ResponsesEcho``)."""
    return decode_request(json.dumps(body).encode())[1]


def req(items: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-x", "input": items, **extra}


def msg(role: str, *parts: dict[str, Any] | str) -> dict[str, Any]:
    content = [{"type": "input_text", "text": p} if isinstance(p, str) else p for p in parts]
    return {"type": "message", "role": role, "content": content}


def fc(call_id: str, name: str = "shell", args: str = '{"cmd":"ls"}', **extra: Any) -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": args, **extra}


def out(call_id: str, output: Any = "ok", kind: str = "function_call_output") -> dict[str, Any]:
    return {"type": kind, "call_id": call_id, "output": output}


def reasoning(summary: str = "plan", enc: str | None = "ENC", content: list[str] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "reasoning", "summary": [{"type": "summary_text", "text": summary}],
                            "encrypted_content": enc}
    if content is not None:
        item["content"] = [{"type": "reasoning_text", "text": t} for t in content]
    return item


def loss_keys(request) -> list[str]:
    return [loss.what for loss in request.losses]


def error_of(body: Any) -> str:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(RequestError) as info:
        decode_request(raw)
    assert info.value.status == 400
    return info.value.message
