"""The ``openai_responses`` upstream end to end, for each client: the official SDK → hypercorn →
gateway → the production transport → the simulator server's Responses mode (its own process,
DeepSeek flavour: sequence numbers, no ``[DONE]``, ``reasoning_text`` deltas, custom_tool_call
items, its own ``encrypted_content``).

Each test streams a multi-turn tool loop with thinking on. The simulator (``verify_replay``) 400s
a tool-call turn whose reasoning item is missing or differs from what it generated, a foreign
``encrypted_content``, a Chat field, a custom tool where none is accepted: a translation bug fails.
"""

from __future__ import annotations

import anthropic
import msgspec
import openai
import structlog
import trio

from tests.e2e.serving import SIM_KEY_ENV, open_gateway
from tests.resilience.dialects import finished_lines, wait_finished

MODELS = "models: {default: deepseek-v4-pro, '*haiku*': deepseek-v4-flash, '*flash*': deepseek-v4-flash}"


def config(client: str, profile: str = "deepseek_responses") -> str:
    return f"""
upstreams:
  dsr: {{type: openai_responses, base_url: '${{SIM_URL}}', profile: {profile}, api_key_env: {SIM_KEY_ENV}, {MODELS}}}
pipelines:
  p:
    client: {client}
    stages: [thinking_filter, token_budget, tool_ids]
    upstream: dsr
"""


BASH = {"name": "Bash", "description": "Run a shell command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}
CODEX_TOOLS = [
    {"type": "function", "name": "exec_command", "description": "Run a command", "strict": False,
     "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}},
    {"type": "custom", "name": "apply_patch", "description": "Edit files with a patch",
     "format": {"type": "grammar", "syntax": "lark",
                "definition": 'start: begin_patch hunk+ end_patch\nbegin_patch: "*** Begin Patch" LF\n'}},
]
CHAT_TOOL = {"type": "function", "function": {"name": "shell", "description": "Run a command", "parameters": {
    "type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}},
    "required": ["command"]}}}
SCRIPT = "SIM:script shell echo hi > a.txt ;; shell cat a.txt ;; text finished"


def anthropic_loop(base_url: str, prompt: str) -> list:
    client = anthropic.Anthropic(base_url=base_url, api_key="dummy", max_retries=0)
    messages: list[dict] = [{"role": "user", "content": prompt}]
    replies = []
    for _ in range(4):
        with client.messages.stream(model="claude-opus-5-5", max_tokens=32000, messages=messages, tools=[BASH],
                                    thinking={"type": "adaptive"},
                                    system=[{"type": "text", "text": "You are a coding agent."}]) as s:
            reply = s.get_final_message()
        replies.append(reply)
        if reply.stop_reason != "tool_use":
            break
        messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in reply.content]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": b.id, "content": f"ran {b.input['command']}"}
            for b in reply.content if b.type == "tool_use"]})
    return replies


def responses_loop(base_url: str, prompt: str) -> list:
    client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0)
    items: list = [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]},
                   {"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]}]
    responses = []
    for _ in range(4):
        with client.responses.stream(model="deepseek-v4-pro", input=items, tools=CODEX_TOOLS, store=False,
                                     include=["reasoning.encrypted_content"],
                                     reasoning={"effort": "high", "summary": "auto"}) as stream:
            for _event in stream:
                pass
            response = stream.get_final_response()
        responses.append(response)
        calls = [o for o in response.output if o.type in ("function_call", "custom_tool_call")]
        if not calls:
            break
        for out in response.output:  # echo the items as Codex does (without ids)
            item = out.model_dump(exclude_none=True)
            item.pop("id", None)
            item.pop("status", None)
            items.append(item)
        for call in calls:
            kind = "function_call_output" if call.type == "function_call" else "custom_tool_call_output"
            items.append({"type": kind, "call_id": call.call_id, "output": "ok"})
    return responses


def chat_loop(base_url: str, prompt: str) -> list:
    client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0)
    messages: list[dict] = [{"role": "user", "content": prompt}]
    completions = []
    for _ in range(4):
        with client.chat.completions.stream(model="deepseek-v4-pro", messages=messages, tools=[CHAT_TOOL],
                                            stream_options={"include_usage": True}) as stream:
            for _ in stream:
                pass
            done = stream.get_final_completion()
        completions.append(done)
        message = done.choices[0].message
        if not message.tool_calls:
            break
        messages.append({"role": "assistant", "content": message.content,
                         "reasoning_content": message.model_extra.get("reasoning_content"),
                         "tool_calls": [{"id": c.id, "type": "function", "function": {
                             "name": c.function.name, "arguments": c.function.arguments}} for c in message.tool_calls]})
        messages += [{"role": "tool", "tool_call_id": c.id, "content": "ok"} for c in message.tool_calls]
    return completions


