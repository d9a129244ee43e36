"""Public test helpers for stage authors (ours and operators'), like ``structlog.testing``.

- ``make_context()``: a RequestContext for tests; ``make_attempt(profile)`` aims it at a stand-in
  upstream with that profile (``ctx.aim(make_attempt(...))``), as the retry loop does.
- ``run_stage(stage, events, request=..., ctx=...)``: run the request hook, then push ``events``
  through the stage's response hook (sync, with ``on_end`` at the end of input, or task form);
  returns (request, emitted events).
- ``check_stage(stage)``: the conformance suite: ends when input ends, passes unknown events
  through, returns a sequence of events from ``on_event`` / ``on_end``, leaves the instance
  unchanged (no attribute rebound, and nothing it holds mutated in place: a list appended to, a
  dict filled, an object's attribute set), leaves no reference cycle through the context, lets
  cancellation through promptly.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import msgspec
import trio

from pipeline.attempt import Attempt
from pipeline.events import BlockStart, BlockStop, Event, Heartbeat, MessageStart, MessageStop, TextDelta, Usage
from pipeline.model import ChatRequest, Message, TextPart
from pipeline.profiles import ModelLimits, Profile
from pipeline.stage import DEFAULT_PROFILE, RequestContext, Stage


def make_context(**kwargs: Any) -> RequestContext:
    defaults: dict[str, Any] = {"request_id": "test", "pipeline_id": "test", "client": "chat"}
    defaults.update(kwargs)
    return RequestContext(**defaults)


def make_attempt(profile: Profile | None = None, *, upstream_id: str = "", model: str = "test-model",
                 limits: ModelLimits | None = None) -> Attempt:
    """An attempt at a stand-in upstream: ``profile`` (default: neutral), ``model``, ``limits``
    (default: the profile's), no token counter."""
    profile = profile or DEFAULT_PROFILE
    limits = limits or ModelLimits(context_window=profile.context_window, max_output_tokens=profile.max_output_tokens)
    return Attempt(upstream_id=upstream_id or profile.name, profile=profile, model=model, limits=limits)


def sample_request(text: str = "hello", **kwargs: Any) -> ChatRequest:
    return ChatRequest(model="test-model", messages=(Message(role="user", parts=(TextPart(text),)),), **kwargs)


def sample_events(text: str = "hi") -> list[Event]:
    return [
        MessageStart(message_id="m1", model="test-model"),
        BlockStart(index=0, block="text"),
        TextDelta(index=0, text=text),
        BlockStop(index=0),
        Usage(input_tokens=3, output_tokens=1),
        MessageStop(stop_reason="end_turn"),
    ]


async def run_stage(stage: Stage, events: Sequence[Event], *, request: ChatRequest | None = None,
                    ctx: RequestContext | None = None) -> tuple[ChatRequest, list[Event]]:
    """Run one stage: request hook, then the response hook over ``events``."""
    ctx = ctx or make_context()
    request = request or sample_request()
    if type(stage).has_request_hook():
        request = await stage.on_request(request, ctx)
    out: list[Event] = []
    if type(stage).has_event_hook():
        for event in events:
            out.extend(_events(stage, "on_event", stage.on_event(event, ctx)))
        if type(stage).has_end_hook():
            out.extend(_events(stage, "on_end", stage.on_end(ctx)))
    elif type(stage).has_task_hook():
        send_in, recv_in = trio.open_memory_channel[Event](0)
        send_out, recv_out = trio.open_memory_channel[Event](0)

        async def feed() -> None:
            with send_in:
                for event in events:
                    await send_in.send(event)

        async def drain() -> None:
            async for event in recv_out:
                out.append(event)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(feed)
            nursery.start_soon(drain)
            nursery.start_soon(stage.on_events, recv_in, send_out, ctx)
    else:
        out = list(events)
    return request, out


def _events(stage: Stage, hook: str, returned: object) -> Sequence[Event]:
    """``returned`` if it is a sequence of events; else an AssertionError saying what the hook returned."""
    if isinstance(returned, Sequence) and not isinstance(returned, (str, bytes)) \
            and all(isinstance(e, Event) for e in returned):
        return returned
    hint = (f" (return ({type(returned).__name__}(...),): a sequence, even of one)"
            if isinstance(returned, Event) else "")
    raise AssertionError(f"{stage.id}: {hook} must return a sequence of events, got {type(returned).__name__}{hint}")


_ATOMS = (str, bytes, int, float, complex, bool, type(None), re.Pattern)


def _fingerprint(value: Any, seen: set[int], depth: int = 0) -> Any:
    """A comparable picture of ``value`` and what it holds (containers, structs, objects' attributes),
    to depth 8; shared objects are entered once. Opaque values (functions, C objects) by identity."""
    if isinstance(value, _ATOMS):
        return value
    if id(value) in seen or depth > 8:
        return ("seen", id(value))
    seen.add(id(value))
    kind = type(value).__name__
    if isinstance(value, Mapping):
        return (kind, id(value), [(_fingerprint(k, seen, depth + 1), _fingerprint(v, seen, depth + 1))
                                  for k, v in list(value.items())])
    if isinstance(value, (list, tuple, set, frozenset)) or type(value).__name__ == "deque":
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return (kind, id(value), [_fingerprint(v, seen, depth + 1) for v in items])
    if isinstance(value, msgspec.Struct):
        fields = {f: getattr(value, f, None) for f in value.__struct_fields__}
    else:
        fields = dict(getattr(value, "__dict__", {}))
        for cls in type(value).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                if isinstance(slot, str) and slot not in ("__dict__", "__weakref__") and hasattr(value, slot):
                    fields[slot] = getattr(value, slot)
    if not fields:
        return (kind, id(value))
    return (kind, id(value), sorted((k, _fingerprint(v, seen, depth + 1)) for k, v in fields.items()))


def _changed_attribute(stage: Stage, before: dict[str, Any]) -> str | None:
    after = _snapshot(stage)
    for name in sorted(before.keys() | after.keys()):
        if before.get(name) != after.get(name):
            return name
    return None


def _snapshot(stage: Stage) -> dict[str, Any]:
    """Each attribute of the stage fingerprinted, but ``pipeline`` (the pipeline it belongs to) and
    the ``shared_attributes`` it declares (a cache is meant to change)."""
    seen: set[int] = set()
    skip = {"pipeline", *type(stage).shared_attributes}
    return {k: _fingerprint(v, seen) if k not in skip else id(v) for k, v in vars(stage).items()}


class _Unknown(Event, frozen=True, tag="test_unknown_event"):
    note: str = "unknown to every stage"


@contextmanager
def _cycle_check() -> Iterator[list[RequestContext]]:
    """Collects the RequestContexts that only the cycle collector would free, made inside."""
    gc.collect()
    enabled, flags = gc.isenabled(), gc.get_debug()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    leaked: list[RequestContext] = []
    try:
        yield leaked
        gc.collect()
        leaked.extend(o for o in gc.garbage if isinstance(o, RequestContext))
    finally:
        gc.garbage.clear()
        gc.set_debug(flags)
        if enabled:
            gc.enable()


async def check_stage(stage: Stage, *, request: ChatRequest | None = None) -> None:
    """Assert the stage contract; raises AssertionError naming the rule broken."""
    before = _snapshot(stage)
    unknown = _Unknown()
    events = [*sample_events()[:1], unknown, Heartbeat(), *sample_events()[1:]]
    with trio.fail_after(5), _cycle_check() as leaked:
        _, out = await run_stage(stage, events, request=request, ctx=make_context())
    assert not leaked, (f"{stage.id}: per-request state refers back to the RequestContext (a reference cycle the "
                        "garbage collector must find: pauses under load); "
                        "keep callables like ctx.loss_recorder() there")
    assert unknown in out, f"{stage.id}: an unknown event kind must pass through unchanged"
    assert isinstance(out[-1], MessageStop), f"{stage.id}: the stream must end with MessageStop"
    changed = _changed_attribute(stage, before)
    assert changed is None, (f"{stage.id}: attribute {changed!r} changed while handling one request: concurrent "
                             "requests share the stage, so per-request state must live in ctx.state, not on self")
    if type(stage).has_task_hook():
        # Cancellation: a stage waiting on its inbox must go away promptly when cancelled.
        send_in, recv_in = trio.open_memory_channel[Event](0)
        send_out, _recv_out = trio.open_memory_channel[Event](0)
        with trio.move_on_after(1) as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(stage.on_events, recv_in, send_out, make_context())
                await trio.sleep(0.01)
                nursery.cancel_scope.cancel()
        assert not scope.cancelled_caught, f"{stage.id}: did not honour cancellation"
        send_in.close()


__all__ = ["check_stage", "make_context", "run_stage", "sample_events", "sample_request"]
