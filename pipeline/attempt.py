"""One try at one upstream: what a request is shaped for and sent to, and the seam its events cross.

The retry loop (``pipeline.retry``) makes an ``Attempt`` for each try: the first at an upstream
of the pipeline's list is set as ``ctx.attempt`` before the request stages run, and a retry on the
same upstream is a new attempt (``again()``) with the same aim and the same shaped request. Stages
read the upstream's facts from it (its profile, the upstream model the client's name maps to,
that model's limits and capabilities (its ``card`` from the model table), its token counter), so
a fallback upstream gets a request shaped for itself.

The upstream hands its events to the attempt, never to a channel: ``await attempt.emit(events)``
(one read's worth at a time). The attempt owns the commit: it holds a lone ``MessageStart`` back,
commits at the first event worth deciding the client's HTTP status for (any other event, a
keep-alive ``Heartbeat`` included), and turns a ``StreamError`` before the commit into an
``UpstreamError`` the retry loop may retry. After the commit an error is the client's in-stream
error; in a collected try (``stream: false``, nothing sent to the client yet) an error anywhere
raises, so the whole try can be retried. ``run()`` is the try itself, called by the retry loop;
it closes the outlet once the try ended the response.

``Target`` is the part of an upstream an attempt needs (``pipeline.upstream.Upstream`` is one),
``Outlet`` the part of the response chain (``pipeline.flow``): pure protocols, so stages and their
tests depend on this module, not on ``upstreams`` or the flow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

from pipeline.errors import CODES, RETRYABLE_CODES, GatewayError, Redo, UpstreamError, redact
from pipeline.events import Event, MessageStart, StreamError
from pipeline.model import ChatRequest
from pipeline.model_limits import ModelCard, card_for
from pipeline.profiles import ModelLimits, Price, Profile
from pipeline.server_tools import GatewayTool, ToolLoop

# The request's context (``pipeline.stage.RequestContext``, which holds the attempt): passed
# through to the upstream, never read here, so this module stays below the stage contract.
Context = Any


class Target(Protocol):
    """What an attempt aims at (an upstream)."""

    id: str
    profile: Profile

    def map_model(self, client_model: str) -> str: ...

    def limits(self, upstream_model: str) -> ModelLimits: ...

    def card(self, upstream_model: str) -> ModelCard: ...

    def price(self, upstream_model: str) -> Price | None: ...

    def key_missing(self, ctx: Context) -> str | None: ...

    async def count_tokens(self, request: ChatRequest, ctx: Context) -> int | None: ...

    async def stream(self, request: ChatRequest, attempt: Attempt, ctx: Context) -> None: ...


class Outlet(Protocol):
    """Where a committed attempt's events go: the entry of the response chain."""

    async def send_many(self, values: Sequence[Event], /) -> None: ...

    def close(self) -> None: ...


