"""Request intake through hypercorn: refused requests read the body first (401, 404, 405, and a
413 after ``100 Continue``: the client sees the answer, not a reset), the request id (a client's only when it is a plain token,
echoed in ``x-request-id``), a bug outside the pipeline (the dialect's 500 and a logged
traceback, not hypercorn's empty 500), and a bounded ``request_finished`` line however many
losses a request has."""

from __future__ import annotations

import io
import json
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import msgspec
import pytest
import structlog
import trio

from pipeline import log as gwlog
from tests.e2e.serving import SIM, open_gateway
from tests.resilience.dialects import DIALECTS, PATHS, auth_headers, call, fold, request_body

GW_KEY = "gw-intake-key-4c3b2a19"
CONFIG = """
upstreams:
  sim: {%s}
pipelines:
""" % SIM + "".join(f"  {d}: {{client: {d}, upstream: sim, mount: /{d}}}\n"
                    f"  {d}_keyed: {{client: {d}, upstream: sim, mount: /keyed/{d}, api_keys_env: [GW_INTAKE_KEY]}}\n"
                    for d in DIALECTS)
INTERNAL = {"anthropic": "api_error", "responses": "server_error", "chat": "server_error"}
BIG = 8 * 1024 * 1024


@pytest.fixture(autouse=True)
def gateway_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_INTAKE_KEY", GW_KEY)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def raw_exchange(port: int, head: str, body: bytes) -> tuple[int, bytes]:
    """Send ``head`` and the whole ``body`` on one socket, then read the answer (Content-Length
    framed). A server that answers without reading the body resets the connection: ``sendall``
    then raises (BrokenPipeError / ConnectionResetError) and the test fails there."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head.encode("latin-1") + f"content-length: {len(body)}\r\n\r\n".encode())
        view = memoryview(body)
        for at in range(0, len(body), 256 * 1024):
            sock.sendall(view[at:at + 256 * 1024])
        return read_answer(sock)


def read_answer(sock: socket.socket, data: bytes = b"") -> tuple[int, bytes]:
    """One Content-Length framed answer off ``sock`` (``data``: what was already received)."""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before the answer: {data!r}"
        data += chunk
    headers, _, rest = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", headers).group(1))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside the answer"
        rest += chunk
    return int(headers.split(b" ", 2)[1]), rest[:length]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_wrong_key_with_a_big_body_gets_the_401(dialect: str, sim) -> None:
    """Wrong key and an 8 MiB body on a raw socket: the whole body is written (no EPIPE after
    ~3 MiB, as when the 401 was sent unread) and the dialect's 401 is read."""
    head = (f"POST /keyed/{dialect}{PATHS[dialect]} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            "x-api-key: wrong\r\nauthorization: Bearer wrong\r\nanthropic-version: 2023-06-01\r\n")
    body = msgspec.json.encode(request_body(dialect, "SIM:text x" + " pad" * (BIG // 4)))
    async with open_gateway(CONFIG, sim=sim) as (url, _):
        status, answer = await trio.to_thread.run_sync(raw_exchange, port_of(url), head, body)
    assert status == 401 and "invalid or missing API key" in answer.decode()
    assert sim.chat_requests == 0


@pytest.mark.parametrize(("method", "path", "status"), [("POST", "/nowhere", 404),
                                                          ("PUT", "/chat/v1/chat/completions", 405)])
async def test_no_route_with_a_big_body_gets_its_answer(method: str, path: str, status: int, sim) -> None:
    """404 and 405 with an 8 MiB body: read first, then answered, never a reset."""
    async with open_gateway(CONFIG, sim=sim) as (url, _):
        got, answer = await trio.to_thread.run_sync(
            raw_exchange, port_of(url), f"{method} {path} HTTP/1.1\r\nhost: x\r\n", b"x" * BIG)
    assert got == status and f"no route for {method} {path}" in answer.decode()


def continue_exchange(port: int, head: str, body: bytes) -> tuple[int, bytes]:
    """``Expect: 100-continue``: wait for hypercorn's ``100 Continue`` (it answers it itself, before
    the app reads), send the whole body, then read the final answer (Content-Length framed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head.encode("latin-1") + f"expect: 100-continue\r\ncontent-length: {len(body)}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed before 100 Continue: {data!r}"
            data += chunk
        interim, _, data = data.partition(b"\r\n\r\n")
        assert interim.startswith(b"HTTP/1.1 100 "), interim
        sock.sendall(body)
        return read_answer(sock, data)


async def test_declared_too_large_after_100_continue_is_drained_and_refused(sim) -> None:
    """The client waits for ``100 Continue``, which hypercorn sends at once, so the body follows:
    the 413 is sent after reading it (never a reset mid-body), and the upstream is not called."""
    config = "server: {max_body_bytes: 1048576}\n" + CONFIG
    head = "POST /chat/v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    async with open_gateway(config, sim=sim) as (url, _):
        status, answer = await trio.to_thread.run_sync(continue_exchange, port_of(url), head, b"x" * BIG)
    assert status == 413 and "exceeds the limit of 1048576 bytes" in answer.decode()
    assert sim.chat_requests == 0


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_request_id_is_a_plain_token_and_echoed(dialect: str, sim) -> None:
    """A plain client id is kept, logged and echoed; a 15 KB one, or one with other characters,
    is replaced by a minted id (never logged); a 401 carries its id too."""
    ids = ("req-1.a:B_z", "x" * 15_000, "abc def", "id\u00e9", "x" * 129)
    async with open_gateway(CONFIG, sim=sim) as (url, _):
        with structlog.testing.capture_logs() as logs:
            async with httpx.AsyncClient(timeout=10) as http:
                replies = [await http.post(f"{url}/{dialect}{PATHS[dialect]}", json=request_body(dialect, "SIM:text hi"),
                                           headers={**auth_headers(dialect, "k"), "x-request-id": rid.encode()})
                           for rid in ids]
                refused = await http.post(f"{url}/keyed/{dialect}{PATHS[dialect]}", json=request_body(dialect, "x"),
                                          headers={**auth_headers(dialect, "wrong"), "x-request-id": "refused-1"})
            with trio.move_on_after(2):
                while len([e for e in logs if e.get("event") == "request_finished"]) < len(ids) + 1:
                    await trio.sleep(0.001)
    logged = [e["request_id"] for e in logs if e.get("event") == "request_finished"]
    echoed = [r.headers["x-request-id"] for r in replies]
    assert all(r.status_code == 200 for r in replies)
    assert echoed[0] == "req-1.a:B_z" and all(re.fullmatch("[0-9a-f]{32}", rid) for rid in echoed[1:])
    assert len(set(echoed)) == len(ids) and sorted(logged) == sorted([*echoed, "refused-1"])
    assert refused.status_code == 401 and refused.headers["x-request-id"] == "refused-1"
    assert not any("x" * 129 in json.dumps(entry, default=str) for entry in logs)


@contextmanager
def log_lines() -> Iterator[io.BytesIO]:
    """The gateway's real JSON log lines (as hypercorn's stderr would get them), in a buffer."""
    buf = io.BytesIO()
    gwlog.configure("info", json=True, file=buf)
    try:
        yield buf
    finally:
        structlog.reset_defaults()


async def lines_with(buf: io.BytesIO, event: str, count: int = 1) -> list[bytes]:
    with trio.move_on_after(2):
        while buf.getvalue().count(f'"event":"{event}"'.encode()) < count:
            await trio.sleep(0.001)
    return [line for line in buf.getvalue().split(b"\n") if f'"event":"{event}"'.encode() in line]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_bug_outside_the_pipeline_is_the_dialects_500(dialect: str, sim, monkeypatch) -> None:
    """A codec that raises an unexpected exception (here: decoding the body; Responses reads it
    with ``read``, for its stored history): the client gets the dialect's 500 ``api_error`` body,
    the log a ``request_failed`` line with the traceback and the ``request_finished`` line with
    status 500; the next request is served."""
    async with open_gateway(CONFIG, sim=sim) as (url, gateway):
        codec = gateway.pipelines[dialect].codec
        attr = "read" if dialect == "responses" else "decode_request"
        real = getattr(codec, attr)

        def broken(body: bytes, *rest):
            if b"BREAK" in body:
                raise RuntimeError("codec fault injected by the test")
            return real(body, *rest)

        monkeypatch.setattr(codec, attr, broken)
        with log_lines() as buf:
            async with httpx.AsyncClient(timeout=10) as http:
                failed = await call(http, f"{url}/{dialect}", dialect, "SIM:text BREAK")
                after = await call(http, f"{url}/{dialect}", dialect, "SIM:text fine")
            failures = await lines_with(buf, "request_failed")
            finished = await lines_with(buf, "request_finished", 2)
    assert (failed.status, failed.error_kind) == (500, INTERNAL[dialect]), failed.raw
    assert failed.error["message"] == "internal error in the gateway: RuntimeError"
    assert after.status == 200 and after.text == "fine"
    failure = json.loads(failures[0])
    assert len(failures) == 1 and "Traceback" in failure["exception"]
    assert "RuntimeError: codec fault injected by the test" in failure["exception"]
    assert [json.loads(line)["status"] for line in finished] == [500, 200]


async def test_models_list_fault_is_the_dialects_500(sim, monkeypatch) -> None:
    """The same boundary covers the endpoints answered without the pipeline (GET /v1/models)."""
    async with open_gateway(CONFIG, sim=sim) as (url, gateway):
        def broken(models):
            raise KeyError("models")

        monkeypatch.setattr(gateway.pipelines["anthropic"].codec, "render_models", broken)
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(f"{url}/anthropic/v1/models", headers=auth_headers("anthropic", None))
    reply = fold("anthropic", response.status_code, response.headers, response.content)
    assert (reply.status, reply.error_kind) == (500, "api_error")
    assert reply.error["message"] == "internal error in the gateway: KeyError"


async def test_many_losses_make_a_short_log_line(sim) -> None:
    """50,000 unknown blocks in one user message (a 750 KB body) used to make a 2.64 MB
    ``request_finished`` line: now the first 20 losses, the total and the count by kind."""
    content = [{"type": "x"}] * 50_000 + [{"type": "text", "text": "SIM:text ok"}]
    body = json.dumps({"model": "claude-opus-5-5", "max_tokens": 100,
                       "messages": [{"role": "user", "content": content}]}).encode()
    assert len(body) > 750_000
    async with open_gateway(CONFIG, sim=sim) as (url, _):
        with log_lines() as buf:
            async with httpx.AsyncClient(timeout=30) as http:
                response = await http.post(f"{url}/anthropic/v1/messages", content=body,
                                           headers=auth_headers("anthropic", "k"))
            finished = await lines_with(buf, "request_finished")
    assert response.status_code == 200 and response.json()["content"][-1]["text"] == "ok"
    assert len(finished) == 1 and len(finished[0]) < 4096, len(finished[0])
    line = json.loads(finished[0])
    assert line["losses_total"] == 50_000 and line["loss_kinds"] == {"unknown_block": 50_000}
    assert line["losses"][:2] == ["unknown_block: messages.0.content.0: x dropped",
                                  "unknown_block: messages.0.content.1: x dropped"]
    assert len(line["losses"]) == 20
