"""The stage contract defends itself: strict options, typed hooks, sync ``on_event``, no state on
``self``, one loss recorder, a lifecycle, and ``python -m pipeline stages``.

The broken stages are in ``tests/fixtures/custom_stage/mistakes.py``; the refusal at startup as
users start the gateway (hypercorn, ``python -m pipeline check``) is in ``tests/test_startup.py``.
"""

from __future__ import annotations

import gc
import re
import subprocess
import sys
import typing
from collections.abc import Sequence

import httpx
import msgspec
import pytest
import trio

from custom_stage import lifecycle
from custom_stage.mistakes import BareEvent, CountsInDict, Remembers
from custom_stage.redact import Redact
from pipeline import Stage, StageConfig
from pipeline.config import parse_config
from pipeline.errors import ConfigError
from pipeline.events import Event, TextDelta
from pipeline.losses import LossRecorder
from pipeline.model import ChatRequest, Loss
from pipeline.registry import STAGES as BUILTIN
from pipeline.registry import build_pipelines, resolve_stage
from pipeline.stage import Outbox, RequestContext
from pipeline.testing import check_stage, make_context, run_stage, sample_events, sample_request
from tests.conftest import ROOT
from tests.e2e.serving import open_gateway
from tests.config_helpers import BASE



def build(stages: str):
    text = BASE + f"    stages: {stages}\n"
    return build_pipelines(parse_config(text, env={}), env={})


def refusal(stages: str) -> str:
    with pytest.raises(ConfigError) as info:
        build(stages)
    return str(info.value)


class TestStrictOptions:
    def test_plain_struct_config_refuses_an_unknown_key(self) -> None:
        """A Config that is a plain msgspec.Struct (not forbid_unknown_fields) still refuses a typo."""
        line = refusal("[{'custom_stage.mistakes:LooseConfig': {paterns: ['x']}}]")
        assert line == ("pipeline 'p' stage 0 (custom_stage.mistakes:LooseConfig): Object contains unknown "
                        "field `paterns` (options: patterns)")

    def test_stage_without_options_refuses_any(self) -> None:
        """A stage with no Config (NoConfig) refuses every key, naming that it takes none."""
        line = refusal("[{'custom_stage.mistakes:Remembers': {size: 3}}]")
        assert line.endswith("Object contains unknown field `size` (options: none)")

    def test_config_not_a_struct_is_refused(self) -> None:
        """A Config that is not a msgspec Struct is refused at startup, not on first use."""

        class Shout(Stage):
            name = "shout"
            Config = dict  # type: ignore[assignment]

        from pipeline.registry import stage_options
        with pytest.raises(ConfigError, match="Config must be a pipeline.StageConfig"):
            stage_options(Shout, {}, "here")

    def test_every_builtin_config_is_a_stage_config(self) -> None:
        """Built-in stages declare their options on StageConfig: frozen, strict."""
        required = {"describe_images": {"upstream": {"type": "simulator"}}}  # options without a default
        for name in BUILTIN:
            config = resolve_stage(name).Config
            assert issubclass(config, StageConfig), name
            with pytest.raises(msgspec.ValidationError, match="unknown field"):
                msgspec.convert({"no_such_option": 1, **required.get(name, {})}, type=config)
            with pytest.raises(AttributeError):
                config(**required.get(name, {})).no_such = 1  # type: ignore[attr-defined]

    def test_stage_config_is_frozen_and_strict(self) -> None:
        """A StageConfig subclass is immutable and refuses unknown keys without saying so itself."""

        class Options(StageConfig, kw_only=True):
            size: int = 1

        with pytest.raises(msgspec.ValidationError, match="unknown field `colour`"):
            msgspec.convert({"colour": "blue"}, type=Options)
        with pytest.raises(AttributeError):
            Options().size = 2  # type: ignore[misc]