def reasoning_items(body: dict) -> list[dict]:
    return [i for i in body["input"] if i.get("type") == "reasoning"]


def assert_upstream_shape(sent: list[dict], turns: int, *, sealed: bool = True) -> None:
    """What went upstream: Responses bodies, streamed, stateless, every earlier tool turn's reasoning
    item back with its text and (``sealed``) the simulator's own id and encrypted_content, which the
    envelope carried through the client (the simulator verified each against what it generated)."""
    assert len(sent) == turns
    for n, body in enumerate(sent):
        assert body["stream"] is True and body["store"] is False
        assert body["include"] == ["reasoning.encrypted_content"]
        assert "messages" not in body and "reasoning" in body
        assert len(reasoning_items(body)) == n
        assert all(i["content"][0]["type"] == "reasoning_text" and i["content"][0]["text"]
                   for i in reasoning_items(body))
        if sealed:
            assert all(i["id"].startswith("rs_") and i["encrypted_content"].startswith("dsenc1.")
                       for i in reasoning_items(body))


class TestResponsesUpstream:
    async def test_anthropic_client(self, sim) -> None:
        sim.reset(verify_replay=True)
        async with open_gateway(config("anthropic"), sim=sim) as (url, _):
            replies = await trio.to_thread.run_sync(anthropic_loop, url, SCRIPT)
        assert [r.stop_reason for r in replies] == ["tool_use", "tool_use", "end_turn"]
        thinking = next(b for b in replies[0].content if b.type == "thinking")
        assert thinking.thinking and thinking.signature.startswith("gw2.")
        tool = next(b for b in replies[1].content if b.type == "tool_use")
        assert tool.input == {"command": "cat a.txt"}
        assert replies[-1].content[-1].text == "finished"
        sent = sim.requests()
        assert_upstream_shape(sent, 3)
        shown = [next(b.thinking for b in r.content if b.type == "thinking") for r in replies[:2]]
        assert [i["content"][0]["text"] for i in reasoning_items(sent[-1])] == shown
        stats = sim.stats()
        assert stats["reasoning_items"] == stats["sealed_items"] == 3 and stats["verified_calls"] == 2

    async def test_responses_client_with_apply_patch(self, sim) -> None:
        """Codex's shell → freeform apply_patch → text: the custom tool goes upstream as a custom
        tool, its call comes back as a custom_tool_call item and returns as one."""
        sim.reset(verify_replay=True)
        prompt = "SIM:script shell echo hi > a.txt ;; write b.txt from patch ;; text finished"
        async with open_gateway(config("responses"), sim=sim) as (url, _):
            responses = await trio.to_thread.run_sync(responses_loop, f"{url}/v1", prompt)
        assert [r.status for r in responses] == ["completed"] * 3
        first, second, last = responses
        reasoning = next(o for o in first.output if o.type == "reasoning")
        assert reasoning.encrypted_content.startswith("gw2.") and reasoning.summary[0].text
        patch = next(o for o in second.output if o.type == "custom_tool_call")
        assert patch.name == "apply_patch" and patch.input.startswith("*** Begin Patch\n*** Add File: b.txt\n")
        assert last.output_text == "finished"
        assert last.usage.input_tokens > 0 and last.usage.output_tokens_details.reasoning_tokens > 0
        sent = sim.requests()
        assert_upstream_shape(sent, 3)
        assert {t["type"]: t["name"] for t in sent[-1]["tools"]} == {"function": "exec_command", "custom": "apply_patch"}
        back = next(i for i in sent[-1]["input"] if i.get("type") == "custom_tool_call")
        assert back["input"] == patch.input
        assert any(i.get("type") == "custom_tool_call_output" for i in sent[-1]["input"])
        assert sent[0]["instructions"] == "You are Codex."

    async def test_chat_client(self, sim) -> None:
        sim.reset(verify_replay=True)
        async with open_gateway(config("chat"), sim=sim) as (url, _):
            done = await trio.to_thread.run_sync(chat_loop, f"{url}/v1", SCRIPT)
        assert [c.choices[0].finish_reason for c in done] == ["tool_calls", "tool_calls", "stop"]
        assert done[-1].choices[0].message.content == "finished"
        assert done[0].choices[0].message.model_extra.get("reasoning_content")
        # A Chat client echoes reasoning_content, no envelope: the reasoning cache, which keeps the
        # upstream's token with the exact text, gives its reasoning items their encrypted_content back.
        assert_upstream_shape(sim.requests(), 3)

    async def test_llamacpp_profile_maps_custom_tools(self, sim) -> None:
        """llama.cpp's /v1/responses takes function tools only: apply_patch goes as a function with
        one ``input`` string, and its call still reaches Codex as a custom_tool_call."""
        sim.reset(verify_replay=True, responses_flavour="llamacpp", models=("local",))
        prompt = "SIM:script write b.txt from patch ;; text finished"
        async with open_gateway(config("responses", "llamacpp"), sim=sim) as (url, _):
            responses = await trio.to_thread.run_sync(responses_loop, f"{url}/v1", prompt)
        assert [r.status for r in responses] == ["completed"] * 2
        patch = next(o for o in responses[0].output if o.type == "custom_tool_call")
        assert patch.name == "apply_patch" and "*** Add File: b.txt" in patch.input
        sent = sim.requests()
        assert {t["type"] for t in sent[-1]["tools"]} == {"function"}
        back = next(i for i in sent[-1]["input"] if i.get("type") == "function_call")
        assert back["name"] == "apply_patch" and "*** Add File: b.txt" in back["arguments"]
        assert "include" not in sent[0]


