"""The simulator as its own process, as the end-to-end tests use it: ``python -m upstreams.simulator``
reports its port, takes a whole ``SimConfig`` (``--options``, over the flags), with
``--control`` answers the ``/_sim/`` endpoints (reset, received bodies, count, connection records),
and injects every fault exactly as the in-process transport does.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import httpx
import msgspec
import pytest

from tests.conftest import ROOT
from tests.e2e.serving import SIM_KEY
from upstreams.simulator import SimConfig, Simulator, SimulatorTransport
from upstreams.simulator.config import FAULT_KINDS
from upstreams.simulator.__main__ import parse_args
from upstreams.simulator.testing import SimulatorProcess


def chat(sim: SimulatorProcess, prompt: str, *, key: str = SIM_KEY, stream: bool = False) -> httpx.Response:
    return httpx.post(sim.url + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, timeout=10,
                      json={"model": "deepseek-v4-pro", "stream": stream, "messages": [{"role": "user", "content": prompt}]})


class TestCli:
    def test_options_and_flags(self, tmp_path) -> None:
        """--options (text or @file) gives every SimConfig field and wins over the flags; the flags
        set single fields; --fault-on adds to the options' faults."""
        whole = ('{"verify_replay": true, "context_window": 8192, "stall_s": 2.5, '
                 '"faults": [{"on_request": 1, "kind": "500"}], "models": ["local-model"]}')
        (tmp_path / "sim.json").write_text(whole)
        for source in (whole, f"@{tmp_path / 'sim.json'}"):
            _, config = parse_args(["--options", source, "--context-window", "16384", "--max-output-tokens", "4096",
                                    "--fault-on", "2:drop", "--slow-chunk", "0.01", "--thinking-off"])
            assert config.verify_replay and config.stall_s == 2.5 and config.models == ("local-model",)
            assert config.context_window == 8192 and config.slow_chunk_s == 0.01 and config.max_output_tokens == 4096
            assert [(f.on_request, f.kind) for f in config.faults] == [(1, "500"), (2, "drop")]
            assert config.thinking_default is False
        _, plain = parse_args([])
        assert plain == SimConfig()

    def test_every_field_has_a_flag(self) -> None:
        """Each SimConfig field can be set by a flag of its own, not only through --options."""
        flags = {"api_key": ["--api-key", "k"], "models": ["--model", "m1", "--model", "m2"],
                 "faults": ["--fault-on", "3:stall"], "thinking_default": ["--thinking-off"],
                 "reasoning_field": ["--reasoning-field", "reasoning"], "replay_check": ["--replay-check", "off"],
                 "verify_replay": ["--verify-replay"], "reject_mid_system": ["--reject-mid-system"],
                 "usage_on_finish_chunk": ["--usage-on-finish-chunk"], "interleave_parallel": ["--no-interleave"],
                 "context_window": ["--context-window", "1000"], "max_output_tokens": ["--max-output-tokens", "999"],
                 "chunk_delay_s": ["--chunk-delay", "0.5"], "keepalive_comments": ["--keepalive", "4"],
                 "keepalive_interval_s": ["--keepalive-interval", "0.5"], "stall_s": ["--stall", "0.5"],
                 "slow_chunk_s": ["--slow-chunk", "0.5"], "history": ["--history", "5"], "seed": ["--seed", "5"],
                 "responses_flavour": ["--responses-flavour", "llamacpp"],
                 "messages_flavour": ["--messages-flavour", "anthropic"]}
        assert set(flags) == {f.name for f in msgspec.structs.fields(SimConfig)}
        for field, argv in flags.items():
            _, config = parse_args(argv)
            assert getattr(config, field) != getattr(SimConfig(), field), field

    @pytest.mark.parametrize("argv", [["--options", "[1]"], ["--options", "{nope"],
                                      ["--options", '{"no_such_field": 1}'], ["--options", "@/nonexistent/sim.json"],
                                      ["--fault-on", "1:429", "--fault-on", "1:503"]])
    def test_bad_config_is_a_usage_error(self, argv: list[str]) -> None:
        with pytest.raises(SystemExit):
            parse_args(argv)

    def test_port_file(self, tmp_path) -> None:
        """--port-file holds the bound port once the server answers on it."""
        port_file = tmp_path / "port"
        proc = subprocess.Popen([sys.executable, "-m", "upstreams.simulator", "--port-file", str(port_file)],
                                cwd=ROOT, stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while not port_file.exists():
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.02)
            port = int(port_file.read_text())
            models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5)
            assert models.status_code == 200 and models.json()["data"][0]["id"] == "deepseek-v4-pro"
            assert httpx.get(f"http://127.0.0.1:{port}/_sim/requests", timeout=5).status_code == 404  # no --control
        finally:
            proc.terminate()
            proc.wait(10)


