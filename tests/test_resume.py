"""A session's next body read from where the last one's items lay (``pipeline.resume`` through
``Recall.read``) gives what a whole parse gives, whatever the spacing, the key order, a key given
twice, or an edit anywhere; and it really skips the items it had."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.conversation import Conversations, Recall
from pipeline.resume import RESUMED, in_place, layout


class Wire(msgspec.Struct):
    model: str = ""
    messages: list[msgspec.Raw] = []
    tools: list[Any] = []
    stream: bool = False


class Resumed(Wire):
    messages: list[msgspec.Raw] | None = None  # type: ignore[assignment]
    resumed: list[msgspec.Raw] = msgspec.field(name=RESUMED, default_factory=list)


def whole(body: bytes) -> tuple[Wire, list[msgspec.Raw]]:
    wire = msgspec.json.decode(body, type=Wire)
    return wire, wire.messages


def resumed(document: bytes) -> tuple[Wire, list[msgspec.Raw]] | None:
    wire = msgspec.json.decode(document, type=Resumed)
    return (wire, wire.resumed) if wire.messages is None else None


def read(store: Conversations, body: bytes) -> tuple[Wire, list[bytes], int]:
    """The whole history as ``Recall.read`` gives it: the items it skipped from memory, the rest
    parsed; the slot it keeps is the history so far."""
    recall = store.recall("scope")
    wire, items, same = recall.read(body, b'"messages"', "history", whole, resumed)
    history = (recall.before("history") or [])[:same] + [bytes(r) for r in items]
    recall.keep("history", history)
    return wire, history, same


def compare(wire: Wire, history: list[bytes], body: bytes) -> None:
    expected, items = whole(body)
    assert [json.loads(h) for h in history] == [json.loads(bytes(r)) for r in items]
    assert (wire.model, wire.tools, wire.stream) == (expected.model, expected.tools, expected.stream)


SPACE = st.sampled_from(["", "", " ", "\n  ", "\t"])
MESSAGE = st.dictionaries(st.sampled_from(["role", "content", "x"]), st.text(alphabet='ab"\\[]{},: é', max_size=8),
                          min_size=1, max_size=3)


def render(messages: list[dict[str, Any]], spaces: list[str], order: int, twice: bool) -> bytes:
    """A body: the messages joined with the given spacing, the top-level keys in one of three orders,
    ``messages`` given twice (the later, an empty list, wins) when ``twice``."""
    s = lambda i: spaces[i % len(spaces)]  # noqa: E731
    messages = [{"role": "user", "content": "a first message longer than the lookup key " * 3}, *messages]
    items = ("," + s(1)).join(s(2) + json.dumps(m, ensure_ascii=False) + s(3) for m in messages)
    fields = [f'"model"{s(4)}:{s(5)}"m"', f'"messages"{s(6)}:{s(7)}[{s(8)}{items}{s(9)}]', '"tools":[{"a":1}]']
    fields = fields[order:] + fields[:order]
    if twice:
        fields.append('"messages":[]')
    return ("{" + s(10) + ("," + s(11)).join(fields) + "}").encode()


@settings(max_examples=300, deadline=None)
@given(first=st.lists(MESSAGE, min_size=1, max_size=6), added=st.lists(MESSAGE, max_size=3),
       edit=st.one_of(st.none(), st.tuples(st.integers(0, 10), MESSAGE)),
       spaces=st.lists(SPACE, min_size=1, max_size=12), respace=st.booleans(), order=st.integers(0, 2),
       twice=st.booleans())
def test_a_resumed_read_equals_a_whole_one(first: list[dict[str, Any]], added: list[dict[str, Any]],
                                           edit: tuple[int, dict[str, Any]] | None, spaces: list[str],
                                           respace: bool, order: int, twice: bool) -> None:
    store = Conversations()
    body = render(first, spaces, order, False)
    compare(*read(store, body)[:2], body)
    nxt = [*first, *added]
    if edit is not None:
        nxt[edit[0] % len(nxt)] = edit[1]
    body2 = render(nxt, spaces[::-1] if respace else spaces, order, twice)
    wire, history, same = read(store, body2)
    compare(wire, history, body2)
    if twice:
        assert same == 0  # the later key would win a whole parse: read whole


def test_a_long_session_parses_only_what_is_new() -> None:
    store = Conversations()
    messages = [{"role": "user", "content": "start " * 40}]
    for turn in range(40):
        messages += [{"role": "assistant", "content": f"turn {turn}"}, {"role": "user", "content": "x" * 30_000}]
        body = json.dumps({"model": "m", "messages": messages, "stream": True}).encode()
        wire, history, same = read(store, body)
        compare(wire, history, body)
        assert same == (len(messages) - 2 if turn else 0)


def test_layout_refuses_what_it_cannot_tell_for_sure() -> None:
    items = [msgspec.Raw(b'{"a":1}')]
    assert layout(b'{"messages":[{"a":1}]}', b'"messages"', items) is not None
    assert layout(b'{"messages":[],"x":{"messages":[{"a":1}]}}', b'"messages"', items) is None  # another array
    assert layout(b'{"model":"messages","messages":[{"a":1}]}', b'"messages"', items) is None  # the key twice
    assert layout(b'{"messages":[{"a":1}]}', b'"messages"', []) is None
    seen = layout(b'{"messages":[ {"a":1} , {"b":2} ]}', b'"messages"',
                  [msgspec.Raw(b'{"a":1}'), msgspec.Raw(b'{"b":2}')])
    assert seen is not None and seen.seps == (b"", b" , ")
    assert in_place(seen, b'{"messages":[ {"a":1} , {"b":2} ,{"c":3}]}') == (2, 31)
    assert in_place(seen, b'{"messages":[ {"a":1}, {"b":2}]}')[0] == 1  # another separator


def test_memory_off_reads_whole() -> None:
    body = b'{"model":"m","messages":[{"a":1}]}'
    wire, items, same = Recall().read(body, b'"messages"', "s", whole, resumed)
    assert same == 0 and [bytes(r) for r in items] == [b'{"a":1}'] and wire.model == "m"


def test_a_client_field_named_like_the_resumed_array_cannot_cut_the_history_short() -> None:
    """The resumed document's array name is a field a client could send too: the later one wins
    its parse, so the items it gave must be all the body has after the cut, up to the ``]``."""
    store = Conversations()
    a, b, c = '{"t":"%s"}' % ("a" * 100), '{"t":"b"}', '{"t":"c"}'
    first = f'{{"model":"m","messages":[{a}]}}'.encode()
    read(store, first)
    sneaky = f'{{"model":"m","messages":[{a},{b},{c}],"{RESUMED}":[{b}]}}'.encode()
    wire, history, same = read(store, sneaky)
    compare(wire, history, sneaky)
    assert history == [a.encode(), b.encode(), c.encode()]
    clean = Conversations()  # the same continuation without that field is resumed after a
    read(clean, first)
    assert read(clean, f'{{"model":"m","messages":[{a},{b},{c}]}}'.encode())[2] == 1
