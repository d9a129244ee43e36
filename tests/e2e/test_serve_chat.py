"""Chat Completions end to end: the official openai SDK → hypercorn → gateway → the production
transport → the simulator server (its own process, requiring a Bearer key the gateway reads from
its env var). The stream is parsed by the SDK's strict accumulator (``client.chat.completions.stream``).
"""

from __future__ import annotations

import httpx
import openai
import trio

from tests.e2e.serving import SIM, SIM_KEY, open_gateway

CONFIG = """
upstreams:
  sim: {%s}
pipelines:
  demo:
    mount: /demo
    client: chat
    upstream: sim
""" % SIM

SHELL_TOOL = {"type": "function", "function": {"name": "exec_command", "description": "run a command",
                                                "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}},
                                                               "required": ["cmd"]}}}


def tool_loop(base_url: str) -> dict:
    """A two-turn tool loop with streaming, replaying reasoning_content as a Chat client would."""
    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
    messages: list[dict] = [{"role": "user", "content": "SIM:script shell echo hello > out.txt ;; text all done"}]
    with client.chat.completions.stream(model="deepseek-v4-pro", messages=messages, tools=[SHELL_TOOL],
                                        stream_options={"include_usage": True}) as stream:
        for _ in stream:
            pass
        first = stream.get_final_completion()
    choice = first.choices[0]
    call = choice.message.tool_calls[0]
    reasoning = choice.message.model_extra.get("reasoning_content")
    messages.append({"role": "assistant", "content": choice.message.content, "reasoning_content": reasoning,
                     "tool_calls": [{"id": call.id, "type": "function",
                                     "function": {"name": call.function.name, "arguments": call.function.arguments}}]})
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "ok"})
    second = client.chat.completions.create(model="deepseek-v4-pro", messages=messages, tools=[SHELL_TOOL])
    return {"first": first, "reasoning": reasoning, "call": call, "second": second}


class TestChatEndToEnd:
    async def test_stream_tool_loop(self, sim) -> None:
        """Reasoning, a tool call and usage survive the trip; the second turn completes; the
        simulator server saw the gateway's key."""
        async with open_gateway(CONFIG, sim=sim) as (url, _):
            result = await trio.to_thread.run_sync(tool_loop, f"{url}/demo/v1")
        first = result["first"]
        assert first.choices[0].finish_reason == "tool_calls"
        assert result["reasoning"], "reasoning_content must reach the client"
        assert result["call"].function.name == "exec_command"
        assert '"cmd"' in result["call"].function.arguments and "echo hello" in result["call"].function.arguments
        assert first.usage.prompt_tokens > 0 and first.usage.completion_tokens_details.reasoning_tokens > 0
        assert result["second"].choices[0].message.content == "all done"
        # What the gateway sent upstream on turn 2 carried the reasoning back verbatim.
        assert sim.chat_requests == 2
        sent = sim.requests()[-1]
        assistant = next(m for m in sent["messages"] if m["role"] == "assistant")
        assert assistant["reasoning_content"] == result["reasoning"]
        assert sent["thinking"] == {"type": "enabled"}

    async def test_wrong_upstream_key_is_an_authentication_error(self, sim, monkeypatch) -> None:
        """The simulator server checks the key: a wrong one is the SDK's AuthenticationError."""
        monkeypatch.setenv("GW_TEST_SIM_KEY", SIM_KEY[:-1] + "x")

        def call(base: str) -> Exception:
            client = openai.OpenAI(base_url=base, api_key="x", max_retries=0)
            try:
                client.chat.completions.create(model="m", messages=[{"role": "user", "content": "SIM:text hi"}])
            except openai.APIStatusError as exc:
                return exc
            raise AssertionError("expected an error")

        async with open_gateway(CONFIG, sim=sim) as (url, _):
            exc = await trio.to_thread.run_sync(call, f"{url}/demo/v1")
        assert isinstance(exc, openai.AuthenticationError) and "****" in str(exc) and SIM_KEY[:-1] not in str(exc)
        assert sim.chat_requests == 0

    async def test_models_and_health(self, sim) -> None:
        """/v1/models lists models in OpenAI's shape with their limits; /healthz answers."""
        async with open_gateway(CONFIG, sim=sim) as (url, _):
            async with httpx.AsyncClient() as http:
                health = await http.get(f"{url}/healthz")
                models = await http.get(f"{url}/demo/v1/models")
        assert health.status_code == 200
        data = models.json()["data"]
        assert {"deepseek-v4-pro", "deepseek-v4-flash"} <= {m["id"] for m in data}
        assert all(m["context_window"] == 1_048_576 for m in data)

    async def test_upstream_400_is_an_openai_error(self, sim) -> None:
        """A DeepSeek 400 (unknown effort word passed by a client) reaches the SDK as BadRequestError."""

        def call(base: str) -> Exception:
            client = openai.OpenAI(base_url=base, api_key="x", max_retries=0)
            try:
                client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=10**9)
            except openai.APIStatusError as exc:
                return exc
            raise AssertionError("expected an error")

        async with open_gateway(CONFIG, sim=sim) as (url, _):
            exc = await trio.to_thread.run_sync(call, f"{url}/demo/v1")
        assert isinstance(exc, openai.BadRequestError)
        assert "max_tokens" in str(exc) and sim.chat_requests == 1
