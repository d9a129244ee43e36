"""Anthropic Messages request decoding: real Claude Code captures, every block type, errors."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from pipeline.errors import RequestError
from pipeline.events import SearchHit
from pipeline.model import ImagePart, TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from pipeline.protocols.anthropic import AnthropicCodec, decode_request
from pipeline.protocols.anthropic.client_decode_echo import AnthropicEcho
from pipeline.protocols.anthropic.helpers import seal_hit
from pipeline.server_tools import search_error_text, search_text
from tests.captures import capture_paths, load_capture


def claude_captures() -> list[str]:
    return [p.name for p in capture_paths("claude-*.json") if load_capture(p.name).get("body")]


def decode(body: dict[str, Any]):
    return decode_request(json.dumps(body).encode())[0]


def req(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "claude-x", "max_tokens": 100, "messages": messages, **extra}


def user(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def assistant(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": list(blocks)}


def losses(request) -> list[str]:
    return [loss.what for loss in request.losses]


class TestCaptures:
    def test_captures_present(self):
        """The Claude Code captures are where the tests expect them."""
        assert len(claude_captures()) >= 10

    @pytest.mark.parametrize("name", claude_captures())
    def test_capture_decodes(self, name):
        """Every real Claude Code request decodes with its key facts intact and no loss."""
        body = load_capture(name)["body"]
        request = decode(body)
        assert request.model == body["model"]
        assert request.max_output_tokens == body["max_tokens"]
        assert request.stream is True
        assert request.user == body["metadata"]["user_id"]
        assert len(request.tools) == len(body["tools"])
        assert [t.name for t in request.tools] == [t["name"] for t in body["tools"]]
        assert request.tools[0].parameters == body["tools"][0]["input_schema"]
        assert request.thinking.enabled is True
        assert request.thinking.effort == body["output_config"]["effort"]
        assert request.thinking.display == "updates"
        assert request.losses == ()
        assert all(m.role != "system" for m in request.messages)

        top = [b["text"] for b in body["system"]]
        sys_msgs = [m for m in body["messages"] if m["role"] == "system"]
        assert len(sys_msgs) == 1
        content = sys_msgs[0]["content"]
        folded = [content] if isinstance(content, str) else [b["text"] for b in content]
        assert list(request.system) == top + folded

    @pytest.mark.parametrize("name", [n for n in claude_captures() if n.endswith("-2.json")])
    def test_tool_result_follows_call(self, name):
        """In continuations the tool message comes right after the assistant call it answers."""
        body = load_capture(name)["body"]
        request = decode(body)
        roles = [m.role for m in request.messages]
        assert roles == ["user", "assistant", "tool"]
        call = next(p for p in request.messages[1].parts if isinstance(p, ToolCallPart))
        wire_call = next(b for b in body["messages"][2]["content"] if b["type"] == "tool_use")
        assert call.id == wire_call["id"]
        assert json.loads(call.arguments) == wire_call["input"]
        result = request.messages[2].parts[0]
        assert isinstance(result, ToolResultPart)
        assert result.call_id == call.id
        wire_result = body["messages"][3]["content"][0]
        assert result.content == (TextPart(wire_result["content"]),)
        assert result.is_error is False

    def test_thinking_signature_exact(self):
        """The echoed thinking block keeps its text and signature byte for byte."""
        request = decode(load_capture("claude-thinking-tool-2.json")["body"])
        first = request.messages[1].parts[0]
        assert first == ThinkingPart("The user wants out.txt; run echo.", "SIG-scripted-0001-AbCdEf==")

    def test_deferred_tools_are_plain_functions(self):
        """defer_loading tools and ToolSearch pass as ordinary function tools."""
        request = decode(load_capture("claude-tool-1.json")["body"])
        placeholder = request.tool("DeferredToolPlaceholder")
        assert placeholder is not None and placeholder.kind == "function"
        assert placeholder.parameters == {"type": "object", "properties": {}}
        search = request.tool("ToolSearch")
        assert search is not None and "query" in search.parameters["properties"]

    def test_codec_delegates(self):
        """The codec's decode_request is the module function: the request, and its echo in the reply."""
        raw = json.dumps(load_capture("claude-text-1.json")["body"]).encode()
        request, reply = AnthropicCodec().decode_request(raw)
        assert (request, reply.echo) == decode_request(raw)


