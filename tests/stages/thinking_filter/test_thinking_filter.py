"""thinking_filter: envelopes out, exact reasoning back in, the ladder, and the stage contract."""

from __future__ import annotations


import msgspec
import pytest

from pipeline.events import BlockStart, BlockStop, MessageStart, MessageStop, SignatureDelta, TextDelta, ThinkingDelta
from pipeline.events import ToolArgsDelta, UpstreamSeal, Usage
from pipeline.model import ChatRequest, Message, TextPart, ThinkingConfig, ThinkingPart, ToolCallPart, ToolResultPart
from pipeline.testing import check_stage, make_attempt, make_context, run_stage
from stages.thinking_filter.envelope import Envelope, Keyring
from pipeline.config import parse_config
from pipeline.registry import build_pipelines
from stages.thinking_filter import ThinkingFilter, reset_shared_state
from pipeline.profiles import PROFILES

REASONING = "The user wants a file; I will run echo.\nSecond line with ünïcode and \u2028 separator."


def ctx_for(profile: str = "deepseek", upstream_id: str = "deepseek"):
    ctx = make_context(client="anthropic")
    ctx.aim(make_attempt(PROFILES[profile], upstream_id=upstream_id))
    return ctx


def stage(**options) -> ThinkingFilter:
    return ThinkingFilter(msgspec.convert(options, type=ThinkingFilter.Config), stage_id="t.0.thinking_filter")


def tool_turn(call_id: str = "call_1", text: str = REASONING) -> list:
    return [
        MessageStart(message_id="m1", model="deepseek-v4-pro"),
        BlockStart(index=0, block="thinking"),
        ThinkingDelta(index=0, text=text[:10]),
        ThinkingDelta(index=0, text=text[10:]),
        BlockStop(index=0),
        BlockStart(index=1, block="text"),
        TextDelta(index=1, text="Running it."),
        BlockStop(index=1),
        BlockStart(index=2, block="tool_call", call_id=call_id, name="Bash"),
        ToolArgsDelta(index=2, fragment='{"command":"echo hi"}'),
        BlockStop(index=2),
        Usage(input_tokens=10, output_tokens=5),
        MessageStop(stop_reason="tool_use"),
    ]


def history(signature: str | None, *, call_id: str = "call_1", reasoning: str | None = None,
            redacted: bool = False) -> ChatRequest:
    return ChatRequest(model="claude-opus-5-5", messages=(
        Message(role="user", parts=(TextPart("make a file"),)),
        Message(role="assistant", parts=(ThinkingPart(text="shown text", signature=signature, redacted=redacted),
                                         TextPart("Running it."),
                                         ToolCallPart(id=call_id, name="Bash", arguments='{"command":"echo hi"}')),
                reasoning=reasoning),
        Message(role="tool", parts=(ToolResultPart(call_id=call_id, content=(TextPart("hi"),)),)),
    ))


def opened(st: ThinkingFilter, token: str, upstream_id: str = "deepseek") -> Envelope | None:
    """``token`` opened with ``st``'s key for ``upstream_id``."""
    return st._keys.upstream(upstream_id).open(token)


async def signed(st: ThinkingFilter, call_id: str = "call_1", text: str = REASONING,
                 upstream_id: str = "deepseek") -> tuple[list, str]:
    _, out = await run_stage(st, tool_turn(call_id, text), ctx=ctx_for(upstream_id=upstream_id))
    sig = next(e.signature for e in out if isinstance(e, SignatureDelta))
    return out, sig


