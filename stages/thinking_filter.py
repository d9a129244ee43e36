"""thinking_filter: DeepSeek reasoning shown to the client and replayed upstream exactly.

Response way: every thinking block gets one ``SignatureDelta`` carrying a sealed envelope (the
reasoning text, upstream id and model, and the tool call ids it precedes). To learn the first
tool call id, the block's end is held back until the next tool call starts, the message ends, or
``holdback_chars`` of text have been held. At ``MessageStop`` the reasoning is also put in the
reasoning cache under each tool call id (rung 2 of the ladder).

Request way: every ``ThinkingPart`` is removed (foreign signatures and ``redacted_thinking`` never
reach the upstream); valid envelopes restore ``Message.reasoning`` on the assistant message that
carries their tool calls. When an assistant tool-call turn has no valid envelope, the ladder:
reasoning cache → ``""`` (DeepSeek checks presence) → thinking off for this request. The worst rung
used goes into the request's log line (``replay_rung``) and metrics.
"""

from __future__ import annotations

import os
import secrets as pysecrets

from collections.abc import Sequence

import msgspec

from pipeline.events import BlockStart, BlockStop, Event, MessageStart, MessageStop, SignatureDelta, StreamError
from pipeline.events import TextDelta, ThinkingDelta, ToolArgsDelta
from pipeline.model import ChatRequest, Message, ThinkingPart, ToolCallPart
from pipeline.protocols.chat import thinking_on
from pipeline.stage import RequestContext, Stage
from stages.envelope import Envelope, digest, open_envelope, seal
from stages.reasoning_cache import shared_store

_PASS = frozenset({TextDelta, ToolArgsDelta})  # never looked at unless a thinking block's end is held
RUNGS = ("not_needed", "envelope", "client", "cache", "empty", "thinking_off")
_PROCESS_SECRETS: dict[str, bytes] = {}


class _Resp:
    """Per-response state of the response hook."""

    __slots__ = ("call_ids", "held", "held_chars", "model", "open_index", "pending_stop", "texts", "block_text")

    def __init__(self) -> None:
        self.model = ""
        self.open_index: int | None = None
        self.block_text: list[str] = []
        self.texts: list[str] = []  # reasoning of every thinking block of this message
        self.pending_stop: BlockStop | None = None
        self.held: list[Event] = []
        self.held_chars = 0
        self.call_ids: list[str] = []


