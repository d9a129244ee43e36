"""Chat-dialect errors both ways: upstream error bodies/chunks → neutral ``ErrorInfo``, and neutral
codes → OpenAI ``{"error": {message, type, param, code}}`` objects for Chat clients. The body
parser, the table and the status map are shared with Responses (its upstream too) and live in
``pipeline/protocols/openai.py``; this module hands them on under their Chat names.

Shapes handled: OpenAI/DeepSeek/llama.cpp ``{"error": {...}}``, Ollama ``{"error": "text"}``,
vLLM ``{"object": "error", "message", "type", "code"}``, FastAPI ``{"detail"}``, and non-JSON.
Facts: ../shared/PROTOCOLS.md §3.4, §4.7, §5.9.
"""

from __future__ import annotations

from typing import Any

from pipeline.events import ErrorInfo
from pipeline.protocols.openai import MAX_MESSAGE_CHARS, error_from_payload, error_type_code, parse_error_body


def openai_error(info: ErrorInfo) -> dict[str, Any]:
    """The OpenAI error object for a neutral error: ``{"error": {message, type, param, code}}``."""
    etype, ecode = error_type_code("chat", info.code)
    return {"error": {"message": info.message, "type": etype, "param": None, "code": ecode}}


__all__ = ["MAX_MESSAGE_CHARS", "error_from_payload", "openai_error", "parse_error_body"]
