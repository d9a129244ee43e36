"""Per-conversation memory: what a session's earlier requests already cost, kept for the next one.

A long agent session sends its whole history with every request, and request n + 1 repeats
request n and adds a turn or two. ``Conversations`` remembers, per conversation, the history items
of its last requests as the client sent them (``msgspec.Raw`` slices of the body, compared byte
for byte: an item that changed is never served from memory) and, beside them, what each part of
the request path made of them (``slots``): the client decoder's neutral messages, a request
stage's per-message results, the upstream encoder's per-message bytes.

One request's view is a ``Recall``. The client decoder binds it to the history it read
(``Recall.history``: the remembered request with the most leading items equal, and how many are
equal, ``same``), or lets it read the body (``Recall.read``: a body whose leading items lie where
the remembered body had them, byte for byte, is parsed only after them, ``pipeline.resume``);
then each part reads its own slot of that request (``before(name)``), reuses
what still holds and keeps its slot for the next request (``keep(name, value)``). A part that
works on neutral messages compares them by identity (``same_prefix``): the decoder hands back the
very ``Message`` objects (frozen) for the items it did not decode again, so ``is`` is exact, and
a part whose output depends on anything beside the message keys its slot with that too.

Keyed safely: a conversation is found by scope (pipeline and gateway key: one tenant's history
never meets another's) and the first item's bytes (or the body's first ``KEY_BYTES``), then
compared item by item; a collision costs a comparison, never a wrong answer. Bounded:
``entries`` requests and ``max_bytes`` (each counted at ``weight`` × its body: the items' bytes
kept, plus what the slots derived from them), least recently used out; ``per_key`` requests of
one key (branches of a conversation: a retried or rewound turn; or other conversations that
begin alike) side by side. ``Conversations(max_bytes=0)`` remembers nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec

from pipeline import resume
from pipeline.errors import RequestError
from pipeline.resume import Layout

WEIGHT = 3  # a remembered body, plus its decoded messages and re-encoded bytes, per body byte
KEY_BYTES = 64  # a body is looked for by its first bytes (then compared item by item)
W = TypeVar("W")


class Turn:
    """One remembered request: its history items and what each part of the path made of them."""

    __slots__ = ("cost", "items", "key", "layout", "slots", "supersedes")

    def __init__(self, key: tuple[str, bytes], items: tuple[bytes, ...], cost: int, layout: Layout | None = None
                 ) -> None:
        self.key = key
        self.items = items
        self.layout = layout  # where the items lay in the body (a turn ``Recall.read`` made)
        self.cost = cost
        self.slots: dict[str, Any] = {}
        # The remembered request this one extends: dropped when this one is admitted.
        self.supersedes: Turn | None = None


def _same_items(before: Sequence[bytes], now: Sequence[msgspec.Raw]) -> int:
    """How many leading items of ``now`` equal ``before``'s, byte for byte."""
    n = 0
    for old, new in zip(before, now):  # noqa: B905 (the shorter one bounds it)
        if len(old) != len(new) or old != bytes(new):
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

    def __init__(self, *, entries: int = 256, max_bytes: int = 256 * 1024 * 1024, per_key: int = 64,
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
        key = (scope, b"\0" + bytes(items[0]))
        before, same = None, 0
        for turn in self._by_key.get(key, ()):
            n = _same_items(turn.items, items)
            if n > same:
                before, same = turn, n
        return before, self._turn(key, before, same, tuple(bytes(r) for r in items), size), same

    def bind_body(self, scope: str, body: bytes) -> tuple[Turn | None, int, int]:
        """``(before, same, cut)``: the remembered body (a ``read`` turn) whose leading items
        ``body`` has in the same place, how many, and the offset after them in ``body``."""
        before, same, cut = None, 0, 0
        for turn in self._by_key.get((scope, body[:KEY_BYTES]), ()):
            if turn.layout is not None:
                n, at = resume.in_place(turn.layout, body)
                if n > same:
                    before, same, cut = turn, n, at
        return before, same, cut

    def body_turn(self, scope: str, body: bytes, layout: Layout, before: Turn | None, same: int) -> Turn | None:
        """The new turn of a body ``read`` with ``layout``, extending ``before`` by ``same`` items."""
        return self._turn((scope, body[:KEY_BYTES]), before, same, layout.items, len(body), layout)

    def _turn(self, key: tuple[str, bytes], before: Turn | None, same: int, items: tuple[bytes, ...], size: int,
              layout: Layout | None = None) -> Turn | None:
        if before is not None:
            self._turns.move_to_end(id(before))
            self.hits += same
        cost = size * self.weight
        if cost > self.max_bytes:
            return None
        turn = Turn(key, items, cost, layout)
        if before is not None and (same == len(before.items) or len(items) > len(before.items) == same + 1):
            # The new request extends it, or rewrites only its last item and goes on past it
            # (Claude Code moves its cache marker onto the newest message each turn): the
            # session's next request will ask for this one, not for it.
            turn.supersedes = before
        return turn

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

    def latest(self) -> Turn | None:
        """The request remembered last (``None``: none; for tests and the bench)."""
        return next(reversed(self._turns.values()), None)

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

    def read(self, body: bytes, key: bytes, slot: str, whole: Callable[[bytes], tuple[W, list[msgspec.Raw]]],
             resumed: Callable[[bytes], tuple[W, list[msgspec.Raw]] | None]) -> tuple[W, list[msgspec.Raw], int]:
        """Parse ``body``, whose history is the array under ``key`` (``b'"messages"'``), and bind
        to its conversation: ``(wire, items, same)``, where ``items`` are the history items from
        the ``same``-th on (the ones before lie where the remembered body had them; part
        ``slot``, the decoder, resumes after them from what it kept).

        ``whole(body)`` parses a body: ``(wire, items)``. ``resumed(document)`` parses a resumed
        document (``pipeline.resume``): ``(wire, the items under RESUMED)``, or ``None`` when the
        array's own key came too (given twice). A resumed read that fails any check is a whole one.
        """
        store = self._store
        if store is None:
            wire, items = whole(body)
            return wire, items, 0
        before, same, cut = store.bind_body(self.scope, body)
        if before is not None and before.layout is not None and slot in before.slots:
            try:
                got = resumed(resume.document(before.layout, body, cut, key))
            except RequestError:
                got = None  # parsed whole below: its error names the place in the body
            if got is not None:
                layout = resume.check(before.layout, same, body, cut, got[1])
                if layout is not None:
                    self._before, self.same = before, same
                    self._turn = store.body_turn(self.scope, body, layout, before, same)
                    return got[0], got[1], same
        wire, items = whole(body)
        layout = resume.layout(body, key, items)
        if layout is not None:
            self._turn = store.body_turn(self.scope, body, layout, None, 0)
        return wire, items, 0

    def leading(self) -> tuple[bytes, ...]:
        """The ``same`` leading history items a resumed read did not parse, as the remembered
        body had them (byte for byte this body's)."""
        before = self._before
        return before.layout.items[:self.same] if before is not None and before.layout is not None else ()

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

    def kept(self, name: str) -> Any | None:
        """What part ``name`` kept for this request (``None``: nothing; for tests and the bench)."""
        return self._turn.slots.get(name) if self._turn is not None else None


__all__ = ["Conversations", "Recall", "Turn", "same_prefix"]
