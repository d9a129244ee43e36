"""Non-streaming clients (``stream: false``) after a mid-stream upstream fault: the client has
nothing until the whole body, so the gateway retries the fault like one before the first byte
(same policy, attempts and fallback) and the client gets 200 with the whole answer, not a 5xx.

Through the production path: the official SDKs (their own retries off), hypercorn on 127.0.0.1,
the ``openai_chat`` upstream and transport, the simulator as its own process. Pieces are 5 ms
apart so a fault arrives in a read after the first content (the upstream has committed). A
deterministic in-stream error (invalid_request) is not retried; a persistent fault ends in the
dialect's error after ``attempts_per_upstream``. A try given up on leaves nothing behind: the
answer, its tool call and its sealed reasoning are those of the try that served (checked by
replaying the next turn against a simulator that verifies the replay byte for byte).
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import msgspec
import openai
import pytest
import structlog
import trio

from tests.e2e.serving import SIM, open_gateway
from tests.resilience.dialects import BASH, DIALECTS, SHIPPED_STAGES, ScriptedServer, finished_lines, sse_answer
from tests.resilience.dialects import wait_finished
from upstreams.simulator.testing import SimulatorProcess

ANSWER = "all good here, the whole answer in one piece"
RETRY = "{attempts_per_upstream: 2, budget: 4, backoff_base_s: 0.01, backoff_cap_s: 0.02}"
# A fault after the upstream's first content; each is transient, so it is retried.
MID_STREAM = ("drop", "badchunk", "truncate", "error_chunk", "overload", "stall")
BASES = {"anthropic": "/anthropic", "responses": "/responses/v1", "chat": "/chat/v1"}


def config(upstream: str = "{" + SIM + ", idle_timeout_s: 0.5}") -> str:
    text = f"upstreams:\n  sim: {upstream}\npipelines:\n"
    for d in DIALECTS:
        text += (f"  {d}:\n    client: {d}\n    mount: /{d}\n    upstream: sim\n"
                 f"    stages: {SHIPPED_STAGES[d]}\n    retry: {RETRY}\n")
    return text


@pytest.fixture
def fault_sim(sim: SimulatorProcess) -> SimulatorProcess:
    sim.reset(stall_s=30, chunk_delay_s=0.005, verify_replay=True)
    return sim


def ask(dialect: str, base: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> Any:
    """One non-streaming request through the dialect's official SDK; returns its parsed answer."""
    if dialect == "anthropic":
        client = anthropic.Anthropic(base_url=base, api_key="k", max_retries=0, timeout=20)
        return client.messages.create(model="claude-opus-5-5", max_tokens=4096, messages=messages,
                                      thinking={"type": "adaptive"}, **({"tools": tools} if tools else {}))
    client_oa = openai.OpenAI(base_url=base, api_key="k", max_retries=0, timeout=20)
    if dialect == "responses":
        return client_oa.responses.create(model="gpt-5.5", input=messages, store=False,  # type: ignore[arg-type]
                                          include=["reasoning.encrypted_content"], reasoning={"summary": "auto"},
                                          **({"tools": tools} if tools else {}))
    return client_oa.chat.completions.create(model="deepseek-v4-pro", messages=messages,  # type: ignore[arg-type]
                                             **({"tools": tools} if tools else {}))


def user(dialect: str, text: str) -> dict[str, Any]:
    if dialect == "responses":
        return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    return {"role": "user", "content": text}


def content(dialect: str, answer: Any) -> list[tuple[str, str]]:
    """What the client was given: (kind, text) per block, in order, without ids or signatures."""
    if dialect == "anthropic":
        return [(b.type, b.text if b.type == "text" else b.thinking if b.type == "thinking" else
                 json.dumps(b.input, sort_keys=True)) for b in answer.content]
    if dialect == "responses":
        out = []
        for item in answer.output:
            if item.type == "message":
                out += [("text", part.text) for part in item.content]
            elif item.type == "reasoning":
                out += [("thinking", s.text) for s in item.summary or ()] + [("thinking", c.text) for c in item.content or ()]
            elif item.type == "function_call":
                out.append(("call", item.name + item.arguments))
        return out
    message = answer.choices[0].message
    calls = [("call", c.function.name + c.function.arguments) for c in message.tool_calls or ()]
    return [("thinking", message.model_extra.get("reasoning_content") or ""), ("text", message.content or ""), *calls]


def text_of(dialect: str, answer: Any) -> str:
    return "".join(text for kind, text in content(dialect, answer) if kind == "text")


