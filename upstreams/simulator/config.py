"""Simulator configuration: ``SimConfig`` (frozen msgspec Struct) and the fault vocabulary.

Everything that makes the simulator behave like one backend or another (DeepSeek by default,
vLLM/Ollama-like with ``reasoning_field="reasoning"``) or misbehave on purpose (faults, delays)
is data here. ``SimConfig`` is built once; the ``Simulator`` keeps its mutable state elsewhere.
"""

from __future__ import annotations

from typing import Literal, get_args

import msgspec

from pipeline.model_limits import MODELS

FaultKind = Literal[
    "429", "500", "503", "drop", "stall", "slow", "keepalive", "badchunk", "truncate",
    "overload", "error_chunk",
]

# Faults answered before the body is even looked at (an HTTP error status).
HTTP_FAULTS: frozenset[str] = frozenset({"429", "500", "503"})
FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))

# DeepSeek's model names (PROTOCOLS.md §4.1); ``SimConfig.models`` adds more.
DEEPSEEK_MODELS: tuple[str, ...] = (
    "deepseek-v4-pro", "deepseek-v4-flash", "deepseek-flash", "deepseek-chat", "deepseek-reasoner",
)
# Of those, the ones that take image input ("image input on Flash only", PROTOCOLS.md §4.1, §4.5).
VISION_MODELS: tuple[str, ...] = ("deepseek-v4-flash", "deepseek-flash")


class ScheduledFault(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Inject ``kind`` into the ``on_request``-th chat request (1-based, counting every POST)."""

    on_request: int
    kind: FaultKind


class SimConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the simulator behaves.

    Attributes:
        api_key: when set, requests need ``Authorization: Bearer <api_key>`` (else 401).
        models: accepted model names in addition to ``DEEPSEEK_MODELS``.
        context_window: prompt estimate + ``max_tokens`` above this is a 400.
        max_output_tokens: the upper bound of ``max_tokens`` (DeepSeek V4: 384K); also the
            budget when the request has no ``max_tokens``.
        reasoning_field: the delta/message field carrying reasoning, out and in.
        thinking_default: thinking when the request has no ``thinking`` (DeepSeek: on).
        replay_check: which assistant messages must carry ``reasoning_field`` while thinking:
            ``tool_calls`` (DeepSeek's rule), ``all_assistant`` (the stricter reports), ``off``.
        verify_replay: also 400 when an echoed tool call (by id) differs from what this
            simulator emitted: reasoning text, function name or arguments (JSON-equal).
        reject_mid_system: 400 on a system message after a non-system one.
        chunk_delay_s: delay before every streamed piece.
        keepalive_comments: ``: keep-alive`` comments (streams) or blank lines (JSON) sent
            before the answer; the ``keepalive`` fault sends at least 3.
        keepalive_interval_s: delay before each keep-alive piece.
        faults: scheduled faults (dicts are accepted and converted by the ``Simulator``).
        stall_s: how long the ``stall`` fault pauses mid-stream.
        slow_chunk_s: per-piece delay of the ``slow`` fault.
        interleave_parallel: parallel tool calls interleave their fragments by index.
        usage_on_finish_chunk: put ``usage`` on the finish chunk (some servers) instead of a
            separate ``choices: []`` chunk.
        responses_flavour: how ``POST /responses`` behaves (``upstreams/simulator/responses.py``):
            ``deepseek`` (DeepSeek's Responses API: reasoning_text deltas, its own verified
            encrypted_content, custom tools), ``openai`` (summaries, encrypted_content only when
            included and the only way reasoning comes back) or ``llamacpp`` (function tools only).
        messages_flavour: how ``POST /anthropic/v1/messages`` behaves
            (``upstreams/simulator/anthropic_validate.py``): ``deepseek`` (DeepSeek's Anthropic
            endpoint, its refusals) or ``anthropic`` (the real API: ``claude-*`` models, every
            thinking block signed by this simulator and verified, ``redacted_thinking`` it minted
            (one answered after the thinking block on ``SIM:redact``, which ``verify_replay``
            wants back exactly with its tool turn), images and documents,
            ``output_config.format``, a thinking budget below ``max_tokens``, Anthropic-shaped
            errors).
        history: how many request bodies / connection records are kept.
        seed: seeds ids and random parts, so runs are reproducible.
    """

    api_key: str | None = None
    models: tuple[str, ...] = ()
    # DeepSeek V4's figures, from the gateway's one table of model limits.
    context_window: int = MODELS["deepseek-v4-pro"].context_window
    max_output_tokens: int = MODELS["deepseek-v4-pro"].max_output_tokens
    reasoning_field: Literal["reasoning_content", "reasoning"] = "reasoning_content"
    thinking_default: bool = True
    replay_check: Literal["tool_calls", "all_assistant", "off"] = "tool_calls"
    verify_replay: bool = False
    reject_mid_system: bool = False
    chunk_delay_s: float = 0.0
    keepalive_comments: int = 0
    keepalive_interval_s: float = 0.0
    faults: tuple[ScheduledFault, ...] = ()
    stall_s: float = 30.0
    slow_chunk_s: float = 0.25
    interleave_parallel: bool = True
    usage_on_finish_chunk: bool = False
    responses_flavour: Literal["deepseek", "openai", "llamacpp"] = "deepseek"
    messages_flavour: Literal["deepseek", "anthropic"] = "deepseek"
    history: int = 64
    seed: int = 0


def fault_schedule(config: SimConfig) -> dict[int, str]:
    """``{request number: fault kind}`` from ``config.faults`` (Structs or plain dicts).

    Raises:
        ValueError: an unknown kind, a request number below 1, or two faults on one request.
    """
    schedule: dict[int, str] = {}
    for item in config.faults:
        try:
            fault = msgspec.convert(item, ScheduledFault) if isinstance(item, dict) else item
        except msgspec.ValidationError as exc:
            raise ValueError(f"bad scheduled fault {item!r}: {exc}") from None
        if not isinstance(fault, ScheduledFault):
            raise ValueError(f"bad scheduled fault {item!r}")
        if fault.on_request < 1:
            raise ValueError(f"on_request must be >= 1, got {fault.on_request}")
        if fault.on_request in schedule:
            raise ValueError(f"two faults scheduled on request {fault.on_request}")
        schedule[fault.on_request] = fault.kind
    return schedule


__all__ = [
    "DEEPSEEK_MODELS",
    "FAULT_KINDS",
    "HTTP_FAULTS",
    "FaultKind",
    "ScheduledFault",
    "SimConfig",
    "fault_schedule",
]
