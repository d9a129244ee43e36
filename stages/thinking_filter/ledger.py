"""The durable reasoning ledger: the replay ladder's rung after the in-process cache, in the
gateway's store (``pipeline.store``: SQLite by default, Redis shared by replicas).

Every reasoning text an upstream produced for a turn with tool calls is written under the
upstream and each tool call id, and under a digest of the turn's calls (names and arguments, the
arguments' JSON in canonical form), so that a later request finds it from what the client still
sends: the tool call ids, or the calls themselves when a compaction renamed their ids, even when
the thinking block was stripped, redacted or signed by someone else, on any replica and after a
restart. The writes are queued on the request (``RequestContext.store_writes``) and made before
the client gets the terminal event (``Responder.pass_gate``), so the next turn finds them.
Sans-IO here: keys and values; the stage reads through ``ctx.store``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import msgspec

PREFIX = "ledger:"


def canonical(arguments: str) -> bytes:
    """A tool call's arguments in one form: the JSON re-encoded with sorted keys (the client's
    copy may be spaced or ordered otherwise than the upstream's), else the text as it is."""
    try:
        return msgspec.json.encode(msgspec.json.decode(arguments), order="sorted")
    except (msgspec.DecodeError, UnicodeEncodeError):
        return arguments.encode("utf-8", "surrogatepass")


def call_key(upstream_id: str, call_id: str) -> str:
    return f"{PREFIX}{upstream_id}:call:{call_id}"


def turn_key(upstream_id: str, calls: Sequence[tuple[str, str]]) -> str:
    """The key of a turn by its calls' (name, arguments), in order."""
    h = hashlib.sha256()
    for name, arguments in calls:
        h.update(name.encode("utf-8", "surrogatepass") + b"\x00" + canonical(arguments) + b"\x00")
    return f"{PREFIX}{upstream_id}:turn:{h.hexdigest()}"


def entries(upstream_id: str, text: str, call_ids: Sequence[str], calls: Sequence[tuple[str, str]]
            ) -> list[tuple[str, bytes]]:
    """What one tool turn writes: its reasoning under each call id and under the turn's digest."""
    value = text.encode("utf-8", "surrogatepass")
    keys = [call_key(upstream_id, call_id) for call_id in call_ids]
    if calls:
        keys.append(turn_key(upstream_id, calls))
    return [(key, value) for key in keys]


def lookups(upstream_id: str, call_ids: Sequence[str], calls: Sequence[tuple[str, str]]) -> list[str]:
    """The keys a turn's reasoning may be under, most specific first."""
    return [*(call_key(upstream_id, call_id) for call_id in call_ids), turn_key(upstream_id, calls)]


def text_of(value: bytes) -> str:
    return value.decode("utf-8", "surrogatepass")


__all__ = ["PREFIX", "call_key", "canonical", "entries", "lookups", "text_of", "turn_key"]
