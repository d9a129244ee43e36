"""thinking_filter.reasoning_cache: the bounded LRU with a TTL, and the process's stores, one per
name and limits, with a reset for tests."""

from __future__ import annotations

from stages.thinking_filter.reasoning_cache import MemoryStore, reset_stores, shared_store

LIMITS = {"max_entries": 10, "max_bytes": 1_000, "ttl_s": 60.0}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TestMemoryStore:
    def test_the_least_recently_used_entry_goes_first(self) -> None:
        """Past max_entries the entry read or written longest ago is dropped."""
        store = MemoryStore(max_entries=2)
        store.put("a", "1")
        store.put("b", "2")
        assert store.get("a") == "1"
        store.put("c", "3")
        assert (store.get("a"), store.get("b"), store.get("c"), len(store)) == ("1", None, "3", 2)

    def test_total_characters_are_bounded(self) -> None:
        """Past max_bytes the oldest entries go until the rest fit; rewriting a key counts once."""
        store = MemoryStore(max_bytes=10)
        store.put("a", "x" * 4)
        store.put("a", "y" * 4)
        store.put("b", "z" * 6)
        assert (store.get("a"), store.get("b")) == ("y" * 4, "z" * 6)
        store.put("c", "w")
        assert (store.get("a"), store.get("b"), store.get("c")) == (None, "z" * 6, "w")

    def test_an_entry_expires_after_its_ttl(self) -> None:
        """An entry older than ttl_s is gone, and no longer counted."""
        clock = Clock()
        store = MemoryStore(ttl_s=5, clock=clock)
        store.put("a", "1")
        clock.now = 5
        assert store.get("a") == "1"
        clock.now = 5.5
        assert store.get("a") is None and len(store) == 0


class TestSharedStores:
    def test_one_name_and_limits_share_one_store(self) -> None:
        """Every stage asking for the same name and limits gets the same store."""
        reset_stores()
        store = shared_store("reasoning", **LIMITS)
        store.put("k", "v")
        assert shared_store("reasoning", **LIMITS) is store
        assert shared_store("reasoning", **LIMITS).get("k") == "v"

    def test_a_second_config_gets_the_limits_it_asked_for(self) -> None:
        """The review's case: pipeline b asks for 50,000 entries after pipeline a asked for 10; b's
        store holds 50,000 (it held 10: the first config won silently), a's still 10."""
        reset_stores()
        a = shared_store("reasoning", **{**LIMITS, "max_entries": 10})
        b = shared_store("reasoning", **{**LIMITS, "max_entries": 50_000})
        assert (a.max_entries, b.max_entries) == (10, 50_000)
        for i in range(11):
            b.put(f"call_{i}", "r")
        assert b.get("call_0") == "r" and len(b) == 11
        c = shared_store("reasoning", **{**LIMITS, "ttl_s": 1.0})
        d = shared_store("reasoning", **{**LIMITS, "max_bytes": 1})
        assert (c.ttl_s, d.max_bytes) == (1.0, 1) and len({id(a), id(b), id(c), id(d)}) == 4

    def test_reset_forgets_the_stores(self) -> None:
        """After reset_stores a store is asked for anew (empty); the one held before keeps its entries."""
        before = shared_store("reasoning", **LIMITS)
        before.put("k", "v")
        reset_stores()
        after = shared_store("reasoning", **LIMITS)
        assert after is not before and after.get("k") is None and before.get("k") == "v"