class TestControl:
    def test_reset_stats_requests_connections(self, sim: SimulatorProcess) -> None:
        """Bodies and counts since the last reset; a reset applies a new config (here a fault)."""
        assert sim.chat_requests == 0 and sim.requests() == []
        assert chat(sim, "SIM:text one").json()["choices"][0]["message"]["content"] == "one"
        assert chat(sim, "SIM:text two", key="wrong").status_code == 401
        assert chat(sim, "SIM:text three", stream=True).status_code == 200
        assert sim.chat_requests == 2  # the 401 is answered before the body is counted
        assert [r["messages"][0]["content"] for r in sim.requests()] == ["SIM:text one", "SIM:text three"]
        assert [r["messages"][0]["content"] for r in sim.requests(last=1)] == ["SIM:text three"]
        records = sim.connections()
        assert [(r.status, r.request_no) for r in records] == [(200, 1), (401, 0), (200, 2)]
        assert all(r.complete and not r.client_closed and r.closed_at >= r.opened_at for r in records)
        assert records[-1].closed_at <= time.monotonic()  # the server's clock is this one's

        sim.reset(faults=[{"on_request": 1, "kind": "503"}])
        assert sim.chat_requests == 0 and sim.connections() == [] and sim.requests() == []
        assert chat(sim, "SIM:text four").status_code == 503
        assert chat(sim, "SIM:text five").status_code == 200
        sim.reset()
        assert chat(sim, "SIM:text six").status_code == 200

    def test_bad_reset_is_refused(self, sim: SimulatorProcess) -> None:
        response = httpx.post(sim.url + "/_sim/reset", content=b'{"context_window": "big"}')
        assert response.status_code == 400 and "bad SimConfig" in response.json()["error"]["message"]
        assert httpx.get(sim.url + "/_sim/nothing").status_code == 404


async def read(client: httpx.AsyncClient, prompt: str, *, stream: bool) -> tuple[int, bytes, bool]:
    """(status, body bytes with the ``created`` times blanked, cut mid-body) of one chat request."""
    body = b""
    cut = False
    request = {"model": "deepseek-v4-pro", "stream": stream, "messages": [{"role": "user", "content": prompt}]}
    async with client.stream("POST", "/v1/chat/completions", json=request,
                             headers={"authorization": f"Bearer {SIM_KEY}"}) as response:
        try:
            async for piece in response.aiter_raw():
                body += piece
        except httpx.RemoteProtocolError:
            cut = True
    return response.status_code, re.sub(rb'"created":\d+', b'"created":0', body), cut


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
@pytest.mark.parametrize("kind", sorted(FAULT_KINDS))
async def test_every_fault_is_the_same_from_the_server(kind: str, stream: bool, sim: SimulatorProcess) -> None:
    """Each fault, from the simulator server, is byte for byte what the in-process transport
    gives (same config, same seed), a drop included (the connection is cut after the same bytes)."""
    config = SimConfig(api_key=SIM_KEY, stall_s=0.05, slow_chunk_s=0.001, keepalive_interval_s=0.001, seed=7)
    sim.reset(config)
    prompt = f"SIM:text {' '.join(f'w{i}' for i in range(12))}\nSIM:fault {kind}"
    async with httpx.AsyncClient(base_url=sim.url, timeout=10) as over_http, httpx.AsyncClient(
            base_url="http://sim.invalid", transport=SimulatorTransport(Simulator(config)), timeout=10) as in_process:
        served = await read(over_http, prompt, stream=stream)
        expected = await read(in_process, prompt, stream=stream)
    assert served == expected
    assert served[2] == (kind == "drop")


def test_fault_on_flag_counts_requests_from_each_reset() -> None:
    """``--fault-on N:KIND`` given to the process hits the N-th chat request, again after a reset."""
    with SimulatorProcess(SimConfig(api_key=SIM_KEY), args=["--fault-on", "2:429", "--fault-on", "3:drop"]) as sim:
        for _ in range(2):
            first, second = chat(sim, "SIM:text a"), chat(sim, "SIM:text b")
            assert (first.status_code, second.status_code) == (200, 429)
            assert second.headers["retry-after"] == "1"
            with pytest.raises(httpx.RemoteProtocolError):
                chat(sim, "SIM:text c d e f", stream=True)
            assert chat(sim, "SIM:text g").status_code == 200 and sim.chat_requests == 4
            sim.reset()


def test_a_dead_process_is_reported() -> None:
    """A control call after the process died says so, with its exit status."""
    sim = SimulatorProcess()
    sim.start()
    sim._proc.kill()
    sim._proc.wait()
    with pytest.raises(RuntimeError, match=r"the simulator process exited \(-9\)"):
        sim.reset()
    sim.stop()
