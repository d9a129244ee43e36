"""Simulator faults: scheduled and ``SIM:fault`` HTTP errors, drops, truncation, bad chunks,
keep-alives and delays, overload, in-stream errors, ``once``, and faults on JSON answers.
"""

from __future__ import annotations

import json

import pytest

from tests.upstreams.simulator_helpers import chat, collect, frames, request, user
from upstreams.simulator import SimConfig, Simulator


class TestFaults:
    def test_schedule(self):
        """Scheduled faults hit exactly the numbered chat requests."""
        sim = Simulator(SimConfig(faults=[{"on_request": 2, "kind": "429"},
                                          {"on_request": 3, "kind": "503"}]))
        statuses = [chat(sim, request([user("hi")])) for _ in range(4)]
        assert [r.status for r in statuses] == [200, 429, 503, 200]
        assert (b"retry-after", b"1") in statuses[1].headers
        assert json.loads(statuses[2].chunks[0][1])["error"]["message"]

    def test_bad_schedule(self):
        """Unknown kinds and duplicate request numbers fail at construction."""
        with pytest.raises(ValueError, match="bad scheduled fault"):
            Simulator(SimConfig(faults=[{"on_request": 1, "kind": "explode"}]))
        with pytest.raises(ValueError, match="two faults"):
            Simulator(SimConfig(faults=[{"on_request": 1, "kind": "500"},
                                        {"on_request": 1, "kind": "503"}]))

    @pytest.mark.parametrize("kind", ["429", "500", "503"])
    def test_http_directive(self, kind):
        """SIM:fault with an HTTP kind answers that status."""
        assert chat(Simulator(), request([user(f"SIM:fault {kind}")])).status == int(kind)

    def test_drop(self):
        """drop: some frames, then the connection is cut before the finish chunk."""
        resp = chat(Simulator(), request([user("SIM:fault drop\nSIM:text one two three four")]))
        assert resp.drop_after is not None and 0 < resp.drop_after < len(resp.chunks)
        sent = b"".join(d for _, d in resp.chunks[:resp.drop_after])
        assert b"finish_reason\":\"stop" not in sent and b"[DONE]" not in sent

    def test_truncate(self):
        """truncate: a clean end without finish_reason or [DONE]."""
        resp = chat(Simulator(), request([user("SIM:fault truncate")]))
        chunks = frames(resp)
        assert resp.drop_after is None and "[DONE]" not in chunks
        assert all(c["choices"][0]["finish_reason"] is None for c in chunks)

    def test_badchunk(self):
        """badchunk: one data line is not JSON; the stream still ends with [DONE]."""
        resp = chat(Simulator(), request([user("SIM:fault badchunk")]))
        bad = [d for _, d in resp.chunks if d.startswith(b"data: {")]
        broken = []
        for d in bad:
            try:
                json.loads(d[6:])
            except ValueError:
                broken.append(d)
        assert len(broken) == 1 and resp.chunks[-1][1] == b"data: [DONE]\n\n"

    def test_keepalive_and_slow_and_stall(self):
        """keepalive adds comments first; slow delays every piece; stall one long pause."""
        cfg = SimConfig(slow_chunk_s=0.5, stall_s=7.0)
        keep = chat(Simulator(cfg), request([user("SIM:fault keepalive")]))
        assert [d for _, d in keep.chunks[:3]] == [b": keep-alive\n\n"] * 3
        slow = chat(Simulator(cfg), request([user("SIM:fault slow")]))
        assert {t for t, _ in slow.chunks} == {0.5}
        stall = chat(Simulator(cfg), request([user("SIM:fault stall")]))
        assert sorted(t for t, _ in stall.chunks)[-2:] == [0.0, 7.0]

    def test_config_keepalives_and_delay(self):
        """keepalive_comments and chunk_delay_s shape every stream."""
        resp = chat(Simulator(SimConfig(keepalive_comments=2, chunk_delay_s=0.1)),
                    request([user("hi")]))
        assert [d for _, d in resp.chunks[:2]] == [b": keep-alive\n\n"] * 2
        assert all(t == 0.1 for t, _ in resp.chunks[2:])

    def test_overload(self):
        """overload ends with DeepSeek's insufficient_system_resource."""
        body = request([user("SIM:fault overload\nSIM:text a b c d")])
        got = collect(frames(chat(Simulator(), body)))
        assert got["finish"] == "insufficient_system_resource"

    def test_error_chunk(self):
        """error_chunk ends the stream with a top-level error object."""
        chunks = frames(chat(Simulator(), request([user("SIM:fault error_chunk")])))
        assert "error" in chunks[-1] and "[DONE]" not in chunks

    def test_once(self):
        """fault ... once fails the first attempt only, so a client retry succeeds."""
        sim = Simulator()
        body = request([user("SIM:fault 503 once\nSIM:text ok")])
        assert [chat(sim, body).status for _ in range(3)] == [503, 200, 200]

    def test_json_faults(self):
        """Non-streaming: drop cuts the body under its content-length; truncate omits it."""
        body = request([user("SIM:fault drop")], stream=False)
        resp = chat(Simulator(), body)
        assert resp.drop_after == 1
        assert int(dict(resp.headers)[b"content-length"]) == sum(len(d) for _, d in resp.chunks)
        trunc = chat(Simulator(), request([user("SIM:fault truncate")], stream=False))
        assert b"content-length" not in dict(trunc.headers)
        with pytest.raises(ValueError):
            json.loads(trunc.chunks[-1][1])
        keep = chat(Simulator(), request([user("SIM:fault keepalive")], stream=False))
        assert json.loads(b"".join(d for _, d in keep.chunks))["object"] == "chat.completion"
        assert keep.chunks[0][1] == b"\n"