class TestRealSize:
    async def test_a_one_megabyte_codex_session(self, sim) -> None:
        """Ten tool turns whose outputs grow the history past 1 MB: every turn's reasoning item goes
        back (the simulator verifies each against what it generated) and the last request is whole."""
        sim.reset(verify_replay=True)
        steps = " ;; ".join(f"shell cat part{n}.txt" for n in range(10))
        output = "x" * 100_000

        def run(base_url: str) -> list:
            client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0)
            items: list = [{"type": "message", "role": "user", "content": f"SIM:script {steps} ;; text read all"}]
            responses = []
            for _ in range(12):
                with client.responses.stream(model="deepseek-v4-pro", input=items, tools=CODEX_TOOLS, store=False,
                                             include=["reasoning.encrypted_content"],
                                             reasoning={"effort": "high", "summary": "auto"}) as stream:
                    response = stream.get_final_response()
                responses.append(response)
                calls = [o for o in response.output if o.type == "function_call"]
                if not calls:
                    return responses
                items += [o.model_dump(exclude_none=True, exclude={"id", "status"}) for o in response.output]
                items += [{"type": "function_call_output", "call_id": c.call_id, "output": output} for c in calls]
            return responses

        async with open_gateway(config("responses"), sim=sim) as (url, _):
            responses = await trio.to_thread.run_sync(run, f"{url}/v1")
        assert [r.status for r in responses] == ["completed"] * 11 and responses[-1].output_text == "read all"
        stats = sim.stats()
        assert stats["last_request_bytes"] > 1_000_000
        assert stats["verified_calls"] == 10 and stats["replay"][-1]["verified_turns"] == 10
        last = sim.requests(last=1)[0]
        assert len(reasoning_items(last)) == 10
        assert sum(len(i["output"]) for i in last["input"] if i.get("type") == "function_call_output") == 1_000_000


class TestSealsStayWithTheirUpstream:
    async def test_a_conversation_moved_to_another_upstream_sends_no_encrypted_content(self, sim) -> None:
        """A tool turn made on ``dsr`` continues on ``other`` (another upstream id, the same server):
        the envelope does not open there, so none of dsr's encrypted_content goes out (the server
        being the same one, it would have accepted it: the body is what is checked)."""
        sim.reset()
        yaml = config("responses").replace("upstreams:\n", (
            "upstreams:\n  other: {type: openai_responses, base_url: '${SIM_URL}', profile: deepseek_responses, "
            f"api_key_env: {SIM_KEY_ENV}, {MODELS}}}\n")) + """
  q:
    mount: /other
    client: responses
    stages: [thinking_filter, token_budget, tool_ids]
    upstream: other
"""

        def run(base: str) -> tuple[list, object]:
            items: list = [{"type": "message", "role": "user", "content": "SIM:script shell echo hi ;; text finished"}]
            kwargs = dict(model="deepseek-v4-pro", tools=CODEX_TOOLS, store=False,
                          include=["reasoning.encrypted_content"], reasoning={"effort": "high", "summary": "auto"})
            first = openai.OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0).responses.create(
                input=items, **kwargs)
            items += [o.model_dump(exclude_none=True, exclude={"id", "status"}) for o in first.output]
            call = next(o for o in first.output if o.type == "function_call")
            items.append({"type": "function_call_output", "call_id": call.call_id, "output": "hi"})
            moved = openai.OpenAI(base_url=f"{base}/other/v1", api_key="x", max_retries=0).responses.create(
                input=items, **kwargs)
            return items, moved

        async with open_gateway(yaml, sim=sim) as (url, _):
            items, moved = await trio.to_thread.run_sync(run, url)
        assert any(i.get("encrypted_content", "").startswith("gw2.") for i in items)  # the client held an envelope
        assert moved.output_text == "finished"
        body = sim.requests(last=1)[0]
        assert "dsenc1." not in msgspec.json.encode(body).decode() and "gw2." not in msgspec.json.encode(body).decode()
        assert reasoning_items(body) == [{"type": "reasoning", "summary": [],
                                          "content": [{"type": "reasoning_text", "text": ""}]}]


