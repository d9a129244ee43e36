"""Fuzzing (hypothesis) seeded from the real-client captures: random bytes, random JSON, captures
mutated in structure and in bytes. Every client decoder may only raise ``RequestError`` (and what it
accepts must encode for the upstream); a smaller number go through hypercorn to the app: never a
500, every answer whole within a timeout. Examples are derandomized so CI runs are reproducible."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import msgspec
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import RequestError
from pipeline.protocols.anthropic import AnthropicCodec
from pipeline.protocols.chat import ChatCodec, encode_request
from pipeline.protocols.responses import ResponsesCodec
from tests.e2e.serving import SIM, open_gateway
from tests.resilience.conftest import load_captures
from tests.resilience.dialects import DIALECTS, PATHS, SHIPPED_STAGES, auth_headers
from pipeline.profiles import PROFILES

CODECS = {"anthropic": AnthropicCodec(), "responses": ResponsesCodec(), "chat": ChatCodec()}


def _chat_seeds(claude: list[bytes]) -> list[bytes]:
    """Chat Completions bodies: the Claude captures decoded and encoded as a Chat client would send."""
    out = []
    for body in claude:
        request, _ = CODECS["anthropic"].decode_request(body)
        out.append(encode_request(request, model="deepseek-v4-pro", profile=PROFILES["deepseek"]))
    return out


_CAPTURED = load_captures()
SEEDS: dict[str, list[bytes]] = {
    "anthropic": [b for name, b in _CAPTURED if name.startswith("claude")],
    "responses": [b for name, b in _CAPTURED if name.startswith("codex")],
}
SEEDS["chat"] = _chat_seeds(SEEDS["anthropic"][:4])
ALL_SEEDS = [b for seeds in SEEDS.values() for b in seeds]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
FIELD_NAMES = ("model", "messages", "input", "content", "role", "type", "tools", "tool_choice", "stream", "max_tokens",
               "thinking", "reasoning", "system", "text", "name", "arguments", "call_id", "tool_use_id", "id",
               "parameters", "input_schema", "output", "metadata", "include", "instructions", "stop")


@st.composite
def mutated_json(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with 1-4 nodes deleted, retyped, emptied or replaced by random JSON."""
    doc = json.loads(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        parent: Any = doc
        key: Any = None
        node: Any = doc
        while isinstance(node, dict | list) and node and draw(st.integers(0, 3)) > 0:  # walk down at random
            key = draw(st.sampled_from(sorted(node))) if isinstance(node, dict) else draw(st.integers(0, len(node) - 1))
            parent, node = node, node[key]
        if key is None:
            continue
        op = draw(st.sampled_from(("delete", "replace", "null", "empty", "string", "wrap", "add")))
        if op == "delete":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(json_values)
        elif op == "null":
            parent[key] = None
        elif op == "empty":
            parent[key] = type(node)() if isinstance(node, dict | list | str) else 0
        elif op == "string":
            parent[key] = json.dumps(node)
        elif op == "wrap":
            parent[key] = [node]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(FIELD_NAMES))] = draw(json_values)
    return json.dumps(doc).encode()


@st.composite
def mutated_bytes(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with bytes flipped, cut out, truncated or spliced in."""
    body = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(body)))
        op = draw(st.sampled_from(("flip", "cut", "truncate", "insert")))
        if op == "flip" and at < len(body):
            body[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del body[at:at + draw(st.integers(1, 64))]
        elif op == "truncate":
            del body[at:]
        elif op == "insert":
            body[at:at] = draw(st.sampled_from((b"{", b"}", b"[", b"]", b'"', b"\\", b",", b":", b"null", b"\xff\xfe",
                                                b'"\\ud800"', b"1e999", b"-0", b"\x00")))
    return bytes(body)


def bodies(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        mutated_json(seeds),
        mutated_json(ALL_SEEDS),
        mutated_bytes(seeds),
        st.binary(max_size=300),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=6).map(lambda v: json.dumps(v).encode()),
    )


def decode_or_refuse(dialect: str, body: bytes) -> None:
    """The decoder's contract: a request (which must encode for the upstream) or RequestError."""
    try:
        request, reply = CODECS[dialect].decode_request(body)
    except RequestError:
        return
    encode_request(request, model="deepseek-v4-pro", profile=PROFILES["deepseek"], lose=lambda *a: None)
    if request.stream:
        reply.stream_encoder(request)
    else:
        reply.collector(request)


FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


class TestDecoders:
    def test_seeds_decode(self) -> None:
        """The unmutated seeds are valid requests for their decoder."""
        assert all(SEEDS[d] for d in DIALECTS)
        for dialect in DIALECTS:
            for body in SEEDS[dialect]:
                CODECS[dialect].decode_request(body)

    @FUZZ
    @given(body=bodies(SEEDS["anthropic"]))
    def test_anthropic(self, body: bytes) -> None:
        decode_or_refuse("anthropic", body)

    @FUZZ
    @given(body=bodies(SEEDS["responses"]))
    def test_responses(self, body: bytes) -> None:
        decode_or_refuse("responses", body)

    @FUZZ
    @given(body=bodies(SEEDS["chat"]))
    def test_chat(self, body: bytes) -> None:
        decode_or_refuse("chat", body)


APP = """
upstreams:
  sim: {%s}
pipelines:
""" % SIM + "".join(f"  {d}: {{client: {d}, upstream: sim, mount: /{d}, stages: {SHIPPED_STAGES[d]}}}\n" for d in DIALECTS)


async def test_app_never_500_never_hangs(sim) -> None:
    """Mutated and random requests through hypercorn (and on to the simulator server): any status
    but 500, each answer whole."""
    seen: dict[int, int] = {}

    def fuzz(url: str) -> None:
        with httpx.Client(timeout=httpx.Timeout(10.0)) as http:

            @settings(max_examples=150, deadline=None, derandomize=True,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
            @given(dialect=st.sampled_from(DIALECTS), data=st.data(), zipped=st.booleans())
            def one(dialect: str, data: st.DataObject, zipped: bool) -> None:
                body = data.draw(bodies(SEEDS[dialect]))
                headers = {"content-type": "application/json", **auth_headers(dialect, "k")}
                if zipped:
                    body, headers["content-encoding"] = gzip.compress(body), "gzip"
                response = http.post(url + f"/{dialect}" + PATHS[dialect], content=body, headers=headers)
                seen[response.status_code] = seen.get(response.status_code, 0) + 1
                assert response.status_code != 500 and response.status_code < 600, response.text[:500]
                if response.status_code != 200:
                    assert "error" in msgspec.json.decode(response.content)

            one()

    async with open_gateway(APP, sim=sim) as (url, _):
        with trio.fail_after(120):
            await trio.to_thread.run_sync(fuzz, url)
    assert seen.get(200, 0) > 0 and seen.get(400, 0) > 0, seen  # both paths were exercised


# Tool schemas a client may send: JSON of any shape where a map is expected, under the names the
# simulator's planner reads (``properties`` and the properties it looks for).
schema_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8) | st.sampled_from(("command", "cmd", "file_path", "array", "object", "max_output_tokens")),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(("type", "properties", "command", "cmd", "file_path", "max_output_tokens", "items")), inner,
        max_size=4),
    max_leaves=12,
)
SIM_TOOL_NAMES = ("shell", "Bash", "exec_command", "shell_command", "local_shell", "Write", "Read", "apply_patch",
                  "my_bash", "other")