class TestTypedHooks:
    def test_hooks_are_typed_methods(self) -> None:
        """Each hook of the base class is a method with the documented signature."""
        names = {**vars(sys.modules["pipeline.stage"]), "MemoryReceiveChannel": trio.MemoryReceiveChannel}
        hints = {name: typing.get_type_hints(getattr(Stage, name), globalns=names)
                 for name in ("on_request", "on_event", "on_end", "on_events", "open", "aclose")}
        assert hints["on_request"] == {"request": ChatRequest, "ctx": RequestContext, "return": ChatRequest}
        assert hints["on_event"] == {"event": Event, "ctx": RequestContext, "return": Sequence[Event]}
        assert hints["on_end"] == {"ctx": RequestContext, "return": Sequence[Event]}
        # The outbox is a memory channel, or the channel that runs the per-event stages after this
        # one (flow._Fused, the Sink): typed as the protocol all three meet.
        assert hints["on_events"] == {"inbox": trio.MemoryReceiveChannel[Event], "outbox": Outbox,
                                      "ctx": RequestContext, "return": type(None)}
        assert hints["open"] == hints["aclose"] == {"return": type(None)}

    def test_only_overridden_hooks_are_used(self) -> None:
        """A hook left as the base method is not on the request or response path."""
        assert (Stage.has_request_hook(), Stage.has_event_hook(), Stage.has_end_hook(), Stage.has_task_hook()) \
            == (False, False, False, False)
        assert (Redact.has_request_hook(), Redact.has_event_hook(), Redact.has_end_hook()) == (True, True, False)


class TestHookForms:
    @pytest.mark.parametrize(("attr", "message"), [
        ("AsyncOnEvent", "on_event must be synchronous (def, not async def); for async work use the task form "
                         "on_events (async def on_events(inbox, outbox, ctx))"),
        ("AsyncOnEnd", "on_end must be synchronous (def, not async def); for async work use the task form on_events"),
        ("SyncOnRequest", "on_request must be async def"),
    ])
    def test_wrong_hook_form_is_refused_at_build(self, attr: str, message: str) -> None:
        """One line naming the pipeline, the stage and the hook, before any request."""
        assert refusal(f"['custom_stage.mistakes:{attr}']") == \
            f"pipeline 'p' stage 0 (custom_stage.mistakes:{attr}): {message}"


class TestCheckStage:
    async def test_list_on_self_appended_to_is_caught(self) -> None:
        """State mutated in place on self (a list appended to) fails, naming the attribute."""
        with pytest.raises(AssertionError, match=r"attribute 'seen' changed while handling one request.*ctx\.state"):
            await check_stage(Remembers(None, stage_id="t.0.remembers"))

    async def test_dict_on_self_filled_by_request_hook_is_caught(self) -> None:
        with pytest.raises(AssertionError, match="attribute 'stats' changed"):
            await check_stage(CountsInDict(None, stage_id="t.0.counts"))

    async def test_bare_event_return_is_caught(self) -> None:
        """on_event returning an event, not a sequence of events, fails with the fix in the message."""
        with pytest.raises(AssertionError, match=r"on_event must return a sequence of events, got MessageStart "
                                                 r"\(return \(MessageStart\(...\),\)"):
            await check_stage(BareEvent(None, stage_id="t.0.bare"))

    async def test_shared_attributes_are_declared_not_hidden(self) -> None:
        """A cache on self is allowed only when the stage declares it in shared_attributes."""

        class Memo(Remembers):
            shared_attributes = frozenset({"seen"})

        await check_stage(Memo(None, stage_id="t.0.memo"))

    async def test_the_readme_example_conforms(self) -> None:
        """The README's custom stage passes the conformance suite and masks both ways."""
        stage = Redact(Redact.Config(patterns=[r"sk-\w+"]), stage_id="t.0.redact")
        await check_stage(stage)
        request, out = await run_stage(stage, sample_events("key sk-abc"), request=sample_request("my sk-xyz"))
        assert request.messages[0].parts[0].text == "my [redacted]"
        assert [e.text for e in out if isinstance(e, TextDelta)] == ["key [redacted]"]


