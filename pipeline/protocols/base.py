"""The client-codec contract: what a client protocol (anthropic, responses, chat) provides.

A codec is sans-IO. The app routes ``(method, path)`` to an endpoint kind, asks the codec to
decode the body into a ``ChatRequest`` and a ``Reply``, runs the pipeline, and feeds neutral
events to the reply's stream encoder (SSE bytes) or collector (one JSON body). Errors are
rendered only here.

What the client decoder must tell its encoder (Responses' tool names as the client knows them
and its ``metadata``, Anthropic's ``thinking.display``, Chat's ``include_usage``) is the codec's
echo: a frozen, typed struct per codec (``ClientCodec[E]``), held by the ``Reply`` and handed to
the encoder when the runner builds it. The request stages never see it, so none can change it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar, Generic, Literal, Protocol, TypeVar

import msgspec

from pipeline.assemble import Assembler, Completion
from pipeline.conversation import Recall
from pipeline.errors import CODES, GatewayError, RequestError, UpstreamError
from pipeline.events import ErrorInfo, Event
from pipeline.model import ChatRequest

EndpointKind = Literal["generate", "count_tokens", "models", "hello", "response_get", "response_delete",
                       "response_input_items"]


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


E = TypeVar("E")
E_contra = TypeVar("E_contra", contravariant=True)
T_co = TypeVar("T_co", covariant=True)


class FoldCollector(Generic[E]):
    """Every codec's ``Collector``: the neutral fold (``pipeline.assemble``, whose docstring has
    the rules), then the dialect's ``render`` of it for ``request``, the decoder's echo and the
    prompt estimate (as ``Builds`` gives them). A subclass only renders.

    ``body()`` raises the completion's error (the first ``StreamError``, or the answer's missing
    end) as an ``UpstreamError`` (a failure of the response way), so the caller renders it with
    ``render_error``: a non-streaming client gets the error, never a partial body.
    """

    __slots__ = ("feed", "_assembler", "_echo", "_estimate", "_request")

    def __init__(self, request: ChatRequest, echo: E, *, prompt_estimate: int | None = None) -> None:
        self._request = request
        self._echo = echo
        self._estimate = prompt_estimate
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


class Builds(Protocol[E_contra, T_co]):
    """A codec's stream encoder or collector type: built from the request as the stages shaped
    it, the decoder's echo, and the stages' estimate of the prompt tokens (``ctx.prompt_estimate``:
    for a dialect that reports input tokens before the upstream's usage, Anthropic's
    ``message_start``; ``None`` without one)."""

    def __call__(self, request: ChatRequest, echo: E_contra, /, *, prompt_estimate: int | None) -> T_co: ...


class Reply(Protocol):
    """The response side of one decoded request: the codec's encoders with the echo its decoder
    made (the runner keeps it beside the request; no stage gets it)."""

    @property
    def echo(self) -> object:
        """The codec's echo (its type is the codec's; for tests and debugging)."""
        ...

    def stream_encoder(self, request: ChatRequest, *, prompt_estimate: int | None = None) -> StreamEncoder: ...

    def collector(self, request: ChatRequest, *, prompt_estimate: int | None = None) -> Collector: ...


class Codec:
    """What the app and the runner use of a client codec, whatever the type of its echo.

    ``ClientCodec[E]`` is how a dialect declares one; the error, model-list and count renderers
    do not depend on the echo and are declared here.
    """

    name: ClassVar[str]
    endpoints: ClassVar[Sequence[Endpoint]]
    error_renderer: ClassVar[staticmethod[[GatewayError], ErrorBody]]
    models_renderer: ClassVar[staticmethod[[Sequence[ModelInfo]], bytes]]
    count_renderer: ClassVar[staticmethod[[int], bytes]]

    def decode_request(self, body: bytes, recall: Recall | None = None) -> tuple[ChatRequest, Reply]:
        """Parse the client's JSON body into the neutral request and the reply that answers it
        (``recall``: the request's view of its conversation's memory, ``pipeline.conversation``).
        Raises ``RequestError`` with a dialect-neutral message."""
        raise NotImplementedError

    def reply(self) -> Reply:
        """A reply with an empty echo (the decoder saw nothing to tell): for a request made in
        neutral form, as tests do."""
        raise NotImplementedError

    def render_error(self, err: GatewayError) -> ErrorBody:
        """An HTTP error response in the client's dialect (before anything was sent)."""
        return self.error_renderer(err)

    def render_models(self, models: Sequence[ModelInfo]) -> bytes:
        return self.models_renderer(models)

    def render_count(self, input_tokens: int) -> bytes:
        return self.count_renderer(input_tokens)

    def render_model(self, model: ModelInfo) -> bytes:
        """``GET /v1/models/{id}``: the list's one entry, as the dialect's list renders it."""
        return msgspec.json.encode(msgspec.json.decode(self.models_renderer([model]))["data"][0])


class ClientCodec(Codec, Generic[E]):
    """A client protocol whose decoder tells its encoder an ``E`` (a frozen Struct with every
    field defaulted), declared by naming its parts (each package's ``__init__``).

    Subclasses set ``name``, ``endpoints``, ``echo_type`` and the parts below (plain functions or
    classes, wrapped in ``staticmethod``): ``decoder`` returns ``(request, echo)``; the stream
    encoder and collector types take ``(request, echo, *, prompt_estimate)`` (``Builds``).
    """

    echo_type: type[E]
    decoder: staticmethod[[bytes, Recall], tuple[ChatRequest, E]]
    stream_encoder_type: Builds[E, StreamEncoder]
    collector_type: Builds[E, Collector]

    def decode_request(self, body: bytes, recall: Recall | None = None) -> tuple[ChatRequest, Reply]:
        try:
            request, echo = self.decoder(body, recall or Recall())
        except UnicodeDecodeError as exc:  # msgspec's error for invalid UTF-8 inside a JSON string
            raise RequestError(f"request body is not valid JSON: invalid UTF-8 in a string ({exc.reason})") from None
        except RecursionError:  # the app's nesting limit stops this first; direct callers get a 400 too
            raise RequestError("request body is not valid JSON: nested too deeply") from None
        return request, Echoed(self, echo)

    def reply(self, echo: E | None = None) -> Reply:
        """The reply with ``echo`` (default: the empty one)."""
        return Echoed(self, self.echo_type() if echo is None else echo)


class Echoed(Generic[E]):
    """A ``Reply``: a codec's encoder types and one request's echo."""

    __slots__ = ("_codec", "_echo")

    def __init__(self, codec: ClientCodec[E], echo: E) -> None:
        self._codec = codec
        self._echo = echo

    @property
    def echo(self) -> E:
        return self._echo

    def stream_encoder(self, request: ChatRequest, *, prompt_estimate: int | None = None) -> StreamEncoder:
        return self._codec.stream_encoder_type(request, self._echo, prompt_estimate=prompt_estimate)

    def collector(self, request: ChatRequest, *, prompt_estimate: int | None = None) -> Collector:
        return self._codec.collector_type(request, self._echo, prompt_estimate=prompt_estimate)


__all__ = [
    "Builds",
    "ClientCodec",
    "Codec",
    "Collector",
    "Echoed",
    "Endpoint",
    "EndpointKind",
    "ErrorBody",
    "FoldCollector",
    "ModelInfo",
    "Reply",
    "StreamEncoder",
    "retry_after_headers",
]
