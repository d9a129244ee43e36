"""The fault matrix: (429, 500, 503, connection refused, idle stall, truncated stream, malformed
chunk, mid-stream drop, client disconnect) × (anthropic, responses, chat), through hypercorn and
the production transport to the simulator server (its own process). Each cell ends in a
transparent retry (200, the whole answer) or the dialect's exact error: HTTP before the first
byte, the in-stream error the client retries after it. Faults come from the simulator's
``SIM:fault``; small timeouts and backoff keep the matrix to seconds."""

from __future__ import annotations

import time

import httpx
import pytest
import structlog
import trio

from tests.e2e.serving import SIM, SIM_KEY_ENV, open_gateway
from tests.resilience.dialects import (
    DIALECTS, PATHS, SHIPPED_STAGES, auth_headers, call, closed_port, finished_lines, request_body, wait_finished,
)
from upstreams.simulator.testing import SimulatorProcess

ANSWER = "all good"
FAST_RETRY = "{attempts_per_upstream: 2, budget: 4, backoff_base_s: 0.01, backoff_cap_s: 0.02, retry_after_cap_s: %s}"


def config(dead_port: int, *, retry_after_cap_s: float = 1.0) -> str:
    """Per dialect three pipelines: /<d> (simulator), /<d>/fallback ([dead, simulator]), /<d>/dead."""
    text = ("upstreams:\n  sim: {" + SIM + ", idle_timeout_s: 0.5}\n"
            + f"  dead:\n    type: openai_chat\n    base_url: http://127.0.0.1:{dead_port}\n"
              f"    profile: deepseek\n    api_key_env: {SIM_KEY_ENV}\n    connect_timeout_s: 0.5\npipelines:\n")
    retry = FAST_RETRY % retry_after_cap_s
    for d in DIALECTS:
        for suffix, upstream in (("", "sim"), ("/fallback", "[dead, sim]"), ("/dead", "dead")):
            name = d + suffix.replace("/", "_")
            text += (f"  {name}:\n    client: {d}\n    mount: /{d}{suffix}\n    upstream: {upstream}\n"
                     f"    stages: {SHIPPED_STAGES[d]}\n    retry: {retry}\n")
    return text


# After the first byte: the in-stream error each client retries (Claude Code: overloaded_error;
# Codex: response.failed server_error, which 0.169 retries; server_is_overloaded would be fatal);
# Chat clients get the neutral code's OpenAI form.
IN_STREAM = {
    "anthropic": dict.fromkeys(("stall", "truncate", "badchunk", "drop"), "overloaded_error"),
    "responses": dict.fromkeys(("stall", "truncate", "badchunk", "drop"), "server_error"),
    "chat": {"stall": "server_is_overloaded", "drop": "server_is_overloaded",
             "truncate": "bad_gateway", "badchunk": "bad_gateway"},
}
RECOVERED = ("429", "500", "503", "refused")
FAULTS = (*RECOVERED, "stall", "truncate", "badchunk", "drop", "disconnect")


@pytest.fixture
def fault_sim(sim: SimulatorProcess) -> SimulatorProcess:
    """Pieces 5 ms apart, as a real upstream streams: a mid-stream fault then arrives after the
    first content was read (on a socket, pieces sent at once can arrive in one read, and a fault
    in the same read as the first content is retried before anything reached the client)."""
    sim.reset(stall_s=30, slow_chunk_s=0.05, chunk_delay_s=0.005)
    return sim


