"""Usage, cost and limits per gateway key, as users run them: the official SDKs against the gateway
served by hypercorn (in-process with the memory store; as three ``hypercorn -k trio pipeline:app``
processes on one real redis-server for the replicas), the strict simulator server upstream.

The per-key counters in ``/metrics`` are what the clients were told (the SDKs' usage objects) and
are priced from the model table; on replicas every one of them shows the sum of all; the limits
hold across replicas; no key's value ever appears, only its env variable's name."""

from __future__ import annotations

import re
import time
from contextlib import ExitStack
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
import trio

from pipeline.model_limits import DEEPSEEK_PRICES
from tests.e2e.serving import SIM, open_gateway
from tests.resilience.gateway_process import GatewayProcess, open_gateway_process
from upstreams.simulator.testing import SimulatorProcess

KEYS = {"GW_KEY_ALICE": "sk-alice-7f3a9c", "GW_KEY_BOB": "sk-bob-2d8e41"}
BOB = {"x-api-key": KEYS["GW_KEY_BOB"]}  # /metrics takes any pipeline's gateway key
CONFIG = """
store: {%s}
upstreams:
  sim: {%s}
pipelines:
  claude: {client: anthropic, mount: /claude, upstream: sim, stages: [thinking_filter, token_budget, tool_ids],
           api_keys_env: [GW_KEY_ALICE, GW_KEY_BOB], key_limits: {%s}}
  codex: {client: responses, mount: /codex, upstream: sim, stages: [thinking_filter, token_budget, tool_ids],
          api_keys_env: [GW_KEY_ALICE, GW_KEY_BOB]}
"""


@pytest.fixture(autouse=True)
def gateway_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)


