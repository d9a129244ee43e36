"""Codex's client-executed ``tool_search`` (issue 17): the tool is offered as a function, the
model's call of it reaches the client as a ``tool_search_call`` item (what Codex runs), and the
``tool_search_call`` / ``tool_search_output`` pair in the history is a call and its result, the
tools it loaded offered on the request. A server-run search stays a loss.
"""

from __future__ import annotations

import json

from openai.types.responses import Response

from pipeline.model import TextPart, ToolCallPart, ToolResultPart
from pipeline.protocols.responses import ResponsesCollector
from pipeline.protocols.responses.client_decode_echo import ClientTool
from tests.captures import capture_body
from tests.protocols.responses_decode_helpers import decode, decode_echo, error_of, loss_keys, msg, req
from tests.protocols.responses_encode_helpers import done_items, make_request, run, start, stop, terminal, tool_block

SEARCH = next(t for t in capture_body("codex-tool-1.json")["tools"] if t["type"] == "tool_search")
WAIT = {"type": "function", "name": "wait_agent", "description": "Wait for agents", "strict": False,
        "defer_loading": True, "parameters": {"type": "object", "properties": {"targets": {"type": "array"}}}}
LOADED = {"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents",
          "tools": [WAIT, {**WAIT, "name": "close_agent", "description": "Close an agent"}]}


def search_call(call_id: str = "ts1", arguments: object = None, execution: str = "client") -> dict:
    return {"type": "tool_search_call", "call_id": call_id, "status": "completed", "execution": execution,
            "arguments": {"query": "agents", "limit": 2} if arguments is None else arguments}


def search_output(call_id: str = "ts1", tools: list | None = None, execution: str = "client") -> dict:
    return {"type": "tool_search_output", "call_id": call_id, "status": "completed", "execution": execution,
            "tools": [LOADED] if tools is None else tools}


class TestDecode:
    def test_the_client_run_search_is_offered_as_a_function(self) -> None:
        body = req("find a tool", tools=[SEARCH])
        request = decode(body)
        spec = request.tool("tool_search")
        assert spec is not None and spec.kind == "function"
        assert spec.description == SEARCH["description"] and spec.parameters == SEARCH["parameters"]
        assert decode_echo(body).tool_targets == {"tool_search": ClientTool("tool_search", "tool_search")}
        assert "server_tool" not in loss_keys(request)

    def test_a_hosted_search_is_still_a_loss(self) -> None:
        request = decode(req("q", tools=[{"type": "tool_search"}]))
        assert request.tools == () and loss_keys(request) == ["server_tool"]

    def test_history_pair_is_a_call_and_its_result_and_loads_the_tools(self) -> None:
        items = [msg("user", "q"), search_call(), search_output(), msg("user", "go on")]
        body = req(items, tools=[SEARCH])
        request = decode(body)
        call = request.messages[1].parts[0]
        assert call == ToolCallPart(id="ts1", name="tool_search", arguments='{"query":"agents","limit":2}')
        result = request.messages[2].parts[0]
        assert isinstance(result, ToolResultPart) and result.call_id == "ts1"
        assert result.content == (TextPart("tool_search (completed): these tools are now callable: "
                                           "multi_agent_v1__wait_agent, multi_agent_v1__close_agent"),)
        # The loaded tools are offered after the request's own, as namespaced functions.
        assert [t.name for t in request.tools] == ["tool_search", "multi_agent_v1__wait_agent",
                                                   "multi_agent_v1__close_agent"]
        wait = request.tool("multi_agent_v1__wait_agent")
        assert wait is not None and (wait.namespace, wait.client_name) == ("multi_agent_v1", "wait_agent")
        assert wait.parameters == WAIT["parameters"]
        targets = decode_echo(body).tool_targets
        assert targets["multi_agent_v1__close_agent"] == ClientTool("function", "close_agent", "multi_agent_v1")

    def test_a_tool_loaded_twice_or_already_offered_is_offered_once(self) -> None:
        plain = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}
        items = [msg("user", "q"), search_call("a"), search_output("a", [plain, LOADED]),
                 search_call("b"), search_output("b", [LOADED])]
        request = decode(req(items, tools=[SEARCH, plain]))
        assert [t.name for t in request.tools] == ["tool_search", "lookup", "multi_agent_v1__wait_agent",
                                                   "multi_agent_v1__close_agent"]

    def test_an_empty_or_failed_search_says_so(self) -> None:
        items = [msg("user", "q"), search_call(arguments={"query": 7}),
                 {**search_output(tools=[]), "status": "incomplete"}]
        request = decode(req(items, tools=[SEARCH]))
        assert request.messages[1].parts[0].arguments == '{"query":7}'
        assert request.messages[2].parts[0].content == (TextPart("tool_search (incomplete): no tools found"),)

    def test_server_run_items_are_losses_and_a_client_one_needs_its_call_id(self) -> None:
        items = [msg("user", "q"), search_call(execution="server"), search_output(execution="server")]
        request = decode(req(items))
        assert loss_keys(request) == ["input_item", "input_item"] and request.tools == ()
        no_id = {k: v for k, v in search_call().items() if k != "call_id"}
        assert error_of(req([msg("user", "q"), no_id])) == "input.1.call_id: field required"


class TestEncode:
    def test_the_models_call_is_a_tool_search_call_item(self) -> None:
        decoded = make_request(tools=[SEARCH])
        events = run(start() + tool_block(0, "tool_search", "call_s", '{"query": "cal', 'endar", "limit": 3}')
                     + stop("tool_use"), decoded)
        (item,) = done_items(events)
        assert item["type"] == "tool_search_call" and item["execution"] == "client"
        assert item["call_id"] == "call_s" and item["status"] == "completed"
        assert item["arguments"] == {"query": "calendar", "limit": 3}  # a JSON value, as Codex reads it
        added = [e["item"] for e in events if e["type"] == "response.output_item.added"]
        assert [a["type"] for a in added] == ["tool_search_call"] and added[0]["status"] == "in_progress"
        assert terminal(events)["output"] == [item]
        assert not [e for e in events if "arguments" in e["type"]]  # no function-call argument events

    def test_arguments_that_are_not_json_go_as_sent(self) -> None:
        events = run(start() + tool_block(0, "tool_search", "c", "calendar") + stop("tool_use"),
                     make_request(tools=[SEARCH]))
        (item,) = done_items(events)
        assert (item["type"], item["arguments"]) == ("tool_search_call", "calendar")

    def test_non_streaming_body_holds_the_item(self) -> None:
        collector = ResponsesCollector(*make_request(tools=[SEARCH]))
        for event in start() + tool_block(0, "tool_search", "c", '{"query":"x"}') + stop("tool_use"):
            collector.feed(event)
        response = Response.model_validate(json.loads(collector.body()))
        (item,) = response.output
        assert item.type == "tool_search_call" and item.arguments == {"query": "x"} and item.call_id == "c"

    def test_a_loaded_namespaced_tool_is_called_by_its_namespace(self) -> None:
        items = [msg("user", "q"), search_call(), search_output()]
        events = run(start() + tool_block(0, "multi_agent_v1__wait_agent", "c2", '{"targets":[]}') + stop("tool_use"),
                     make_request(input=items, tools=[SEARCH]))
        (item,) = done_items(events)
        assert (item["type"], item["name"], item["namespace"]) == ("function_call", "wait_agent", "multi_agent_v1")
