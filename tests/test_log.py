"""The rendered ``request_finished`` line: one JSON object per line, its fields, key-shaped
strings redacted on the rendered bytes, values JSON cannot carry logged by their repr."""

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


def finished(out: io.BytesIO, **fields) -> dict:
    ctx = RequestContext(request_id="r1", pipeline_id="p", client="anthropic")
    ctx.upstream_id, ctx.upstream_model = "deepseek", "deepseek-v4-flash"
    ctx.lose("thinking_signature", "sk-abcdefghijklmnop was in a header")
    ctx.fields.update(fields)
    outcome = Outcome()
    outcome.status, outcome.first_byte, outcome.output_tokens = 200, time.perf_counter(), 7
    log.request_finished(ctx, outcome, kind="generate", model="claude-x")
    lines = out.getvalue().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 2
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
