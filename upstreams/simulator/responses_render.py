"""The simulator's Responses mode, answer side: an ``Answer`` → Responses SSE events (or the
Response object for ``stream: false``), as ``SimConfig.responses_flavour`` streams them.

Every event has ``event:`` and ``data:`` lines and a ``sequence_number`` counting from 0; no
``[DONE]``. Reasoning is one ``reasoning`` item: ``response.reasoning_text.delta`` for
``deepseek`` and ``llamacpp`` (raw reasoning, ``content: [reasoning_text]``), summary deltas for
``openai``; its ``encrypted_content`` (this simulator's seal, when minted) is on the done item
only. Text is one ``message`` item; each call a ``function_call`` item, or a ``custom_tool_call``
(its raw ``input`` streamed) when the tool was offered as ``custom``. The terminal event is
``response.completed``, ``response.incomplete`` (``max_output_tokens``) or ``response.failed``
(an interrupted generation).
"""

from __future__ import annotations

from typing import Any

import msgspec

from upstreams.simulator.render import Answer, arg_pieces, text_pieces

_ENCODE = msgspec.json.Encoder()
_DECODE = msgspec.json.Decoder()
ERROR_EVENT = (b'event: error\ndata: {"type":"error","sequence_number":999999,"code":"server_error",'
               b'"message":"Simulated mid-stream failure","param":null}\n\n')
BAD_EVENT = b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",\n\n'


