"""Small shared pieces of the Chat codec: id generation, usage conversion, reasoning extraction.

Kept apart so the upstream decoder and the client-side codec agree on them without importing
each other.
"""

from __future__ import annotations

import secrets
from typing import Any

from pipeline.events import Usage
from pipeline.protocols.chat.models import ENCODER, UsageView


def new_call_id() -> str:
    """A fresh tool call id in OpenAI's style: ``call_`` + 24 hex digits."""
    return "call_" + secrets.token_hex(12)


def new_completion_id() -> str:
    """A fresh completion id: ``chatcmpl-`` + 24 hex digits."""
    return "chatcmpl-" + secrets.token_hex(12)


def convert_usage(usage: UsageView) -> Usage:
    """Neutral usage; DeepSeek's ``prompt_cache_hit_tokens`` wins over ``cached_tokens``."""
    cached = usage.prompt_cache_hit_tokens
    if cached is None and usage.prompt_tokens_details is not None:
        cached = usage.prompt_tokens_details.cached_tokens
    details = usage.completion_tokens_details
    reasoning = details.reasoning_tokens if details is not None else None
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cached_input_tokens=cached or 0,
        reasoning_tokens=reasoning or 0,
    )


def reasoning_text(value: Any) -> str | None:
    """A ``reasoning`` value as text: a string, or an object with ``text`` / ``content``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("text", "content"):
            text = value.get(key)
            if isinstance(text, str):
                return text
    return None


def arguments_text(value: Any) -> str:
    """Tool call arguments as JSON text (a few servers send an object instead of a string)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return ENCODER.encode(value).decode()


__all__ = ["arguments_text", "convert_usage", "new_call_id", "new_completion_id", "reasoning_text"]
