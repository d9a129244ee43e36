"""The ``ResponsesCodec``: the endpoints this dialect serves and the pieces that serve them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import msgspec

from pipeline.conversation import Recall
from pipeline.errors import RequestError
from pipeline.model import ChatRequest
from pipeline.protocols.base import ClientCodec, Echoed, Endpoint, Reply
from pipeline.protocols.openai import render_models
from pipeline.protocols.responses.client_decode import Read, decode_read, decode_request, read_request
from pipeline.protocols.responses.client_decode_echo import ResponsesEcho
from pipeline.protocols.responses.client_encode import ResponsesStreamEncoder
from pipeline.protocols.responses.client_encode_collect import ResponsesCollector
from pipeline.protocols.responses.errors import render_count, render_error


class ResponsesCodec(ClientCodec[ResponsesEcho]):
    name: ClassVar[str] = "responses"
    endpoints: ClassVar[Sequence[Endpoint]] = (
        Endpoint("POST", "/v1/responses", "generate"),
        Endpoint("POST", "/v1/responses/input_tokens", "count_tokens"),
        Endpoint("GET", "/v1/models", "models"),
        # Stored Responses (``pipeline.stored_responses``): ``{id}`` is one path segment.
        Endpoint("GET", "/v1/responses/{id}", "response_get"),
        Endpoint("DELETE", "/v1/responses/{id}", "response_delete"),
        Endpoint("GET", "/v1/responses/{id}/input_items", "response_input_items"),
    )

    echo_type = ResponsesEcho
    decoder = staticmethod(decode_request)
    stream_encoder_type = staticmethod(ResponsesStreamEncoder)
    collector_type = staticmethod(ResponsesCollector)
    error_renderer = staticmethod(render_error)
    models_renderer = staticmethod(render_models)
    count_renderer = staticmethod(render_count)

    def read(self, body: bytes, recall: Recall | None = None) -> Read:
        """The body's top level, read with the conversation's memory (``decode_request`` in two
        steps, so that the app can fetch the stored history ``previous_response_id`` names in
        between)."""
        try:
            return read_request(body, recall or Recall())
        except UnicodeDecodeError as exc:
            raise RequestError(f"request body is not valid JSON: invalid UTF-8 in a string ({exc.reason})") from None

    def decode_chained(self, read: Read, prior: Sequence[msgspec.Raw] | None,
                       recall: Recall | None = None) -> tuple[ChatRequest, Reply]:
        """``decode_request`` of a read body, ``prior`` (the stored history) before its input."""
        try:
            request, echo = decode_read(read, prior, recall or Recall())
        except UnicodeDecodeError as exc:
            raise RequestError(f"request body is not valid JSON: invalid UTF-8 in a string ({exc.reason})") from None
        return request, Echoed(self, echo)


__all__ = ["ResponsesCodec"]
