"""structlog configuration and the one canonical ``request_finished`` line per request.

Nothing is logged per stream event at info level. Bodies and keys are never logged; every value
passes through ``redact`` so a key that slipped into an error message is masked.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
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


class _Direct:
    """What ``configure`` installed in JSON mode, so that ``request_finished`` can write its line
    without structlog's per-call machinery (bind, processor chain), byte-identical, as long as
    nobody reconfigured structlog since (``capture_logs`` in tests, an operator's setup)."""

    __slots__ = ("file", "level", "processors", "second", "stamp")

    def __init__(self, processors: list[Any], file: Any, level: int) -> None:
        self.processors = tuple(processors)  # compared by content: capture_logs edits the list in place
        self.file, self.level = file, level
        self.second, self.stamp = -1, ""

    def timestamp(self) -> str:
        """``TimeStamper(fmt="iso", utc=True)``'s format, the seconds part made once per second."""
        now = time.time()
        second = int(now)
        if second != self.second:
            self.second, self.stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self.stamp}.{int((now - second) * 1e6):06d}Z"


_direct: _Direct | None = None


def configure(level: str = "info", *, json: bool = True, file: Any = None) -> None:
    """Configure structlog once (idempotent); logs go to stderr (or the binary ``file``), one write
    per line."""
    global _direct
    out = file or sys.stderr.buffer
    if json:
        tail: list[Any] = [_render_json]
        factory: Any = structlog.BytesLoggerFactory(file=out)
    else:
        tail = [_redact_values, structlog.dev.ConsoleRenderer(colors=False)]
        factory = structlog.PrintLoggerFactory(file=sys.stderr)
    processors = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        *tail,
    ]
    min_level = _LEVELS.get(level, logging.INFO)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(min_level),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )
    _direct = _Direct(processors, out, min_level) if json else None


# The line lists at most this many losses (each cut to LOSS_CHARS); past it, it also counts them
# all and by kind (at most this many kinds), so a body of 50,000 unknown blocks is not a 3 MB line.
LOG_LOSSES = 20
LOSS_CHARS = 300


def _losses(losses: list[Any]) -> dict[str, Any]:
    listed = []
    for loss in losses[:LOG_LOSSES]:
        text = f"{loss.what}: {loss.detail}" if loss.detail else loss.what
        listed.append(text if len(text) <= LOSS_CHARS else text[:LOSS_CHARS] + "...")
    if len(losses) <= LOG_LOSSES:
        return {"losses": listed}
    kinds = Counter(loss.what[:LOSS_CHARS] for loss in losses)
    return {"losses": listed, "losses_total": len(losses), "loss_kinds": dict(kinds.most_common(LOG_LOSSES))}


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
    }
    fields.update(_losses(ctx.losses))
    if outcome.first_byte is not None:
        fields["ttfb_ms"] = round((outcome.first_byte - ctx.started) * 1000, 2)
    fields.update(ctx.fields)
    direct = _direct
    if (direct is not None and not ctx.log_bound and direct.level <= logging.INFO
            and tuple(structlog.get_config()["processors"]) == direct.processors
            and not structlog.contextvars.get_contextvars()):
        line = {"request_id": ctx.request_id, "pipeline": ctx.pipeline_id, "client": ctx.client, **fields,
                "event": "request_finished", "level": "info", "timestamp": direct.timestamp()}
        direct.file.write(_render_json(None, "info", line) + b"\n")
        direct.file.flush()
        return
    ctx.log.info("request_finished", **fields)


__all__ = ["configure", "request_finished"]
