"""Bad input at the gateway's edge, in each dialect: the body cap (413, declared, chunked and
decompressed), Content-Encoding (415), malformed JSON and the JSON nesting limit (400). What passes
is answered by the simulator server through the production transport."""

from __future__ import annotations

import gzip
import json
import os
import time

import httpx
import msgspec
import hypothesis
import pytest
from hypothesis import strategies as st
import trio

from pipeline.app import Gateway
from pipeline.json_depth import DepthMemo, State, json_depth_exceeds, scan
from pipeline.config import parse_config
from tests.e2e.serving import SIM, open_gateway
from tests.resilience.dialects import DIALECTS, PATHS, auth_headers, fold, request_body

LIMIT = 200_000
CONFIG = f"""
server: {{max_body_bytes: {LIMIT}, max_json_depth: 64}}
upstreams:
  sim: {{{SIM}}}
pipelines:
""" + "".join(f"  {d}: {{client: {d}, upstream: sim, mount: /{d}}}\n" for d in DIALECTS)

TOO_LARGE = {"anthropic": "request_too_large", "responses": "request_too_large", "chat": "request_too_large"}
UNSUPPORTED = {"anthropic": "invalid_request_error", "responses": "invalid_request_error", "chat": "unsupported_media_type"}
INVALID = {"anthropic": "invalid_request_error", "responses": "invalid_request_error", "chat": "invalid_request_error"}


def nested(depth: int) -> object:
    """A JSON value nesting ``depth`` lists."""
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def with_extra(dialect: str, prompt: str, extra: object) -> bytes:
    """A valid request plus an unknown field carrying ``extra`` (unknown fields are ignored)."""
    body = request_body(dialect, prompt)
    body["x_extra"] = extra
    return msgspec.json.encode(body)


async def post(http: httpx.AsyncClient, url: str, dialect: str, content: object, **headers: str):
    response = await http.post(url + f"/{dialect}" + PATHS[dialect], content=content,
                               headers={"content-type": "application/json", **auth_headers(dialect, "k"), **headers})
    return fold(dialect, response.status_code, response.headers, response.content)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_body_cap_and_encodings(dialect: str, sim) -> None:
    """413 by Content-Length, by counting a chunked body, and after gzip; 415 for br; gzip works."""
    big = with_extra(dialect, "SIM:text x", "y" * LIMIT)

    async def chunked():
        for i in range(0, len(big), 16_384):
            yield big[i:i + 16_384]

    bomb = gzip.compress(with_extra(dialect, "SIM:text x", "0" * (LIMIT * 20)))
    async with open_gateway(CONFIG, sim=sim) as (url, _):
        async with httpx.AsyncClient(timeout=10) as http:
            declared = await post(http, url, dialect, big)
            counted = await post(http, url, dialect, chunked())
            inflated = await post(http, url, dialect, bomb, **{"content-encoding": "gzip"})
            brotli = await post(http, url, dialect, b"\x8b\x00", **{"content-encoding": "br"})
            zipped = await post(http, url, dialect, gzip.compress(msgspec.json.encode(request_body(dialect, "SIM:text zipped"))),
                                **{"content-encoding": "gzip"})
            broken_zip = await post(http, url, dialect, b"not gzip at all", **{"content-encoding": "gzip"})
    assert len(bomb) < LIMIT
    for reply in (declared, counted, inflated):
        assert (reply.status, reply.error_kind) == (413, TOO_LARGE[dialect])
        assert f"limit of {LIMIT} bytes" in reply.error["message"]
    assert (brotli.status, brotli.error_kind) == (415, UNSUPPORTED[dialect])
    assert "unsupported Content-Encoding 'br'" in brotli.error["message"]
    assert zipped.status == 200 and zipped.text == "zipped"
    assert (broken_zip.status, broken_zip.error_kind) == (400, INVALID[dialect])
    assert sim.chat_requests == 1  # only the gzip one reached the upstream


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_malformed_json_and_nesting_limit(dialect: str, sim) -> None:
    """Malformed JSON and nesting past the limit are 400s; 64 levels pass; 200,000 levels are
    refused quickly, never a RecursionError (500)."""
    async with open_gateway(CONFIG, sim=sim) as (url, _):
        async with httpx.AsyncClient(timeout=10) as http:
            malformed = await post(http, url, dialect, b'{"model": "m", "messages": [')
            not_object = await post(http, url, dialect, b'[1, 2, 3]')
            at_limit = await post(http, url, dialect, with_extra(dialect, "SIM:text deep ok", nested(63)))
            over = await post(http, url, dialect, with_extra(dialect, "SIM:text x", nested(64)))
            started = time.perf_counter()
            abyss = await post(http, url, dialect, b"[" * 100_000 + b"]" * 100_000)
            elapsed = time.perf_counter() - started
    for reply in (malformed, not_object, over, abyss):
        assert (reply.status, reply.error_kind) == (400, INVALID[dialect]), reply.raw
    assert "deeper than 64 levels" in over.error["message"] and "deeper than 64" in abyss.error["message"]
    assert "deeper" not in malformed.error["message"]
    assert at_limit.status == 200 and at_limit.text == "deep ok"
    assert elapsed < 2 and sim.chat_requests == 1


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_invalid_utf8_in_a_message(dialect: str, sim) -> None:
    """Invalid UTF-8 inside the user's message (a Responses input item and an Anthropic message
    are decoded on their own, after the body) is the dialect's 400 naming where it is, never a
    500; the same body made valid is served."""
    body = msgspec.json.encode(request_body(dialect, "SIM:text BAD"))
    async with open_gateway(CONFIG, sim=sim) as (url, _):
        async with httpx.AsyncClient(timeout=10) as http:
            bad = await post(http, url, dialect, body.replace(b"BAD", b"ok \xc3("))
            good = await post(http, url, dialect, body.replace(b"BAD", "ok \u00e9".encode()))
    assert (bad.status, bad.error_kind) == (400, INVALID[dialect]), bad.raw
    where = {"responses": "input.0: invalid UTF-8", "anthropic": "messages.0: invalid UTF-8"}.get(
        dialect, "not valid JSON: Invalid UTF-8")
    assert where in bad.error["message"] and " at byte " in bad.error["message"]
    assert good.status == 200 and good.text == "ok \u00e9" and sim.chat_requests == 1


