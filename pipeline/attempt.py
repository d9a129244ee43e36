"""One try at one upstream: what a request is shaped for and sent to.

The retry loop (``pipeline.retry``) makes an ``Attempt`` for each upstream of the pipeline's list
that it tries (a retry on the same upstream keeps the attempt and its shaped request), and sets it
as ``ctx.attempt`` before the request stages run. Stages read the upstream's facts from it (its
profile, the upstream model the client's name maps to, that model's limits, its token counter), so
a fallback upstream gets a request shaped for itself, not the first upstream's.

``Target`` is the part of an upstream an attempt needs; ``pipeline.upstream.Upstream`` is one. Pure
data and one call, so stages and their tests depend on this module, not on ``upstreams``.
"""

from __future__ import annotations

from typing import Any, Protocol

from pipeline.model import ChatRequest
from pipeline.profiles import ModelLimits, Profile

# The request's context (``pipeline.stage.RequestContext``, which holds the attempt): passed
# through to the upstream, never read here, so this module stays below the stage contract.
Context = Any


class Target(Protocol):
    """What an attempt aims at (an upstream)."""

    id: str
    profile: Profile

    def map_model(self, client_model: str) -> str: ...

    def limits(self, upstream_model: str) -> ModelLimits: ...

    def key_missing(self, ctx: Context) -> str | None: ...

    async def count_tokens(self, request: ChatRequest, ctx: Context) -> int | None: ...


class Attempt:
    """The upstream one try is aimed at, with the facts the request stages shape for.

    Attributes:
        target: the upstream (``None`` for a stand-in made by tests from plain values).
        upstream_id: its id (log lines, metrics, the thinking envelope).
        profile: its backend quirks.
        model: the upstream model name the client's model maps to.
        limits: that model's context window and max output.
        tries: how many times this upstream was tried for the request so far.
    """

    __slots__ = ("limits", "model", "profile", "target", "tries", "upstream_id")

    def __init__(self, *, upstream_id: str, profile: Profile, model: str, limits: ModelLimits,
                 target: Target | None = None) -> None:
        self.target = target
        self.upstream_id = upstream_id
        self.profile = profile
        self.model = model
        self.limits = limits
        self.tries = 0

    @classmethod
    def aimed(cls, target: Target, client_model: str) -> Attempt:
        """The attempt at ``target`` for a request naming ``client_model``."""
        model = target.map_model(client_model)
        return cls(upstream_id=target.id, profile=target.profile, model=model, limits=target.limits(model),
                   target=target)

    async def count_tokens(self, request: ChatRequest, ctx: Context) -> int | None:
        """Exact prompt tokens from the upstream's tokenizer, or ``None`` (estimate instead)."""
        if self.target is None:
            return None
        return await self.target.count_tokens(request, ctx)


__all__ = ["Attempt", "Target"]
