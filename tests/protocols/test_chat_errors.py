"""Upstream HTTP error bodies (OpenAI, DeepSeek, Ollama, vLLM, llama.cpp, non-JSON) → ``ErrorInfo``."""

from __future__ import annotations

import msgspec
import pytest

from pipeline.events import ErrorInfo
from pipeline.protocols.chat import error_from_payload, parse_error_body

DS_REPLAY_400 = (b'{"error": {"message": "The `reasoning_content` in the thinking mode must be passed back to '
                 b'the API.", "type": "invalid_request_error", "param": null, "code": "invalid_request_error"}}')


@pytest.mark.parametrize(
    ("status", "body", "code", "out_status", "message"),
    [
        (400, DS_REPLAY_400, "invalid_request", 400,
         "The `reasoning_content` in the thinking mode must be passed back to the API."),
        (400, b'{"error":{"message":"This model\'s maximum context length is 131072 tokens","type":'
              b'"invalid_request_error","code":null}}', "context_length_exceeded", 400,
         "This model's maximum context length is 131072 tokens"),
        (400, b'{"error":{"code":400,"message":"request (9000 tokens) exceeds the available context size",'
              b'"type":"exceed_context_size_error"}}', "context_length_exceeded", 400,
         "request (9000 tokens) exceeds the available context size"),
        (400, b'{"object":"error","message":"Prompt is too long","type":"BadRequestError","code":400}',
         "context_length_exceeded", 400, "Prompt is too long"),
        (401, b'{"error":{"message":"Authentication Fails","type":"authentication_error"}}', "authentication", 401,
         "Authentication Fails"),
        (402, b'{"error":{"message":"Insufficient Balance","type":"unknown_error"}}', "billing", 402,
         "Insufficient Balance"),
        (404, b'{"error":"model \\"qwen9\\" not found, try pulling it first"}', "not_found", 404,
         'model "qwen9" not found, try pulling it first'),
        (422, b'{"detail":[{"loc":["body","messages"],"msg":"field required"}]}', "unprocessable", 422,
         '[{"loc":["body","messages"],"msg":"field required"}]'),
        (429, b'{"error":{"message":"Rate limit reached","type":"rate_limit_error"}}', "rate_limit", 429,
         "Rate limit reached"),
        (500, b"Internal Server Error", "api_error", 500, "Internal Server Error"),
        (502, b"<html><body>Bad Gateway</body></html>", "overloaded", 503, "<html><body>Bad Gateway</body></html>"),
        (503, b'{"error":{"message":"Server overloaded","type":"api_error","code":null}}', "overloaded", 503,
         "Server overloaded"),
        (504, b"", "overloaded", 503, "upstream returned HTTP 504"),
    ],
)
def test_parse_error_body(status: int, body: bytes, code: str, out_status: int, message: str) -> None:
    info = parse_error_body(status, body)
    assert (info.code, info.status, info.message) == (code, out_status, message)


def test_parse_error_body_retry_after() -> None:
    assert parse_error_body(429, b"{}", retry_after="12").retry_after_s == 12.0
    slow = parse_error_body(429, b'{"error":{"message":"Please try again in 1.5s."}}')
    assert slow.retry_after_s == 1.5
    assert parse_error_body(429, b"{}", retry_after="Wed, 21 Oct 2026 07:28:00 GMT").retry_after_s is None
    assert parse_error_body(400, b"{}", retry_after="5").retry_after_s is None


def test_error_info_round_trips_as_json() -> None:
    info = parse_error_body(503, b"busy")
    assert msgspec.json.decode(msgspec.json.encode(info), type=ErrorInfo) == info


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"message": "upstream overloaded", "type": "server_error", "code": "503"}, "overloaded"),
        ({"message": "x", "type": "server_error"}, "api_error"),
        ({"message": "x", "code": 429}, "rate_limit"),
        ({"message": "prompt is too long", "type": "invalid_request_error"}, "context_length_exceeded"),
        ({"message": "bad", "type": "invalid_request_error"}, "invalid_request"),
        ("plain text failure", "api_error"),
        (None, "api_error"),
    ],
)
def test_in_stream_error_payloads(payload: object, code: str) -> None:
    info = error_from_payload(payload)
    assert info.code == code and info.message