# The report's exact bytes (D5): a lone 0xFF in the user's text, a UTF-16 surrogate encoded as
# UTF-8 (ED A0 80) in a tool's description, in each dialect's own body shape.
_USER = b'[{"role":"user","content":"\xff"}]'
_TOOL = {"anthropic": b'[{"name":"f","description":"\xed\xa0\x80","input_schema":{"type":"object"}}]',
         "responses": b'[{"type":"function","name":"f","description":"\xed\xa0\x80","parameters":{}}]',
         "chat": b'[{"type":"function","function":{"name":"f","description":"\xed\xa0\x80","parameters":{}}}]'}
_TEXT = b'[{"role":"user","content":"SIM:text x"}]'


def invalid_utf8_bodies(dialect: str) -> list[bytes]:
    field = b"input" if dialect == "responses" else b"messages"
    head = b'{"model":"m",' + (b'"max_tokens":10,' if dialect == "anthropic" else b"")
    return [head + b'"' + field + b'":' + _USER + b"}",
            head + b'"tools":' + _TOOL[dialect] + b',"' + field + b'":' + _TEXT + b"}"]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_report_invalid_utf8_bytes_are_a_400(dialect: str, sim) -> None:
    """The exact reproducers of the reliability report (Responses once answered them with a bare
    500): the dialect's 400 naming the invalid UTF-8, in every dialect, nothing sent upstream."""
    async with open_gateway(CONFIG, sim=sim) as (url, _):
        async with httpx.AsyncClient(timeout=10) as http:
            replies = [await post(http, url, dialect, body) for body in invalid_utf8_bodies(dialect)]
    for reply in replies:
        assert (reply.status, reply.error_kind) == (400, INVALID[dialect]), reply.raw
        assert "invalid utf-8" in reply.error["message"].lower()
        if dialect == "anthropic":
            assert msgspec.json.decode(reply.raw)["type"] == "error"
    assert sim.chat_requests == 0


TRICKY_TEXT = st.text(alphabet='ab"\\[]{}\n', max_size=12)
JSON_VALUES = st.recursive(st.none() | st.integers() | TRICKY_TEXT,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TRICKY_TEXT, inner, max_size=3),
                           max_leaves=30)


