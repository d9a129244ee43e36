"""token_budget: never over the window, never a budget that cannot fit, never silently truncated.

Request way, for the attempt's upstream model (``ctx.attempt``: a fallback is budgeted for its own
window): estimate the prompt (``pipeline.tokens``, calibrated per upstream model; a session's next
request estimates only its new messages, ``ctx.recall``), clamp the output budget to the model's
max output, keep it at or above a floor when thinking is on (reasoning shares the budget; without
thinking the client's own budget is kept, however small),
send an explicit budget when the client gave none, and shrink it to what the window leaves.
When even the minimum output does not fit, the upstream is not called: the client gets its own
dialect's context-length error, so it compacts. The estimate is ``ctx.prompt_estimate`` (the
client's encoder reports it before the upstream's usage) and the ``prompt_estimate`` log field.
Response way: upstream-reported prompt tokens calibrate the estimator.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from pipeline.errors import GatewayError
from pipeline.events import Event, Usage
from pipeline.model import ChatRequest
from pipeline.model_limits import thinking_on
from pipeline.stage import RequestContext, Stage, StageConfig
from pipeline.tokens import CALIBRATOR, raw_estimate


class _Estimate(msgspec.Struct, frozen=True):
    model: str
    raw: float


class TokenBudget(Stage):
    name = "token_budget"

    class Config(StageConfig, frozen=True, kw_only=True):
        # Output budget sent when the client sends none (clamped to the model's max output).
        default_output_tokens: int = 65_536
        # Smallest useful answer without thinking: below this the prompt is "too long".
        min_output_tokens: int = 1_024
        # Floor for the output budget with thinking on (reasoning shares it).
        thinking_floor_tokens: int = 8_192
        # Fraction added to the estimate before comparing with the window (estimator error).
        safety_margin: float = 0.02

        def __post_init__(self) -> None:
            if self.min_output_tokens < 1 or self.thinking_floor_tokens < self.min_output_tokens:
                raise ValueError("need 1 <= min_output_tokens <= thinking_floor_tokens")
            if not 0 <= self.safety_margin < 0.5:
                raise ValueError("safety_margin must be in [0, 0.5)")

    async def on_request(self, request: ChatRequest, ctx: RequestContext) -> ChatRequest:
        attempt = ctx.attempt
        if attempt is None:
            return request
        model, limits = attempt.model, attempt.limits
        raw = raw_estimate(request, ctx.recall, self.id)  # a session's next request: its new messages
        ctx.state[self.id] = _Estimate(model, raw)
        prompt = int(raw * CALIBRATOR.factor(model)) + 1
        exact = await attempt.count_tokens(request, ctx)
        if exact is not None:
            prompt = exact
        guarded = int(prompt * (1 + self.config.safety_margin)) if exact is None else prompt
        thinking = thinking_on(request, attempt.card)
        wanted = request.max_output_tokens or self.config.default_output_tokens
        # Without thinking a client's budget below min_output_tokens is what it needs room for.
        floor = min(self.config.thinking_floor_tokens if thinking else min(self.config.min_output_tokens, wanted),
                    limits.max_output_tokens)
        room = limits.context_window - guarded
        if room < floor:
            raise GatewayError(
                f"prompt is too long: {prompt} tokens > {limits.context_window - floor} maximum",
                code="context_length_exceeded", blame="client")
        budget = min(wanted, limits.max_output_tokens)
        if budget < floor and thinking:  # reasoning shares the budget: a small one would be all reasoning
            budget = floor
            ctx.lose("max_tokens_raised", f"{wanted} raised to the thinking floor {floor}")
        elif request.max_output_tokens and budget < wanted:
            ctx.lose("max_tokens_clamped", f"{wanted} clamped to the model's max output {budget}")
        if budget > room:
            ctx.lose("max_tokens_window", f"{budget} reduced to {room} to fit the context window")
            budget = room
        ctx.fields["prompt_estimate"] = prompt
        ctx.prompt_estimate = prompt
        return msgspec.structs.replace(request, max_output_tokens=budget)

    def on_event(self, event: Event, ctx: RequestContext) -> Sequence[Event]:
        # A sum over several upstream rounds (the gateway ran a search between them) is not the
        # prompt that was estimated: only a single round's count calibrates.
        if isinstance(event, Usage) and event.input_tokens and event.rounds == 1:
            estimate = ctx.state.get(self.id)
            if isinstance(estimate, _Estimate):
                CALIBRATOR.observe(estimate.model, estimate.raw, event.input_tokens)
        return (event,)


__all__ = ["TokenBudget"]
