"""Every client → ``type: anthropic_messages`` (profile ``deepseek_anthropic``) end to end: the
official SDKs → hypercorn → gateway → the production transport → the simulator server's
DeepSeek-Anthropic mode (``POST /anthropic/v1/messages``, its own process).

Each client streams a multi-turn tool loop with thinking on. The simulator enforces DeepSeek's
rules (a tool turn without its thinking block, a ``role: "system"`` message, a foreign signature,
an unknown model are 400s) and, with ``verify_replay``, that every tool turn it produced comes back
with its exact thinking text and its own signature: a translation bug fails here.
"""

from __future__ import annotations

import anthropic
import openai
import trio

from tests.e2e.messages_loop import BASH, SCRIPT, claude_loop
from tests.e2e.responses_loop import codex_loop
from tests.e2e.serving import SIM_KEY_ENV, open_gateway

UPSTREAM = ("type: anthropic_messages, base_url: '${SIM_URL}/anthropic', profile: deepseek_anthropic, api_key_env: "
            + SIM_KEY_ENV + ", models: {'claude-opus*': deepseek-v4-pro, 'claude-haiku*': deepseek-v4-flash, "
            "'claude-sonnet*': deepseek-v4-flash, default: deepseek-v4-pro}")
CONFIG = """
upstreams:
  dsa: {%s}
pipelines:
  claude_code:
    client: anthropic
    stages: [thinking_filter, token_budget, tool_ids]
    upstream: dsa
  codex:
    client: responses
    stages: [thinking_filter, token_budget, tool_ids]
    upstream: dsa
  chat:
    client: chat
    stages: [thinking_filter, token_budget, tool_ids]
    upstream: dsa
""" % UPSTREAM

def thinking_of(body: dict) -> list[tuple[str, str]]:
    """(thinking text, signature) of every assistant tool turn of an upstream request body."""
    out = []
    for message in body["messages"]:
        blocks = message["content"] if isinstance(message["content"], list) else []
        if message["role"] == "assistant" and any(b["type"] == "tool_use" for b in blocks):
            thought = [b for b in blocks if b["type"] == "thinking"]
            assert len(thought) == 1 and blocks[0] is thought[0], blocks  # one thinking block, first
            out.append((thought[0]["thinking"], thought[0]["signature"]))
    return out


def verified(sim) -> list[int]:
    return [check["verified_turns"] for check in sim.stats()["replay"]]


class TestAnthropicClient:
    async def test_claude_code_tool_loop_with_thinking(self, sim) -> None:
        """Claude Code's shape (system in messages[], the [1m] model marker, thinking on) → DeepSeek's
        Anthropic endpoint: three turns, each earlier tool turn's thinking back with DeepSeek's own
        signature; the client sees only gateway envelopes."""
        sim.reset(verify_replay=True)
        async with open_gateway(CONFIG, sim=sim) as (url, _):
            replies = await trio.to_thread.run_sync(claude_loop, url)
        assert [r.stop_reason for r in replies] == ["tool_use", "tool_use", "end_turn"]
        assert replies[-1].content[-1].text == "finished" and replies[0].model == "claude-opus-4-7[1m]"
        shown = [next(b for b in r.content if b.type == "thinking") for r in replies[:2]]
        assert all(b.thinking and b.signature.startswith("gw2.") for b in shown)
        sent = sim.requests()
        assert [body["model"] for body in sent] == ["deepseek-v4-pro"] * 3  # no [1m], no claude name
        last = sent[-1]
        assert all(m["role"] in ("user", "assistant") for m in last["messages"])
        assert last["system"] == "You are a coding agent.\n\nReminder: be brief."
        replayed = thinking_of(last)
        assert [text for text, _ in replayed] == [b.thinking for b in shown]
        assert all(signature and not signature.startswith("gw") for _, signature in replayed)
        assert verified(sim) == [0, 1, 2]
        assert last["thinking"]["type"] == "enabled"

    async def test_real_size_history(self, sim) -> None:
        """30 tool turns and ~1 MB of history (the tool outputs of a long session): every turn's
        thinking goes back exactly, with DeepSeek's signature, on the last request."""
        sim.reset(verify_replay=True)
        script = "SIM:script " + " ;; ".join(f"shell echo step {i}" for i in range(30)) + " ;; text all done"
        output = "".join(f"line {i:05d} of a long tool output, as a build log would print it\n" for i in range(540))
        async with open_gateway(CONFIG, sim=sim) as (url, _):
            replies = await trio.to_thread.run_sync(lambda: claude_loop(url, script=script, steps=32, output=output))
        assert len(replies) == 31 and replies[-1].content[-1].text == "all done"
        stats = sim.stats()
        assert 1_000_000 < stats["max_request_bytes"] < 1_500_000
        assert stats["replay"][-1]["verified_turns"] == 30 and stats["replay"][-1]["unknown_turns"] == 0
        last = thinking_of(sim.requests()[-1])
        shown = [next(b.thinking for b in r.content if b.type == "thinking") for r in replies[:30]]
        assert [text for text, _ in last] == shown

    async def test_haiku_goes_to_flash_without_thinking_and_effort_together(self, sim) -> None:
        """claude-haiku* → deepseek-v4-flash; thinking disabled goes without an effort (a 400 there)."""
        def ask(base_url: str) -> anthropic.types.Message:
            client = anthropic.Anthropic(base_url=base_url, api_key="dummy", max_retries=0)
            with client.messages.stream(model="claude-haiku-4-5", max_tokens=512, thinking={"type": "disabled"},
                                        messages=[{"role": "user", "content": "SIM:text quick"}],
                                        extra_body={"output_config": {"effort": "low"}}) as stream:
                return stream.get_final_message()
        async with open_gateway(CONFIG, sim=sim) as (url, _):
            reply = await trio.to_thread.run_sync(ask, url)
        assert reply.content[-1].text == "quick"
        body = sim.requests()[-1]
        assert body["model"] == "deepseek-v4-flash" and body["thinking"] == {"type": "disabled"}
        assert "output_config" not in body


