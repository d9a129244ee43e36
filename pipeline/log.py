"""structlog configuration and the one canonical ``request_finished`` line per request.

Nothing is logged per stream event at info level. Bodies and keys are never logged; every value
passes through ``redact`` so a key that slipped into an error message is masked.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import structlog

from pipeline.errors import redact

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _redact_values(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = redact(value)
    return event_dict


def configure(level: str = "info", *, json: bool = True) -> None:
    """Configure structlog once (idempotent); logs go to stderr."""
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_values,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
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
