"""Backend quirks as data: one ``Profile`` per family of OpenAI-compatible server.

The encoders and decoders and the stages read these fields instead of branching on backend
names. An upstream picks a profile by name in ``pipelines.yaml`` and may override limits.
A profile holds what is a fact of the server's wire; what a model can do (vision, thinking by
default, forced tool choice while thinking, the reasoning field, its effort levels, its window)
is the model table's (``pipeline.model_limits``): the fields marked "per model" below describe
only a model the table does not know (``model_limits.card_for`` makes its card from them).
Pure data, so it sits on the ground floor beside the neutral model: the stage contract, the
codecs and the stages read it without importing an upstream. Facts: ../shared/PROTOCOLS.md §3.3,
§3.5, §4.
"""

from __future__ import annotations

from typing import Literal

import msgspec

ThinkingSwitch = Literal["deepseek", "chat_template_kwargs", "anthropic", "none"]


class ModelLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Total tokens (prompt + output) the model accepts.
    context_window: int
    # Largest output (incl. reasoning) the model accepts in one answer.
    max_output_tokens: int


class Price(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a model's tokens cost, USD per million. DeepSeek bills input by cache hit and miss and
    has no cache-write charge (``cache_write`` 0); output includes the reasoning tokens."""

    # Input tokens the upstream did not have cached.
    input: float
    # Input tokens served from the upstream's cache.
    cached_input: float
    # Output tokens (reasoning included).
    output: float
    # Tokens written to a cache (Anthropic's cache_creation); 0 where there is no such charge.
    cache_write: float = 0.0


class Profile(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    # Per model: which delta/message field carries reasoning, out and in (§3.3). The Chat decoder
    # reads this one (a server sends what its parser names).
    reasoning_field: Literal["reasoning_content", "reasoning"] = "reasoning_content"
    # How thinking is switched: DeepSeek's `thinking` object, llama.cpp/vLLM template kwargs, the
    # Messages API's `thinking` object (with `output_config.effort`), or not at all.
    thinking_switch: ThinkingSwitch = "none"
    # Per model: thinking on when the client does not say (DeepSeek V4: on).
    thinking_default: bool = False
    # Per model: the effort words the server accepts, weakest first (a client's word goes as the
    # weakest at or above it, ``model_limits.effort_word``); empty: never send an effort.
    effort_levels: tuple[str, ...] = ()
    # DeepSeek's rule (§4.3): with thinking on, every assistant message carries the
    # reasoning field ("" when unknown) or the request is a 400.
    reasoning_on_every_assistant: bool = False
    # Per model: a forced tool_choice is accepted while thinking (DeepSeek: no, §4.2 / DESIGN §7).
    forced_tool_choice_with_thinking: bool = True
    context_window: int = 131072
    max_output_tokens: int = 32768
    # Whether `strict` on function tools may be sent.
    supports_strict: bool = False
    # A tool call id the upstream accepts; others are mapped by the tool_ids stage.
    tool_id_pattern: str = r"^[A-Za-z0-9_\-]{1,64}$"
    tool_name_pattern: str = r"^[a-zA-Z0-9_-]{1,64}$"
    # JSON-schema keywords the upstream rejects; stripped by the tool_ids stage.
    schema_drop_keywords: tuple[str, ...] = ()
    # Inline $ref/$defs (servers whose grammar converters choke on refs).
    inline_schema_refs: bool = False
    # Ask for usage on the last chunk with stream_options.include_usage.
    stream_usage: bool = True
    # Max stop sequences the upstream accepts.
    max_stop: int = 16
    # Forward `user` (DeepSeek: [A-Za-z0-9_-]{1,512}).
    send_user: bool = True
    # Forward `top_k` (DeepSeek ignores it; llama.cpp and vLLM accept it).
    send_top_k: bool = False
    # The endpoint's format carries user images (a model without vision still gets a placeholder:
    # the card's ``vision`` decides with this).
    images: bool = True
    # Only the assistant's text content is reliable as a string (some templates reject lists).
    content_as_string: bool = True
    # Mid-conversation system messages are rejected: fold them into the first one.
    fold_system: bool = True
    # The client's own thinking blocks (signed by this upstream, e.g. Anthropic's) go back as they
    # came; thinking_filter removes only its envelopes (and what they restore, it restores).
    keep_client_thinking: bool = False
    # Messages upstreams: with thinking on, every assistant turn with tool calls carries its
    # thinking block (an empty one when the reasoning is unknown), else a 400 (DeepSeek's
    # "The `content[].thinking` in the thinking mode must be passed back to the API").
    thinking_on_tool_turns: bool = False
    # Messages upstreams: `output_config.format` (a JSON schema answer) is accepted.
    output_format: bool = True
    # The largest `temperature` accepted (the Messages API: 1; DeepSeek and the Chat servers: 2).
    max_temperature: float = 2.0
    # The real Messages API with thinking on: `temperature` only 1, no `top_k`, `top_p` from 0.95 to
    # 1 (anything else is a 400; its extended-thinking docs, "feature compatibility").
    thinking_fixed_sampling: bool = False
    # What the upstream does with a JSON-schema answer format: `enforced` (it constrains the
    # answer to the schema: sent as it came), `json_object` (only a JSON mode, which needs the
    # word "json" in the prompt: DeepSeek), `prompt` (neither). With the structured_output stage,
    # anything but `enforced` gets the schema in the system prompt and the answer validated.
    response_schema: Literal["enforced", "json_object", "prompt"] = "enforced"
    # Responses upstreams (type openai_responses) only, below.
    # Ask for each reasoning item's encrypted_content (include); it goes back, with the item's id,
    # to this same upstream on later turns (never to another).
    encrypted_reasoning: bool = False
    # `custom` (freeform) tools and custom_tool_call items are accepted; else a custom tool is sent
    # as a function with one string parameter `input` (its calls come back as that function).
    custom_tools: bool = True
    # An assistant turn's reasoning may go back as `reasoning_text` content without the upstream's
    # own encrypted_content (open servers, DeepSeek); OpenAI takes back only its own items.
    reasoning_text_replay: bool = True


PROFILES: dict[str, Profile] = {
    "deepseek": Profile(
        name="deepseek",
        reasoning_field="reasoning_content",
        thinking_switch="deepseek",
        thinking_default=True,
        effort_levels=("low", "high", "max"),
        reasoning_on_every_assistant=True,
        forced_tool_choice_with_thinking=False,
        context_window=1_048_576,
        max_output_tokens=393_216,
        supports_strict=False,
        schema_drop_keywords=("$schema",),
        send_user=True,
        response_schema="json_object",  # json_schema accepted, reportedly not enforced (§4.5)
    ),
    # DeepSeek's Responses API (https://api.deepseek.com/responses, deepseek-v4-flash first): the
    # Chat profile's limits and rules, plus its own encrypted_content, which other providers reject.
    "deepseek_responses": Profile(
        name="deepseek_responses",
        thinking_default=True,
        effort_levels=("low", "high", "max"),
        reasoning_on_every_assistant=True,
        forced_tool_choice_with_thinking=False,
        context_window=1_048_576,
        max_output_tokens=393_216,
        schema_drop_keywords=("$schema",),
        encrypted_reasoning=True,
        response_schema="json_object",
    ),
    "vllm": Profile(
        name="vllm",
        reasoning_field="reasoning",
        thinking_switch="chat_template_kwargs",
        thinking_default=True,
        context_window=131_072,
        max_output_tokens=32_768,
        supports_strict=True,
        send_top_k=True,
        send_user=False,
        custom_tools=False,  # its /v1/responses converts function tools only (not verified: mapping is safe)
    ),
    "ollama": Profile(
        name="ollama",
        reasoning_field="reasoning",
        thinking_switch="none",
        effort_levels=("low", "medium", "high"),
        context_window=8_192,
        max_output_tokens=4_096,
        tool_id_pattern=r"^[A-Za-z0-9_\-]{1,64}$",
        schema_drop_keywords=("$schema",),
        send_user=False,
    ),
    "llamacpp": Profile(
        name="llamacpp",
        reasoning_field="reasoning_content",
        thinking_switch="chat_template_kwargs",
        thinking_default=True,
        context_window=8_192,
        max_output_tokens=2_048,
        schema_drop_keywords=("$schema", "format"),
        inline_schema_refs=True,
        send_top_k=True,
        send_user=False,
        images=False,
        custom_tools=False,  # llama-server's /v1/responses accepts only function tools
    ),
    "openai": Profile(
        name="openai",
        context_window=128_000,
        max_output_tokens=16_384,
        supports_strict=True,
        encrypted_reasoning=True,
        reasoning_text_replay=False,
    ),
    # The real Anthropic Messages API (type anthropic_messages).
    "anthropic": Profile(
        name="anthropic",
        thinking_switch="anthropic",
        effort_levels=("low", "medium", "high", "max"),
        forced_tool_choice_with_thinking=False,
        context_window=200_000,
        max_output_tokens=64_000,
        supports_strict=True,
        send_top_k=True,
        keep_client_thinking=True,
        thinking_on_tool_turns=True,
        max_temperature=1.0,
        thinking_fixed_sampling=True,
    ),
    # DeepSeek's Anthropic endpoint (https://api.deepseek.com/anthropic, type anthropic_messages).
    "deepseek_anthropic": Profile(
        name="deepseek_anthropic",
        thinking_switch="anthropic",
        thinking_default=True,
        effort_levels=("low", "high", "max"),
        forced_tool_choice_with_thinking=False,
        context_window=1_048_576,
        max_output_tokens=393_216,
        schema_drop_keywords=("$schema",),
        send_user=False,
        images=False,
        thinking_on_tool_turns=True,
        output_format=False,
        response_schema="prompt",
    ),
    # vLLM, llama.cpp (llama-server) and Ollama on their own /v1/messages (type anthropic_messages):
    # each converts the Messages body to its Chat pipeline, so, unlike DeepSeek's endpoint and the
    # real API, no signature is checked (the exact reasoning goes back with an empty one) and no
    # empty thinking block is needed. Differences from deepseek_anthropic, sourced:
    # - thinking only when the client asks: Ollama answers thinking for a model without it with a
    #   400 '"llama3.1:8b" does not support thinking' (Gitlawb/openclaude#1371);
    # - images: Ollama's docs (api/anthropic-compatibility: "Vision (images)", base64 image content),
    #   llama.cpp PR #17425 ("Vision support with image content blocks");
    # - top_k: among Ollama's supported request fields; llama.cpp and vLLM sample with it;
    # - no output_config (not among Ollama's supported fields): effort and format are not sent;
    # - a local window (set `limits:` to what the server was started with).
    "local_anthropic": Profile(
        name="local_anthropic",
        thinking_switch="anthropic",
        context_window=32_768,
        max_output_tokens=8_192,
        schema_drop_keywords=("$schema",),
        send_top_k=True,
        send_user=False,
        output_format=False,
        response_schema="prompt",
    ),
}


__all__ = ["PROFILES", "ModelLimits", "Price", "Profile", "ThinkingSwitch"]