class TestResponseWay:
    async def test_signature_precedes_the_thinking_stop_and_carries_the_call_id(self) -> None:
        """The envelope comes once, right before the thinking block's stop, and names the call it precedes."""
        st = stage()
        out, sig = await signed(st)
        kinds = [type(e).__name__ for e in out]
        assert kinds[:6] == ["MessageStart", "BlockStart", "ThinkingDelta", "ThinkingDelta", "SignatureDelta", "BlockStop"]
        assert kinds.count("SignatureDelta") == 1
        envelope = opened(st, sig)
        assert envelope == Envelope(u="deepseek", m="deepseek-v4-pro", r=REASONING, t=("call_1",))
        assert [e for e in out if not isinstance(e, SignatureDelta)] == tool_turn()

    async def test_long_final_text_is_not_held_to_the_end(self) -> None:
        """Past holdback_chars of text the thinking block is released without waiting for a tool call."""
        st = stage(holdback_chars=5)
        events = [MessageStart(message_id="m", model="x"), BlockStart(index=0, block="thinking"),
                  ThinkingDelta(index=0, text="think"), BlockStop(index=0), BlockStart(index=1, block="text"),
                  TextDelta(index=1, text="abc"), TextDelta(index=1, text="defgh"), TextDelta(index=1, text="tail"),
                  BlockStop(index=1), MessageStop(stop_reason="end_turn")]
        _, out = await run_stage(st, events, ctx=ctx_for())
        sig_at = next(i for i, e in enumerate(out) if isinstance(e, SignatureDelta))
        assert out.index(TextDelta(index=1, text="defgh")) == sig_at + 4  # stop, start, abc, defgh
        assert opened(st, out[sig_at].signature).t == ()

    async def test_large_reasoning_travels_as_digest(self) -> None:
        """Reasoning over inline_max_chars is cached; the envelope carries only its digest."""
        st = stage(inline_max_chars=50)
        _, sig = await signed(st, call_id="call_big", text="x" * 500)
        envelope = opened(st, sig)
        assert envelope.r is None and envelope.d
        request = await st.on_request(history(sig, call_id="call_big"), ctx_for())
        assert request.messages[1].reasoning == "x" * 500


class TestRequestWay:
    async def test_envelope_restores_exact_reasoning_and_strips_thinking(self) -> None:
        """The exact reasoning_content comes back on the message carrying the call; no ThinkingPart remains."""
        st = stage()
        _, sig = await signed(st)
        ctx = ctx_for()
        request = await st.on_request(history(sig), ctx)
        assistant = request.messages[1]
        assert assistant.reasoning == REASONING
        assert not any(isinstance(p, ThinkingPart) for m in request.messages for p in m.parts)
        assert ctx.fields["replay_rung"] == "envelope"

    async def test_envelope_follows_its_tool_call_when_moved(self) -> None:
        """An envelope echoed on another assistant message is restored where its call id is."""
        st = stage()
        _, sig = await signed(st, call_id="call_9")
        req = ChatRequest(model="m", messages=(
            Message(role="user", parts=(TextPart("go"),)),
            Message(role="assistant", parts=(ThinkingPart(text="", signature=sig),)),
            Message(role="assistant", parts=(ToolCallPart(id="call_9", name="Bash", arguments="{}"),)),
        ))
        request = await st.on_request(req, ctx_for())
        assert request.messages[2].reasoning == REASONING and request.messages[1].reasoning is None

    @pytest.mark.parametrize("signature", ["EqQBCkgIARAB-real-anthropic-signature", "SIG-scripted-0001-AbCdEf==", "", None])
    async def test_foreign_or_missing_signature_never_reaches_upstream(self, signature) -> None:
        """Foreign and empty signatures are dropped with a loss; the ladder falls to ""."""
        st = stage()
        ctx = ctx_for()
        request = await st.on_request(history(signature, call_id="call_unknown_1"), ctx)
        assert not any(isinstance(p, ThinkingPart) for p in request.messages[1].parts)
        assert request.messages[1].reasoning is None  # the chat encoder sends "" for DeepSeek
        assert ctx.fields["replay_rung"] == "empty"
        assert {loss.what for loss in ctx.losses} & {"foreign_thinking", "unsigned_thinking"}

    async def test_tampered_envelope_is_rejected(self) -> None:
        """Changing one character of the token fails its authentication tag; another secret's
        envelope does not open."""
        st = stage()
        _, sig = await signed(st, call_id="call_t")
        forged = f"{sig[:-2]}{'A' if sig[-2] != 'A' else 'B'}{sig[-1]}"
        assert opened(st, forged) is None
        other = Keyring(b"other-secret").upstream("deepseek").seal(Envelope(u="deepseek", r="evil", t=("call_t",)))
        assert opened(st, other) is None
        ctx = ctx_for()
        request = await st.on_request(history(forged, call_id="call_t"), ctx)
        assert request.messages[1].reasoning == REASONING  # from the cache, not the forgery
        assert ctx.fields["replay_rung"] == "cache" and "foreign_thinking" in {loss.what for loss in ctx.losses}

    async def test_redacted_thinking_is_dropped(self) -> None:
        """redacted_thinking never reaches the upstream."""
        ctx = ctx_for()
        request = await stage().on_request(history("opaque-data", call_id="call_r", redacted=True), ctx)
        assert all(not isinstance(p, ThinkingPart) for p in request.messages[1].parts)
        assert "redacted_thinking" in {loss.what for loss in ctx.losses}

    async def test_cache_rung_when_the_client_dropped_the_signature(self) -> None:
        """Without an envelope, reasoning comes back from the cache keyed by tool call id."""
        st = stage()
        await signed(st, call_id="call_cached")
        ctx = ctx_for()
        request = await st.on_request(history(None, call_id="call_cached"), ctx)
        assert request.messages[1].reasoning == REASONING
        assert ctx.fields["replay_rung"] == "cache"

    async def test_thinking_off_rung(self) -> None:
        """With "" disallowed and nothing to replay, thinking is turned off for this request."""
        ctx = ctx_for()
        request = await stage(allow_empty_reasoning=False).on_request(history(None, call_id="call_none"), ctx)
        assert request.thinking.enabled is False
        assert ctx.fields["replay_rung"] == "thinking_off"

    async def test_client_supplied_reasoning_is_kept(self) -> None:
        """A Chat client that sends reasoning_content itself keeps it."""
        ctx = ctx_for()
        request = await stage().on_request(history(None, call_id="c", reasoning="mine"), ctx)
        assert request.messages[1].reasoning == "mine" and ctx.fields["replay_rung"] == "client"

    async def test_thinking_disabled_needs_no_replay(self) -> None:
        """With thinking off the rung is not_needed and thinking parts are still stripped."""
        ctx = ctx_for()
        req = msgspec.structs.replace(history("x", call_id="c2"), thinking=ThinkingConfig(enabled=False))
        request = await stage().on_request(req, ctx)
        assert ctx.fields["replay_rung"] == "not_needed"
        assert all(not isinstance(p, ThinkingPart) for p in request.messages[1].parts)


