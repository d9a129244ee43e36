"""Client side: neutral events → ``chat.completion.chunk`` SSE frames, or one ``chat.completion`` body.

The chunk prefix (id, object, created, model) is encoded once per response; each delta then costs
one small msgspec encode. Reasoning goes out as ``reasoning_content`` (DeepSeek's name); the model
echoed is the client's own name (``request.model``). Facts: ../shared/PROTOCOLS.md §3.2, §3.4, §5.5.
"""

from __future__ import annotations

import time
from typing import Any

from pipeline.assemble import Completion, Text, Thinking, ToolCall
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
from pipeline.protocols.base import FoldCollector
from pipeline.protocols.chat.client_decode_echo import NO_ECHO, ChatEcho
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
    """Neutral events → ``chat.completion.chunk`` frames for one response (``StreamEncoder``).

    ``echo`` is what the decoder saw (``ChatEcho``: whether a usage chunk ends the stream);
    ``prompt_estimate`` is not used (Chat reports input tokens with the upstream's usage only).
    """

    def __init__(self, request: ChatRequest, echo: ChatEcho = NO_ECHO, *, prompt_estimate: int | None = None) -> None:
        self._model = ENCODER.encode(request.model)
        self._created = str(int(time.time())).encode()
        self._include_usage = echo.include_usage
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


class ChatCompletionCollector(FoldCollector[ChatEcho]):
    """Neutral events → one ``chat.completion`` body (``Collector``): the shared fold, then
    ``render_completion``."""

    __slots__ = ("_created",)

    def __init__(self, request: ChatRequest, echo: ChatEcho = NO_ECHO, *, prompt_estimate: int | None = None) -> None:
        super().__init__(request, echo, prompt_estimate=prompt_estimate)
        self._created = int(time.time())

    def render(self, completion: Completion) -> bytes:
        return render_completion(completion, model=self._request.model, created=self._created)


def render_completion(completion: Completion, *, model: str, created: int) -> bytes:
    """A completion as one ``chat.completion``: Chat has one content string and one reasoning
    string, so the text blocks and the thinking blocks are each joined in order (``content`` is
    null for a tool-only answer; ``reasoning_content`` is there when the answer had thinking);
    tool calls in order with their arguments as written. A thinking signature has no place in
    Chat (the Chat pipeline seals no envelope)."""
    text = "".join(b.text for b in completion.blocks if isinstance(b, Text))
    thinking = [b.text for b in completion.blocks if isinstance(b, Thinking)]
    calls = [b for b in completion.blocks if isinstance(b, ToolCall)]
    message: dict[str, Any] = {"role": "assistant", "content": None if calls and not text else text, "refusal": None}
    if thinking:
        message["reasoning_content"] = "".join(thinking)
    if calls:
        message["tool_calls"] = [
            {"id": c.call_id or "", "type": "function", "function": {"name": c.name or "", "arguments": c.arguments}}
            for c in calls
        ]
    body: dict[str, Any] = {
        "id": completion.message_id or new_completion_id(),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": FINISH_REASONS.get(completion.stop_reason or "end_turn", "stop"),
            }
        ],
    }
    if completion.usage is not None:
        body["usage"] = usage_object(completion.usage)
    return ENCODER.encode(body)


__all__ = [
    "DONE_FRAME",
    "FINISH_REASONS",
    "KEEP_ALIVE_FRAME",
    "ChatChunkEncoder",
    "ChatCompletionCollector",
    "error_frame",
    "render_completion",
    "usage_object",
]
