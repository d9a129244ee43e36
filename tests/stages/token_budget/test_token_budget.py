"""token_budget: clamping, floors, explicit budgets, window errors, calibration."""

from __future__ import annotations


import msgspec
import pytest

from pipeline.errors import GatewayError
from pipeline.events import Usage
from pipeline.model import ChatRequest, Message, TextPart, ThinkingConfig
from pipeline.testing import check_stage, make_context, run_stage, sample_events
from pipeline.tokens import CALIBRATOR, Calibrator, estimate_request_tokens, raw_estimate
from pipeline.attempt import Attempt
from pipeline.upstream import ModelLimits, Upstream, UpstreamConfig
from stages.token_budget import TokenBudget


def upstream(profile: str = "deepseek", limits: dict | None = None) -> Upstream:
    return Upstream(UpstreamConfig(type="x", profile=profile, limits=limits or {}), upstream_id="u")


def ctx_for(up: Upstream):
    ctx = make_context()
    ctx.aim(Attempt.aimed(up, "local-model"))
    return ctx


def request(text: str = "hello", **kwargs) -> ChatRequest:
    return ChatRequest(model="local-model", messages=(Message(role="user", parts=(TextPart(text),)),), **kwargs)


def stage(**options) -> TokenBudget:
    return TokenBudget(msgspec.convert(options, type=TokenBudget.Config), stage_id="p.1.token_budget")


LOCAL = {"local-model": ModelLimits(context_window=8192, max_output_tokens=2048)}


class TestOutputBudget:
    async def test_claude_codes_128k_is_clamped_for_a_local_model(self) -> None:
        """128000 requested, 2048 allowed: clamped, with a loss entry."""
        ctx = ctx_for(upstream("llamacpp", LOCAL))
        out = await stage(thinking_floor_tokens=1024).on_request(request(max_output_tokens=128000), ctx)
        assert out.max_output_tokens == 2048
        assert "max_tokens_clamped" in {loss.what for loss in ctx.losses}

    async def test_128k_is_fine_for_deepseek(self) -> None:
        """DeepSeek's 393,216 max output leaves Claude Code's default untouched."""
        ctx = ctx_for(upstream())
        out = await stage().on_request(request(max_output_tokens=128000), ctx)
        assert out.max_output_tokens == 128000 and not ctx.losses

    async def test_thinking_floor(self) -> None:
        """With thinking on, a tiny budget is raised to the floor (reasoning shares it)."""
        ctx = ctx_for(upstream())
        out = await stage(thinking_floor_tokens=4096).on_request(request(max_output_tokens=100), ctx)
        assert out.max_output_tokens == 4096

    async def test_no_floor_with_thinking_off(self) -> None:
        """With thinking off, the client's small budget is kept."""
        ctx = ctx_for(upstream())
        req = request(max_output_tokens=100, thinking=ThinkingConfig(enabled=False))
        out = await stage(min_output_tokens=50).on_request(req, ctx)
        assert out.max_output_tokens == 100

    async def test_no_floor_with_thinking_off_even_below_min_output_tokens(self) -> None:
        """A small-model call's 300 tokens, thinking off: sent as 300, not raised to 1,024 or 8,192
        (min_output_tokens is what the window must leave, not a budget forced on the client)."""
        ctx = ctx_for(upstream())
        req = request(max_output_tokens=300, thinking=ThinkingConfig(enabled=False))
        out = await stage().on_request(req, ctx)
        assert out.max_output_tokens == 300 and not ctx.losses

    async def test_explicit_budget_when_client_sends_none(self) -> None:
        """Codex sends no max_output_tokens: an explicit one is sent."""
        ctx = ctx_for(upstream())
        out = await stage(default_output_tokens=50000).on_request(request(), ctx)
        assert out.max_output_tokens == 50000

    async def test_budget_shrinks_to_fit_the_window(self) -> None:
        """prompt + budget never exceeds the window."""
        ctx = ctx_for(upstream("llamacpp", LOCAL))
        text = "abcd " * 5000  # ~6600 tokens: leaves ~1500 of the 8192 window
        out = await stage(thinking_floor_tokens=1024).on_request(request(text, max_output_tokens=2048), ctx)
        prompt = ctx.fields["prompt_estimate"]
        assert out.max_output_tokens + prompt * 1.02 <= 8192 + 1
        assert "max_tokens_window" in {loss.what for loss in ctx.losses}

    async def test_estimate_is_the_contexts_for_each_shaping(self) -> None:
        """The prompt estimate is ctx.prompt_estimate (the client's encoder reports it), the log
        field's number; the request carries nothing of it; a shaping for another upstream sets its own."""
        ctx = ctx_for(upstream("llamacpp", LOCAL))
        assert ctx.prompt_estimate is None
        req = request("abcd " * 500)
        out = await stage().on_request(req, ctx)
        assert ctx.prompt_estimate == ctx.fields["prompt_estimate"] > 0
        assert out == msgspec.structs.replace(req, max_output_tokens=out.max_output_tokens)
        first = ctx.prompt_estimate
        ctx.aim(Attempt.aimed(upstream(), "local-model"))
        await stage().on_request(request("abcd " * 900), ctx)
        assert ctx.prompt_estimate == ctx.fields["prompt_estimate"] > first


