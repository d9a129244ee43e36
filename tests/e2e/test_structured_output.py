"""Structured output through the real path: each dialect's official SDK → hypercorn → gateway
(``thinking_filter, token_budget, tool_ids, structured_output``) → ``openai_chat`` → the
simulator as its own process (DeepSeek: ``json_object`` only, the word "json" required).

Responses ``text.format`` json_schema, Chat ``response_format`` json_schema and an Anthropic
forced tool, streamed and not: valid the first time (one upstream call, DeepSeek sent
``json_object`` and the schema in its system prompt); invalid JSON or a schema violation the first
time (``SIM:invalid once``), fixed by the one retry, whose request carries the validation error;
invalid twice: the client's 422 in its dialect (``response.failed`` with Codex's fatal
``invalid_prompt`` for a streaming Responses client). And at real size: a 60-property schema
with ``$defs`` and a ~200 KB answer, wrong in one value the first time. The retry is outside the
retry budget, and an upstream failure on it is retried with the amended request.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest
import trio

from tests.e2e.serving import SIM, open_gateway

STAGES = {"anthropic": "[thinking_filter, token_budget, tool_ids, structured_output]",
          "responses": "[thinking_filter, token_budget, tool_ids, structured_output]",
          "chat": "[token_budget, tool_ids, structured_output]"}
DIALECTS = tuple(STAGES)
CONFIG = f"upstreams:\n  sim: {{{SIM}}}\npipelines:\n" + "".join(
    f"  {d}:\n    client: {d}\n    mount: /{d}\n    upstream: sim\n    stages: {s}\n" for d, s in STAGES.items())
BASES = {"anthropic": "/anthropic", "responses": "/responses/v1", "chat": "/chat/v1"}

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
          "required": ["city", "days"], "additionalProperties": False}
GOOD = {"city": "Oslo", "days": 3}


class Answer:
    """What the client got: the JSON text (a text answer, or the forced tool's input), or its error."""

    def __init__(self, text: str | None = None, status: int | None = None, kind: str | None = None,
                 message: str = "", in_stream: bool = False) -> None:
        self.text, self.status, self.kind, self.message, self.in_stream = text, status, kind, message, in_stream


def _error(exc: anthropic.APIStatusError | openai.APIStatusError) -> Answer:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body)
    return Answer(status=exc.status_code, kind=error.get("code") or error.get("type"), message=error.get("message", ""),
                  in_stream=exc.status_code == 200)  # Anthropic's SDK raises an in-stream error so


def ask(dialect: str, base: str, prompt: str, schema: dict[str, Any], stream: bool) -> Answer:
    """One request for a JSON answer in the dialect's own way, through its official SDK."""
    messages = [{"role": "user", "content": prompt}]
    try:
        if dialect == "anthropic":
            client = anthropic.Anthropic(base_url=base, api_key="k", max_retries=0, timeout=120)
            tool = {"name": "record", "description": "Record the trip", "input_schema": schema}
            kwargs: dict[str, Any] = {"model": "claude-opus-5-5", "max_tokens": 200_000, "messages": messages,
                                      "tools": [tool], "tool_choice": {"type": "tool", "name": "record"}}
            if stream:
                with client.messages.stream(**kwargs) as events:
                    for event in events:
                        if event.type == "error":  # pragma: no cover - the SDK raises instead
                            return Answer(kind=event.error.type, in_stream=True)
                    message = events.get_final_message()
            else:
                message = client.messages.create(**kwargs)
            calls = [b.input for b in message.content if b.type == "tool_use" and b.name == "record"]
            return Answer(text=json.dumps(calls[0]) if calls else None)
        oa = openai.OpenAI(base_url=base, api_key="k", max_retries=0, timeout=120)
        if dialect == "responses":
            fmt = {"format": {"type": "json_schema", "name": "trip", "schema": schema, "strict": True}}
            if not stream:
                response = oa.responses.create(model="gpt-5.5", input=prompt, text=fmt, store=False)
                return Answer(text=response.output_text)
            text = ""
            for event in oa.responses.create(model="gpt-5.5", input=prompt, text=fmt, store=False, stream=True):
                if event.type == "response.output_text.delta":
                    text += event.delta
                elif event.type == "response.failed":
                    error = event.response.error
                    return Answer(kind=error.code, message=error.message, in_stream=True)
            return Answer(text=text)
        fmt_chat = {"type": "json_schema", "json_schema": {"name": "trip", "schema": schema, "strict": True}}
        if not stream:
            completion = oa.chat.completions.create(model="deepseek-v4-pro", messages=messages,
                                                    response_format=fmt_chat)
            return Answer(text=completion.choices[0].message.content)
        text = ""
        try:
            for chunk in oa.chat.completions.create(model="deepseek-v4-pro", messages=messages,
                                                    response_format=fmt_chat, stream=True):
                if chunk.choices and chunk.choices[0].delta.content:
                    text += chunk.choices[0].delta.content
        except openai.APIError as exc:  # the SDK raises the in-stream error chunk
            body = exc.body if isinstance(exc.body, dict) else {}
            return Answer(kind=body.get("code") or body.get("type"), message=exc.message, in_stream=True)
        return Answer(text=text)
    except (anthropic.APIStatusError, openai.APIStatusError) as exc:
        return _error(exc)
    except anthropic.APIError as exc:  # Anthropic's in-stream ``event: error``
        body = exc.body if isinstance(exc.body, dict) else {}
        error = body.get("error", body)
        return Answer(kind=error.get("type"), message=error.get("message", str(exc)), in_stream=True)


