"""``StreamTransport``: an httpx transport for streamed upstream answers, HTTP/1.1 over trio sockets.

httpx's default stack (httpcore + h11) hands a chunked body over one HTTP chunk at a time, and an
SSE upstream sends one chunk per token: ~10 µs of layering per token before the gateway sees a
byte. This transport de-chunks whatever one socket read brought, in bulk, and yields it as one
piece. It keeps a keep-alive pool per origin (idle connections checked for EOF before reuse),
honours httpx's connect/read/write/pool timeouts and raises httpx's exception types. HTTP/1.1
only; TLS through trio with httpx's SSL context; no proxies (``http_client: httpx`` for those).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio

from upstreams.connection import READ_SIZE, Conn, socket_of
from upstreams.response_body import ResponseBody

MAX_HEAD = 64 * 1024
QUICK_READS = 16  # reads without a wait before a schedule point
COPY_LIMIT = 64 * 1024  # bodies below this go out joined to the head in one buffer
TLS_PIECE = 256 * 1024  # a TLS send is encrypted and written this much at a time
_NO_BODY = frozenset({204, 304})


class StreamTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 keep-alive transport (see the module docstring).

    Args:
        max_connections: connections open at once (across origins); more requests wait
            (``pool`` timeout).
        max_idle: idle keep-alive connections kept per origin.
    """

    def __init__(self, *, max_connections: int = 512, max_idle: int | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._slots = trio.Semaphore(max_connections)
        self._max_idle = max_idle if max_idle is not None else max_connections
        self._idle: dict[tuple[str, str, int], list[Conn]] = {}
        self._ssl = ssl_context
        self._closed = False

    async def _connect(self, key: tuple[str, str, int], timeouts: dict[str, Any]) -> Conn:
        scheme, host, port = key
        try:
            with trio.fail_after(timeouts.get("connect") or float("inf")):
                tcp = await trio.open_tcp_stream(host, port)
                stream: trio.abc.Stream = tcp
                if scheme == "https":
                    if self._ssl is None:
                        self._ssl = httpx.create_ssl_context()
                    tls = trio.SSLStream(_TlsCarrier(tcp), self._ssl, server_hostname=host,
                                         https_compatible=True)
                    await tls.do_handshake()
                    stream = tls
        except trio.TooSlowError:
            raise httpx.ConnectTimeout(f"could not connect to {host}:{port}") from None
        except (OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"could not connect to {host}:{port}: {exc}") from None
        return Conn(stream, key)

    async def _acquire(self, key: tuple[str, str, int], timeouts: dict[str, Any]) -> Conn:
        try:
            self._slots.acquire_nowait()  # the common case: no timer, no wait
        except trio.WouldBlock:
            try:
                with trio.fail_after(timeouts.get("pool") or float("inf")):
                    await self._slots.acquire()
            except trio.TooSlowError:
                raise httpx.PoolTimeout("no free upstream connection") from None
        try:
            idle = self._idle.get(key)
            while idle:
                conn = idle.pop()
                if not conn.stale():
                    return conn
                await _close(conn)
            return await self._connect(key, timeouts)
        except BaseException:
            self._slots.release()
            raise

    def release(self, conn: Conn) -> None:
        idle = self._idle.setdefault(conn.key, [])
        if self._closed or len(idle) >= self._max_idle:
            sock = socket_of(conn.stream)
            if sock is not None:
                sock.close()
        else:
            idle.append(conn)
        self._slots.release()

    async def discard(self, conn: Conn) -> None:
        self._slots.release()
        with trio.CancelScope(shield=True):
            await _close(conn)

    async def recv(self, conn: Conn, read_s: float | None) -> bytes:
        """One read of up to ``READ_SIZE`` bytes (``b""`` at EOF), within ``read_s`` if given."""
        if conn.fd >= 0:
            return await self._recv_fd(conn, read_s)
        try:  # TLS: through trio's SSLStream (it may hold decrypted bytes the socket does not show)
            if read_s is None:
                data = await conn.stream.receive_some(READ_SIZE)
            else:
                with trio.fail_after(read_s):
                    data = await conn.stream.receive_some(READ_SIZE)
            return data if isinstance(data, bytes) else bytes(data)  # SSLStream returns bytes
        except trio.TooSlowError:
            raise httpx.ReadTimeout(f"no data from the upstream for {read_s:g}s") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise httpx.ReadError(f"upstream read failed: {exc}") from None

    async def _recv_fd(self, conn: Conn, read_s: float | None) -> bytes:
        """A plain TCP read straight from the file descriptor: what is waiting is taken without
        trio's per-call layers (error translation, conflict detection, a yield after every read),
        and only an empty socket waits in ``wait_readable``. Reads that never wait still reach a
        schedule point every ``QUICK_READS`` calls."""
        fd = conn.fd
        while True:
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                conn.quick = 0
                try:
                    if read_s is None:
                        await trio.lowlevel.wait_readable(fd)
                    else:
                        with trio.fail_after(read_s):
                            await trio.lowlevel.wait_readable(fd)
                except trio.TooSlowError:
                    raise httpx.ReadTimeout(f"no data from the upstream for {read_s:g}s") from None
                except (trio.ClosedResourceError, OSError) as exc:
                    raise httpx.ReadError(f"upstream read failed: {exc}") from None
                continue
            except OSError as exc:
                raise httpx.ReadError(f"upstream read failed: {exc}") from None
            conn.quick += 1
            if conn.quick >= QUICK_READS:
                conn.quick = 0
                await trio.lowlevel.checkpoint()
            return data

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        try:
            body = request.content
        except httpx.RequestNotRead:
            body = await request.aread()
        lines = [request.method.encode() + b" " + url.raw_path + b" HTTP/1.1"]
        lines += [name + b": " + value for name, value in request.headers.raw]
        head = b"\r\n".join(lines) + b"\r\n\r\n"
        return await self.send_request(request.method, url, head, body, request.extensions.get("timeout", {}))

    async def send_request(self, method: str, url: httpx.URL, head: bytes, body: bytes, timeouts: dict[str, Any]
                           ) -> httpx.Response:
        """Send ``head`` (request line and headers, already encoded) and ``body``; the response
        with its body still to read."""
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}")
        key = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        conn = await self._acquire(key, timeouts)
        try:
            unsent: httpx.WriteError | None = None
            try:
                await self._send(conn, head, body, timeouts.get("write"))
            except httpx.WriteError as exc:  # the upstream may have answered (413, 401) and closed
                unsent = exc                 # before taking the whole body: that answer is the one
            try:
                status, reason, headers, version = await self._head(conn, timeouts.get("read"))
            except httpx.TransportError:
                if unsent is not None:
                    raise unsent from None
                raise
        except BaseException:
            await self.discard(conn)
            raise
        names = {name.lower(): value for name, value in headers}
        reuse = unsent is None and version == b"HTTP/1.1" and b"close" not in names.get(b"connection", b"").lower()
        chunked = b"chunked" in names.get(b"transfer-encoding", b"").lower()
        length: int | None = None
        if method == "HEAD" or status in _NO_BODY:
            length, chunked = 0, False
        elif not chunked and b"content-length" in names:
            try:
                length = int(names[b"content-length"])
            except ValueError:
                await self.discard(conn)
                raise httpx.RemoteProtocolError("bad Content-Length from the upstream") from None
        elif not chunked:
            reuse = False  # delimited by close
        stream = ResponseBody(self, conn, chunked=chunked, length=length, reuse=reuse, read_s=timeouts.get("read"))
        response = _Response(status, headers=headers, stream=stream,
                             extensions={"http_version": version, "reason_phrase": reason})
        response.method_url = (method, url)
        return response

    async def _send(self, conn: Conn, head: bytes, body: bytes, write_s: float | None) -> None:
        """Send the request. ``write_s`` bounds each wait for room in the socket buffer, not the
        whole send: a reader that stops taking bytes is noticed within ``write_s``, while a large
        body to a slow but steady reader is never cut off for taking long in total (httpcore's
        meaning of the write timeout too). A large body goes out as it is, never copied."""
        bufs: list[bytes | memoryview] = [head + body] if len(body) < COPY_LIMIT else [head, memoryview(body)]
        try:
            if conn.fd >= 0:
                await _send_fd(conn.fd, bufs, write_s)
            else:  # TLS: encrypted piece by piece (bounded memory); the carrier applies write_s
                tls = conn.stream  # an SSLStream over a _TlsCarrier whenever fd < 0 (_connect makes it so)
                assert isinstance(tls, trio.SSLStream) and isinstance(tls.transport_stream, _TlsCarrier)
                tls.transport_stream.write_s = write_s
                for buf in bufs:
                    for start in range(0, len(buf), TLS_PIECE):
                        await conn.stream.send_all(buf[start:start + TLS_PIECE])
        except trio.TooSlowError:
            raise httpx.WriteTimeout(f"the upstream took no request bytes for {write_s:g}s") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise httpx.WriteError(f"upstream write failed: {exc}") from None

    async def _head(self, conn: Conn, read_s: float | None) -> tuple[int, bytes, list[tuple[bytes, bytes]], bytes]:
        """Status and headers of the (final, non-1xx) response; the rest stays in ``conn.buf``."""
        while True:
            buf = conn.buf
            while (end := buf.find(b"\r\n\r\n")) == -1:
                if len(buf) > MAX_HEAD:
                    raise httpx.RemoteProtocolError("upstream response head too large")
                data = await self.recv(conn, read_s)
                if not data:
                    raise httpx.RemoteProtocolError("upstream closed the connection without a response")
                buf += data
            head, conn.buf = buf[:end], buf[end + 4:]
            lines = head.split(b"\r\n")
            parts = lines[0].split(b" ", 2)
            try:
                version, status = parts[0], int(parts[1])
            except (IndexError, ValueError):
                raise httpx.RemoteProtocolError(f"malformed upstream status line {lines[0][:80]!r}") from None
            if 100 <= status < 200:
                continue  # 100 Continue and other interim answers
            headers = []
            for line in lines[1:]:
                name, sep, value = line.partition(b":")
                if sep:
                    headers.append((name.strip(), value.strip()))
            return status, parts[2] if len(parts) > 2 else b"", headers, version

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                await _close(conn)


