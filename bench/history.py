"""Real-size request bodies: a captured Claude Code / Codex request grown to a long session.

Each added turn is what the client sends back after one tool call on a thinking model: an
assistant turn carrying its reasoning (Claude Code: a ``thinking`` block with its signature; Codex:
a ``reasoning`` item with ``encrypted_content``), the tool call (a file read) and its result (the
file, tens of KB). Every signature / ``encrypted_content`` is a reasoning envelope sealed with
the real ``stages.thinking_filter.envelope`` key of the bench gateway's secret and upstream, so the gateway opens it and
replays the reasoning (``replay_rung`` ``envelope``); the capture's own scripted signature is
replaced the same way. Content is this repository's own source (tool results) and README prose
(reasoning), so the bodies are reproducible from a clone. ``reasoning_by_call`` says which
reasoning each tool call must carry upstream, to check the replay byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.thinking_filter.envelope import Envelope, Keyring
from tests.captures import capture_body

REPO = Path(__file__).resolve().parents[1]
CAPTURE = {"messages": "claude-thinking-tool-2.json", "responses": "codex-thinking-tool-2.json"}
THINKING_SECRET = "bench-secret"  # the bench gateway's GATEWAY_THINKING_SECRET (set by procs.Gateway)
UPSTREAM_ID = "fake"  # the upstream's id in bench/pipelines.yaml
UPSTREAM_MODEL = "deepseek-v4-flash"  # the model the fake upstream reports
RESULT_SIZES = (18_000, 26_000, 34_000, 42_000)  # tool result bytes, in turn (tens of KB)
REASONING_SIZES = (900, 1_600, 2_400)  # reasoning characters per assistant turn


@dataclass(frozen=True)
class Body:
    path: str
    data: bytes  # the request body, compact JSON
    turns: int  # assistant tool turns in the history (the capture's own included)
    reasoning_by_call: dict[str, str]  # tool call id -> the reasoning its assistant turn must replay


class _Corpus:
    """Deterministic text drawn round-robin from a fixed list of repository files."""

    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def take(self, n: int) -> str:
        out: list[str] = []
        while n > 0:
            piece = self.text[self.pos:self.pos + n]
            out.append(piece)
            n -= len(piece)
            self.pos = (self.pos + len(piece)) % len(self.text)
        return "".join(out)


def _sources() -> list[Path]:
    return sorted(p for d in ("pipeline", "stages", "upstreams") for p in (REPO / d).rglob("*.py"))


def _ident(prefix: str, *parts: object) -> str:
    return prefix + hashlib.sha256(repr(parts).encode()).hexdigest()[:24]


_KEY = Keyring(THINKING_SECRET.encode()).upstream(UPSTREAM_ID)  # the bench gateway's key for its upstream


def _sealed(text: str, call_id: str) -> str:
    return _KEY.seal(Envelope(u=UPSTREAM_ID, m=UPSTREAM_MODEL, r=text, t=(call_id,)))


class _Grower:
    def __init__(self) -> None:
        files = _sources()
        self.files = [str(p.relative_to(REPO)) for p in files]
        self.code = _Corpus("".join(p.read_text() for p in files))
        self.prose = _Corpus((REPO / "README.md").read_text())

    def reasoning(self, turn: int) -> str:
        return self.prose.take(REASONING_SIZES[turn % len(REASONING_SIZES)])

    def file_text(self, turn: int, size: int | None = None) -> str:
        text = self.code.take(size or RESULT_SIZES[turn % len(RESULT_SIZES)])
        return "".join(f"{i:>6}\t{line}\n" for i, line in enumerate(text.splitlines(), 1))  # like `cat -n`

    def file_name(self, turn: int) -> str:
        return self.files[turn % len(self.files)]


def _claude_turn(g: _Grower, turn: int, reasoning: dict[str, str], size: int | None) -> list[dict[str, Any]]:
    call_id = _ident("toolu_", "claude", turn)
    text = g.reasoning(turn)
    reasoning[call_id] = text
    path = f"$TMPDIR/ws/{g.file_name(turn)}"
    return [
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": text, "signature": _sealed(text, call_id)},
            {"type": "text", "text": f"Reading {g.file_name(turn)} next."},
            {"type": "tool_use", "id": call_id, "name": "Read", "input": {"file_path": path}}]},
        {"role": "user", "content": [
            {"tool_use_id": call_id, "type": "tool_result", "content": g.file_text(turn, size)}]},
    ]


def _codex_turn(g: _Grower, turn: int, reasoning: dict[str, str], size: int | None) -> list[dict[str, Any]]:
    call_id = _ident("call_", "codex", turn)
    text = g.reasoning(turn)
    reasoning[call_id] = text
    cmd = f"sed -n '1,2000p' {g.file_name(turn)}"
    output = g.file_text(turn, size)
    return [
        {"type": "reasoning", "id": _ident("rs_", turn), "summary": [{"type": "summary_text", "text": text}],
         "content": None, "encrypted_content": _sealed(text, call_id)},
        {"type": "function_call", "status": "completed", "id": _ident("fc_", turn), "name": "exec_command",
         "arguments": json.dumps({"cmd": cmd}), "call_id": call_id},
        {"type": "function_call_output", "id": _ident("fco_", turn), "call_id": call_id,
         "output": f"Chunk ID: {turn:06x}\nWall time: 0.0011 seconds\nProcess exited with code 0\n"
                   f"Original token count: {len(output) // 4}\nOutput:\n{output}"},
    ]


def _seal_capture(path: str, items: list[dict[str, Any]], reasoning: dict[str, str]) -> None:
    """The capture's own reasoning turn, its scripted signature replaced by a sealed envelope."""
    if path == "messages":
        for message in items:
            if message["role"] != "assistant":
                continue
            call = next(b["id"] for b in message["content"] if b["type"] == "tool_use")
            for block in message["content"]:
                if block["type"] == "thinking":
                    block["signature"] = _sealed(block["thinking"], call)
                    reasoning[call] = block["thinking"]
        return
    for i, item in enumerate(items):
        if item.get("type") == "reasoning":
            call = next(x["call_id"] for x in items[i:] if x.get("type") == "function_call")
            text = "\n\n".join(s["text"] for s in item["summary"])
            item["encrypted_content"] = _sealed(text, call)
            reasoning[call] = text