def prompt_for(dialect: str, good: str, bad: str | None = None, once: bool = True) -> str:
    """The simulator's directives: answer ``good`` (JSON text), or ``bad`` instead (the first time)."""
    answer = f"SIM:call record {good}" if dialect == "anthropic" else f"SIM:text {good}"
    spoil = "" if bad is None else f"SIM:invalid {'once ' if once else ''}{bad}\n"
    return f"Plan a trip.\n{spoil}{answer}"


async def run(sim, dialect: str, prompt: str, *, stream: bool, schema: dict[str, Any] = SCHEMA) -> Answer:
    async with open_gateway(CONFIG, sim=sim) as (url, _):
        with trio.fail_after(120):
            return await trio.to_thread.run_sync(ask, dialect, url + BASES[dialect], prompt, schema, stream)


def upstream_bodies(sim, n: int) -> list[dict[str, Any]]:
    bodies = sim.requests()
    assert len(bodies) == n, [b.get("messages", [])[-1:] for b in bodies]
    return bodies


def system_text(body: dict[str, Any]) -> str:
    return "\n".join(m["content"] if isinstance(m["content"], str) else "" for m in body["messages"]
                     if m["role"] == "system")


@pytest.mark.parametrize("stream", [False, True], ids=["collected", "streamed"])
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_valid_answer_the_first_time(dialect: str, stream: bool, sim) -> None:
    answer = await run(sim, dialect, prompt_for(dialect, json.dumps(GOOD)), stream=stream)
    assert answer.status is None and json.loads(answer.text or "") == GOOD
    (body,) = upstream_bodies(sim, 1)
    if dialect == "anthropic":  # a forced tool: sent as it came, its schema is the tool's
        assert "response_format" not in body
    else:  # DeepSeek does not enforce a schema: its JSON mode, and the schema in the prompt
        assert body["response_format"] == {"type": "json_object"}
        assert json.dumps(SCHEMA, separators=(",", ":")) in system_text(body)


SPOILED = {"invalid JSON": '{"city": "Oslo", "days":', "a schema violation": '{"city": "Oslo", "days": 0}'}


@pytest.mark.parametrize("stream", [False, True], ids=["collected", "streamed"])
@pytest.mark.parametrize("spoiled", list(SPOILED))
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_an_invalid_answer_is_fixed_by_the_retry(dialect: str, spoiled: str, stream: bool, sim) -> None:
    bad = SPOILED[spoiled]
    answer = await run(sim, dialect, prompt_for(dialect, json.dumps(GOOD), bad), stream=stream)
    assert answer.status is None and answer.kind is None, answer.message
    assert json.loads(answer.text or "") == GOOD
    first, second = upstream_bodies(sim, 2)
    assert second["messages"][:-1] == first["messages"]
    note = second["messages"][-1]
    assert note["role"] == "user"
    why = "minimum of 1" if spoiled == "a schema violation" else "JSON"
    assert why in note["content"] and "rejected" in note["content"]


# What an answer that fails twice is in each dialect: the 422 (``unprocessable``); streamed, after
# the 200: Codex's fatal invalid_prompt, Anthropic's invalid_request_error, Chat's error chunk.
FAILED = {("anthropic", False): (422, "invalid_request_error"), ("responses", False): (422, "invalid_request_error"),
          ("chat", False): (422, "unprocessable_entity"), ("anthropic", True): (200, "invalid_request_error"),
          ("responses", True): (None, "invalid_prompt"), ("chat", True): (None, "unprocessable_entity")}


