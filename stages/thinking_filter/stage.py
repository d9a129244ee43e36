"""thinking_filter: DeepSeek reasoning shown to the client and replayed upstream exactly.

Response way: every thinking block gets one ``SignatureDelta`` carrying an envelope (``envelope``:
encrypted with the serving upstream's own key; the reasoning text, upstream id and model, and the
tool call ids it precedes, and the upstream's own token for the block, its ``UpstreamSeal``, which
no client sees). To learn the first tool call id, the block's
end is held back until the next tool call starts, the message ends, or ``holdback_chars`` of text
have been held (a sequence of thinking blocks, as Anthropic's thinking then redacted_thinking, is
held together: each is sealed with the same ids). At ``MessageStop`` the reasoning is also put in
the reasoning cache under the upstream and each tool call id (rung 2 of the ladder); a tool turn
that came without thinking (made with thinking off, as a forced ``tool_choice`` is) is put there
with ``""``, its exact reasoning.

Request way: every ``ThinkingPart`` is removed (foreign signatures and ``redacted_thinking`` never
reach the upstream), except, for a profile with ``keep_client_thinking`` (the real Anthropic API),
those that are not ours: the upstream's own, which it checks itself. For such a profile an
envelope of ours that opens on its own turn with the upstream's token becomes that upstream's
block again, in place (its exact text and signature, or its ``redacted_thinking`` data: the
sequence the API produced, which it wants back unchanged); a redacted block's envelope opens for
no other upstream and restores nothing anywhere else (a loss). Otherwise an envelope restores
``Message.reasoning`` (and ``Message.upstream_seal``, when it carries one) only if it opens with the key of
the upstream this request is aimed at (``ctx.attempt``), and only on the assistant turn it is
bound to: the turn whose tool calls begin with the ids sealed in it (an envelope sealed before any
tool call, ``t == ()``, only on a turn without tool calls), once per request (a copy of an
envelope already used is refused). Anything else is a loss (``foreign_thinking``,
``misplaced_thinking``) and the turn takes the next rung. When an assistant tool-call turn has no
valid envelope, the ladder: reasoning cache (of the same upstream, this process) → the durable
ledger in the gateway's store (``ledger.py``: by tool call id, else by a digest of the turn's
calls; every replica's, across restarts) → ``""`` (DeepSeek checks presence) → thinking off for
this request. The worst rung used goes into the request's log line (``replay_rung``) and metrics;
the rung of each tool turn into ``gateway_reasoning_replay_turns_total``. The response way queues
each tool turn's reasoning for the ledger (``ctx.store_writes``, written before the terminal
event reaches the client).
"""

from __future__ import annotations

import os
import secrets as pysecrets
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec

from pipeline.conversation import same_prefix
from pipeline.events import (
    BlockStart,
    BlockStop,
    Event,
    MessageStart,
    MessageStop,
    SignatureDelta,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    UpstreamSeal,
)
from pipeline.losses import LossRecorder
from pipeline.model import ChatRequest, Loss, Message, ThinkingPart, ToolCallPart
from pipeline.model_limits import thinking_on
from pipeline.stage import RequestContext, Stage, StageConfig
from pipeline.store.base import StoreError
from stages.thinking_filter import ledger
from stages.thinking_filter.binding import alone, bound_turn
from stages.thinking_filter.envelope import PREFIX, Envelope, Keyring, UpstreamKey, digest
from stages.thinking_filter.reasoning_cache import reset_stores, shared_store

_PASS = frozenset({TextDelta, ToolArgsDelta})  # never looked at unless a thinking block's end is held
RUNGS = ("not_needed", "envelope", "client", "cache", "ledger", "empty", "thinking_off")
# The secret of each unset ``secret_env``, random per process: the stages naming one variable share
# it, as they would share its value.
_PROCESS_SECRETS: dict[str, bytes] = {}


class _Ended:
    """A thinking block that ended while its envelope waits for the tool call ids: its stop, its
    reasoning, its UpstreamSeal data and whether it was redacted_thinking."""

    __slots__ = ("redacted", "seal", "stop", "text")

    def __init__(self, stop: BlockStop, text: str, seal: str | None, redacted: bool) -> None:
        self.stop, self.text, self.seal, self.redacted = stop, text, seal, redacted


