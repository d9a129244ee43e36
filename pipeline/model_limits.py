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
"""

from __future__ import annotations

import msgspec

from pipeline.profiles import ModelLimits


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
    # Thinking is available, and on by default.
    reasoning: bool = True
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

    def limits(self) -> ModelLimits:
        return ModelLimits(context_window=self.context_window, max_output_tokens=self.max_output_tokens)


# DeepSeek's own API in each of its formats (Chat, Responses, Anthropic): the same models, the same limits.
DEEPSEEK_PROFILES = ("deepseek", "deepseek_responses", "deepseek_anthropic")


def _deepseek_v4(model: str, display_name: str, description: str, *, vision: bool) -> ModelCard:
    return ModelCard(
        model=model, display_name=display_name, description=description,
        context_window=1_048_576, max_output_tokens=393_216, vision=vision,
        reasoning_field="reasoning_content", reasoning_levels=("low", "high", "max"),
        default_reasoning_level="high", forced_tool_choice_with_thinking=False, parallel_tool_calls=True,
        profiles=DEEPSEEK_PROFILES,
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


__all__ = ["DEEPSEEK_PROFILES", "MODELS", "ModelCard", "model_card"]
