"""What can be read from a reasoning envelope without its key (for the envelope tests)."""

from __future__ import annotations

import base64
import zlib


def raw_bytes(token: str) -> bytes:
    """The bytes under the base64 of a ``gw2.`` token (or of the body of an old ``gw1.`` one)."""
    body = token.partition(".")[2]
    body = body.rpartition(".")[0] or body
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def readable_without_key(token: str) -> bytes:
    """Everything one can read from ``token`` without the key: its base64, and every zlib stream
    starting at any offset of it (what opened the old gw1 tokens)."""
    raw = raw_bytes(token)
    seen = [token.encode(), raw]
    for start in range(len(raw)):
        try:
            seen.append(zlib.decompressobj().decompress(raw[start:]))
        except zlib.error:
            pass
    return b"\n".join(seen)