@pytest.mark.parametrize("stream", [False, True], ids=["collected", "streamed"])
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_invalid_twice_is_a_clear_error_in_the_dialect(dialect: str, stream: bool, sim) -> None:
    answer = await run(sim, dialect, prompt_for(dialect, json.dumps(GOOD), '{"city": 7}', once=False),
                       stream=stream)
    assert (answer.status, answer.kind) == FAILED[dialect, stream], answer.message
    assert answer.in_stream == stream and answer.text is None
    assert "did not validate against" in answer.message and "after 2 tries" in answer.message
    assert "7 is not of type 'string'" in answer.message or "'days' is a required property" in answer.message
    upstream_bodies(sim, 2)  # one retry, no more


def big_schema() -> dict[str, Any]:
    """60 typed properties per record (strings with patterns, bounded integers, enums, nested
    arrays through $defs), as a real extraction schema has."""
    props: dict[str, Any] = {}
    for i in range(60):
        kind = i % 4
        props[f"field_{i:02d}"] = ({"type": "string", "pattern": "^v[0-9]+$"} if kind == 0 else
                                   {"type": "integer", "minimum": 0, "maximum": 10_000} if kind == 1 else
                                   {"enum": ["red", "green", "blue"]} if kind == 2 else
                                   {"type": "array", "items": {"$ref": "#/$defs/tag"}, "maxItems": 4})
    record = {"type": "object", "properties": props, "required": sorted(props), "additionalProperties": False}
    return {"$defs": {"tag": {"type": "object", "properties": {"k": {"type": "string"}, "n": {"type": "integer"}},
                              "required": ["k", "n"], "additionalProperties": False}, "record": record},
            "type": "object", "properties": {"records": {"type": "array", "items": {"$ref": "#/$defs/record"}}},
            "required": ["records"], "additionalProperties": False}


def big_answer(records: int) -> dict[str, Any]:
    def value(i: int, r: int) -> Any:
        kind = i % 4
        return (f"v{r}{i}" if kind == 0 else (r * i) % 10_000 if kind == 1 else ("red", "green", "blue")[r % 3]
                if kind == 2 else [{"k": f"t{r}", "n": r}])
    return {"records": [{f"field_{i:02d}": value(i, r) for i in range(60)} for r in range(records)]}


@pytest.mark.parametrize("stream", [False, True], ids=["collected", "streamed"])
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_large_schema_and_answer_fixed_by_the_retry(dialect: str, stream: bool, sim) -> None:
    schema, good = big_schema(), big_answer(150)
    bad = json.loads(json.dumps(good))
    bad["records"][97]["field_41"] = 10_001  # one value out of ~10,000, near the end
    good_text, bad_text = json.dumps(good), json.dumps(bad)
    assert len(good_text) > 200_000 and len(json.dumps(schema)) > 4_000
    answer = await run(sim, dialect, prompt_for(dialect, good_text, bad_text), stream=stream, schema=schema)
    assert answer.kind is None, answer.message
    assert json.loads(answer.text or "") == good
    _, second = upstream_bodies(sim, 2)
    assert "at $.records[97].field_41: 10001 is greater than the maximum of 10000" in second["messages"][-1]["content"]


@pytest.mark.parametrize("stream", [False, True], ids=["collected", "streamed"])
async def test_the_retry_is_outside_the_retry_budget(stream: bool, sim) -> None:
    """A pipeline that retries nothing (budget 1) still gets its one structured-output retry."""
    config = CONFIG.replace("    upstream: sim\n", "    upstream: sim\n    retry: {attempts_per_upstream: 1, budget: 1}\n")
    async with open_gateway(config, sim=sim) as (url, _):
        answer = await trio.to_thread.run_sync(ask, "chat", url + BASES["chat"],
                                               prompt_for("chat", json.dumps(GOOD), "{}"), SCHEMA, stream)
    assert json.loads(answer.text or "") == GOOD, answer.message
    upstream_bodies(sim, 2)


@pytest.mark.parametrize("stream", [False, True], ids=["collected", "streamed"])
async def test_an_upstream_failure_on_the_retry_is_retried_with_the_note(stream: bool, sim) -> None:
    """The retry's own request fails (a 503): the retry loop tries again with the amended request,
    not the first one (whose answer was rejected)."""
    sim.reset(faults=[{"on_request": 2, "kind": "503"}])
    answer = await run(sim, "responses", prompt_for("responses", json.dumps(GOOD), "[1]"), stream=stream)
    assert json.loads(answer.text or "") == GOOD, answer.message
    first, third = upstream_bodies(sim, 2)  # the simulator keeps no body of a request it failed with a 503
    assert third["messages"][:-1] == first["messages"]
    assert "is not of type 'object'" in third["messages"][-1]["content"]
