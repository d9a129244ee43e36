"""Anthropic encoding outside the stream: errors in the SDK's own types, models, counts, the codec."""

from __future__ import annotations

import json

import anthropic
import pytest
from anthropic.types import MessageTokensCount
from anthropic.types import ModelInfo as SdkModelInfo
from anthropic.types.shared import ErrorResponse

from pipeline.errors import CODES, GatewayError
from pipeline.protocols.anthropic.client_encode import render_count, render_error, render_models
from pipeline.protocols.base import ModelInfo
from tests.protocols.anthropic_sdk import sdk_client

EXPECTED_ERRORS = {
    "invalid_request": (400, "invalid_request_error"),
    "context_length_exceeded": (400, "invalid_request_error"),
    "authentication": (401, "authentication_error"),
    "billing": (402, "billing_error"),
    "permission": (403, "permission_error"),
    "not_found": (404, "not_found_error"),
    "method_not_allowed": (405, "invalid_request_error"),
    "request_too_large": (413, "request_too_large"),
    "request_timeout": (408, "timeout_error"),
    "unsupported_media_type": (415, "invalid_request_error"),
    "unprocessable": (422, "invalid_request_error"),
    "rate_limit": (429, "rate_limit_error"),
    "api_error": (500, "api_error"),
    "bad_gateway": (502, "api_error"),
    "overloaded": (529, "overloaded_error"),
    "timeout": (504, "timeout_error"),
}


class TestErrors:
    def test_every_code_covered(self):
        """Every neutral error code has an expected Anthropic rendering."""
        assert set(EXPECTED_ERRORS) == set(CODES)

    @pytest.mark.parametrize("code", sorted(EXPECTED_ERRORS))
    def test_error_body(self, code):
        """Each neutral code renders with Anthropic's status and error.type."""
        message = "prompt is too long: 9 tokens > 5 maximum" if code == "context_length_exceeded" else "boom"
        rendered = render_error(GatewayError(message, code=code))
        status, kind = EXPECTED_ERRORS[code]
        assert rendered.status == status
        assert (b"content-type", b"application/json") in rendered.headers
        body = json.loads(rendered.body)
        assert body == {"type": "error", "error": {"type": kind, "message": message}}
        if kind != "request_too_large":  # not in the SDK's error union
            ErrorResponse.model_validate(body)

    def test_rate_limit_retry_after(self):
        """429 carries retry-after (whole seconds, rounded up) when known."""
        rendered = render_error(GatewayError("slow", code="rate_limit", retry_after_s=2.2))
        assert (b"retry-after", b"3") in rendered.headers
        without = render_error(GatewayError("slow", code="rate_limit"))
        assert all(name != b"retry-after" for name, _ in without.headers)

    def test_sdk_raises_matching_class(self):
        """The SDK maps rendered errors to its exception classes."""
        rendered = render_error(GatewayError("slow", code="rate_limit", retry_after_s=1))
        client = sdk_client(rendered.body, rendered.status, dict((k.decode(), v.decode()) for k, v in rendered.headers))
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(model="m", max_tokens=1, messages=[{"role": "user", "content": "x"}])
        assert caught.value.body["error"]["type"] == "rate_limit_error"


class TestModelsAndCount:
    def test_models(self):
        """The model list has Anthropic's page shape and each entry validates as an SDK ModelInfo."""
        models = [ModelInfo(id="claude-opus-5-5", upstream_model="deepseek-v4-pro", context_window=1_000_000,
                            max_output_tokens=384_000),
                  ModelInfo(id="claude-haiku-5", upstream_model="deepseek-v4-flash", context_window=128_000,
                            max_output_tokens=32_000)]
        page = json.loads(render_models(models))
        assert page["has_more"] is False
        assert (page["first_id"], page["last_id"]) == ("claude-opus-5-5", "claude-haiku-5")
        infos = [SdkModelInfo.model_validate(entry) for entry in page["data"]]
        assert infos[0].max_input_tokens == 1_000_000 and infos[0].max_tokens == 384_000
        assert infos[1].display_name == "claude-haiku-5" and infos[1].type == "model"

    def test_empty_models(self):
        """An empty list has null first/last ids."""
        assert json.loads(render_models([])) == {"data": [], "has_more": False, "first_id": None, "last_id": None}

    def test_count(self):
        """count_tokens answers {"input_tokens": n}."""
        assert MessageTokensCount.model_validate_json(render_count(14231)).input_tokens == 14231