class Attempt:
    """One try at an upstream: what it is aimed at, and the emit / commit seam of its answer.

    Attributes:
        target: the upstream (``None`` for a stand-in made by tests from plain values).
        upstream_id: its id (log lines, metrics, the thinking envelope).
        profile: its backend quirks.
        model: the upstream model name the client's model maps to (mapped once, here).
        limits: that model's context window and max output.
        card: what that model can do (``pipeline.model_limits``: vision, thinking by default, a
            forced tool choice while thinking, effort levels); made from the profile when not given.
        tries: which try at this upstream this is (1 for the first).
        committed: the try committed (the client's HTTP status is decided by what it emitted).
        gateway_tools: tools the gateway runs itself, by upstream function name (a request
            stage registers them; ``pipeline.server_tools``): with any, ``run`` loops over the
            upstream's rounds inside the one answer.
    """

    __slots__ = ("_collected", "_loop", "_out", "_pending", "_secrets", "card", "committed", "gateway_tools",
                 "limits", "model", "profile", "target", "tries", "upstream_id")

    def __init__(self, *, upstream_id: str, profile: Profile, model: str, limits: ModelLimits,
                 target: Target | None = None, tries: int = 1, card: ModelCard | None = None) -> None:
        self.target = target
        self.upstream_id = upstream_id
        self.profile = profile
        self.model = model
        self.limits = limits
        self.card = card if card is not None else card_for(model, profile)
        self.tries = tries
        self.committed = False
        self._out: Outlet | None = None
        self._collected = False
        self._pending: list[Event] = []  # held before the commit
        self._secrets: tuple[str, ...] = ()
        self.gateway_tools: dict[str, GatewayTool] = {}
        self._loop: ToolLoop | None = None

    @classmethod
    def aimed(cls, target: Target, client_model: str, *, model: str | None = None) -> Attempt:
        """The first attempt at ``target`` for a request naming ``client_model``: the upstream model
        is ``model`` when a route names one, else the target's mapping of the client's name."""
        model = model or target.map_model(client_model)
        return cls(upstream_id=target.id, profile=target.profile, model=model, limits=target.limits(model),
                   target=target, card=target.card(model))

    def again(self) -> Attempt:
        """The next try at the same upstream, for the same shaped request."""
        attempt = Attempt(upstream_id=self.upstream_id, profile=self.profile, model=self.model, limits=self.limits,
                          target=self.target, tries=self.tries + 1, card=self.card)
        attempt.gateway_tools = self.gateway_tools
        return attempt

    async def count_tokens(self, request: ChatRequest, ctx: Context) -> int | None:
        """Exact prompt tokens from the upstream's tokenizer, or ``None`` (estimate instead)."""
        if self.target is None:
            return None
        return await self.target.count_tokens(request, ctx)

    def hide(self, secret: str | None) -> None:
        """Never show ``secret`` (the upstream's key) in an error message the client gets."""
        if secret:
            self._secrets = (*self._secrets, secret)

    async def run(self, request: ChatRequest, out: Outlet, ctx: Context, *, collected: bool = False) -> None:
        """The try: the upstream streams ``request`` into ``out`` through this attempt.

        Before the commit an error propagates (an upstream that returns without having committed
        too: a retryable ``bad_gateway``) (the retry loop decides); after it, it is sent as
        ``StreamError`` and the outlet is closed. A ``Redo`` (a stage held the answer back and asks
        for another try) always propagates and leaves the outlet open for that try. ``collected``:
        an error propagates whenever it comes, and the outlet is closed only at a clean end (the
        try's chain is dropped, not ended).

        Raises:
            GatewayError: as above.
        """
        assert self.target is not None, "a stand-in attempt has no upstream to run"
        self._out, self._collected = out, collected
        ended = redo = False
        loop = self._loop = ToolLoop(self.gateway_tools, request, self.upstream_id) if self.gateway_tools else None
        try:
            await self.target.stream(request, self, ctx)
            while loop is not None:
                events, follow = await loop.after_round()
                if events:
                    await self._emit(events)
                if follow is None:
                    break
                await self.target.stream(follow, self, ctx)
            if not self.committed:  # it ended having sent nothing worth a status
                raise UpstreamError(f"{self.upstream_id}: the answer ended before any content", code="bad_gateway",
                                    status=502, retryable=True)
            ended = True
        except Redo:
            redo = True  # a stage held this answer back and wants another try into the same outlet
            raise
        except GatewayError as err:
            if collected or not self.committed:
                raise
            await out.send_many([StreamError(error=err.info())])
        finally:
            # The outlet (the Sink) holds the context, which holds this attempt: let go of it, so
            # a finished request is freed by reference counting, not left to the cyclic collector
            # (with a megabyte history that is megabytes of objects per request waiting for it).
            self._out = self._loop = None
            if self.committed and not redo and (ended or not collected):
                out.close()

    async def emit(self, events: list[Event]) -> None:
        """Hand over one read's events (the list is the attempt's from now on).

        Raises:
            UpstreamError: a ``StreamError`` before the commit, or anywhere in a collected try.
        """
        if self._loop is not None:
            events = self._loop.feed(events)
        await self._emit(events)

    async def _emit(self, events: list[Event]) -> None:
        out = self._out
        assert out is not None, "emit() outside run()"
        if not self.committed:
            pending = self._pending
            pending.extend(events)
            self._check(pending, prefix=True)
            for event in pending:
                if type(event) is not MessageStart:
                    break
            else:
                return  # nothing worth a status yet
            self.committed = True
            self._pending, events = [], pending
        elif self._collected:
            self._check(events, prefix=False)
        elif self._secrets:
            for i, event in enumerate(events):
                if type(event) is StreamError:
                    events[i] = StreamError(error=msgspec.structs.replace(
                        event.error, message=redact(event.error.message, self._secrets)))
        if events:
            await out.send_many(events)

    async def commit(self) -> None:
        """Decide the client's status now (with whatever is held) instead of at the next event."""
        if not self.committed:
            self.committed = True
            held, self._pending = self._pending, []
            if held:
                assert self._out is not None, "commit() outside run()"
                await self._out.send_many(held)

    def _check(self, events: list[Event], *, prefix: bool) -> None:
        for event in events:
            if type(event) is StreamError:
                raise self._failed(event, prefix=prefix)

    def _failed(self, event: StreamError, *, prefix: bool) -> UpstreamError:
        info = event.error
        code = info.code if info.code in CODES else "api_error"
        message = f"{self.upstream_id}: {info.message}" if prefix else info.message
        return UpstreamError(redact(message, self._secrets), code=code, status=info.status,
                             retry_after_s=info.retry_after_s, retryable=code in RETRYABLE_CODES)


__all__ = ["Attempt", "Outlet", "Target"]