class TestLossRecorder:
    def test_every_loss_goes_through_the_one_recorder(self) -> None:
        """No module of the gateway builds a Loss or appends to a losses list but pipeline/losses.py."""
        offenders = []
        for package in ("pipeline", "stages", "upstreams"):
            for path in sorted((ROOT / package).rglob("*.py")):
                if path == ROOT / "pipeline" / "losses.py":
                    continue
                for n, line in enumerate(path.read_text().splitlines(), 1):
                    if re.search(r"(?<!class )\bLoss\(|losses\.append\(", line):
                        offenders.append(f"{path.relative_to(ROOT)}:{n}")
        assert offenders == []

    def test_recorder_appends_to_ctx_losses_without_holding_ctx(self) -> None:
        """ctx.loss_recorder() records into ctx.losses (what the log line and metric read) and
        keeps no reference to the context, so per-request state may hold it."""
        ctx = make_context()
        recorder = ctx.loss_recorder()
        assert isinstance(recorder, LossRecorder)
        ctx.lose("a", "first")
        recorder("b", "second")
        assert ctx.losses == [Loss("a", "first"), Loss("b", "second")]
        assert ctx not in gc.get_referents(recorder) and ctx.loser is not None  # the earlier name stays

    def test_truncating_ctx_losses_drops_what_the_recorder_recorded(self) -> None:
        """A retry truncates ctx.losses in place: the recorder writes to that same list."""
        ctx = make_context()
        recorder = ctx.loss_recorder()
        recorder("x")
        del ctx.losses[:]
        recorder("y")
        assert ctx.losses == [Loss("y", "")]


class TestLifecycle:
    async def test_gateway_opens_stages_at_startup_and_closes_them_at_shutdown(self) -> None:
        """open() runs before the first request, aclose() when the server stops."""
        lifecycle.EVENTS.clear()
        yaml = BASE + "    stages: ['custom_stage.lifecycle:Pooled']\n"
        async with open_gateway(yaml) as (url, _gateway):
            assert lifecycle.EVENTS == ["open p.0.pooled"]
            async with httpx.AsyncClient() as client:
                resp = await client.post(f"{url}/v1/chat/completions", json={
                    "model": "m", "messages": [{"role": "user", "content": "SIM:text hi"}]})
            assert resp.status_code == 200, resp.text
        assert lifecycle.EVENTS == ["open p.0.pooled", "aclose p.0.pooled"]

    async def test_failing_open_refuses_startup_naming_the_stage(self) -> None:
        from pipeline.app import Gateway

        gateway = Gateway(parse_config(BASE + "    stages: [{'custom_stage.lifecycle:Pooled': {fail_open: 'no disk'}}]\n",
                                       env={}))
        with pytest.raises(ConfigError, match=r"^stage 'p.0.pooled': cannot open: OSError: no disk$"):
            await gateway.startup()
        await gateway.shutdown()


class TestStagesCommand:
    def test_lists_every_builtin_stage_with_options_and_defaults(self) -> None:
        """`python -m pipeline stages`: one block per built-in stage, each option with its default."""
        proc = subprocess.run([sys.executable, "-m", "pipeline", "stages"], capture_output=True, text=True,
                              cwd=ROOT, timeout=30)
        assert proc.returncode == 0, proc.stderr
        blocks = proc.stdout.strip().split("\n\n")
        assert [b.splitlines()[0].split()[0] for b in blocks] == sorted(BUILTIN)
        for block in blocks:
            name = block.splitlines()[0].split()[0]
            config = resolve_stage(name).Config
            for field in msgspec.structs.fields(config):
                line = f"    {field.encode_name}: "
                if field.required:
                    shown = " (required)"
                else:
                    default = field.default if field.default is not msgspec.NODEFAULT else field.default_factory()
                    shown = " = " + msgspec.json.encode(default).decode()
                assert any(text.startswith(line) and text.endswith(shown) for text in block.splitlines()), (name, field.name)
        assert "        Output budget sent when the client sends none" in proc.stdout  # the field's comment

    def test_lists_an_operator_stage_by_module_attr(self) -> None:
        proc = subprocess.run([sys.executable, "-m", "pipeline", "stages", "custom_stage.redact:Redact"],
                              capture_output=True, text=True, cwd=ROOT, timeout=30,
                              env={"PYTHONPATH": str(ROOT / "tests" / "fixtures"), "PATH": ""})
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines()[:4] == [
            "custom_stage.redact:Redact (custom_stage.redact:Redact)",
            "  hooks: on_request, on_event", "  options:", "    patterns: list[str] (required)"]
