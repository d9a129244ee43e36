"""Thinking as the client asked for it, and a forced ``tool_choice`` honoured, end to end: the
official SDKs → hypercorn → gateway → the production transport → the strict simulator server
(its own process), through each of DeepSeek's formats: Chat (``openai_chat``), its Anthropic
endpoint (``anthropic_messages``, ``deepseek_anthropic``) and its Responses API
(``openai_responses``, ``deepseek_responses``).

- An Anthropic request without ``thinking`` (Claude Code's small-model calls) thinks not at all:
  upstream it is thinking disabled, with the client's own ``max_tokens`` (no 8,192 floor).
- A forced ``tool_choice`` (Anthropic ``tool`` / ``any``, Chat a named function / ``required``,
  Responses ``required`` / a named function), which DeepSeek rejects while thinking (the simulator
  400s it), goes as the client sent it, with thinking off for that request (a ``thinking_off``
  loss), and the call is made. The turns after it think again, and replay the forced turn legally:
  its reasoning is ``""`` (it had none), present as DeepSeek's thinking mode requires
  (``reasoning_content``, an empty thinking block, an empty ``reasoning_text`` item), which the
  simulator checks with ``verify_replay`` against what it generated. ``thinking_filter`` runs with
  ``allow_empty_reasoning: false``: a forced turn's reasoning is known (``""``, from the reasoning
  cache), so the later requests keep thinking instead of falling to the ``thinking_off`` rung.
- Images go to the model the table says sees them (Flash), a placeholder and a loss to Pro.
"""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
import structlog
import trio

from tests.e2e.messages_loop import BASH, claude_loop
from tests.e2e.responses_loop import codex_loop
from tests.e2e.serving import SIM, SIM_KEY_ENV, open_gateway
from tests.resilience.dialects import finished_lines, wait_finished

MODELS = "models: {default: deepseek-v4-pro, '*haiku*': deepseek-v4-flash, '*flash*': deepseek-v4-flash}"
UPSTREAMS = {
    "chat": SIM,
    "anthropic": (f"type: anthropic_messages, base_url: '${{SIM_URL}}/anthropic', profile: deepseek_anthropic, "
                  f"api_key_env: {SIM_KEY_ENV}, {MODELS}"),
    "responses": (f"type: openai_responses, base_url: '${{SIM_URL}}', profile: deepseek_responses, "
                  f"api_key_env: {SIM_KEY_ENV}, {MODELS}"),
}
STAGES = "[{thinking_filter: {allow_empty_reasoning: false}}, token_budget, tool_ids]"
CONFIG = """
upstreams:
  up: {%s}
pipelines:
  claude: {client: anthropic, upstream: up, stages: %s}
  codex: {client: responses, upstream: up, stages: %s, mount: /codex}
  chat: {client: chat, upstream: up, stages: %s, mount: /chat}
"""


def config(upstream: str) -> str:
    return CONFIG % (UPSTREAMS[upstream], STAGES, STAGES, STAGES)


