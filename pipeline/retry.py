"""Retries before the first byte: full-jitter backoff, Retry-After up to a cap, a per-request budget,
then the next upstream of the pipeline's fallback list. The policy is ``PipelineConfig.retry``.

After the upstream's ``started()`` (the client's HTTP status is decided) nothing is retried: a
failure becomes the dialect's in-stream error, which the clients retry themselves.
"""

from __future__ import annotations

import random
from typing import Any

import trio

from pipeline.config import RetryConfig
from pipeline.errors import GatewayError, UpstreamError
from pipeline.events import Event, StreamError
from pipeline.model import ChatRequest
from pipeline.registry import Pipeline
from pipeline.stage import RequestContext
from upstreams.base import Upstream


def retry_delay(policy: RetryConfig, attempt: int, err: UpstreamError) -> float | None:
    """Seconds to wait before retry ``attempt`` (0-based) on the same upstream.

    Returns:
        ``None`` when the upstream asked for a longer wait (Retry-After) than the policy honours:
        stop retrying that upstream.
    """
    if err.retry_after_s is not None:
        return err.retry_after_s if err.retry_after_s <= policy.retry_after_cap_s else None
    return random.uniform(0.0, min(policy.backoff_cap_s, policy.backoff_base_s * 2**attempt))


class _Status:
    """What an upstream's ``stream`` gets as ``task_status``: ``started()`` marks the commit."""

    __slots__ = ("committed",)

    def __init__(self) -> None:
        self.committed = False

    def started(self, value: None = None) -> None:
        self.committed = True


async def _attempt(upstream: Upstream, request: ChatRequest, out: trio.abc.SendChannel[Event],
                   ctx: RequestContext) -> None:
    """One upstream call, to the end of its stream. Before ``started()`` an error propagates;
    after, it is sent as ``StreamError`` and the outbox is closed."""
    status = _Status()
    try:
        await upstream.stream(request, out, ctx, task_status=status)  # type: ignore[arg-type]
    except GatewayError as err:
        if not status.committed:
            raise
        await out.send(StreamError(error=err.info()))
    finally:
        if status.committed:
            out.close()  # type: ignore[attr-defined]


async def run_upstream(pipeline: Pipeline, request: ChatRequest, out: trio.abc.SendChannel[Event],
                       ctx: RequestContext, outcome: Any) -> None:
    """Stream from the first upstream that answers, in the calling task (no task per attempt:
    the upstream's reads, the stages, the encoder and the writes all run here); ``outcome.attempts``
    counts every try.

    Raises:
        UpstreamError: before the commit, a non-retryable failure at once; else the last failure
            once the attempts, the budget, the fallback list or the time before the deadline are
            used up.
    """
    policy = pipeline.config.retry
    last: UpstreamError | None = None
    for upstream in pipeline.upstreams:
        ctx.upstream_id, ctx.upstream = upstream.id, upstream
        for attempt in range(policy.attempts_per_upstream):
            if outcome.attempts >= policy.budget:
                break
            outcome.attempts += 1
            try:
                await _attempt(upstream, request, out, ctx)
                return
            except UpstreamError as err:
                if not err.retryable:
                    raise
                last = err
            delay = retry_delay(policy, attempt, last)
            again = delay is not None and attempt + 1 < policy.attempts_per_upstream and outcome.attempts < policy.budget
            ctx.log.info("upstream_attempt_failed", upstream=upstream.id, attempt=outcome.attempts, code=last.code,
                         status=last.status, retry_in_s=round(delay, 3) if again and delay is not None else None)
            if not again:  # next upstream (a Retry-After beyond the cap too), else the client gets it
                break
            assert delay is not None
            if trio.current_time() + delay >= ctx.deadline:
                raise last  # the real error beats a deadline error after a pointless wait
            await trio.sleep(delay)
    assert last is not None  # budget and attempts are >= 1, so at least one attempt failed
    raise last


__all__ = ["retry_delay", "run_upstream"]