class _Response(httpx.Response):
    """An ``httpx.Response`` whose ``request`` is made only if asked for (building one costs more
    than the rest of a request's head)."""

    method_url: tuple[str, httpx.URL] | None = None

    @property
    def request(self) -> httpx.Request:
        if self._request is None and self.method_url is not None:
            self._request = httpx.Request(*self.method_url)
        return super().request

    @request.setter
    def request(self, value: httpx.Request) -> None:
        self._request = value


class LeanClient:
    """What the upstream uses of ``httpx.AsyncClient`` (``stream``, ``post``, ``aclose``) without its
    per-request machinery (auth and redirect flows, cookies, event hooks, default-header merging):
    the request goes straight to a ``StreamTransport``. Bodies are never compressed
    (``accept-encoding: identity``), as the relay reads raw bytes."""

    def __init__(self, transport: StreamTransport, *, timeout: httpx.Timeout) -> None:
        self._transport = transport
        self._timeouts = timeout.as_dict()
        self._urls: dict[str, httpx.URL] = {}

    def _url(self, url: str | httpx.URL) -> httpx.URL:
        if isinstance(url, httpx.URL):
            return url
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    def _head(self, method: str, url: httpx.URL, content: bytes, headers: dict[str, str] | None) -> bytes:
        """The request line and headers as httpx would send them (Host, Content-Length, the
        defaults below, then ``headers`` overriding them)."""
        merged = {"host": url.netloc.decode("ascii"), **_DEFAULT_HEADERS, **(headers or {}),
                  "content-length": str(len(content))}
        text = "".join([f"{method} {url.raw_path.decode('ascii')} HTTP/1.1\r\n",
                        *(f"{name}: {value}\r\n" for name, value in merged.items()), "\r\n"])
        if text.count("\n") != len(merged) + 2 or text.count("\r") != len(merged) + 2:  # header injection
            raise httpx.LocalProtocolError("invalid character in an upstream request header")
        try:
            return text.encode("latin-1")
        except UnicodeEncodeError:
            raise httpx.LocalProtocolError("non-latin-1 character in an upstream request header") from None

    @asynccontextmanager
    async def stream(self, method: str, url: str | httpx.URL, *, content: bytes = b"",
                     headers: dict[str, str] | None = None) -> AsyncIterator[httpx.Response]:
        parsed = self._url(url)
        head = self._head(method, parsed, content, headers)
        response = await self._transport.send_request(method, parsed, head, content, self._timeouts)
        try:
            yield response
        finally:
            await response.aclose()

    async def post(self, url: str | httpx.URL, *, content: bytes = b"", headers: dict[str, str] | None = None
                   ) -> httpx.Response:
        async with self.stream("POST", url, content=content, headers=headers) as response:
            await response.aread()
        return response

    async def aclose(self) -> None:
        await self._transport.aclose()