class TestOpenAIPassThrough:
    async def test_codex_on_an_openai_responses_upstream(self, sim) -> None:
        """Profile ``openai`` on the simulator's OpenAI flavour, which takes reasoning back only as
        its own encrypted_content: each turn's reasoning item returns with its id and token, the
        freeform tool stays a custom tool, and nothing is lost."""
        sim.reset(verify_replay=True, responses_flavour="openai")
        prompt = "SIM:script shell echo hi > a.txt ;; write b.txt from patch ;; text finished"
        async with open_gateway(config("responses", "openai"), sim=sim) as (url, _):
            with structlog.testing.capture_logs() as logs:
                responses = await trio.to_thread.run_sync(responses_loop, f"{url}/v1", prompt)
                await wait_finished(logs, 3)
        assert [r.status for r in responses] == ["completed"] * 3 and responses[-1].output_text == "finished"
        assert [line["losses"] for line in finished_lines(logs)] == [[]] * 3
        assert [line["replay_rung"] for line in finished_lines(logs)] == ["not_needed", "envelope", "envelope"]
        summary = next(o for o in responses[0].output if o.type == "reasoning").summary[0].text
        assert summary  # OpenAI's summary deltas reach Codex as its reasoning summary
        sent = sim.requests()
        items = reasoning_items(sent[-1])
        assert len(items) == 2 and all(set(i) == {"type", "summary", "id", "encrypted_content"} for i in items)
        assert all(i["encrypted_content"].startswith("oaienc1.") for i in items)
        assert {t["type"] for t in sent[-1]["tools"]} == {"function", "custom"}
        assert sim.stats()["sealed_items"] == 3


class TestErrors:
    async def test_retry_on_429_and_an_upstream_400_in_the_clients_dialect(self, sim) -> None:
        """A 429 (Retry-After 1 s) before the first content is retried; an upstream 400 reaches an
        Anthropic client as its invalid_request_error with the upstream's message."""
        sim.reset(faults=[{"on_request": 1, "kind": "429"}])
        yaml = config("anthropic").replace("default: deepseek-v4-pro", "default: deepseek-v4-pro, '*nope*': nope")

        def run(base: str) -> tuple[object, Exception]:
            client = anthropic.Anthropic(base_url=base, api_key="dummy", max_retries=0)
            ok = client.messages.create(model="claude-opus-5-5", max_tokens=1000,
                                        messages=[{"role": "user", "content": "SIM:text retried"}])
            try:
                client.messages.create(model="claude-nope", max_tokens=1000, messages=[{"role": "user", "content": "x"}])
            except anthropic.BadRequestError as exc:
                return ok, exc
            raise AssertionError("the upstream 400 must reach the client")

        async with open_gateway(yaml, sim=sim) as (url, _):
            ok, exc = await trio.to_thread.run_sync(run, url)
        assert ok.content[-1].text == "retried" and sim.chat_requests == 3
        assert exc.body["error"]["type"] == "invalid_request_error" and "Model Not Exist" in exc.body["error"]["message"]

    async def test_mid_stream_error_event_ends_codexs_stream(self, sim) -> None:
        """An ``error`` event after the first content: Codex gets response.failed (it retries itself).
        A delay per piece keeps the content and the error in separate reads (in one read, the error
        comes before the commit and the gateway retries instead)."""
        sim.reset(faults=[{"on_request": 1, "kind": "error_chunk"}], chunk_delay_s=0.02)

        def run(base: str) -> list:
            client = openai.OpenAI(base_url=base, api_key="x", max_retries=0)
            with client.responses.stream(model="deepseek-v4-pro", input="SIM:text " + "word " * 60) as stream:
                return [event.type for event in stream]

        async with open_gateway(config("responses"), sim=sim) as (url, _):
            kinds = await trio.to_thread.run_sync(run, f"{url}/v1")
        assert kinds[-1] == "response.failed" and "response.output_text.delta" in kinds
