"""Responses errors: in-stream ``error`` + ``response.failed`` (code mapping, incomplete items,
early and missing ends) and the HTTP error bodies rendered by the codec."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import GatewayError, RequestError, UpstreamError
from pipeline.events import BlockStart, ErrorInfo, StreamError, TextDelta
from pipeline.protocols.responses import ResponsesCodec, ResponsesStreamEncoder
from pipeline.protocols.responses.client_encode_core import END_OF_STREAM
from tests.protocols.responses_encode_helpers import (
    REQUEST, done_items, parse, run, start, terminal, text_block, tool_block, types,
)


# ---------------------------------------------------------------- errors in the stream


@pytest.mark.parametrize(("code", "expected"), [
    ("context_length_exceeded", "context_length_exceeded"),
    ("rate_limit", "rate_limit_exceeded"),
    ("overloaded", "server_error"),
    ("timeout", "server_error"),
    ("bad_gateway", "server_error"),
    ("billing", "insufficient_quota"),
    ("invalid_request", "invalid_prompt"),
    ("unprocessable", "invalid_prompt"),
    ("authentication", "invalid_prompt"),
    ("api_error", "server_error"),
])
def test_stream_error_mapping(code: str, expected: str) -> None:
    events = run(start() + [StreamError(error=ErrorInfo(code=code, message="upstream said no"))])
    assert types(events)[-2:] == ["error", "response.failed"]
    assert events[-2]["code"] == expected and events[-2]["param"] is None
    final = terminal(events)
    assert final["status"] == "failed" and final["error"]["code"] == expected


# Codex 0.169's fatal ``response.failed`` codes (codex-api ``process_responses_event`` and
# codex-protocol ``CodexErr::is_retryable``); every other code is a stream error it retries.
CODEX_FATAL = frozenset({"context_length_exceeded", "insufficient_quota", "usage_not_included",
                         "invalid_prompt", "cyber_policy", "server_is_overloaded", "slow_down"})


@pytest.mark.parametrize("code", ["overloaded", "timeout", "bad_gateway", "api_error", "rate_limit"])
def test_transient_failure_after_content_is_a_code_codex_retries(code: str) -> None:
    """An upstream drop, stall or error chunk after the first content (neutral overloaded,
    timeout, bad_gateway, api_error, rate_limit) must not end a Codex session."""
    events = run(start() + text_block(0, "half") + [StreamError(error=ErrorInfo(code=code, message="lost"))])
    assert types(events)[-1] == "response.failed" and "response.completed" not in types(events)
    assert terminal(events)["error"]["code"] not in CODEX_FATAL


@pytest.mark.parametrize("code", ["context_length_exceeded", "billing", "invalid_request", "authentication"])
def test_permanent_failure_is_a_code_codex_does_not_retry(code: str) -> None:
    """What no retry fixes stays fatal, so Codex does not loop on it."""
    events = run(start() + [StreamError(error=ErrorInfo(code=code, message="no"))])
    assert terminal(events)["error"]["code"] in CODEX_FATAL


def test_rate_limit_message_carries_retry_hint() -> None:
    events = run(start() + [StreamError(error=ErrorInfo(code="rate_limit", message="Slow down", retry_after_s=2.5))])
    assert terminal(events)["error"]["message"] == "Slow down. Please try again in 2.5s."


def test_error_mid_text_leaves_items_incomplete() -> None:
    events = run(start() + text_block(0, "done") + [BlockStart(index=1, block="text"), TextDelta(index=1, text="par")]
                 + [StreamError(error=ErrorInfo(code="overloaded", message="busy"))])
    assert len(done_items(events)) == 1
    output = terminal(events)["output"]
    assert [o["status"] for o in output] == ["completed", "incomplete"]
    assert output[1]["content"][0]["text"] == "par"


def test_error_after_a_held_call_does_not_announce_it() -> None:
    encoder = ResponsesStreamEncoder(*REQUEST)
    frames = [f for e in start() + tool_block(0, "shell", "c1", "{}") for f in encoder.feed(e)]
    frames += encoder.error(ErrorInfo(code="api_error", message="boom"))
    events = parse(frames)
    assert done_items(events) == []
    assert terminal(events)["output"][0]["status"] == "incomplete"


def test_error_before_any_event_still_opens_the_response() -> None:
    encoder = ResponsesStreamEncoder(*REQUEST)
    events = parse(encoder.error(ErrorInfo(code="timeout", message="upstream timed out")))
    assert types(events) == ["response.created", "response.in_progress", "error", "response.failed"]


def test_close_without_stop_fails() -> None:
    events = run(start() + text_block(0, "x"))
    final = terminal(events)
    assert final["error"] == {"code": "server_error", "message": END_OF_STREAM}


# ---------------------------------------------------------------- HTTP errors


@pytest.mark.parametrize(("err", "status", "kind", "code"), [
    (RequestError("bad field"), 400, "invalid_request_error", None),
    (UpstreamError("too long", code="context_length_exceeded"), 400, "invalid_request_error",
     "context_length_exceeded"),
    (UpstreamError("key", code="authentication"), 401, "invalid_request_error", "invalid_api_key"),
    (UpstreamError("pay", code="billing"), 402, "insufficient_quota", "insufficient_quota"),
    (UpstreamError("busy", code="overloaded"), 503, "server_error", "server_is_overloaded"),
    (UpstreamError("slow", code="timeout"), 504, "server_error", None),
    (GatewayError("bug"), 500, "server_error", None),
])
def test_render_error(err: GatewayError, status: int, kind: str, code: str | None) -> None:
    rendered = ResponsesCodec().render_error(err)
    assert rendered.status == status
    assert (b"content-type", b"application/json") in rendered.headers
    assert json.loads(rendered.body) == {"error": {"message": err.message, "type": kind, "param": None,
                                                   "code": code}}


def test_render_rate_limit_with_retry_after() -> None:
    rendered = ResponsesCodec().render_error(UpstreamError("Rate limited", code="rate_limit", retry_after_s=1.2))
    assert rendered.status == 429
    assert (b"retry-after", b"2") in rendered.headers and (b"retry-after-ms", b"1200") in rendered.headers
    error = json.loads(rendered.body)["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert error["message"] == "Rate limited. Please try again in 1.2s."
