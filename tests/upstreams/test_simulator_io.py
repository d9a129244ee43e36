"""Tests for the simulator's I/O adapters: ``SimulatorTransport`` (in-process httpx, incremental
streaming, drops, consumer close records) and the HTTP server (``serve_simulator`` driven by the
official ``openai`` SDK and by httpx, and ``python -m upstreams.simulator``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import httpx
import openai
import pytest
import trio

from upstreams.simulator import (
    SimConfig, Simulator, SimulatorApp, SimulatorTransport, serve_simulator,
)
from upstreams.simulator.__main__ import parse_args
from upstreams.simulator.testing import accumulate, sse_chunks

BASH = {"type": "function", "function": {"name": "Bash", "parameters": {
    "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}


def request(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "deepseek-v4-pro", "messages": [{"role": "user", "content": text}],
            "stream": True, **extra}


def sim_client(sim: Simulator) -> tuple[httpx.AsyncClient, SimulatorTransport]:
    transport = SimulatorTransport(sim)
    return httpx.AsyncClient(transport=transport, base_url="http://sim/v1"), transport


class TestTransport:
    async def test_pieces_arrive_incrementally(self, autojump_clock):
        """Each SSE frame arrives on its own, chunk_delay_s apart."""
        sim = Simulator(SimConfig(chunk_delay_s=1.0))
        client, transport = sim_client(sim)
        start = trio.current_time()
        times, pieces = [], []
        async with client, client.stream("POST", "/chat/completions",
                                         json=request("SIM:text a b c d e f")) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            async for piece in resp.aiter_raw():
                times.append(trio.current_time() - start)
                pieces.append(piece)
        assert times == [float(i + 1) for i in range(len(pieces))]
        assert all(p.endswith(b"\n\n") for p in pieces) and pieces[-1] == b"data: [DONE]\n\n"
        record = transport.connections[-1]
        assert record.complete and not record.client_closed
        assert record.closed_at is not None and record.request_no == 1

    async def test_early_close_is_recorded(self, autojump_clock):
        """Closing the response early records the close time and an incomplete read."""
        transport = SimulatorTransport(Simulator(SimConfig(chunk_delay_s=1.0)))
        body = json.dumps(request("SIM:text a b c d e f g h")).encode()
        response = await transport.handle_async_request(
            httpx.Request("POST", "http://sim/chat/completions", content=body))
        got = 0
        async for _ in response.stream:
            got += 1
            if got == 3:
                break
        await trio.sleep(2)
        await response.aclose()
        record = transport.connections[-1]
        assert record.closed_at == trio.current_time() == 5.0
        assert record.pieces_sent == 3 and record.total_pieces > 3
        assert record.client_closed and not record.complete

    async def test_cancel_during_stall_closes(self, autojump_clock):
        """A deadline during a stall cancels the read and the close is recorded at once."""
        sim = Simulator(SimConfig(stall_s=60.0))
        client, transport = sim_client(sim)
        async with client:
            with trio.move_on_after(5) as scope:
                async with client.stream("POST", "/chat/completions",
                                         json=request("SIM:fault stall")) as resp:
                    async for _ in resp.aiter_raw():
                        pass
        assert scope.cancelled_caught
        record = transport.connections[-1]
        assert record.closed_at == pytest.approx(5.0)
        assert record.client_closed and 0 < record.pieces_sent < record.total_pieces

    async def test_drop_raises(self):
        """A simulated drop surfaces as httpx.RemoteProtocolError mid-body."""
        client, transport = sim_client(Simulator())
        got = []
        async with client:
            with pytest.raises(httpx.RemoteProtocolError):
                async with client.stream("POST", "/chat/completions",
                                         json=request("SIM:fault drop\nSIM:text a b c")) as resp:
                    async for piece in resp.aiter_raw():
                        got.append(piece)
        assert got and b"[DONE]" not in b"".join(got)
        assert transport.connections[-1].dropped

    async def test_json_and_errors(self):
        """Non-streaming answers and scheduled HTTP faults pass through unchanged."""
        sim = Simulator(SimConfig(faults=[{"on_request": 2, "kind": "429"}]))
        client, _ = sim_client(sim)
        async with client:
            ok = await client.post("/chat/completions", json=request("SIM:text hi", stream=False))
            limited = await client.post("/chat/completions", json=request("hi"))
            models = await client.get("/models")
        assert ok.json()["choices"][0]["message"]["content"] == "hi"
        assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
        assert models.json()["data"][0]["id"] == "deepseek-v4-pro"
        assert sim.requests[0]["messages"][0]["content"] == "SIM:text hi"


async def _wait_for(predicate, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


class TestServer:
    async def test_openai_sdk_stream_with_reasoning_and_tools(self, nursery):
        """The official SDK streams reasoning_content, then content, then a tool call."""
        sim = Simulator(SimConfig(api_key="sk-test"))
        url = await nursery.start(serve_simulator, sim)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)

        def run() -> dict[str, Any]:
            client = openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0)
            stream = client.chat.completions.create(
                model="deepseek-v4-pro", stream=True, tools=[BASH],
                messages=[{"role": "user", "content": "SIM:shell echo hi"}],
                stream_options={"include_usage": True},
                extra_body={"thinking": {"type": "enabled"}})
            chunks = [chunk.model_dump() for chunk in stream]
            return accumulate(chunks)

        got = await trio.to_thread.run_sync(run)
        assert "echo hi" in got["reasoning"]
        assert got["content"] == "Running `echo hi`."
        assert [(c["name"], json.loads(c["arguments"])) for c in got["calls"]] == [
            ("Bash", {"command": "echo hi"})]
        assert got["calls"][0]["id"].startswith("call_00_")
        assert got["finish"] == "tool_calls" and got["usage"]["prompt_cache_miss_tokens"] > 0

    async def test_openai_sdk_errors_and_json(self, nursery):
        """SDK errors map from our statuses; non-streaming parses into the SDK's types."""
        sim = Simulator(SimConfig(faults=[{"on_request": 1, "kind": "429"}]))
        url = await nursery.start(serve_simulator, sim)

        def run() -> tuple[str, str, str]:
            client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
            with pytest.raises(openai.RateLimitError):
                client.chat.completions.create(model="deepseek-v4-pro", messages=[
                    {"role": "user", "content": "hi"}])
            with pytest.raises(openai.BadRequestError) as info:
                client.chat.completions.create(model="nope", messages=[
                    {"role": "user", "content": "hi"}])
            done = client.chat.completions.create(model="deepseek-v4-flash", messages=[
                {"role": "user", "content": "SIM:text plain"}])
            message = done.choices[0].message
            return info.value.message, message.content, message.model_extra["reasoning_content"]

        error, content, reasoning = await trio.to_thread.run_sync(run)
        assert "Model Not Exist" in error and content == "plain" and reasoning

    async def test_client_disconnect_is_recorded(self, nursery):
        """Closing the HTTP stream during a stall is seen by the server as a disconnect."""
        app = SimulatorApp(Simulator(SimConfig(stall_s=30.0)))
        url = await nursery.start(serve_simulator, app)
        body = json.dumps(request("SIM:fault stall\nSIM:text a b c d")).encode()
        host, port = url.removeprefix("http://").split(":")
        stream = await trio.open_tcp_stream(host, int(port))
        async with stream:
            await stream.send_all(
                b"POST /chat/completions HTTP/1.1\r\nhost: sim\r\ncontent-type: application/json"
                b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            received = b""
            with trio.fail_after(5):
                while b"data: " not in received:
                    received += await stream.receive_some()
        assert received.startswith(b"HTTP/1.1 200")
        await _wait_for(lambda: app.connections and app.connections[-1].closed_at is not None)
        record = app.connections[-1]
        assert record.client_closed and not record.complete

    async def test_drop_cuts_connection(self, nursery):
        """A drop over real HTTP is an incomplete chunked body for the client."""
        app = SimulatorApp(Simulator())
        url = await nursery.start(serve_simulator, app)
        got = b""
        async with httpx.AsyncClient(base_url=url) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                async with client.stream("POST", "/v1/chat/completions",
                                         json=request("SIM:fault drop\nSIM:text a b c")) as resp:
                    async for piece in resp.aiter_raw():
                        got += piece
        assert got.startswith(b"data: ") and b"[DONE]" not in got
        assert app.connections[-1].dropped

    async def test_streams_incrementally_over_http(self, nursery):
        """Frames are flushed one by one with their delays, not buffered."""
        url = await nursery.start(serve_simulator, SimConfig(chunk_delay_s=0.05))
        arrivals, pieces = [], []
        async with httpx.AsyncClient(base_url=url) as client:
            async with client.stream("POST", "/chat/completions",
                                     json=request("SIM:text one two three")) as resp:
                start = trio.current_time()
                async for piece in resp.aiter_raw():
                    arrivals.append(trio.current_time() - start)
                    pieces.append(piece)
        assert accumulate(sse_chunks(pieces))["content"] == "one two three"
        assert len(arrivals) >= 5
        assert arrivals[-1] - arrivals[0] >= 0.05 * (len(arrivals) - 1) * 0.9


class TestCli:
    def test_parse_args(self):
        """--fault-on and friends become a SimConfig."""
        _, config = parse_args(["--fault-on", "2:429", "--fault-on", "3:503", "--api-key", "k",
                                "--reasoning-field", "reasoning", "--thinking-off"])
        assert [(f.on_request, f.kind) for f in config.faults] == [(2, "429"), (3, "503")]
        assert config.api_key == "k" and config.reasoning_field == "reasoning"
        assert config.thinking_default is False
        with pytest.raises(SystemExit):
            parse_args(["--fault-on", "2:explode"])

    def test_options_set_any_field(self):
        """--options JSON reaches every SimConfig field; an unknown field is a usage error."""
        _, config = parse_args(["--options", '{"verify_replay": true, "context_window": 5000}'])
        assert config.verify_replay is True and config.context_window == 5000
        for bad in ('{"verify_replay": "yes"}', '{"nope": 1}', "[1]", "{"):
            with pytest.raises(SystemExit):
                parse_args(["--options", bad])

    def test_module_prints_url_and_serves(self):
        """`python -m upstreams.simulator --port 0` prints its URL once bound, then serves."""
        proc = subprocess.Popen([sys.executable, "-m", "upstreams.simulator", "--port", "0"],
                                stdout=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            match = re.fullmatch(r"simulator listening on (http://127\.0\.0\.1:(\d+))\n", line)
            assert match and int(match.group(2)) > 0
            models = httpx.get(match.group(1) + "/v1/models", timeout=5)
            assert models.status_code == 200 and models.json()["object"] == "list"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            proc.stdout.close()
