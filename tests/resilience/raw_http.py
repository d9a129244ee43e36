"""HTTP/1.x over a raw trio socket, for tests about the connection itself: who closes it and when.

``request_bytes`` writes a generate request in one dialect (HTTP/1.1 or 1.0, ``Connection:
close`` or not); ``read_response`` reads exactly one response off a ``RawConnection`` (framed by
Content-Length, chunked, or the end of the connection) and notes when its last byte arrived;
``closed_within`` says whether the server closed the connection within a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import trio

from tests.resilience.dialects import PATHS, auth_headers, request_body


def request_bytes(dialect: str, prompt: str, *, stream: bool, version: str = "1.1", close: bool = False,
                  mount: str = "") -> bytes:
    body = msgspec.json.encode(request_body(dialect, prompt, stream=stream))
    headers = {"host": "gateway", "content-type": "application/json", "content-length": str(len(body)),
               **auth_headers(dialect, "k")}
    if close:
        headers["connection"] = "close"
    head = f"POST {mount}{PATHS[dialect]} HTTP/{version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + body


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    done_at: float  # trio.current_time() when its last byte arrived


class RawConnection:
    """One client connection; ``buffer`` holds what was received and not consumed yet."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()
        self.eof = False

    @classmethod
    async def open(cls, url: str) -> RawConnection:
        host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
        return cls(await trio.open_tcp_stream(host, int(port)))

    async def _more(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            self.eof = True
            raise EOFError("the server closed the connection")
        self.buffer += data

    async def _until(self, marker: bytes) -> bytes:
        while (at := self.buffer.find(marker)) < 0:
            await self._more()
        out = bytes(self.buffer[:at])
        del self.buffer[:at + len(marker)]
        return out

    async def _exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            await self._more()
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out

    async def read_response(self) -> Response:
        head = (await self._until(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in head[1:])}
        if "content-length" in headers:
            body = await self._exactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while size := int((await self._until(b"\r\n")).split(b";")[0], 16):
                parts.append(await self._exactly(size))
                await self._exactly(2)
            await self._until(b"\r\n")  # no trailers
            body = b"".join(parts)
        else:  # framed by the end of the connection (an HTTP/1.0 client's stream)
            try:
                while True:
                    await self._more()
            except EOFError:
                pass
            body = bytes(self.buffer)
            self.buffer.clear()
        return Response(status, headers, body, trio.current_time())

    async def closed_within(self, seconds: float) -> bool:
        """Whether the server closes the connection within ``seconds`` (with nothing more sent)."""
        with trio.move_on_after(seconds):
            while not self.eof:
                try:
                    await self._more()
                except EOFError:
                    break
                except trio.BrokenResourceError:  # a reset is a close too
                    self.eof = True
            assert not self.buffer, f"unexpected bytes after the response: {bytes(self.buffer[:200])!r}"
            return True
        return False

    async def aclose(self) -> None:
        await self.stream.aclose()


__all__ = ["RawConnection", "Response", "request_bytes"]
