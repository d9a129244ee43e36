"""Tool names the upstream rejects (too long, dots, slashes, spaces, unicode) → accepted names.

``map_names`` is deterministic for a set of names: valid names stay; others are sanitised and, when
still rejected or taken, become a prefix + ``_`` + 8 hex digits of a hash of the original.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator

import msgspec

from stages.tool_ids.ids import fits

_BAD_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_LENGTHS = (64, 48, 40, 32, 24, 16)
_SALTS = 8


class NameMap(msgspec.Struct, frozen=True):
    """``forward``: original → upstream name (changed names only); ``reverse``: the inverse.
    ``unmappable``: names for which no accepted form exists (sent as they are)."""

    forward: dict[str, str] = {}
    reverse: dict[str, str] = {}
    unmappable: tuple[str, ...] = ()

    def up(self, name: str) -> str:
        return self.forward.get(name, name)

    def down(self, name: str) -> str:
        return self.reverse.get(name, name)


def sanitise(name: str) -> str:
    """ASCII letters, digits, ``_`` and ``-`` only; accents folded (``café`` → ``cafe``)."""
    folded = unicodedata.normalize("NFKD", name)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return _BAD_CHARS.sub("_", folded) or "tool"


def short_hash(name: str, salt: int = 0) -> str:
    data = name if salt == 0 else f"{name}#{salt}"
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def _candidates(name: str) -> Iterator[str]:
    clean = sanitise(name)
    yield clean
    for salt in range(_SALTS):
        tag = short_hash(name, salt)
        for length in _LENGTHS:
            yield f"{clean[: length - 9]}_{tag}"
        yield f"tool_{tag}"
        yield tag


def map_names(names: Iterable[str], pattern: str) -> NameMap:
    """The name map for one request's tool names (tools, history calls, tool_choice)."""
    distinct = set(names)
    taken = {name for name in distinct if fits(name, pattern)}
    forward: dict[str, str] = {}
    unmappable: list[str] = []
    for name in sorted(distinct - taken):
        for candidate in _candidates(name):
            if candidate not in taken and fits(candidate, pattern):
                forward[name] = candidate
                taken.add(candidate)
                break
        else:
            unmappable.append(name)
    return NameMap(forward=forward, reverse={v: k for k, v in forward.items()}, unmappable=tuple(unmappable))


__all__ = ["NameMap", "map_names", "sanitise", "short_hash"]
