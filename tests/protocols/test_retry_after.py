"""The one ``retry-after`` renderer (``pipeline.protocols.base.retry_after_headers``) and which
errors each dialect's ``render_error`` gives it to."""

from __future__ import annotations

import pytest

from pipeline.errors import GatewayError
from pipeline.protocols.anthropic import AnthropicCodec
from pipeline.protocols.base import ClientCodec, retry_after_headers
from pipeline.protocols.chat.codec import ChatCodec
from pipeline.protocols.responses import ResponsesCodec


@pytest.mark.parametrize(("seconds", "value"), [(2.2, b"3"), (3.0, b"3"), (0.01, b"1"), (0.0, b"0"), (-4.5, b"0")])
def test_whole_seconds_rounded_up_never_negative(seconds: float, value: bytes) -> None:
    assert retry_after_headers(seconds) == [(b"retry-after", value)]


def test_millis_adds_openais_retry_after_ms() -> None:
    assert retry_after_headers(1.2, millis=True) == [(b"retry-after", b"2"), (b"retry-after-ms", b"1200")]
    assert retry_after_headers(-1.0, millis=True) == [(b"retry-after", b"0"), (b"retry-after-ms", b"0")]


def test_no_known_wait_no_header() -> None:
    assert retry_after_headers(None) == [] == retry_after_headers(None, millis=True)


def retry_headers(codec: ClientCodec, code: str, seconds: float | None) -> list[tuple[bytes, bytes]]:
    rendered = codec.render_error(GatewayError("slow down", code=code, retry_after_s=seconds))
    return [(k, v) for k, v in rendered.headers if k.startswith(b"retry-after")]


# (codec, code, retry_after_s) -> headers. Each dialect decides which errors carry the header: a
# Chat 429 always does (1 s when the upstream named no wait), Chat's overload too; Responses adds
# retry-after-ms (OpenAI's own header) on a 429; Anthropic only on a 429 whose wait is known.
@pytest.mark.parametrize(("codec", "code", "seconds", "headers"), [
    (AnthropicCodec(), "rate_limit", -2.0, [(b"retry-after", b"0")]),
    (AnthropicCodec(), "rate_limit", 2.2, [(b"retry-after", b"3")]),
    (AnthropicCodec(), "rate_limit", None, []),
    (AnthropicCodec(), "overloaded", 5.0, []),
    (ChatCodec(), "rate_limit", 2.2, [(b"retry-after", b"3")]),
    (ChatCodec(), "rate_limit", -2.0, [(b"retry-after", b"0")]),
    (ChatCodec(), "rate_limit", None, [(b"retry-after", b"1")]),
    (ChatCodec(), "overloaded", 5.5, [(b"retry-after", b"6")]),
    (ChatCodec(), "overloaded", None, []),
    (ResponsesCodec(), "rate_limit", 2.2, [(b"retry-after", b"3"), (b"retry-after-ms", b"2200")]),
    (ResponsesCodec(), "rate_limit", -2.0, [(b"retry-after", b"0"), (b"retry-after-ms", b"0")]),
    (ResponsesCodec(), "rate_limit", None, []),
    (ResponsesCodec(), "overloaded", 5.0, []),
], ids=lambda v: type(v).__name__ if isinstance(v, ClientCodec) else None)
def test_each_dialect_renders_its_retry_after_through_the_one_helper(
    codec: ClientCodec, code: str, seconds: float | None, headers: list[tuple[bytes, bytes]]
) -> None:
    assert retry_headers(codec, code, seconds) == headers
