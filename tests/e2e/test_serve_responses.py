"""Responses end to end: the official openai SDK → hypercorn → gateway → the production transport →
the simulator server (its own process).

Drives a Codex-shaped loop: function and freeform (apply_patch) tools, reasoning items echoed back
with their ``encrypted_content``, outputs keyed by ``call_id``. The simulator rejects any tool
turn whose reasoning is not replayed exactly (``verify_replay``).
"""

from __future__ import annotations

import httpx
import openai
import trio

from tests.e2e.serving import SIM, open_gateway

CONFIG = """
upstreams:
  sim: {%s}
pipelines:
  codex:
    client: responses
    stages: [thinking_filter, token_budget, tool_ids]
    upstream: sim
""" % SIM

TOOLS = [
    {"type": "function", "name": "exec_command", "description": "Run a command", "strict": False,
     "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}},
    {"type": "custom", "name": "apply_patch", "description": "Edit files with a patch",
     "format": {"type": "grammar", "syntax": "lark",
                "definition": 'start: begin_patch hunk+ end_patch\nbegin_patch: "*** Begin Patch" LF\n'}},
]


def loop(base_url: str, prompt: str) -> tuple[list, list]:
    client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0)
    items: list = [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]},
                   {"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]}]
    responses = []
    for _ in range(4):
        with client.responses.stream(model="deepseek-v4-pro", input=items, tools=TOOLS, store=False,
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
    return responses, items


class TestResponsesEndToEnd:
    async def test_codex_shaped_loop(self, sim) -> None:
        """shell → apply_patch → text, with the reasoning envelope echoed every turn."""
        sim.reset(verify_replay=True)
        async with open_gateway(CONFIG, sim=sim) as (url, _):
            responses, _ = await trio.to_thread.run_sync(
                loop, f"{url}/v1", "SIM:script shell echo hi > a.txt ;; write b.txt from patch ;; text finished")
        sent = sim.requests()
        assert [r.status for r in responses] == ["completed"] * 3
        first, second, last = responses
        reasoning = next(o for o in first.output if o.type == "reasoning")
        assert reasoning.encrypted_content.startswith("gw2.") and reasoning.summary[0].text
        call = next(o for o in first.output if o.type == "function_call")
        assert call.name == "exec_command" and "echo hi > a.txt" in call.arguments
        patch = next(o for o in second.output if o.type == "custom_tool_call")
        assert patch.name == "apply_patch"
        assert patch.input.startswith("*** Begin Patch\n*** Add File: b.txt\n") and patch.input.rstrip().endswith("*** End Patch")
        assert last.output_text == "finished"
        assert last.usage.input_tokens > 0 and last.usage.output_tokens_details.reasoning_tokens > 0
        # The custom tool went upstream as a function; its call came back with {"input": ...}.
        upstream_tools = {t["function"]["name"] for t in sent[-1]["tools"]}
        assert upstream_tools == {"exec_command", "apply_patch"}
        assistants = [m for m in sent[-1]["messages"] if m["role"] == "assistant"]
        assert all(m["reasoning_content"] for m in assistants)

    async def test_non_streaming_and_errors(self, sim) -> None:
        """stream=false returns a Response; previous_response_id is a clear 400."""

        def calls(base: str):
            client = openai.OpenAI(base_url=base, api_key="x", max_retries=0)
            plain = client.responses.create(model="deepseek-v4-pro", input="SIM:text plain answer")
            try:
                client.responses.create(model="deepseek-v4-pro", input="hi", previous_response_id="resp_1")
            except openai.BadRequestError as exc:
                return plain, exc
            raise AssertionError("previous_response_id must be rejected")

        sim.reset(verify_replay=True)
        async with open_gateway(CONFIG, sim=sim) as (url, _):
            plain, exc = await trio.to_thread.run_sync(calls, f"{url}/v1")
            async with httpx.AsyncClient() as http:
                models = await http.get(f"{url}/v1/models")
        assert plain.output_text == "plain answer" and plain.status == "completed"
        assert "previous_response_id" in str(exc)
        assert models.json()["object"] == "list"
