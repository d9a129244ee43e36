"""The one table of each known upstream model's real limits and capabilities.

Every number a client is told about a model comes from here: the token budget's clamp and the
window it guards (through ``Upstream.limits``), ``/v1/models`` in both dialects, the Codex model
catalog and the Claude Code settings that ``python -m pipeline setup`` writes. A model not in the
table falls back to its upstream profile's ``context_window`` / ``max_output_tokens``; an
upstream's ``limits:`` in pipelines.yaml overrides both (a smaller local deployment).

Pure data, on the ground floor beside ``profiles``. Sources, DeepSeek V4 (../shared/PROTOCOLS.md
§4.1 and §5): context length "1M tokens (all V4 models)" on DeepSeek's model page, and a tester's
hard input cap of 1,048,570 tokens, so the window is 2^20 = 1,048,576 (a catalog's "1M" read as
1,000,000 would understate it by 48K; reports of a 370K rejection come from re-hosting backends
with their own caps, which ``limits:`` describes); max output 384K = 393,216 ([1, 393216] is the
``max_tokens`` range the API accepts); image input on Flash only; thinking on by default with
effort ``low`` / ``high`` / ``max``; a forced ``tool_choice`` is rejected while thinking.

It is also the only source of the per-model capabilities the upstream encoders act on (the
attempt's ``card``, ``card_for``): whether thinking is on by default (``thinking_on``), whether a
forced ``tool_choice`` may go with it, the reasoning field, the effort words (``effort_word``), and
vision. The profile keeps what is a fact of the server's wire (how thinking is switched, whether
the endpoint's format carries images at all, schema limits), and describes a model the table does
not know (``card_for`` makes its card from the profile).
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from pipeline.model import ChatRequest
from pipeline.profiles import ModelLimits, Price, Profile


class ModelCard(msgspec.Struct, frozen=True, kw_only=True):
    # The upstream model name, as sent upstream.
    model: str
    display_name: str
    description: str = ""
    # Total tokens (prompt + output) the model accepts.
    context_window: int
    # Largest output (reasoning included) in one answer.
    max_output_tokens: int
    # User images accepted.
    vision: bool = False
    # Thinking is available.
    reasoning: bool = True
    # Thinking is on when the request does not say.
    thinking_default: bool = True
    # The delta/message field that carries reasoning.
    reasoning_field: str = "reasoning_content"
    # The effort words the upstream itself accepts, weakest first, and its default.
    reasoning_levels: tuple[str, ...] = ()
    default_reasoning_level: str | None = None
    # A forced tool_choice (a named tool, "required") is accepted while thinking.
    forced_tool_choice_with_thinking: bool = False
    # Several tool calls in one answer.
    parallel_tool_calls: bool = True
    # The upstream profiles that serve the model with these figures (a local server running
    # weights of the same name has its own window: its profile's, or ``limits:``).
    profiles: tuple[str, ...] = ("deepseek",)
    # Where the figures come from.
    source: str = ""
    # List price (USD per million tokens), for the per-key cost; ``None``: not known (no cost).
    price: Price | None = None

    def limits(self) -> ModelLimits:
        return ModelLimits(context_window=self.context_window, max_output_tokens=self.max_output_tokens)


# DeepSeek's own API in each of its formats (Chat, Responses, Anthropic): the same models, the same limits.
DEEPSEEK_PROFILES = ("deepseek", "deepseek_responses", "deepseek_anthropic")


# DeepSeek's list prices (api-docs.deepseek.com/quick_start/pricing, DeepSeek-V4-Pro-0813 page): USD per
# million tokens, cache hit / miss / output, no cache-write charge. DeepSeek bills peak and off-peak
# hours differently since 2026-08-16 (off-peak at half); an upstream's `prices:` sets what it pays.
DEEPSEEK_PRICES = {
    "deepseek-v4-pro": Price(input=0.435, cached_input=0.003625, output=0.87),
    "deepseek-v4-flash": Price(input=0.14, cached_input=0.0028, output=0.28),
}


def _deepseek_v4(model: str, display_name: str, description: str, *, vision: bool) -> ModelCard:
    return ModelCard(
        model=model, display_name=display_name, description=description,
        context_window=1_048_576, max_output_tokens=393_216, vision=vision,
        reasoning_field="reasoning_content", reasoning_levels=("low", "high", "max"),
        default_reasoning_level="high", forced_tool_choice_with_thinking=False, parallel_tool_calls=True,
        profiles=DEEPSEEK_PROFILES, price=DEEPSEEK_PRICES[model],
        source="DeepSeek API docs, ../shared/PROTOCOLS.md §4.1-§4.3 (1M = 2^20 context, 384K output)")


MODELS: dict[str, ModelCard] = {
    "deepseek-v4-pro": _deepseek_v4(
        "deepseek-v4-pro", "DeepSeek V4 Pro", "DeepSeek V4 Pro through the gateway: the strongest, text input.",
        vision=False),
    "deepseek-v4-flash": _deepseek_v4(
        "deepseek-v4-flash", "DeepSeek V4 Flash", "DeepSeek V4 Flash through the gateway: fast, image input.",
        vision=True),
}


def model_card(upstream_model: str, profile: str = "deepseek") -> ModelCard | None:
    """The table's entry for ``upstream_model`` served by an upstream of ``profile``, or ``None``
    for a model (or a backend of it) the table does not know."""
    card = MODELS.get(upstream_model)
    return card if card is not None and profile in card.profiles else None


def card_for(upstream_model: str, profile: Profile) -> ModelCard:
    """What ``upstream_model`` on an upstream of ``profile`` can do: the table's entry, or one made
    from the profile's figures for a model the table does not know."""
    found = model_card(upstream_model, profile.name)
    if found is not None:
        return found
    p = profile
    return ModelCard(
        model=upstream_model, display_name=upstream_model, context_window=p.context_window,
        max_output_tokens=p.max_output_tokens, vision=p.images, reasoning=p.thinking_switch != "none",
        thinking_default=p.thinking_default, reasoning_field=p.reasoning_field, reasoning_levels=p.effort_levels,
        forced_tool_choice_with_thinking=p.forced_tool_choice_with_thinking, profiles=(p.name,),
        source=f"profile {p.name!r} (the model table does not know this model)")


