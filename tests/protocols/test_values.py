"""The one sub-value decoder every client codec shares (``pipeline.protocols.values``): a
``msgspec.Raw`` or a builtin value as a type, every msgspec failure a ``RequestError`` naming the
field path, and the same for every dialect's public ``decode_request``."""

from __future__ import annotations

import msgspec
import pytest

from pipeline.errors import RequestError
from pipeline.protocols import values
from pipeline.protocols.anthropic import AnthropicCodec
from pipeline.protocols.chat.codec import ChatCodec
from pipeline.protocols.responses import ResponsesCodec
from pipeline.protocols.values import decode_value


class Block(msgspec.Struct):
    type: str
    content: str


def error_of(raw: object, cls: object = Block, path: str = "messages.3", **kw: str) -> str:
    with pytest.raises(RequestError) as info:
        decode_value(raw, cls, path, **kw)  # type: ignore[arg-type]
    return info.value.message


@pytest.mark.parametrize("raw", [msgspec.Raw(b'{"type":"text","content":"hi"}'), {"type": "text", "content": "hi"}])
def test_a_raw_is_decoded_and_a_builtin_value_converted(raw: object) -> None:
    assert decode_value(raw, Block, "messages.3") == Block("text", "hi")


@pytest.mark.parametrize("raw", [msgspec.Raw(b'{"type":"text","content":[1]}'), {"type": "text", "content": [1]}])
def test_a_mistyped_field_names_its_path_under_the_value(raw: object) -> None:
    assert error_of(raw) == "messages.3.content: expected `str`, got `array`"


@pytest.mark.parametrize("raw", [msgspec.Raw(b'{"type":"text"}'), {"type": "text"}])
def test_a_missing_field_is_field_required_at_its_path(raw: object) -> None:
    assert error_of(raw) == "messages.3.content: field required"


def test_invalid_utf8_inside_a_raw_is_a_request_error_naming_the_byte() -> None:
    """msgspec raises a plain ``DecodeError`` (not a ``ValidationError``) for this, and only when
    the Raw is decoded: the copy that did not catch it answered a 500."""
    raw = msgspec.Raw(b'{"type":"text","content":"ok \xc3("}')
    assert error_of(raw) == "messages.3: invalid UTF-8 encoded string at byte 29 of this value"


def test_expected_replaces_a_type_mismatch_but_not_invalid_utf8() -> None:
    assert error_of(msgspec.Raw(b"5"), str | None, "tool_choice", expected="a mode or an object") == (
        "tool_choice: a mode or an object"
    )
    assert error_of(msgspec.Raw(b'"\xff"'), str | None, "tool_choice", expected="x").startswith(
        "tool_choice: invalid UTF-8 encoded string"
    )


def test_typed_decoders_are_built_once_per_type() -> None:
    """The decoder runs for every item of every request: no per-call construction."""
    decode_value(msgspec.Raw(b'{"type":"a","content":"b"}'), Block, "x")
    first = values._DECODERS[Block]
    decode_value(msgspec.Raw(b'{"type":"c","content":"d"}'), Block, "x")
    assert values._DECODERS[Block] is first


# Invalid UTF-8 (a lone C3) inside a user message, in each dialect's own body shape.
BAD_UTF8 = {
    "anthropic": b'{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"ok \xc3("}]}]}',
    "responses": b'{"model":"m","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"ok \xc3("}]}]}',
    "chat": b'{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"ok \xc3("}]}]}',
}
CODECS = {"anthropic": AnthropicCodec, "responses": ResponsesCodec, "chat": ChatCodec}
# Where the error lands: the Responses and Anthropic codecs decode each input item / message on
# its own (a Raw), so the item's path; Chat decodes the whole body in one pass, so the body's byte.
BYTE = {dialect: body.index(0xC3) for dialect, body in BAD_UTF8.items()}
ITEM_AT = BAD_UTF8["responses"].index(b'{"type":"message"')
MESSAGE_AT = BAD_UTF8["anthropic"].index(b'{"role":"user"')
WHERE = {
    "anthropic": f"messages.0: invalid UTF-8 encoded string at byte {BYTE['anthropic'] - MESSAGE_AT} of this value",
    "responses": f"input.0: invalid UTF-8 encoded string at byte {BYTE['responses'] - ITEM_AT} of this value",
    "chat": f"request body is not valid JSON: Invalid UTF-8 encoded string at byte {BYTE['chat']} of the body",
}


@pytest.mark.parametrize("dialect", sorted(CODECS))
def test_every_dialects_decode_request_turns_invalid_utf8_into_a_request_error(dialect: str) -> None:
    body = BAD_UTF8[dialect]
    with pytest.raises(RequestError) as info:
        CODECS[dialect].decoder(body)
    assert info.value.message == WHERE[dialect]
    assert info.value.status == 400


MISTYPED = {
    "anthropic": (b'{"model":"m","max_tokens":10,"messages":[{"role":"assistant","content":'
                  b'[{"type":"tool_use","id":5,"name":"f","input":{}}]}]}',
                  "messages.0.content.0.id: expected `str`, got `int`"),
    "responses": (b'{"model":"m","input":[{"type":"function_call","call_id":5,"name":"f","arguments":"{}"}]}',
                  "input.0.call_id: expected `str`, got `int`"),
    "chat": (b'{"model":"m","messages":[{"role":"user","content":5}]}',
             "messages.0.content: expected `str | array | null`, got `int`"),
}


@pytest.mark.parametrize("dialect", sorted(CODECS))
def test_every_dialect_names_the_path_of_a_mistyped_sub_value(dialect: str) -> None:
    body, message = MISTYPED[dialect]
    with pytest.raises(RequestError) as info:
        CODECS[dialect].decoder(body)
    assert info.value.message == message
