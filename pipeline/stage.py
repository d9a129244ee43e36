"""The stage contract: the ``Stage`` base class, its typed hooks, ``StageConfig`` and the
per-request ``RequestContext``.

A stage is built once per pipeline from its validated ``Config`` (a ``StageConfig`` subclass:
frozen, unknown keys refused) and then treated as frozen; all per-request state
lives in ``ctx.state`` (keyed by ``stage.id``). Hooks (each optional: a stage overrides the ones
it needs; the base methods are the typed signatures):

- ``async on_request(request, ctx) -> ChatRequest``: request path, YAML order.
- ``on_event(event, ctx) -> Sequence[Event]``: sync per-event transform, response path (reverse
  YAML order); no task, no channel. It may hold events back (return ``()`` now, more later)
  with its per-response state in ``ctx.state``.
- ``on_end(ctx) -> Sequence[Event]``: optional companion of ``on_event``: the input ended, return
  whatever is still held (called once, also when the stream ended without ``MessageStop``).
- ``async on_events(inbox, outbox, ctx)``: task form for stages that must wait on time or I/O.
  ``with outbox:`` then ``async for event in inbox:``. Every event costs task switches: prefer
  ``on_event`` (+ ``on_end``).
- ``async open()`` / ``async aclose()``: lifecycle of a stage that holds resources (a client, a
  file, a background store): the gateway opens every stage after its upstreams at startup (a
  failure refuses the start, naming the stage) and closes them at shutdown.

A stage implements at most one of ``on_event`` / ``on_events`` (setting an inherited hook to
``None`` switches it off); ``on_event`` and ``on_end`` are plain ``def``, the others ``async def``:
the registry refuses anything else at startup (``check_hooks``). Unknown events pass through.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import msgspec
import structlog

from pipeline.attempt import Attempt
from pipeline.conversation import Recall
from pipeline.events import Event
from pipeline.losses import LossRecorder, record
from pipeline.model import ChatRequest, Loss
from pipeline.model_limits import ModelCard, card_for
from pipeline.profiles import Profile

if TYPE_CHECKING:
    from types import TracebackType

    from trio import MemoryReceiveChannel

    from pipeline.store import Store


class Outbox(Protocol):
    """A task-form stage's outbox: a trio memory channel, or the gateway's channel that runs the
    per-event stages after it. Either way ``await send(event)``, ``close()`` and ``with outbox:``."""

    async def send(self, value: Event, /) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None, /) -> None: ...

DEFAULT_PROFILE = Profile(name="default")


class StageConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of a stage's ``Config``: frozen, keyword-only, and an unknown key is an error.
    (msgspec inherits ``frozen``; say ``frozen=True`` again for a type checker, which does not.)

    Subclass it and declare the options as fields with defaults, each with a comment line above
    it (``python -m pipeline stages`` prints them). The registry refuses an unknown top-level key
    for any ``Config`` (a plain ``msgspec.Struct`` too); deriving from ``StageConfig`` also makes
    the options immutable and refuses unknown keys in nested structs declared the same way.
    """


