"""A fast prompt-token estimator, calibrated per upstream model from the usage upstreams report.

The raw estimate counts characters by class (ASCII ~3.8 chars a token, other scripts ~1.1 tokens
a character) over every text the upstream will see, plus per-message and per-tool overheads. A
``Calibrator`` keeps, per upstream model, an exponential moving average of reported ÷ estimated,
so estimates converge to the upstream's real tokenizer within a few percent. A session's next
request estimates only its new messages (``messages_estimate``, with the request's ``Recall``).
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from pipeline.conversation import Recall, same_prefix
from pipeline.model import ChatRequest, ImagePart, Message, TextPart, ThinkingPart, ToolCallPart, ToolResultPart

_ENC = msgspec.json.Encoder()
MESSAGE_OVERHEAD = 4
TOOL_OVERHEAD = 8
IMAGE_TOKENS = 800


def text_tokens(text: str) -> float:
    """Raw (uncalibrated) token estimate of one string."""
    n = len(text)
    if text.isascii():
        return n / 3.8
    extra = len(text.encode()) - n  # 1 per 2-byte char, 2 per 3-byte char (CJK)
    wide = min(n, extra // 2 + (extra % 2))
    return (n - wide) / 3.8 + wide * 1.1


def message_estimate(message: Message) -> float:
    """Raw estimate of one message, its overhead included."""
    total = float(MESSAGE_OVERHEAD)
    if message.reasoning:
        total += text_tokens(message.reasoning)
    for part in message.parts:
        if isinstance(part, TextPart):
            total += text_tokens(part.text)
        elif isinstance(part, ToolCallPart):
            total += text_tokens(part.arguments) + text_tokens(part.name) + 4
        elif isinstance(part, ToolResultPart):
            for inner in part.content:
                total += text_tokens(inner.text) if isinstance(inner, TextPart) else IMAGE_TOKENS
        elif isinstance(part, ImagePart):
            total += IMAGE_TOKENS
        elif isinstance(part, ThinkingPart):
            total += text_tokens(part.text)
    return total


class _Sums(NamedTuple):
    """A request's messages and the running sum of their estimates after each (a slot's value)."""

    messages: tuple[Message, ...]
    sums: tuple[float, ...]
    reused: int  # leading sums taken from the request before (for tests and the bench)


def messages_estimate(messages: tuple[Message, ...], recall: Recall | None = None, slot: str = "") -> float:
    """The messages' raw estimate, summed in order; with ``recall`` bound, the running sums are
    kept in its slot ``slot`` and the session's next request adds from where its leading messages
    (the very same objects, ``same_prefix``) left off: the same float, added up the same way."""
    kept: _Sums | None = recall.before(slot) if recall is not None else None
    start = same_prefix(kept.messages, messages) if kept is not None else 0
    sums = list(kept.sums[:start]) if kept is not None and start else []
    total = sums[-1] if sums else 0.0
    for i in range(start, len(messages)):
        total += message_estimate(messages[i])
        sums.append(total)
    if recall is not None:
        recall.keep(slot, _Sums(messages, tuple(sums), start))
    return total


def raw_estimate(request: ChatRequest, recall: Recall | None = None, slot: str = "tokens") -> float:
    """Raw (uncalibrated) estimate of the whole prompt; ``recall``: see ``messages_estimate``
    (``slot``: one per consumer, each keeps its own)."""
    total = 0.0
    for s in request.system:
        total += text_tokens(s) + MESSAGE_OVERHEAD
    total += messages_estimate(request.messages, recall, slot)
    for tool in request.tools:
        total += TOOL_OVERHEAD + text_tokens(tool.name) + text_tokens(tool.description)
        if tool.parameters:
            total += len(_ENC.encode(tool.parameters)) / 3.2
        if tool.grammar:
            total += text_tokens(tool.grammar)
    return total


def prompt_text(request: ChatRequest) -> str:
    """Every text the upstream sees, concatenated (for exact tokenizer endpoints)."""
    pieces: list[str] = list(request.system)
    for message in request.messages:
        if message.reasoning:
            pieces.append(message.reasoning)
        for part in message.parts:
            if isinstance(part, TextPart):
                pieces.append(part.text)
            elif isinstance(part, ToolCallPart):
                pieces.append(f"{part.name} {part.arguments}")
            elif isinstance(part, ToolResultPart):
                pieces.extend(inner.text for inner in part.content if isinstance(inner, TextPart))
    for tool in request.tools:
        pieces.append(f"{tool.name} {tool.description} {_ENC.encode(tool.parameters).decode()} {tool.grammar or ''}")
    return "\n".join(pieces)


class Calibrator:
    """Per-model correction factor learned from (estimated, reported) prompt-token pairs.

    One per process (``CALIBRATOR``), keyed by upstream model: the factor is a fact about that
    model's tokenizer, the same for every pipeline that sends to it. ``reset()`` forgets it (tests).
    """

    def __init__(self, *, alpha: float = 0.3, lo: float = 0.4, hi: float = 2.5) -> None:
        self.alpha, self.lo, self.hi = alpha, lo, hi
        self.factors: dict[str, float] = {}

    def factor(self, model: str) -> float:
        return self.factors.get(model, 1.0)

    def observe(self, model: str, estimated_raw: float, reported: int) -> None:
        if estimated_raw <= 0 or reported <= 0:
            return
        ratio = min(self.hi, max(self.lo, reported / estimated_raw))
        old = self.factors.get(model)
        self.factors[model] = ratio if old is None else old + self.alpha * (ratio - old)

    def reset(self) -> None:
        """Forget every learned factor."""
        self.factors.clear()


CALIBRATOR = Calibrator()


def estimate_request_tokens(request: ChatRequest, upstream_model: str = "", recall: Recall | None = None,
                            slot: str = "tokens") -> int:
    """Calibrated prompt-token estimate for ``request`` sent to ``upstream_model``."""
    return int(raw_estimate(request, recall, slot) * CALIBRATOR.factor(upstream_model)) + 1


__all__ = ["CALIBRATOR", "Calibrator", "estimate_request_tokens", "message_estimate", "messages_estimate",
           "prompt_text", "raw_estimate", "text_tokens"]