def turn(call_ids: tuple[str, ...], *signatures: str | None) -> tuple[Message, ...]:
    """An assistant turn with thinking blocks carrying ``signatures`` and calls ``call_ids``, and
    its tool results."""
    return (Message(role="assistant", parts=(*(ThinkingPart(text="shown", signature=s) for s in signatures),
                                             *(ToolCallPart(id=c, name="Bash", arguments="{}") for c in call_ids))),
            *(Message(role="tool", parts=(ToolResultPart(call_id=c, content=(TextPart("ok"),)),)) for c in call_ids))


def conversation(*turns: tuple[Message, ...]) -> ChatRequest:
    return ChatRequest(model="m", messages=(Message(role="user", parts=(TextPart("go"),)),
                                            *(m for t in turns for m in t)))


def what_lost(ctx) -> set[str]:
    return {loss.what for loss in ctx.losses}


class TestBinding:
    """An envelope replays its reasoning only to the upstream that produced it, on the turn of the
    tool calls it was sealed with, once (the report's D6)."""

    async def test_another_upstreams_envelope_and_cache_entry_are_not_replayed(self) -> None:
        """Reasoning sealed for the /demo simulator (SIM:think says what it is) neither opens for
        DeepSeek nor comes back from the cache, though the pipelines share one stage secret."""
        st = stage()
        _, demo = await signed(st, call_id="call_demo_1", text="INJECTED-VIA-DEMO", upstream_id="simulator")
        ctx = ctx_for()
        request = await st.on_request(history(demo, call_id="call_demo_1"), ctx)
        assert request.messages[1].reasoning is None and ctx.fields["replay_rung"] == "empty"
        assert "foreign_thinking" in what_lost(ctx)
        own = ctx_for(upstream_id="simulator")  # the simulator's own pipeline still replays it
        assert (await st.on_request(history(demo, call_id="call_demo_1"), own)).messages[1].reasoning == "INJECTED-VIA-DEMO"
        assert own.fields["replay_rung"] == "envelope"

    async def test_another_conversations_envelope_is_refused(self) -> None:
        """Conversation 2's envelope on conversation 1's turn does not bring conversation 2's
        reasoning: conversation 1's own comes back from the cache."""
        st = stage()
        await signed(st, call_id="call_conv1", text="reasoning of conversation one")
        _, sig2 = await signed(st, call_id="call_conv2", text="reasoning of conversation two")
        ctx = ctx_for()
        request = await st.on_request(history(sig2, call_id="call_conv1"), ctx)
        assert request.messages[1].reasoning == "reasoning of conversation one"
        assert ctx.fields["replay_rung"] == "cache" and "misplaced_thinking" in what_lost(ctx)

    async def test_copies_of_one_envelope_replay_it_once(self) -> None:
        """50 copies in its own turn give its reasoning once; copies on other turns give nothing."""
        st = stage()
        _, sig = await signed(st, call_id="call_dup_1", text="reasoning once")
        ctx = ctx_for()
        request = await st.on_request(conversation(turn(("call_dup_1",), *[sig] * 50),
                                                   turn(("call_dup_other_a",), sig),
                                                   turn(("call_dup_other_b",), sig, sig)), ctx)
        assistants = [m for m in request.messages if m.role == "assistant"]
        assert [m.reasoning for m in assistants] == ["reasoning once", None, None]
        assert ctx.fields["replay_rung"] == "empty"  # the other turns have no reasoning of their own
        assert sum(loss.what == "misplaced_thinking" for loss in ctx.losses) == 52

    async def test_the_turn_must_begin_with_the_sealed_call_ids(self) -> None:
        """Parallel calls: the envelope names the first call; it opens on the turn that begins with
        it (whatever follows), not on one where that call comes later."""
        st = stage()
        _, sig = await signed(st, call_id="call_par_1", text="parallel reasoning")
        ctx = ctx_for()
        request = await st.on_request(conversation(turn(("call_par_1", "call_par_2"), sig)), ctx)
        assert request.messages[1].reasoning == "parallel reasoning" and ctx.fields["replay_rung"] == "envelope"
        ctx = ctx_for()
        await st.on_request(conversation(turn(("call_par_0", "call_par_1"), sig)), ctx)
        assert "misplaced_thinking" in what_lost(ctx)
        assert ctx.fields["replay_rung"] == "cache"  # call_par_1's cache entry; the envelope was refused

    async def test_an_envelope_sealed_before_any_call_stays_on_a_turn_without_calls(self) -> None:
        """A final answer's envelope (no call ids) replays on its own turn without calls; moved
        onto a tool-call turn it is refused (it would lend that turn another turn's reasoning)."""
        st = stage()
        events = [MessageStart(message_id="m", model="deepseek-v4-pro"), BlockStart(index=0, block="thinking"),
                  ThinkingDelta(index=0, text="final answer reasoning"), BlockStop(index=0),
                  BlockStart(index=1, block="text"), TextDelta(index=1, text="Done."), BlockStop(index=1),
                  MessageStop(stop_reason="end_turn")]
        _, out = await run_stage(st, events, ctx=ctx_for())
        sig = next(e.signature for e in out if isinstance(e, SignatureDelta))
        assert opened(st, sig).t == ()
        ctx = ctx_for()
        request = await st.on_request(conversation(turn((), sig)), ctx)
        assert request.messages[1].reasoning == "final answer reasoning"
        ctx = ctx_for()
        request = await st.on_request(conversation(turn(("call_nocall_1",), sig)), ctx)
        assert request.messages[1].reasoning is None and "misplaced_thinking" in what_lost(ctx)

    async def test_long_text_before_the_first_call_falls_to_the_cache(self) -> None:
        """Past holdback_chars the envelope is sealed before the call is known (no call ids): on
        its tool-call turn it is refused and the cache, filled at the message's end, serves it."""
        st = stage(holdback_chars=5)
        events = [MessageStart(message_id="m", model="deepseek-v4-pro"), BlockStart(index=0, block="thinking"),
                  ThinkingDelta(index=0, text="long text reasoning"), BlockStop(index=0),
                  BlockStart(index=1, block="text"), TextDelta(index=1, text="a long explanation"), BlockStop(index=1),
                  BlockStart(index=2, block="tool_call", call_id="call_long_1", name="Bash"),
                  ToolArgsDelta(index=2, fragment="{}"), BlockStop(index=2), MessageStop(stop_reason="tool_use")]
        _, out = await run_stage(st, events, ctx=ctx_for())
        sig = next(e.signature for e in out if isinstance(e, SignatureDelta))
        ctx = ctx_for()
        request = await st.on_request(history(sig, call_id="call_long_1"), ctx)
        assert request.messages[1].reasoning == "long text reasoning" and ctx.fields["replay_rung"] == "cache"


