"""Incremental extraction of a custom (freeform) tool's ``input`` from streamed JSON arguments.

Upstream a custom tool is a function ``{"input": "..."}``; streaming the decoded string lets the
client show ``custom_tool_call_input`` deltas (Codex's live patch preview, and events for its idle
timer) instead of buffering a long patch. ``finish`` always decodes the whole buffer.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

_PREFIX = re.compile(r'\s*\{\s*"input"\s*:\s*"')
_PREFIX_COMPACT = '{"input":"'
_WS = re.compile(r"\s+")
# Complete string tokens: plain runs, \uXXXX escapes, two-character escapes.
_BODY = re.compile(r'(?:[^"\\]+|\\u[0-9a-fA-F]{4}|\\[^u])*')
# A high surrogate escape at the very end (an odd number of backslashes before the "u").
_HIGH_TAIL = re.compile(r'(?<!\\)(?:\\\\)*\\u[dD][89abAB][0-9a-fA-F]{2}$')
_STR = msgspec.json.Decoder(str)
_ANY = msgspec.json.Decoder()

_WAIT, _STRING, _OFF = 0, 1, 2


class InputStreamer:
    """Feed argument fragments; get decoded ``input`` text as it becomes safe to show."""

    __slots__ = ("_fragments", "_pending", "_state", "_streamed")

    def __init__(self) -> None:
        self._fragments: list[str] = []
        self._pending = ""
        self._state = _WAIT
        self._streamed: list[str] = []

    def feed(self, fragment: str) -> str:
        """The newly decoded part of ``input`` ("" when nothing new is safe to show)."""
        self._fragments.append(fragment)
        if self._state == _OFF:
            return ""
        self._pending += fragment
        if self._state == _WAIT:
            match = _PREFIX.match(self._pending)
            if match is None:
                compact = _WS.sub("", self._pending)
                if not _PREFIX_COMPACT.startswith(compact):
                    self._off()
                return ""
            self._pending = self._pending[match.end() :]
            self._state = _STRING
        return self._drain()

    def _drain(self) -> str:
        pending = self._pending
        end = _BODY.match(pending).end()  # type: ignore[union-attr]  # it matches "": never None
        closed = end < len(pending) and pending[end] == '"'
        if not closed and len(pending) - end >= 6:  # a malformed escape: a valid one is a token
            self._off()
            return ""
        safe = pending[:end]
        if not closed:
            tail = _HIGH_TAIL.search(safe)
            if tail is not None:  # wait for the low surrogate
                safe = safe[: len(safe) - 6]
        if not safe:
            if closed:
                self._off()
            return ""
        try:
            text = _STR.decode(('"' + safe + '"').encode())
        except msgspec.DecodeError:  # raw control characters, lone surrogates: stop streaming
            self._off()
            return ""
        self._streamed.append(text)
        if closed:
            self._off()
        else:
            self._pending = pending[len(safe) :]
        return text

    def _off(self) -> None:
        self._state = _OFF
        self._pending = ""

    @property
    def streamed(self) -> str:
        """The input text shown so far."""
        return "".join(self._streamed)

    def finish(self) -> tuple[str, str]:
        """``(input, rest)``: the whole decoded input, and what was not streamed yet ("" when the
        streamed text was not a prefix of the final input; the done event carries the truth)."""
        raw = "".join(self._fragments)
        value = decode_input(raw)
        streamed = "".join(self._streamed)
        rest = value[len(streamed) :] if value.startswith(streamed) else ""
        return value, rest


def decode_input(raw: str) -> str:
    """The custom tool input from argument text: ``{"input": s}`` → s; a bare JSON string → it;
    an object with a single string value → that value; anything else → the raw text as is."""
    try:
        value: Any = _ANY.decode(raw.encode())
    except msgspec.DecodeError:
        return raw
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        inner = value.get("input")
        if isinstance(inner, str):
            return inner
        if len(value) == 1:
            (only,) = value.values()
            if isinstance(only, str):
                return only
    return raw


__all__ = ["InputStreamer", "decode_input"]