CODEX_TOOLS = [{"type": "function", "name": "exec_command", "description": "Run a command", "strict": False,
                "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}]
CODEX_ITEMS = [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]},
               {"type": "message", "role": "user", "content": [{"type": "input_text", "text": SCRIPT}]}]


class TestResponsesClient:
    async def test_codex_tool_loop_with_thinking(self, sim) -> None:
        """Codex's shape → DeepSeek's Anthropic endpoint: reasoning items with encrypted_content come
        back as thinking blocks with DeepSeek's signature; effort high goes as output_config.effort."""
        sim.reset(verify_replay=True)
        async with open_gateway(CONFIG, sim=sim) as (url, _):
            responses = await trio.to_thread.run_sync(codex_loop, f"{url}/v1", CODEX_ITEMS, CODEX_TOOLS)
        assert [r.status for r in responses] == ["completed"] * 3 and responses[-1].output_text == "finished"
        shown = [next(o for o in r.output if o.type == "reasoning") for r in responses[:2]]
        assert all(o.encrypted_content.startswith("gw2.") for o in shown)
        last = sim.requests()[-1]
        replayed = thinking_of(last)
        assert [text for text, _ in replayed] == [o.summary[0].text for o in shown]
        assert all(signature for _, signature in replayed)
        assert last["output_config"] == {"effort": "high"} and last["system"] == "You are Codex."
        assert verified(sim) == [0, 1, 2]


def chat_loop(base_url: str) -> list:
    client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0)
    tools = [{"type": "function", "function": {"name": "exec_command", "description": "run a command", "parameters": {
        "type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}}]
    messages: list[dict] = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": SCRIPT}]
    completions = []
    for _ in range(4):
        with client.chat.completions.stream(model="deepseek-v4-pro", messages=messages, tools=tools,
                                            stream_options={"include_usage": True}) as stream:
            for _event in stream:
                pass
            completion = stream.get_final_completion()
        completions.append(completion)
        message = completion.choices[0].message
        if not message.tool_calls:
            break
        messages.append({"role": "assistant", "content": message.content,
                         "reasoning_content": message.model_extra.get("reasoning_content"),
                         "tool_calls": [{"id": c.id, "type": "function", "function": {
                             "name": c.function.name, "arguments": c.function.arguments}} for c in message.tool_calls]})
        messages += [{"role": "tool", "tool_call_id": c.id, "content": "ok"} for c in message.tool_calls]
    return completions


class TestChatClient:
    async def test_chat_tool_loop_with_thinking(self, sim) -> None:
        """A Chat client echoes reasoning_content only; the gateway puts DeepSeek's signature back
        (the reasoning cache keeps it with the text), so the strict replay check passes."""
        sim.reset(verify_replay=True)
        async with open_gateway(CONFIG, sim=sim) as (url, _):
            completions = await trio.to_thread.run_sync(chat_loop, f"{url}/v1")
        assert [c.choices[0].finish_reason for c in completions] == ["tool_calls", "tool_calls", "stop"]
        assert completions[-1].choices[0].message.content == "finished"
        shown = [c.choices[0].message.model_extra["reasoning_content"] for c in completions[:2]]
        last = sim.requests()[-1]
        replayed = thinking_of(last)
        assert [text for text, _ in replayed] == shown and all(signature for _, signature in replayed)
        assert last["system"] == "Be terse." and completions[0].usage.completion_tokens > 0
        assert verified(sim) == [0, 1, 2]


class TestFaults:
    async def test_429_before_content_is_retried_and_error_event_reaches_the_client(self, sim) -> None:
        """A 429 (OpenAI-shaped body, Retry-After) is retried transparently; an in-stream Messages
        ``error`` event after content ends the client's stream with Anthropic's error event."""
        def ask(base_url: str, prompt: str) -> tuple[int, str]:
            client = anthropic.Anthropic(base_url=base_url, api_key="dummy", max_retries=0)
            try:
                with client.messages.stream(model="claude-opus-4-7", max_tokens=1024,
                                            messages=[{"role": "user", "content": prompt}]) as stream:
                    return 0, stream.get_final_message().content[-1].text
            except anthropic.APIStatusError as exc:  # the SDK raises an in-stream error event as this too
                return exc.status_code, str(exc)
        sim.reset(chunk_delay_s=0.005)  # the error comes in a later read than the first content
        async with open_gateway(CONFIG, sim=sim) as (url, _):
            retried = await trio.to_thread.run_sync(ask, url, "SIM:fault 429 once\nSIM:text after the retry")
            failed = await trio.to_thread.run_sync(ask, url, "SIM:fault error_chunk\nSIM:text " + "word " * 40)
        assert retried == (0, "after the retry")
        assert failed[0] == 200 and "Simulated mid-stream failure" in failed[1]  # after the 200: in the stream
