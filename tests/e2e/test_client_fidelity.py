"""What the clients send, honoured (issue 17), end to end: the official SDKs → hypercorn →
gateway → the production transport → the simulator server (its own process).

Each dialect's client gets the stop the upstream reported in its own terms: a budget cut is
Anthropic ``max_tokens``, Chat ``length``, a Responses ``incomplete`` / ``max_output_tokens``.
``token_budget`` is left out so the client's small budget reaches the simulator as sent.
"""

from __future__ import annotations

import anthropic
import httpx
import openai
import trio

from tests.e2e.serving import SIM, open_gateway

CONFIG = """
upstreams:
  sim: {%s}
pipelines:
  claude_code:
    client: anthropic
    stages: [thinking_filter, tool_ids]
    upstream: sim
  codex:
    client: responses
    stages: [thinking_filter, tool_ids]
    upstream: sim
  chat:
    client: chat
    stages: [tool_ids]
    upstream: sim
""" % SIM

LONG = "SIM:think ok\nSIM:text " + "word " * 100  # ~125 answer tokens


def openai_client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)


def anthropic_client(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key="x", max_retries=0)


class TestBudgetCut:
    async def test_each_dialect_reports_the_cut(self, sim) -> None:
        def calls(url: str) -> dict:
            client = openai_client(url)
            # The SDK's stream helper wants response.completed, so read the raw event stream.
            events = list(client.responses.create(model="deepseek-v4-pro", input=LONG, max_output_tokens=20,
                                                  stream=True))
            kinds, streamed = [event.type for event in events], events[-1].response
            plain = client.responses.create(model="deepseek-v4-pro", input=LONG, max_output_tokens=20)
            chat = client.chat.completions.create(model="deepseek-v4-pro", max_tokens=20,
                                                  messages=[{"role": "user", "content": LONG}])
            message = anthropic_client(url).messages.create(
                model="claude-opus-4-5", max_tokens=20, messages=[{"role": "user", "content": LONG}])
            return {"kinds": kinds, "streamed": streamed, "plain": plain, "chat": chat, "message": message}

        sim.reset()
        async with open_gateway(CONFIG, sim=sim) as (url, _):
            got = await trio.to_thread.run_sync(calls, url)
        assert got["kinds"][-1] == "response.incomplete"
        for response in (got["streamed"], got["plain"]):
            assert response.status == "incomplete"
            assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
            assert response.output_text.startswith("word word")
        assert got["chat"].choices[0].finish_reason == "length"
        assert got["message"].stop_reason == "max_tokens"
        assert [r["max_tokens"] for r in sim.requests()] == [20, 20, 20, 20]


STOPPED = "SIM:text alpha STOP beta gamma"


class TestStopSequences:
    async def test_the_matched_stop_is_reported_and_the_text_ends_before_it(self, sim) -> None:
        """Chat servers strip a matched stop and say only ``stop``; the gateway matches the client's
        stop strings itself, so each dialect can name the one that matched."""

        def calls(url: str) -> dict:
            claude = anthropic_client(url)
            message = claude.messages.create(model="claude-opus-4-5", max_tokens=200, stop_sequences=["zzz", "STOP"],
                                             messages=[{"role": "user", "content": STOPPED}])
            with claude.messages.stream(model="claude-opus-4-5", max_tokens=200, stop_sequences=["STOP"],
                                        messages=[{"role": "user", "content": STOPPED}]) as stream:
                streamed = stream.get_final_message()
            chat = openai_client(url).chat.completions.create(
                model="deepseek-v4-pro", stop=["STOP"], messages=[{"role": "user", "content": STOPPED}])
            return {"message": message, "streamed": streamed, "chat": chat}

        sim.reset()
        async with open_gateway(CONFIG, sim=sim) as (url, _):
            got = await trio.to_thread.run_sync(calls, url)
        for message in (got["message"], got["streamed"]):
            assert message.stop_reason == "stop_sequence" and message.stop_sequence == "STOP"
            assert [b.text for b in message.content if b.type == "text"] == ["alpha "]
        choice = got["chat"].choices[0]
        assert choice.finish_reason == "stop" and choice.message.content == "alpha "
        assert all("stop" not in body for body in sim.requests())  # matched here, not stripped there


class TestRoutes:
    async def test_models_by_id_in_both_dialects(self, sim) -> None:
        def calls(url: str) -> dict:
            claude, oai = anthropic_client(url), openai_client(url)
            got: dict = {"a_list": claude.models.list().data, "o_list": oai.models.list().data}
            got["a_one"] = claude.models.retrieve(got["a_list"][0].id)
            got["o_one"] = oai.models.retrieve(got["o_list"][0].id)
            for name, call in (("a_missing", lambda: claude.models.retrieve("no-such-model")),
                               ("o_missing", lambda: oai.models.retrieve("no-such-model"))):
                try:
                    call()
                except (anthropic.NotFoundError, openai.NotFoundError) as exc:
                    got[name] = exc
            return got

        async with open_gateway(CONFIG, sim=sim) as (url, _):
            got = await trio.to_thread.run_sync(calls, url)
        a_list, o_list = got["a_list"], got["o_list"]
        assert got["a_one"].type == "model" and got["a_one"].id == a_list[0].id
        assert got["a_one"].display_name == a_list[0].display_name
        assert got["o_one"].object == "model" and got["o_one"].id == o_list[0].id
        assert got["a_missing"].body["type"] == "error" and got["o_missing"].status_code == 404

    async def test_responses_input_tokens_is_counted_locally(self, sim) -> None:
        def count(url: str):
            return openai_client(url).responses.input_tokens.count(model="deepseek-v4-pro", input="hello there")

        sim.reset()
        async with open_gateway(CONFIG, sim=sim) as (url, _):
            counted = await trio.to_thread.run_sync(count, url)
        assert counted.object == "response.input_tokens" and counted.input_tokens > 0
        assert sim.requests() == []

    async def test_unknown_routes_and_methods_in_the_clients_dialect(self, sim) -> None:
        anthropic_version = {"anthropic-version": "2023-06-01"}
        async with open_gateway(CONFIG, sim=sim) as (url, _), httpx.AsyncClient(base_url=url) as http:
            a_404 = await http.post("/v1/messages/batches", json={}, headers=anthropic_version)
            o_404 = await http.get("/v1/responses/resp_1")
            a_405 = await http.get("/v1/messages", headers=anthropic_version)
        assert a_404.status_code == 404
        assert a_404.json() == {"type": "error", "error": {"type": "not_found_error",
                                                           "message": "no route for POST /v1/messages/batches"}}
        # Without anthropic-version: the first OpenAI-dialect pipeline's body (Responses, api.openai.com's).
        assert o_404.status_code == 404 and o_404.json()["error"]["type"] == "invalid_request_error"
        assert o_404.json()["error"]["code"] == "not_found"
        assert a_405.status_code == 405 and a_405.headers["allow"] == "POST"
        assert a_405.json()["error"]["type"] == "invalid_request_error"