def image_refusal(card: ModelCard, profile: Profile) -> str | None:
    """Why a user image cannot go to this model on this endpoint (the model has no vision, or the
    endpoint's format takes none), or ``None`` when it can."""
    if not card.vision:
        return f"{card.model} has no image input"
    if not profile.images:
        return f"{profile.name} does not accept images"
    return None


# The client's effort words, weakest first ("none" is thinking off, never a level).
_SCALE = ("minimal", "low", "medium", "high", "xhigh", "max")


def effort_word(card: ModelCard, effort: str | None) -> str | None:
    """The model's own level for the client's ``effort``: the weakest of its levels at or above the
    word (DeepSeek's low / high / max: minimal → low, medium → high, xhigh → max), its strongest
    when none is; ``None`` for no effort, ``none``, a word off the scale, or a model without levels."""
    levels = card.reasoning_levels
    if not levels or effort not in _SCALE:
        return None
    rank = _SCALE.index(effort)
    ranked = [level for level in levels if level in _SCALE]
    for level in sorted(ranked, key=_SCALE.index):
        if _SCALE.index(level) >= rank:
            return level
    return max(ranked, key=_SCALE.index) if ranked else None


def forced_choice(request: ChatRequest) -> bool:
    """The request forces a tool call (a named tool, or ``required`` / Anthropic's ``any``)."""
    choice = request.tool_choice
    return bool(request.tools) and choice is not None and choice.mode in ("required", "tool")


def thinking_wanted(request: ChatRequest, card: ModelCard) -> bool:
    """Whether the client's request, as it asked (or the model's default), thinks."""
    if request.thinking.effort == "none":
        return False
    enabled = request.thinking.enabled
    return card.thinking_default if enabled is None else enabled


def thinking_on(request: ChatRequest, card: ModelCard) -> bool:
    """Whether thinking is effectively on for this request: as wanted, except that a forced
    ``tool_choice`` the model rejects while thinking turns it off (the client forced the call
    because it needs it: the call is honoured, the thinking is what gives way)."""
    if not thinking_wanted(request, card):
        return False
    return card.forced_tool_choice_with_thinking or not forced_choice(request)


def thinking_for(request: ChatRequest, card: ModelCard, where: str, lose: Callable[[str, str], None]) -> bool:
    """``thinking_on`` for an upstream encoder (``where`` names its upstream in the loss): when the
    forced ``tool_choice`` is what turned thinking off, that is recorded as a ``thinking_off`` loss."""
    on = thinking_on(request, card)
    if not on and thinking_wanted(request, card):
        choice = request.tool_choice
        target = f"tool {choice.name!r}" if choice is not None and choice.name else "required"
        lose("thinking_off", f"thinking disabled for this request: the forced tool_choice ({target}) is sent, "
                             f"and {where} rejects one while thinking")
    return on


def effort_not_sent(request: ChatRequest, lose: Callable[[str, str], None]) -> None:
    """An upstream encoder sends no effort because thinking is off: the client's effort, if it gave
    one, is a loss. DeepSeek 400s ``thinking: disabled`` together with an effort, and Claude Code
    2.1.166's sub-agents send exactly that shape (``thinking: {type: disabled}`` with
    ``output_config.effort``)."""
    effort = request.thinking.effort
    if effort is not None and effort != "none":
        lose("effort", f"effort {effort!r} not sent: thinking is disabled")


def display_not_carried(request: ChatRequest, upstream: str, lose: Callable[[str, str], None]) -> None:
    """Thinking goes on an upstream that returns its raw reasoning and takes no ``display``: a
    display the client asked for other than ``omitted`` (which the Anthropic client encoder
    honours itself) is a loss: the reasoning is shown whole, not summarized."""
    display = request.thinking.display
    if display is not None and display != "omitted":
        lose("thinking_display", f"thinking display {display!r} not carried: {upstream} returns its raw reasoning, "
                                 "shown whole, not summarized")


__all__ = [
    "DEEPSEEK_PROFILES", "MODELS", "ModelCard", "card_for", "display_not_carried", "effort_not_sent", "effort_word",
    "forced_choice", "image_refusal", "model_card", "thinking_for", "thinking_on", "thinking_wanted",
]
