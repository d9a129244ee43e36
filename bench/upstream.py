"""A fast fake Chat Completions upstream for benchmarks: pre-encoded DeepSeek-style SSE chunks.

The request body's model name picks the answer (``fake-<mode>[-think]``): ``whole`` writes the
entire response in one write, ``chunk`` writes one SSE frame per write (TCP_NODELAY; streams take
turns, one frame each per round, as token streams do), ``hold`` writes the first delta and then
holds the stream open for ``--hold-s`` seconds before finishing it. ``-think`` puts 50
reasoning deltas before the content. Every answer has ``--deltas`` content deltas ``t000 `` …
``GET /last-body`` answers with the last request body received, as received. For the pass-through
pipelines, ``POST /v1/messages`` gets the same answer as an Anthropic Messages stream (thinking
block with a signature, text block; ``type: anthropic_messages``) and ``POST /responses`` as an
OpenAI Responses stream (a reasoning item with summary deltas and ``encrypted_content``, a message
item, ``sequence_number`` on every event; ``type: openai_responses``).
Run: ``python -m bench.upstream --port 9100``.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from bench.net import nodelay

CREATED = 1767225600
REASONING_DELTAS = 50
MODES = ("whole", "chunk", "hold")


def delta_text(i: int) -> str:
    """The text of content delta ``i`` (the load generator searches for these markers)."""
    return f"t{i:03d} "


def _frame(delta: dict[str, object], finish: str | None = None, usage: dict[str, object] | None = None) -> bytes:
    chunk: dict[str, object] = {
        "id": "0f8e6a4c-bench-4d1e-9b7a-5c2f1e0d9a8b", "object": "chat.completion.chunk", "created": CREATED,
        "model": "deepseek-v4-flash", "system_fingerprint": "fp_bench_0001",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        chunk["usage"] = usage
    return b"data: " + json.dumps(chunk, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


def sse_frames(deltas: int, *, think: bool) -> list[bytes]:
    """The SSE frames of one answer, DeepSeek style (usage on the finish chunk, then [DONE])."""
    frames = [_frame({"role": "assistant", "content": None, "reasoning_content": ""} if think
                     else {"role": "assistant", "content": ""})]
    if think:
        frames += [_frame({"content": None, "reasoning_content": f"r{i:02d} "}) for i in range(REASONING_DELTAS)]
    frames += [_frame({"content": delta_text(i)}) for i in range(deltas)]
    completion = deltas + (REASONING_DELTAS if think else 0)
    usage = {"prompt_tokens": 1200, "completion_tokens": completion, "total_tokens": 1200 + completion,
             "prompt_tokens_details": {"cached_tokens": 1024}, "prompt_cache_hit_tokens": 1024,
             "prompt_cache_miss_tokens": 176}
    if think:
        usage["completion_tokens_details"] = {"reasoning_tokens": REASONING_DELTAS}
    frames.append(_frame({"content": ""}, finish="stop", usage=usage))
    frames.append(b"data: [DONE]\n\n")
    return frames


def _event(kind: str, payload: dict[str, object]) -> bytes:
    data = json.dumps({"type": kind, **payload}, separators=(",", ":"), ensure_ascii=False).encode()
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def messages_frames(deltas: int, *, think: bool) -> tuple[list[bytes], int]:
    """The same answer as Anthropic Messages SSE events, and the index of its first text delta."""
    usage = {"input_tokens": 176, "cache_read_input_tokens": 1024, "cache_creation_input_tokens": 0}
    frames = [_event("message_start", {"message": {
        "id": "msg_bench0001", "type": "message", "role": "assistant", "model": "claude-bench", "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}})]
    index = 0
    if think:
        frames.append(_event("content_block_start", {"index": 0, "content_block": {
            "type": "thinking", "thinking": "", "signature": ""}}))
        frames += [_event("content_block_delta", {"index": 0, "delta": {"type": "thinking_delta",
                                                                       "thinking": f"r{i:02d} "}})
                   for i in range(REASONING_DELTAS)]
        frames.append(_event("content_block_delta", {"index": 0, "delta": {
            "type": "signature_delta", "signature": "EqQBCkYIBRgCKkBbenchsignature0001"}}))
        frames.append(_event("content_block_stop", {"index": 0}))
        index = 1
    frames.append(_event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}}))
    first = len(frames)
    frames += [_event("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": delta_text(i)}})
               for i in range(deltas)]
    frames.append(_event("content_block_stop", {"index": index}))
    completion = deltas + (REASONING_DELTAS if think else 0)
    frames.append(_event("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                           "usage": {"output_tokens": completion}}))
    frames.append(_event("message_stop", {}))
    return frames, first


def responses_frames(deltas: int, *, think: bool) -> tuple[list[bytes], int]:
    """The same answer as OpenAI Responses SSE events, and the index of its first text delta."""
    frames: list[bytes] = []

    def emit(kind: str, **fields: object) -> None:
        frames.append(_event(kind, {"sequence_number": len(frames), **fields}))

    def response(status: str, output: list[dict[str, object]], usage: object = None) -> dict[str, object]:
        return {"id": "resp_bench0001", "object": "response", "created_at": CREATED, "status": status,
                "model": "gpt-bench", "output": output, "parallel_tool_calls": True, "tool_choice": "auto",
                "tools": [], "error": None, "incomplete_details": None, "usage": usage}

    emit("response.created", response=response("in_progress", []))
    emit("response.in_progress", response=response("in_progress", []))
    output: list[dict[str, object]] = []
    if think:
        text = "".join(f"r{i:02d} " for i in range(REASONING_DELTAS))
        at = {"item_id": "rs_bench0001", "output_index": 0}
        emit("response.output_item.added", output_index=0, item={
            "id": "rs_bench0001", "type": "reasoning", "summary": [], "encrypted_content": None,
            "status": "in_progress"})
        emit("response.reasoning_summary_part.added", **at, summary_index=0, part={"type": "summary_text", "text": ""})
        for i in range(REASONING_DELTAS):
            emit("response.reasoning_summary_text.delta", **at, summary_index=0, delta=f"r{i:02d} ")
        emit("response.reasoning_summary_text.done", **at, summary_index=0, text=text)
        emit("response.reasoning_summary_part.done", **at, summary_index=0, part={"type": "summary_text", "text": text})
        output.append({"id": "rs_bench0001", "type": "reasoning", "summary": [{"type": "summary_text", "text": text}],
                       "encrypted_content": "gAAAAABbench-encrypted-content-0001", "status": "completed"})
        emit("response.output_item.done", output_index=0, item=output[-1])
    n = len(output)
    at = {"item_id": "msg_bench0001", "output_index": n}
    emit("response.output_item.added", output_index=n, item={
        "id": "msg_bench0001", "type": "message", "role": "assistant", "status": "in_progress", "content": []})
    emit("response.content_part.added", **at, content_index=0, part={"type": "output_text", "text": "",
                                                                     "annotations": []})
    first = len(frames)
    for i in range(deltas):
        emit("response.output_text.delta", **at, content_index=0, delta=delta_text(i), logprobs=[])
    text = "".join(delta_text(i) for i in range(deltas))
    part = {"type": "output_text", "text": text, "annotations": []}
    emit("response.output_text.done", **at, content_index=0, text=text, logprobs=[])
    emit("response.content_part.done", **at, content_index=0, part=part)
    output.append({"id": "msg_bench0001", "type": "message", "role": "assistant", "status": "completed",
                   "content": [part]})
    emit("response.output_item.done", output_index=n, item=output[-1])
    completion = deltas + (REASONING_DELTAS if think else 0)
    emit("response.completed", response=response("completed", output, {
        "input_tokens": 1200, "input_tokens_details": {"cached_tokens": 1024}, "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": REASONING_DELTAS if think else 0},
        "total_tokens": 1200 + completion}))
    return frames, first


HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n"
        b"transfer-encoding: chunked\r\n\r\n")
LAST = b"0\r\n\r\n"


def http_chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


DIALECTS = ("chat", "messages", "responses")
# The request line that asks for each dialect's answer (anything else gets Chat's).
ROUTES = ((b"post /v1/messages", "messages"), (b"post /responses", "responses"))


def dialect_frames(dialect: str, deltas: int, *, think: bool) -> tuple[list[bytes], int]:
    if dialect == "messages":
        return messages_frames(deltas, think=think)
    if dialect == "responses":
        return responses_frames(deltas, think=think)
    return sse_frames(deltas, think=think), 1 + (REASONING_DELTAS if think else 0)


class Answers:
    """Every variant, keyed (dialect, think), pre-encoded once: one whole write, per-frame writes,
    and where a ``hold`` answer pauses (after its first content delta)."""

    def __init__(self, deltas: int) -> None:
        self.whole: dict[tuple[str, bool], bytes] = {}
        self.pieces: dict[tuple[str, bool], list[bytes]] = {}
        self.hold_at: dict[tuple[str, bool], int] = {}
        for think in (False, True):
            for dialect in DIALECTS:
                frames, first = dialect_frames(dialect, deltas, think=think)
                pieces = [http_chunk(f) for f in frames] + [LAST]
                self.pieces[dialect, think] = pieces
                self.whole[dialect, think] = HEAD + b"".join(pieces)
                self.hold_at[dialect, think] = first + 1


def pick(body: bytes) -> tuple[str, bool]:
    """(mode, think) from the model name in a request body; ``whole`` when none matches."""
    at = body.find(b'"model":"fake-')
    if at == -1:
        at = body.find(b'"model": "fake-')
    if at == -1:
        return "whole", False
    end = body.find(b'"', body.find(b"fake-", at))
    name = body[body.find(b"fake-", at) + 5:end].decode("ascii", "replace")
    mode, _, extra = name.partition("-")
    return (mode if mode in MODES else "whole"), extra == "think"


class Writer:
    """Round-robin writer for ``chunk`` and ``hold`` answers: one frame per stream per round, one
    write per frame, then one yield to the event loop per round (not per frame)."""

    def __init__(self, answers: Answers, hold_s: float) -> None:
        self.answers = answers
        self.hold_s = hold_s
        self.active: list[list] = []  # [conn, pieces, position, hold_at]
        self.wake = asyncio.Event()

    def add(self, conn: FakeUpstream, mode: str, key: tuple[str, bool]) -> None:
        pieces = self.answers.pieces[key]
        hold_at = self.answers.hold_at[key] if mode == "hold" else -1
        conn.transport.write(HEAD)  # type: ignore[union-attr]
        self.active.append([conn, pieces, 0, hold_at])
        self.wake.set()

    def _resume(self, entry: list) -> None:
        entry[3] = -1
        self.active.append(entry)
        self.wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self.active:
                self.wake.clear()
                await self.wake.wait()
            keep: list[list] = []
            for entry in self.active:
                conn, pieces, pos, hold_at = entry
                if conn.lost:
                    continue
                if pos == hold_at:
                    loop.call_later(self.hold_s, self._resume, entry)
                    continue
                if conn.paused:
                    keep.append(entry)
                    continue
                conn.transport.write(pieces[pos])
                entry[2] = pos + 1
                if pos + 1 < len(pieces):
                    keep.append(entry)
                else:
                    conn.busy = False
                    conn.next_request()
            self.active = keep
            await asyncio.sleep(0)


class FakeUpstream(asyncio.Protocol):
    """One client connection: HTTP/1.1 keep-alive, requests answered one at a time. The last
    request body received (on any connection) is served back on ``GET /last-body``, so the
    real-size scenario can check what the gateway sent and send the same bytes directly."""

    last_body = b""

    def __init__(self, answers: Answers, writer: Writer) -> None:
        self.answers = answers
        self.writer = writer
        self.buf = bytearray()  # appended per read, consumed per request: no copy of a 4 MB body per read
        self.need = -1  # body bytes expected for the current request, -1 before its head
        self.head_end = 0
        self.get = False
        self.dialect = "chat"  # what the current request's route asks for (``ROUTES``)
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.lost = False
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = nodelay(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.need > 0 and len(self.buf) - self.head_end < self.need:
            return  # mid-body: nothing to parse until it is all here
        self.next_request()

    def next_request(self) -> None:
        while not self.busy:
            if self.need < 0:
                end = self.buf.find(b"\r\n\r\n")
                if end == -1:
                    return
                head = bytes(self.buf[:end]).lower()
                at = head.find(b"content-length:")
                eol = head.find(b"\r\n", at)
                length = int(head[at + 15:eol if eol != -1 else None]) if at != -1 else 0
                self.head_end, self.need, self.get = end + 4, length, head.startswith(b"get /last-body")
                self.dialect = next((d for line, d in ROUTES if head.startswith(line)), "chat")
            if len(self.buf) - self.head_end < self.need:
                return
            with memoryview(self.buf) as view:
                body = bytes(view[self.head_end:self.head_end + self.need])  # one copy
            del self.buf[:self.head_end + self.need]
            self.need = -1
            assert self.transport is not None
            if self.get:
                last = FakeUpstream.last_body
                self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                     b"content-length: %d\r\n\r\n" % len(last) + last)
                continue
            FakeUpstream.last_body = body
            mode, think = pick(body)
            if mode == "whole":
                self.transport.write(self.answers.whole[self.dialect, think])
            else:
                self.busy = True
                self.writer.add(self, mode, (self.dialect, think))


async def serve(host: str, port: int, deltas: int, hold_s: float, ready: str | None = None) -> None:
    answers = Answers(deltas)
    writer = Writer(answers, hold_s)
    loop = asyncio.get_running_loop()
    task = loop.create_task(writer.run())  # noqa: F841  (runs for the server's life)
    server = await loop.create_server(lambda: FakeUpstream(answers, writer), host, port, backlog=4096)
    if ready:
        print(ready, flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.upstream", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--deltas", type=int, default=200, help="content deltas per answer")
    parser.add_argument("--hold-s", type=float, default=120.0, help="how long `hold` answers stay open")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.host, args.port, args.deltas, args.hold_s, ready="ready"))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
