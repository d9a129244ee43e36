"""What a client decoder tells its encoder (the codec's echo) reaches the client whatever the
request stages do: the official SDKs → hypercorn → gateway → the simulator server.

A custom stage that rebuilds the request from scratch (``Amnesia``: the client-facing facts of
the tools, the tool choice and thinking's ``display`` forgotten) cannot take from the client its
``custom_tool_call``, its echoed ``metadata`` and ``tool_choice`` (Responses), its withheld
thinking text (Anthropic ``display: omitted``) or its usage chunk (Chat ``include_usage``); and
``message_start`` reports the prompt estimate ``token_budget`` made for the request.
"""

from __future__ import annotations

import anthropic
import openai
import structlog
import trio

from pipeline.model import ChatRequest, ThinkingConfig, ToolSpec
from pipeline.stage import RequestContext, Stage
from tests.e2e.serving import SIM, open_gateway
from tests.resilience.dialects import finished_lines, wait_finished

AMNESIA = "tests.e2e.test_echo:Amnesia"
CONFIG = f"""
upstreams:
  sim: {{{SIM}}}
pipelines:
  claude_code: {{client: anthropic, stages: [thinking_filter, token_budget, tool_ids, '{AMNESIA}'], upstream: sim}}
  codex: {{client: responses, stages: [thinking_filter, token_budget, tool_ids, '{AMNESIA}'], upstream: sim}}
  chat: {{client: chat, mount: /chat, stages: ['{AMNESIA}'], upstream: sim}}
"""
INPUT_SCHEMA = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}


class Amnesia(Stage):
    """Sends a request rebuilt from a few fields: every tool a plain function, no tool choice,
    thinking without ``display``. Stages may return any request; none can reach the echo."""

    name = "amnesia"

    async def on_request(self, request: ChatRequest, ctx: RequestContext) -> ChatRequest:
        tools = tuple(ToolSpec(name=t.name, description=t.description, parameters=t.parameters or INPUT_SCHEMA)
                      for t in request.tools)
        thinking = ThinkingConfig(enabled=request.thinking.enabled, effort=request.thinking.effort,
                                  budget_tokens=request.thinking.budget_tokens)
        return ChatRequest(model=request.model, messages=request.messages, system=request.system, tools=tools,
                           max_output_tokens=request.max_output_tokens, thinking=thinking, stream=request.stream)


PATCH_TOOL = {"type": "custom", "name": "apply_patch", "description": "Edit files with a patch",
              "format": {"type": "grammar", "syntax": "lark", "definition": 'start: "*** Begin Patch" LF'}}


def codex(url: str) -> openai.types.responses.Response:
    client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
    with client.responses.stream(model="deepseek-v4-pro", input="SIM:write notes.txt hello", tools=[PATCH_TOOL],
                                 tool_choice="required", metadata={"session": "s-1"}, store=False) as stream:
        for _event in stream:
            pass
        return stream.get_final_response()


def claude(url: str) -> tuple[int, anthropic.types.Message]:
    client = anthropic.Anthropic(base_url=url, api_key="x", max_retries=0)
    with client.messages.stream(model="claude-opus-5-5", max_tokens=4096,
                                messages=[{"role": "user", "content": "SIM:think secret plan\nSIM:text done"}],
                                thinking={"type": "adaptive", "display": "omitted"}) as stream:
        started = [event.message.usage.input_tokens for event in stream if event.type == "message_start"]
        return started[0], stream.get_final_message()


def chat(url: str) -> list[openai.types.chat.ChatCompletionChunk]:
    client = openai.OpenAI(base_url=url + "/chat/v1", api_key="x", max_retries=0)
    return list(client.chat.completions.create(model="deepseek-v4-pro", stream=True,
                                               messages=[{"role": "user", "content": "SIM:text hi"}],
                                               stream_options={"include_usage": True}))


async def test_responses_echo_survives_a_stage_that_rebuilds_the_request(sim) -> None:
    """The custom tool's call is a custom_tool_call, metadata and tool_choice are the client's."""
    async with open_gateway(CONFIG, sim=sim) as (url, _):
        response = await trio.to_thread.run_sync(codex, url)
    (tools,) = [body["tools"] for body in sim.requests()]
    assert [t["function"]["name"] for t in tools] == ["apply_patch"]  # the rebuilt request went out
    (call,) = [item for item in response.output if item.type in ("custom_tool_call", "function_call")]
    assert call.type == "custom_tool_call" and call.name == "apply_patch"
    assert call.input.startswith("*** Begin Patch\n*** Add File: notes.txt\n")
    assert response.metadata == {"session": "s-1"}
    assert response.tool_choice == "required"


async def test_anthropic_echo_and_estimate_reach_the_client(sim) -> None:
    """display omitted: the thinking text is withheld (its signature sent) although the stage
    dropped display; message_start carries token_budget's estimate, as the log line does."""
    async with open_gateway(CONFIG, sim=sim) as (url, _):
        with structlog.testing.capture_logs() as logs:
            started, message = await trio.to_thread.run_sync(claude, url)
            await wait_finished(logs)
    (line,) = finished_lines(logs)
    assert line["prompt_estimate"] > 0 and started == line["prompt_estimate"]
    thinking = next(b for b in message.content if b.type == "thinking")
    assert thinking.thinking == "" and thinking.signature.startswith("gw2.")
    assert message.content[-1].type == "text" and message.content[-1].text == "done"
    assert message.usage.input_tokens > 0


async def test_chat_usage_chunk_survives_a_stage_that_rebuilds_the_request(sim) -> None:
    async with open_gateway(CONFIG, sim=sim) as (url, _):
        chunks = await trio.to_thread.run_sync(chat, url)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "hi"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens > 0
