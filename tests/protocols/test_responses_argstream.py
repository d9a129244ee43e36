"""The custom tool input streamer (responses/client_encode_args.py): ``InputStreamer`` fed whole, byte by
byte, in seeded random splits and hypothesis-generated splits, and ``decode_input`` fallbacks."""

from __future__ import annotations

import json
import random

import hypothesis
import hypothesis.strategies as st
import pytest

from pipeline.protocols.responses.client_encode_args import InputStreamer, decode_input
from tests.protocols.responses_encode_helpers import PATCH


# ---------------------------------------------------------------- the custom input streamer


@pytest.mark.parametrize("seed", range(30))
def test_input_streamer_random_splits(seed: int) -> None:
    rng = random.Random(seed)
    text = "".join(rng.choice(['a', '"', '\\', '\n', 'é', '😀', '\u2028', ' ', '\t']) for _ in range(80))
    args = json.dumps({"input": text}, ensure_ascii=rng.random() < 0.5)
    streamer, shown, i = InputStreamer(), [], 0
    while i < len(args):
        step = rng.randint(1, 9)
        shown.append(streamer.feed(args[i:i + step]))
        i += step
    value, rest = streamer.finish()
    assert value == text and "".join(shown) + rest == text


def test_input_streamer_byte_by_byte_and_whole() -> None:
    args = json.dumps({"input": PATCH})
    streamer = InputStreamer()
    assert "".join(streamer.feed(ch) for ch in args) == PATCH
    whole = InputStreamer()
    assert whole.feed(args) == PATCH and whole.finish() == (PATCH, "")


def test_input_streamer_stops_on_other_shapes() -> None:
    streamer = InputStreamer()
    assert streamer.feed('{"other": 1, "input": "x"}') == ""
    assert streamer.finish() == ("x", "x")
    assert decode_input("[1, 2]") == "[1, 2]" and decode_input('{"a": 1}') == '{"a": 1}'


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(text=st.text(), cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=12),
                  ascii_only=st.booleans())
def test_input_streamer_any_text_any_split(text: str, cuts: list[int], ascii_only: bool) -> None:
    args = json.dumps({"input": text}, ensure_ascii=ascii_only)
    points = sorted({c for c in cuts if c < len(args)})
    streamer = InputStreamer()
    shown = [streamer.feed(args[a:b]) for a, b in zip([0, *points], [*points, len(args)])]
    value, rest = streamer.finish()
    assert value == text and "".join(shown) + rest == text
