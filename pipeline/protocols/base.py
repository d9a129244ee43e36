"""The client-codec contract: what a client protocol (anthropic, responses, chat) provides.

A codec is sans-IO. The app routes ``(method, path)`` to an endpoint kind, asks the codec to
decode the body into a ``ChatRequest``, runs the pipeline, and feeds neutral events to the
codec's stream encoder (SSE bytes) or collector (one JSON body). Errors are rendered only here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar, Literal, Protocol

import msgspec

from pipeline.assemble import Assembler, Completion
from pipeline.errors import CODES, GatewayError, RequestError, UpstreamError
from pipeline.events import ErrorInfo, Event
from pipeline.model import ChatRequest

EndpointKind = Literal["generate", "count_tokens", "models", "hello"]


class Endpoint(msgspec.Struct, frozen=True):
    method: str
    path: str
    kind: EndpointKind


class ModelInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A model advertised by ``/v1/models``: the client-facing id and the upstream's limits."""

    id: str
    upstream_model: str
    context_window: int
    max_output_tokens: int
    owned_by: str = "gateway"


class ErrorBody(msgspec.Struct, frozen=True):
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def retry_after_headers(seconds: float | None, *, millis: bool = False) -> list[tuple[bytes, bytes]]:
    """The ``retry-after`` header for a wait of ``seconds``: whole seconds, rounded up, never
    negative; with ``millis`` also OpenAI's ``retry-after-ms``. None when ``seconds`` is ``None``.

    Every codec renders the header here; which errors carry it is each dialect's choice (its
    ``render_error``).
    """
    if seconds is None:
        return []
    seconds = max(0.0, seconds)
    headers = [(b"retry-after", str(math.ceil(seconds)).encode())]
    if millis:
        headers.append((b"retry-after-ms", str(round(seconds * 1000)).encode()))
    return headers


class StreamEncoder(Protocol):
    """Neutral events → SSE frames for one response."""

    def feed(self, event: Event) -> list[bytes]: ...

    def error(self, info: ErrorInfo) -> list[bytes]:
        """In-stream error frames (after the HTTP status was sent); ends the stream."""
        ...

    def close(self) -> list[bytes]:
        """Frames after the last event (e.g. Chat's ``data: [DONE]``); may be empty."""
        ...


class Collector(Protocol):
    """Neutral events → one JSON response body (non-streaming)."""

    def feed(self, event: Event) -> None: ...

    def body(self) -> bytes: ...


class FoldCollector:
    """Every codec's ``Collector``: the neutral fold (``pipeline.assemble``, whose docstring has
    the rules), then the dialect's ``render`` of it for ``request``. A subclass only renders.

    ``body()`` raises the completion's error (the first ``StreamError``, or the answer's missing
    end) as an ``UpstreamError`` (a failure of the response way), so the caller renders it with
    ``render_error``: a non-streaming client gets the error, never a partial body.
    """

    __slots__ = ("feed", "_assembler", "_request")

    def __init__(self, request: ChatRequest) -> None:
        self._request = request
        self._assembler = Assembler()
        self.feed = self._assembler.feed  # no extra call per event

    def completion(self) -> Completion:
        return self._assembler.completion()

    def body(self) -> bytes:
        """The JSON body.

        Raises:
            UpstreamError: the answer failed (its first error) or never ended.
        """
        completion = self._assembler.completion()
        info = completion.error
        if info is not None:
            code = info.code if info.code in CODES else "api_error"
            raise UpstreamError(info.message, code=code, status=info.status, retry_after_s=info.retry_after_s)
        return self.render(completion)

    def render(self, completion: Completion) -> bytes:
        """The dialect's body for a completion without error."""
        raise NotImplementedError


class ClientCodec:
    """A client protocol, declared by naming its parts (each package's ``__init__``).

    Subclasses set ``name``, ``endpoints`` and the six parts below (plain functions or classes,
    wrapped in ``staticmethod``); the methods the app and runner call delegate to them.
    """

    name: ClassVar[str]
    endpoints: ClassVar[Sequence[Endpoint]]
    decoder: ClassVar[staticmethod[[bytes], ChatRequest]]
    stream_encoder_type: ClassVar[staticmethod[[ChatRequest], StreamEncoder]]
    collector_type: ClassVar[staticmethod[[ChatRequest], Collector]]
    error_renderer: ClassVar[staticmethod[[GatewayError], ErrorBody]]
    models_renderer: ClassVar[staticmethod[[Sequence[ModelInfo]], bytes]]
    count_renderer: ClassVar[staticmethod[[int], bytes]]

    def decode_request(self, body: bytes) -> ChatRequest:
        """Parse the client's JSON body. Raises ``RequestError`` with a dialect-neutral message."""
        try:
            return self.decoder(body)
        except UnicodeDecodeError as exc:  # msgspec's error for invalid UTF-8 inside a JSON string
            raise RequestError(f"request body is not valid JSON: invalid UTF-8 in a string ({exc.reason})") from None
        except RecursionError:  # the app's nesting limit stops this first; direct callers get a 400 too
            raise RequestError("request body is not valid JSON: nested too deeply") from None

    def stream_encoder(self, request: ChatRequest) -> StreamEncoder:
        return self.stream_encoder_type(request)

    def collector(self, request: ChatRequest) -> Collector:
        return self.collector_type(request)

    def render_error(self, err: GatewayError) -> ErrorBody:
        """An HTTP error response in the client's dialect (before anything was sent)."""
        return self.error_renderer(err)

    def render_models(self, models: Sequence[ModelInfo]) -> bytes:
        return self.models_renderer(models)

    def render_count(self, input_tokens: int) -> bytes:
        return self.count_renderer(input_tokens)


__all__ = [
    "ClientCodec",
    "Collector",
    "Endpoint",
    "EndpointKind",
    "ErrorBody",
    "FoldCollector",
    "ModelInfo",
    "StreamEncoder",
    "retry_after_headers",
]
