"""The reasoning envelope: what the gateway hides in a thinking signature / ``encrypted_content``.

Format: ``gw2.<base64url(nonce || AES-256-GCM(key_u, nonce, body, aad="gw2."))>``, a random 96-bit
nonce per envelope; ``body`` is one flag byte (0: raw, 1: zlib) and the JSON payload (compressed
when that is smaller). The payload is **encrypted**, not only signed: without the key the token
shows nothing of the reasoning, the upstream or the model. It carries what the next request needs
to replay DeepSeek's reasoning exactly: ``u`` upstream id, ``m`` upstream model, ``r`` the
reasoning text (or ``d``, its SHA-256, when it was too large to carry and lives in the reasoning
cache), ``t`` the tool call ids it precedes (checked by ``thinking_filter`` against the turn it is
replayed on), ``s`` the upstream's own opaque token for the block (its ``UpstreamSeal``: a DeepSeek
or Anthropic thinking signature), sent back only to upstream ``u``; absent in older envelopes;
``x`` set: the block was the upstream's ``redacted_thinking`` (``s`` its data, ``r`` empty).

**Key separation:** ``key_u`` is HKDF-SHA256 of the configured secret with the upstream id as
``info``, so an envelope sealed for one upstream (the ``/demo`` simulator, which thinks whatever
``SIM:think`` says) does not open for another (``deepseek``), whatever secret they share; ``u``
is checked on open as well. ``Keyring`` derives each upstream's key once and keeps it.

**Opened once:** a long session sends every earlier turn's envelope again on each request, so
each key remembers the envelopes it opened, by their exact token (``OPENED_ENTRIES`` of them, at
most ``OPENED_CHARS`` characters of tokens and text, least recently used out first). Only a token
that decrypted and verified gets in, and AES-GCM binds it to its contents, so a token that differs
in any character is another key and is opened afresh; a forged one is never remembered.

Older ``gw1.`` tokens (zlib + HMAC, readable by anyone) are not opened: they count as foreign
signatures and fall to the next rung of the replay ladder. Sans-IO and stateless; any replica
holding the same secret opens any envelope of the same upstream.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import zlib
from collections import OrderedDict

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "gw2."
_AAD = PREFIX.encode()
_SALT = b"deepseek-gateway reasoning envelope v2"
_NONCE = 12  # bytes: AES-GCM's 96-bit nonce, random per envelope
_TAG = 16
_RAW, _ZLIB = b"\x00", b"\x01"
MAX_BYTES = 8 * 1024 * 1024  # the largest payload an envelope may inflate to
OPENED_ENTRIES = 8192  # envelopes each upstream key remembers having opened
OPENED_CHARS = 32 * 1024 * 1024  # ... holding at most this many characters of tokens and texts


class Envelope(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    u: str = ""
    m: str = ""
    r: str | None = None
    d: str | None = None
    t: tuple[str, ...] = ()
    s: str | None = None
    x: bool = False


_ENC = msgspec.json.Encoder()
_DEC = msgspec.json.Decoder(Envelope)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def derive_key(secret: bytes, upstream_id: str) -> bytes:
    """The 256-bit key of ``upstream_id``'s envelopes (HKDF-SHA256, the upstream id as info)."""
    return HKDF(algorithm=SHA256(), length=32, salt=_SALT, info=b"upstream:" + upstream_id.encode()).derive(secret)


class UpstreamKey:
    """Seals and opens the envelopes of one upstream."""

    __slots__ = ("_aead", "_chars", "_opened", "upstream_id")

    def __init__(self, secret: bytes, upstream_id: str) -> None:
        self.upstream_id = upstream_id
        self._aead = AESGCM(derive_key(secret, upstream_id))
        self._opened: OrderedDict[str, tuple[Envelope, int]] = OrderedDict()  # token → (envelope, chars)
        self._chars = 0

    def seal(self, envelope: Envelope) -> str:
        if envelope.u != self.upstream_id:
            raise ValueError(f"an envelope of upstream {envelope.u!r} sealed with {self.upstream_id!r}'s key")
        payload = _ENC.encode(envelope)
        packed = zlib.compress(payload, 6)
        body = _ZLIB + packed if len(packed) < len(payload) else _RAW + payload
        nonce = os.urandom(_NONCE)
        sealed = nonce + self._aead.encrypt(nonce, body, _AAD)
        return PREFIX + base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")

    def open(self, token: str | None, *, max_bytes: int = MAX_BYTES) -> Envelope | None:
        """The envelope inside ``token`` if this upstream sealed it and nobody changed it, else
        ``None`` (foreign, another upstream's, an old ``gw1.`` token, forged, or tampered)."""
        if token is not None and max_bytes == MAX_BYTES and (hit := self._opened.get(token)) is not None:
            self._opened.move_to_end(token)
            return hit[0]
        envelope = self._open(token, max_bytes)
        if envelope is not None and max_bytes == MAX_BYTES:
            self._remember(token, envelope)  # type: ignore[arg-type]  # opened: a str
        return envelope

    @property
    def remembered(self) -> tuple[int, int]:
        """(envelopes, characters) this key remembers having opened."""
        return len(self._opened), self._chars

    def _remember(self, token: str, envelope: Envelope) -> None:
        chars = len(token) + len(envelope.r or "") + len(envelope.s or "")
        if chars > OPENED_CHARS // 16:
            return
        self._opened[token] = (envelope, chars)
        self._chars += chars
        while len(self._opened) > OPENED_ENTRIES or self._chars > OPENED_CHARS:
            _, (_, dropped) = self._opened.popitem(last=False)
            self._chars -= dropped

    def _open(self, token: str | None, max_bytes: int) -> Envelope | None:
        if not token or not token.startswith(PREFIX) or len(token) > (max_bytes + 64) * 4 // 3:
            return None
        data = token[len(PREFIX):]
        try:
            raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
        except (ValueError, binascii.Error):  # non-ASCII or not base64
            return None
        if len(raw) < _NONCE + _TAG + 1:
            return None
        try:  # the tag is checked before anything is inflated: forged zip bombs never are
            body = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], _AAD)
        except InvalidTag:
            return None
        try:
            if body[:1] == _ZLIB:
                inflater = zlib.decompressobj()
                payload = inflater.decompress(body[1:], max_bytes)
                if inflater.unconsumed_tail:
                    return None
            else:
                payload = body[1:]
            envelope = _DEC.decode(payload)
        except (ValueError, zlib.error, msgspec.DecodeError):
            return None
        return envelope if envelope.u == self.upstream_id else None


class Keyring:
    """The per-upstream keys of one secret, each derived once (on its upstream's first use)."""

    __slots__ = ("_keys", "_secret")

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._keys: dict[str, UpstreamKey] = {}

    def upstream(self, upstream_id: str) -> UpstreamKey:
        key = self._keys.get(upstream_id)
        if key is None:
            key = self._keys[upstream_id] = UpstreamKey(self._secret, upstream_id)
        return key


__all__ = ["MAX_BYTES", "OPENED_CHARS", "OPENED_ENTRIES", "PREFIX", "Envelope", "Keyring", "UpstreamKey", "derive_key",
           "digest"]