class TestSystem:
    def test_string_system(self):
        """A top-level string system becomes one system text."""
        assert decode(req([user({"type": "text", "text": "hi"})], system="Be brief.")).system == ("Be brief.",)

    def test_block_system_and_mid_system_messages(self):
        """Text blocks and role:system messages fold into system in order, with no loss."""
        body = req(
            [
                {"role": "user", "content": "a"},
                {"role": "system", "content": "env"},
                {"role": "assistant", "content": "b"},
                {"role": "system", "content": [{"type": "text", "text": "more", "cache_control": {"type": "x"}}]},
                {"role": "user", "content": "c"},
            ],
            system=[{"type": "text", "text": "one"}, {"type": "text", "text": "two", "cache_control": {}}],
        )
        request = decode(body)
        assert request.system == ("one", "two", "env", "more")
        assert [m.role for m in request.messages] == ["user", "assistant", "user"]
        assert request.losses == ()

    def test_non_text_system_block_is_loss(self):
        """A non-text block in system is dropped with a loss."""
        request = decode(req([user()], system=[{"type": "image", "source": {"type": "url", "url": "u"}}]))
        assert request.system == ()
        assert losses(request) == ["system_block"]


class TestBlocks:
    def test_string_content(self):
        """String content becomes one text part."""
        request = decode(req([{"role": "user", "content": "hello"}]))
        assert request.messages[0].parts == (TextPart("hello"),)

    def test_images(self):
        """base64 images become data URLs, url images keep the URL, file images are a loss."""
        request = decode(req([user(
            {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "R0lG"}},
            {"type": "image", "source": {"type": "url", "url": "https://example.invalid/c.png"}},
            {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
        )]))
        parts = request.messages[0].parts
        assert parts[0] == ImagePart("data:image/gif;base64,R0lG")
        assert parts[1] == ImagePart("https://example.invalid/c.png")
        assert isinstance(parts[2], TextPart) and "image omitted" in parts[2].text
        assert losses(request) == ["image"]

    def test_tool_use_arguments_compact_json(self):
        """tool_use input becomes compact JSON text, key order kept."""
        request = decode(req([assistant(
            {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"b": 1, "a": [1, "x"]}},
            {"type": "tool_use", "id": "toolu_2", "name": "Noop", "input": {}},
        )]))
        assert request.messages[0].parts == (
            ToolCallPart(id="toolu_1", name="Bash", arguments='{"b":1,"a":[1,"x"]}'),
            ToolCallPart(id="toolu_2", name="Noop", arguments="{}"),
        )

    def test_tool_results_split_before_text(self):
        """tool_result blocks become tool messages placed before the turn's other content."""
        request = decode(req([
            assistant({"type": "tool_use", "id": "t1", "name": "A", "input": {}},
                      {"type": "tool_use", "id": "t2", "name": "B", "input": {}}),
            user(
                {"type": "text", "text": "before"},
                {"type": "tool_result", "tool_use_id": "t1", "content": "ok"},
                {"type": "tool_result", "tool_use_id": "t2", "is_error": True, "content": [
                    {"type": "text", "text": "boom"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iV"}},
                ]},
                {"type": "text", "text": "after"},
            ),
        ]))
        roles = [m.role for m in request.messages]
        assert roles == ["assistant", "tool", "tool", "user"]
        assert request.messages[1].parts == (ToolResultPart("t1", (TextPart("ok"),), False),)
        assert request.messages[2].parts == (
            ToolResultPart("t2", (TextPart("boom"), ImagePart("data:image/png;base64,iV")), True),
        )
        assert request.messages[3].parts == (TextPart("before"), TextPart("after"))

    def test_tool_result_without_content(self):
        """A tool_result with no content is an empty result, and no empty user message follows."""
        request = decode(req([user({"type": "tool_result", "tool_use_id": "t1"})]))
        assert [m.role for m in request.messages] == ["tool"]
        assert request.messages[0].parts == (ToolResultPart("t1", (), False),)

    def test_thinking_and_redacted(self):
        """thinking keeps text+signature; redacted_thinking carries its data as the signature."""
        request = decode(req([assistant(
            {"type": "thinking", "thinking": "hmm", "signature": "gw1.abc"},
            {"type": "redacted_thinking", "data": "EmwK"},
            {"type": "thinking", "thinking": "no sig"},
            {"type": "text", "text": "done"},
        )]))
        assert request.messages[0].parts == (
            ThinkingPart("hmm", "gw1.abc"),
            ThinkingPart("", "EmwK", redacted=True),
            ThinkingPart("no sig", None),
            TextPart("done"),
        )

    def test_documents(self):
        """Text documents become text with their title; PDFs and URLs become a placeholder and a loss."""
        request = decode(req([user(
            {"type": "document", "title": "notes.txt",
             "source": {"type": "text", "media_type": "text/plain", "data": "plain body"}},
            {"type": "document", "source": {"type": "content", "content": [
                {"type": "text", "text": "c1"}, {"type": "text", "text": "c2"}]}},
            {"type": "document", "title": "spec.pdf",
             "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
            {"type": "document", "source": {"type": "url", "url": "https://example.invalid/x.pdf"}},
        )]))
        parts = request.messages[0].parts
        assert parts[0] == TextPart("Document: notes.txt\n\nplain body")
        assert parts[1:3] == (TextPart("c1"), TextPart("c2"))
        assert parts[3] == TextPart("[document omitted: spec.pdf]")
        assert parts[4] == TextPart("[document omitted: url]")
        assert losses(request) == ["document", "document"]

    def test_search_result(self):
        """search_result blocks become text with title and source."""
        request = decode(req([user({"type": "search_result", "source": "https://s.invalid", "title": "T",
                                    "content": [{"type": "text", "text": "snippet"}]})]))
        (part,) = request.messages[0].parts
        assert isinstance(part, TextPart)
        assert "T" in part.text and "https://s.invalid" in part.text and part.text.endswith("snippet")
        assert request.losses == ()

    def test_web_search_blocks_split_the_turn(self):
        """A web search the gateway ran (server_tool_use + web_search_tool_result) is a call, its
        result as a tool message (the text the model read, rebuilt from the sealed hits), and the
        rest of the turn as the next assistant message."""
        hit = SearchHit(url="https://docs.example.org/a", title="A", snippet="about a", page_age="2026-11-01")
        request = decode(req([assistant(
            {"type": "thinking", "thinking": "r1", "signature": "s1"},
            {"type": "server_tool_use", "id": "call_1", "name": "web_search", "input": {"query": "q"}},
            {"type": "web_search_tool_result", "tool_use_id": "call_1", "content": [
                {"type": "web_search_result", "url": hit.url, "title": "A", "encrypted_content": seal_hit(hit)},
                {"type": "web_search_result", "url": "https://x.invalid/", "title": "X", "encrypted_content": "EqAn"}]},
            {"type": "server_tool_use", "id": "call_2", "name": "web_search", "input": {"query": "q2"}},
            {"type": "web_search_tool_result", "tool_use_id": "call_2",
             "content": {"type": "web_search_tool_result_error", "error_code": "unavailable"}},
            {"type": "text", "text": "answer"},
        )]))
        assert [m.role for m in request.messages] == ["assistant", "tool", "assistant", "tool", "assistant"]
        assert request.messages[0].parts == (ThinkingPart("r1", "s1"),
                                             ToolCallPart(id="call_1", name="web_search", arguments='{"query":"q"}'))
        (result,) = request.messages[1].parts
        assert result.content == (TextPart(search_text("q", [hit, SearchHit(url="https://x.invalid/", title="X")])),)
        assert request.messages[2].parts == (ToolCallPart(id="call_2", name="web_search", arguments='{"query":"q2"}'),)
        (error,) = request.messages[3].parts
        assert error.is_error and error.content == (TextPart(search_error_text("unavailable")),)
        assert request.messages[4].parts == (TextPart("answer"),)
        assert losses(request) == ["web_search_result"]  # Anthropic's own encrypted content: URL and title only

    def test_server_and_unknown_blocks_are_losses(self):
        """Server tool blocks other than web search, and unknown block types, are dropped with a
        loss, not an error."""
        request = decode(req([assistant(
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_fetch", "input": {"url": "q"}},
            {"type": "web_fetch_tool_result", "tool_use_id": "srvtoolu_1",
             "content": {"type": "web_fetch_tool_error", "error_code": "unavailable"}},
            {"type": "hologram", "text": {"weird": True}},
            {"type": "text", "text": "answer", "citations": [{"type": "char_location"}]},
        )]))
        assert request.messages[0].parts == (TextPart("answer"),)
        assert losses(request) == ["server_tool_block", "server_tool_block", "unknown_block", "citations"]

    def test_cache_control_ignored(self):
        """cache_control on blocks changes nothing."""
        plain = decode(req([user({"type": "text", "text": "x"})]))
        cached = decode(req([user({"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}})]))
        assert plain == cached

    def test_tool_reference_in_result(self):
        """tool_reference blocks (ToolSearch results) become a short text and a loss."""
        request = decode(req([user({"type": "tool_result", "tool_use_id": "t", "content": [
            {"type": "tool_reference", "tool_name": "WebFetch"}]})]))
        assert request.messages[0].parts[0].content == (TextPart("[tool reference: WebFetch]"),)
        assert losses(request) == ["tool_reference"]


class TestMerging:
    def test_consecutive_same_role_merge(self):
        """Consecutive user (or assistant) messages merge; tool messages never merge."""
        request = decode(req([
            {"role": "user", "content": "a"},
            {"role": "user", "content": [{"type": "text", "text": "b"}]},
            {"role": "assistant", "content": "c"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "X", "input": {}},
                                              {"type": "tool_use", "id": "t2", "name": "X", "input": {}}]},
            user({"type": "tool_result", "tool_use_id": "t1", "content": "1"}),
            user({"type": "tool_result", "tool_use_id": "t2", "content": "2"}),
            {"role": "user", "content": "d"},
        ]))
        assert [m.role for m in request.messages] == ["user", "assistant", "tool", "tool", "user"]
        assert request.messages[0].parts == (TextPart("a"), TextPart("b"))
        assert len(request.messages[1].parts) == 3

    def test_misplaced_blocks_are_losses(self):
        """tool_use in a user turn and tool_result in an assistant turn are dropped with a loss."""
        request = decode(req([
            user({"type": "tool_use", "id": "t", "name": "X", "input": {}}, {"type": "text", "text": "u"}),
            assistant({"type": "tool_result", "tool_use_id": "t", "content": "r"}),
        ]))
        assert request.messages[0].parts == (TextPart("u"),)
        assert request.messages[1].parts == ()
        assert losses(request) == ["misplaced_block", "misplaced_block"]


class TestTools:
    def test_client_and_server_tools(self):
        """Client tools map to functions; Anthropic server tools are dropped with a loss."""
        request = decode(req([user()], tools=[
            {"name": "get_weather", "description": "Weather", "strict": True, "cache_control": {"type": "e"},
             "input_examples": [{"city": "Oslo"}],
             "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
            {"type": "custom", "name": "c", "input_schema": {"type": "object"}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
            {"type": "bash_20250124", "name": "bash"},
            {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
        ]))
        assert [t.name for t in request.tools] == ["get_weather", "c"]
        weather = request.tools[0]
        assert weather.description == "Weather" and weather.strict is True
        assert weather.parameters["properties"]["city"] == {"type": "string"}
        assert losses(request) == ["server_tool"] * 3

    @pytest.mark.parametrize(
        ("choice", "mode", "name", "parallel"),
        [
            ({"type": "auto"}, "auto", None, None),
            ({"type": "auto", "disable_parallel_tool_use": True}, "auto", None, False),
            ({"type": "any"}, "required", None, None),
            ({"type": "any", "disable_parallel_tool_use": True}, "required", None, False),
            ({"type": "tool", "name": "get_weather"}, "tool", "get_weather", None),
            ({"type": "none"}, "none", None, None),
        ],
    )
    def test_tool_choice(self, choice, mode, name, parallel):
        """tool_choice variants map to neutral modes; disable_parallel_tool_use to parallel False."""
        request = decode(req([user()], tool_choice=choice))
        assert request.tool_choice is not None
        assert (request.tool_choice.mode, request.tool_choice.name) == (mode, name)
        assert request.parallel_tool_calls is parallel

    def test_no_tool_choice(self):
        """Without tool_choice nothing is forced."""
        request = decode(req([user()]))
        assert request.tool_choice is None and request.parallel_tool_calls is None


class TestSettings:
    def test_sampling_and_limits(self):
        """Sampling, stops, user, stream and max_tokens map directly; ignored fields are ignored."""
        request = decode(req(
            [user()], temperature=0.5, top_p=0.9, top_k=40, stop_sequences=["END"], stream=False,
            metadata={"user_id": "u-1"}, context_management={"edits": []}, cache_control={"type": "ephemeral"},
            container="c", service_tier="auto", inference_geo="us", brand_new_field={"x": 1},
        ))
        assert (request.temperature, request.top_p, request.top_k) == (0.5, 0.9, 40)
        assert request.stop == ("END",)
        assert request.user == "u-1"
        assert request.stream is False
        assert request.max_output_tokens == 100
        assert request.losses == ()

    def test_missing_max_tokens_is_lenient(self):
        """count_tokens bodies have no max_tokens: it decodes to None."""
        request = decode({"model": "m", "messages": []})
        assert request.max_output_tokens is None
        assert request.stream is False

    @pytest.mark.parametrize(
        ("thinking", "config", "enabled", "effort", "budget"),
        [
            ({"type": "enabled", "budget_tokens": 2048}, None, True, "low", 2048),
            ({"type": "enabled", "budget_tokens": 4096}, None, True, "high", 4096),
            ({"type": "enabled", "budget_tokens": 32767}, None, True, "high", 32767),
            ({"type": "enabled", "budget_tokens": 32768}, None, True, "max", 32768),
            ({"type": "enabled", "budget_tokens": 2048}, {"effort": "xhigh"}, True, "xhigh", 2048),
            ({"type": "adaptive"}, {"effort": "low"}, True, "low", None),
            ({"type": "adaptive"}, None, True, None, None),
            ({"type": "disabled"}, None, False, None, None),
            # No thinking field: the Messages API does not think unless asked (not the upstream default).
            (None, {"effort": "max"}, False, "max", None),
            (None, None, False, None, None),
        ],
    )
    def test_thinking(self, thinking, config, enabled, effort, budget):
        """thinking type and output_config.effort (or the budget bucket) map to ThinkingConfig."""
        extra: dict[str, Any] = {}
        if thinking is not None:
            extra["thinking"] = thinking
        if config is not None:
            extra["output_config"] = config
        request = decode(req([user()], **extra))
        assert request.thinking.enabled is enabled
        assert request.thinking.effort == effort
        assert request.thinking.budget_tokens == budget

    def test_display_goes_to_the_echo(self):
        """thinking.display is kept and copied to the echo for the encoder."""
        request, echo = decode_request(json.dumps(req([user()], thinking={"type": "adaptive",
                                                                          "display": "omitted"})).encode())
        assert request.thinking.display == "omitted"
        assert echo == AnthropicEcho(thinking_display="omitted")
        assert decode_request(json.dumps(req([user()])).encode())[1] == AnthropicEcho()

    def test_unknown_thinking_and_effort_are_losses(self):
        """Unknown thinking types or effort words do not fail the request."""
        request = decode(req([user()], thinking={"type": "dreamy"}, output_config={"effort": "ultra"}))
        assert request.thinking.enabled is None and request.thinking.effort is None
        assert losses(request) == ["thinking", "effort"]

    def test_json_schema_format(self):
        """output_config.format json_schema becomes a ResponseFormat."""
        schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
        request = decode(req([user()], output_config={"format": {"type": "json_schema", "schema": schema}}))
        assert request.response_format is not None
        assert request.response_format.type == "json_schema"
        assert request.response_format.schema == schema

    def test_mcp_servers_loss(self):
        """MCP connector servers cannot be forwarded: a loss."""
        request = decode(req([user()], mcp_servers=[{"type": "url", "url": "https://m", "name": "m"}]))
        assert losses(request) == ["mcp_servers"]


class TestErrors:
    @pytest.mark.parametrize(
        ("body", "fragment"),
        [
            (b"", "not valid JSON"),
            (b"{not json", "not valid JSON"),
            (b"[1, 2]", "must be a JSON object"),
            (b'"text"', "must be a JSON object"),
            (b'{"messages": []}', "model: field required"),
            (b'{"model": 5, "messages": []}', "model: expected `str`"),
            (b'{"model": "m"}', "messages: field required"),
            (b'{"model": "m", "messages": {}}', "messages: expected `array`"),
            (b'{"model": "m", "messages": [{"content": "x"}]}', "messages.0.role: field required"),
            (b'{"model": "m", "messages": [{"role": "user"}]}', "messages.0.content: field required"),
            (b'{"model": "m", "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": 7}]}',
             "messages.1.content: expected `str | array`"),
            (b'{"model": "m", "messages": [{"role": "tool", "content": "x"}]}', "messages.0.role: expected one of"),
            (b'{"model": "m", "messages": [{"role": "user", "content": [{"text": "x"}]}]}',
             "messages.0.content.0.type: field required"),
            (b'{"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]}',
             "messages.0.content.0.text: field required"),
            (b'{"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]}',
             "messages.0.content.0.text: expected `str`"),
            (b'{"model": "m", "messages": [{"role": "assistant", "content": [{"type": "tool_use", "name": "x"}]}]}',
             "messages.0.content.0.id: field required"),
            (b'{"model": "m", "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",'
             b' "content": [{"type": "text", "text": 3}]}]}]}', "messages.0.content.0.content.0.text: expected `str`"),
            (b'{"model": "m", "messages": [], "max_tokens": "many"}', "max_tokens: expected `int | null`"),
            (b'{"model": "m", "messages": [], "tools": [{"name": "x"}]}', "tools.0.input_schema: field required"),
            (b'{"model": "m", "messages": [], "tool_choice": {"type": "tool"}}', "tool_choice.name: field required"),
            (b'{"model": "m", "messages": [], "tool_choice": {"type": "maybe"}}', "tool_choice.type: expected one of"),
            (b'{"model": "m", "messages": [], "system": [{"type": "text"}]}', "system.0.text: field required"),
        ],
    )
    def test_bad_input(self, body, fragment):
        """Malformed bodies raise RequestError (400) whose message names the field path."""
        with pytest.raises(RequestError) as info:
            decode_request(body)
        assert fragment in info.value.message
        assert info.value.status == 400 and info.value.code == "invalid_request"

    def test_request_roundtrips_through_msgspec(self):
        """The decoded request is plain data (goldens can store it)."""
        request = decode(load_capture("claude-thinking-tool-2.json")["body"])
        data = msgspec.json.encode(request)
        assert msgspec.json.decode(data, type=type(request)) == request