class ThinkingFilter(Stage):
    name = "thinking_filter"

    class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
        # Env var holding the HMAC secret for envelopes (shared by all replicas).
        secret_env: str = "GATEWAY_THINKING_SECRET"
        # Refuse to start without that secret (set true when several replicas share traffic).
        require_secret: bool = False
        # Reasoning longer than this (characters) is not carried in the envelope: its digest is,
        # and the text stays in the reasoning cache.
        inline_max_chars: int = 262_144
        # Text held back after a thinking block while waiting for the first tool call id.
        holdback_chars: int = 2_000
        # Ladder rung 3: send "" for unknown reasoning (else turn thinking off for the request).
        allow_empty_reasoning: bool = True
        # Reasoning cache: entries, total characters, lifetime.
        cache_entries: int = 10_000
        cache_max_chars: int = 64 * 1024 * 1024
        cache_ttl_s: float = 6 * 3600.0

    def __init__(self, config: Config, **kwargs: object) -> None:
        super().__init__(config, **kwargs)
        value = os.environ.get(config.secret_env, "")
        if value:
            self._secret = value.encode()
        elif config.require_secret:
            raise ValueError(f"environment variable {config.secret_env} is not set and require_secret is true "
                             "(every replica must share one secret, or envelopes from one are rejected by another)")
        else:
            self._secret = _PROCESS_SECRETS.setdefault(config.secret_env, pysecrets.token_bytes(32))
        self._key = self.id + ":response"  # ctx.state key of the per-response state
        self._store = shared_store("reasoning", max_entries=config.cache_entries, max_bytes=config.cache_max_chars,
                                   ttl_s=config.cache_ttl_s)

    # -- request way ------------------------------------------------------------------------

    async def on_request(self, request: ChatRequest, ctx: RequestContext) -> ChatRequest:
        thinking = thinking_on(request, ctx.profile)
        messages = list(request.messages)
        restored: dict[int, list[str]] = {}
        for i, message in enumerate(messages):
            if message.role != "assistant":
                continue
            for part in message.parts:
                if isinstance(part, ThinkingPart):
                    self._open(part, i, messages, restored, ctx)
        worst = 0
        for i, message in enumerate(messages):
            if message.role != "assistant":
                continue
            calls = [p.id for p in message.parts if isinstance(p, ToolCallPart)]
            parts = tuple(p for p in message.parts if not isinstance(p, ThinkingPart))
            reasoning, rung = self._resolve(message, restored.get(i), calls)
            if thinking and calls:
                worst = max(worst, RUNGS.index(rung))
            if parts != message.parts or reasoning != message.reasoning:
                messages[i] = msgspec.structs.replace(message, parts=parts, reasoning=reasoning)
        if worst == RUNGS.index("empty") and not self.config.allow_empty_reasoning:
            worst = RUNGS.index("thinking_off")
        rung = RUNGS[worst]
        ctx.fields["replay_rung"] = rung
        changes: dict[str, object] = {"messages": tuple(messages)}
        if rung == "thinking_off":
            ctx.lose("thinking_off", "no reasoning to replay for an earlier tool call; thinking disabled for this request")
            changes["thinking"] = msgspec.structs.replace(request.thinking, enabled=False, effort=None)
        return msgspec.structs.replace(request, **changes)

    def _open(self, part: ThinkingPart, index: int, messages: list[Message], restored: dict[int, list[str]],
              ctx: RequestContext) -> None:
        if part.redacted:
            ctx.lose("redacted_thinking", "redacted thinking is not forwarded")
            return
        envelope = open_envelope(part.signature, self._secret)
        if envelope is None:
            ctx.lose("foreign_thinking" if part.signature else "unsigned_thinking",
                     "thinking without a valid gateway envelope is not forwarded")
            return
        text = envelope.r if envelope.r is not None else (self._store.get("d:" + envelope.d) if envelope.d else None)
        if text is None:
            return
        target = index
        if envelope.t and not _has_call(messages[index], envelope.t[0]):
            target = next((j for j, m in enumerate(messages) if m.role == "assistant" and _has_call(m, envelope.t[0])),
                          index)
        restored.setdefault(target, []).append(text)

    def _resolve(self, message: Message, texts: list[str] | None, calls: list[str]) -> tuple[str | None, str]:
        if texts is not None:
            return "".join(texts), "envelope"
        if message.reasoning is not None:  # a Chat client sent reasoning_content itself
            return message.reasoning, "client"
        if not calls:
            return None, "not_needed"
        for call_id in calls:
            cached = self._store.get(call_id)
            if cached is not None:
                return cached, "cache"
        return None, "empty"

    # -- response way -----------------------------------------------------------------------

    def on_event(self, event: Event, ctx: RequestContext) -> Sequence[Event]:
        st = ctx.state.get(self._key)
        if st is None:
            st = ctx.state[self._key] = _Resp()
        elif st.pending_stop is None and type(event) in _PASS:  # the hot path: text and tool deltas
            return (event,)
        return self._step(st, event, ctx)

    def on_end(self, ctx: RequestContext) -> Sequence[Event]:
        st = ctx.state.get(self._key)
        if st is not None and st.pending_stop is not None:  # input ended mid-hold: flush what is held
            return self._release(st, ctx)
        return ()

    def _step(self, st: _Resp, event: Event, ctx: RequestContext) -> list[Event]:
        if st.pending_stop is not None:
            return self._while_holding(st, event, ctx)
        if isinstance(event, ThinkingDelta) and event.index == st.open_index:
            st.block_text.append(event.text)
        elif isinstance(event, BlockStart):
            if event.block == "thinking":
                st.open_index, st.block_text = event.index, []
            elif event.block == "tool_call" and event.call_id:
                st.call_ids.append(event.call_id)
        elif isinstance(event, SignatureDelta) and event.index == st.open_index:
            return []  # an upstream's own signature is replaced by our envelope
        elif isinstance(event, BlockStop) and event.index == st.open_index:
            st.texts.append("".join(st.block_text))
            st.pending_stop, st.open_index, st.held, st.held_chars = event, None, [], 0
            return []
        elif isinstance(event, MessageStart):
            st.model = event.model
        elif isinstance(event, MessageStop):
            self._remember(st)
        return [event]

    def _while_holding(self, st: _Resp, event: Event, ctx: RequestContext) -> list[Event]:
        if isinstance(event, BlockStart) and event.block == "tool_call" and event.call_id:
            st.call_ids.append(event.call_id)
            return [*self._release(st, ctx), event]
        if isinstance(event, MessageStop | StreamError):
            released = self._release(st, ctx)
            if isinstance(event, MessageStop):
                self._remember(st)
            return [*released, event]
        if isinstance(event, BlockStart) and event.block == "thinking":
            return [*self._release(st, ctx), *self._step(st, event, ctx)]
        st.held.append(event)
        if isinstance(event, TextDelta):
            st.held_chars += len(event.text)
            if st.held_chars > self.config.holdback_chars:
                return self._release(st, ctx)
        return []

    def _release(self, st: _Resp, ctx: RequestContext) -> list[Event]:
        stop = st.pending_stop
        assert stop is not None
        text = st.texts[-1]
        if len(text) > self.config.inline_max_chars:
            key = digest(text)
            self._store.put("d:" + key, text)
            envelope = Envelope(u=ctx.upstream_id, m=st.model, d=key, t=tuple(st.call_ids))
        else:
            envelope = Envelope(u=ctx.upstream_id, m=st.model, r=text, t=tuple(st.call_ids))
        held, st.held, st.pending_stop = st.held, [], None
        return [SignatureDelta(index=stop.index, signature=seal(envelope, self._secret)), stop, *held]

    def _remember(self, st: _Resp) -> None:
        if st.call_ids and st.texts:
            text = "".join(st.texts)
            for call_id in st.call_ids:
                self._store.put(call_id, text)


def _has_call(message: Message, call_id: str) -> bool:
    return any(isinstance(p, ToolCallPart) and p.id == call_id for p in message.parts)


__all__ = ["RUNGS", "ThinkingFilter"]