SIM_DIRECTIVES = ("SIM:shell ls", "SIM:parallel ls || pwd", "SIM:read a.txt", "SIM:write a.txt hi",
                  "SIM:call shell {}", "SIM:script read a.txt ;; write b.txt x ;; shell pwd")


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(tools=st.lists(st.tuples(st.sampled_from(SIM_TOOL_NAMES), schema_values), min_size=1, max_size=3,
                      unique_by=lambda t: t[0]),
       directive=st.sampled_from(SIM_DIRECTIVES), whole=st.booleans())
def test_simulator_takes_any_tool_schema(tools: list[tuple[str, Any]], directive: str, whole: bool) -> None:
    """The simulator (the /demo upstream, also standalone) answers every directive whatever JSON a
    tool's schema holds where a map belongs: never a 500 (it once raised AttributeError)."""
    from upstreams.simulator import Simulator

    def params(schema: Any) -> dict[str, Any]:  # ``parameters`` itself must be a map (else DeepSeek's 400)
        return schema if whole and isinstance(schema, dict) else {"type": "object", "properties": schema}

    body = {"model": "deepseek-v4-pro", "thinking": {"type": "disabled"},
            "messages": [{"role": "user", "content": directive}],
            "tools": [{"type": "function", "function": {"name": n, "parameters": params(s)}} for n, s in tools]}
    response = Simulator().respond("POST", "/v1/chat/completions", {}, json.dumps(body).encode())
    assert response.status == 200, b"".join(chunk for _, chunk in response.chunks)


ODD_PROPERTY = """
upstreams:
  sim: {type: simulator}
pipelines:
""" + "".join(f"  {d}: {{client: {d}, upstream: sim, mount: /{d}, stages: {SHIPPED_STAGES[d]}}}\n" for d in DIALECTS)


def shell_tool(dialect: str, command_schema: Any) -> dict[str, Any]:
    schema = {"type": "object", "properties": {"command": command_schema}}
    if dialect == "anthropic":
        return {"name": "shell", "input_schema": schema}
    if dialect == "responses":
        return {"type": "function", "name": "shell", "parameters": schema}
    return {"type": "function", "function": {"name": "shell", "parameters": schema}}


def shell_arguments(dialect: str, body: dict[str, Any]) -> Any:
    """The arguments of the answer's one tool call, decoded."""
    if dialect == "anthropic":
        return [block["input"] for block in body["content"] if block["type"] == "tool_use"]
    if dialect == "responses":
        return [json.loads(item["arguments"]) for item in body["output"] if item["type"] == "function_call"]
    return [json.loads(call["function"]["arguments"]) for call in body["choices"][0]["message"]["tool_calls"]]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_odd_property_schema_through_the_gateway(dialect: str) -> None:
    """The report's reproducer (``properties: {command: "x"}`` and ``SIM:shell ls``) and other
    non-map property schemas, through hypercorn to the in-process simulator as under /demo: the
    call is planned (a string command), never the 500 "internal error in the gateway: AttributeError"."""
    async with open_gateway(ODD_PROPERTY) as (url, _):
        async with httpx.AsyncClient(timeout=10) as http:
            replies = []
            for odd in ("x", 5, ["a"], True, 1.5):
                body = {"model": "m", "tools": [shell_tool(dialect, odd)], "stream": False,
                        **({"max_tokens": 1000} if dialect == "anthropic" else {})}
                body["input" if dialect == "responses" else "messages"] = [{"role": "user", "content": "SIM:shell ls"}]
                replies.append(await http.post(f"{url}/{dialect}{PATHS[dialect]}", json=body,
                                               headers=auth_headers(dialect, "k")))
    for reply in replies:
        assert reply.status_code == 200, reply.text
        assert shell_arguments(dialect, reply.json()) == [{"command": "ls"}]