READ = {"name": "Read", "description": "Read a file",
        "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}}
FUNCTIONS = [{"name": t["name"].lower(), "description": t["description"], "parameters": t["input_schema"]}
             for t in (BASH, READ)]
CHAT_TOOLS = [{"type": "function", "function": f} for f in FUNCTIONS]
CODEX_TOOLS = [{"type": "function", "strict": False, **f} for f in FUNCTIONS]


# ---------------------------------------------------------------- what went upstream


def thinks(upstream: str, body: dict[str, Any]) -> bool:
    """Whether an upstream request body has thinking on (DeepSeek's default, on, when unsaid)."""
    if upstream == "responses":
        return body.get("reasoning", {}).get("effort") != "none"
    return body.get("thinking", {}).get("type", "enabled") != "disabled"


def forced(body: dict[str, Any]) -> Any:
    """The upstream request's tool_choice when it forces a call, else ``None``."""
    choice = body.get("tool_choice")
    if choice in (None, "auto", "none") or isinstance(choice, dict) and choice.get("type") in ("auto", "none"):
        return None
    return choice


def tool_turns(upstream: str, body: dict[str, Any]) -> int:
    """Assistant turns with tool calls in an upstream request body."""
    if upstream == "responses":
        items = body["input"]
        return sum(1 for j, item in enumerate(items) if item.get("type") == "function_call"
                   and (j == 0 or items[j - 1].get("type") != "function_call"))
    count = 0
    for message in body["messages"]:
        content = message.get("content")
        blocks = content if isinstance(content, list) else []
        if message["role"] == "assistant" and (message.get("tool_calls") or any(
                b.get("type") == "tool_use" for b in blocks)):
            count += 1
    return count


def check_session(sim, upstream: str, forced_turns: list[bool]) -> list[dict[str, Any]]:
    """Every request went upstream with thinking on unless its turn was forced, and then with the
    forced tool_choice; each request that thought had every earlier tool turn (forced ones too)
    compared with what the simulator generated and found exact (a difference is a 400 there)."""
    sent = sim.requests()
    assert len(sent) == len(forced_turns)
    for n, (body, was_forced) in enumerate(zip(sent, forced_turns, strict=True)):
        assert thinks(upstream, body) is not was_forced, n
        assert (forced(body) is not None) is was_forced, n
    checks = sim.stats()["replay"]
    expected = [tool_turns(upstream, body) for body, f in zip(sent, forced_turns, strict=True) if not f]
    assert [c["tool_turns"] for c in checks] == expected
    assert [c["verified_turns"] for c in checks] == expected
    assert all(c["unknown_turns"] == 0 for c in checks)
    return sent


def losses_by_request(logs: list[dict]) -> list[set[str]]:
    return [{loss.partition(":")[0] for loss in line.get("losses") or ()} for line in finished_lines(logs)
            if line.get("endpoint") == "generate"]


# ---------------------------------------------------------------- the clients' sessions


def script(turns: int) -> str:
    """A scripted tool loop of ``turns`` answers: a shell call each, then ``done``."""
    return "SIM:script " + " ;; ".join(f"shell echo step {i}" for i in range(turns - 1)) + " ;; text done"


def claude_session(base_url: str, choices: list[dict | None], *, output: str = "") -> list[anthropic.types.Message]:
    """Claude Code's tool loop (its shape, thinking on), one tool_choice per turn (``None``: not sent)."""
    return claude_loop(base_url, script=script(len(choices)), output=output, tools=[BASH, READ], choices=choices)


def chat_session(base_url: str, choices: list[Any]) -> list[Any]:
    """A Chat client's tool loop (thinking as DeepSeek's default), replaying reasoning_content."""
    client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0)
    messages: list[dict] = [{"role": "user", "content": script(len(choices))}]
    done = []
    for choice in choices:
        extra = {"tool_choice": choice} if choice is not None else {}
        with client.chat.completions.stream(model="deepseek-v4-pro", messages=messages, tools=CHAT_TOOLS,
                                            **extra) as stream:
            for _ in stream:
                pass
            completion = stream.get_final_completion()
        done.append(completion)
        message = completion.choices[0].message
        if not message.tool_calls:
            break
        echoed: dict[str, Any] = {"role": "assistant", "content": message.content, "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
            for c in message.tool_calls]}
        if message.model_extra.get("reasoning_content") is not None:
            echoed["reasoning_content"] = message.model_extra["reasoning_content"]
        messages.append(echoed)
        messages += [{"role": "tool", "tool_call_id": c.id, "content": "ok"} for c in message.tool_calls]
    return done


def codex_session(base_url: str, choices: list[Any]) -> list[Any]:
    """Codex's tool loop (reasoning high, encrypted content echoed back, ids dropped)."""
    items = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": script(len(choices))}]}]
    return codex_loop(base_url, items, CODEX_TOOLS, choices=choices)


# ---------------------------------------------------------------- (a) no thinking unless asked


@pytest.mark.parametrize("upstream", sorted(UPSTREAMS))
async def test_anthropic_request_without_thinking_goes_with_thinking_off_and_its_own_budget(sim, upstream) -> None:
    """Claude Code's small-model call (a title: no ``thinking``, a small ``max_tokens``) reaches
    DeepSeek with thinking disabled and that budget, not DeepSeek's default thinking and the
    8,192-token thinking floor; asking for thinking still gets it."""
    def ask(base_url: str) -> list[anthropic.types.Message]:
        client = anthropic.Anthropic(base_url=base_url, api_key="dummy", max_retries=0)
        small = client.messages.create(model="claude-haiku-4-5", max_tokens=300,
                                       messages=[{"role": "user", "content": "SIM:text A title"}])
        asked = client.messages.create(model="claude-haiku-4-5", max_tokens=300, thinking={"type": "adaptive"},
                                       messages=[{"role": "user", "content": "SIM:text thought"}])
        return [small, asked]

    sim.reset(verify_replay=True)
    async with open_gateway(config(upstream), sim=sim) as (url, _):
        with structlog.testing.capture_logs() as logs:
            small, asked = await trio.to_thread.run_sync(ask, url)
            await wait_finished(logs, 2)
    assert small.content[-1].text == "A title" and [b.type for b in small.content] == ["text"]
    assert asked.content[-1].text == "thought" and asked.content[0].type == "thinking"
    first, second = sim.requests()
    budget = "max_output_tokens" if upstream == "responses" else "max_tokens"
    assert not thinks(upstream, first) and first[budget] == 300
    assert thinks(upstream, second) and second[budget] == 8192  # thinking asked: the floor holds
    assert losses_by_request(logs)[0] == set()


