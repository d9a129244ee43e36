"""The stage contract: the ``Stage`` base class, its hooks, and the per-request ``RequestContext``.

A stage is built once per pipeline from its validated ``Config`` and then treated as frozen; all
per-request state lives in ``ctx.state[stage.id]``. Hooks (each optional):

- ``async on_request(request, ctx) -> ChatRequest``: request path, YAML order.
- ``on_event(event, ctx) -> Sequence[Event]``: sync per-event transform, response path (reverse
  YAML order); no task, no channel. It may hold events back (return ``()`` now, more later)
  with its per-response state in ``ctx.state``.
- ``on_end(ctx) -> Sequence[Event]``: optional companion of ``on_event``: the input ended, return
  whatever is still held (called once, also when the stream ended without ``MessageStop``).
- ``async on_events(inbox, outbox, ctx)``: task form for stages that must wait on time or I/O.
  ``with outbox:`` then ``async for event in inbox:``. Every event costs task switches: prefer
  ``on_event`` (+ ``on_end``).

A stage implements at most one of ``on_event`` / ``on_events``. Unknown events pass through.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

import msgspec
import structlog

from pipeline.attempt import Attempt
from pipeline.model import ChatRequest, Loss
from pipeline.profiles import Profile

DEFAULT_PROFILE = Profile(name="default")


class NoConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
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
        deadline: ``trio.current_time()`` value after which the request is cancelled.
        log: structlog logger bound with the ids above.
        state: per-stage scratch space, keyed by stage id.
        losses: what translations could not carry (log field and metric).
        committed: True once the HTTP status line has been sent to the client.
        fields: extra fields for the ``request_finished`` log line (e.g. ``replay_rung``).
        headers: the client's request headers (lower-case names), for key passthrough.
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
        "request_id",
        "started",
        "state",
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
        self.deadline = deadline
        self._log: Any = None  # bound on first use: most requests log one line, at the end
        self.state: dict[str, Any] = {}
        self.losses: list[Loss] = []
        self.committed = False
        self.fields: dict[str, Any] = {}
        self.headers = headers or {}
        self.started = time.perf_counter()

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

    def lose(self, what: str, detail: str = "") -> None:
        """Record something a translation could not carry."""
        self.losses.append(Loss(what, detail))

    def loser(self) -> Callable[..., None]:
        """``lose`` as a callable that does not hold the context, for state kept in ``ctx.state``
        (a bound method there would be a reference cycle, left for the garbage collector)."""
        return partial(_record_loss, self.losses)


def _record_loss(losses: list[Loss], what: str, detail: str = "") -> None:
    losses.append(Loss(what, detail))


class Stage:
    """Base class of every stage (built-in or an operator's ``module:attr``)."""

    name: ClassVar[str] = "stage"
    Config: ClassVar[type[msgspec.Struct]] = NoConfig

    def __init__(self, config: Any, *, stage_id: str = "", pipeline: Any = None) -> None:
        self.config = config
        self.id = stage_id or self.name
        self.pipeline = pipeline

    async def on_request(self, request: ChatRequest, ctx: RequestContext) -> ChatRequest:
        return request

    # Declared as None so the runner can tell which hook a subclass provides.
    on_event: ClassVar[Any] = None
    on_end: ClassVar[Any] = None
    on_events: ClassVar[Any] = None

    @classmethod
    def has_event_hook(cls) -> bool:
        return cls.on_event is not None

    @classmethod
    def has_end_hook(cls) -> bool:
        return cls.on_event is not None and cls.on_end is not None

    @classmethod
    def has_task_hook(cls) -> bool:
        return cls.on_events is not None

    @classmethod
    def has_request_hook(cls) -> bool:
        return cls.on_request is not Stage.on_request


__all__ = ["NoConfig", "RequestContext", "Stage"]
