"""The loss recorder of one Responses request (sub-values are decoded by
``pipeline.protocols.values.decode_value``, shared with the other codecs)."""

from __future__ import annotations

from pipeline.losses import record
from pipeline.model import Loss, ServerTool


class Reader:
    """Collects the losses of one request, and the hosted tools it offered (not sent upstream)."""

    __slots__ = ("losses", "server_tools")

    def __init__(self) -> None:
        self.losses: list[Loss] = []
        self.server_tools: list[ServerTool] = []

    def lose(self, what: str, detail: str) -> None:
        record(self.losses, what, detail)


__all__ = ["Reader"]
