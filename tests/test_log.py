"""The per-request record: the rendered ``request_finished`` line (one JSON object per line, its
fields, key-shaped strings redacted on the rendered bytes, values JSON cannot carry logged by their
repr, written directly unless structlog was reconfigured) and the metrics it counts."""

from __future__ import annotations

import io
import time

import msgspec
import pytest
import structlog

from pipeline import log
from pipeline.runner import Outcome
from pipeline.stage import RequestContext


@pytest.fixture
def out():
    buf = io.BytesIO()
    log.configure("info", json=True, file=buf)
    yield buf
    structlog.reset_defaults()


def finished(out: io.BytesIO, *, structlog_path: bool = False, **fields) -> dict:
    ctx = RequestContext(request_id="r1", pipeline_id="p", client="anthropic")
    if structlog_path:
        ctx.log  # a bound logger may carry more context: the line then goes through structlog
    ctx.upstream_id, ctx.upstream_model = "deepseek", "deepseek-v4-flash"
    ctx.lose("thinking_signature", "sk-abcdefghijklmnop was in a header")
    ctx.fields.update(fields)
    outcome = Outcome()
    outcome.status, outcome.first_byte, outcome.output_tokens = 200, time.perf_counter(), 7
    log.request_finished(ctx, outcome, kind="generate", model="claude-x")
    lines = out.getvalue().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 2
    out.seek(0)
    out.truncate()
    return msgspec.json.decode(lines[0])


def test_one_json_line_with_the_fields(out: io.BytesIO) -> None:
    line = finished(out, replay_rung="envelope")
    assert line["event"] == "request_finished" and line["level"] == "info"
    assert (line["request_id"], line["pipeline"], line["client"]) == ("r1", "p", "anthropic")
    assert line["upstream"] == "deepseek" and line["model"] == "claude-x" and line["status"] == 200
    assert line["tokens"]["output"] == 7 and line["replay_rung"] == "envelope"
    assert line["ttfb_ms"] >= 0 and "timestamp" in line


def test_key_shaped_strings_are_redacted(out: io.BytesIO) -> None:
    line = finished(out, note="Bearer abcdef.123456 sent")
    text = out.getvalue()
    assert b"sk-abcdefghijklmnop" not in text and b"abcdef.123456" not in text
    assert line["losses"] == ["thinking_signature: [redacted] was in a header"]
    assert line["note"] == "[redacted] sent"


class Odd:
    def __repr__(self) -> str:
        return "<odd>"


def test_values_json_cannot_carry_are_logged_by_repr(out: io.BytesIO) -> None:
    line = finished(out, odd=Odd())
    assert line["odd"] == "<odd>"


def test_direct_line_is_the_structlog_line(out: io.BytesIO) -> None:
    """The line written without structlog's call machinery has the same keys, order and values."""
    direct = finished(out, replay_rung="cache")
    via_structlog = finished(out, structlog_path=True, replay_rung="cache")
    for line in (direct, via_structlog):
        assert line.pop("timestamp").endswith("Z")
        line.pop("duration_ms"), line.pop("ttfb_ms")
    assert list(direct.items()) == list(via_structlog.items())


def test_reconfigured_structlog_gets_the_event(out: io.BytesIO) -> None:
    """Under capture_logs (or an operator's own structlog setup) the event goes through structlog."""
    with structlog.testing.capture_logs() as logs:
        ctx = RequestContext(request_id="r2", pipeline_id="p", client="chat")
        log.request_finished(ctx, Outcome(), kind="generate", model="m")
    assert out.getvalue() == b""
    assert logs[0]["event"] == "request_finished" and logs[0]["request_id"] == "r2"


def test_observe_counts_under_the_labels_get_reads() -> None:
    """metrics.observe writes its label tuples directly; they must be the ones ``get`` looks up."""
    from pipeline import metrics

    ctx = RequestContext(request_id="r3", pipeline_id="obs-p", client="chat")
    ctx.upstream_id = "up"
    ctx.lose("schema", "x")
    ctx.fields["replay_rung"] = "envelope"
    outcome = Outcome()
    outcome.status, outcome.error_code, outcome.input_tokens, outcome.cached_tokens = 200, None, 12, 5
    metrics.observe(ctx, outcome)
    metrics.observe(ctx, outcome)
    assert metrics.get("gateway_requests_total",
                       {"pipeline": "obs-p", "upstream": "up", "status": "200", "error_code": ""}) == 2
    assert metrics.get("gateway_losses_total", {"pipeline": "obs-p", "what": "schema"}) == 2
    assert metrics.get("gateway_tokens_total", {"pipeline": "obs-p", "kind": "input"}) == 24
    assert metrics.get("gateway_tokens_total", {"pipeline": "obs-p", "kind": "cached"}) == 10
    assert metrics.get("gateway_tokens_total", {"pipeline": "obs-p", "kind": "output"}) == 0
    assert metrics.get("gateway_reasoning_replay_total", {"pipeline": "obs-p", "rung": "envelope"}) == 2
    assert b'gateway_requests_total{error_code="",pipeline="obs-p",status="200",upstream="up"} 2' in metrics.render()
