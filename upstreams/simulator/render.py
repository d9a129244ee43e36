"""Plan → DeepSeek wire bytes: the max_tokens budget, usage, SSE chunks and the JSON body.

Token counts are a deterministic estimate (``len(text) // 4 + 1`` per non-empty text). The
budget is spent in generation order (reasoning, content, tool calls), so a tiny ``max_tokens``
yields reasoning only and ``finish_reason: "length"`` (PROTOCOLS.md §4.4). Chunk shapes follow
§3.2/§3.3: reasoning chunks carry ``content: null``, content chunks the reasoning field as null.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from upstreams.simulator.directives import Plan, PlannedCall

_ENCODE = msgspec.json.Encoder()
_WORDS = re.compile(r"\s*\S+\s*|\s+")
DONE = b"data: [DONE]\n\n"


def tokens(text: str) -> int:
    return len(text) // 4 + 1 if text else 0


def _cut(text: str, budget: int) -> tuple[str, bool]:
    if tokens(text) <= budget:
        return text, False
    return (text[: budget * 4 - 1] if budget > 0 else ""), True


class Answer(msgspec.Struct, kw_only=True):
    """A plan after the budget: what is actually emitted, and how it finished."""

    reasoning: str
    content: str
    calls: list[PlannedCall]
    finish: str
    reasoning_tokens: int
    completion_tokens: int


def apply_budget(plan: Plan, budget: int, *, thinking: bool, overload: bool = False) -> Answer:
    """Spend ``budget`` tokens on reasoning, then content, then calls (each call: name + args)."""
    reasoning = plan.reasoning if thinking else ""
    content, calls = plan.content, list(plan.calls)
    if overload:  # inference interrupted: half the text, no calls (PROTOCOLS.md §4.7)
        content, calls = content[: len(content) // 2], []
    reasoning, cut = _cut(reasoning, budget)
    left = budget - tokens(reasoning)
    if cut:
        content, calls = "", []
    else:
        content, cut = _cut(content, left)
        left -= tokens(content)
    kept: list[PlannedCall] = []
    for call in [] if cut else calls:
        cost = tokens(call.arguments) + 1
        if cost <= left:
            kept.append(call)
            left -= cost
            continue
        cut = True
        if left > 1:
            args, _ = _cut(call.arguments, left - 1)
            kept.append(PlannedCall(call.name, args))
        break
    finish = ("insufficient_system_resource" if overload else "length" if cut else
              "tool_calls" if kept else "stop")
    used = tokens(reasoning) + tokens(content) + sum(tokens(c.arguments) + 1 for c in kept)
    return Answer(reasoning=reasoning, content=content, calls=kept, finish=finish,
                  reasoning_tokens=tokens(reasoning), completion_tokens=used)


def usage(prompt_tokens: int, cached: int, answer: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": prompt_tokens + answer.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": answer.reasoning_tokens},
        "prompt_cache_hit_tokens": cached,
        "prompt_cache_miss_tokens": prompt_tokens - cached,
    }


def text_pieces(text: str, words: int = 3) -> list[str]:
    found = _WORDS.findall(text)
    return ["".join(found[i:i + words]) for i in range(0, len(found), words)]


def arg_pieces(arguments: str) -> list[str]:
    """Split argument JSON into a few fragments at fixed offsets (even inside escapes)."""
    if len(arguments) < 4:
        return [arguments] if arguments else []
    n = max(2, min(6, len(arguments) // 12 + 1))
    size = -(-len(arguments) // n)
    return [arguments[i:i + size] for i in range(0, len(arguments), size)]


class Renderer:
    """Encodes one response; the envelope is built once and spliced into every chunk."""

    def __init__(self, *, completion_id: str, created: int, model: str, fingerprint: str,
                 reasoning_field: str, thinking: bool, include_usage: bool,
                 usage_on_finish: bool) -> None:
        self.completion_id = completion_id
        self.created = created
        self.model = model
        self.fingerprint = fingerprint
        self.field = reasoning_field
        self.thinking = thinking
        self.include_usage = include_usage
        self.usage_on_finish = usage_on_finish
        envelope = _ENCODE.encode({"id": completion_id, "object": "chat.completion.chunk",
                                   "created": created, "model": model,
                                   "system_fingerprint": fingerprint})
        self._head = b"data: " + envelope[:-1] + b',"choices":['
        self._tail = (b'],"usage":null}\n\n' if include_usage and not usage_on_finish
                      else b"]}\n\n")

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self._head + _ENCODE.encode(choice) + self._tail

    def _delta(self, *, content: str | None = None, reasoning: str | None = None) -> dict:
        if not self.thinking:
            return {"content": content}
        return {"content": content, self.field: reasoning}

    def stream(self, answer: Answer, call_ids: list[str], use: dict[str, Any],
               *, interleave: bool) -> tuple[list[bytes], int]:
        """SSE frames and the index of the finish chunk."""
        first = {"role": "assistant", **(self._delta(reasoning="") if self.thinking
                                          else {"content": ""})}
        frames = [self._chunk(first)]
        frames += [self._chunk(self._delta(reasoning=p)) for p in text_pieces(answer.reasoning)]
        frames += [self._chunk(self._delta(content=p)) for p in text_pieces(answer.content)]
        frames += [self._chunk({"tool_calls": [f]})
                   for f in self._call_fragments(answer.calls, call_ids, interleave)]
        finish_at = len(frames)
        finish_delta = self._delta(content="")
        if self.include_usage and self.usage_on_finish:
            choice = {"index": 0, "delta": finish_delta, "logprobs": None,
                      "finish_reason": answer.finish}
            frames.append(self._head + _ENCODE.encode(choice) + b'],"usage":'
                          + _ENCODE.encode(use) + b"}\n\n")
        else:
            frames.append(self._chunk(finish_delta, answer.finish))
        if self.include_usage and not self.usage_on_finish:
            frames.append(self._head + b'],"usage":' + _ENCODE.encode(use) + b"}\n\n")
        frames.append(DONE)
        return frames, finish_at

    @staticmethod
    def _call_fragments(calls: list[PlannedCall], ids: list[str],
                        interleave: bool) -> list[dict[str, Any]]:
        per_call: list[list[dict[str, Any]]] = []
        for index, (call, call_id) in enumerate(zip(calls, ids, strict=True)):
            head = {"index": index, "id": call_id, "type": "function",
                    "function": {"name": call.name, "arguments": ""}}
            per_call.append([head] + [{"index": index, "function": {"arguments": p}}
                                      for p in arg_pieces(call.arguments)])
        if not interleave:
            return [f for frags in per_call for f in frags]
        out: list[dict[str, Any]] = []
        for step in range(max((len(f) for f in per_call), default=0)):
            out += [frags[step] for frags in per_call if step < len(frags)]
        return out

    def body(self, answer: Answer, call_ids: list[str], use: dict[str, Any]) -> bytes:
        message: dict[str, Any] = {"role": "assistant",
                                   "content": answer.content or (None if answer.calls else "")}
        if self.thinking:
            message[self.field] = answer.reasoning
        if answer.calls:
            message["tool_calls"] = [
                {"id": call_id, "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments}}
                for c, call_id in zip(answer.calls, call_ids, strict=True)
            ]
        return _ENCODE.encode({
            "id": self.completion_id, "object": "chat.completion", "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": answer.finish}],
            "usage": use, "system_fingerprint": self.fingerprint,
        })


__all__ = ["DONE", "Answer", "Renderer", "apply_budget", "arg_pieces", "text_pieces", "tokens",
           "usage"]