# ---------------------------------------------------------------- (b) forced tool_choice


@pytest.mark.parametrize("upstream", sorted(UPSTREAMS))
async def test_claude_code_forced_tool_choice_is_honoured_and_later_turns_replay(sim, upstream) -> None:
    """Anthropic ``tool`` (Read, where the script would run Bash) and ``any``, each with thinking
    asked for: the forced call is made with thinking off; the unforced turns after them think and
    replay every earlier tool turn, the forced ones with their (empty) reasoning, exactly."""
    choices = [None, {"type": "tool", "name": "Read"}, None, {"type": "any"}, None, None]
    sim.reset(verify_replay=True)
    async with open_gateway(config(upstream), sim=sim) as (url, _):
        with structlog.testing.capture_logs() as logs:
            replies = await trio.to_thread.run_sync(claude_session, url, choices)
            await wait_finished(logs, len(choices))
    assert [r.stop_reason for r in replies] == ["tool_use"] * 5 + ["end_turn"]
    calls = [[b.name for b in r.content if b.type == "tool_use"] for r in replies[:5]]
    assert calls == [["Bash"], ["Read"], ["Bash"], ["Bash"], ["Bash"]]
    assert "thinking" not in [b.type for b in replies[1].content]  # thinking off
    assert replies[2].content[0].type == "thinking" and replies[2].content[0].thinking
    sent = check_session(sim, upstream, [c is not None for c in choices])
    assert forced(sent[1]) in ({"type": "tool", "name": "Read"}, {"type": "function", "function": {"name": "Read"}},
                               {"type": "function", "name": "Read"})
    assert forced(sent[3]) in ({"type": "any"}, "required")
    losses = losses_by_request(logs)
    assert [("thinking_off" in found) for found in losses] == [c is not None for c in choices]


@pytest.mark.parametrize("upstream", sorted(UPSTREAMS))
async def test_chat_client_forced_tool_choice_is_honoured_and_later_turns_replay(sim, upstream) -> None:
    """A Chat client's named function (``read``) and ``required``, DeepSeek's default thinking
    otherwise: the same, through the Chat dialect."""
    choices = [None, {"type": "function", "function": {"name": "read"}}, None, "required", None]
    sim.reset(verify_replay=True)
    async with open_gateway(config(upstream), sim=sim) as (url, _):
        done = await trio.to_thread.run_sync(chat_session, f"{url}/chat/v1", choices)
    names = [[c.function.name for c in d.choices[0].message.tool_calls or ()] for d in done]
    assert names == [["bash"], ["read"], ["bash"], ["bash"], []]
    assert done[-1].choices[0].message.content == "done"
    assert done[1].choices[0].message.model_extra.get("reasoning_content") in (None, "")
    check_session(sim, upstream, [c is not None for c in choices])


@pytest.mark.parametrize("upstream", sorted(UPSTREAMS))
async def test_codex_forced_tool_choice_is_honoured_and_later_turns_replay(sim, upstream) -> None:
    """Codex's ``required`` and a named function, reasoning high: the same, through Responses."""
    choices = [None, "required", None, {"type": "function", "name": "read"}, None]
    sim.reset(verify_replay=True)
    async with open_gateway(config(upstream), sim=sim) as (url, _):
        responses = await trio.to_thread.run_sync(codex_session, f"{url}/codex/v1", choices)
    names = [[o.name for o in r.output if o.type == "function_call"] for r in responses]
    assert names == [["bash"], ["bash"], ["bash"], ["read"], []]
    assert "reasoning" not in [o.type for o in responses[3].output]  # thinking off
    assert responses[-1].output_text == "done"
    check_session(sim, upstream, [c is not None for c in choices])


