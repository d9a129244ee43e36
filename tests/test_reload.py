"""Configuration reload as users run it: ``hypercorn -k trio pipeline:app`` as its own process,
the strict simulator server as the upstream (slowed down so streams stay open), ``SIGHUP`` sent to
the worker or the file saved. 64 streams open across a reload all finish whole on the
configuration they began with; the next request is served by the new one; a broken file is
refused with one line and the old configuration keeps serving."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
import trio

from pipeline.app import Gateway
from tests.e2e.serving import SIM
from tests.resilience.gateway_process import GatewayProcess, open_gateway_process
from upstreams.simulator.testing import SimulatorProcess

WORDS = " ".join(f"w{i}" for i in range(40))
STREAMS = 64


def config(model: str, *, poll_s: float = 0) -> str:
    sim = SIM.replace("default: deepseek-v4-pro", f"default: {model}")
    return f"""
server: {{reload_poll_s: {poll_s}}}
upstreams:
  sim: {{{sim}}}
pipelines:
  chat: {{client: chat, upstream: sim, stages: [token_budget, tool_ids]}}
"""


def log_lines(gateway: GatewayProcess, event: str) -> list[dict]:
    lines = []
    for raw in gateway.log.read_text().splitlines():
        if raw.startswith("{") and f'"{event}"' in raw:
            lines.append(json.loads(raw))
    return lines


async def wait_for(predicate, what: str, limit_s: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit_s
    while not await trio.to_thread.run_sync(predicate):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await trio.sleep(0.05)


async def stream_once(client: httpx.AsyncClient, url: str, results: list[tuple[int, str, str | None, bool]]) -> None:
    body = {"model": "deepseek-v4-pro", "stream": True, "messages": [{"role": "user", "content": f"SIM:text {WORDS}"}]}
    text, finish, done = [], None, False
    async with client.stream("POST", url + "/v1/chat/completions", json=body) as reply:
        async for line in reply.aiter_lines():
            if line == "data: [DONE]":
                done = True
            elif line.startswith("data: "):
                chunk = json.loads(line[6:])
                for choice in chunk.get("choices", []):
                    text.append(choice["delta"].get("content") or "")
                    finish = choice.get("finish_reason") or finish
    results.append((reply.status_code, "".join(text), finish, done))


@pytest.mark.parametrize("trigger", ["sighup", "file"])
async def test_a_reload_under_64_open_streams_drops_none(tmp_path: Path, sim: SimulatorProcess, trigger: str) -> None:
    sim.reset(chunk_delay_s=0.05)  # 40 words: each stream stays open about 2 s
    poll_s = 0.2 if trigger == "file" else 0
    with open_gateway_process(tmp_path, config("deepseek-v4-pro", poll_s=poll_s), env={"SIM_URL": sim.url}) as gw:
        (worker,) = gw.workers()
        (started,) = log_lines(gw, "gateway_started")
        assert started["pid"] == worker  # the pid the README tells operators to signal
        results: list[tuple[int, str, str | None, bool]] = []
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=STREAMS + 4)) as client:
            async with trio.open_nursery() as nursery:
                for _ in range(STREAMS):
                    nursery.start_soon(stream_once, client, gw.url, results)
                await wait_for(lambda: sim.chat_requests >= STREAMS, "64 streams at the upstream")
                (tmp_path / "pipelines.yaml").write_text(config("deepseek-v4-flash", poll_s=poll_s))
                if trigger == "sighup":
                    os.kill(worker, signal.SIGHUP)
                await wait_for(lambda: bool(log_lines(gw, "config_reloaded")), "config_reloaded")
                assert not results, "a stream ended before the reload: the test proves nothing"
                after: list[tuple[int, str, str | None, bool]] = []
                await stream_once(client, gw.url, after)  # served by the new configuration
        (reloaded,) = log_lines(gw, "config_reloaded")
        assert reloaded["reason"] == ("SIGHUP" if trigger == "sighup" else "file_changed")
        assert reloaded["open_on_previous"] == STREAMS
        assert gw.proc.poll() is None and gw.workers() == [worker]  # no restart: the same worker
    assert len(results) == STREAMS
    assert all(r == (200, WORDS, "stop", True) for r in results), [r for r in results if r[1] != WORDS][:3]
    assert after == [(200, WORDS, "stop", True)]
    models = [body["model"] for body in sim.requests()]  # the newest 64, in order of arrival
    assert sim.chat_requests == STREAMS + 1
    assert models[-1] == "deepseek-v4-flash" and set(models[:-1]) == {"deepseek-v4-pro"}


async def test_a_broken_file_is_refused_with_one_line_and_the_old_one_serves(tmp_path: Path,
                                                                           sim: SimulatorProcess) -> None:
    with open_gateway_process(tmp_path, config("deepseek-v4-pro"), env={"SIM_URL": sim.url}) as gw:
        (worker,) = gw.workers()
        for broken, fault in [("pipelines: [\n", "invalid YAML"),
                              (config("deepseek-v4-pro").replace("client: chat", "client: smoke"),
                               "unknown client 'smoke'")]:
            (tmp_path / "pipelines.yaml").write_text(broken)
            count = len(log_lines(gw, "config_reload_refused"))
            os.kill(worker, signal.SIGHUP)
            await wait_for(lambda c=count: len(log_lines(gw, "config_reload_refused")) > c, "config_reload_refused")
            refused = log_lines(gw, "config_reload_refused")[-1]
            assert fault in refused["error"] and "\n" not in refused["error"]
            async with httpx.AsyncClient(timeout=30) as client:
                served: list[tuple[int, str, str | None, bool]] = []
                await stream_once(client, gw.url, served)
            assert served == [(200, WORDS, "stop", True)]
        assert not log_lines(gw, "config_reloaded") and gw.workers() == [worker]
    assert {body["model"] for body in sim.requests()} == {"deepseek-v4-pro"}


async def test_the_previous_configuration_closes_after_its_last_request(tmp_path: Path) -> None:
    path = tmp_path / "pipelines.yaml"
    path.write_text("upstreams: {sim: {type: simulator}}\npipelines: {chat: {client: chat, upstream: sim}}\n")
    gateway = Gateway(config_path=str(path))
    await gateway.startup()
    first = gateway._gen
    first.active += 1  # a request still streaming on it
    assert await gateway.reload("test")
    assert first.retired and not first.closed and gateway._gen is not first
    await first.leave()
    assert first.closed
    second = gateway._gen
    assert await gateway.reload("test") and second.closed  # nothing open on it: closed at once
    await gateway.shutdown()
    assert gateway._gen.closed
