"""structlog configuration and the one canonical ``request_finished`` line per request.

Nothing is logged per stream event at info level. Bodies and keys are never logged; every value
passes through ``redact`` so a key that slipped into an error message is masked.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import msgspec
import structlog

from pipeline.errors import redact, redact_bytes

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _redact_values(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = redact(value)
    return event_dict


_JSON = msgspec.json.Encoder(enc_hook=repr)  # what JSON can't carry is logged as its repr


def _render_json(_: Any, __: str, event_dict: dict[str, Any]) -> bytes:
    """The JSON line, key-shaped strings redacted in one pass over the bytes."""
    return redact_bytes(_JSON.encode(event_dict))


def configure(level: str = "info", *, json: bool = True, file: Any = None) -> None:
    """Configure structlog once (idempotent); logs go to stderr (or the binary ``file``), one write
    per line."""
    if json:
        tail: list[Any] = [_render_json]
        factory: Any = structlog.BytesLoggerFactory(file=file or sys.stderr.buffer)
    else:
        tail = [_redact_values, structlog.dev.ConsoleRenderer(colors=False)]
        factory = structlog.PrintLoggerFactory(file=sys.stderr)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            *tail,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )


def request_finished(ctx: Any, outcome: Any, *, kind: str, model: str | None) -> None:
    now = time.perf_counter()
    fields: dict[str, Any] = {
        "upstream": ctx.upstream_id,
        "model": model,
        "upstream_model": ctx.upstream_model or None,
        "endpoint": kind,
        "status": outcome.status,
        "duration_ms": round((now - ctx.started) * 1000, 2),
        "stop_reason": outcome.stop_reason,
        "error_code": outcome.error_code,
        "attempts": outcome.attempts,
        "tokens": {
            "input": outcome.input_tokens, "output": outcome.output_tokens,
            "cached": outcome.cached_tokens, "reasoning": outcome.reasoning_tokens,
        },
        "losses": [f"{loss.what}: {loss.detail}" if loss.detail else loss.what for loss in ctx.losses],
    }
    if outcome.first_byte is not None:
        fields["ttfb_ms"] = round((outcome.first_byte - ctx.started) * 1000, 2)
    fields.update(ctx.fields)
    ctx.log.info("request_finished", **fields)


__all__ = ["configure", "request_finished"]
