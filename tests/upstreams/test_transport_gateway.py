"""Large bodies end to end: the official SDKs → hypercorn on 127.0.0.1 → gateway → the production
transport → a real HTTP upstream on 127.0.0.1 (``http_upstream``, threads of its own) that records
the request and answers Chat Completions SSE.

Client requests up to ``server.max_body_bytes`` in the chat, anthropic and responses dialects: the
upstream gets the whole encoded request (the message's text intact) and the client the answer,
which carries the length and sha256 of what the upstream got. A slow upstream still gets it all;
one that never reads ends, within its timeout, in the client's own error; one that refuses the
body early (413) is heard; several MB of answer reach the client intact, and the next request
reuses the upstream connection.
"""

from __future__ import annotations

import hashlib
import json
import random
import time

import anthropic
import msgspec
import openai
import pytest
import trio

from tests.e2e.serving import open_gateway
from tests.upstreams.http_upstream import HttpUpstream, Received

K, M = 1024, 1024 * 1024
MAX_BODY = 32 * M  # pipeline/config.py ServerConfig.max_body_bytes
CONFIG = """
upstreams:
  rec:
    type: openai_chat
    base_url: ${REC_URL}
    api_key_env: REC_KEY
    models: {default: rec-model}
    idle_timeout_s: IDLE
pipelines:
  chat: {client: chat, upstream: rec, mount: /chat, retry: {attempts_per_upstream: 1, budget: 1}}
  anthropic: {client: anthropic, upstream: rec, mount: /anthropic, retry: {attempts_per_upstream: 1, budget: 1}}
  responses: {client: responses, upstream: rec, mount: /responses, retry: {attempts_per_upstream: 1, budget: 1}}
"""
# What the SDKs add around the message text, at most (JSON keys, model, the other fields).
ENVELOPE = 512


