"""Errors in the Responses dialect: HTTP error bodies, ``response.failed`` codes (§5.9), and the
``input_tokens`` body. The HTTP error table and ``/v1/models`` are shared with Chat
(``pipeline/protocols/openai.py``).

Failure codes are chosen for how Codex reacts to them (PROTOCOLS §2.6): see ``FAILED_CODES``.
"""

from __future__ import annotations

import msgspec

from pipeline.errors import GatewayError
from pipeline.events import ErrorInfo
from pipeline.protocols.base import ErrorBody, retry_after_headers
from pipeline.protocols.openai import error_type_code
from pipeline.protocols.responses.output_models import ErrorDetail, ErrorEnvelope, InputTokens

_ENCODER = msgspec.json.Encoder()
_JSON = (b"content-type", b"application/json")

# neutral code -> response.failed error.code. Codex 0.169 (codex-api sse/responses.rs
# ``process_responses_event``, codex-protocol error.rs ``is_retryable``): context_length_exceeded,
# insufficient_quota, usage_not_included, invalid_prompt, cyber_policy and server_is_overloaded /
# slow_down ("Selected model is at capacity", exit 1) are fatal; any other code is
# ``ApiError::Retryable``, a stream error retried up to ``stream_max_retries`` (default 5), with
# the delay of "try again in Ns" for rate_limit_exceeded. A transient upstream failure after the
# first content (drop, stall, error chunk) is therefore OpenAI's own ``server_error``. An upstream
# authentication/permission failure is the gateway's configuration, which no retry fixes: the
# fatal invalid_prompt.
FAILED_CODES: dict[str, str] = {
    "context_length_exceeded": "context_length_exceeded",
    "rate_limit": "rate_limit_exceeded",
    "overloaded": "server_error",
    "timeout": "server_error",
    "bad_gateway": "server_error",
    "billing": "insufficient_quota",
    "invalid_request": "invalid_prompt",
    "unprocessable": "invalid_prompt",
    "request_too_large": "invalid_prompt",
    "request_timeout": "server_error",  # never in a stream (the body came first): retryable anyway
    "unsupported_media_type": "invalid_prompt",
    "not_found": "invalid_prompt",
    "method_not_allowed": "invalid_prompt",
    "authentication": "invalid_prompt",
    "permission": "invalid_prompt",
    "api_error": "server_error",
}


def retry_message(message: str, retry_after_s: float | None) -> str:
    """Append Codex's retry hint ("Please try again in 2.5s.") when the delay is known."""
    if retry_after_s is None or "try again in" in message.lower():
        return message
    sep = "" if not message or message.endswith((".", "!", "?")) else "."
    return f"{message}{sep} Please try again in {retry_after_s:g}s.".lstrip()


def failure(info: ErrorInfo) -> tuple[str, str]:
    """``(code, message)`` for ``response.failed``'s ``error``."""
    code = FAILED_CODES.get(info.code, "server_error")
    message = info.message
    if code == "rate_limit_exceeded":
        message = retry_message(message, info.retry_after_s)
    return code, message


def render_error(err: GatewayError) -> ErrorBody:
    """An OpenAI-style HTTP error response (nothing was sent yet)."""
    kind, code = error_type_code("responses", err.code)
    message = err.message
    headers = [_JSON]
    if err.code == "rate_limit" and err.retry_after_s is not None:
        message = retry_message(message, err.retry_after_s)
        headers += retry_after_headers(err.retry_after_s, millis=True)
    body = ErrorEnvelope(ErrorDetail(message=message, type=kind, param=None, code=code))
    return ErrorBody(status=err.status, headers=headers, body=_ENCODER.encode(body))


def render_count(input_tokens: int) -> bytes:
    """``POST /v1/responses/input_tokens`` body."""
    return _ENCODER.encode(InputTokens(input_tokens=input_tokens))


__all__ = ["FAILED_CODES", "failure", "render_count", "render_error", "retry_message"]
