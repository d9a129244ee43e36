"""Chat Completions SSE fixtures and helpers for the upstream decoder tests.

Streams are built chunk by chunk in the shapes DeepSeek, vLLM and Ollama send
(the wire reference, PROTOCOLS §3.2-3.3, §4.7); ``run`` feeds pieces through ``SseDecoder`` and
``ChatStreamDecoder``; ``check_well_formed`` asserts the neutral stream invariants.
"""

from __future__ import annotations

import json
import random
from typing import Any

from pipeline.events import (
    BlockStart,
    BlockStop,
    Event,
    MessageStart,
    MessageStop,
    SignatureDelta,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    Usage,
)
from pipeline.protocols.chat import ChatStreamDecoder
from pipeline.sse import SseDecoder
from pipeline.profiles import PROFILES, Profile

DEEPSEEK = PROFILES["deepseek"]
VLLM = PROFILES["vllm"]
OLLAMA = PROFILES["ollama"]
DONE = b"data: [DONE]\n\n"
KEEP_ALIVE = b": keep-alive\n\n"


def chunk(
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    *,
    usage: dict[str, Any] | None = None,
    empty_choices: bool = False,
    cid: str = "a1",
    model: str = "deepseek-v4-pro",
) -> bytes:
    obj: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": 1767225600, "model": model}
    obj["choices"] = (
        [] if empty_choices else [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}]
    )
    if usage is not None:
        obj["usage"] = usage
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def call(index: int, *, id: str | None = None, name: str | None = None, args: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"index": index}
    fn: dict[str, Any] = {}
    if id is not None:
        out["id"] = id
        out["type"] = "function"
    if name is not None:
        fn["name"] = name
    if args is not None:
        fn["arguments"] = args
    if fn:
        out["function"] = fn
    return out


DS_USAGE = {
    "prompt_tokens": 5200,
    "completion_tokens": 180,
    "total_tokens": 5380,
    "prompt_cache_hit_tokens": 4096,
    "prompt_cache_miss_tokens": 1104,
    "prompt_tokens_details": {"cached_tokens": 1},
    "completion_tokens_details": {"reasoning_tokens": 120},
}
DS_USAGE_EVENT = Usage(input_tokens=5200, output_tokens=180, cached_input_tokens=4096, reasoning_tokens=120)

# DeepSeek: reasoning then text, usage on the finish chunk, keep-alives while queued.
REASONING_TEXT = b"".join([
    KEEP_ALIVE,
    KEEP_ALIVE,
    chunk({"role": "assistant", "content": None, "reasoning_content": ""}),
    chunk({"content": None, "reasoning_content": "The user wants"}),
    chunk({"content": None, "reasoning_content": " a greeting."}),
    chunk({"content": "Hello", "reasoning_content": None}),
    chunk({"content": ", wörld \u2028 ✓"}),
    chunk({"content": ""}, "stop", usage=DS_USAGE),
    DONE,
])

# DeepSeek: reasoning, text, one streamed tool call; usage on a separate `choices: []` chunk.
SINGLE_TOOL = b"".join([
    chunk({"role": "assistant", "content": "", "reasoning_content": None}),
    chunk({"reasoning_content": "Run the tests."}),
    chunk({"content": "Running"}),
    chunk({"tool_calls": [call(0, id="call_7f2a", name="shell_command", args="")]}),
    chunk({"tool_calls": [call(0, args='{"command":')]}),
    KEEP_ALIVE,
    chunk({"tool_calls": [call(0, args='"pytest -q"}')]}),
    chunk({}, "tool_calls"),
    chunk(empty_choices=True, usage={"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14,
                                     "prompt_tokens_details": {"cached_tokens": 8},
                                     "completion_tokens_details": {"reasoning_tokens": 2}}),
    DONE,
])

