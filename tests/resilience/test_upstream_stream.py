"""The ``openai_chat`` upstream's commit point and timeouts, through the gateway. A failure before
any content (an ``insufficient_system_resource`` finish, an empty body, a stall, a connect timeout)
is retried; after content it is the dialect's in-stream error. Keep-alives count as alive up to
``queue_timeout_s``; the idle limit holds on any transport; the overall deadline ends either way.
Scripted answers come from a ``ScriptedServer`` on 127.0.0.1 (a connect timeout from an
``httpx.MockTransport``), keep-alives and slow streams from the simulator server, both read
through the production transport."""

from __future__ import annotations

from typing import ClassVar

import httpx
import msgspec
import pytest
import structlog
import trio

from pipeline.upstream import UpstreamConfig
from tests.e2e.serving import SIM, open_gateway
from tests.resilience.dialects import DIALECTS, ScriptedServer, call, finished_lines, sse_answer, wait_finished
from upstreams.openai_chat import OpenAIChatUpstream
from upstreams.simulator import SimResponse
from upstreams.simulator.testing import SimulatorProcess


def chunk(delta: dict | None = None, finish: str | None = None) -> bytes:
    body = {"id": "c", "object": "chat.completion.chunk", "model": "deepseek-v4-pro",
            "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}
    return b"data: " + msgspec.json.encode(body) + b"\n\n"


ROLE = chunk({"role": "assistant", "content": ""})
ANSWER = [ROLE, chunk({"content": "fine"}), chunk(finish="stop"), b"data: [DONE]\n\n"]


SCRIPTS: dict[str, list[SimResponse]] = {
    # DeepSeek ends the stream before any content: retried, the client never sees it.
    "early_isr": [sse_answer(ROLE, chunk(finish="insufficient_system_resource")), sse_answer(*ANSWER)],
    "empty_body": [sse_answer(), sse_answer(*ANSWER)],
    "stall_before_data": [sse_answer((30.0, ROLE)), sse_answer(*ANSWER)],
    "error_chunk_first": [sse_answer(b'data: {"error": {"message": "busy", "type": "server_error"}}\n\n'),
                          sse_answer(*ANSWER)],
    # After content: the in-stream error, no retry.
    "late_isr": [sse_answer(ROLE, (0.01, chunk({"content": "half"})),
                            (0.01, chunk(finish="insufficient_system_resource")))],
    # Non-retryable before content: the HTTP error of the dialect.
    "context_first": [sse_answer(b'data: {"error": {"message": "maximum context length exceeded", '
                                 b'"type": "invalid_request_error", "code": "context_length_exceeded"}}\n\n')],
}


class ConnectTimesOut(OpenAIChatUpstream):
    """The one script a socket on 127.0.0.1 cannot play: the first connection attempt times out
    (raised in memory, ``httpx.MockTransport``), the retry gets the answer."""

    type_name: ClassVar[str] = "connect_times_out"

    def __init__(self, config: UpstreamConfig, *, upstream_id: str) -> None:
        config = msgspec.structs.replace(config, base_url="http://connect-times-out.invalid")
        self.chat_requests = 0
        super().__init__(config, upstream_id=upstream_id, transport=httpx.MockTransport(self._answer))

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.chat_requests += 1
        if self.chat_requests == 1:
            raise httpx.ConnectTimeout("scripted", request=request)
        return httpx.Response(200, stream=httpx.ByteStream(b"".join(ANSWER)), headers={"content-type": "text/event-stream"})


def sequenced(kind: str) -> str:
    """Pipelines on the upstream ``up``: ``${UP_URL}`` (a ``ScriptedServer``), or ``ConnectTimesOut``."""
    up = ("type: tests.resilience.test_upstream_stream:ConnectTimesOut" if kind == "connect_timeout"
          else "type: openai_chat\n    base_url: ${UP_URL}")
    return f"""
upstreams:
  up:
    {up}
    idle_timeout_s: 0.3
    connect_timeout_s: 0.3
    models: {{default: deepseek-v4-pro}}
pipelines:
""" + "".join(f"  {d}: {{client: {d}, upstream: up, mount: /{d}, retry: {{backoff_base_s: 0.01}}}}\n" for d in DIALECTS)


async def play(script: str, dialect: str, nursery: trio.Nursery, *, config: str | None = None):
    """The script's answers, in turn, to the gateway's calls; returns (reply, finished line, calls)."""
    if script == "connect_timeout":
        reply, line, gateway = await through(config or sequenced(script), dialect)
        return reply, line, gateway.upstreams["up"].chat_requests
    answers = SCRIPTS[script]
    server = ScriptedServer(lambda n, key, body: answers[n - 1])
    env = {"UP_URL": await server.serve(nursery)}
    reply, line, _ = await through(config or sequenced(script), dialect, env=env)
    return reply, line, server.chat_requests


async def through(config: str, dialect: str, prompt: str = "hi", sim: SimulatorProcess | None = None,
                  env: dict[str, str] | None = None):
    async with open_gateway(config, sim=sim, env=env) as (url, gateway):
        with structlog.testing.capture_logs() as logs:
            async with httpx.AsyncClient(timeout=10) as http:
                with trio.fail_after(8):
                    reply = await call(http, f"{url}/{dialect}", dialect, prompt)
            await wait_finished(logs)
    return reply, finished_lines(logs)[0], gateway


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("script", ["early_isr", "empty_body", "stall_before_data", "connect_timeout",
                                    "error_chunk_first"])
async def test_failure_before_content_is_retried(script: str, dialect: str, nursery) -> None:
    reply, line, calls = await play(script, dialect, nursery)
    assert reply.status == 200 and reply.complete and reply.text == "fine", reply.raw[-400:]
    assert line["attempts"] == 2 and calls == 2


LATE = {"anthropic": "overloaded_error", "responses": "server_error", "chat": "server_is_overloaded"}
CONTEXT = {"anthropic": (400, "invalid_request_error"), "responses": (400, "context_length_exceeded"),
           "chat": (400, "context_length_exceeded")}


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_failure_after_content_is_the_in_stream_error(dialect: str, nursery) -> None:
    reply, line, calls = await play("late_isr", dialect, nursery)
    assert reply.status == 200 and reply.in_stream and reply.text == "half"
    assert reply.error_kind == LATE[dialect] and "insufficient_system_resource" in reply.error["message"]
    assert line["attempts"] == 1 and calls == 1


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_non_retryable_error_before_content_is_an_http_error(dialect: str, nursery) -> None:
    """An upstream error chunk before any content is not sent in-stream: the HTTP error instead."""
    reply, line, calls = await play("context_first", dialect, nursery)
    assert (reply.status, reply.error_kind) == CONTEXT[dialect] and line["attempts"] == 1 and calls == 1


def keepalive_config(sim: SimulatorProcess, count: int, queue_s: float) -> str:
    sim.reset(keepalive_comments=count, keepalive_interval_s=0.1)
    return f"""
upstreams:
  sim: {{{SIM}, idle_timeout_s: 0.3, queue_timeout_s: {queue_s}}}
pipelines:
""" + "".join(f"  {d}: {{client: {d}, upstream: sim, mount: /{d}}}\n" for d in DIALECTS)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_keepalives_count_as_alive_within_the_queue_limit(dialect: str, sim: SimulatorProcess) -> None:
    """1 s of keep-alives, 0.1 s apart, outlive a 0.3 s idle limit; Anthropic clients see pings."""
    reply, line, _ = await through(keepalive_config(sim, 10, 5), dialect, "SIM:text served", sim)
    assert reply.status == 200 and reply.complete and reply.text == "served"
    if dialect == "anthropic":
        assert sum(1 for event, _ in reply.events if event == "ping") >= 5


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_queue_limit_ends_a_keepalive_only_stream(dialect: str, sim: SimulatorProcess) -> None:
    """Keep-alives beyond queue_timeout_s: abandoned with the overloaded error the client retries."""
    started = trio.current_time()
    reply, line, _ = await through(keepalive_config(sim, 100, 0.5), dialect, "SIM:text never", sim)
    assert trio.current_time() - started < 3
    assert reply.status == 200 and reply.in_stream and reply.error_kind == LATE[dialect]
    assert "queue limit" in reply.error["message"] and line["error_code"] == "overloaded"


DEADLINE = """
upstreams:
  sim: {%s}
pipelines:
""" % SIM + "".join(f"  {d}: {{client: {d}, upstream: sim, mount: /{d}, deadline_s: 0.6}}\n" for d in DIALECTS)
DEADLINE_IN_STREAM = {"anthropic": "overloaded_error", "responses": "server_error", "chat": "timeout"}
DEADLINE_HTTP = {"anthropic": (504, "timeout_error"), "responses": (504, "server_error"), "chat": (504, "timeout")}


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_deadline_mid_stream_is_the_in_stream_error(dialect: str, sim: SimulatorProcess) -> None:
    """The pipeline's overall deadline cuts a slow stream with the error the client retries."""
    words = " ".join(["slow"] * 40)
    sim.reset(slow_chunk_s=0.1)
    reply, line, _ = await through(DEADLINE, dialect, f"SIM:text {words}\nSIM:fault slow", sim)
    assert reply.status == 200 and reply.in_stream and reply.error_kind == DEADLINE_IN_STREAM[dialect]
    assert "deadline of 0.6s" in reply.error["message"] and line["error_code"] == "timeout"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_deadline_before_the_first_byte_is_an_http_error(dialect: str, nursery) -> None:
    config = sequenced("stall_before_data").replace("retry: {backoff_base_s: 0.01}", "deadline_s: 0.2")
    reply, line, _ = await play("stall_before_data", dialect, nursery, config=config)
    assert (reply.status, reply.error_kind) == DEADLINE_HTTP[dialect] and line["error_code"] == "timeout"
