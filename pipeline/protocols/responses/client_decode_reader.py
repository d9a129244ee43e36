"""The loss recorder of one Responses request (sub-values are decoded by
``pipeline.protocols.values.decode_value``, shared with the other codecs)."""

from __future__ import annotations

from pipeline.losses import record
from pipeline.model import Loss


class Reader:
    """Collects the losses of one request."""

    __slots__ = ("losses",)

    def __init__(self) -> None:
        self.losses: list[Loss] = []

    def lose(self, what: str, detail: str) -> None:
        record(self.losses, what, detail)


__all__ = ["Reader"]