class TestWindow:
    async def test_over_the_window_is_a_context_length_error(self) -> None:
        """The upstream is not called; the error says 'prompt is too long: N tokens > M maximum'."""
        ctx = ctx_for(upstream("llamacpp", LOCAL))
        with pytest.raises(GatewayError) as info:
            await stage(thinking_floor_tokens=1024).on_request(request("abcd " * 8000), ctx)
        assert info.value.code == "context_length_exceeded" and info.value.status == 400
        assert info.value.message.startswith("prompt is too long: ")
        assert info.value.message.endswith(f"tokens > {8192 - 1024} maximum")


class TestCalibration:
    def test_converges_to_reported_counts(self) -> None:
        """A model whose tokenizer counts 30% more converges within 2% after a few turns."""
        cal = Calibrator()
        req = request("some text " * 300)
        raw = raw_estimate(req)
        for _ in range(10):
            cal.observe("m", raw, int(raw * 1.3))
        assert abs(raw * cal.factor("m") / (raw * 1.3) - 1) < 0.02
        cal.reset()
        assert cal.factor("m") == 1.0 and cal.factors == {}

    async def test_usage_event_calibrates(self) -> None:
        """Usage.input_tokens from the upstream feeds the per-model calibrator."""
        up = upstream("llamacpp", LOCAL)
        ctx = ctx_for(up)
        st = stage(thinking_floor_tokens=1024)
        req = request("calibrate me " * 50)
        raw = raw_estimate(req)
        CALIBRATOR.factors.pop("local-model", None)
        events = [*sample_events()[:4], Usage(input_tokens=int(raw * 2), output_tokens=1), sample_events()[-1]]
        await run_stage(st, events, request=req, ctx=ctx)
        assert CALIBRATOR.factor("local-model") == pytest.approx(2.0, rel=0.01)
        assert estimate_request_tokens(req, "local-model") == pytest.approx(raw * 2, rel=0.01)
        CALIBRATOR.factors.pop("local-model", None)

    async def test_a_sum_of_rounds_does_not_calibrate(self) -> None:
        """Usage summed over several upstream rounds (the gateway ran a web search between them)
        is not the prompt that was estimated: it leaves the calibrator alone."""
        up = upstream("llamacpp", LOCAL)
        ctx = ctx_for(up)
        req = request("calibrate me " * 50)
        CALIBRATOR.factors.pop("local-model", None)
        usage = Usage(input_tokens=int(raw_estimate(req) * 2), output_tokens=1, rounds=2)
        await run_stage(stage(thinking_floor_tokens=1024), [*sample_events()[:4], usage, sample_events()[-1]],
                        request=req, ctx=ctx)
        assert "local-model" not in CALIBRATOR.factors


async def test_conformance() -> None:
    """token_budget follows the stage contract."""
    await check_stage(stage())
