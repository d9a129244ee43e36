"""The retry policy (``pipeline.retry``, ``PipelineConfig.retry``): attempts per upstream, the
per-request budget, fallback order, Retry-After up to its cap, backoff bounds, the deadline.

The upstreams are scripted in memory and the clock is trio's autojump clock, so waits are exact.
"""

from __future__ import annotations

import random

import msgspec
import pytest
import trio

from pipeline.config import PipelineConfig, RetryConfig, parse_config
from pipeline.errors import ConfigError
from pipeline.protocols.anthropic import AnthropicCodec
from pipeline.registry import Pipeline
from pipeline.retry import retry_delay
from pipeline.runner import Outcome, Responder, run_pipeline
from pipeline.testing import make_context, sample_request
from pipeline.upstream import Upstream
from tests.runner_helpers import Flaky, Sink, busy, never_disconnect


async def run(upstreams: list[Upstream], deadline_s: float = 60, **retry: object) -> tuple[Sink, Outcome, float]:
    conf = PipelineConfig(client="anthropic", upstream=[u.id for u in upstreams], deadline_s=deadline_s,
                          retry=RetryConfig(**retry))  # type: ignore[arg-type]
    pipe = Pipeline("p", conf, AnthropicCodec(), [], upstreams)
    start = trio.current_time()
    ctx = make_context(deadline=start + deadline_s, client="anthropic")
    sink, outcome = Sink(), Outcome()
    await run_pipeline(pipe, sample_request(stream=True), pipe.codec.reply(), ctx, Responder(sink.send, ctx, outcome), never_disconnect)
    return sink, outcome, trio.current_time() - start


class TestAttempts:
    async def test_attempts_per_upstream_then_fallback(self, autojump_clock) -> None:
        """Two attempts on `a` (the configured number), then `b` answers."""
        a, b = Flaky("a", [busy()] * 5), Flaky("b", [])
        sink, outcome, _ = await run([a, b], attempts_per_upstream=2)
        assert sink.status == 200 and len(a.calls) == 2 and len(b.calls) == 1 and outcome.attempts == 3

    async def test_budget_bounds_attempts_across_upstreams(self, autojump_clock) -> None:
        """budget 4 with 3 attempts each: a gets 3, b gets 1, c none; the client sees the last error."""
        a, b, c = Flaky("a", [busy()] * 5), Flaky("b", [busy()] * 5), Flaky("c", [])
        sink, outcome, _ = await run([a, b, c], attempts_per_upstream=3, budget=4)
        assert (len(a.calls), len(b.calls), len(c.calls)) == (3, 1, 0)
        assert sink.status == 529 and outcome.attempts == 4 and outcome.error_code == "overloaded"

    async def test_no_backoff_before_moving_on(self, autojump_clock) -> None:
        """The last failure on an upstream goes straight to the next one (no pointless wait)."""
        a, b = Flaky("a", [busy()]), Flaky("b", [])
        _, _, elapsed = await run([a, b], attempts_per_upstream=1, backoff_base_s=10, backoff_cap_s=10)
        assert elapsed == 0 and b.calls


class TestWaits:
    async def test_backoff_is_jittered_and_capped(self, autojump_clock) -> None:
        """Waits between attempts stay within min(cap, base * 2**n)."""
        random.seed(7)
        up = Flaky("a", [busy()] * 4)
        sink, _, _ = await run([up], attempts_per_upstream=5, budget=5, backoff_base_s=1, backoff_cap_s=3)
        gaps = [b - a for a, b in zip(up.calls, up.calls[1:])]
        assert sink.status == 200 and len(gaps) == 4
        assert all(0 <= gap <= bound + 1e-9 for gap, bound in zip(gaps, [1, 2, 3, 3]))
        assert len(set(gaps)) == 4  # jittered, not fixed

    async def test_retry_after_is_honoured_up_to_the_cap(self, autojump_clock) -> None:
        """Retry-After 2 s (cap 5) is waited exactly; 30 s is not waited: the client gets the 429
        with its Retry-After."""
        up = Flaky("a", [busy(2.0)])
        sink, _, _ = await run([up], retry_after_cap_s=5)
        assert sink.status == 200 and up.calls[1] - up.calls[0] == pytest.approx(2.0)
        up = Flaky("a", [busy(30.0)] * 3)
        sink, outcome, elapsed = await run([up], retry_after_cap_s=5)
        assert (sink.status, len(up.calls), elapsed) == (429, 1, 0)
        assert sink.headers[b"retry-after"] == b"30" and outcome.error_code == "rate_limit"

    async def test_retry_after_beyond_cap_moves_to_the_fallback(self, autojump_clock) -> None:
        a, b = Flaky("a", [busy(30.0)]), Flaky("b", [])
        sink, _, elapsed = await run([a, b], retry_after_cap_s=5)
        assert sink.status == 200 and elapsed == 0 and len(a.calls) == 1

    async def test_no_wait_past_the_deadline(self, autojump_clock) -> None:
        """A wait that would cross the deadline is skipped: the real error, not a 504 later."""
        up = Flaky("a", [busy(4.0)] * 3)
        sink, _, elapsed = await run([up], deadline_s=3, retry_after_cap_s=8)
        assert (sink.status, elapsed, len(up.calls)) == (429, 0, 1)

    def test_retry_delay_values(self) -> None:
        policy = RetryConfig(backoff_base_s=0.5, backoff_cap_s=2, retry_after_cap_s=3)
        assert retry_delay(policy, 0, busy(3.0)) == 3.0 and retry_delay(policy, 0, busy(3.5)) is None
        random.seed(1)
        assert all(0 <= retry_delay(policy, n, busy()) <= min(2, 0.5 * 2**n) for n in range(8) for _ in range(20))


class TestConfig:
    BASE = """
upstreams:
  sim: {type: simulator}
pipelines:
  p:
    client: chat
    upstream: sim
"""

    def test_defaults_and_yaml_block(self) -> None:
        assert PipelineConfig(client="chat", upstream="x").retry == RetryConfig()
        config = parse_config(self.BASE + "    retry: {attempts_per_upstream: 5, budget: 9, retry_after_cap_s: 1.5}\n", env={})
        retry = config.pipelines["p"].retry
        assert (retry.attempts_per_upstream, retry.budget, retry.retry_after_cap_s, retry.backoff_base_s) == (5, 9, 1.5, 0.25)

    @pytest.mark.parametrize(("block", "fragment"), [
        ("{attempts_per_upstream: 0}", "attempts_per_upstream"),
        ("{budget: -1}", "budget"),
        ("{backoff_cap_s: -0.5}", "backoff_cap_s"),
        ("{retries: 3}", "retries"),
    ])
    def test_bad_values_name_the_pipeline_and_field(self, block: str, fragment: str) -> None:
        with pytest.raises(ConfigError) as caught:
            parse_config(self.BASE + f"    retry: {block}\n", env={})
        assert "pipeline 'p'" in str(caught.value) and fragment in str(caught.value)

    def test_every_field_is_documented(self) -> None:
        """Each RetryConfig field has a comment line above it (rendered by `python -m pipeline`)."""
        import inspect

        source = inspect.getsource(RetryConfig)
        for name in msgspec.structs.fields(RetryConfig):
            line = next(i for i, text in enumerate(source.splitlines()) if text.strip().startswith(name.name + ":"))
            assert source.splitlines()[line - 1].strip().startswith("#"), name.name
