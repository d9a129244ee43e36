"""The reasoning envelope: encrypted (not only signed), one key per upstream, tamper-proof."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import zlib

import msgspec
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from stages.thinking_filter import envelope as envelope_module
from stages.thinking_filter.envelope import PREFIX, Envelope, Keyring, derive_key
from tests.stages.thinking_filter.envelope_helpers import raw_bytes, readable_without_key

SECRET = b"a-shared-gateway-thinking-secret"
REASONING = "CONFIDENTIAL-REASONING: the user's deploy key is in ~/.ssh; I will not print it. " * 3
ENVELOPE = Envelope(u="deepseek", m="deepseek-v4-pro", r=REASONING, t=("call_00_secretcallid",))


class TestConfidentiality:
    def test_the_token_shows_nothing_of_the_payload_without_the_key(self) -> None:
        """Neither the reasoning nor the upstream, model or call id can be read from the token
        (base64 and zlib at every offset), small (raw) or large (compressed) payloads alike."""
        key = Keyring(SECRET).upstream("deepseek")
        for envelope in (ENVELOPE, msgspec.structs.replace(ENVELOPE, r=REASONING * 40),
                         msgspec.structs.replace(ENVELOPE, r="short")):
            token = key.seal(envelope)
            assert token.startswith("gw2.")
            readable = readable_without_key(token)
            for secret_part in (b"CONFIDENTIAL", b"short", b"deepseek", b"call_00_secretcallid"):
                assert secret_part not in readable
            assert key.open(token) == envelope

    def test_decrypting_needs_the_upstream_key(self) -> None:
        """The token is AES-256-GCM under the HKDF-derived key: that key decrypts it (the payload
        is there, zlib-compressed when that pays), any other key fails authentication."""
        token = Keyring(SECRET).upstream("deepseek").seal(msgspec.structs.replace(ENVELOPE, r=REASONING * 40))
        raw = raw_bytes(token)
        body = AESGCM(derive_key(SECRET, "deepseek")).decrypt(raw[:12], raw[12:], b"gw2.")
        assert body[:1] == b"\x01" and REASONING.encode() in zlib.decompress(body[1:])
        assert len(token) < len(REASONING * 40) // 2  # compressed inside the ciphertext
        for wrong in (derive_key(b"another-secret", "deepseek"), derive_key(SECRET, "simulator"), SECRET[:32]):
            with pytest.raises(InvalidTag):
                AESGCM(wrong).decrypt(raw[:12], raw[12:], b"gw2.")

    def test_every_seal_has_its_own_nonce(self) -> None:
        key = Keyring(SECRET).upstream("deepseek")
        first, second = key.seal(ENVELOPE), key.seal(ENVELOPE)
        assert first != second and raw_bytes(first)[:12] != raw_bytes(second)[:12]
        assert key.open(first) == key.open(second) == ENVELOPE


class TestKeySeparation:
    def test_one_upstreams_envelope_does_not_open_for_another_with_the_same_secret(self) -> None:
        """The /demo simulator's envelopes are not DeepSeek's, though both derive from one secret."""
        ring = Keyring(SECRET)
        demo = ring.upstream("simulator").seal(Envelope(u="simulator", r="INJECTED", t=("call_x",)))
        assert ring.upstream("simulator").open(demo) is not None
        assert ring.upstream("deepseek").open(demo) is None
        assert derive_key(SECRET, "simulator") != derive_key(SECRET, "deepseek")

    def test_the_sealed_upstream_is_checked_on_open(self) -> None:
        """Defense in depth: a payload naming another upstream does not open even under the right
        key, and a key never seals another upstream's envelope."""
        ring = Keyring(SECRET)
        nonce = os.urandom(12)
        body = b"\x00" + msgspec.json.encode(Envelope(u="simulator", r="INJECTED", t=("call_x",)))
        token = PREFIX + base64.urlsafe_b64encode(
            nonce + AESGCM(derive_key(SECRET, "deepseek")).encrypt(nonce, body, b"gw2.")).decode().rstrip("=")
        assert ring.upstream("deepseek").open(token) is None
        with pytest.raises(ValueError, match="simulator"):
            ring.upstream("deepseek").seal(Envelope(u="simulator", r="x"))

    def test_keys_are_derived_once_per_upstream(self) -> None:
        ring = Keyring(SECRET)
        assert ring.upstream("deepseek") is ring.upstream("deepseek")
        assert ring.upstream("deepseek") is not ring.upstream("simulator")


