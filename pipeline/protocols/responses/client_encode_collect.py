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
from pipeline.protocols.responses.output_models import ResponseObject

_ENCODER = msgspec.json.Encoder()


class ResponsesCollector(FoldCollector[ResponsesEcho]):
    """``feed(event)`` for every event, then ``body()``."""

    __slots__ = ("final",)

    def __init__(self, request: ChatRequest, echo: ResponsesEcho = NO_ECHO, *,
                 prompt_estimate: int | None = None) -> None:
        super().__init__(request, echo, prompt_estimate=prompt_estimate)
        self.final: ResponseObject | None = None  # the Response, once rendered (as the stream's ``final``)

    def render(self, completion: Completion) -> bytes:
        self.final = final_response(completion, self._request, self._echo)
        return _ENCODER.encode(self.final)


def final_response(completion: Completion, request: ChatRequest, echo: ResponsesEcho = NO_ECHO) -> ResponseObject:
    """A completion as one Response object (what ``response.completed`` or ``.incomplete`` carries)."""
    core = ResponseCore(request, echo)
    for event in replay(completion):
        core.handle(event)
    core.end()
    assert core.final is not None  # end() finishes it
    return core.final


def render_response(completion: Completion, request: ChatRequest, echo: ResponsesEcho = NO_ECHO) -> bytes:
    """``final_response`` as JSON."""
    return _ENCODER.encode(final_response(completion, request, echo))


__all__ = ["ResponsesCollector", "final_response", "render_response"]