class _Resp:
    """Per-response state of the response hook."""

    __slots__ = ("args", "block_text", "call_ids", "call_names", "held", "held_chars", "model", "open_index",
                 "redacted", "seal", "seals", "texts")

    def __init__(self) -> None:
        self.model = ""
        self.open_index: int | None = None
        self.block_text: list[str] = []
        self.seal: str | None = None  # the open thinking block's UpstreamSeal data
        self.redacted = False  # and whether it is a redacted_thinking block
        self.texts: list[str] = []  # reasoning of every thinking block of this message
        self.seals: list[str | None] = []  # and each one's UpstreamSeal data
        # While a thinking block's end is held: what came since, in order, each ended thinking
        # block (several in a row: Anthropic's thinking then redacted_thinking) as an _Ended.
        self.held: list[Event | _Ended] | None = None
        self.held_chars = 0
        self.call_ids: list[str] = []
        self.call_names: dict[int, str] = {}  # block index → name of each tool call (for the ledger)
        self.args: dict[int, list[str]] = {}  # and its arguments' fragments


class _Memo(NamedTuple):
    """What ``on_request`` made of a request's messages, kept for the session's next request.

    A turn's result is reused when it is the very same message object (``same_prefix``), the
    key is the same, and it is among the ``clean`` leading turns: each settled by itself alone
    (its envelopes bound to its own calls, carrying their text, and no other turn's envelope
    restoring it; no cache, ledger or cached seal consulted, which may answer otherwise now)."""

    key: tuple[str, bool, bool]  # upstream id, keep_client_thinking, thinking on
    inputs: tuple[Message, ...]
    outputs: tuple[Message, ...]
    clean: int
    losses: tuple[Loss, ...]  # recorded opening the envelopes, in order
    used: tuple[str, ...]  # envelopes restored, in order
    marks: tuple[tuple[int, int], ...]  # after each message: losses, envelopes used so far
    counts: tuple[tuple[tuple[str, int], ...], ...]  # and the tool turns per rung (first seen first: the log's)


_Opened = tuple[dict[int, list[tuple[str, str | None]]], dict[tuple[int, int], ThinkingPart], list[Loss],
                dict[str, None], set[int], list[tuple[int, int]]]


