"""The OpenAI Responses client codec (``POST /v1/responses``, as Codex CLI uses it).

Reference: https://platform.openai.com/docs/api-reference/responses, openai-python
``types/responses`` (v3.5x), ../shared/PROTOCOLS.md §2 and §5.3-5.9. Sans-IO throughout.

Modules, named by the side they serve: ``codec`` (the ``ClientCodec``), ``models`` (wire
Structs), ``client_decode*`` (the client's request → neutral ``ChatRequest``), ``client_encode*``
(neutral events → the client's SSE, body and errors).
"""

from __future__ import annotations

from pipeline.protocols.responses.client_decode import decode_request
from pipeline.protocols.responses.client_encode import ResponsesStreamEncoder
from pipeline.protocols.responses.client_encode_collect import ResponsesCollector
from pipeline.protocols.responses.codec import ResponsesCodec

__all__ = ["ResponsesCodec", "ResponsesCollector", "ResponsesStreamEncoder", "decode_request"]