class ResponsesRenderer:
    """Encodes one answer; ``ids`` makes the item ids (the engine's seeded random)."""

    def __init__(self, *, response_id: str, created: int, model: str, flavour: str, custom: frozenset[str],
                 seal: Any, item_ids: list[str]) -> None:
        self.response_id = response_id
        self.created = created
        self.model = model
        self.flavour = flavour
        self.custom = custom
        self.seal = seal  # (item id, reasoning) -> encrypted_content, or None: none minted
        self._ids = iter(item_ids)
        self._seq = 0
        self._frames: list[bytes] = []

    def _emit(self, kind: str, **fields: Any) -> None:
        data = _ENCODE.encode({"type": kind, "sequence_number": self._seq, **fields})
        self._seq += 1
        self._frames.append(b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n")

    def _response(self, status: str, output: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {"id": self.response_id, "object": "response", "created_at": self.created, "status": status,
                "model": self.model, "output": output, "parallel_tool_calls": True, "tool_choice": "auto",
                "tools": [], "error": None, "incomplete_details": None, "usage": None, **extra}

    def items(self, answer: Answer, call_ids: list[str]) -> list[dict[str, Any]]:
        """The finished output items."""
        items: list[dict[str, Any]] = []
        if answer.reasoning:
            item_id = next(self._ids)
            item: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": [],
                                    "encrypted_content": self.seal(item_id, answer.reasoning) if self.seal else None,
                                    "status": "completed"}
            if self.flavour == "openai":
                item["summary"] = [{"type": "summary_text", "text": answer.reasoning}]
            else:
                item["content"] = [{"type": "reasoning_text", "text": answer.reasoning}]
            items.append(item)
        if answer.content:
            items.append({"id": next(self._ids), "type": "message", "role": "assistant", "status": "completed",
                          "content": [{"type": "output_text", "text": answer.content, "annotations": []}]})
        for call, call_id in zip(answer.calls, call_ids, strict=True):
            if call.name in self.custom:
                try:
                    raw = _DECODE.decode(call.arguments)["input"]
                except (msgspec.DecodeError, KeyError, TypeError):
                    raw = call.arguments  # cut by the budget: what there is
                items.append({"id": next(self._ids), "type": "custom_tool_call", "status": "completed",
                              "call_id": call_id, "name": call.name, "input": raw})
            else:
                items.append({"id": next(self._ids), "type": "function_call", "status": "completed",
                              "call_id": call_id, "name": call.name, "arguments": call.arguments})
        return items

    def stream(self, answer: Answer, call_ids: list[str], usage: dict[str, Any]) -> tuple[list[bytes], int]:
        """The SSE frames and the index of the terminal one."""
        items = self.items(answer, call_ids)
        self._emit("response.created", response=self._response("in_progress", []))
        self._emit("response.in_progress", response=self._response("in_progress", []))
        for n, item in enumerate(items):
            self._item(n, item)
        finish_at = len(self._frames)
        self._terminal(answer, items, usage)
        return self._frames, finish_at

    def body(self, answer: Answer, call_ids: list[str], usage: dict[str, Any]) -> bytes:
        items = self.items(answer, call_ids)
        status, extra = _status(answer, usage)
        return _ENCODE.encode(self._response(status, items, **extra))

    def _item(self, n: int, item: dict[str, Any]) -> None:
        kind, item_id = item["type"], item["id"]
        head = {**item, "status": "in_progress"}
        if kind == "reasoning":
            head.update(summary=[], encrypted_content=None)
            if "content" in head:
                head["content"] = []
        elif kind == "message":
            head["content"] = []
        elif kind == "function_call":
            head["arguments"] = ""
        elif kind == "custom_tool_call":
            head["input"] = ""
        self._emit("response.output_item.added", output_index=n, item=head)
        at = {"item_id": item_id, "output_index": n}
        if kind == "reasoning" and self.flavour == "openai":
            text = item["summary"][0]["text"]
            self._emit("response.reasoning_summary_part.added", **at, summary_index=0,
                       part={"type": "summary_text", "text": ""})
            for piece in text_pieces(text):
                self._emit("response.reasoning_summary_text.delta", **at, summary_index=0, delta=piece)
            self._emit("response.reasoning_summary_text.done", **at, summary_index=0, text=text)
            self._emit("response.reasoning_summary_part.done", **at, summary_index=0,
                       part={"type": "summary_text", "text": text})
        elif kind in ("reasoning", "message"):
            part = item["content"][0]
            prefix = "response.reasoning_text" if kind == "reasoning" else "response.output_text"
            empty = {**part, "text": ""}
            self._emit("response.content_part.added", **at, content_index=0, part=empty)
            extra: dict[str, Any] = {} if kind == "reasoning" else {"logprobs": []}
            for piece in text_pieces(part["text"]):
                self._emit(prefix + ".delta", **at, content_index=0, delta=piece, **extra)
            self._emit(prefix + ".done", **at, content_index=0, text=part["text"], **extra)
            self._emit("response.content_part.done", **at, content_index=0, part=part)
        elif kind == "function_call":
            for piece in arg_pieces(item["arguments"]):
                self._emit("response.function_call_arguments.delta", **at, delta=piece)
            self._emit("response.function_call_arguments.done", **at, name=item["name"],
                       arguments=item["arguments"])
        else:
            for piece in arg_pieces(item["input"]):
                self._emit("response.custom_tool_call_input.delta", **at, delta=piece)
            self._emit("response.custom_tool_call_input.done", **at, input=item["input"])
        self._emit("response.output_item.done", output_index=n, item=item)

    def _terminal(self, answer: Answer, items: list[dict[str, Any]], usage: dict[str, Any]) -> None:
        status, extra = _status(answer, usage)
        kind = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(status, "response.failed")
        self._emit(kind, response=self._response(status, items if status != "failed" else [], **extra))


def _status(answer: Answer, usage: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    use = responses_usage(usage)
    if answer.finish == "length":
        return "incomplete", {"incomplete_details": {"reason": "max_output_tokens"}, "usage": use}
    if answer.finish == "insufficient_system_resource":
        return "failed", {"error": {"code": "server_is_overloaded",
                                    "message": "generation interrupted: insufficient_system_resource"}}
    return "completed", {"usage": use}


def responses_usage(chat: dict[str, Any]) -> dict[str, Any]:
    """The Chat usage object in Responses' shape."""
    return {"input_tokens": chat["prompt_tokens"],
            "input_tokens_details": {"cached_tokens": chat["prompt_tokens_details"]["cached_tokens"]},
            "output_tokens": chat["completion_tokens"],
            "output_tokens_details": {"reasoning_tokens": chat["completion_tokens_details"]["reasoning_tokens"]},
            "total_tokens": chat["total_tokens"]}


__all__ = ["BAD_EVENT", "ERROR_EVENT", "ResponsesRenderer", "responses_usage"]
