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

What changes from one request to the next is what the real clients change (the captures'
``*-thinking-tool-1`` / ``-2`` pairs): Claude Code puts its one moving cache breakpoint,
``cache_control: {"type": "ephemeral"}``, on the last block of the last message, so each turn the
previous last message (a tool result) loses it and the new one gets it (``_move_mark``): that
message's bytes differ from the request before, as with the real client. Codex changes nothing
but the items it appends (``prompt_cache_key``, ``client_metadata`` and its ``turn_id`` stay the
same for the tool calls of one turn). Below the capture's own size (~40-50 KB) a body is the
capture cut down (``_cut``): only the tools its history calls, its longest prose shortened.
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
MARK = "cache_control"  # Claude Code's moving cache breakpoint: on the last message's last block
TURN_TOOL = {"messages": "Read", "responses": "exec_command"}  # the tool the added turns call


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

    def reasoning(self, turn: int, chars: int | None = None) -> str:
        return self.prose.take(chars or REASONING_SIZES[turn % len(REASONING_SIZES)])

    def file_text(self, turn: int, size: int | None = None) -> str:
        text = self.code.take(size or RESULT_SIZES[turn % len(RESULT_SIZES)])
        return "".join(f"{i:>6}\t{line}\n" for i, line in enumerate(text.splitlines(), 1))  # like `cat -n`

    def file_name(self, turn: int) -> str:
        return self.files[turn % len(self.files)]


def turn_sizes(turn_bytes: int | None) -> tuple[int | None, int | None]:
    """(reasoning characters, tool result source characters) of a turn of about ``turn_bytes``
    (None: the natural sizes, ``REASONING_SIZES`` and ``RESULT_SIZES`` in turn). The result's
    numbering and JSON escapes add ~25 % to its characters; the reasoning is sent twice (its text
    and its sealed envelope, ~1.4x) beside ~450 bytes of blocks and ids."""
    if turn_bytes is None:
        return None, None
    chars = max(80, min(REASONING_SIZES[0], turn_bytes // 12))
    return chars, max(200, int((turn_bytes - 2.4 * chars - 450) / 1.25))


def _claude_turn(g: _Grower, turn: int, reasoning: dict[str, str], size: int | None,
                 chars: int | None = None) -> list[dict[str, Any]]:
    call_id = _ident("toolu_", "claude", turn)
    text = g.reasoning(turn, chars)
    reasoning[call_id] = text
    path = f"$TMPDIR/ws/{g.file_name(turn)}"
    return [
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": text, "signature": _sealed(text, call_id)},
            {"type": "text", "text": f"Reading {g.file_name(turn)} next."},
            {"type": "tool_use", "id": call_id, "name": "Read", "input": {"file_path": path}}]},
        {"role": "user", "content": [  # the last message: the cache breakpoint (``_move_mark``)
            {"tool_use_id": call_id, "type": "tool_result", "content": g.file_text(turn, size), "is_error": False,
             MARK: {"type": "ephemeral"}}]},
    ]


def _codex_turn(g: _Grower, turn: int, reasoning: dict[str, str], size: int | None,
                chars: int | None = None) -> list[dict[str, Any]]:
    call_id = _ident("call_", "codex", turn)
    text = g.reasoning(turn, chars)
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


_MARK_BYTES = len(',"cache_control":{"type":"ephemeral"}')


def _move_mark(path: str, items: list[dict[str, Any]]) -> int:
    """Before a turn is appended: the last message's last block loses Claude Code's cache
    breakpoint (the appended turn carries the new one). Returns the bytes that removed."""
    if path != "messages" or not items or not isinstance(items[-1]["content"], list):
        return 0
    return _MARK_BYTES if items[-1]["content"][-1].pop(MARK, None) is not None else 0


