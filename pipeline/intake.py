"""Request intake, sans the pipeline: which gateway key a request carries, the request id, the
body read under its size, idle and deadline limits (decompressed when the client compressed it),
the bounded drain before a refusal, and the plain answers the gateway gives outside any
pipeline (the JSON nesting check is ``pipeline.json_depth``). ``pipeline.app`` composes them.
"""

from __future__ import annotations

import hmac
import re
import zlib
from random import getrandbits

import msgspec
import trio

from pipeline.errors import RequestError
from pipeline.respond import JSON_HEADERS, Send
from pipeline.runner import Receive

KEY_REFUSED = "invalid or missing API key for this gateway pipeline"


def key_matches(keys: tuple[bytes, ...], headers: dict[str, str]) -> bool:
    return key_index(keys, headers) is not None


def key_index(keys: tuple[bytes, ...], headers: dict[str, str]) -> int | None:
    """Which of ``keys`` ``x-api-key`` (else a Bearer token) is, compared as bytes: the header's own
    bytes (decoded latin-1 in ``headers``, so encoded back the same way) against the configured
    keys' UTF-8, so a non-ASCII key matches when the client sends its UTF-8. ``None``: none."""
    given = headers.get("x-api-key", "").encode("latin-1")
    auth = headers.get("authorization", "").encode("latin-1")
    if not given and auth[:7].lower() == b"bearer ":
        given = auth[7:].strip()
    found = None
    for i, key in enumerate(keys):  # constant-time, and every key is compared
        if hmac.compare_digest(given, key) and found is None:
            found = i
    return found


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id(given: str | None) -> str:
    """The client's ``x-request-id`` when it is a plain token (at most 128 of ``A-Za-z0-9._:-``),
    else a new one: the id is logged and echoed, so it must not carry arbitrary text."""
    if given and _REQUEST_ID.fullmatch(given):
        return given
    return f"{getrandbits(128):032x}"


async def refused(receive: Receive, send: Send, status: int, message: str, code: str) -> None:
    """A gateway-level refusal (no route, no key for ``/metrics``) after reading the body."""
    await drain(receive, True)
    body = msgspec.json.encode({"error": {"message": message, "type": code}})
    await plain(send, status, body, [*JSON_HEADERS, (b"content-length", str(len(body)).encode())])


async def read_body(receive: Receive, headers: dict[str, str], limit: int, idle_s: float, deadline_s: float,
                     deadline: float) -> bytes:
    """The request body, decoded; each piece within ``idle_s`` of the last one and the whole by
    ``deadline`` (the pipeline's, which started with the request), else a 408."""
    declared = headers.get("content-length", "")
    # Once the declared length is in, the (empty) end-of-body message is not waited for: it costs
    # a round trip through the server's task, and the disconnect watcher reads past it.
    expected = int(declared) if declared.isdigit() else -1
    if expected > limit:
        # Drained even after ``Expect: 100-continue``: hypercorn sends the 100 itself, before the
        # app reads, so that client is sending its body too.
        await drain(receive, True)
        raise RequestError(f"request body of {declared} bytes exceeds the limit of {limit} bytes",
                           code="request_too_large")
    chunks: list[bytes] = []
    size = 0
    while True:
        with trio.move_on_at(min(trio.current_time() + idle_s, deadline)) as timer:
            message = await receive()
        if timer.cancelled_caught:
            of = f"{size} of {declared} bytes" if expected >= 0 else f"{size} bytes"
            why = (f"the pipeline deadline of {deadline_s:g}s" if trio.current_time() >= deadline
                   else f"no more of it for {idle_s:g}s")
            raise RequestError(f"request body incomplete: {of} received, then {why}", code="request_timeout")
        if message["type"] == "http.disconnect":
            raise RequestError("client disconnected while sending the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            await drain(receive, message.get("more_body", False))
            raise RequestError(f"request body exceeds the limit of {limit} bytes", code="request_too_large")
        chunks.append(chunk)
        if not message.get("more_body", False) or size == expected:
            break
    body = b"".join(chunks)
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "deflate"):
        try:
            out = zlib.decompressobj(wbits=47).decompress(body, limit + 1)
        except zlib.error as exc:
            raise RequestError(f"request body is not valid {encoding}: {exc}") from None
        if len(out) > limit:
            raise RequestError(f"decompressed request body exceeds the limit of {limit} bytes",
                               code="request_too_large")
        return out
    raise RequestError(f"unsupported Content-Encoding {encoding!r} (supported: identity, gzip, deflate)",
                       code="unsupported_media_type")


# A refused body is read and dropped (up to these bounds) before the error is sent: closing on unread
# bytes makes the kernel reset the connection, and the client would see that instead of the 413.
DRAIN_BYTES = 64 * 1024 * 1024
DRAIN_S = 10.0


async def drain(receive: Receive, more: bool) -> None:
    dropped = 0
    with trio.move_on_after(DRAIN_S):
        while more and dropped < DRAIN_BYTES:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            dropped += len(message.get("body", b""))
            more = message.get("more_body", False)


async def plain(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})



__all__ = [
    "DRAIN_BYTES", "DRAIN_S", "KEY_REFUSED", "drain", "key_index", "key_matches", "plain",
    "read_body", "refused", "request_id",
]