def sse(texts: list[str]) -> bytes:
    """A Chat Completions stream of ``texts`` as content deltas, then stop and usage."""
    def chunk(delta: dict, finish: str | None = None, **extra: object) -> bytes:
        body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "rec-model",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": text}) for text in texts]
    events.append(chunk({}, "stop", usage={"prompt_tokens": 5, "completion_tokens": len(texts), "total_tokens": 5 + len(texts)}))
    body = b"".join(events) + b"data: [DONE]\n\n"
    return (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n" % len(body)) + body


def receipt(received: Received) -> str:
    return f"got {received.length} {received.sha256}"


def receipt_answer(received: Received) -> bytes:
    return sse([receipt(received)])


def message_text(size: int, seed: int) -> str:
    """Varied text (words, digits, JSON-escaped characters, non-ASCII) that takes ``size`` bytes as
    a JSON string the way the SDKs encode it (ASCII only: ``\\uXXXX`` escapes), quotes excluded."""
    rng = random.Random(seed)
    words = ["read", "file", "src/main.py", "def", "return", "{", "}", '"quoted"', "tab\t", "line\n",
             "back\\slash", "é", "日本語", "✓", "0x1f", "</tool_result>"]
    base = " ".join(rng.choices(words, k=min(size, 16 * K)))  # repeated: building 32 MB word by word is slow
    encoded = len(json.dumps(base)) - 2  # JSON escapes do not depend on their neighbours
    repeats = size // encoded
    return base * repeats + "x" * (size - repeats * encoded)


def chat(base: str, text: str) -> str:
    with openai.OpenAI(base_url=f"{base}/chat/v1", api_key="unused", max_retries=0, timeout=60) as client:
        answer = client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": text}])
    return answer.choices[0].message.content


def messages(base: str, text: str) -> str:
    with anthropic.Anthropic(base_url=f"{base}/anthropic", api_key="unused", max_retries=0, timeout=60) as client:
        answer = client.messages.create(model="claude-x", max_tokens=1000, messages=[{"role": "user", "content": text}])
    return "".join(block.text for block in answer.content if block.type == "text")


def responses(base: str, text: str) -> str:
    with openai.OpenAI(base_url=f"{base}/responses/v1", api_key="unused", max_retries=0, timeout=60) as client:
        answer = client.responses.create(model="gpt-x", input=[{"role": "user", "content": text}])
    return answer.output_text


DIALECTS = {"chat": chat, "anthropic": messages, "responses": responses}


def user_text(body: bytes) -> str:
    """The text of the (one) user message of an upstream Chat request."""
    request = msgspec.json.decode(body)
    user = [m for m in request["messages"] if m["role"] == "user"]
    assert len(user) == 1
    content = user[0]["content"]
    return content if isinstance(content, str) else "".join(part["text"] for part in content)


@pytest.fixture(autouse=True)
def upstream_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REC_KEY", "sk-rec")


def gateway(server: HttpUpstream, idle_s: float = 30.0):
    """The gateway on hypercorn, its ``rec`` upstream at ``server``."""
    return open_gateway(CONFIG.replace("IDLE", str(idle_s)), env={"REC_URL": server.url})


class TestLargeRequestsEndToEnd:
    @pytest.mark.parametrize("dialect", list(DIALECTS))
    async def test_the_upstream_gets_the_whole_request_and_the_client_the_answer(self, dialect: str) -> None:
        """Client bodies of 1 KB to max_body_bytes, one gateway (starting one costs ~1 s)."""
        sizes = [K, 64 * K + 1, M + 1, MAX_BODY]
        with HttpUpstream(answer=receipt_answer, keep_bodies=True) as server:
            async with gateway(server) as (base, _):
                for size in sizes:
                    text = message_text(size - ENVELOPE, size)
                    answer = await trio.to_thread.run_sync(DIALECTS[dialect], base, text)
                    received = server.received[-1]
                    assert received.length == len(received.body) > len(text.encode()), size  # raw UTF-8 upstream
                    assert hashlib.sha256(received.body).hexdigest() == received.sha256, size
                    assert user_text(received.body) == text, size
                    assert received.header("authorization") == "Bearer sk-rec"
                    assert answer == receipt(received), size
        assert len(server.received) == len(sizes)

    async def test_slow_upstream_gets_it_all_though_the_send_outlasts_its_timeout(self) -> None:
        """idle_timeout_s (the write timeout too) is 0.15 s; the 2 MB send takes over 0.5 s (about 1 s of paced reads)."""
        text = message_text(2 * M, 2)
        with HttpUpstream(answer=receipt_answer, keep_bodies=True, rcvbuf=4096, piece=4096, pause_s=0.002) as server:
            async with gateway(server, 0.15) as (base, _):
                answer = await trio.to_thread.run_sync(chat, base, text)
        (received,) = server.received
        assert received.read_s > 0.5
        assert user_text(received.body) == text and answer == receipt(received)

    async def test_upstream_that_never_reads_is_a_clear_error_in_the_clients_dialect(self) -> None:
        """An 8 MB request (more than the socket buffers hold: tcp_wmem's 4 MB at most) to an upstream
        that takes none of it: each dialect's overloaded error, naming the upstream and the write
        timeout, in about idle_timeout_s (0.3 s) after the gateway has the request."""
        text = message_text(8 * M, 3)
        with HttpUpstream(read_body=False, rcvbuf=4096) as server:
            async with gateway(server, 0.3) as (base, _):
                for dialect, error_type, status in [("chat", openai.InternalServerError, 503),
                                                    ("anthropic", anthropic.InternalServerError, 529),
                                                    ("responses", openai.InternalServerError, 503)]:
                    start = time.perf_counter()
                    with pytest.raises(error_type) as caught:
                        await trio.to_thread.run_sync(DIALECTS[dialect], base, text)
                    elapsed = time.perf_counter() - start
                    error = caught.value
                    assert error.status_code == status, (dialect, error)
                    assert "rec: took none of the request for 0.3s (write timeout)" in str(error), error
                    assert elapsed < 10, elapsed  # the SDK's own timeout is 60 s: no hang
                    if dialect == "anthropic":
                        assert error.body["error"]["type"] == "overloaded_error", error.body
        assert len(server.received) == 3 and all(r.length == 0 for r in server.received)

    async def test_megabytes_of_answer_reach_the_client_and_the_connection_is_reused(self) -> None:
        rng = random.Random(7)
        texts = [message_text(rng.randrange(1, 2 * K), i) for i in range(3000)]  # ~3 MB of deltas

        def answer(received: Received) -> bytes:
            return sse(texts) if len(user_text(received.body)) > 10 else receipt_answer(received)

        with HttpUpstream(answer=answer, keep_bodies=True) as server:
            async with gateway(server) as (base, _):
                for dialect in ("chat", "anthropic"):
                    got = await trio.to_thread.run_sync(DIALECTS[dialect], base, message_text(M, 9))
                    assert got == "".join(texts), dialect
                    second = await trio.to_thread.run_sync(DIALECTS[dialect], base, "short")
                    assert second == receipt(server.received[-1]) and user_text(server.received[-1].body) == "short"
        assert server.connections == 1 and len(server.received) == 4

    async def test_upstream_that_refuses_the_body_early_is_heard(self) -> None:
        """An upstream that answers 413 after the head and closes without reading the 8 MB body:
        the client gets that 413 and its message in its own dialect, not a retried write error."""

        def too_large(received: Received) -> bytes:
            text = b'{"error":{"message":"request of 9000000 bytes is too large","type":"invalid_request_error"}}'
            return b"HTTP/1.1 413 Payload Too Large\r\nconnection: close\r\ncontent-length: %d\r\n\r\n" % len(text) + text

        text = message_text(8 * M, 4)
        with HttpUpstream(read_body=False, answer_unread=True, answer=too_large) as server:
            async with gateway(server) as (base, _):
                for dialect, error_type in [("chat", openai.APIStatusError), ("anthropic", anthropic.APIStatusError)]:
                    with pytest.raises(error_type) as caught:
                        await trio.to_thread.run_sync(DIALECTS[dialect], base, text)
                    assert caught.value.status_code == 413, caught.value
                    assert "request of 9000000 bytes is too large" in str(caught.value)
        assert len(server.received) == 2
