"""Client side: neutral events → ``chat.completion.chunk`` SSE frames, or one ``chat.completion`` body.

The chunk prefix (id, object, created, model) is encoded once per response; each delta then costs
one small msgspec encode. Reasoning goes out as ``reasoning_content`` (DeepSeek's name); the model
echoed is the client's own name (``request.model``). Facts: ../shared/PROTOCOLS.md §3.2, §3.4, §5.5.
"""

from __future__ import annotations

import time
from typing import Any

from pipeline.errors import GatewayError, UpstreamError
from pipeline.events import (
    BlockStart,
    ErrorInfo,
    Event,
    Heartbeat,
    MessageStart,
    MessageStop,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    Usage,
)
from pipeline.model import ChatRequest
from pipeline.protocols.chat.errors import openai_error
from pipeline.protocols.chat.helpers import new_completion_id
from pipeline.protocols.chat.models import ENCODER

FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

DONE_FRAME = b"data: [DONE]\n\n"
KEEP_ALIVE_FRAME = b": keep-alive\n\n"
_TAIL = b',"logprobs":null,"finish_reason":null}]}\n\n'


def usage_object(usage: Usage) -> dict[str, Any]:
    """OpenAI ``CompletionUsage`` for neutral usage (input already includes cached tokens)."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def error_frame(info: ErrorInfo) -> bytes:
    """The in-stream error chunk openai-python turns into ``APIError``."""
    return b"data: " + ENCODER.encode(openai_error(info)) + b"\n\n"


class ChatChunkEncoder:
    """Neutral events → ``chat.completion.chunk`` frames for one response (``StreamEncoder``)."""

    def __init__(self, request: ChatRequest) -> None:
        self._model = ENCODER.encode(request.model)
        self._created = str(int(time.time())).encode()
        self._include_usage = bool(request.client_extras.get("include_usage"))
        self._prefix = b""
        self._head = b""
        self._tools: dict[int, bytes] = {}  # neutral block index → chat tool index (as bytes)
        self._usage: Usage | None = None
        self._done = False

    def _start(self, message_id: str) -> None:
        self._prefix = (
            b'{"id":' + ENCODER.encode(message_id) + b',"object":"chat.completion.chunk","created":'
            + self._created + b',"model":' + self._model
        )
        self._head = b"data: " + self._prefix + b',"choices":[{"index":0,"delta":'

    def feed(self, event: Event) -> list[bytes]:
        if self._done:
            return []
        if not self._head and not isinstance(event, (MessageStart, StreamError, Heartbeat)):
            self._start(new_completion_id())  # tolerate a missing MessageStart
        if isinstance(event, TextDelta):
            return [self._head + b'{"content":' + ENCODER.encode(event.text) + b"}" + _TAIL]
        if isinstance(event, ThinkingDelta):
            return [self._head + b'{"reasoning_content":' + ENCODER.encode(event.text) + b"}" + _TAIL]
        if isinstance(event, ToolArgsDelta):
            tool = self._tools.get(event.index)
            if tool is None:
                return []
            return [
                self._head + b'{"tool_calls":[{"index":' + tool + b',"function":{"arguments":'
                + ENCODER.encode(event.fragment) + b"}}]}" + _TAIL
            ]
        if isinstance(event, BlockStart):
            if event.block != "tool_call":
                return []
            tool = str(len(self._tools)).encode()
            self._tools[event.index] = tool
            return [
                self._head + b'{"tool_calls":[{"index":' + tool + b',"id":' + ENCODER.encode(event.call_id or "")
                + b',"type":"function","function":{"name":' + ENCODER.encode(event.name or "")
                + b',"arguments":""}}]}' + _TAIL
            ]
        if isinstance(event, MessageStart):
            if not self._head:
                self._start(event.message_id)
            return [self._head + b'{"role":"assistant","content":""}' + _TAIL]
        if isinstance(event, Usage):
            self._usage = event
            return []
        if isinstance(event, MessageStop):
            return self._finish(event)
        if isinstance(event, StreamError):
            return self.error(event.error)
        if isinstance(event, Heartbeat):
            return [KEEP_ALIVE_FRAME]
        return []  # BlockStop, SignatureDelta, and anything newer: nothing to say in Chat

    def _finish(self, event: MessageStop) -> list[bytes]:
        reason = FINISH_REASONS.get(event.stop_reason, "stop").encode()
        finish = self._head + b'{},"logprobs":null,"finish_reason":"' + reason + b'"}]'
        usage = ENCODER.encode(usage_object(self._usage)) if self._usage is not None else None
        if usage is None:
            return [finish + b"}\n\n"]
        if not self._include_usage:
            return [finish + b',"usage":' + usage + b"}\n\n"]
        return [finish + b"}\n\n", b"data: " + self._prefix + b',"choices":[],"usage":' + usage + b"}\n\n"]

    def error(self, info: ErrorInfo) -> list[bytes]:
        if self._done:
            return []
        self._done = True
        return [error_frame(info), DONE_FRAME]

    def close(self) -> list[bytes]:
        if self._done:
            return []
        self._done = True
        return [DONE_FRAME]


class ChatCompletionCollector:
    """Neutral events → one ``chat.completion`` body (``Collector``).

    ``body()`` raises the ``GatewayError`` for a stream that ended in a ``StreamError`` (or never
    reached ``MessageStop``) so the caller renders a proper HTTP error instead.
    """

    def __init__(self, request: ChatRequest) -> None:
        self._model = request.model
        self._created = int(time.time())
        self._id: str | None = None
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, tuple[str, str, list[str]]] = {}
        self._usage: Usage | None = None
        self._stop: MessageStop | None = None
        self.error: ErrorInfo | None = None

    def feed(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            self._text.append(event.text)
        elif isinstance(event, ThinkingDelta):
            self._reasoning.append(event.text)
        elif isinstance(event, ToolArgsDelta):
            call = self._calls.get(event.index)
            if call is not None:
                call[2].append(event.fragment)
        elif isinstance(event, BlockStart):
            if event.block == "tool_call":
                self._calls[event.index] = (event.call_id or "", event.name or "", [])
        elif isinstance(event, MessageStart):
            self._id = event.message_id
        elif isinstance(event, Usage):
            self._usage = event
        elif isinstance(event, MessageStop):
            self._stop = event
        elif isinstance(event, StreamError):
            self.error = event.error

    def body(self) -> bytes:
        if self.error is not None:
            raise GatewayError.from_info(self.error)
        if self._stop is None:
            raise UpstreamError("upstream ended without a complete response", code="bad_gateway")
        message: dict[str, Any] = {"role": "assistant"}
        text = "".join(self._text)
        message["content"] = None if self._calls and not text else text
        message["refusal"] = None
        if self._reasoning:
            message["reasoning_content"] = "".join(self._reasoning)
        if self._calls:
            message["tool_calls"] = [
                {"id": cid, "type": "function", "function": {"name": name, "arguments": "".join(args)}}
                for cid, name, args in self._calls.values()
            ]
        body: dict[str, Any] = {
            "id": self._id or new_completion_id(),
            "object": "chat.completion",
            "created": self._created,
            "model": self._model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": FINISH_REASONS.get(self._stop.stop_reason, "stop"),
                }
            ],
        }
        if self._usage is not None:
            body["usage"] = usage_object(self._usage)
        return ENCODER.encode(body)


__all__ = [
    "DONE_FRAME",
    "FINISH_REASONS",
    "KEEP_ALIVE_FRAME",
    "ChatChunkEncoder",
    "ChatCompletionCollector",
    "error_frame",
    "usage_object",
]
