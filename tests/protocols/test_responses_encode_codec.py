"""Responses non-streaming output: ``ResponsesCollector`` bodies validated by the SDK, the codec's
wiring (endpoints, encoder, collector, count), and /v1/models."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai.types.responses import Response

from pipeline.assemble import INCOMPLETE
from pipeline.errors import UpstreamError
from pipeline.events import ErrorInfo, Event, StreamError, Usage
from pipeline.protocols.base import ModelInfo
from pipeline.protocols.responses import ResponsesCodec, ResponsesCollector, ResponsesStreamEncoder
from tests.protocols.responses_encode_helpers import (
    REQUEST, sdk_checkable, start, stop, text_block, thinking_block, tool_block,
)


# ---------------------------------------------------------------- collector


def collect(events: list[Event], decoded=REQUEST) -> dict[str, Any]:
    collector = ResponsesCollector(*decoded)
    for event in events:
        collector.feed(event)
    body = collector.body()
    parsed = json.loads(body)
    Response.model_validate_json(json.dumps(sdk_checkable(parsed)))
    return parsed


def test_collector_full_response() -> None:
    body = collect(start() + thinking_block(0, "t", signature="gw1.Z") + text_block(1, "a", "b")
                   + tool_block(2, "shell", "c1", "{}") + stop("tool_use", Usage(input_tokens=1, output_tokens=2)))
    assert body["status"] == "completed" and body["model"] == "deepseek-v4-pro"
    assert [o["type"] for o in body["output"]] == ["reasoning", "message", "function_call"]
    assert body["output"][0]["encrypted_content"] == "gw1.Z"
    assert body["output"][1]["content"][0]["text"] == "ab"
    assert body["usage"]["total_tokens"] == 3


def test_collector_incomplete_and_failed() -> None:
    """A cut answer is an ``incomplete`` Response; a failed one (its first error, or no end at all)
    is the error, raised for the caller's ``render_error``, never a 200 body (pipeline.assemble)."""
    assert collect(start() + thinking_block(0, "t") + stop("max_tokens"))["status"] == "incomplete"
    with pytest.raises(UpstreamError) as failed:
        collect(start() + text_block(0, "x")
                + [StreamError(error=ErrorInfo(code="context_length_exceeded", message="too long"))])
    assert (failed.value.code, failed.value.message) == ("context_length_exceeded", "too long")
    with pytest.raises(UpstreamError) as ended:
        collect(start())
    assert (ended.value.code, ended.value.message) == ("bad_gateway", INCOMPLETE.message)


def test_codec_wires_everything() -> None:
    codec = ResponsesCodec()
    assert codec.name == "responses"
    assert [(e.method, e.path, e.kind) for e in codec.endpoints] == [
        ("POST", "/v1/responses", "generate"), ("POST", "/v1/responses/input_tokens", "count_tokens"),
        ("GET", "/v1/models", "models"), ("GET", "/v1/responses/{id}", "response_get"),
        ("DELETE", "/v1/responses/{id}", "response_delete"),
        ("GET", "/v1/responses/{id}/input_items", "response_input_items")]
    request, echo = REQUEST
    assert isinstance(codec.reply(echo).stream_encoder(request), ResponsesStreamEncoder)
    assert isinstance(codec.reply(echo).collector(request), ResponsesCollector)
    assert json.loads(codec.render_count(42)) == {"input_tokens": 42, "object": "response.input_tokens"}


# ---------------------------------------------------------------- models


def test_render_models() -> None:
    models = [ModelInfo(id="deepseek-v4-pro", upstream_model="deepseek-v4-pro", context_window=1_000_000,
                        max_output_tokens=384_000)]
    body = json.loads(ResponsesCodec().render_models(models))
    assert body == {"object": "list", "data": [{
        "id": "deepseek-v4-pro", "object": "model", "created": 0, "owned_by": "gateway",
        "context_window": 1_000_000, "max_output_tokens": 384_000}]}
    openai.types.Model.model_validate(body["data"][0])
