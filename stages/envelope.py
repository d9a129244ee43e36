"""The reasoning envelope: what the gateway hides in a thinking signature / ``encrypted_content``.

Format: ``gw1.<base64url(zlib(json payload))>.<base64url(HMAC-SHA256(secret, "gw1." + body))[:22]>``.
The payload carries what the next request needs to replay DeepSeek's reasoning exactly:
``u`` upstream id, ``m`` upstream model, ``r`` the reasoning text (or ``d``, its SHA-256, when it
was too large to carry and lives in the reasoning cache), ``t`` the tool call ids it precedes.
Sans-IO and stateless; any replica holding the same secret can open it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import zlib

import msgspec

PREFIX = b"gw1."
_MAC_CHARS = 22  # 16 bytes of HMAC-SHA256, base64url without padding


class Envelope(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    u: str = ""
    m: str = ""
    r: str | None = None
    d: str | None = None
    t: tuple[str, ...] = ()


_ENC = msgspec.json.Encoder()
_DEC = msgspec.json.Decoder(Envelope)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


def seal(envelope: Envelope, secret: bytes) -> str:
    body = PREFIX + _b64(zlib.compress(_ENC.encode(envelope), 6))
    mac = _b64(hmac.new(secret, body, hashlib.sha256).digest())[:_MAC_CHARS]
    return (body + b"." + mac).decode("ascii")


def open_envelope(token: str | None, secret: bytes, *, max_bytes: int = 8 * 1024 * 1024) -> Envelope | None:
    """The envelope inside ``token`` if it is ours and untampered, else ``None`` (foreign/forged)."""
    if not token or not token.startswith("gw1."):
        return None
    raw = token.encode("ascii", "replace")
    body, sep, mac = raw.rpartition(b".")
    if not sep or len(mac) != _MAC_CHARS:
        return None
    expected = _b64(hmac.new(secret, body, hashlib.sha256).digest())[:_MAC_CHARS]
    if not hmac.compare_digest(mac, expected):
        return None
    try:
        inflater = zlib.decompressobj()
        payload = inflater.decompress(_unb64(body[len(PREFIX):]), max_bytes)
        if inflater.unconsumed_tail:
            return None
        return _DEC.decode(payload)
    except (ValueError, zlib.error, msgspec.DecodeError):
        return None


__all__ = ["PREFIX", "Envelope", "digest", "open_envelope", "seal"]