class TestSecret:
    def test_required_secret_missing_is_a_startup_error(self, monkeypatch) -> None:
        """require_secret without the env var fails at construction, naming the variable."""
        monkeypatch.delenv("GW_TEST_SECRET", raising=False)
        with pytest.raises(ValueError, match="GW_TEST_SECRET is not set"):
            stage(secret_env="GW_TEST_SECRET", require_secret=True)

    def test_configured_secret_is_shared_across_instances(self, monkeypatch) -> None:
        """Two instances (replicas) with the same secret open each other's envelopes."""
        monkeypatch.setenv("GW_TEST_SECRET", "s3cret-value")
        a, b = stage(secret_env="GW_TEST_SECRET"), stage(secret_env="GW_TEST_SECRET")
        envelope = Envelope(u="deepseek", r="x")
        assert opened(b, a._keys.upstream("deepseek").seal(envelope)) == envelope


TWO_PIPELINES = """
upstreams:
  sim:
    type: simulator
pipelines:
  a:
    client: anthropic
    upstream: sim
    stages: [{thinking_filter: {cache_entries: 1}}]
  b:
    client: chat
    upstream: sim
    stages: [{thinking_filter: {cache_entries: 50}}]
"""


class TestSharedState:
    """What the stages of one process share (the reasoning stores, the random secret of an unset
    secret_env) follows each stage's own config, and a test can forget it."""

    async def test_each_pipeline_gets_the_cache_it_configured(self) -> None:
        """Pipeline a's cache_entries: 1 does not bound pipeline b's 50: b's cache still serves its
        first tool turn after a second one (the first pipeline's options won silently)."""
        reset_shared_state()
        pipelines, _ = build_pipelines(parse_config(TWO_PIPELINES, env={}), env={})
        a, b = pipelines["a"].stages[0], pipelines["b"].stages[0]
        for st in (a, b):
            await signed(st, call_id="call_cfg_1", text="first turn")
            await signed(st, call_id="call_cfg_2", text="second turn")
        for st, rung in ((b, "cache"), (a, "empty")):
            ctx = ctx_for()
            request = await st.on_request(history(None, call_id="call_cfg_1"), ctx)
            assert ctx.fields["replay_rung"] == rung, st.id
            assert request.messages[1].reasoning == ("first turn" if rung == "cache" else None)

    async def test_alike_stages_share_the_cache_and_the_process_secret(self, monkeypatch) -> None:
        """Two stages configured alike (two pipelines of one gateway) open each other's envelopes
        and see each other's cache entries, the secret variable unset."""
        monkeypatch.delenv("GW_TEST_UNSET_SECRET", raising=False)
        reset_shared_state()
        a, b = stage(secret_env="GW_TEST_UNSET_SECRET"), stage(secret_env="GW_TEST_UNSET_SECRET")
        _, sig = await signed(a, call_id="call_alike_1", text="a's reasoning")
        assert opened(b, sig) is not None
        ctx = ctx_for()
        assert (await b.on_request(history(None, call_id="call_alike_1"), ctx)).messages[1].reasoning == "a's reasoning"

    async def test_reset_forgets_the_cache_and_the_process_secret(self, monkeypatch) -> None:
        """A stage built after reset_shared_state neither opens an earlier stage's envelope (a new
        random secret) nor finds its cache entries; the earlier stage keeps both."""
        monkeypatch.delenv("GW_TEST_UNSET_SECRET", raising=False)
        before = stage(secret_env="GW_TEST_UNSET_SECRET")
        _, sig = await signed(before, call_id="call_reset_1", text="before the reset")
        reset_shared_state()
        after = stage(secret_env="GW_TEST_UNSET_SECRET")
        assert opened(after, sig) is None and opened(before, sig) is not None
        ctx = ctx_for()
        request = await after.on_request(history(sig, call_id="call_reset_1"), ctx)
        assert request.messages[1].reasoning is None and ctx.fields["replay_rung"] == "empty"
        ctx = ctx_for()
        request = await before.on_request(history(None, call_id="call_reset_1"), ctx)
        assert request.messages[1].reasoning == "before the reset" and ctx.fields["replay_rung"] == "cache"


