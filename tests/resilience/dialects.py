"""Raw-HTTP drivers for the three client dialects: ``call`` posts one request with httpx and folds
the answer into a ``Reply`` (status, the dialect's error object, answer text, proper end or not).
Also ``ScriptedServer`` (HTTP answers a test scripts, on a real socket), a free port with nothing
listening, and helpers to wait for the ``request_finished`` log line."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import trio

from pipeline.sse import SseDecoder
from upstreams.simulator import SimConfig, SimResponse, SimulatorApp, serve_simulator

DIALECTS = ("anthropic", "responses", "chat")
PATHS = {"anthropic": "/v1/messages", "responses": "/v1/responses", "chat": "/v1/chat/completions"}
SHIPPED_STAGES = {
    "anthropic": "[thinking_filter, token_budget, tool_ids, structured_output]",
    "responses": "[thinking_filter, token_budget, tool_ids, structured_output]",
    "chat": "[token_budget, tool_ids, structured_output]",
}
# A shell tool as each client offers it (the simulator's ``SIM:shell``/``SIM:parallel`` call it).
BASH = {"anthropic": {"name": "Bash", "description": "Run a shell command", "input_schema": {
            "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}},
        "responses": {"type": "function", "name": "Bash", "description": "Run a shell command", "strict": False,
                      "parameters": {"type": "object", "properties": {"command": {"type": "string"}},
                                     "required": ["command"]}},
        "chat": {"type": "function", "function": {"name": "Bash", "parameters": {
            "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}}


def request_body(dialect: str, prompt: str, *, stream: bool = True) -> dict[str, Any]:
    if dialect == "anthropic":
        return {"model": "claude-opus-5-5", "max_tokens": 2048, "stream": stream,
                "messages": [{"role": "user", "content": prompt}]}
    if dialect == "responses":
        return {"model": "gpt-5.5", "stream": stream, "store": False,
                "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]}]}
    return {"model": "deepseek-v4-pro", "stream": stream, "messages": [{"role": "user", "content": prompt}]}


def auth_headers(dialect: str, key: str | None) -> dict[str, str]:
    headers = {"anthropic-version": "2023-06-01"} if dialect == "anthropic" else {}
    if key is not None:
        headers["x-api-key" if dialect == "anthropic" else "authorization"] = (
            key if dialect == "anthropic" else f"Bearer {key}")
    return headers


@dataclass
class Reply:
    """One answer, folded. ``error`` is the dialect's error object (``{"type", "message"}`` for
    Anthropic, ``{"code", "message", ...}`` for the OpenAI dialects); ``in_stream`` says whether
    it came after a 200."""

    status: int
    headers: httpx.Headers
    text: str = ""
    complete: bool = False
    error: dict[str, Any] | None = None
    in_stream: bool = False
    raw: bytes = b""
    events: list[tuple[str | None, Any]] = field(default_factory=list)

    @property
    def error_kind(self) -> str | None:
        """Anthropic ``error.type``; Responses/Chat ``error.code`` (else its ``type``)."""
        if self.error is None:
            return None
        return self.error.get("code") or self.error.get("type")


def fold(dialect: str, status: int, headers: httpx.Headers, raw: bytes) -> Reply:
    reply = Reply(status=status, headers=headers, raw=raw)
    if status != 200:
        body = msgspec.json.decode(raw)
        reply.error = body["error"]
        return reply
    decoder = SseDecoder()
    frames = decoder.feed(raw) + decoder.close()
    for frame in frames:
        if frame.data.strip() == b"[DONE]":
            reply.events.append((frame.event, "[DONE]"))
            continue
        data = msgspec.json.decode(frame.data)
        reply.events.append((frame.event, data))
        _fold_event(dialect, frame.event, data, reply)
    return reply


def _fold_event(dialect: str, event: str | None, data: Any, reply: Reply) -> None:
    if dialect == "anthropic":
        if event == "error":
            reply.error, reply.in_stream = data["error"], True
        elif event == "content_block_delta" and data["delta"]["type"] == "text_delta":
            reply.text += data["delta"]["text"]
        elif event == "message_stop":
            reply.complete = True
    elif dialect == "responses":
        kind = data.get("type")
        if kind == "response.output_text.delta":
            reply.text += data["delta"]
        elif kind == "response.completed":
            reply.complete = True
        elif kind == "response.failed":
            reply.error, reply.in_stream = data["response"]["error"], True
    else:
        if "error" in data:
            reply.error, reply.in_stream = data["error"], True
            return
        for choice in data.get("choices") or ():
            reply.text += choice["delta"].get("content") or ""
            if choice.get("finish_reason"):
                reply.complete = True


async def call(http: httpx.AsyncClient, base: str, dialect: str, prompt: str, *, key: str | None = "k",
               stream: bool = True) -> Reply:
    """POST one request in ``dialect`` and read the whole answer."""
    response = await http.post(base + PATHS[dialect], json=request_body(dialect, prompt, stream=stream),
                               headers=auth_headers(dialect, key))
    if not stream and response.status_code == 200:
        return Reply(status=200, headers=response.headers, raw=response.content, complete=True,
                     events=[(None, response.json())])
    return fold(dialect, response.status_code, response.headers, response.content)


def closed_port() -> int:
    """A 127.0.0.1 port with nothing listening (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_STATUS = re.compile(r"STATUS:(\d{3})")
ECHOED = "Incorrect API key provided: {key}. You can find your API key at https://example.invalid."
UPSTREAM_MESSAGES = {
    401: "Authentication Fails, Your api key: ****{tail} is invalid",
    402: "Insufficient Balance",
    422: "Failed to deserialize the JSON body into the target type: temperature: invalid type",
}
_KINDS = {401: "authentication_error", 402: "unknown_error", 422: "invalid_request_error"}


class ScriptedServer:
    """An upstream on a real socket (``serve_simulator`` over this instead of a ``Simulator``, so the
    gateway's production transport carries it): chat request ``n`` (1-based) gets
    ``answer(n, key, body)``. ``seen_keys`` are the Bearer keys it was sent."""

    config = SimConfig()

    def __init__(self, answer: Callable[[int, str, bytes], SimResponse]) -> None:
        self.answer = answer
        self.chat_requests = 0
        self.seen_keys: list[str] = []

    def respond(self, method: str, path: str, headers: dict[str, str], body: bytes) -> SimResponse:
        self.chat_requests += 1
        key = headers.get("authorization", "")[7:]
        self.seen_keys.append(key)
        return self.answer(self.chat_requests, key, body)

    async def serve(self, nursery: trio.Nursery) -> str:
        """Start serving on 127.0.0.1; returns the base URL."""
        return await nursery.start(serve_simulator, SimulatorApp(self))


def sse_answer(*pieces: bytes | tuple[float, bytes]) -> SimResponse:
    """A 200 event stream of ``pieces`` (``(delay_s, bytes)`` or bytes at once)."""
    timed = [p if isinstance(p, tuple) else (0.0, p) for p in pieces]
    return SimResponse(status=200, headers=[(b"content-type", b"text/event-stream")], chunks=timed)


def json_answer(status: int, body: object) -> SimResponse:
    data = msgspec.json.encode(body)
    return SimResponse(status=status, chunks=[(0.0, data)], headers=[
        (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())])


def key_errors(*, echo_key: bool = False) -> ScriptedServer:
    """Scripted by the prompt: ``STATUS:<n>`` answers DeepSeek-shaped error bodies (401 by
    default), ``STREAMERR`` a 200 stream of one text chunk and then (50 ms later, a read of its
    own) an error chunk. With ``echo_key`` the messages carry the full key, as some servers'
    401 texts do."""

    def answer(n: int, key: str, body: bytes) -> SimResponse:
        prompt = body.decode()
        if "STREAMERR" in prompt:
            chunk = {"id": "c1", "object": "chat.completion.chunk", "model": "m",
                     "choices": [{"index": 0, "delta": {"role": "assistant", "content": "partial"}}]}
            error = {"error": {"message": ECHOED.format(key=key), "type": "server_error", "code": "server_error"}}
            return sse_answer(*[(delay, b"data: " + msgspec.json.encode(x) + b"\n\n")
                                for delay, x in ((0.0, chunk), (0.05, error))])
        match = _STATUS.search(prompt)
        status = int(match.group(1)) if match else 401
        message = ECHOED.format(key=key) if echo_key else UPSTREAM_MESSAGES[status].format(tail=key[-4:])
        return json_answer(status, {"error": {"message": message, "type": _KINDS.get(status, "api_error"),
                                              "param": None, "code": "invalid_request_error"}})

    return ScriptedServer(answer)


def finished_lines(logs: list[dict]) -> list[dict]:
    return [entry for entry in logs if entry.get("event") == "request_finished"]


async def wait_finished(logs: list[dict], count: int = 1) -> None:
    """The request_finished line is written just after the last byte: give it a moment."""
    with trio.move_on_after(2):
        while len(finished_lines(logs)) < count:
            await trio.sleep(0.001)
