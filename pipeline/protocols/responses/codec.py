"""The ``ResponsesCodec``: the endpoints this dialect serves and the pieces that serve them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pipeline.protocols.base import ClientCodec, Endpoint
from pipeline.protocols.openai import render_models
from pipeline.protocols.responses.client_decode import decode_request
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
    )

    echo_type = ResponsesEcho
    decoder = staticmethod(decode_request)
    stream_encoder_type = staticmethod(ResponsesStreamEncoder)
    collector_type = staticmethod(ResponsesCollector)
    error_renderer = staticmethod(render_error)
    models_renderer = staticmethod(render_models)
    count_renderer = staticmethod(render_count)


__all__ = ["ResponsesCodec"]
