"""Codex's streamed tool loop through the official ``openai`` SDK (its shape: reasoning high with
summaries, ``encrypted_content`` asked for, stateless, the output items echoed back without their
ids), shared by the end-to-end tests that drive a Responses client through a tool loop."""

from __future__ import annotations

from typing import Any

import openai


def final_response(client: openai.OpenAI, *, stream: bool = True, **kwargs: Any) -> Any:
    """One Responses request: collected, or streamed to its end; the final Response either way."""
    if not stream:
        return client.responses.create(**kwargs)
    with client.responses.stream(**kwargs) as events:
        for _event in events:
            pass
        return events.get_final_response()


def echoed(response: Any, *, keep_status: bool = False) -> list[dict[str, Any]]:
    """A Response's output items as Codex sends them back: without their ids (and statuses)."""
    items = []
    for out in response.output:
        item = out.model_dump(exclude_none=True)
        item.pop("id", None)
        if not keep_status:
            item.pop("status", None)
        items.append(item)
    return items


def codex_loop(base_url: str, items: list[dict[str, Any]], tools: list[dict[str, Any]], *, steps: int = 4,
               choices: list[Any] | None = None, model: str = "deepseek-v4-pro") -> list[Any]:
    """Codex's tool loop from the input ``items``: each answer's function calls get ``ok``;
    ``choices``: each turn's ``tool_choice`` (``None``: not sent), one turn each."""
    client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0)
    items = list(items)
    responses = []
    for choice in choices if choices is not None else [None] * steps:
        extra = {"tool_choice": choice} if choice is not None else {}
        response = final_response(client, model=model, input=items, tools=tools, store=False,
                                  include=["reasoning.encrypted_content"],
                                  reasoning={"effort": "high", "summary": "auto"}, **extra)
        responses.append(response)
        calls = [o for o in response.output if o.type == "function_call"]
        if not calls:
            break
        items += echoed(response)
        items += [{"type": "function_call_output", "call_id": c.call_id, "output": "ok"} for c in calls]
    return responses