def _encode(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def grow(path: str, target_bytes: int, model: str, *, then: int | None = None,
         then_bodies: list[Body] | None = None) -> Body:
    """The capture for ``path`` (``messages`` or ``responses``) with tool turns appended until the
    body is at least ``target_bytes`` (0: the capture alone, its envelope sealed); with ``then``,
    that many more turns, the body before each added to ``then_bodies`` (``session``)."""
    data = capture_body(CAPTURE[path])
    data["model"], data["stream"] = model, True
    key = "messages" if path == "messages" else "input"
    items: list[dict[str, Any]] = data[key]
    reasoning: dict[str, str] = {}
    _seal_capture(path, items, reasoning)
    turns = len(reasoning)
    grower, make = _Grower(), (_claude_turn if path == "messages" else _codex_turn)
    size = len(_encode(data))
    while size < target_bytes:
        left = target_bytes - size
        result = None if left > RESULT_SIZES[turns % len(RESULT_SIZES)] + 8_000 else max(2_000, left - 4_000)
        added = make(grower, turns, reasoning, result)  # the last turn's result sized to end near the target
        items.extend(added)
        size += sum(len(_encode(x)) + 1 for x in added)  # + the comma before each
        turns += 1
    if then is not None and then_bodies is not None:
        for _ in range(then):
            then_bodies.append(Body(path, _encode(data), turns, dict(reasoning)))
            items.extend(make(grower, turns, reasoning, None))
            turns += 1
    return Body(path, _encode(data), turns, reasoning)


def session(path: str, target_bytes: int, model: str, turns: int) -> list[Body]:
    """One session's ``turns`` requests from ``target_bytes`` on: each repeats the one before byte
    for byte (the same envelopes) and adds one tool turn (a reasoning turn, a file read, its result)."""
    bodies: list[Body] = []
    last = grow(path, target_bytes, model, then=turns - 1, then_bodies=bodies)
    return [*bodies, last]


__all__ = ["THINKING_SECRET", "Body", "grow", "session"]
