"""Sans-IO Server-Sent Events framing at the bytes level (WHATWG event-stream rules).

Lines split only on CR, LF and CRLF (never U+2028, which httpx's ``aiter_lines`` splits on); a
CR at the end of a chunk is carried over in case an LF follows. Comments (``: keep-alive``) are
counted, not returned, so a reader can treat them as liveness. ``[DONE]`` is left to callers.
"""

from __future__ import annotations

import msgspec


class SseFrame(msgspec.Struct, frozen=True):
    event: str | None
    data: bytes


class SseDecoder:
    """Incremental decoder: ``feed(chunk) -> frames``; ``close() -> frames`` at end of input."""

    __slots__ = ("_buf", "_cr", "_data", "_event", "_has_data", "comments")

    def __init__(self) -> None:
        self._buf = b""
        self._cr = False
        self._event: str | None = None
        self._data: list[bytes] = []
        self._has_data = False
        self.comments = 0

    def feed(self, chunk: bytes) -> list[SseFrame]:
        if self._cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._cr = False
        buf = self._buf + chunk if self._buf else chunk
        if not self._has_data and self._event is None and b"\r" not in buf:
            return self._fast(buf)
        return self._lines(buf)

    def _fast(self, buf: bytes) -> list[SseFrame]:
        """LF-only input and no event half-read: split on blank lines; a lone ``data:`` line is
        the common frame. The unfinished tail stays raw in ``_buf`` and is read again later."""
        blocks = buf.split(b"\n\n")
        self._buf = blocks.pop()
        frames: list[SseFrame] = []
        append = frames.append
        for block in blocks:
            if block.startswith(b"data: ") and b"\n" not in block:
                append(SseFrame(None, block[6:]))
            elif block:
                for line in block.split(b"\n"):
                    self._line(line, frames)
                self._line(b"", frames)
        return frames

    def _lines(self, buf: bytes) -> list[SseFrame]:
        frames: list[SseFrame] = []
        start = 0
        n = len(buf)
        while start < n:
            lf = buf.find(b"\n", start)
            cr = buf.find(b"\r", start, lf if lf != -1 else n)
            if cr != -1:
                end, nxt = cr, cr + 1
                if nxt < n and buf[nxt] == 0x0A:
                    nxt += 1
                elif nxt == n:
                    self._cr = True
            elif lf != -1:
                end, nxt = lf, lf + 1
            else:
                break
            self._line(buf[start:end], frames)
            start = nxt
        self._buf = buf[start:]
        return frames

    def close(self) -> list[SseFrame]:
        """End of input: a trailing unterminated line is processed; an unfinished event is
        dispatched only if it ended with a blank line (per spec, so nothing here)."""
        rest, self._buf = self._buf, b""
        frames = self._lines(rest) if rest else []
        if self._buf:
            self._line(self._buf, frames)
            self._buf = b""
        # The spec discards an event not followed by a blank line; servers that close right
        # after the last data line are common, so be lenient and dispatch it.
        if self._has_data:
            self._line(b"", frames)
        return frames

    def _line(self, line: bytes, frames: list[SseFrame]) -> None:
        if not line:
            if self._has_data:
                frames.append(SseFrame(self._event, b"\n".join(self._data)))
            self._event = None
            self._data = []
            self._has_data = False
            return
        if line[0] == 0x3A:  # ':' comment
            self.comments += 1
            return
        colon = line.find(b":")
        if colon == -1:
            field, value = line, b""
        else:
            field = line[:colon]
            value = line[colon + 1 :]
            if value[:1] == b" ":
                value = value[1:]
        if field == b"data":
            self._data.append(value)
            self._has_data = True
        elif field == b"event":
            self._event = value.decode("utf-8", "replace")


def encode_sse(data: bytes, event: str | None = None) -> bytes:
    """One SSE frame. ``data`` must be single-line JSON (msgspec never emits raw newlines)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


__all__ = ["SseDecoder", "SseFrame", "encode_sse"]
