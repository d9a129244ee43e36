"""Per-conversation memory: what a session's earlier requests already cost, kept for the next one.

A long agent session sends its whole history with every request, and request n + 1 repeats
request n and adds a turn or two. ``Conversations`` remembers, per conversation, the history items
of its last requests as the client sent them (``msgspec.Raw`` slices of the body, compared byte
for byte: an item that changed is never served from memory) and, beside them, what each part of
the request path made of them (``slots``): the client decoder's neutral messages, a request
stage's per-message results, the upstream encoder's per-message bytes.

One request's view is a ``Recall``. The client decoder binds it to the history it read
(``Recall.history``: the remembered request with the most leading items equal, and how many are
equal, ``same``); then each part reads its own slot of that request (``before(name)``), reuses
what still holds and keeps its slot for the next request (``keep(name, value)``). A part that
works on neutral messages compares them by identity (``same_prefix``): the decoder hands back the
very ``Message`` objects (frozen) for the items it did not decode again, so ``is`` is exact, and
a part whose output depends on anything beside the message keys its slot with that too.

Keyed safely: a conversation is found by scope (pipeline and gateway key: one tenant's history
never meets another's) and the first item's bytes, then compared item by item; a collision costs
a comparison, never a wrong answer. Bounded: ``entries`` requests and ``max_bytes`` (each counted
at ``weight`` × its body, the body kept alive by its ``Raw`` items plus what the slots derived
from it), least recently used out; ``per_key`` branches of one conversation (a retried or
rewound turn) are kept side by side. ``Conversations(max_bytes=0)`` remembers nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import msgspec

WEIGHT = 3  # a remembered body, plus its decoded messages and re-encoded bytes, per body byte


class Turn:
    """One remembered request: its history items and what each part of the path made of them."""

    __slots__ = ("cost", "items", "key", "slots", "supersedes")

    def __init__(self, key: tuple[str, bytes], items: tuple[msgspec.Raw, ...], cost: int) -> None:
        self.key = key
        self.items = items
        self.cost = cost
        self.slots: dict[str, Any] = {}
        # The remembered request this one extends: dropped when this one is admitted.
        self.supersedes: Turn | None = None


def _same_items(before: Sequence[msgspec.Raw], now: Sequence[msgspec.Raw]) -> int:
    """How many leading items of ``now`` equal ``before``'s, byte for byte."""
    n = 0
    for old, new in zip(before, now):  # noqa: B905 (the shorter one bounds it)
        if old != new:
            break
        n += 1
    return n


def same_prefix(before: Sequence[object], now: Sequence[object]) -> int:
    """How many leading elements of ``now`` are the very objects of ``before`` (``is``)."""
    n = 0
    for old, new in zip(before, now):  # noqa: B905
        if old is not new:
            break
        n += 1
    return n


class Conversations:
    """The memory of every conversation a gateway serves (one per worker process)."""

    def __init__(self, *, entries: int = 256, max_bytes: int = 256 * 1024 * 1024, per_key: int = 4,
                 weight: int = WEIGHT) -> None:
        self.entries, self.max_bytes, self.per_key, self.weight = entries, max_bytes, per_key, weight
        self._turns: OrderedDict[int, Turn] = OrderedDict()  # by id(turn), least recent first
        self._by_key: dict[tuple[str, bytes], list[Turn]] = {}  # most recent first
        self._bytes = 0
        self.hits = 0  # history items not decoded again (for tests and the bench)

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0 and self.entries > 0

    def recall(self, scope: str) -> Recall:
        """A new request's view, not yet bound to a conversation (``Recall.history`` binds it)."""
        return Recall(self if self.enabled else None, scope)

    def bind(self, scope: str, items: Sequence[msgspec.Raw], size: int) -> tuple[Turn | None, Turn | None, int]:
        """``(before, turn, same)``: the remembered request sharing the most leading items with
        ``items`` (or ``None``), the new request's own turn (``None`` when it cannot fit; it is
        remembered once a part keeps a slot in it: ``admit``), and how many leading items are
        equal."""
        if not items:
            return None, None, 0
        key = (scope, bytes(items[0]))
        before, same = None, 0
        for turn in self._by_key.get(key, ()):
            n = _same_items(turn.items, items)
            if n > same:
                before, same = turn, n
        if before is not None:
            self._turns.move_to_end(id(before))
            self.hits += same
        cost = size * self.weight
        if cost > self.max_bytes:
            return before, None, same
        turn = Turn(key, tuple(items), cost)
        if before is not None and same == len(before.items):
            turn.supersedes = before  # the new request extends it: nothing will ask for it again
        return before, turn, same

    def admit(self, turn: Turn) -> None:
        """Remember ``turn`` (its first slot was just kept: a request that fails before that
        costs its conversation nothing), least recent requests out past the bounds."""
        old, turn.supersedes = turn.supersedes, None
        if old is not None:
            self._drop(old)
        branches = self._by_key.setdefault(turn.key, [])
        branches.insert(0, turn)
        while len(branches) > self.per_key:
            self._drop(branches[-1])
        self._turns[id(turn)] = turn
        self._bytes += turn.cost
        while len(self._turns) > self.entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._turns.values())))

    def _drop(self, turn: Turn) -> None:
        if self._turns.pop(id(turn), None) is None:
            return
        self._bytes -= turn.cost
        branches = self._by_key.get(turn.key)
        if branches is not None:
            branches.remove(turn)
            if not branches:
                del self._by_key[turn.key]

    @property
    def remembered(self) -> tuple[int, int]:
        """(requests, estimated bytes) remembered."""
        return len(self._turns), self._bytes


class Recall:
    """One request's view of its conversation's memory.

    Before ``history`` binds it (and always when the memory is off) it remembers nothing:
    ``same`` is 0, ``before`` gives ``None`` and ``keep`` keeps nothing, so every part of the
    path does its whole work the same way and only skips what a bound recall says still holds.
    """

    __slots__ = ("_before", "_store", "_turn", "scope", "same")

    def __init__(self, store: Conversations | None = None, scope: str = "") -> None:
        self._store = store
        self.scope = scope
        self._before: Turn | None = None
        self._turn: Turn | None = None
        self.same = 0  # leading history items equal to the remembered request's

    def history(self, items: Sequence[msgspec.Raw], size: int) -> int:
        """Bind to the conversation whose last request shares the most leading ``items`` (the
        client's history, as ``Raw`` slices of a body of ``size`` bytes); returns how many."""
        if self._store is not None:
            self._before, self._turn, self.same = self._store.bind(self.scope, items, size)
        return self.same

    def before(self, name: str) -> Any | None:
        """What part ``name`` kept for the remembered request, or ``None``."""
        return self._before.slots.get(name) if self._before is not None else None

    def keep(self, name: str, value: Any) -> None:
        """Keep part ``name``'s memo of this request for the next one."""
        turn = self._turn
        if turn is not None:
            if not turn.slots and self._store is not None:
                self._store.admit(turn)
            turn.slots[name] = value


__all__ = ["Conversations", "Recall", "Turn", "same_prefix"]
