"""A real HTTP/1.1 upstream on 127.0.0.1 for the transport tests: blocking sockets, one thread per
connection, outside the test's trio loop.

It reads each request to the end of its ``Content-Length`` (optionally slowly: a small receive
buffer, small reads with pauses, so the sender's socket buffers fill) or never reads the body (and
stays silent, or answers at once and closes), records what arrived (head, length, sha256, the body if asked) and answers with
``answer(received)`` (by default a JSON echo of what it saw).
"""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Received:
    head: bytes  # request line and headers, without the blank line
    length: int  # body bytes read
    sha256: str
    body: bytes = b""  # kept only with keep_bodies
    read_s: float = 0.0  # from the end of the head to the last body byte

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower().encode():
                return value.strip().decode("latin-1")
        return None


def echo_answer(received: Received) -> bytes:
    """200 with a JSON body telling what arrived."""
    body = json.dumps({"length": received.length, "sha256": received.sha256,
                       "head": received.head.decode("latin-1")}).encode()
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body


@dataclass
class HttpUpstream:
    answer: Callable[[Received], bytes] = echo_answer
    rcvbuf: int | None = None  # SO_RCVBUF of the accepted sockets (set on the listener)
    piece: int = 1 << 20  # bytes asked for per body read
    pause_s: float = 0.0  # sleep after each body read
    read_body: bool = True  # False: read the head, then nothing until the server stops
    answer_unread: bool = False  # with read_body False: answer at once, then close
    keep_bodies: bool = False
    tls: bool = False  # serve HTTPS with TEST_CERT (trust it with client_tls())
    received: list[Received] = field(default_factory=list)
    connections: int = 0
    aborted: int = 0  # connections the client dropped in the middle of a request
    errors: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._listener = socket.socket()
        if self.rcvbuf is not None:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []

    def __enter__(self) -> HttpUpstream:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept
        self._listener.close()
        for conn in list(self._conns):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(5)
        assert not self.errors, self.errors

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            if self.tls:
                conn = _server_tls().wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
            self._conns.append(conn)
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                buf = b""
                while not self._stop.is_set():
                    while b"\r\n\r\n" not in buf:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buf += data
                    head, _, buf = buf.partition(b"\r\n\r\n")
                    received = Received(head=head, length=0, sha256="")
                    if not self.read_body:
                        self.received.append(received)
                        if self.answer_unread:
                            conn.sendall(self.answer(received))
                        else:
                            self._stop.wait()
                        return
                    buf = self._body(conn, received, buf)
                    self.received.append(received)
                    conn.sendall(self.answer(received))
        except OSError:  # ConnectionError (a request cut short) included
            if not self._stop.is_set():
                self.aborted += 1
        except BaseException as exc:  # surfaced by __exit__
            self.errors.append(exc)

    def _body(self, conn: socket.socket, received: Received, buf: bytes) -> bytes:
        """Read the body of ``received`` (some of it may be in ``buf``); the bytes past it."""
        declared = received.header("content-length")
        left = int(declared) if declared else 0
        digest = hashlib.sha256()
        kept: list[bytes] = []
        start = time.perf_counter()
        while left:
            if buf:
                data, buf = buf[:left], buf[left:]
            else:
                data = conn.recv(min(self.piece, left))
                if not data:
                    raise ConnectionError(f"the client closed with {left} body bytes unsent")
                if self.pause_s:
                    time.sleep(self.pause_s)
            digest.update(data)
            if self.keep_bodies:
                kept.append(data)
            received.length += len(data)
            left -= len(data)
        received.read_s = time.perf_counter() - start
        received.sha256 = digest.hexdigest()
        received.body = b"".join(kept)
        return buf


# A self-signed certificate for 127.0.0.1 (EC P-256, valid until 2126), for the HTTPS upstream.
TEST_CERT = """-----BEGIN CERTIFICATE-----
MIIBjzCCATagAwIBAgIUJXQlSLyVzQa/m0LlaslLg5otpW8wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTIwMzA3MzMzMVoYDzIxMjYxMTA5
MDczMzMxWjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAASF0Oi/3Lmx1Tqp/Ef9L5RjurUCq8b4Iarqj8XpVn5vRsyWdukpVqST
A2ov4eKr0oSdlGd9n23eWe9JBKQN/npRo2QwYjAdBgNVHQ4EFgQU5mN+u9zv+jj/
QCX4jtO3h986mpwwHwYDVR0jBBgwFoAU5mN+u9zv+jj/QCX4jtO3h986mpwwDwYD
VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0cAMEQC
IAejtwCUG2VW4F/uDFcBKyLW8LfjBDuleYnAGRrlSMzfAiBdnLtUM0sfIxbgmZpe
JjZDDKqPdlAfEQNp7McqOFUYJg==
-----END CERTIFICATE-----
"""
TEST_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg3rolh2/KLwynnd5Q
kCXNOw6UcQ+fuF0gHbwG/ta51U+hRANCAASF0Oi/3Lmx1Tqp/Ef9L5RjurUCq8b4
Iarqj8XpVn5vRsyWdukpVqSTA2ov4eKr0oSdlGd9n23eWe9JBKQN/npR
-----END PRIVATE KEY-----
"""
_SERVER_TLS: list[ssl.SSLContext] = []


def _server_tls() -> ssl.SSLContext:
    if not _SERVER_TLS:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as pem:
            pem.write(TEST_CERT + TEST_KEY)
            pem.flush()
            context.load_cert_chain(pem.name)
        _SERVER_TLS.append(context)
    return _SERVER_TLS[0]


def client_tls() -> ssl.SSLContext:
    """A client context that trusts (only) TEST_CERT."""
    return ssl.create_default_context(cadata=TEST_CERT)