# Two calls interleaved by index; ids and names only on each call's first fragment.
PARALLEL = b"".join([
    chunk({"role": "assistant", "content": None}),
    chunk({"tool_calls": [call(0, id="call_a", name="read", args='{"pa')]}),
    chunk({"tool_calls": [call(1, id="call_b", name="grep", args='{"pat')]}),
    chunk({"tool_calls": [call(0, args='th":"x"}')]}),
    chunk({"tool_calls": [call(1, args='tern":"y"}')]}),
    chunk({"tool_calls": [call(2, id="call_c", name="ls", args="{}")]}),
    chunk({}, "tool_calls", usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}),
    DONE,
])

# Ollama: `reasoning` field, each call whole in its own chunk, no cache details, CRLF framing.
OLLAMA_STREAM = b"".join([
    chunk({"role": "assistant", "content": "", "reasoning": "hmm"}, model="qwen3").replace(b"\n", b"\r\n"),
    chunk({"tool_calls": [call(0, id="call_x1", name="f", args='{"a":1}')]}, model="qwen3"),
    chunk({"tool_calls": [call(1, id="call_x2", name="g", args='{"b":2}')]}, model="qwen3"),
    chunk({}, "tool_calls", model="qwen3"),
    chunk(empty_choices=True, usage={"prompt_tokens": 7, "completion_tokens": 9, "total_tokens": 16},
          model="qwen3"),
    DONE,
])

ERROR_CHUNK = b"".join([
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "par"}),
    b'data: {"error":{"message":"upstream overloaded","type":"server_error","code":"503"}}\n\n',
    chunk({"content": "ignored"}),
    DONE,
])

TRUNCATED = b"".join([
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "cut"}),
    chunk({"tool_calls": [call(0, id="call_t", name="f", args='{"x"')]}),
])

STREAMS = {
    "reasoning_text": (REASONING_TEXT, DEEPSEEK),
    "single_tool": (SINGLE_TOOL, DEEPSEEK),
    "parallel": (PARALLEL, DEEPSEEK),
    "ollama": (OLLAMA_STREAM, OLLAMA),
    "error_chunk": (ERROR_CHUNK, DEEPSEEK),
    "truncated": (TRUNCATED, DEEPSEEK),
}


def run(pieces: list[bytes], profile: Profile = DEEPSEEK, stop: tuple[str, ...] = ()) -> list[Event]:
    sse = SseDecoder()
    dec = ChatStreamDecoder(profile, stop=stop)
    events: list[Event] = []
    for piece in pieces:
        for frame in sse.feed(piece):
            events += dec.feed(frame)
    for frame in sse.close():
        events += dec.feed(frame)
    events += dec.finish()
    return events


def random_split(raw: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(raw)), k=min(len(raw) - 1, rng.randint(1, 40))))
    return [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]


def check_well_formed(events: list[Event]) -> None:
    """The neutral stream invariants (events.py)."""
    assert events, "no events"
    if isinstance(events[0], StreamError):
        assert len(events) == 1
        return
    assert isinstance(events[0], MessageStart)
    assert sum(isinstance(e, MessageStart) for e in events) == 1
    open_index: int | None = None
    next_index = 0
    for i, event in enumerate(events[1:], start=1):
        if isinstance(event, BlockStart):
            assert open_index is None, f"block {event.index} opened while {open_index} is open"
            assert event.index == next_index
            if event.block == "tool_call":
                assert event.call_id and event.name is not None
            open_index, next_index = event.index, next_index + 1
        elif isinstance(event, (TextDelta, ThinkingDelta, ToolArgsDelta, SignatureDelta)):
            assert event.index == open_index
            payload = event.text if isinstance(event, (TextDelta, ThinkingDelta)) else None
            assert payload != "", "empty delta"
        elif isinstance(event, BlockStop):
            assert event.index == open_index
            open_index = None
        elif isinstance(event, Usage):
            assert open_index is None
        elif isinstance(event, (MessageStop, StreamError)):
            assert i == len(events) - 1, "events after the end"
            if isinstance(event, MessageStop):
                assert open_index is None