def _prose(node: Any, parent: dict[str, Any] | None = None) -> Any:
    """(holder, key) of every prose string of a request that may be shortened: system and
    instruction texts, messages' text, tool descriptions; never reasoning, tool calls or results."""
    if isinstance(node, list):
        for x in node:
            yield from _prose(x, parent)
    elif isinstance(node, dict):
        if node.get("type") in ("thinking", "summary_text", "tool_use", "tool_result", "reasoning",
                                "function_call", "function_call_output"):
            return
        for key, value in node.items():
            if isinstance(value, str) and (key in ("text", "description") or (key == "content" and "role" in node)):
                yield node, key
            elif isinstance(value, (list, dict)):
                yield from _prose(value, node)


def _cut(path: str, data: dict[str, Any], target: int) -> None:
    """The capture cut down to about ``target`` bytes (when it is larger): the tools neither its
    history nor the added turns call dropped, largest first, while the body stays above
    ``target``; then its longest prose shortened, one string at a time."""
    size = len(_encode(data))
    key = "messages" if path == "messages" else "input"
    text = json.dumps(data[key])
    called = {TURN_TOOL[path], *(str(t.get("name")) for t in data.get("tools", []) if f'"{t.get("name")}"' in text)}
    for tool in sorted(data.get("tools", []), key=lambda t: -len(_encode(t))):
        if tool.get("name") not in called and size - len(_encode(tool)) - 1 >= target:
            data["tools"].remove(tool)
            size -= len(_encode(tool)) + 1
    while (size := len(_encode(data))) > target:
        holder, name = max(_prose(data), key=lambda hk: len(hk[0][hk[1]]))
        value = holder[name]
        if len(value) <= 64:
            return  # as small as it gets
        holder[name] = value[:max(64, len(value) - (size - target))]


def grow(path: str, target_bytes: int, model: str, *, then: int | None = None,
         then_bodies: list[Body] | None = None, turn_bytes: int | None = None) -> Body:
    """The capture for ``path`` (``messages`` or ``responses``) with tool turns appended until the
    body is at least ``target_bytes`` (0: the capture alone, its envelope sealed; below the
    capture's size: the capture cut down, ``_cut``); with ``then``, that many more turns of about
    ``turn_bytes`` each (None: the natural sizes), the body before each added to ``then_bodies``
    (``session``)."""
    data = capture_body(CAPTURE[path])
    data["model"], data["stream"] = model, True
    key = "messages" if path == "messages" else "input"
    items: list[dict[str, Any]] = data[key]
    reasoning: dict[str, str] = {}
    _seal_capture(path, items, reasoning)
    turns = len(reasoning)
    grower, make = _Grower(), (_claude_turn if path == "messages" else _codex_turn)
    size = len(_encode(data))
    if size > target_bytes > 0:
        _cut(path, data, target_bytes)  # and no turn added
    while size < target_bytes:
        left = target_bytes - size
        result = None if left > RESULT_SIZES[turns % len(RESULT_SIZES)] + 8_000 else max(2_000, left - 4_000)
        size -= _move_mark(path, items)
        added = make(grower, turns, reasoning, result)  # the last turn's result sized to end near the target
        items.extend(added)
        size += sum(len(_encode(x)) + 1 for x in added)  # + the comma before each
        turns += 1
    if then is not None and then_bodies is not None:
        chars, result = turn_sizes(turn_bytes)
        for _ in range(then):
            then_bodies.append(Body(path, _encode(data), turns, dict(reasoning)))
            _move_mark(path, items)
            items.extend(make(grower, turns, reasoning, result, chars))
            turns += 1
    return Body(path, _encode(data), turns, reasoning)


def session(path: str, target_bytes: int, model: str, turns: int, turn_bytes: int | None = None) -> list[Body]:
    """One session's ``turns`` requests from ``target_bytes`` on: each repeats the one before byte
    for byte (the same envelopes) but for the cache breakpoint Claude Code moves (``_move_mark``)
    and adds one tool turn (a reasoning turn, a file read, its result) of about ``turn_bytes``
    (None: the natural sizes, 20-45 KB)."""
    bodies: list[Body] = []
    last = grow(path, target_bytes, model, then=turns - 1, then_bodies=bodies, turn_bytes=turn_bytes)
    return [*bodies, last]


__all__ = ["THINKING_SECRET", "Body", "grow", "session", "turn_sizes"]
