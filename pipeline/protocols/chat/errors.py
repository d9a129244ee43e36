"""Chat-dialect errors both ways: upstream error bodies/chunks → neutral ``ErrorInfo``, and neutral
codes → OpenAI ``{"error": {message, type, param, code}}`` objects for Chat clients (the table
and the status map are shared with Responses: ``pipeline/protocols/openai.py``).

Shapes handled: OpenAI/DeepSeek/llama.cpp ``{"error": {...}}``, Ollama ``{"error": "text"}``,
vLLM ``{"object": "error", "message", "type", "code"}``, FastAPI ``{"detail"}``, and non-JSON.
Facts: ../shared/PROTOCOLS.md §3.4, §4.7, §5.9.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from pipeline.errors import CODES
from pipeline.events import ErrorInfo
from pipeline.protocols.chat.models import ANY_DECODER, ENCODER
from pipeline.protocols.openai import error_type_code, upstream_code

MAX_MESSAGE_CHARS = 2000

_CONTEXT_TEXT = re.compile(
    r"context[ _]length|maximum context|context[ _]window|context size|too long|exceed_context"
    r"|exceeds? the context",
    re.IGNORECASE,
)

# Substrings of an upstream error ``code`` / ``type`` → neutral code (first match wins).
_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("context_length", "context_length_exceeded"),
    ("exceed_context", "context_length_exceeded"),
    ("rate_limit", "rate_limit"),
    ("429", "rate_limit"),
    ("insufficient_system_resource", "overloaded"),
    ("overload", "overloaded"),
    ("unavailable", "overloaded"),
    ("503", "overloaded"),
    ("502", "overloaded"),
    ("insufficient_quota", "billing"),
    ("insufficient_balance", "billing"),
    ("billing", "billing"),
    ("402", "billing"),
    ("auth", "authentication"),
    ("invalid_api_key", "authentication"),
    ("401", "authentication"),
    ("permission", "permission"),
    ("403", "permission"),
    ("not_found", "not_found"),
    ("notfound", "not_found"),
    ("404", "not_found"),
    ("timeout", "timeout"),
    ("504", "timeout"),
    ("unprocessable", "unprocessable"),
    ("422", "unprocessable"),
    ("invalid_request", "invalid_request"),
    ("badrequest", "invalid_request"),
    ("bad_request", "invalid_request"),
    ("400", "invalid_request"),
)

_RETRY_TEXT = re.compile(r"try again in (\d+(?:\.\d+)?)\s*(ms|s)\b", re.IGNORECASE)

def _keyword_code(*values: Any) -> str | None:
    for value in values:
        if value is None or value == "":
            continue
        text = str(value).lower()
        for needle, code in _KEYWORDS:
            if needle in text:
                return code
    return None


def _fields(payload: Any) -> tuple[str | None, Any, Any]:
    """(message, type, code) from any of the known error shapes."""
    if isinstance(payload, str):
        return payload, None, None
    if not isinstance(payload, dict):
        return None, None, None
    inner = payload.get("error")
    if isinstance(inner, dict):
        return _message_of(inner), inner.get("type"), inner.get("code")
    if isinstance(inner, str) and inner:
        return inner, payload.get("type"), payload.get("code")
    return _message_of(payload), payload.get("type"), payload.get("code")


def _message_of(obj: dict[str, Any]) -> str | None:
    for key in ("message", "detail", "msg"):
        value = obj.get(key)
        if isinstance(value, str) and value:
            return value
        if value:  # FastAPI validation details are a list of objects
            return ENCODER.encode(value).decode("utf-8", "replace")
    return None


def _retry_after(header: str | None, message: str) -> float | None:
    if header:
        try:
            return max(0.0, float(header.strip()))
        except ValueError:
            pass  # an HTTP date: leave it to the caller's default
    match = _RETRY_TEXT.search(message)
    if match:
        value = float(match.group(1))
        return value / 1000.0 if match.group(2).lower() == "ms" else value
    return None


def parse_error_body(status: int, body: bytes, *, retry_after: str | None = None) -> ErrorInfo:
    """A neutral ``ErrorInfo`` for an upstream HTTP error response, keeping its message.

    ``retry_after`` is the upstream's ``Retry-After`` header value, if any.
    """
    try:
        payload: Any = ANY_DECODER.decode(body) if body.strip() else None
    except msgspec.DecodeError:
        payload = None
    message, etype, ecode = _fields(payload)
    if not message:
        text = body.decode("utf-8", "replace").strip()
        message = text[:MAX_MESSAGE_CHARS] if text else f"upstream returned HTTP {status}"
    code = upstream_code(status)
    if code == "invalid_request" and (
        "context_length_exceeded" in (_keyword_code(ecode), _keyword_code(etype))
        or _CONTEXT_TEXT.search(message)
    ):
        code = "context_length_exceeded"
    info_retry = _retry_after(retry_after, message) if code in ("rate_limit", "overloaded") else None
    return ErrorInfo(code=code, message=message, status=CODES[code], retry_after_s=info_retry)


def error_from_payload(payload: Any) -> ErrorInfo:
    """A neutral ``ErrorInfo`` for an in-stream error object (a chunk's top-level ``error``)."""
    if isinstance(payload, dict):
        message, etype, ecode = _message_of(payload), payload.get("type"), payload.get("code")
    else:
        message, etype, ecode = (str(payload) if payload else None), None, None
    message = message or "upstream reported an error"
    code = _keyword_code(ecode) or _keyword_code(etype)
    if code is None or code == "invalid_request":
        code = "context_length_exceeded" if _CONTEXT_TEXT.search(message) else (code or "api_error")
    return ErrorInfo(code=code, message=message, status=CODES[code])


def openai_error(info: ErrorInfo) -> dict[str, Any]:
    """The OpenAI error object for a neutral error: ``{"error": {message, type, param, code}}``."""
    etype, ecode = error_type_code("chat", info.code)
    return {"error": {"message": info.message, "type": etype, "param": None, "code": ecode}}


__all__ = ["error_from_payload", "openai_error", "parse_error_body"]
