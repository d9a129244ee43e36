"""Non-streaming answers (``stream: false``) through the real path: each dialect's official SDK →
hypercorn → gateway (shipped stages) → ``openai_chat`` → the simulator as its own process. The
three collectors share one fold (``pipeline/assemble.py``), so the cases they once folded each
their own way now agree: text that arrives after its block closed (``LateText``) is kept, the
first of two errors mid-answer is the client's error (``FailMidAnswer``), and an answer whose end
was lost (``LoseEnd``) is a 502 in the dialect, not a normal stop. Also at real size: 50 parallel
tool calls and a 1 MB text answer, whole and in order.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest
import trio

from tests.e2e.serving import SIM, open_gateway
from tests.resilience.dialects import BASH, DIALECTS, SHIPPED_STAGES

# The reshaping stage comes first in YAML, so it runs last on the way out (nearest the encoder).
VARIANTS = {"plain": "", "late": "custom_stage.reshape:LateText, ", "fail": "custom_stage.reshape:FailMidAnswer, ",
            "noend": "custom_stage.reshape:LoseEnd, "}
BASES = {"anthropic": "", "responses": "/v1", "chat": "/v1"}
MAX_OUTPUT = 393_216  # DeepSeek V4's: room for the 1 MB answer


def config() -> str:
    text = f"upstreams:\n  sim: {{{SIM}}}\npipelines:\n"
    for variant, extra in VARIANTS.items():
        for d in DIALECTS:
            text += (f"  {variant}_{d}:\n    client: {d}\n    mount: /{variant}/{d}\n    upstream: sim\n"
                     f"    stages: [{extra}{SHIPPED_STAGES[d][1:]}\n")
    return text


def ask(dialect: str, base: str, prompt: str, tools: bool = False) -> Any:
    """One ``stream=False`` request through the dialect's official SDK (its retries off)."""
    extra: dict[str, Any] = {"tools": [BASH[dialect]]} if tools else {}
    if dialect == "anthropic":
        client = anthropic.Anthropic(base_url=base, api_key="k", max_retries=0, timeout=60)
        return client.messages.create(model="claude-opus-5-5", max_tokens=MAX_OUTPUT, stream=False,
                                      messages=[{"role": "user", "content": prompt}],
                                      thinking={"type": "adaptive"}, **extra)
    client_oa = openai.OpenAI(base_url=base, api_key="k", max_retries=0, timeout=60)
    if dialect == "responses":
        return client_oa.responses.create(model="gpt-5.5", stream=False, store=False, max_output_tokens=MAX_OUTPUT,
                                          input=[{"type": "message", "role": "user",
                                                  "content": [{"type": "input_text", "text": prompt}]}],
                                          include=["reasoning.encrypted_content"], **extra)
    return client_oa.chat.completions.create(model="deepseek-v4-pro", stream=False, max_tokens=MAX_OUTPUT,
                                             messages=[{"role": "user", "content": prompt}], **extra)


def text_of(dialect: str, answer: Any) -> str:
    if dialect == "anthropic":
        return "".join(b.text for b in answer.content if b.type == "text")
    if dialect == "responses":
        return "".join(p.text for item in answer.output if item.type == "message" for p in item.content)
    return answer.choices[0].message.content or ""


def calls_of(dialect: str, answer: Any) -> list[tuple[str, dict[str, Any]]]:
    """(tool name, parsed arguments) per call, in order."""
    if dialect == "anthropic":
        return [(b.name, b.input) for b in answer.content if b.type == "tool_use"]
    if dialect == "responses":
        return [(item.name, json.loads(item.arguments)) for item in answer.output if item.type == "function_call"]
    return [(c.function.name, json.loads(c.function.arguments)) for c in answer.choices[0].message.tool_calls or ()]


def error_of(exc: anthropic.APIStatusError | openai.APIStatusError) -> tuple[int, str, str]:
    """(HTTP status, the dialect's error type/code, message) of an SDK error."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body)
    return exc.status_code, error.get("code") or error.get("type"), error.get("message", "")


async def run(url: str, variant: str, dialect: str, prompt: str, tools: bool = False) -> Any:
    with trio.fail_after(120):
        return await trio.to_thread.run_sync(ask, dialect, f"{url}/{variant}/{dialect}{BASES[dialect]}", prompt, tools)


ANSWER = " ".join(f"word{i}" for i in range(40))  # 14 of the simulator's 3-word pieces


async def test_text_after_its_block_closed_is_kept_by_every_dialect(sim) -> None:
    """Half of the text comes after its ``BlockStop``: every dialect's body has all of it (the
    Anthropic and Responses collectors used to drop that half, Chat's kept it)."""
    async with open_gateway(config(), sim=sim) as (url, _):
        for dialect in DIALECTS:
            plain = await run(url, "plain", dialect, f"SIM:text {ANSWER}")
            late = await run(url, "late", dialect, f"SIM:text {ANSWER}")
            assert text_of(dialect, plain) == ANSWER, dialect
            assert text_of(dialect, late) == ANSWER, dialect


FIRST_ERROR = {"anthropic": (529, "overloaded_error"), "responses": (503, "server_is_overloaded"),
               "chat": (503, "server_is_overloaded")}


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_the_first_error_mid_answer_is_the_clients_error(dialect: str, sim) -> None:
    """An error after the first text, the answer going on, a second error before its end: the
    client gets the first one, as its dialect's HTTP error, and no body."""
    async with open_gateway(config(), sim=sim) as (url, _):
        with pytest.raises((anthropic.APIStatusError, openai.APIStatusError)) as caught:
            await run(url, "fail", dialect, f"SIM:text {ANSWER}")
    status, kind, message = error_of(caught.value)
    assert (status, kind) == FIRST_ERROR[dialect]
    assert "the first error, the cause" in message


LOST_END = {"anthropic": (502, "api_error"), "responses": (502, "server_error"), "chat": (502, "bad_gateway")}


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_an_answer_whose_end_was_lost_is_a_502_in_every_dialect(dialect: str, sim) -> None:
    """No ``MessageStop`` ever came: a 502 in the dialect (Anthropic's collector used to answer
    200 with ``end_turn``, Responses' 200 with status ``failed``)."""
    async with open_gateway(config(), sim=sim) as (url, _):
        with pytest.raises((anthropic.APIStatusError, openai.APIStatusError)) as caught:
            await run(url, "noend", dialect, f"SIM:text {ANSWER}")
    status, kind, message = error_of(caught.value)
    assert (status, kind) == LOST_END[dialect]
    assert "ended before the message was complete" in message


COMMANDS = [f"echo call {i:02d} " + "x" * 40 for i in range(50)]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_fifty_parallel_tool_calls_arrive_whole_and_in_order(dialect: str, sim) -> None:
    async with open_gateway(config(), sim=sim) as (url, _):
        answer = await run(url, "plain", dialect, "SIM:parallel " + " || ".join(COMMANDS), tools=True)
    assert calls_of(dialect, answer) == [("Bash", {"command": c}) for c in COMMANDS]


BIG = " ".join(f"word{i:07d}" for i in range(84_000))  # 1,007,999 bytes, ~28,000 upstream deltas


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_one_megabyte_answer_arrives_whole(dialect: str, sim) -> None:
    assert len(BIG) > 1_000_000
    async with open_gateway(config(), sim=sim) as (url, _):
        answer = await run(url, "plain", dialect, f"SIM:text {BIG}")
    assert text_of(dialect, answer) == BIG
