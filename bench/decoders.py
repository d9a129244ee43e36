"""Each upstream dialect's stream decoder on the fake upstream's own answer, in-process:
``python -m bench.decoders``.

The same 200-delta answer (``bench.upstream``) as Chat chunks, Anthropic Messages events and
OpenAI Responses events, through ``pipeline.sse.SseDecoder`` and that dialect's decoder (what a
pass-through path decodes instead of Chat). Best of ``--rounds`` rounds of ``--n`` answers each;
the machine's other work moves it, so run it pinned (``taskset -c 0``) and more than once.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from bench.upstream import messages_frames, responses_frames, sse_frames
from pipeline.profiles import PROFILES
from pipeline.protocols.anthropic.upstream_decode import MessagesStreamDecoder
from pipeline.protocols.chat.upstream_decode import ChatStreamDecoder
from pipeline.protocols.responses.upstream_decode import ResponsesStreamDecoder
from pipeline.sse import SseDecoder

DELTAS = 200


def best_us(make: Callable[[], Any], raw: bytes, n: int, rounds: int) -> float:
    """The best round's time per answer, µs."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            make().feed_many(SseDecoder().feed(raw))
        times.append((time.perf_counter() - start) / n)
    return min(times) * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.decoders", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    cases = (("chat", lambda: ChatStreamDecoder(PROFILES["deepseek"]), sse_frames(DELTAS, think=False)),
             ("messages", MessagesStreamDecoder, messages_frames(DELTAS, think=False)[0]),
             ("responses", ResponsesStreamDecoder, responses_frames(DELTAS, think=False)[0]))
    for name, make, frames in cases:
        raw = b"".join(frames)
        us = best_us(make, raw, args.n, args.rounds)
        print(f"{name:10s} {us:7.1f} µs per answer, {us / DELTAS:.2f} µs per delta ({len(raw):,} bytes)")


if __name__ == "__main__":
    main()
