"""The upstream contract: a terminal step that turns a neutral request into neutral events.

It sits beside the stage contract, below every implementation: the runner and the registry
depend on this class, the upstreams in ``upstreams/`` subclass it (a custom ``type: module:attr``
too; ``upstreams.base`` still hands these names on for one written against it).

``Upstream.stream(request, attempt, ctx)`` sends the request shaped for ``attempt``
(``pipeline.attempt``: the retry loop makes one per try; the upstream model name is the
attempt's) and hands the answer to it as neutral events, ``await attempt.emit(events)``, one read
at a time. The attempt decides when the client's HTTP status is committed; before that a failure
raises ``UpstreamError`` (``retryable`` when another try may succeed), after it the upstream emits
``StreamError`` and returns (raising works too: the attempt turns it into one). Model-name
mapping and per-model limits live here too, because they are facts about the upstream.
"""

from __future__ import annotations

import fnmatch
import os
import re
from typing import Annotated, Any, ClassVar, Literal

import msgspec

from pipeline.attempt import Attempt
from pipeline.model import ChatRequest
from pipeline.model_limits import ModelCard, card_for, model_card
from pipeline.profiles import PROFILES, ModelLimits, Price, Profile
from pipeline.stage import RequestContext

_MARKER = re.compile(r"\[[^\[\]]*\]$")  # a trailing [...]: Claude Code's [1m]


class UpstreamConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Upstream type: openai_chat | openai_responses | anthropic_messages | simulator | module:attr.
    type: str
    # Base URL; the chat path is appended (DeepSeek: https://api.deepseek.com).
    base_url: str = ""
    # Name of the env var holding the API key (the key itself never appears in config or logs).
    api_key_env: str | None = None
    # Forward the client's own key (x-api-key or Bearer) instead of api_key_env.
    key_passthrough: bool = False
    # Backend quirks profile: deepseek | vllm | ollama | llamacpp | openai (openai_chat);
    # deepseek_responses (openai_responses); anthropic | deepseek_anthropic (anthropic_messages).
    profile: str = "openai"
    # Client model name (glob) → upstream model; "default" catches the rest.
    models: dict[str, str] = {}
    # Per upstream model limit overrides (else the model table's, pipeline/model_limits.py, else the profile's).
    limits: dict[str, ModelLimits] = {}
    # Per upstream model prices, USD per million tokens (else the model table's list price).
    prices: dict[str, Price] = {}
    # Path appended to base_url for chat completions.
    chat_path: str = "/chat/completions"
    # Seconds to establish a TCP/TLS connection.
    connect_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    # Seconds without any byte (keep-alive comments count) before the stream is abandoned.
    idle_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    # Seconds a stream may carry only keep-alive comments (queued upstream, no data yet) before it
    # is abandoned with the client's overloaded error (DeepSeek itself gives up after 600).
    queue_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 600.0
    # Extra HTTP headers sent upstream.
    headers: dict[str, str] = {}
    # Connection pool size.
    max_connections: Annotated[int, msgspec.Meta(ge=1)] = 512
    # HTTP client for streamed answers: "fast" (the gateway's HTTP/1.1 transport, one piece per
    # socket read) or "httpx" (httpx's own stack; needed for HTTP proxies).
    http_client: Literal["fast", "httpx"] = "fast"
    # Tokenizer endpoint (llama.cpp: /tokenize), relative to base_url's host; exact prompt counts.
    tokenize_path: str | None = None
    # Type-specific options (e.g. the simulator's).
    options: dict[str, Any] = {}


