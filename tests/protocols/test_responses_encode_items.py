"""Responses output items for tool calls: function, custom (apply_patch input streaming),
namespaced, local_shell and unknown tools, and a round trip of our items back through the decoder."""

from __future__ import annotations

import json
import random

import msgspec
import pytest

from pipeline.events import BlockStart, BlockStop
from pipeline.model import ThinkingPart, ToolCallPart, ToolChoice
from pipeline.protocols.responses import decode_request
from tests.protocols.responses_encode_helpers import (
    PATCH, TOOLS, done_items, make_request, run, start, stop, terminal, text_block, thinking_block,
    tool_block, types,
)


@pytest.mark.parametrize("seed", range(8))
def test_custom_apply_patch_call_streams_input(seed: int) -> None:
    args = json.dumps({"input": PATCH}, ensure_ascii=seed % 2 == 0)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(args)), 12))
    fragments = [args[a:b] for a, b in zip([0, *cuts], [*cuts, len(args)])]
    events = run(start() + tool_block(0, "apply_patch", "call_91", *fragments) + stop("tool_use"))
    added = events[2]["item"]
    assert (added["type"], added["name"], added["call_id"], added["input"]) == (
        "custom_tool_call", "apply_patch", "call_91", "")
    deltas = [e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta"]
    assert len(deltas) > 1 and "".join(deltas) == PATCH
    done = next(e for e in events if e["type"] == "response.custom_tool_call_input.done")
    assert done["input"] == PATCH
    item = done_items(events)[0]
    assert item["input"] == PATCH and item["status"] == "completed" and item["id"].startswith("ctc_")
    assert terminal(events)["output"] == [item]


@pytest.mark.parametrize(("args", "expected"), [
    (json.dumps(PATCH), PATCH),  # a bare JSON string
    ("*** Begin Patch\nraw\n*** End Patch", "*** Begin Patch\nraw\n*** End Patch"),  # not JSON at all
    (json.dumps({"patch": PATCH}), PATCH),  # one string value under another key
])
def test_custom_call_tolerates_other_argument_shapes(args: str, expected: str) -> None:
    events = run(start() + tool_block(0, "apply_patch", "c1", args[:5], args[5:]) + stop("tool_use"))
    deltas = [e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta"]
    assert deltas == [expected]
    assert done_items(events)[0]["input"] == expected


def test_namespaced_call_gets_client_name_and_namespace() -> None:
    events = run(start() + tool_block(0, "mcp__github__create_issue", "c1", "{}") + stop("tool_use"))
    for item in (events[2]["item"], done_items(events)[0]):
        assert item["name"] == "create_issue" and item["namespace"] == "mcp__github"


def test_tools_renamed_by_a_stage_still_map_back() -> None:
    """tool_ids renames ToolSpecs for the upstream and maps BlockStart.name back to the original;
    the encoder is built from the renamed request, so it relies on the decoder's client facts."""
    request, echo = make_request(tool_choice={"type": "function", "name": "create_issue"})
    renamed = tuple(msgspec.structs.replace(t, name=f"tool_{i:08x}") for i, t in enumerate(request.tools))
    request = msgspec.structs.replace(request, tools=renamed,
                                      tool_choice=ToolChoice(mode="tool", name="tool_00000002"))
    events = run(start() + tool_block(0, "apply_patch", "c1", json.dumps({"input": "p"}))
                 + tool_block(1, "mcp__github__create_issue", "c2", "{}")
                 + tool_block(2, "local_shell", "c3", '{"command":["ls"]}') + stop("tool_use"), (request, echo))
    patch, issue, shell = done_items(events)
    assert (patch["type"], patch["name"], patch["input"]) == ("custom_tool_call", "apply_patch", "p")
    assert (issue["name"], issue["namespace"]) == ("create_issue", "mcp__github")
    assert shell["type"] == "local_shell_call"
    assert terminal(events)["tool_choice"] == {"type": "function", "name": "create_issue"}


def test_unknown_tool_is_a_function_call() -> None:
    events = run(start() + tool_block(0, "mystery", "c1", "{}") + stop("tool_use"))
    item = done_items(events)[0]
    assert (item["type"], item["name"]) == ("function_call", "mystery") and "namespace" not in item


def test_missing_call_id_is_generated_once() -> None:
    events = run(start() + [BlockStart(index=0, block="tool_call", name="shell"), BlockStop(index=0)]
                 + stop("tool_use"))
    call_ids = {events[2]["item"]["call_id"], done_items(events)[0]["call_id"]}
    assert len(call_ids) == 1 and call_ids.pop().startswith("call_")


def test_parallel_calls_in_order() -> None:
    events = run(start() + text_block(0, "Two things.") + tool_block(1, "shell", "c1", '{"cmd":"a"}')
                 + tool_block(2, "shell", "c2", '{"cmd":"b"}') + stop("tool_use"))
    items = done_items(events)
    assert [(i["type"], i.get("call_id")) for i in items] == [("message", None), ("function_call", "c1"),
                                                            ("function_call", "c2")]
    dones = [e["output_index"] for e in events if e["type"] == "response.output_item.done"]
    assert dones == [0, 1, 2]
    assert terminal(events)["output"] == items
    assert len({i["id"] for i in items}) == 3


def test_local_shell_call_and_fallback() -> None:
    events = run(start() + tool_block(0, "local_shell", "ls1", '{"command":["bash","-lc","ls"],',
                                      '"workdir":"/repo","timeout_ms":5000}')
                 + tool_block(1, "local_shell", "ls2", '{"command":"ls"}') + stop("tool_use"))
    assert types(events)[2:4] == ["response.output_item.added", "response.output_item.done"]
    shell, fallback = done_items(events)
    assert shell["type"] == "local_shell_call" and shell["call_id"] == "ls1"
    assert shell["action"] == {"type": "exec", "command": ["bash", "-lc", "ls"], "timeout_ms": 5000,
                               "working_directory": "/repo", "env": {}, "user": None}
    assert (fallback["type"], fallback["name"], fallback["arguments"]) == (
        "function_call", "local_shell", '{"command":"ls"}')


# ---------------------------------------------------------------- round trip: our output as next input


def test_output_items_round_trip_through_the_decoder() -> None:
    """What Codex echoes back (done items, ids dropped) decodes to the same calls and envelope."""
    events = run(start() + thinking_block(0, "plan", signature="gw1.ROUND") + text_block(1, "Patching.")
                 + tool_block(2, "apply_patch", "c1", json.dumps({"input": PATCH}))
                 + tool_block(3, "mcp__github__create_issue", "c2", '{"title":"x"}')
                 + tool_block(4, "local_shell", "c3", '{"command":["ls"]}') + stop("tool_use"))
    echoed = [{k: v for k, v in item.items() if k != "id"} for item in done_items(events)]
    outputs = [{"type": "custom_tool_call_output", "call_id": "c1", "output": "ok"},
               {"type": "function_call_output", "call_id": "c2", "output": "ok"},
               {"type": "function_call_output", "call_id": "c3", "output": "ok"}]
    body = {"model": "deepseek-v4-pro", "input": [{"role": "user", "content": "go"}, *echoed, *outputs],
            "tools": TOOLS}
    request, _ = decode_request(json.dumps(body).encode())
    step = request.messages[1]
    assert step.parts[0] == ThinkingPart("plan", "gw1.ROUND")
    calls = [p for p in step.parts if isinstance(p, ToolCallPart)]
    assert [(c.id, c.name, c.origin) for c in calls] == [
        ("c1", "apply_patch", "custom"), ("c2", "mcp__github__create_issue", "function"),
        ("c3", "local_shell", "local_shell")]
    assert json.loads(calls[0].arguments) == {"input": PATCH}
    assert [m.role for m in request.messages[2:]] == ["tool", "tool", "tool"]