def nesting(value: object) -> int:
    """The parser's view: how many arrays and objects deep ``value`` is."""
    if isinstance(value, list):
        return 1 + max((nesting(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((nesting(v) for v in value.values()), default=0)
    return 0


class TestJsonDepth:
    """The bytes-level scan agrees with a real parser and ignores brackets inside strings."""

    @pytest.mark.parametrize("depth", [1, 2, 63, 64, 65, 500])
    def test_exact_depth(self, depth: int) -> None:
        body = json.dumps({"a": nested(depth - 1)}).encode()
        assert json_depth_exceeds(body, 64) is (depth > 64)

    def test_brackets_and_escapes_in_strings_do_not_count(self) -> None:
        tricky = {"s": "[[[{{{\\\"[[[" * 50, "t": 'quote " and backslash \\ ]]]}}}', "deep": nested(10)}
        assert json_depth_exceeds(json.dumps(tricky).encode(), 11) is False
        assert json_depth_exceeds(json.dumps(tricky).encode(), 10) is True

    @hypothesis.settings(max_examples=300, deadline=None)
    @hypothesis.given(value=JSON_VALUES)
    def test_agrees_with_a_parser_on_any_json(self, value: object) -> None:
        """Strings full of quotes, backslashes and brackets: the scan's depth is the parser's."""
        body = json.dumps(value).encode()
        depth = nesting(value)
        assert json_depth_exceeds(body, depth) is False
        if depth:
            assert json_depth_exceeds(body, depth - 1) is True

    def test_captures_are_within_the_default_limit(self, captures: list[tuple[str, bytes]]) -> None:
        assert captures and not any(json_depth_exceeds(body, 64) for _, body in captures)
        assert all(json_depth_exceeds(body, 3) for _, body in captures)


class TestRefusedBodies:
    """A refused body is drained (bounded) so the 413 is read instead of a connection reset (also
    after ``Expect: 100-continue``: tests/resilience/test_intake.py, through hypercorn)."""

    async def run(self, headers: list[tuple[bytes, bytes]], pieces: int) -> tuple[int, int]:
        gateway = Gateway(parse_config(CONFIG, env={"SIM_URL": "http://127.0.0.1:9"}))  # never reached
        await gateway.startup()
        reads = 0

        async def receive() -> dict:
            nonlocal reads
            reads += 1
            if reads > pieces:
                await trio.sleep_forever()
            return {"type": "http.request", "body": b"x" * 100_000, "more_body": reads < pieces}

        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/chat/v1/chat/completions",
                 "headers": [(b"content-type", b"application/json"), *headers]}
        with trio.fail_after(5):
            await gateway(scope, receive, send)
        await gateway.shutdown()
        return sent[0]["status"], reads

    async def test_declared_too_large_is_drained(self) -> None:
        assert await self.run([(b"content-length", b"1000000")], pieces=10) == (413, 10)

    async def test_counted_too_large_is_drained(self) -> None:
        assert await self.run([], pieces=10) == (413, 10)



class TestDepthMemo:
    """The piecewise scan that a session's next request resumes (``pipeline.json_depth``) agrees
    with the whole-body scan and the parser, wherever the pieces are cut, and what it remembers
    never answers for a body that differs."""

    @hypothesis.settings(max_examples=300, deadline=None)
    @hypothesis.given(value=JSON_VALUES, chunk=st.integers(min_value=1, max_value=9))
    def test_pieces_cut_anywhere_agree_with_a_parser(self, value: object, chunk: int) -> None:
        """Pieces of 1-9 bytes cut strings, escapes and runs of backslashes at every point."""
        body = json.dumps(value).encode()
        state = State()
        for offset in range(0, len(body), chunk):
            state = scan(body[offset:offset + chunk], state)
        assert (state.deepest, state.depth, state.in_string) == (nesting(value), 0, False)

    @hypothesis.settings(max_examples=200, deadline=None)
    @hypothesis.given(turns=st.lists(st.tuples(JSON_VALUES, st.integers(min_value=0, max_value=200)),
                                     min_size=2, max_size=6),
                      chunk=st.integers(min_value=2, max_value=16))
    def test_a_growing_session_is_judged_as_a_fresh_scan_judges_it(self, turns, chunk: int) -> None:
        """Each turn's body repeats the last one's history and adds a value; some turns change a
        byte of the history instead (the value at a random place is replaced): the memo's answer at
        every limit is the whole-body scan's, and an unchanged history is not scanned again."""
        memo = DepthMemo(chunk=chunk, entries=4, max_bytes=1 << 20)
        history: list[object] = ["x" * (4 * chunk)]  # the first piece (the memo's key) stays the same
        for value, where in turns:
            if where % 3 == 0 and len(history) > 1:
                history[1 + where % (len(history) - 1)] = value  # the history changed
            else:
                history.append(value)
            body = json.dumps({"messages": history}).encode()
            depth = nesting({"messages": history})
            for limit in (depth - 1, depth, depth + 1):
                assert memo.exceeds(body, limit) is json_depth_exceeds(body, limit) is (depth > limit), limit

    def test_a_session_resumes_where_its_last_body_ended(self, captures: list[tuple[str, bytes]]) -> None:
        """A real history grown turn by turn: all but the new pieces come from memory, and a
        deep value slipped into the remembered part is still refused."""
        memo = DepthMemo(chunk=4096)
        data = json.loads(max((body for _, body in captures), key=len))
        key = "messages" if "messages" in data else "input"
        turns = data[key]
        last = b""
        for _ in range(12):
            data[key] = turns = turns + turns[-2:]
            body = json.dumps(data).encode()
            before = memo.reused
            assert memo.exceeds(body, 64) is False
            same = len(os.path.commonprefix([last, body]))  # up to the end of the last body's history
            assert memo.reused - before >= same // 4096 - 1
            last = body
        assert same > 3 * 4096
        turns[-5] = {**turns[-5], "deep": nested(70)}  # a remembered turn, past the first piece
        deep = json.dumps(data).encode()
        assert deep.index(b'"deep"') > 4096 and deep[:4096] == body[:4096]
        assert json_depth_exceeds(deep, 64) and memo.exceeds(deep, 64)
        assert memo.remembered[0] == 1

    def test_memory_is_bounded(self) -> None:
        memo = DepthMemo(chunk=64, entries=3, max_bytes=10_000)
        for i in range(20):
            assert memo.exceeds(json.dumps({"k": f"{i:>70}", "v": ["y" * 3000]}).encode(), 64) is False
            bodies, size = memo.remembered
            assert bodies <= 3 and size <= 10_000