async def disconnect_cell(url: str, dialect: str, sim: SimulatorProcess) -> tuple[float, object]:
    """Open a slow stream, read its first bytes, close; returns (close time, the simulator
    server's record of that connection), both ``time.monotonic()``."""
    prompt = f"SIM:text {' '.join(['word'] * 200)}\nSIM:fault slow"
    async with httpx.AsyncClient(timeout=10) as http:
        async with http.stream("POST", url + f"/{dialect}" + PATHS[dialect],
                               json=request_body(dialect, prompt), headers=auth_headers(dialect, "k")) as response:
            assert response.status_code == 200
            pieces = response.aiter_raw()  # held: a dropped iterator's finaliser would close the stream
            await anext(pieces)
            record = (await trio.to_thread.run_sync(sim.connections))[-1]
            assert record.closed_at is None, "the upstream stream must still be open"
            t0 = time.monotonic()
    with trio.move_on_after(2):
        while record.closed_at is None:
            record = (await trio.to_thread.run_sync(sim.connections))[-1]
    return t0, record


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("fault", FAULTS)
async def test_fault_matrix(fault: str, dialect: str, fault_sim: SimulatorProcess) -> None:
    """Each (fault, client) cell ends in a successful retry or the dialect's exact error; a client
    going away closes the upstream connection within 50 ms (seen by the simulator server)."""
    async with open_gateway(config(closed_port()), sim=fault_sim) as (url, _):
        with structlog.testing.capture_logs() as logs:
            if fault == "disconnect":
                t0, record = await disconnect_cell(url, dialect, fault_sim)
            else:
                mount = f"/{dialect}/fallback" if fault == "refused" else f"/{dialect}"
                prompt = f"SIM:text {ANSWER}" + ("" if fault == "refused" else f"\nSIM:fault {fault} once")
                async with httpx.AsyncClient(timeout=10) as http:
                    with trio.fail_after(8):
                        reply = await call(http, url + mount, dialect, prompt)
            await wait_finished(logs)
    (line,) = finished_lines(logs)
    assert line["status"] != 500 and not any(e.get("log_level") in ("error", "critical") for e in logs)
    if fault == "disconnect":
        assert record.client_closed and not record.complete
        assert record.closed_at - t0 < 0.05, f"upstream closed {record.closed_at - t0:.3f}s after the client"
        assert line["error_code"] == "client_disconnected"
        return
    if fault in RECOVERED:
        assert reply.status == 200 and reply.error is None, reply.raw[:500]
        assert reply.complete and reply.text == ANSWER
        assert line["attempts"] == (3 if fault == "refused" else 2) and line["error_code"] is None
        assert fault_sim.chat_requests == (1 if fault == "refused" else 2)
        if fault == "refused":
            assert line["upstream"] == "sim"
        return
    assert reply.status == 200 and reply.in_stream and not reply.complete, reply.raw[-800:]
    assert reply.error_kind == IN_STREAM[dialect][fault]
    assert line["attempts"] == 1 and line["error_code"] in ("overloaded", "bad_gateway")


# Retries used up: the HTTP error of the dialect, with the upstream's message.
EXHAUSTED = {
    "anthropic": {"429": (429, "rate_limit_error"), "500": (500, "api_error"), "503": (529, "overloaded_error"),
                  "refused": (529, "overloaded_error")},
    "responses": {"429": (429, "rate_limit_exceeded"), "500": (500, "server_error"),
                  "503": (503, "server_is_overloaded"), "refused": (503, "server_is_overloaded")},
    "chat": {"429": (429, "rate_limit_exceeded"), "500": (500, "server_error"), "503": (503, "server_is_overloaded"),
             "refused": (503, "server_is_overloaded")},
}
UPSTREAM_TEXT = {"429": "Rate Limit Reached", "500": "Internal Server Error", "503": "Server overloaded",
                 "refused": "connection failed"}


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("fault", RECOVERED)
async def test_retries_exhausted(fault: str, dialect: str, fault_sim: SimulatorProcess) -> None:
    """A fault on every attempt ends in the dialect's HTTP error; a Retry-After above the cap is
    not waited out but handed to the client."""
    async with open_gateway(config(closed_port(), retry_after_cap_s=0.5), sim=fault_sim) as (url, _):
        mount = f"/{dialect}/dead" if fault == "refused" else f"/{dialect}"
        async with httpx.AsyncClient(timeout=10) as http:
            with trio.fail_after(8):
                reply = await call(http, url + mount, dialect, f"SIM:text {ANSWER}\nSIM:fault {fault}")
    status, kind = EXHAUSTED[dialect][fault]
    assert (reply.status, reply.error_kind) == (status, kind), reply.raw
    assert UPSTREAM_TEXT[fault] in reply.error["message"]
    if fault == "429":
        assert reply.headers.get("retry-after") == "1" and fault_sim.chat_requests == 1
    elif fault != "refused":
        assert fault_sim.chat_requests == 2  # attempts_per_upstream
    else:
        assert fault_sim.chat_requests == 0


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_mid_stream_failure_non_streaming_is_retried(dialect: str, fault_sim: SimulatorProcess) -> None:
    """stream=false: the client has nothing until the end, so a drop mid-answer is retried like
    one before the first byte: once, the client gets the whole answer; on every try, the dialect's
    retryable HTTP error after attempts_per_upstream (2). Every kind and dialect through the SDKs:
    ``test_collected_retry.py``."""
    async with open_gateway(config(closed_port()), sim=fault_sim) as (url, _):
        async with httpx.AsyncClient(timeout=10) as http:
            once = await call(http, f"{url}/{dialect}", dialect, f"SIM:text {ANSWER}\nSIM:fault drop once", stream=False)
            assert fault_sim.chat_requests == 2
            every = await call(http, f"{url}/{dialect}", dialect, f"SIM:text {ANSWER}\nSIM:fault drop", stream=False)
            assert fault_sim.chat_requests == 4
    assert once.status == 200 and ANSWER in once.raw.decode(), once.raw
    expected = (529, "overloaded_error") if dialect == "anthropic" else (503, "server_is_overloaded")
    assert (every.status, every.error_kind) == expected