class Upstream:
    """Base class; ``openai_chat`` is the real implementation."""

    type_name: ClassVar[str] = "base"

    def __init__(self, config: UpstreamConfig, *, upstream_id: str) -> None:
        self.config = config
        self.id = upstream_id
        try:
            self.profile: Profile = PROFILES[config.profile]
        except KeyError:
            raise ValueError(f"unknown profile {config.profile!r} (known: {', '.join(sorted(PROFILES))})") from None

    async def open(self) -> None:
        """Open network resources (called in the ASGI lifespan)."""

    async def aclose(self) -> None:
        """Close network resources."""

    def api_key(self, ctx: RequestContext | None = None) -> str | None:
        if self.config.key_passthrough and ctx is not None:
            key = ctx.headers.get("x-api-key")
            if not key:
                auth = ctx.headers.get("authorization", "")
                if auth.lower().startswith("bearer "):
                    key = auth[7:].strip()
            if key:
                return key
        if self.config.api_key_env:
            return os.environ.get(self.config.api_key_env) or None
        return None

    def key_missing(self, ctx: RequestContext) -> str | None:
        """Why this upstream has no key for the request (naming the env variable, never a value),
        or ``None`` when it has one or needs none."""
        if self.api_key(ctx) is not None or not self.config.api_key_env:
            return None
        where = "the client sent no key to pass through and " if self.config.key_passthrough else ""
        return (f"upstream {self.id!r} has no API key: {where}environment variable "
                f"{self.config.api_key_env} is not set")

    def map_model(self, client_model: str) -> str:
        """Upstream model for a client model name: exact key, then globs in order, then default.
        A client-side marker at the end of the name (Claude Code's ``[1m]``: "use the 1M window")
        never reaches the upstream: without an exact key for it, the name is looked up without it."""
        table = self.config.models
        if client_model in table:
            return table[client_model]
        client_model = _MARKER.sub("", client_model)
        if client_model in table:
            return table[client_model]
        for pattern, target in table.items():
            if pattern != "default" and fnmatch.fnmatchcase(client_model, pattern):
                return target
        return table.get("default", client_model)

    def limits(self, upstream_model: str) -> ModelLimits:
        """The model's limits: this upstream's ``limits:`` override, else the model table
        (``pipeline.model_limits``), else the profile's."""
        found = self.config.limits.get(upstream_model)
        if found is not None:
            return found
        card = model_card(upstream_model, self.profile.name)
        if card is not None:
            return card.limits()
        return ModelLimits(
            context_window=self.profile.context_window, max_output_tokens=self.profile.max_output_tokens
        )

    def price(self, upstream_model: str) -> Price | None:
        """What ``upstream_model``'s tokens cost on this upstream: its ``prices:``, else the table's."""
        found = self.config.prices.get(upstream_model)
        if found is not None:
            return found
        card = model_card(upstream_model, self.profile.name)
        return card.price if card is not None else None

    def card(self, upstream_model: str) -> ModelCard:
        """Everything clients are told about ``upstream_model``, and what the encoders act on: the
        model table's entry (with this upstream's ``limits:`` applied), or one made from the
        profile for a model the table does not know (``model_limits.card_for``)."""
        limits = self.limits(upstream_model)
        return msgspec.structs.replace(card_for(upstream_model, self.profile), context_window=limits.context_window,
                                       max_output_tokens=limits.max_output_tokens)

    def advertised_models(self) -> list[tuple[str, str]]:
        """(client-facing id, upstream model) pairs for ``/v1/models``."""
        seen: dict[str, str] = {}
        for pattern, target in self.config.models.items():
            if pattern == "default" or any(c in pattern for c in "*?["):
                continue
            seen.setdefault(pattern, target)
        for target in self.config.models.values():
            seen.setdefault(target, target)
        return list(seen.items())

    async def count_tokens(self, request: ChatRequest, ctx: RequestContext) -> int | None:
        """Exact prompt tokens from the upstream's tokenizer, or ``None`` (estimate instead)."""
        return None

    async def stream(self, request: ChatRequest, attempt: Attempt, ctx: RequestContext) -> None:
        """Send ``request`` (shaped for ``attempt``: ``attempt.model`` is the upstream model) and
        emit the answer's events into ``attempt``."""
        raise NotImplementedError


__all__ = ["ModelLimits", "Upstream", "UpstreamConfig"]
