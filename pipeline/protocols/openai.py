"""What the two OpenAI dialects share: the error table, the upstream status map and error-body
parser (every OpenAI-shaped upstream's), a freeform tool's function form, ``/v1/models``.

Chat Completions and Responses clients read the same error object
(``{"error": {message, type, param, code}}``) and the same model list, so both codecs take them
from here and neither imports the other. The error table is written once, in ``ERRORS``; where
the dialects differ, the differences are the data under it, with the reason:

- Chat follows the OpenAI-compatible servers a Chat client also talks to directly (DeepSeek's
  own 401 is ``authentication_error``): every error carries a ``code``, an unknown neutral code
  is passed through as the code.
- Responses follows api.openai.com's own bodies, which Codex was written against: a 401 and a
  404 are ``invalid_request_error``, a 429 is of type ``requests``, and ``code`` is set only
  where OpenAI sets one (``RESPONSES_CODED``), else ``null``.

``upstream_code`` is the one map from an OpenAI-compatible upstream's HTTP status to a neutral
code (the Chat upstream decoder's).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from pipeline.errors import CODES
from pipeline.events import ErrorInfo
from pipeline.model import ToolSpec
from pipeline.protocols.base import ModelInfo

_ANY = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()

Dialect = Literal["chat", "responses"]

# Neutral code → (OpenAI error type, OpenAI error code), as a Chat client gets it.
ERRORS: dict[str, tuple[str, str]] = {
    "invalid_request": ("invalid_request_error", "invalid_request_error"),
    "context_length_exceeded": ("invalid_request_error", "context_length_exceeded"),
    "authentication": ("authentication_error", "invalid_api_key"),
    "billing": ("insufficient_quota", "insufficient_quota"),
    "permission": ("permission_error", "permission_denied"),
    "not_found": ("not_found_error", "not_found"),
    "method_not_allowed": ("invalid_request_error", "method_not_allowed"),
    "request_too_large": ("invalid_request_error", "request_too_large"),
    "request_timeout": ("invalid_request_error", "request_timeout"),
    "unsupported_media_type": ("invalid_request_error", "unsupported_media_type"),
    "unprocessable": ("invalid_request_error", "unprocessable_entity"),
    "rate_limit": ("rate_limit_error", "rate_limit_exceeded"),
    "api_error": ("server_error", "server_error"),
    "bad_gateway": ("server_error", "bad_gateway"),
    "overloaded": ("server_error", "server_is_overloaded"),
    "timeout": ("server_error", "timeout"),
}
# Where Responses (api.openai.com's bodies) names the type differently.
RESPONSES_TYPES: dict[str, str] = {
    "authentication": "invalid_request_error",
    "not_found": "invalid_request_error",
    "rate_limit": "requests",
}
# The neutral codes whose error ``code`` Responses sends; the others go out as ``null``.
RESPONSES_CODED = frozenset({
    "context_length_exceeded", "authentication", "billing", "not_found", "request_too_large",
    "request_timeout", "rate_limit", "overloaded",
})

_TABLES: dict[Dialect, dict[str, tuple[str, str | None]]] = {
    "chat": dict(ERRORS),
    "responses": {
        code: (RESPONSES_TYPES.get(code, etype), ecode if code in RESPONSES_CODED else None)
        for code, (etype, ecode) in ERRORS.items()
    },
}


def error_type_code(dialect: Dialect, code: str) -> tuple[str, str | None]:
    """``(type, code)`` of the OpenAI error object for a neutral code in ``dialect``; a code
    outside the table is a ``server_error`` (Chat passes the code through, Responses sends null)."""
    found = _TABLES[dialect].get(code)
    if found is not None:
        return found
    return "server_error", (code if dialect == "chat" else None)


# An upstream's HTTP status → neutral code, where it is not the status's own code in ``CODES``:
# a gateway or proxy failure in front of the model (502, 503, 504, 529) is the upstream being
# overloaded, and an upstream's 408 stays a 400 (``request_timeout`` is a client's slow body).
_UPSTREAM_STATUS: dict[int, str] = {
    400: "invalid_request",
    408: "invalid_request",
    500: "api_error",
    502: "overloaded",
    503: "overloaded",
    504: "overloaded",
    529: "overloaded",
}
_BY_STATUS: dict[int, str] = {}
for _code, _status in CODES.items():
    _BY_STATUS.setdefault(_status, _code)


def upstream_code(status: int) -> str:
    """The neutral code for an OpenAI-compatible upstream's HTTP error status."""
    code = _UPSTREAM_STATUS.get(status) or _BY_STATUS.get(status)
    if code is not None:
        return code
    return "api_error" if 500 <= status < 600 else "invalid_request"


# ---------------------------------------------------------------- tools as an OpenAI function

LOCAL_SHELL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "command": {
            "type": "array",
            "items": {"type": "string"},
            "description": "The command and its arguments, e.g. [\"bash\", \"-lc\", \"ls\"].",
        },
        "workdir": {"type": "string", "description": "Working directory for the command."},
        "timeout_ms": {"type": "integer", "description": "Timeout in milliseconds."},
    },
    "required": ["command"],
}
LOCAL_SHELL_DESCRIPTION = "Run a command on the user's machine and return its output."


def freeform_parameters(spec: ToolSpec) -> dict[str, Any]:
    """The function parameters a freeform (custom) tool is offered with where only functions are
    accepted: one string ``input`` whose description carries the grammar; its call's arguments
    are then ``{"input": ...}``, the neutral form of a custom call."""
    note = "The raw tool input."
    if spec.grammar:
        flavour = f" ({spec.syntax})" if spec.syntax else ""
        note = f"The raw tool input. It must match this grammar{flavour}:\n{spec.grammar}"
    return {"type": "object", "properties": {"input": {"type": "string", "description": note}}, "required": ["input"]}


# ---------------------------------------------------------------- upstream error bodies and objects

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
            return _ENCODER.encode(value).decode("utf-8", "replace")
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
        payload: Any = _ANY.decode(body) if body.strip() else None
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



class ModelEntry(msgspec.Struct, kw_only=True):
    id: str
    object: str = "model"
    created: int = 0
    owned_by: str
    context_window: int
    max_output_tokens: int


class ModelList(msgspec.Struct):
    data: list[ModelEntry]
    object: str = "list"


def render_models(models: Sequence[ModelInfo]) -> bytes:
    """``GET /v1/models`` in OpenAI's list shape, plus the limits Codex-like clients can use."""
    entries = [
        ModelEntry(
            id=m.id,
            owned_by=m.owned_by,
            context_window=m.context_window,
            max_output_tokens=m.max_output_tokens,
        )
        for m in models
    ]
    return _ENCODER.encode(ModelList(data=entries))


__all__ = [
    "ERRORS",
    "LOCAL_SHELL_DESCRIPTION",
    "LOCAL_SHELL_SCHEMA",
    "MAX_MESSAGE_CHARS",
    "RESPONSES_CODED",
    "RESPONSES_TYPES",
    "Dialect",
    "ModelEntry",
    "ModelList",
    "error_from_payload",
    "error_type_code",
    "freeform_parameters",
    "parse_error_body",
    "render_models",
    "upstream_code",
]
