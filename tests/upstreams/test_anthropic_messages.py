"""The ``anthropic_messages`` upstream type: its headers, options, registry entry and model names."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.registry import build_upstream
from pipeline.upstream import Upstream, UpstreamConfig
from upstreams.anthropic_messages import AnthropicMessagesUpstream


def upstream(**options) -> AnthropicMessagesUpstream:
    built = build_upstream("dsa", {"type": "anthropic_messages", "base_url": "https://api.deepseek.com/anthropic",
                                   "profile": "deepseek_anthropic", "options": options})
    assert isinstance(built, AnthropicMessagesUpstream)
    return built


def test_url_and_headers() -> None:
    dsa = upstream()
    assert dsa.url == "https://api.deepseek.com/anthropic/v1/messages"
    headers = dsa.request_headers("sk-1")
    assert headers["x-api-key"] == "sk-1" and headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers
    bearer = upstream(auth="bearer").request_headers("sk-1")
    assert bearer["authorization"] == "Bearer sk-1" and "x-api-key" not in bearer


def test_bad_options_and_missing_base_url_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="options"):
        upstream(auth="basic")
    with pytest.raises(ConfigError, match="base_url"):
        build_upstream("dsa", {"type": "anthropic_messages", "profile": "deepseek_anthropic"})


def test_claude_codes_1m_marker_never_reaches_the_upstream() -> None:
    """Claude Code's ``[1m]`` is a client-side marker: looked up without it (an exact key with
    it still wins), and never passed through."""
    exact = Upstream(UpstreamConfig(type="x", models={"claude-opus-4-7": "deepseek-v4-pro",
                                                      "claude-haiku*": "deepseek-v4-flash"}), upstream_id="u")
    assert exact.map_model("claude-opus-4-7[1m]") == "deepseek-v4-pro"
    assert exact.map_model("claude-haiku-4-5[1m]") == "deepseek-v4-flash"
    assert exact.map_model("claude-sonnet-4-5[1m]") == "claude-sonnet-4-5"
    marked = Upstream(UpstreamConfig(type="x", models={"claude-opus-4-7[1m]": "special"}), upstream_id="u")
    assert marked.map_model("claude-opus-4-7[1m]") == "special"