_DEFAULT_HEADERS = {"accept": "*/*", "accept-encoding": "identity", "user-agent": "deepseek-gateway"}


async def _send_fd(fd: int, bufs: list[Any], write_s: float | None) -> None:
    """Write ``bufs`` straight to the socket's file descriptor (one ``writev`` takes what the
    buffer has room for); only a full buffer waits, each wait at most ``write_s``."""
    while bufs:
        try:
            sent = os.writev(fd, bufs)
        except BlockingIOError:
            if write_s is None:
                await trio.lowlevel.wait_writable(fd)
            else:
                with trio.fail_after(write_s):
                    await trio.lowlevel.wait_writable(fd)
            continue
        while bufs and sent >= len(bufs[0]):  # empty buffers go too
            sent -= len(bufs[0])
            del bufs[0]
        if sent:
            bufs[0] = memoryview(bufs[0])[sent:]


class _TlsCarrier(trio.abc.Stream):
    """The TCP stream under an ``SSLStream``: its sends go through ``_send_fd``, so that TLS has the
    same write timeout as plain TCP (each wait for room in the buffer, not the whole send); the
    rest is the ``SocketStream``'s."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self.socket = stream.socket
        self.write_s: float | None = None  # set for each request; None (the handshake) waits unbounded

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await _send_fd(self.socket.fileno(), [data], self.write_s)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return await self._stream.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self._stream.aclose()


async def _close(conn: Conn) -> None:
    try:
        await conn.stream.aclose()
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass


__all__ = ["LeanClient", "StreamTransport"]
