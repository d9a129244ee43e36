"""A Responses tool loop chained by ``previous_response_id`` through the official ``openai`` SDK:
each turn sends only what is new (the tool outputs), the gateway keeps the rest
(pipeline/stored_responses.py). Shared by the stored-Responses end-to-end tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai

from tests.e2e.responses_loop import final_response

TOOLS = [{"type": "function", "name": "exec_command", "description": "Run a command", "strict": False,
          "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}]


def script(turns: int) -> str:
    """A simulator script of ``turns`` shell calls, then a text answer."""
    return "SIM:script " + " ;; ".join([f"shell echo step {i}" for i in range(turns)] + ["text all done"])


def output_of(i: int, size: int) -> str:
    """Tool output ``i``: ``size`` characters, distinct per turn (so the stored history grows)."""
    line = f"line {i}: " + "abcdefghij" * 10 + "\n"
    return (line * (size // len(line) + 1))[:size]


def chained_turn(client: openai.OpenAI, items: list[dict[str, Any]], previous: str | None, *, stream: bool) -> Any:
    kwargs: dict[str, Any] = {"model": "deepseek-v4-pro", "input": items, "tools": TOOLS,
                              "reasoning": {"effort": "high", "summary": "auto"}}
    if previous is not None:
        kwargs["previous_response_id"] = previous
    return final_response(client, stream=stream, **kwargs)


def chained_loop(url_of_turn: Callable[[int], str], turns: range, items: list[dict[str, Any]],
                 previous: str | None = None, *, output_size: int) -> tuple[list[Any], list[dict[str, Any]]]:
    """Turns in ``turns`` (until the text answer): turn k sends ``items`` (the first: the prompt;
    then the tool outputs) chained to the previous Response, to ``url_of_turn(k)`` (a replica),
    streamed on even turns and collected on odd ones. Returns the Responses in order and the
    items the next turn would send."""
    responses = []
    for k in turns:
        client = openai.OpenAI(base_url=url_of_turn(k), api_key="x", max_retries=0)
        response = chained_turn(client, items, previous, stream=k % 2 == 0)
        assert response.status == "completed", response
        responses.append(response)
        previous = response.id
        calls = [o for o in response.output if o.type == "function_call"]
        items = [{"type": "function_call_output", "call_id": c.call_id, "output": output_of(k, output_size)}
                 for c in calls]
        if not calls:
            break
    return responses, items
