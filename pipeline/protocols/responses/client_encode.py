"""``ResponsesStreamEncoder``: neutral events → Responses SSE frames (PROTOCOLS §2.4, §5.4).

Every frame has ``event: <type>`` and a JSON ``type`` with a strictly increasing
``sequence_number`` from 0; no ``[DONE]``. The state machine lives in core.py.
"""

from __future__ import annotations

from typing import Any

import msgspec

from pipeline.events import ErrorInfo, Event, TextDelta
from pipeline.model import ChatRequest
from pipeline.protocols.responses.client_decode_echo import NO_ECHO, ResponsesEcho
from pipeline.protocols.responses.client_encode_core import ResponseCore, delta_event
from pipeline.protocols.responses.output_models import ResponseTextDeltaEvent

_ENCODER = msgspec.json.Encoder()
_PREFIXES: dict[type[Any], bytes] = {}


def _prefix(cls: type[Any]) -> bytes:
    prefix = _PREFIXES.get(cls)
    if prefix is None:
        prefix = _PREFIXES[cls] = b"event: " + cls.__struct_config__.tag.encode() + b"\ndata: "
    return prefix


_SEQ_MARK = 987654321987
_TEXT_MARK = "\x00delta\x00"


def _template(cls: type[Any], item_id: str, output_index: int) -> tuple[bytes, bytes, bytes]:
    """(head, middle, tail): frame = head + sequence number + middle + JSON text + tail."""
    event = delta_event(cls, item_id, output_index, _TEXT_MARK)
    event.sequence_number = _SEQ_MARK
    frame = _prefix(cls) + _ENCODER.encode(event) + b"\n\n"
    seq, text = str(_SEQ_MARK).encode(), _ENCODER.encode(_TEXT_MARK)
    head, rest = frame.split(seq, 1)
    middle, tail = rest.split(text, 1)
    return head, middle, tail


class ResponsesStreamEncoder(ResponseCore):
    """``feed(event) -> frames``; ``error(info) -> frames``; ``close() -> frames``.

    A failure is a top-level ``error`` event, then ``response.failed`` (whose ``error.code`` is
    what Codex acts on). The openai SDK (v3.5x ``Stream.__stream__``) raises on neither over
    HTTP, it yields both as typed events; ``error`` serves consumers that only watch for it, and
    Codex ignores it (PROTOCOLS §2.6).
    """

    def __init__(self, request: ChatRequest, echo: ResponsesEcho = NO_ECHO, *, prompt_estimate: int | None = None,
                 response_id: str | None = None, created_at: int | None = None) -> None:
        super().__init__(request, echo, response_id=response_id, created_at=created_at)
        self._seq = 0
        self._frames: list[bytes] = []

    def _emit(self, event: Any) -> None:
        event.sequence_number = self._seq
        self._seq += 1
        self._frames.append(_prefix(type(event)) + _ENCODER.encode(event) + b"\n\n")

    def _emit_delta(self, cls: type[Any], block: Any, text: str) -> None:
        """Per-token frames from a template made once per block and event type, byte for byte
        what encoding the Struct gives."""
        template = block.templates.get(cls)
        if template is None:
            template = block.templates[cls] = _template(cls, block.item.id, block.index)
        head, middle, tail = template
        seq = self._seq
        self._seq = seq + 1
        self._frames.append(head + str(seq).encode() + middle + _ENCODER.encode(text) + tail)

    def _take(self) -> list[bytes]:
        frames, self._frames = self._frames, []
        return frames

    def feed(self, event: Event) -> list[bytes]:
        if type(event) is TextDelta and not self.finished:  # per token: ``handle``'s path, shortened
            block, text = self._block, event.text
            if block is not None and block.kind == "text" and text:
                block.parts.append(text)
                template = block.templates.get(ResponseTextDeltaEvent)
                if template is None or self._frames:
                    self._emit_delta(ResponseTextDeltaEvent, block, text)
                    return self._take()
                head, middle, tail = template
                seq = self._seq
                self._seq = seq + 1
                return [head + str(seq).encode() + middle + _ENCODER.encode(text) + tail]
        self.handle(event)
        return self._take()

    def error(self, info: ErrorInfo) -> list[bytes]:
        """In-stream failure after the HTTP status was sent; ends the response."""
        self.fail(info)
        return self._take()

    def close(self) -> list[bytes]:
        """After the last event: a stream that never reached a terminal event ends failed."""
        self.end()
        return self._take()


__all__ = ["ResponsesStreamEncoder"]
