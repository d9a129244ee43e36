"""What the two OpenAI dialects share: the error table, the upstream status map, ``/v1/models``.

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

from collections.abc import Sequence
from typing import Literal

import msgspec

from pipeline.errors import CODES
from pipeline.protocols.base import ModelInfo

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


_ENCODER = msgspec.json.Encoder()


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
    "RESPONSES_CODED",
    "RESPONSES_TYPES",
    "Dialect",
    "ModelEntry",
    "ModelList",
    "error_type_code",
    "render_models",
    "upstream_code",
]
