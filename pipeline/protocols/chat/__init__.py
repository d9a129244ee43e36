"""Chat Completions codec, used on both sides of the gateway.

Upstream side (DeepSeek, vLLM, Ollama, llama.cpp): ``encode_request`` builds the request body,
``ChatStreamDecoder`` / ``decode_response`` turn SSE chunks or a body into neutral events, and
``parse_error_body`` maps HTTP error bodies. Client side: ``ChatCodec`` (a ``ClientCodec``) serves
plain OpenAI Chat clients. Reference: ../shared/PROTOCOLS.md §3-§5.

Modules, named by the side they serve: ``codec`` (the ``ClientCodec``), ``models`` (wire
Structs, both sides), ``client_decode`` / ``client_encode`` (a Chat client's request → neutral,
neutral events → its SSE and bodies), ``upstream_encode`` / ``upstream_decode`` (neutral → an
upstream's request body, its SSE or body → neutral events), ``errors`` (both ways), ``helpers``.
"""

from __future__ import annotations

from pipeline.protocols.chat.client_decode import decode_chat_request
from pipeline.protocols.chat.client_encode import ChatChunkEncoder, ChatCompletionCollector
from pipeline.protocols.chat.codec import ChatCodec
from pipeline.protocols.chat.errors import error_from_payload, openai_error, parse_error_body
from pipeline.protocols.chat.helpers import convert_usage, new_call_id, new_completion_id
from pipeline.protocols.chat.upstream_decode import ChatStreamDecoder, decode_response
from pipeline.protocols.chat.upstream_encode import encode_request

__all__ = [
    "ChatChunkEncoder",
    "ChatCodec",
    "ChatCompletionCollector",
    "ChatStreamDecoder",
    "decode_chat_request",
    "convert_usage",
    "decode_response",
    "encode_request",
    "error_from_payload",
    "new_call_id",
    "new_completion_id",
    "openai_error",
    "parse_error_body",
]