def metric(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{"):
            got = ",".join(sorted(line[line.index("{") + 1:line.index("}")].split(",")))
            if got == wanted:
                return float(line.rsplit(" ", 1)[1])
    return None


def claude(url: str, key: str, prompt: str = "SIM:text hello there") -> anthropic.types.Message:
    client = anthropic.Anthropic(base_url=url + "/claude", api_key=key, max_retries=0)
    return client.messages.create(model="claude-opus-5-5", max_tokens=2_000,
                                  messages=[{"role": "user", "content": prompt}])


def codex(url: str, key: str) -> openai.types.responses.Response:
    client = openai.OpenAI(base_url=url + "/codex/v1", api_key=key, max_retries=0)
    return client.responses.create(model="gpt-5.5", input="SIM:text from codex", store=False,
                                   reasoning={"effort": "high"})


def expected_cost(model: str, uncached: int, cached: int, output: int) -> float:
    price = DEEPSEEK_PRICES[model]
    return (uncached * price.input + cached * price.cached_input + output * price.output) / 1e6


async def test_usage_and_cost_per_key_in_metrics(sim: SimulatorProcess) -> None:
    config = CONFIG % ("backend: memory", SIM, "")
    async with open_gateway(config, env=KEYS, sim=sim) as (url, _):
        alice = [await trio.to_thread.run_sync(claude, url, KEYS["GW_KEY_ALICE"]) for _ in range(3)]
        codex_alice = await trio.to_thread.run_sync(codex, url, KEYS["GW_KEY_ALICE"])
        bob = await trio.to_thread.run_sync(claude, url, KEYS["GW_KEY_BOB"])
        refused = await trio.to_thread.run_sync(lambda: httpx.post(url + "/claude/v1/messages", json={}))
        text = (await trio.to_thread.run_sync(lambda: httpx.get(url + "/metrics", headers=BOB))).text
    assert refused.status_code == 401
    model = "deepseek-v4-pro"
    assert metric(text, "gateway_key_requests_total", key="GW_KEY_ALICE", model=model) == 4
    assert metric(text, "gateway_key_requests_total", key="GW_KEY_BOB", model=model) == 1
    a_in = sum(m.usage.input_tokens for m in alice) + codex_alice.usage.input_tokens
    a_cached = sum(m.usage.cache_read_input_tokens or 0 for m in alice) \
        + codex_alice.usage.input_tokens_details.cached_tokens
    a_out = sum(m.usage.output_tokens for m in alice) + codex_alice.usage.output_tokens
    # Anthropic's input_tokens exclude the cached ones; Responses' include them.
    uncached = sum(m.usage.input_tokens for m in alice) + codex_alice.usage.input_tokens \
        - codex_alice.usage.input_tokens_details.cached_tokens
    assert a_in > 0 and a_out > 0
    assert metric(text, "gateway_key_tokens_total", key="GW_KEY_ALICE", model=model, kind="input") == uncached
    assert metric(text, "gateway_key_tokens_total", key="GW_KEY_ALICE", model=model, kind="cached_input") == a_cached
    assert metric(text, "gateway_key_tokens_total", key="GW_KEY_ALICE", model=model, kind="output") == a_out
    assert metric(text, "gateway_key_tokens_total", key="GW_KEY_BOB", model=model, kind="output") == \
        bob.usage.output_tokens
    cost = metric(text, "gateway_key_cost_usd_total", key="GW_KEY_ALICE", model=model)
    assert cost == pytest.approx(expected_cost(model, uncached, a_cached, a_out), abs=1e-8)
    assert not any(value in text for value in KEYS.values())


async def test_a_key_over_its_limits_gets_429_in_its_dialect(sim: SimulatorProcess) -> None:
    config = CONFIG % ("backend: memory", SIM, "per_minute: 3, concurrent: 2")
    sim.reset(chunk_delay_s=0.2)
    if time.time() % 60 > 40:  # the four requests counted must fall in one calendar minute
        await trio.sleep(61 - time.time() % 60)
    async with open_gateway(config, env=KEYS, sim=sim) as (url, _):
        errors: list[anthropic.APIStatusError] = []

        async def one(key: str) -> None:
            try:
                await trio.to_thread.run_sync(claude, url, key, "SIM:text one two three four five six")
            except anthropic.APIStatusError as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:  # three at once: the third is over concurrent: 2
            for _ in range(3):
                nursery.start_soon(one, KEYS["GW_KEY_ALICE"])
        assert len(errors) == 1 and errors[0].status_code == 429
        assert errors[0].body["error"]["type"] == "rate_limit_error"
        assert "requests in flight" in errors[0].body["error"]["message"]
        sim.reset()
        await one(KEYS["GW_KEY_ALICE"])  # the fourth of this minute: over per_minute: 3
        assert len(errors) == 2 and errors[1].status_code == 429
        assert "a minute" in errors[1].body["error"]["message"] and int(errors[1].response.headers["retry-after"]) >= 1
        await one(KEYS["GW_KEY_BOB"])  # another key has its own counters
        assert len(errors) == 2


def test_replicas_add_up_and_share_the_limits(sim, redis_url: str, tmp_path: Path) -> None:
    prefix = re.sub(r"\W", "", tmp_path.name)
    config = CONFIG % (f"backend: redis, url: '{redis_url}', key_prefix: '{prefix}:'", SIM, "concurrent: 2")
    with ExitStack() as stack:
        replicas: list[GatewayProcess] = []
        for i in range(3):
            folder = tmp_path / f"replica{i}"
            folder.mkdir()
            replicas.append(stack.enter_context(open_gateway_process(folder, config, {**KEYS, "SIM_URL": sim.url})))
        answers = [claude(replicas[i % 3].url, KEYS["GW_KEY_ALICE"]) for i in range(7)]
        outputs = sum(m.usage.output_tokens for m in answers)
        texts = [httpx.get(r.url + "/metrics", headers=BOB).text for r in replicas]
        for text in texts:  # every replica shows all seven requests, whichever served them
            assert metric(text, "gateway_key_requests_total", key="GW_KEY_ALICE", model="deepseek-v4-pro") == 7
            assert metric(text, "gateway_key_tokens_total", key="GW_KEY_ALICE", model="deepseek-v4-pro",
                          kind="output") == outputs
        # Two slow answers in flight on two replicas: a third on the third replica is refused.
        sim.reset(chunk_delay_s=0.3)
        results: list[object] = []

        async def main() -> None:
            async def slow(i: int) -> None:
                try:
                    results.append(await trio.to_thread.run_sync(claude, replicas[i].url, KEYS["GW_KEY_ALICE"],
                                                                 "SIM:text a b c d e f g h"))
                except anthropic.APIStatusError as exc:
                    results.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(slow, 0)
                nursery.start_soon(slow, 1)
                await trio.sleep(1.0)
                nursery.start_soon(slow, 2)

        trio.run(main)
        refused = [r for r in results if isinstance(r, anthropic.APIStatusError)]
        assert len(results) == 3 and len(refused) == 1 and refused[0].status_code == 429
