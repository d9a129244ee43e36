"""``ResponsesCollector``: neutral events → one Response JSON body (non-streaming requests).

The shared fold (``pipeline.assemble``) makes the completion; ``render_response`` replays it, as a
well-formed stream, through the state machine the SSE encoder uses (``client_encode_core``), so
the body is the Response the stream's terminal event would carry (status completed or
incomplete, the output items of each tool's kind, a tool call cut by ``max_tokens`` left
incomplete) and the two cannot drift apart.
"""

from __future__ import annotations

import msgspec

from pipeline.assemble import Completion, replay
from pipeline.model import ChatRequest
from pipeline.protocols.base import FoldCollector
from pipeline.protocols.responses.client_decode_echo import NO_ECHO, ResponsesEcho
from pipeline.protocols.responses.client_encode_core import ResponseCore

_ENCODER = msgspec.json.Encoder()


class ResponsesCollector(FoldCollector[ResponsesEcho]):
    """``feed(event)`` for every event, then ``body()``."""

    __slots__ = ()

    def __init__(self, request: ChatRequest, echo: ResponsesEcho = NO_ECHO, *,
                 prompt_estimate: int | None = None) -> None:
        super().__init__(request, echo, prompt_estimate=prompt_estimate)

    def render(self, completion: Completion) -> bytes:
        return render_response(completion, self._request, self._echo)


def render_response(completion: Completion, request: ChatRequest, echo: ResponsesEcho = NO_ECHO) -> bytes:
    """A completion as one Response object (what ``response.completed`` or ``.incomplete`` carries)."""
    core = ResponseCore(request, echo)
    for event in replay(completion):
        core.handle(event)
    core.end()
    return _ENCODER.encode(core.final)


__all__ = ["ResponsesCollector", "render_response"]