class TestIntegrity:
    def test_any_changed_character_is_refused(self) -> None:
        key = Keyring(SECRET).upstream("deepseek")
        token = key.seal(ENVELOPE)
        for i in range(len(PREFIX), len(token)):
            changed = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
            assert key.open(changed) is None, i

    @pytest.mark.parametrize("cut", ["minus_one", "half", "prefix_only", "nonce_only", "appended", "non_ascii",
                                     "garbage_5mb", "empty", "none"])
    def test_truncated_extended_or_garbage_tokens_are_refused(self, cut: str) -> None:
        key = Keyring(SECRET).upstream("deepseek")
        token = key.seal(ENVELOPE)
        variants = {"minus_one": token[:-1], "half": token[:len(token) // 2], "prefix_only": "gw2.",
                    "nonce_only": token[:len(PREFIX) + 16], "appended": token + "AAAA", "non_ascii": token + "é",
                    "garbage_5mb": "gw2." + "A" * 5_000_000, "empty": "", "none": None}
        assert key.open(variants[cut]) is None

    def test_an_old_gw1_token_is_refused(self) -> None:
        """gw1 envelopes (zlib + HMAC, readable by anyone, mintable through /demo) are not opened,
        even with the secret that signed them: they fall to the next rung like foreign ones."""
        body = b"gw1." + base64.urlsafe_b64encode(zlib.compress(msgspec.json.encode(ENVELOPE))).rstrip(b"=")
        mac = base64.urlsafe_b64encode(hmac.new(SECRET, body, hashlib.sha256).digest()).rstrip(b"=")[:22]
        assert Keyring(SECRET).upstream("deepseek").open((body + b"." + mac).decode()) is None

    def test_inflating_past_max_bytes_is_refused(self) -> None:
        key = Keyring(SECRET).upstream("deepseek")
        token = key.seal(msgspec.structs.replace(ENVELOPE, r="x" * 100_000))
        assert key.open(token, max_bytes=10_000) is None
        assert key.open(token) is not None


class TestOpenedOnce:
    """Each key remembers the envelopes it opened (a long session sends them all again on every
    turn): what it remembers is what a fresh key opens, and nothing else is served from it."""

    def test_a_remembered_envelope_is_what_a_fresh_key_opens(self) -> None:
        key = Keyring(SECRET).upstream("deepseek")
        envelopes = [Envelope(u="deepseek", m="deepseek-v4-pro", r=f"{REASONING} turn {i}" * (1 + i % 7),
                              t=(f"call_{i:02}",), s=f"sig-{i}" if i % 3 else None, x=i % 11 == 0)
                     for i in range(60)]
        tokens = [key.seal(envelope) for envelope in envelopes]
        first = [key.open(token) for token in tokens]
        assert key.remembered[0] == len(tokens)
        again = [key.open(token) for token in tokens]  # from memory
        fresh = Keyring(SECRET).upstream("deepseek")
        assert first == again == [fresh.open(token) for token in tokens] == envelopes

    def test_a_changed_token_is_never_served_from_memory(self) -> None:
        """Every one-character change of a remembered token is opened afresh, and refused."""
        key = Keyring(SECRET).upstream("deepseek")
        token = key.seal(ENVELOPE)
        assert key.open(token) == ENVELOPE
        for i in range(len(PREFIX), len(token)):
            changed = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
            assert key.open(changed) is None, i
        for variant in (token[:-1], token + "A", token[:len(token) // 2]):
            assert key.open(variant) is None
        assert key.remembered[0] == 1  # refused tokens are not remembered
        assert Keyring(SECRET).upstream("other").open(token) is None  # another upstream's key

    def test_a_smaller_max_bytes_is_still_enforced(self) -> None:
        key = Keyring(SECRET).upstream("deepseek")
        token = key.seal(msgspec.structs.replace(ENVELOPE, r="x" * 100_000))
        assert key.open(token) is not None
        assert key.open(token, max_bytes=10_000) is None

    def test_memory_is_bounded(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(envelope_module, "OPENED_ENTRIES", 20)
        monkeypatch.setattr(envelope_module, "OPENED_CHARS", 40_000)
        key = Keyring(SECRET).upstream("deepseek")
        tokens = [key.seal(msgspec.structs.replace(ENVELOPE, r=f"{i} " + "y" * 1500)) for i in range(100)]
        for token in tokens:
            assert key.open(token) is not None
            entries, chars = key.remembered
            assert entries <= 20 and chars <= 40_000
        assert key.open(tokens[0]) is not None  # evicted: opened again, the same