async def test_conformance() -> None:
    """thinking_filter follows the stage contract."""
    st = stage()
    await check_stage(st)


def sealed_turn(call_id: str, seal: str | None, text: str = REASONING) -> list:
    """``tool_turn`` as a Messages upstream streams it: the block's own token (UpstreamSeal, and
    the raw signature) just before the thinking block's stop."""
    events = tool_turn(call_id, text)
    extra = [SignatureDelta(index=0, signature=seal or "")]
    if seal is not None:
        extra.append(UpstreamSeal(index=0, data=seal))
    return events[:4] + extra + events[4:]


class TestUpstreamSeal:
    """The upstream's own token for a thinking block travels in the envelope, keyed by the upstream
    that produced it, and comes back as Message.upstream_seal only to that upstream."""

    async def test_seal_goes_into_the_envelope_and_no_client_sees_it(self) -> None:
        st = stage()
        _, out = await run_stage(st, sealed_turn("call_s1", "ds-signature-1"),
                                 ctx=ctx_for("deepseek_anthropic", "dsa"))
        assert not any(isinstance(e, UpstreamSeal) for e in out)
        sigs = [e.signature for e in out if isinstance(e, SignatureDelta)]
        assert len(sigs) == 1 and "ds-signature-1" not in sigs[0]  # the raw token is replaced
        assert opened(st, sigs[0], "dsa") == Envelope(u="dsa", m="deepseek-v4-pro", r=REASONING, t=("call_s1",),
                                                      s="ds-signature-1")

    async def test_replay_restores_text_and_seal_for_the_same_upstream_only(self) -> None:
        st = stage()
        _, out = await run_stage(st, sealed_turn("call_s2", "ds-signature-2"), ctx=ctx_for("deepseek_anthropic", "dsa"))
        sig = next(e.signature for e in out if isinstance(e, SignatureDelta))
        ctx = ctx_for("deepseek_anthropic", "dsa")
        assistant = (await st.on_request(history(sig, call_id="call_s2"), ctx)).messages[1]
        assert assistant.reasoning == REASONING and assistant.upstream_seal == ("dsa", "ds-signature-2")
        assert not any(isinstance(p, ThinkingPart) for p in assistant.parts)
        other = ctx_for("deepseek_anthropic", "dsb")  # another upstream: neither text nor token
        assistant = (await st.on_request(history(sig, call_id="call_s2"), other)).messages[1]
        assert assistant.upstream_seal is None and "foreign_thinking" in what_lost(other)

    async def test_an_envelope_without_a_seal_still_opens(self) -> None:
        """Envelopes sealed before seals existed (and Chat upstreams' ones) restore the text, no token."""
        st = stage()
        old = st._keys.upstream("dsa").seal(Envelope(u="dsa", m="deepseek-v4-pro", r="old reasoning", t=("call_o",)))
        ctx = ctx_for("deepseek_anthropic", "dsa")
        assistant = (await st.on_request(history(old, call_id="call_o"), ctx)).messages[1]
        assert assistant.reasoning == "old reasoning" and assistant.upstream_seal is None
        assert ctx.fields["replay_rung"] == "envelope"

    async def test_anthropic_keeps_its_own_thinking_blocks_as_they_came(self) -> None:
        """keep_client_thinking (the real Anthropic API): a thinking block the client got from
        Anthropic itself goes back untouched; our envelope of its own block becomes that block
        again, in place: its exact text and the API's own signature."""
        ctx = ctx_for("anthropic", "claude")
        asked = msgspec.structs.replace(history("EqQBCkgIARAB-real-anthropic-signature", call_id="toolu_1"),
                                        thinking=ThinkingConfig(enabled=True))
        request = await stage().on_request(asked, ctx)
        assert request.messages[1].parts[0] == ThinkingPart(text="shown text",
                                                            signature="EqQBCkgIARAB-real-anthropic-signature")
        assert ctx.fields["replay_rung"] == "client" and not what_lost(ctx)
        st = stage()
        _, out = await run_stage(st, sealed_turn("toolu_2", "anthropic-sig"), ctx=ctx_for("anthropic", "claude"))
        sig = next(e.signature for e in out if isinstance(e, SignatureDelta))
        ctx = ctx_for("anthropic", "claude")
        asked = msgspec.structs.replace(history(sig, call_id="toolu_2"), thinking=ThinkingConfig(enabled=True))
        assistant = (await st.on_request(asked, ctx)).messages[1]
        assert assistant.parts[0] == ThinkingPart(text=REASONING, signature="anthropic-sig")
        assert assistant.upstream_seal is None and ctx.fields["replay_rung"] == "envelope" and not what_lost(ctx)

    async def test_anthropic_redacted_thinking_goes_back_only_to_its_upstream(self) -> None:
        """An upstream's redacted_thinking (a redacted BlockStart, its data as UpstreamSeal) is
        sealed with that upstream's key and marked redacted; the client's redacted_thinking of that
        envelope becomes the upstream's own block again, after the thinking block as they came.
        Another upstream (another Anthropic account, DeepSeek) gets neither, and a loss."""
        st = stage()
        events = [
            MessageStart(message_id="m1", model="claude-opus-4-7"),
            BlockStart(index=0, block="thinking"), ThinkingDelta(index=0, text=REASONING),
            SignatureDelta(index=0, signature="anthropic-sig"), UpstreamSeal(index=0, data="anthropic-sig"),
            BlockStop(index=0),
            BlockStart(index=1, block="thinking", redacted=True), SignatureDelta(index=1, signature="RDX"),
            UpstreamSeal(index=1, data="RDX"), BlockStop(index=1),
            BlockStart(index=2, block="tool_call", call_id="toolu_3", name="Bash"),
            ToolArgsDelta(index=2, fragment='{"command":"echo hi"}'), BlockStop(index=2),
            MessageStop(stop_reason="tool_use"),
        ]
        _, out = await run_stage(st, events, ctx=ctx_for("anthropic", "claude"))
        sigs = [e.signature for e in out if isinstance(e, SignatureDelta)]
        assert len(sigs) == 2 and all(s.startswith("gw2.") for s in sigs) and "RDX" not in str(out)
        assert opened(st, sigs[1], "claude").x and opened(st, sigs[1], "claude").s == "RDX"
        turn = history(sigs[0], call_id="toolu_3")
        parts = turn.messages[1].parts
        turn = msgspec.structs.replace(turn, messages=(turn.messages[0], msgspec.structs.replace(
            turn.messages[1], parts=(parts[0], ThinkingPart(text="", signature=sigs[1], redacted=True), *parts[1:])),
            *turn.messages[2:]))
        ctx = ctx_for("anthropic", "claude")
        assistant = (await st.on_request(turn, ctx)).messages[1]
        assert assistant.parts[:2] == (ThinkingPart(text=REASONING, signature="anthropic-sig"),
                                       ThinkingPart(text="", signature="RDX", redacted=True))
        assert not what_lost(ctx)
        for profile, upstream in (("anthropic", "claude_other_account"), ("deepseek_anthropic", "claude")):
            ctx = ctx_for(profile, upstream)
            assistant = (await st.on_request(turn, ctx)).messages[1]
            sent = [p for p in assistant.parts if isinstance(p, ThinkingPart)]
            assert all(p.signature != "RDX" for p in sent) and "redacted_thinking" in what_lost(ctx)
