"""The conversation memory (``pipeline.conversation``): found by scope and first item, compared
byte for byte, bounded, and silent when off."""

from __future__ import annotations

import msgspec

from pipeline.conversation import Conversations, Recall, same_prefix


def items(*texts: str) -> list[msgspec.Raw]:
    """History items as a decoder sees them: Raw slices of one body."""
    class Body(msgspec.Struct):
        messages: list[msgspec.Raw]
    body = msgspec.json.encode({"messages": [{"t": t} for t in texts]})
    return msgspec.json.decode(body, type=Body).messages


def bind(store: Conversations, scope: str, *texts: str, size: int = 100) -> Recall:
    recall = store.recall(scope)
    recall.history(items(*texts), size)
    return recall


def test_the_next_request_finds_the_last_ones_slots_and_how_much_is_the_same() -> None:
    store = Conversations()
    first = bind(store, "p", "a", "b", "c")
    assert first.same == 0 and first.before("decoder") is None
    first.keep("decoder", "what a..c cost")
    second = bind(store, "p", "a", "b", "c", "d", "e")
    assert second.same == 3 and second.before("decoder") == "what a..c cost"
    assert store.hits == 3 and store.remembered[0] == 1  # remembered once it keeps a slot
    second.keep("decoder", "a..e")  # it extends the first: that one goes
    assert store.remembered[0] == 1 and bind(store, "p", "a", "b", "c", "d", "e", "f").same == 5


def test_a_request_that_kept_nothing_is_not_found() -> None:
    """A request that failed before its decoder kept a slot: the next one still finds the last
    good one."""
    store = Conversations()
    bind(store, "p", "a", "b").keep("x", "ab")
    bind(store, "p", "a", "b", "bad")  # its decode failed: no keep
    assert bind(store, "p", "a", "b", "c").before("x") == "ab"


def test_a_changed_item_ends_what_is_the_same_there() -> None:
    store = Conversations()
    bind(store, "p", "a", "b", "c").keep("x", 1)
    assert bind(store, "p", "a", "B", "c", "d").same == 1
    # A Raw compares its bytes: the same text with other spacing is another item.
    spaced = store.recall("p")
    class Body(msgspec.Struct):
        messages: list[msgspec.Raw]
    spaced.history(msgspec.json.decode(b'{"messages":[{"t":"a"},{"t": "B"}]}', type=Body).messages, 10)
    assert spaced.same == 1


def test_another_scope_or_first_item_is_another_conversation() -> None:
    store = Conversations()
    bind(store, "tenant-1", "a", "b").keep("x", "secret of tenant 1")
    other = bind(store, "tenant-2", "a", "b", "c")
    assert other.same == 0 and other.before("x") is None
    assert bind(store, "tenant-1", "z", "b").same == 0


def test_branches_of_one_conversation_are_kept_side_by_side() -> None:
    """A retried or rewound turn: both continuations stay remembered (per_key), the one an
    extended request replaces is dropped."""
    store = Conversations(per_key=2)
    bind(store, "p", "a", "b").keep("x", "ab")
    bind(store, "p", "a", "b", "c").keep("x", "abc")  # extends ab: ab is dropped
    bind(store, "p", "a", "b", "D").keep("x", "abD")  # a branch beside abc
    assert store.remembered[0] == 2
    assert bind(store, "p", "a", "b", "c", "e").before("x") == "abc"
    assert bind(store, "p", "a", "b", "D", "f").before("x") == "abD"


def test_a_next_request_that_rewrote_the_last_item_and_went_on_replaces_it() -> None:
    """Claude Code's session: each request moves the cache marker from the last request's last
    message onto its own, so only that item differs; the one before is dropped, not kept as a
    branch (a session of n turns would otherwise hold n bodies and compare each next one with all)."""
    store = Conversations(per_key=64)
    history = ["a", "b*"]
    bind(store, "p", *history).keep("x", 0)
    for turn in range(1, 20):
        history = [*history[:-1], history[-1].rstrip("*"), f"c{turn}", f"d{turn}*"]
        recall = bind(store, "p", *history)
        assert recall.same == len(history) - 3 and recall.before("x") == turn - 1
        recall.keep("x", turn)
        assert store.remembered[0] == 1
    bind(store, "p", *history[:-1], "D").keep("x", "rewound")  # as long, only the last item new: a branch
    assert store.remembered[0] == 2


def test_bounded_by_entries_and_bytes_least_recent_out() -> None:
    store = Conversations(entries=2, max_bytes=10_000, weight=1)
    for first in "abc":
        bind(store, "p", first, "x", size=100).keep("k", first)
    assert store.remembered == (2, 200)
    assert bind(store, "p", "a", "x", "y").same == 0  # the oldest went out
    big = Conversations(max_bytes=1_000, weight=1)
    bind(big, "p", "a", size=600).keep("k", 1)
    bind(big, "p", "b", size=600).keep("k", 2)
    assert big.remembered == (1, 600) and bind(big, "p", "b", "c", size=10).before("k") == 2
    too_big = bind(big, "p", "q", size=5_000)  # larger than the whole memory: not remembered
    assert too_big.same == 0 and big.remembered[1] <= 1_000


def test_memory_off_and_an_unbound_recall_remember_nothing() -> None:
    off = Conversations(max_bytes=0)
    first = bind(off, "p", "a", "b")
    first.keep("x", 1)
    assert bind(off, "p", "a", "b", "c").same == 0 and off.remembered == (0, 0)
    unbound = Recall()
    unbound.keep("x", 1)
    assert unbound.history(items("a"), 1) == 0 and unbound.before("x") is None


def test_same_prefix_is_identity() -> None:
    a, b = ["x"], ["x"]
    assert same_prefix([a, b, [1]], [a, b, [1]]) == 2  # an equal list that is another object: not the same
    assert same_prefix([a], [a, b]) == 1 and same_prefix([], [a]) == 0
