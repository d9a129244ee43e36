"""Reading a session's next body without parsing again what the last one had in the same place.

A body holds its history as one array of items (``"messages": [...]``, ``"input": [...]``). Its
``Layout`` is where they lie: the ``head`` (every byte before the first item: the top-level
fields before the array, its key, the ``[``), each item's bytes and the separators between them.
A next body that starts with the same head and the same first ``same`` items, byte for byte and
at the same offsets (``in_place``: one ``startswith`` per item, a ``memcmp``), is in the same parse
state after them as the last one was. So instead of the body, the parser reads a *resumed
document*: the head with the array renamed (``RESUMED``), then everything after the ``same``-th
item and its comma, i.e. the new items, the array's end and the fields after it as sent; the
items before come from memory. Exact, with three checks (``check``): the document parses; the
array's own key does not come again after it (the later one would win in a whole parse); and the
new items the parser returned lie in the body one after another from the cut, joined by commas,
with the array's ``]`` right after the last. Whatever fails a check is parsed whole.
``tests/test_resume.py`` proves the resumed read equals the whole one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

import msgspec

RESUMED = "__gw_resumed__"  # the array's name in a resumed document (a wire field of that name)
_SPACE = b" \t\r\n"


class Layout(NamedTuple):
    """Where a body's history items lie."""

    head: bytes  # the body up to its first item: the array's key and ``[`` at its end
    key_at: int  # where the array's key (its opening quote) starts in ``head``
    items: tuple[bytes, ...]
    seps: tuple[bytes, ...]  # seps[i]: the bytes between item i - 1 and item i (seps[0] = b"")

    @property
    def size(self) -> int:
        return len(self.head) + sum(map(len, self.items)) + sum(map(len, self.seps))


def _skip(body: bytes, at: int) -> int:
    n = len(body)
    while at < n and body[at] in _SPACE:
        at += 1
    return at


def _follow(body: bytes, at: int, items: Sequence[msgspec.Raw], first: bool
            ) -> tuple[list[bytes], list[bytes], int] | None:
    """``items`` found one after another in ``body`` from ``at`` (each after a comma unless
    ``first``), and the offset after the array's ``]``; ``None`` if they do not lie so."""
    found, seps = [], []
    for i, raw in enumerate(items):
        start = at
        if not (first and i == 0):
            at = _skip(body, at)
            if at >= len(body) or body[at] != 0x2C:  # ,
                return None
            at += 1
        at = _skip(body, at)
        data = bytes(raw)
        if not body.startswith(data, at):
            return None
        found.append(data)
        seps.append(body[start:at])
        at += len(data)
    at = _skip(body, at)
    if at >= len(body) or body[at] != 0x5D:  # ]
        return None
    return found, seps, at + 1


def layout(body: bytes, key: bytes, items: Sequence[msgspec.Raw]) -> Layout | None:
    """The layout of ``body``, whose array under ``key`` (``b'"messages"'``) a whole parse read as
    ``items``; ``None`` when it cannot be told for sure (no items; the key twice before them)."""
    if not items:
        return None
    start = body.find(bytes(items[0]))
    if start < 0:
        return None
    head = body[:start]
    match = re.search(re.escape(key) + rb"\s*:\s*\[\s*\Z", head)
    if match is None or head.count(key) != 1:
        return None
    followed = _follow(body, start, items, first=True)
    if followed is None:
        return None
    found, seps, _ = followed
    seps[0] = b""
    return Layout(head, match.start(), tuple(found), tuple(seps))


def in_place(before: Layout, body: bytes) -> tuple[int, int]:
    """How many leading items of ``before`` ``body`` has byte for byte at the same offsets, and
    the offset after the last of them."""
    if not body.startswith(before.head):
        return 0, 0
    at, same = len(before.head), 0
    for sep, item in zip(before.seps, before.items):  # noqa: B905 (equal lengths)
        if not body.startswith(sep, at) or not body.startswith(item, at + len(sep)):
            break
        at += len(sep) + len(item)
        same += 1
    return same, at


def document(before: Layout, body: bytes, cut: int, key: bytes) -> bytes:
    """The resumed document: ``before``'s head with its array renamed, then ``body`` after
    ``cut`` (the end of the last item kept) and the comma after it, if there is one."""
    at = _skip(body, cut)
    rest = body[at + 1:] if at < len(body) and body[at] == 0x2C else body[at:]
    head = before.head
    return b"".join((head[:before.key_at], b'"', RESUMED.encode(), b'"', head[before.key_at + len(key):], rest))


def check(before: Layout, same: int, body: bytes, cut: int, new: Sequence[msgspec.Raw]) -> Layout | None:
    """The next body's layout, when the resumed document's ``new`` items are the ones after
    ``cut`` in ``body``, in place; ``None`` if they are not (then the body is parsed whole)."""
    followed = _follow(body, cut, new, first=False)
    if followed is None:
        return None
    found, seps, _ = followed
    return Layout(before.head, before.key_at, before.items[:same] + tuple(found), before.seps[:same] + tuple(seps))


__all__ = ["RESUMED", "Layout", "check", "document", "in_place", "layout"]