class ThinkingFilter(Stage):
    name = "thinking_filter"
    # Filled as requests arrive, by design: the per-upstream keys (derived once each) and the
    # process's reasoning cache.
    # And the count of turns whose result came from the conversation memory (for tests and the bench).
    shared_attributes = frozenset({"_keys", "_store", "reused"})

    class Config(StageConfig, frozen=True, kw_only=True):
        # Env var holding the secret the envelopes' per-upstream keys are derived from (shared by
        # all replicas).
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
        # Rung after the cache: the durable reasoning ledger in the gateway's store (`store:`), by
        # tool call id and by a digest of the turn's calls, shared by replicas.
        ledger: bool = True
        # Ledger entries' lifetime, seconds.
        ledger_ttl_s: float = 7 * 86400.0

    def __init__(self, config: Config, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        value = os.environ.get(config.secret_env, "")
        if value:
            secret = value.encode()
        elif config.require_secret:
            raise ValueError(f"environment variable {config.secret_env} is not set and require_secret is true "
                             "(every replica must share one secret, or envelopes from one are rejected by another)")
        else:
            secret = _PROCESS_SECRETS.setdefault(config.secret_env, pysecrets.token_bytes(32))
        self._keys = Keyring(secret)  # one key per upstream, derived once
        self._key = self.id + ":response"  # ctx.state key of the per-response state
        self._store = shared_store("reasoning", max_entries=config.cache_entries, max_bytes=config.cache_max_chars,
                                   ttl_s=config.cache_ttl_s)
        self._pass = _PASS if not config.ledger else frozenset({TextDelta})  # the ledger needs the arguments
        self.reused = 0

    async def on_request(self, request: ChatRequest, ctx: RequestContext) -> ChatRequest:
        thinking = thinking_on(request, ctx.card)
        keep = ctx.profile.keep_client_thinking
        key = self._keys.upstream(ctx.upstream_id)
        messages = list(request.messages)
        memo_key = (ctx.upstream_id, keep, thinking)
        memo: _Memo | None = ctx.recall.before(self.id)
        if memo is not None and memo.key != memo_key:
            memo = None
        start = min(memo.clean, same_prefix(memo.inputs, messages)) if memo is not None else 0
        opened = self._open_all(messages, start, memo, key, keep)
        if opened is None:  # a new turn's envelope restores a remembered turn: that turn changes
            start, opened = 0, self._open_all(messages, 0, None, key, keep)
            assert opened is not None
        restored, in_place, lost, used, unsettled, marks = opened
        turns: dict[str, int] = {}
        counts: list[tuple[tuple[str, int], ...]] = []  # after each message: the tool turns per rung so far
        if memo is not None and start:
            self.reused += start
            messages[:start] = memo.outputs[:start]
            counts = list(memo.counts[:start])
            turns = dict(counts[-1])
        clean = start
        counted = tuple(turns.items())
        for i in range(start, len(messages)):
            message = messages[i]
            if message.role == "assistant":
                replayed = self._replay(message, i, restored, in_place, unsettled, keep, ctx)
                if replayed is None:  # the ladder reached the ledger
                    kept = await self._from_ledger(message, _calls(message), ctx)
                    replayed = self._replay(message, i, restored, in_place, unsettled, keep, ctx, (kept,))
                    assert replayed is not None
                messages[i], rung = replayed
                if thinking and rung is not None:
                    turns[rung] = turns.get(rung, 0) + 1
                    counted = tuple(turns.items())
            if clean == i and i not in unsettled:
                clean = i + 1
            counts.append(counted)
        ctx.recall.keep(self.id, _Memo(memo_key, request.messages, tuple(messages), clean, tuple(lost), tuple(used),
                                       tuple(marks), tuple(counts)))
        for loss in lost:
            ctx.lose(loss.what, loss.detail)
        worst = max((RUNGS.index(r) for r in turns), default=0)
        if worst == RUNGS.index("empty") and not self.config.allow_empty_reasoning:
            worst = RUNGS.index("thinking_off")
        rung = RUNGS[worst]
        ctx.fields["replay_rung"] = rung
        if turns:
            if rung == "thinking_off":
                turns = {"thinking_off": sum(turns.values())}
            ctx.fields["replay_turns"] = turns
        changes: dict[str, object] = {"messages": tuple(messages)}
        if rung == "thinking_off":
            ctx.lose("thinking_off",
                     "no reasoning to replay for an earlier tool call; thinking disabled for this request")
            changes["thinking"] = msgspec.structs.replace(request.thinking, enabled=False, effort=None)
        return msgspec.structs.replace(request, **changes)

    def _open_all(self, messages: list[Message], start: int, memo: _Memo | None, key: UpstreamKey,
                  keep: bool) -> _Opened | None:
        """Every client thinking part from message ``start`` on opened (those before: ``memo``'s,
        the remembered request's): where each restores what, the losses and envelopes used in
        order (the remembered ones first), the turns whose result depends on other turns or on
        the caches, and per message (losses, envelopes used) so far. ``None`` when a part
        restores a turn before ``start``, whose remembered result then no longer holds."""
        lost: list[Loss] = []
        used: dict[str, None] = {}  # the envelopes restored so far, in order: a copy of one is refused
        marks: list[tuple[int, int]] = []
        if memo is not None and start:
            n_lost, n_used = memo.marks[start - 1]
            lost, used = list(memo.losses[:n_lost]), dict.fromkeys(memo.used[:n_used])
            marks = list(memo.marks[:start])
        restored: dict[int, list[tuple[str, str | None]]] = {}  # turn → (reasoning, seal data) per envelope
        in_place: dict[tuple[int, int], ThinkingPart] = {}  # (turn, part) → the upstream's own block again
        unsettled: set[int] = set()
        lose = LossRecorder(lost)
        for i in range(start, len(messages)):
            message = messages[i]
            for j, part in enumerate(message.parts if message.role == "assistant" else ()):
                if not isinstance(part, ThinkingPart) or (keep and _kept(part)):
                    continue
                opened, settled = self._open(part, i, messages, used, key, lose)
                if not settled:
                    unsettled.add(i)
                if opened is None:
                    continue
                target, text, envelope = opened
                if target < start:
                    return None
                if target != i:
                    unsettled.update((i, target))
                if keep and target == i and envelope.s is not None:
                    in_place[i, j] = ThinkingPart(text=text, signature=envelope.s, redacted=envelope.x)
                elif envelope.x:
                    lose("redacted_thinking", "redacted thinking goes back only on its own turn, to its upstream")
                else:
                    restored.setdefault(target, []).append((text, envelope.s))
            marks.append((len(lost), len(used)))
        return restored, in_place, lost, used, unsettled, marks

    def _replay(self, message: Message, i: int, restored: dict[int, list[tuple[str, str | None]]],
                in_place: dict[tuple[int, int], ThinkingPart], unsettled: set[int], keep: bool, ctx: RequestContext,
                ledger: tuple[str | None] | None = None) -> tuple[Message, str | None] | None:
        """Assistant turn ``i`` as it goes upstream, and its rung when it is a tool turn (a turn
        that took the caches' or the ledger's answer joins ``unsettled``); ``None`` when it needs
        the ledger's answer (``ledger``: what it gave)."""
        calls = _calls(message)
        parts = tuple(in_place.get((i, j), p) for j, p in enumerate(message.parts)
                      if not isinstance(p, ThinkingPart) or (keep and _kept(p)) or (i, j) in in_place)
        found = restored.get(i)
        own = any(turn == i for turn, _ in in_place)
        if ledger is not None:  # the ladder was here before: the cache had nothing
            reasoning, rung = (ledger[0], "ledger") if ledger[0] is not None else (None, "empty")
        else:
            reasoning, rung = (message.reasoning, "envelope") if own and found is None else \
                self._resolve(message, found, calls, ctx.upstream_id)
            if rung == "empty" and self.config.ledger and ctx.store is not None:
                return None
        if rung in ("cache", "empty", "ledger"):
            unsettled.add(i)
        if found is None and not own and len(parts) != len([p for p in parts if not isinstance(p, ThinkingPart)]):
            rung = "client"  # the upstream's own thinking blocks, kept as they came
        seal = message.upstream_seal
        if found is not None:  # one envelope with the upstream's token: it goes back with the text
            seal = (ctx.upstream_id, found[0][1]) if len(found) == 1 and found[0][1] is not None else None
        elif seal is None and calls and reasoning is not None and rung in ("client", "cache"):
            seal = self._cached_seal(ctx.upstream_id, calls, reasoning)
            unsettled.add(i)
        if parts != message.parts or reasoning != message.reasoning or seal != message.upstream_seal:
            message = msgspec.structs.replace(message, parts=parts, reasoning=reasoning, upstream_seal=seal)
        return message, rung if calls else None

    def _open(self, part: ThinkingPart, index: int, messages: list[Message], used: dict[str, None],
              key: UpstreamKey, lose: LossRecorder) -> tuple[tuple[int, str, Envelope] | None, bool]:
        """(the turn it may be replayed on, its reasoning, the envelope) of a client's thinking
        part, if it is one of ours for this upstream, else a loss and ``None``; and whether that
        was settled by its own turn alone (and the envelopes used before it)."""
        envelope = key.open(part.signature)
        if envelope is None:
            if part.redacted:
                lose("redacted_thinking", f"redacted thinking that upstream {key.upstream_id!r} did not send "
                                          "through this gateway is not forwarded")
            else:
                lose("foreign_thinking" if part.signature else "unsigned_thinking",
                     f"thinking without a valid gateway envelope of upstream {key.upstream_id!r} is not forwarded")
            return None, True
        settled = alone(envelope.t, messages[index]) and envelope.r is not None
        target = bound_turn(envelope.t, index, messages)
        if target is None or part.signature in used:
            lose("misplaced_thinking", "an envelope on a turn without the tool calls it was sealed with"
                 if target is None else "a copy of an envelope already replayed in this request")
            return None, settled
        used[part.signature] = None  # type: ignore[index]  # opened: a str
        text = envelope.r if envelope.r is not None else (
            self._store.get(_cache_key(key.upstream_id, "d:" + envelope.d)) if envelope.d else None)
        return (None if text is None else (target, text, envelope)), settled

    def _resolve(self, message: Message, found: list[tuple[str, str | None]] | None, calls: list[str],
                 upstream_id: str) -> tuple[str | None, str]:
        if found is not None:
            return "".join(text for text, _ in found), "envelope"
        if message.reasoning is not None:  # a Chat client sent reasoning_content itself
            return message.reasoning, "client"
        if not calls:
            return None, "not_needed"
        for call_id in calls:
            cached = self._store.get(_cache_key(upstream_id, call_id))
            if cached is not None:
                return cached, "cache"
        return None, "empty"

    async def _from_ledger(self, message: Message, calls: list[str], ctx: RequestContext) -> str | None:
        """The turn's reasoning from the ledger (by its call ids, else its calls' digest), put
        in the cache too; a store that fails is a miss, logged."""
        store = ctx.store
        assert store is not None
        parts = [(p.name, p.arguments) for p in message.parts if isinstance(p, ToolCallPart)]
        try:
            for key in ledger.lookups(ctx.upstream_id, calls, parts):
                value = await store.get(key)
                if value is not None:
                    text = ledger.text_of(value)
                    for call_id in calls:
                        self._store.put(_cache_key(ctx.upstream_id, call_id), text)
                    return text
        except StoreError as exc:
            ctx.log.warning("reasoning_ledger_unavailable", error=str(exc))
        return None

    def on_event(self, event: Event, ctx: RequestContext) -> Sequence[Event]:
        st = ctx.state.get(self._key)
        if st is None:
            st = ctx.state[self._key] = _Resp()
        elif st.held is None and type(event) in self._pass:  # the hot path: text (and tool) deltas
            return (event,)
        return self._step(st, event, ctx)

    def on_end(self, ctx: RequestContext) -> Sequence[Event]:
        st = ctx.state.get(self._key)
        if st is not None and st.held is not None:  # input ended mid-hold: flush what is held
            return self._release(st, ctx)
        return ()

    def _step(self, st: _Resp, event: Event, ctx: RequestContext) -> list[Event]:
        if st.held is not None:
            return self._while_holding(st, event, ctx)
        own = self._thinking_event(st, event)
        if own is not None:
            return own
        if isinstance(event, ToolArgsDelta):
            if event.index in st.args:
                st.args[event.index].append(event.fragment)
        elif isinstance(event, BlockStart) and event.block == "tool_call" and event.call_id:
            st.call_ids.append(event.call_id)
            st.call_names[event.index], st.args[event.index] = event.name or "", []
        elif isinstance(event, MessageStart):
            st.model = event.model
        elif isinstance(event, MessageStop):
            self._remember(st, ctx)
        return [event]

    def _thinking_event(self, st: _Resp, event: Event) -> list[Event] | None:
        """What a thinking block's own event becomes (``None``: not one). Its end starts the hold."""
        if isinstance(event, ThinkingDelta) and event.index == st.open_index:
            st.block_text.append(event.text)
        elif isinstance(event, BlockStart) and event.block == "thinking":
            st.open_index, st.block_text, st.seal, st.redacted = event.index, [], None, event.redacted
        elif isinstance(event, SignatureDelta) and event.index == st.open_index:
            return []  # an upstream's own signature is replaced by our envelope
        elif isinstance(event, UpstreamSeal):
            if event.index == st.open_index:
                st.seal = event.data  # sealed into the envelope; no client sees it
            return []
        elif isinstance(event, BlockStop) and event.index == st.open_index:
            text = "".join(st.block_text)
            st.texts.append(text)
            if st.held is None:
                st.held, st.held_chars = [], 0
            st.held.append(_Ended(event, text, st.seal, st.redacted))
            st.open_index, st.seal = None, None
            return []
        else:
            return None
        return [event]

    def _while_holding(self, st: _Resp, event: Event, ctx: RequestContext) -> list[Event]:
        assert st.held is not None
        if isinstance(event, UpstreamSeal | SignatureDelta) and event.index != st.open_index:  # late, after its stop
            for item in st.held:
                if isinstance(item, _Ended) and isinstance(event, UpstreamSeal) and item.stop.index == event.index:
                    item.seal = event.data
            return []
        if isinstance(event, BlockStart) and event.block == "tool_call" and event.call_id:
            st.call_ids.append(event.call_id)
            st.call_names[event.index], st.args[event.index] = event.name or "", []
            return [*self._release(st, ctx), event]
        if isinstance(event, MessageStop | StreamError):
            released = self._release(st, ctx)
            if isinstance(event, MessageStop):
                self._remember(st, ctx)
            return [*released, event]
        own = self._thinking_event(st, event)  # the next thinking block of a sequence: held too
        st.held.extend([event] if own is None else own)
        if isinstance(event, TextDelta):
            st.held_chars += len(event.text)
            if st.held_chars > self.config.holdback_chars:
                return self._release(st, ctx)
        return []

    def _release(self, st: _Resp, ctx: RequestContext) -> list[Event]:
        """What was held, each ended thinking block with its envelope just before its stop."""
        held, st.held = st.held, None
        assert held is not None
        key = self._keys.upstream(ctx.upstream_id)
        out: list[Event] = []
        for item in held:
            if not isinstance(item, _Ended):
                out.append(item)
                continue
            envelope = Envelope(u=ctx.upstream_id, m=st.model, r=item.text, t=tuple(st.call_ids), s=item.seal,
                                x=item.redacted)
            if len(item.text) > self.config.inline_max_chars:  # too large to carry: its digest, the text cached
                found = digest(item.text)
                self._store.put(_cache_key(ctx.upstream_id, "d:" + found), item.text)
                envelope = msgspec.structs.replace(envelope, r=None, d=found)
            st.seals.append(item.seal)
            out += [SignatureDelta(index=item.stop.index, signature=key.seal(envelope)), item.stop]
        return out

    def _remember(self, st: _Resp, ctx: RequestContext) -> None:
        # A tool turn that came without any thinking (made with thinking off: a forced tool_choice)
        # had no reasoning at all: "" is its exact reasoning, what DeepSeek's thinking mode needs
        # back on it later (its presence), and not an unknown one.
        upstream_id = ctx.upstream_id
        text = "".join(st.texts)
        seal = st.seals[0] if len(st.seals) == 1 else None
        if st.call_ids and self.config.ledger and ctx.store is not None:
            calls = [(st.call_names[i], "".join(st.args[i])) for i in sorted(st.call_names)]
            ttl = self.config.ledger_ttl_s
            ctx.store_writes += [(key, value, ttl) for key, value in ledger.entries(upstream_id, text, st.call_ids,
                                                                                    calls)]
        for call_id in st.call_ids:
            self._store.put(_cache_key(upstream_id, call_id), text)
            if seal is not None:  # for a client that echoes the text but has nowhere to keep the token
                self._store.put(_cache_key(upstream_id, "s:" + call_id), digest(text) + ":" + seal)

    def _cached_seal(self, upstream_id: str, calls: list[str], reasoning: str) -> tuple[str, str] | None:
        """The upstream's token for ``reasoning`` on the turn of ``calls``, if that upstream
        produced exactly this text there (a Chat client echoes ``reasoning_content`` only)."""
        found = self._store.get(_cache_key(upstream_id, "s:" + calls[0]))
        if found is None:
            return None
        sealed_digest, _, data = found.partition(":")
        return (upstream_id, data) if sealed_digest == digest(reasoning) else None


def reset_shared_state() -> None:
    """Forget what this process's thinking_filter stages share (for tests): the random secret of
    each unset ``secret_env`` and the reasoning stores. A stage built before keeps its own."""
    _PROCESS_SECRETS.clear()
    reset_stores()


def _cache_key(upstream_id: str, key: str) -> str:
    """The cache is shared by every pipeline of the process: its entries are the upstream's own,
    so one upstream's reasoning (the simulator's) is never another's (DeepSeek's) cache hit."""
    return upstream_id + "\x00" + key


def _calls(message: Message) -> list[str]:
    return [p.id for p in message.parts if isinstance(p, ToolCallPart)]


def _kept(part: ThinkingPart) -> bool:
    """A thinking part a ``keep_client_thinking`` upstream gets as it came: not one of our envelopes."""
    return not (part.signature or "").startswith(PREFIX)


__all__ = ["RUNGS", "ThinkingFilter", "reset_shared_state"]
