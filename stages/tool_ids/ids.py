"""Tool call ids: the pure client → upstream mapping, the client-side rule, and fresh ids.

``upstream_id(client_id, pattern)`` is a pure function of its inputs (a hash, no state), so the
same client id maps to the same upstream id on every turn without remembering anything.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from functools import lru_cache

# Every client gets ids Anthropic accepts (PROTOCOLS §5.7); Responses and Chat are laxer.
CLIENT_ID_PATTERN = r"^[a-zA-Z0-9_-]+$"
FRESH_PREFIX = "call_"
FRESH_LENGTH = 24
_ALPHANUM = string.ascii_letters + string.digits
# Forms tried in order; the first that fits the upstream's pattern wins (most want ``call_``+hex,
# a few want a short bare alphanumeric id, e.g. exactly 9 characters).
_PREFIXES = ("call_", "call", "")
_LENGTHS = (24, 32, 16, 12, 9, 8, 40, 64)


@lru_cache(maxsize=64)
def compiled(pattern: str) -> re.Pattern[str]:
    """The pattern compiled once (profiles hold a handful of patterns)."""
    return re.compile(pattern)


def fits(value: str, pattern: str) -> bool:
    """Whether ``value`` matches ``pattern`` as a whole (``$`` must not accept a trailing newline)."""
    return compiled(pattern).fullmatch(value) is not None


def valid_for_client(call_id: str | None) -> bool:
    if not call_id:
        return False
    return fits(call_id, CLIENT_ID_PATTERN)


def upstream_id(client_id: str, pattern: str) -> str | None:
    """The id sent upstream for ``client_id``: itself when it fits ``pattern``, else a hash form.

    ``None`` when no hash form fits the pattern either (the caller keeps the id and records a loss).
    """
    if fits(client_id, pattern):
        return client_id
    digest = hashlib.sha256(client_id.encode("utf-8", "surrogatepass")).hexdigest()
    for prefix in _PREFIXES:
        for length in _LENGTHS:
            candidate = prefix + digest[:length]
            if fits(candidate, pattern):
                return candidate
    return None


def fresh_id() -> str:
    """A new unique id: ``call_`` + 24 random alphanumerics."""
    return FRESH_PREFIX + "".join(secrets.choice(_ALPHANUM) for _ in range(FRESH_LENGTH))


__all__ = ["CLIENT_ID_PATTERN", "compiled", "fits", "fresh_id", "upstream_id", "valid_for_client"]
