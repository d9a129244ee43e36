"""``ResponsesCollector``: neutral events → one Response JSON body (non-streaming requests).

Same state machine as the stream (core.py), without frames: the body is the Response the
stream's terminal event would carry (status completed, incomplete or failed).
"""

from __future__ import annotations

import msgspec

from pipeline.events import Event
from pipeline.protocols.responses.client_encode_core import ResponseCore

_ENCODER = msgspec.json.Encoder()


class ResponsesCollector(ResponseCore):
    """``feed(event)`` for every event, then ``body()``."""

    def feed(self, event: Event) -> None:
        self.handle(event)

    def body(self) -> bytes:
        self.end()
        return _ENCODER.encode(self.final)


__all__ = ["ResponsesCollector"]
