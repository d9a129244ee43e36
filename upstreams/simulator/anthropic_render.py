"""DeepSeek's Anthropic endpoint: an ``Answer`` → Messages SSE frames or one Messages body.

The stream is Anthropic's: ``message_start``, ``ping``, then a ``thinking`` block (thinking on:
``thinking_delta``s, then one ``signature_delta`` with the signature this endpoint mints for the
text; with ``redacted`` data, the real API's ``redacted_thinking`` block after it, whole in its
``content_block_start``), a ``text`` block, one ``tool_use`` block per call (``input_json_delta`` fragments), then
``message_delta`` (stop reason, cumulative usage) and ``message_stop``. An overloaded answer ends
with an ``error`` event instead of its stop.
"""

from __future__ import annotations

from typing import Any

import msgspec

from upstreams.simulator.render import Answer, arg_pieces, text_pieces

_ENCODE = msgspec.json.Encoder()
_STOP = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}
# The ``badchunk`` and ``error_chunk`` faults' frames in this protocol.
BAD_EVENT = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,\n\n'
ERROR_EVENT = (b'event: error\ndata: {"type":"error","error":{"type":"api_error",'
               b'"message":"Simulated mid-stream failure"}}\n\n')


def frame(kind: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + _ENCODE.encode({"type": kind, **payload}) + b"\n\n"


class MessagesRenderer:
    """Encodes one answer of ``model`` as message ``message_id``."""

    def __init__(self, *, message_id: str, model: str, thinking: bool, signature: str,
                 prompt_tokens: int, cached: int, redacted: str | None = None) -> None:
        self.message_id = message_id
        self.model = model
        self.thinking = thinking
        self.signature = signature
        self.redacted = redacted if thinking else None
        self.usage_in = {"input_tokens": prompt_tokens - cached, "cache_read_input_tokens": cached,
                         "cache_creation_input_tokens": 0}

    def stream(self, answer: Answer, call_ids: list[str]) -> tuple[list[bytes], int]:
        """SSE frames and the index of the ``message_delta`` frame (where stream faults aim)."""
        frames = [frame("message_start", {"message": {
            "id": self.message_id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {**self.usage_in, "output_tokens": 0}}}),
            frame("ping", {})]
        index = 0
        if self.thinking:
            frames.append(frame("content_block_start", {"index": index, "content_block": {
                "type": "thinking", "thinking": "", "signature": ""}}))
            frames += [frame("content_block_delta", {"index": index, "delta": {
                "type": "thinking_delta", "thinking": p}}) for p in text_pieces(answer.reasoning)]
            frames.append(frame("content_block_delta", {"index": index, "delta": {
                "type": "signature_delta", "signature": self.signature}}))
            frames.append(frame("content_block_stop", {"index": index}))
            index += 1
        if self.redacted is not None:
            frames.append(frame("content_block_start", {"index": index, "content_block": {
                "type": "redacted_thinking", "data": self.redacted}}))
            frames.append(frame("content_block_stop", {"index": index}))
            index += 1
        if answer.content:
            frames.append(frame("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}}))
            frames += [frame("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": p}})
                       for p in text_pieces(answer.content)]
            frames.append(frame("content_block_stop", {"index": index}))
            index += 1
        for call, call_id in zip(answer.calls, call_ids, strict=True):
            frames.append(frame("content_block_start", {"index": index, "content_block": {
                "type": "tool_use", "id": call_id, "name": call.name, "input": {}}}))
            frames += [frame("content_block_delta", {"index": index, "delta": {
                "type": "input_json_delta", "partial_json": p}}) for p in arg_pieces(call.arguments)]
            frames.append(frame("content_block_stop", {"index": index}))
            index += 1
        finish_at = len(frames)
        if answer.finish == "insufficient_system_resource":
            frames.append(frame("error", {"error": {"type": "overloaded_error",
                                                    "message": "insufficient_system_resource"}}))
            return frames, finish_at
        frames.append(frame("message_delta", {"delta": {"stop_reason": _STOP.get(answer.finish, "end_turn"),
                                                        "stop_sequence": None},
                                              "usage": {"output_tokens": answer.completion_tokens}}))
        frames.append(frame("message_stop", {}))
        return frames, finish_at

    def body(self, answer: Answer, call_ids: list[str]) -> bytes:
        content: list[dict[str, Any]] = []
        if self.thinking:
            content.append({"type": "thinking", "thinking": answer.reasoning, "signature": self.signature})
        if self.redacted is not None:
            content.append({"type": "redacted_thinking", "data": self.redacted})
        if answer.content:
            content.append({"type": "text", "text": answer.content})
        for call, call_id in zip(answer.calls, call_ids, strict=True):
            try:
                args = msgspec.json.decode(call.arguments)
            except msgspec.DecodeError:
                args = {}
            content.append({"type": "tool_use", "id": call_id, "name": call.name, "input": args})
        return _ENCODE.encode({
            "id": self.message_id, "type": "message", "role": "assistant", "model": self.model, "content": content,
            "stop_reason": _STOP.get(answer.finish, "end_turn"), "stop_sequence": None,
            "usage": {**self.usage_in, "output_tokens": answer.completion_tokens}})


__all__ = ["BAD_EVENT", "ERROR_EVENT", "MessagesRenderer", "frame"]