def error_of(exc: anthropic.APIStatusError | openai.APIStatusError) -> tuple[int, str, str]:
    """(HTTP status, the dialect's error type/code, message) of an SDK error."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body)
    return exc.status_code, error.get("code") or error.get("type"), error.get("message", "")


async def run(dialect: str, url: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> Any:
    with trio.fail_after(20):
        return await trio.to_thread.run_sync(ask, dialect, url + BASES[dialect], messages, tools)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("fault", MID_STREAM)
async def test_a_mid_stream_fault_once_is_retried_for_a_collected_answer(fault: str, dialect: str,
                                                                        fault_sim: SimulatorProcess) -> None:
    """The client gets 200 and exactly the answer a clean try gives; the simulator saw 2 requests."""
    prompt = f"SIM:text {ANSWER}\nSIM:fault {fault} once"
    async with open_gateway(config(), sim=fault_sim) as (url, _):
        with structlog.testing.capture_logs() as logs:
            answer = await run(dialect, url, [user(dialect, prompt)])
            await wait_finished(logs)
        assert fault_sim.chat_requests == 2
        clean = await run(dialect, url, [user(dialect, prompt)])  # the fault was once: a clean try
    assert text_of(dialect, answer) == ANSWER
    assert content(dialect, answer) == content(dialect, clean)
    (line,) = finished_lines(logs)
    assert (line["status"], line["attempts"], line["error_code"]) == (200, 2, None)
    failed = [e for e in logs if e.get("event") == "upstream_attempt_failed"]
    assert len(failed) == 1 and failed[0]["code"] in ("overloaded", "bad_gateway", "api_error")


# Every try faults: the dialect's HTTP error once attempts_per_upstream (2) are used up.
EXHAUSTED = {
    "drop": {"anthropic": (529, "overloaded_error"), "responses": (503, "server_is_overloaded"),
             "chat": (503, "server_is_overloaded")},
    "badchunk": {"anthropic": (502, "api_error"), "responses": (502, "server_error"), "chat": (502, "bad_gateway")},
    "truncate": {"anthropic": (502, "api_error"), "responses": (502, "server_error"), "chat": (502, "bad_gateway")},
    "error_chunk": {"anthropic": (500, "api_error"), "responses": (500, "server_error"), "chat": (500, "server_error")},
    "overload": {"anthropic": (529, "overloaded_error"), "responses": (503, "server_is_overloaded"),
                 "chat": (503, "server_is_overloaded")},
    "stall": {"anthropic": (529, "overloaded_error"), "responses": (503, "server_is_overloaded"),
              "chat": (503, "server_is_overloaded")},
}
MESSAGES = {"drop": "connection lost mid-stream", "badchunk": "malformed chunk", "truncate": "ended before finish_reason",
            "error_chunk": "Simulated mid-stream failure", "overload": "insufficient_system_resource",
            "stall": "idle timeout"}


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("fault", MID_STREAM)
async def test_a_persistent_mid_stream_fault_is_the_dialects_error_after_the_attempts(
        fault: str, dialect: str, fault_sim: SimulatorProcess) -> None:
    async with open_gateway(config(), sim=fault_sim) as (url, _):
        with pytest.raises((anthropic.APIStatusError, openai.APIStatusError)) as caught:
            await run(dialect, url, [user(dialect, f"SIM:text {ANSWER}\nSIM:fault {fault}")])
    status, kind, message = error_of(caught.value)
    assert (status, kind) == EXHAUSTED[fault][dialect]
    assert MESSAGES[fault] in message
    assert fault_sim.chat_requests == 2


def invalid_chunk_server() -> ScriptedServer:
    """A 200 stream with text and then (a read of its own) an invalid_request error chunk: a
    deterministic answer, which another try would only repeat."""
    chunk = {"id": "c1", "object": "chat.completion.chunk", "model": "m",
             "choices": [{"index": 0, "delta": {"role": "assistant", "content": "partial"}}]}
    error = {"error": {"message": "Invalid tool call arguments in the history", "type": "invalid_request_error",
                       "param": None, "code": "invalid_request_error"}}
    return ScriptedServer(lambda n, key, body: sse_answer(
        *[(delay, b"data: " + msgspec.json.encode(x) + b"\n\n") for delay, x in ((0.0, chunk), (0.05, error))]))


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_deterministic_in_stream_error_is_not_retried(dialect: str) -> None:
    server = invalid_chunk_server()
    async with trio.open_nursery() as nursery:
        base = await server.serve(nursery)
        upstream = "{type: openai_chat, base_url: '" + base + "', profile: deepseek}"
        async with open_gateway(config(upstream)) as (url, _):
            with pytest.raises((anthropic.APIStatusError, openai.APIStatusError)) as caught:
                await run(dialect, url, [user(dialect, "hello")])
        nursery.cancel_scope.cancel()
    status, kind, message = error_of(caught.value)
    assert status == 400 and kind == "invalid_request_error" and "Invalid tool call arguments" in message
    assert server.chat_requests == 1


COMMAND = "echo " + " ".join(f"w{i}" for i in range(60))


def next_turn(dialect: str, messages: list[dict[str, Any]], answer: Any) -> list[dict[str, Any]]:
    """The history with ``answer`` (a tool call) and its result appended, as each client sends it."""
    if dialect == "anthropic":
        calls = [b for b in answer.content if b.type == "tool_use"]
        return [*messages, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in answer.content]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": c.id, "content": "ok"} for c in calls]}]
    if dialect == "responses":
        items = [{k: v for k, v in o.model_dump(exclude_none=True).items() if k not in ("id", "status")}
                 for o in answer.output]
        calls = [o for o in answer.output if o.type == "function_call"]
        return [*messages, *items, *({"type": "function_call_output", "call_id": c.call_id, "output": "ok"} for c in calls)]
    message = answer.choices[0].message
    return [*messages, {"role": "assistant", "content": message.content,
                        "reasoning_content": message.model_extra.get("reasoning_content"),
                        "tool_calls": [{"id": c.id, "type": "function", "function": {
                            "name": c.function.name, "arguments": c.function.arguments}} for c in message.tool_calls]},
            *({"role": "tool", "tool_call_id": c.id, "content": "ok"} for c in message.tool_calls)]


# How each dialect ends a tool-call turn (a call dropped as cut off would make it max_tokens/length).
STOPS = {"anthropic": (lambda a: a.stop_reason, "tool_use"), "responses": (lambda a: a.status, "completed"),
         "chat": (lambda a: a.choices[0].finish_reason, "tool_calls")}


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_try_given_up_inside_a_tool_call_leaves_nothing_behind(dialect: str, fault_sim: SimulatorProcess) -> None:
    """The first request drops inside the tool call's arguments, after the reasoning block ended
    (the stages hold the call and the block's end). The client gets the second try's call whole,
    once, with its own reasoning sealed: the next turn replays it and the simulator, verifying the
    replay, accepts it."""
    fault_sim.reset(chunk_delay_s=0.005, verify_replay=True, faults=[{"on_request": 1, "kind": "drop"}])
    script = f'SIM:think checking the words first\nSIM:script call Bash {json.dumps({"command": COMMAND})} ;; text done'
    messages = [user(dialect, script)]
    async with open_gateway(config(), sim=fault_sim) as (url, _):
        first = await run(dialect, url, messages, [BASH[dialect]])
        assert fault_sim.chat_requests == 2
        second = await run(dialect, url, next_turn(dialect, messages, first), [BASH[dialect]])
    calls = [text for kind, text in content(dialect, first) if kind in ("tool_use", "call")]
    assert calls == [json.dumps({"command": COMMAND}, sort_keys=True) if dialect == "anthropic"
                     else "Bash" + json.dumps({"command": COMMAND}, separators=(",", ":"))]
    stop, expected = STOPS[dialect]
    assert stop(first) == expected
    assert ("thinking", "checking the words first") in content(dialect, first)
    assert text_of(dialect, second) == "done" and fault_sim.chat_requests == 3


def history(dialect: str, size: int) -> list[dict[str, Any]]:
    """About ``size`` bytes of earlier turns, then the faulting prompt."""
    turn = "a line of an earlier turn, long enough to add up. " * 40
    reply = ({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "noted"}]}
             if dialect == "responses" else {"role": "assistant", "content": "noted"})
    messages = [m for _ in range(size // len(turn) + 1) for m in (user(dialect, turn), reply)]
    return [*messages, user(dialect, f"SIM:text {ANSWER}\nSIM:fault drop once")]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_megabyte_history_with_a_drop_once_gets_the_answer(dialect: str, fault_sim: SimulatorProcess) -> None:
    messages = history(dialect, 1_000_000)
    async with open_gateway(config(), sim=fault_sim) as (url, _):
        answer = await run(dialect, url, messages)
    assert text_of(dialect, answer) == ANSWER
    assert fault_sim.chat_requests == 2
    assert [len(json.dumps(r)) > 1_000_000 for r in fault_sim.requests()] == [True, True]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_mid_stream_fault_moves_on_to_the_fallback_upstream(dialect: str, fault_sim: SimulatorProcess) -> None:
    """One try per upstream: the first upstream's try drops mid-answer, the fallback serves."""
    text = (f"upstreams:\n  first: {{{SIM}}}\n  second: {{{SIM}}}\npipelines:\n  {dialect}:\n    client: {dialect}\n"
            f"    mount: /{dialect}\n    upstream: [first, second]\n    stages: {SHIPPED_STAGES[dialect]}\n"
            "    retry: {attempts_per_upstream: 1, budget: 4, backoff_base_s: 0.01, backoff_cap_s: 0.02}\n")
    async with open_gateway(text, sim=fault_sim) as (url, _):
        with structlog.testing.capture_logs() as logs:
            answer = await run(dialect, url, [user(dialect, f"SIM:text {ANSWER}\nSIM:fault drop once")])
            await wait_finished(logs)
    assert text_of(dialect, answer) == ANSWER and fault_sim.chat_requests == 2
    (line,) = finished_lines(logs)
    assert (line["status"], line["upstream"], line["attempts"]) == (200, "second", 2)
