"""Fault injection: HTTP error answers and the changes each fault makes to a response's pieces.

A piece is ``(delay_s, bytes)``; streams are one SSE frame per piece, JSON answers one body
piece (plus blank keep-alive lines). Stream faults act at the middle of the answer, before the
finish chunk and after the first content chunk (the one after the role chunk), so a drop, stall
or error chunk always lands after the 200 status and some content: past the point where the
gateway can still retry, so the client's own retry is what a test sees. A scheduled fault
(``on_request``) fires on that request only, so the client's retry gets a clean answer.
``overload`` is applied earlier, to the answer itself (``render.apply_budget``).
"""

from __future__ import annotations

from upstreams.simulator.config import SimConfig
from upstreams.simulator.validate import SimError

Pieces = list[tuple[float, bytes]]

_BAD_CHUNK = b'data: {"id":"broken","object":"chat.completion.chunk","choices":[{"index":0,\n\n'
_ERROR_CHUNK = (b'data: {"error":{"message":"Simulated mid-stream failure","type":"server_error",'
                b'"param":null,"code":"server_error"}}\n\n')
_KEEPALIVES = 3


def http_fault(kind: str) -> SimError:
    """The HTTP error DeepSeek answers for ``kind`` (429, 500 or 503)."""
    if kind == "429":
        return SimError(429, "Rate Limit Reached: too many concurrent requests, please retry "
                        "later.", type="rate_limit_error", code="rate_limit_error",
                        headers=((b"retry-after", b"1"),))
    if kind == "503":
        return SimError(503, "Server overloaded, please try again later.",
                        type="service_unavailable_error", code="server_overloaded")
    return SimError(500, "Internal Server Error", type="api_error", code="internal_error")


def stream_fault(kind: str | None, pieces: Pieces, finish_at: int, config: SimConfig, *,
                 bad_chunk: bytes = _BAD_CHUNK, error_chunk: bytes = _ERROR_CHUNK) -> tuple[Pieces, int | None]:
    """Apply a fault to SSE pieces; ``finish_at`` indexes the finish chunk. ``bad_chunk`` and
    ``error_chunk`` are the protocol's malformed frame and error frame (Chat's by default).

    Returns:
        The new pieces and ``drop_after`` (close abruptly after that many pieces, or None).
    """
    middle = _middle(pieces, finish_at)
    if kind == "drop":
        return pieces, middle
    if kind == "stall":
        return [(config.stall_s, d) if i == middle else (t, d)
                for i, (t, d) in enumerate(pieces)], None
    if kind == "slow":
        return [(config.slow_chunk_s, d) for _, d in pieces], None
    if kind == "keepalive":
        comment = (config.keepalive_interval_s, b": keep-alive\n\n")
        return [comment] * _KEEPALIVES + pieces, None
    if kind == "badchunk":
        return pieces[:middle] + [(pieces[middle][0], bad_chunk)] + pieces[middle:], None
    if kind == "truncate":
        return pieces[:finish_at], None
    if kind == "error_chunk":
        return pieces[:middle] + [(pieces[middle][0], error_chunk)], None
    return pieces, None


def _middle(pieces: Pieces, finish_at: int) -> int:
    """Where a stream fault acts: halfway to the finish chunk, but after the role chunk and at
    least one content chunk (keep-alive comments before the answer do not count)."""
    role = next((i for i, (_, d) in enumerate(pieces) if d.startswith((b"data:", b"event:"))), 0)
    return min(finish_at, max(role + 2, finish_at // 2))


def json_fault(kind: str | None, pieces: Pieces,
               config: SimConfig) -> tuple[Pieces, int | None, int | None]:
    """Apply a fault to a JSON answer whose last piece is the body.

    Returns:
        The new pieces, ``drop_after``, and the ``content-length`` to announce (None: none,
        so a truncated body ends cleanly). ``error_chunk`` has no JSON form and changes nothing.
    """
    *lead, (delay, body) = pieces
    half = len(body) // 2
    drop_after = None
    if kind == "drop":
        pieces, drop_after = [*lead, (delay, body[:half]), (0.0, body[half:])], len(lead) + 1
    elif kind == "stall":
        pieces = [*lead, (config.stall_s, body)]
    elif kind == "slow":
        pieces = [(config.slow_chunk_s, d) for _, d in pieces]
    elif kind == "keepalive":
        pieces = [(config.keepalive_interval_s, b"\n")] * _KEEPALIVES + pieces
    elif kind == "badchunk":
        pieces = [*lead, (delay, body[:half] + b"\x00{")]
    elif kind == "truncate":
        return [*lead, (delay, body[:half])], None, None
    return pieces, drop_after, sum(len(d) for _, d in pieces)


__all__ = ["Pieces", "http_fault", "json_fault", "stream_fault"]
