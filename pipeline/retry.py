"""Retries before the first byte: full-jitter backoff, Retry-After up to a cap, a per-request budget,
then the next upstream of the pipeline's fallback list. The policy is ``PipelineConfig.retry``.

Each upstream tried gets its own ``Attempt`` (``pipeline.attempt``) and a request the request
stages shaped for it (``Plan``): model name, profile quirks, limits, token budget, tool id and
name rules. An upstream without its API key is skipped; with none left the client gets the
authentication error naming the env variable.

A streamed answer: after the attempt commits (the client's HTTP status is decided) nothing is
retried; a failure becomes the dialect's in-stream error, which the clients retry
themselves. A collected answer (``stream: false``, ``Plan.collect``): the client has nothing until
the whole body, so a failure anywhere in a try is retried like one before the commit, with the
same policy and classification (``pipeline.errors.RETRYABLE_CODES`` for an in-stream error: a
drop, a cut or malformed stream, an overload or server error chunk yes; a deterministic error
chunk such as invalid_request no). ``flow.Collected`` gives each try a response chain and
collector of its own, and each retry on the same upstream starts from the request context its
shaping left (``ctx.state``, losses, log fields), so nothing of a discarded half answer stays.

A stage that held a whole answer back may ask for another try with an amended request
(``pipeline.errors.Redo``: structured output that did not validate), streamed or collected: it
goes to the same upstream at once, into the same response (nothing of the answer reached the
client), rewound like a retry, outside the budget and at most ``MAX_REDOS`` times.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from pipeline.attempt import Attempt, Outlet
from pipeline.config import RetryConfig
from pipeline.errors import MAX_REDOS, GatewayError, Redo, UpstreamError
from pipeline.model import ChatRequest
from pipeline.registry import Pipeline
from pipeline.routing import choose
from pipeline.stage import RequestContext

if TYPE_CHECKING:
    from pipeline.flow import Collected
    from pipeline.respond import Outcome

Try = Callable[[Attempt, ChatRequest], Awaitable[None]]  # one try, with the request shaped for its upstream


def retry_delay(policy: RetryConfig, attempt: int, err: UpstreamError) -> float | None:
    """Seconds to wait before retry ``attempt`` (0-based) on the same upstream.

    Returns:
        ``None`` when the upstream asked for a longer wait (Retry-After) than the policy honours:
        stop retrying that upstream.
    """
    if err.retry_after_s is not None:
        return err.retry_after_s if err.retry_after_s <= policy.retry_after_cap_s else None
    return random.uniform(0.0, min(policy.backoff_cap_s, policy.backoff_base_s * 2**attempt))


class Plan:
    """The attempts of one request: each upstream of the fallback list in turn, the request
    stages run for it (from the decoded request) when it is first tried. ``first()`` shapes for
    the first upstream that has a key (the runner builds the client's encoder from that request);
    ``run()`` streams, ``collect()`` collects, reusing a shaping for retries on the same upstream.

    A fallback is shaped afresh: the stages' request-way state and the losses they recorded for
    the upstream given up on are dropped (the decoder's losses stay), so the response way, the log
    line and the metrics describe the attempt that served. A retry on the same upstream rewinds
    the context to what its shaping left (``ctx.state``, losses, log fields): whatever the failed
    try's response way and upstream call added is dropped.
    """

    __slots__ = ("_failure", "_kept", "_next", "_pipeline", "_request", "_route", "_shaped", "current")

    def __init__(self, pipeline: Pipeline, request: ChatRequest, ctx: RequestContext) -> None:
        self._pipeline = pipeline
        self._request = request  # as decoded: every shaping starts from it
        # The routing rule that serves this request: its upstreams are the fallback list.
        self._route = route = choose(pipeline.routing, request, ctx.headers)
        if len(pipeline.routing) > 1:
            ctx.fields["route"] = route.name
        # The decoder's losses, as they were: a stage may take one off (web_search runs the hosted
        # tool the decoder could not carry), and a second shaping starts from them again.
        self._kept = tuple(ctx.losses)
        self._next = 0  # index of the next upstream to aim at
        self.current: tuple[Attempt, ChatRequest] | None = None
        self._failure: GatewayError | None = None  # why an upstream was skipped (no key, refused shape)
        self._shaped: tuple[int, dict[str, Any], dict[str, Any]] = (0, {}, {})  # the context after shaping

    async def _shape(self, attempt: Attempt, ctx: RequestContext) -> ChatRequest:
        if ctx.attempt is not None:  # a second shaping: forget the first one's traces
            ctx.losses[:] = self._kept  # in place: loss recorders hold the list
            ctx.state.clear()
        ctx.aim(attempt)
        request = self._request
        for stage in self._pipeline.request_stages:
            request = await stage.on_request(request, ctx)
        self._shaped = (len(ctx.losses), dict(ctx.state), dict(ctx.fields))
        return request

    def _rewind(self, ctx: RequestContext) -> None:
        """The context as the current shaping left it (in place: stage state may hold ``ctx.losses``)."""
        losses, state, fields = self._shaped
        del ctx.losses[losses:]
        ctx.state.clear()
        ctx.state.update(state)
        ctx.fields.clear()
        ctx.fields.update(fields)

    async def first(self, ctx: RequestContext) -> ChatRequest:
        """Aim at the first usable upstream and shape the request for it.

        Raises:
            GatewayError: no upstream has a key (the dialect's authentication error, naming the
                env variable), or the first upstream's stages refused the request.
        """
        if not await self._advance(ctx, first=True):
            assert self._failure is not None
            raise self._failure
        assert self.current is not None
        return self.current[1]

    async def _advance(self, ctx: RequestContext, *, first: bool = False) -> bool:
        """Aim at the next upstream that has a key and accepts the shaped request."""
        upstreams = self._route.upstreams
        while self._next < len(upstreams):
            upstream = upstreams[self._next]
            self._next += 1
            missing = upstream.key_missing(ctx)
            if missing is not None:
                ctx.log.warning("upstream_skipped", upstream=upstream.id, reason="api_key_missing")
                self._failure = self._failure or UpstreamError(missing, code="authentication", status=401,
                                                               retryable=False)
                continue
            attempt = Attempt.aimed(upstream, self._request.model, model=self._route.model)
            try:
                self.current = (attempt, await self._shape(attempt, ctx))
            except GatewayError as err:
                if first and not self._failure:
                    raise  # the primary's own answer (e.g. the prompt is too long for it)
                # A fallback that cannot take the request: the primary's failure stays the answer
                # (a client told "too long" for a smaller fallback would compact its session).
                ctx.log.info("upstream_skipped", upstream=upstream.id, reason=err.code)
                self._failure = self._failure or err
                continue
            return True
        self.current = None
        return False

    async def run(self, out: Outlet, ctx: RequestContext, outcome: Outcome) -> None:
        """Stream from the first upstream that answers into ``out``, in the calling task (no task
        per attempt: the upstream's reads, the stages, the encoder and the writes all run here).
        A failure after the commit is the client's in-stream error, not retried.

        Raises:
            GatewayError: as ``_tries``.
        """
        async def once(attempt: Attempt, request: ChatRequest) -> None:
            await attempt.run(request, out, ctx)

        await self._tries(once, ctx, outcome)

    async def collect(self, answer: Collected, ctx: RequestContext, outcome: Outcome) -> None:
        """Collect a whole answer into ``answer`` (``stream: false``): each try gets a response
        chain of its own, and a failure anywhere in it, after the upstream's first content too,
        is retried like one before the commit (the client has nothing yet).

        Raises:
            GatewayError: as ``_tries``.
        """
        async def once(attempt: Attempt, request: ChatRequest) -> None:
            async def stream(out: Outlet) -> None:
                await attempt.run(request, out, ctx, collected=True)

            await answer.attempt(stream)

        await self._tries(once, ctx, outcome)

    async def _tries(self, once: Try, ctx: RequestContext, outcome: Outcome) -> None:
        """``once`` for the upstreams in turn until one try succeeds; ``outcome.attempts`` counts
        every try.

        Raises:
            GatewayError: a non-retryable failure at once; else the last failure once the
                attempts, the budget, the fallback list or the time before the deadline are used up.
        """
        policy = self._pipeline.config.retry
        last: GatewayError | None = self._failure
        redos = 0  # tries a stage asked for (``Redo``): counted in ``attempts``, outside the budget
        while self.current is not None:
            attempt, request = self.current
            while outcome.attempts - redos < policy.budget:
                outcome.attempts += 1
                try:
                    await once(attempt, request)
                    return
                except Redo as redo:
                    if redos >= MAX_REDOS:
                        raise GatewayError(str(redo), code=redo.code, status=redo.status, blame="upstream") from None
                    redos += 1
                    ctx.log.info("upstream_redo", upstream=attempt.upstream_id, attempt=outcome.attempts,
                                 reason=str(redo)[:300])
                    request = redo.amend(request)
                    self._rewind(ctx)
                    attempt = attempt.again()
                    self.current = (attempt, request)
                    ctx.aim(attempt)
                    continue
                except UpstreamError as exc:
                    if not exc.retryable:
                        raise
                    # Kept without its traceback: its frames hold this one, a cycle per retried request.
                    err = last = exc.with_traceback(None)
                delay = retry_delay(policy, attempt.tries - 1, err)
                again = (delay is not None and attempt.tries < policy.attempts_per_upstream
                         and outcome.attempts < policy.budget)
                ctx.log.info("upstream_attempt_failed", upstream=attempt.upstream_id, attempt=outcome.attempts,
                             code=err.code, status=err.status,
                             retry_in_s=round(delay, 3) if again and delay is not None else None)
                if not again:  # next upstream (a Retry-After beyond the cap too), else the client gets it
                    break
                assert delay is not None
                if trio.current_time() + delay >= ctx.deadline:
                    raise err  # the real error beats a deadline error after a pointless wait
                await trio.sleep(delay)
                self._rewind(ctx)
                attempt = attempt.again()
                self.current = (attempt, request)
                ctx.aim(attempt)
            if outcome.attempts - redos >= policy.budget or not await self._advance(ctx):
                break
        assert last is not None  # budget and attempts are >= 1, so at least one attempt failed
        raise last


__all__ = ["Plan", "retry_delay"]