class NoConfig(StageConfig, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Config of a stage that takes no options."""


class RequestContext:
    """Everything a stage may know about the request it is part of.

    Attributes:
        request_id: unique id, also logged.
        pipeline_id: the YAML pipeline id.
        client: client protocol name (``anthropic``, ``responses``, ``chat``).
        attempt: the try being shaped and sent (``pipeline.attempt.Attempt``: the upstream's
            profile, the upstream model, its limits and token counter); set by the retry loop
            before the request stages run, a new one for each upstream of a fallback list.
        upstream_id: the upstream of the current attempt (or the pipeline's first upstream).
        upstream_model: the upstream model name of the current attempt.
        prompt_estimate: the request stages' estimate of the prompt tokens, as shaped for the
            current upstream (``token_budget`` sets it each time it shapes; ``None`` without it);
            the client's encoder reports it before the upstream's usage (Anthropic's
            ``message_start``).
        deadline: ``trio.current_time()`` value after which the request is cancelled.
        log: structlog logger bound with the ids above.
        state: per-stage scratch space, keyed by stage id.
        losses: what translations could not carry (log field and metric).
        committed: True once the HTTP status line has been sent to the client.
        fields: extra fields for the ``request_finished`` log line (e.g. ``replay_rung``).
        headers: the client's request headers (lower-case names), for key passthrough.
        store: the gateway's store (``pipeline.store``; ``None`` outside a gateway, as in
            ``pipeline.testing``): a request hook may read it.
        store_writes: ``(key, value, ttl_s)`` a response hook queues (its hooks are sync); they
            are written before the client gets the terminal event (``Responder.pass_gate``).
        recall: the request's view of its conversation's memory (``pipeline.conversation``): a
            request hook whose work per message depends only on the message (and what it keys
            its slot with) reuses what it did for the same messages of the session's last request.
    """

    __slots__ = (
        "attempt",
        "client",
        "committed",
        "deadline",
        "fields",
        "_log",
        "headers",
        "losses",
        "pipeline_id",
        "prompt_estimate",
        "recall",
        "request_id",
        "started",
        "state",
        "store",
        "store_writes",
        "upstream_id",
        "upstream_model",
    )

    def __init__(
        self,
        *,
        request_id: str,
        pipeline_id: str,
        client: str,
        upstream_id: str = "",
        deadline: float = float("inf"),
        headers: dict[str, str] | None = None,
    ) -> None:
        self.request_id = request_id
        self.pipeline_id = pipeline_id
        self.client = client
        self.upstream_id = upstream_id
        self.upstream_model = ""
        self.attempt: Attempt | None = None
        self.prompt_estimate: int | None = None
        self.deadline = deadline
        self._log: Any = None  # bound on first use: most requests log one line, at the end
        self.state: dict[str, Any] = {}
        self.losses: list[Loss] = []
        self.committed = False
        self.fields: dict[str, Any] = {}
        self.headers = headers or {}
        self.started = time.perf_counter()
        self.store: Store | None = None
        self.store_writes: list[tuple[str, bytes, float | None]] = []
        self.recall = Recall()  # bound by the client decoder when the gateway remembers conversations

    @property
    def log(self) -> Any:
        """A structlog logger bound with ``request_id``, ``pipeline`` and ``client``."""
        if self._log is None:
            self._log = structlog.get_logger("gateway").bind(
                request_id=self.request_id, pipeline=self.pipeline_id, client=self.client)
        return self._log

    @property
    def log_bound(self) -> bool:
        """Whether ``log`` was used (then it may carry more context than the three ids)."""
        return self._log is not None

    def aim(self, attempt: Attempt) -> None:
        """Make ``attempt`` the current try (the retry loop does, before the request stages)."""
        self.attempt = attempt
        self.upstream_id = attempt.upstream_id
        self.upstream_model = attempt.model

    @property
    def profile(self) -> Profile:
        """The current attempt's backend profile (a neutral default before there is one)."""
        attempt = self.attempt
        return attempt.profile if attempt is not None else DEFAULT_PROFILE

    @property
    def card(self) -> ModelCard:
        """What the current attempt's upstream model can do (``pipeline.model_limits``; the
        neutral profile's before there is an attempt)."""
        attempt = self.attempt
        return attempt.card if attempt is not None else card_for(self.upstream_model, DEFAULT_PROFILE)

    def lose(self, what: str, detail: str = "") -> None:
        """Record something a translation could not carry (``pipeline.losses.record``): ``what``
        is the kind counted by ``gateway_losses_total``, ``detail`` a sentence for the log line."""
        record(self.losses, what, detail)

    def loss_recorder(self) -> LossRecorder:
        """``lose`` as a callable that does not hold the context, for state kept in ``ctx.state``
        (a bound ``ctx.lose`` there is a reference cycle, left for the garbage collector)."""
        return LossRecorder(self.losses)

    loser = loss_recorder  # the earlier name, kept for stages written against it


class Stage:
    """Base class of every stage (built-in or an operator's ``module:attr``).

    ``name`` is the YAML name and the last part of ``id`` (``pipeline.index.name``); ``Config`` the
    options (a ``StageConfig`` subclass). Override only the hooks the stage needs: a hook left as
    the base method is not called (the runner asks ``has_*_hook``).
    """

    name: ClassVar[str] = "stage"
    Config: ClassVar[type[msgspec.Struct]] = NoConfig
    # Attributes deliberately shared by all requests and changed by them (a memo, a cache, a
    # store), safe under concurrency: ``check_stage`` does not hold them to "unchanged".
    shared_attributes: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: Any, *, stage_id: str = "") -> None:
        self.config = config
        self.id = stage_id or self.name

    async def on_request(self, request: ChatRequest, ctx: RequestContext) -> ChatRequest:
        """Shape the request on its way upstream; return it (or a ``msgspec.structs.replace`` copy)."""
        return request

    def on_event(self, event: Event, ctx: RequestContext) -> Sequence[Event]:
        """Transform one response event (synchronous): return the events to pass on, ``()`` to
        hold or drop it. Return a sequence, even of one: ``(event,)``."""
        return (event,)

    def on_end(self, ctx: RequestContext) -> Sequence[Event]:
        """The response input ended: return what ``on_event`` still holds."""
        return ()

    async def on_events(self, inbox: MemoryReceiveChannel[Event], outbox: Outbox, ctx: RequestContext) -> None:
        """Task form: ``with outbox:`` then ``async for event in inbox:`` and ``await outbox.send``."""
        with outbox:
            async for event in inbox:
                await outbox.send(event)

    async def open(self) -> None:
        """Acquire the resources the stage holds (once, at startup, after the upstreams opened)."""

    async def aclose(self) -> None:
        """Release them (once, at shutdown; also when a later stage's ``open`` failed)."""

    @classmethod
    def _overrides(cls, hook: str) -> bool:
        """Whether the class provides ``hook``: overridden, and not set to ``None`` (the way a
        subclass switches an inherited hook off)."""
        fn = getattr(cls, hook)
        return fn is not None and fn is not getattr(Stage, hook)

    @classmethod
    def has_event_hook(cls) -> bool:
        return cls._overrides("on_event")

    @classmethod
    def has_end_hook(cls) -> bool:
        return cls.has_event_hook() and cls._overrides("on_end")

    @classmethod
    def has_task_hook(cls) -> bool:
        return cls._overrides("on_events")

    @classmethod
    def has_request_hook(cls) -> bool:
        return cls._overrides("on_request")

    @classmethod
    def check_hooks(cls) -> str | None:
        """What is wrong with the hooks' form (``None``: nothing), as one sentence for a ConfigError."""
        if cls.has_task_hook() and cls.has_event_hook():
            return "a stage implements on_event or on_events, not both"
        for hook, sync in (("on_event", True), ("on_end", True), ("on_request", False), ("on_events", False),
                           ("open", False), ("aclose", False)):
            fn = inspect.getattr_static(cls, hook)
            fn = getattr(fn, "__func__", fn)  # a staticmethod or classmethod
            if fn is None and hook.startswith("on_"):  # a hook switched off
                continue
            if not callable(fn):
                return f"{hook} must be a method, got {type(fn).__name__}"
            coroutine = inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)
            if sync and coroutine:
                how = "on_events (async def on_events(inbox, outbox, ctx))" if hook == "on_event" else "on_events"
                return f"{hook} must be synchronous (def, not async def); for async work use the task form {how}"
            if not sync and not coroutine:
                return f"{hook} must be async def"
        return None


__all__ = ["NoConfig", "Outbox", "RequestContext", "Stage", "StageConfig"]