@pytest.mark.parametrize("upstream", sorted(UPSTREAMS))
async def test_long_session_mixing_forced_and_unforced_turns(sim, upstream) -> None:
    """Claude Code at the size of real work: 30 tool turns, ~1 MB of history, every third turn
    forced (``tool`` Read or ``any`` by turns): every request that thinks replays all 30 earlier
    turns' reasoning exactly (the forced turns' ``""`` among them), and none falls back to
    thinking off."""
    choices: list[dict | None] = [None] * 31
    for n in range(2, 30, 3):
        choices[n] = {"type": "tool", "name": "Read"} if n % 2 else {"type": "any"}
    output = "".join(f"line {i:05d} of a long tool output, as a build log would print it\n" for i in range(520))
    sim.reset(verify_replay=True)
    async with open_gateway(config(upstream), sim=sim) as (url, _):
        with structlog.testing.capture_logs() as logs:
            replies = await trio.to_thread.run_sync(lambda: claude_session(url, choices, output=output))
            await wait_finished(logs, len(choices))
    assert len(replies) == 31 and replies[-1].content[-1].text == "done"
    stats = sim.stats()
    assert 900_000 < stats["max_request_bytes"] < 1_600_000
    check_session(sim, upstream, [c is not None for c in choices])
    assert stats["replay"][-1]["verified_turns"] == 30
    rungs = [line.get("replay_rung") for line in finished_lines(logs)]
    assert "thinking_off" not in rungs and "empty" not in rungs


# ---------------------------------------------------------------- (c) the table decides vision


@pytest.mark.parametrize("upstream", ["chat", "responses"])
async def test_an_image_goes_to_flash_and_a_placeholder_to_pro(sim, upstream) -> None:
    """DeepSeek has image input on Flash only (the table's ``vision``; the simulator 400s an image
    to Pro): Flash gets the image, Pro a placeholder, and the loss is recorded."""
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}

    def ask(base_url: str) -> list[str]:
        client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0)
        out = []
        for model in ("deepseek-v4-flash", "deepseek-v4-pro"):
            done = client.chat.completions.create(model=model, messages=[{"role": "user", "content": [
                {"type": "text", "text": "SIM:text seen"}, image]}])
            out.append(done.choices[0].message.content)
        return out

    async with open_gateway(config(upstream), sim=sim) as (url, _):
        with structlog.testing.capture_logs() as logs:
            answers = await trio.to_thread.run_sync(ask, f"{url}/chat/v1")
            await wait_finished(logs, 2)
    assert answers == ["seen", "seen"]
    flash, pro = (str(body) for body in sim.requests())
    assert "iVBORw0KGgo" in flash and "iVBORw0KGgo" not in pro and "image omitted" in pro
    assert [("image" in found) for found in losses_by_request(logs)] == [False, True]


async def test_passthrough_to_anthropic_forced_turn_keeps_the_tool_loop_legal(sim) -> None:
    """Claude Code → the real Anthropic API (the simulator's flavour: a forced tool_choice with
    thinking is a 400, and so is a final tool turn that does not start with its own thinking):
    the forced call is made with thinking off, and the rest of that tool loop goes with thinking
    off too (a turn made without thinking cannot start with a signed thinking block), as
    Anthropic advises; the loop ends as scripted."""
    upstream = (f"type: anthropic_messages, base_url: '${{SIM_URL}}/anthropic', profile: anthropic, "
                f"api_key_env: {SIM_KEY_ENV}")
    choices = [None, {"type": "tool", "name": "Read"}, None, None]
    sim.reset(verify_replay=True, messages_flavour="anthropic")
    async with open_gateway(CONFIG % (upstream, STAGES, STAGES, STAGES), sim=sim) as (url, _):
        with structlog.testing.capture_logs() as logs:
            replies = await trio.to_thread.run_sync(claude_session, url, choices)
            await wait_finished(logs, len(choices))
    assert [r.stop_reason for r in replies] == ["tool_use"] * 3 + ["end_turn"]
    assert [b.name for b in replies[1].content if b.type == "tool_use"] == ["Read"]
    sent = sim.requests()
    assert [body["thinking"]["type"] for body in sent] == ["enabled", "disabled", "disabled", "disabled"]
    assert sent[1]["tool_choice"] == {"type": "tool", "name": "Read"}
    assert [line["status"] for line in finished_lines(logs)] == [200] * 4
    assert [("thinking_off" in found) for found in losses_by_request(logs)] == [False, True, True, True]
