"""The OpenAI family's shared tables: one error table, the dialect differences as data, one status map."""

from __future__ import annotations

import json

from pipeline.errors import CODES, GatewayError
from pipeline.protocols.base import ModelInfo
from pipeline.protocols.chat import ChatCodec
from pipeline.protocols.openai import ERRORS, error_type_code, upstream_code
from pipeline.protocols.responses import ResponsesCodec


def test_every_neutral_code_has_one_row() -> None:
    """The table covers every neutral code, so no dialect falls back to a guess for a known one."""
    assert set(ERRORS) == set(CODES)


def test_the_dialects_differ_only_where_the_data_says() -> None:
    """Responses differs from Chat in three types (api.openai.com's) and in null codes; nowhere else."""
    types = {c for c in CODES if error_type_code("chat", c)[0] != error_type_code("responses", c)[0]}
    nulls = {c for c in CODES if error_type_code("responses", c)[1] is None}
    assert types == {"authentication", "not_found", "rate_limit"}
    assert nulls == {"invalid_request", "permission", "method_not_allowed", "unsupported_media_type",
                     "unprocessable", "api_error", "bad_gateway", "timeout"}
    assert all(error_type_code("responses", c)[1] in (None, ERRORS[c][1]) for c in CODES)
    assert error_type_code("chat", "new_code") == ("server_error", "new_code")
    assert error_type_code("responses", "new_code") == ("server_error", None)


def test_both_codecs_render_from_the_table() -> None:
    """An HTTP error body of either codec carries the table's type and code for its dialect."""
    for code in CODES:
        err = GatewayError("x", code=code)
        for dialect, codec in (("chat", ChatCodec()), ("responses", ResponsesCodec())):
            body = json.loads(codec.render_error(err).body)["error"]
            assert (body["type"], body["code"]) == error_type_code(dialect, code), (dialect, code)


def test_upstream_status_map() -> None:
    """Proxy failures in front of the model are overload; other statuses take their own code."""
    assert [upstream_code(s) for s in (502, 503, 504, 529)] == ["overloaded"] * 4
    assert upstream_code(408) == "invalid_request" and upstream_code(401) == "authentication"
    assert upstream_code(415) == "unsupported_media_type" and upstream_code(507) == "api_error"
    assert upstream_code(418) == "invalid_request"


def test_one_model_list_for_both() -> None:
    """Chat and Responses answer ``GET /v1/models`` with the same bytes."""
    models = [ModelInfo(id="m", upstream_model="u", owned_by="o", context_window=10, max_output_tokens=5)]
    assert ChatCodec().render_models(models) == ResponsesCodec().render_models(models)
