"""SSE framing: line endings, CR carried across chunks, comments, multi-line data, splits."""

from __future__ import annotations

import random

import pytest

from pipeline.sse import SseDecoder, SseFrame, encode_sse

STREAM = (
    b": keep-alive\n\n"
    b"event: message_start\ndata: {\"a\":1}\n\n"
    b"data: line one\r\ndata: line two\r\n\r\n"
    b"data: {\"t\":\"sep\xe2\x80\xa8inside\"}\r\r"
    b"id: 7\nretry: 10\ndata:nospace\n\n"
    b": another comment\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    SseFrame("message_start", b'{"a":1}'),
    SseFrame(None, b"line one\nline two"),
    SseFrame(None, b'{"t":"sep\xe2\x80\xa8inside"}'),
    SseFrame(None, b"nospace"),
    SseFrame(None, b"[DONE]"),
]


def decode_in(pieces: list[bytes]) -> tuple[list[SseFrame], int]:
    dec = SseDecoder()
    out: list[SseFrame] = []
    for piece in pieces:
        out.extend(dec.feed(piece))
    out.extend(dec.close())
    return out, dec.comments


class TestSseDecoder:
    def test_whole(self) -> None:
        """A whole stream decodes into its frames; comments are counted, not returned."""
        frames, comments = decode_in([STREAM])
        assert frames == EXPECTED
        assert comments == 2

    def test_byte_by_byte(self) -> None:
        """Feeding one byte at a time gives the same frames (CR/LF split across feeds)."""
        frames, _ = decode_in([STREAM[i : i + 1] for i in range(len(STREAM))])
        assert frames == EXPECTED

    @pytest.mark.parametrize("seed", range(50))
    def test_random_splits(self, seed: int) -> None:
        """Any split of the byte stream gives the same frames."""
        rng = random.Random(seed)
        cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(1, 20)))
        pieces = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
        frames, _ = decode_in(pieces)
        assert frames == EXPECTED

    def test_u2028_is_not_a_line_break(self) -> None:
        """U+2028 inside JSON stays inside the data (httpx aiter_lines would split it)."""
        frames, _ = decode_in([b'data: {"x":"a\xe2\x80\xa8b"}\n\n'])
        assert frames == [SseFrame(None, b'{"x":"a\xe2\x80\xa8b"}')]

    def test_unterminated_last_event_is_dispatched_on_close(self) -> None:
        """A server that closes right after its last data line still delivers it."""
        frames, _ = decode_in([b"data: tail"])
        assert frames == [SseFrame(None, b"tail")]

    def test_crlf_split_between_feeds_makes_one_line_break(self) -> None:
        """A CR at the end of one chunk and LF at the start of the next is a single break."""
        frames, _ = decode_in([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"])
        assert frames == [SseFrame(None, b"a\nb")]


LF_STREAM = (
    b'data: {"a":1}\n\n'
    b": keep-alive\n\n"
    b"event: message_start\ndata: {\"b\":2}\n\n"
    b"data: one\ndata: two\n\n\n\n"
    b"data:nospace\n\n"
    b'data: {"t":"sep\xe2\x80\xa8inside"}\n\n'
    b"data: [DONE]\n"
)
LF_EXPECTED = [
    SseFrame(None, b'{"a":1}'),
    SseFrame("message_start", b'{"b":2}'),
    SseFrame(None, b"one\ntwo"),
    SseFrame(None, b"nospace"),
    SseFrame(None, b'{"t":"sep\xe2\x80\xa8inside"}'),
    SseFrame(None, b"[DONE]"),
]


class TestLfOnlyFastPath:
    """Streams with LF line ends only (what DeepSeek, vLLM, llama.cpp send) take a faster path."""

    def test_whole(self) -> None:
        """Frames, comments and the unterminated last event are the same as the line path's."""
        frames, comments = decode_in([LF_STREAM])
        assert frames == LF_EXPECTED
        assert comments == 1

    def test_byte_by_byte(self) -> None:
        """One byte at a time: the same frames."""
        frames, comments = decode_in([LF_STREAM[i : i + 1] for i in range(len(LF_STREAM))])
        assert frames == LF_EXPECTED
        assert comments == 1

    @pytest.mark.parametrize("seed", range(30))
    def test_random_splits(self, seed: int) -> None:
        """Any split gives the same frames."""
        rng = random.Random(seed)
        cuts = sorted(rng.sample(range(1, len(LF_STREAM)), rng.randint(1, 25)))
        pieces = [LF_STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(LF_STREAM)], strict=True)]
        frames, _ = decode_in(pieces)
        assert frames == LF_EXPECTED

    def test_switching_to_crlf_midway(self) -> None:
        """A CR arriving after LF-only input is handled by the line path without losing state."""
        dec = SseDecoder()
        out = dec.feed(b"data: a\n\ndata: b\n")
        out += dec.feed(b"data: c\r\n\r\n")
        assert out == [SseFrame(None, b"a"), SseFrame(None, b"b\nc")]


def test_encode_sse() -> None:
    """Frames carry an event line only when asked."""
    assert encode_sse(b"{}") == b"data: {}\n\n"
    assert encode_sse(b"{}", "ping") == b"event: ping\ndata: {}\n\n"
