"""Claude Code's streamed tool loop through the official ``anthropic`` SDK (its shape: the system
message inside ``messages[]`` that 2.1.154+ sends, the ``[1m]`` model marker, thinking on), shared
by the Messages-upstream end-to-end tests; and the same loop from a client that strips its
thinking blocks (``stripped_loop``, the reasoning-ledger tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic

BASH = {"name": "Bash", "description": "Run a shell command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}
SCRIPT = "SIM:script shell echo hello > out.txt ;; shell cat out.txt ;; text finished"


def claude_loop(base_url: str, model: str = "claude-opus-4-7[1m]", script: str = SCRIPT, steps: int = 4,
                output: str = "", start: list[dict] | None = None, tools: list[dict] | None = None,
                choices: list[dict | None] | None = None, result: Callable[[Any], Any] | None = None,
                **options: Any) -> list[anthropic.types.Message]:
    """Claude Code's tool loop from ``script`` (or the history ``start``, its last turn the user's);
    ``choices``: each turn's ``tool_choice`` (``None``: not sent), one turn each; ``result(tool_use)``
    is a tool_result's content (default: ``ran <command>`` and ``output``); ``options`` go to every
    request as they are (``extra_body`` ...)."""
    client = anthropic.Anthropic(base_url=base_url, api_key="dummy", max_retries=0)
    messages: list[dict] = list(start or [{"role": "user", "content": script}])
    replies = []
    for choice in choices if choices is not None else [None] * steps:
        # Claude Code 2.1.154+ sends a system message inside messages[]; DeepSeek rejects it there.
        sent = [messages[0], {"role": "system", "content": "Reminder: be brief."}, *messages[1:]]
        extra = {"tool_choice": choice} if choice is not None else {}
        with client.messages.stream(model=model, max_tokens=32000, messages=sent, tools=tools or [BASH],
                                    thinking={"type": "enabled", "budget_tokens": 8000}, **extra,
                                    system=[{"type": "text", "text": "You are a coding agent."}],
                                    **options) as stream:
            reply = stream.get_final_message()
        replies.append(reply)
        if reply.stop_reason != "tool_use":
            break
        messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in reply.content]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": b.id,
             "content": result(b) if result else f"ran {b.input.get('command', b.input)}\n{output}"}
            for b in reply.content if b.type == "tool_use"]})
    return replies


def stripped_loop(url_of_turn: Callable[[int], str], turns: range, messages: list[dict], output: int = 0
                  ) -> tuple[list[anthropic.types.Message], list[dict]]:
    """A tool loop whose client keeps no thinking block (it strips them from the history it
    resends): turn k to ``url_of_turn(k)``, each tool result ``output`` characters long; the
    replies and the next turn's messages."""
    replies = []
    for k in turns:
        client = anthropic.Anthropic(base_url=url_of_turn(k), api_key="dummy", max_retries=0)
        with client.messages.stream(model="claude-opus-4-7", max_tokens=32000, messages=messages, tools=[BASH],
                                    thinking={"type": "enabled", "budget_tokens": 8000}) as stream:
            reply = stream.get_final_message()
        replies.append(reply)
        if reply.stop_reason != "tool_use":
            break
        assert reply.content[0].type == "thinking" and reply.content[0].thinking
        # The client keeps no thinking block: only the text and the tool calls go back.
        kept = [b.model_dump(exclude_none=True) for b in reply.content if b.type != "thinking"]
        messages = [*messages, {"role": "assistant", "content": kept}, {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": b.id, "content": f"turn {k}\n" + "y" * output}
            for b in reply.content if b.type == "tool_use"]}]
    return replies, messages

