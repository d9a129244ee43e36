"""One error tree for the gateway: every failure carries a neutral code, a status hint and a blame.

Client codecs render a ``GatewayError`` (or its ``ErrorInfo``) in their own dialect; nothing else
decides wire error shapes. ``ConfigError`` is for startup and ``python -m pipeline check``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from pipeline.events import ErrorInfo

if TYPE_CHECKING:
    from pipeline.model import ChatRequest

Blame = Literal["client", "upstream", "gateway"]

# Neutral error codes and their default HTTP status.
CODES: dict[str, int] = {
    "invalid_request": 400,
    "context_length_exceeded": 400,
    "authentication": 401,
    "billing": 402,
    "permission": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "request_timeout": 408,
    "request_too_large": 413,
    "unsupported_media_type": 415,
    "unprocessable": 422,
    "rate_limit": 429,
    "api_error": 500,
    "bad_gateway": 502,
    "overloaded": 503,
    "timeout": 504,
}
# Codes of a transient upstream failure, worth another try while the client has nothing yet (an
# early in-stream error, or any in-stream error of a collected answer): overloaded, rate limited,
# a server error, a broken or cut stream, a timeout. A deterministic answer (invalid_request,
# context_length_exceeded, authentication, ...) would only fail again.
RETRYABLE_CODES = frozenset({"overloaded", "rate_limit", "api_error", "bad_gateway", "timeout"})


class GatewayError(Exception):
    """A failure with a neutral ``code`` (a key of ``CODES``).

    Args:
        message: human-readable text, already free of secrets.
        code: neutral code; decides the dialect's error type.
        status: HTTP status hint; defaults from ``CODES``.
        blame: who caused it.
        retry_after_s: for rate limits, seconds the client should wait.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "api_error",
        status: int | None = None,
        blame: Blame = "gateway",
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}")
        self.message = message
        self.code = code
        self.status = status if status is not None else CODES[code]
        self.blame: Blame = blame
        self.retry_after_s = retry_after_s

    def info(self) -> ErrorInfo:
        return ErrorInfo(
            code=self.code, message=self.message, status=self.status, retry_after_s=self.retry_after_s
        )

    @classmethod
    def from_info(cls, info: ErrorInfo, *, blame: Blame = "upstream") -> GatewayError:
        return cls(
            info.message,
            code=info.code if info.code in CODES else "api_error",
            status=info.status,
            blame=blame,
            retry_after_s=info.retry_after_s,
        )


class RequestError(GatewayError):
    """The client's request is malformed or unsupported (400 unless said otherwise)."""

    def __init__(self, message: str, *, code: str = "invalid_request", status: int | None = None) -> None:
        super().__init__(message, code=code, status=status, blame="client")


class UpstreamError(GatewayError):
    """The upstream failed or refused before or during the stream."""

    def __init__(self, message: str, *, code: str = "bad_gateway", status: int | None = None,
                 retry_after_s: float | None = None, retryable: bool = False) -> None:
        super().__init__(message, code=code, status=status, blame="upstream", retry_after_s=retry_after_s)
        self.retryable = retryable


class Redo(UpstreamError):
    """A response hook found the upstream's answer unusable as it stands (it does not validate
    against the schema the client asked for, say) and asks for another try at the same upstream
    with the request amended (``amend``: the shaped request -> the one to send instead).

    Raised from ``on_event`` (or ``on_end``) by a stage that held the whole answer back: nothing
    but ``Heartbeat`` events may have passed it towards the client's encoder, so the next try's
    answer is the client's answer, in the same response (a streaming client has at most its
    status line and keep-alives). The retry loop (``pipeline.retry``) sends the amended request at
    once, without backoff and outside the retry budget, at most ``MAX_REDOS`` times per request;
    the stage bounds its own tries below that.
    """

    def __init__(self, reason: str, amend: Callable[[ChatRequest], ChatRequest]) -> None:
        super().__init__(reason, code="unprocessable", status=422)
        self.amend = amend


MAX_REDOS = 3  # a stage's loop guard: past it the Redo's reason is the client's 422


class ConfigError(Exception):
    """A startup/config problem; the message names the pipeline, stage index and field."""


_SECRETISH = re.compile(r"(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+[A-Za-z0-9._\-]{6,})")
_SECRETISH_BYTES = re.compile(_SECRETISH.pattern.encode())


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove known secrets and key-shaped strings from ``text``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return _SECRETISH.sub("[redacted]", text)


def redact_bytes(data: bytes) -> bytes:
    """``redact`` for encoded text (a rendered log line): key-shaped strings only."""
    if b"sk-" not in data and b"Bearer" not in data:
        return data
    return _SECRETISH_BYTES.sub(b"[redacted]", data)


__all__ = [
    "CODES",
    "MAX_REDOS",
    "RETRYABLE_CODES",
    "Blame",
    "ConfigError",
    "GatewayError",
    "Redo",
    "RequestError",
    "UpstreamError",
    "redact",
    "redact_bytes",
]
