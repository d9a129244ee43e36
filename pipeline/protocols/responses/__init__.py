"""The OpenAI Responses client codec (``POST /v1/responses``, as Codex CLI uses it).

Reference: https://platform.openai.com/docs/api-reference/responses, openai-python
``types/responses`` (v3.5x), ../shared/PROTOCOLS.md §2 and §5.3-5.9. Sans-IO throughout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pipeline.protocols.base import ClientCodec, Endpoint
from pipeline.protocols.openai import render_models
from pipeline.protocols.responses.collect import ResponsesCollector
from pipeline.protocols.responses.decode import decode_request
from pipeline.protocols.responses.errors import render_count, render_error
from pipeline.protocols.responses.stream import ResponsesStreamEncoder


class ResponsesCodec(ClientCodec):
    name: ClassVar[str] = "responses"
    endpoints: ClassVar[Sequence[Endpoint]] = (
        Endpoint("POST", "/v1/responses", "generate"),
        Endpoint("GET", "/v1/models", "models"),
    )

    decoder = staticmethod(decode_request)
    stream_encoder_type = staticmethod(ResponsesStreamEncoder)
    collector_type = staticmethod(ResponsesCollector)
    error_renderer = staticmethod(render_error)
    models_renderer = staticmethod(render_models)
    count_renderer = staticmethod(render_count)


__all__ = ["ResponsesCodec", "ResponsesCollector", "ResponsesStreamEncoder", "decode_request"]
