"""Process-wide counters rendered as Prometheus text at ``GET /metrics``.

Labels are low-cardinality (pipeline, upstream, status, error code, loss key, replay rung).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

_counters: dict[str, Counter[tuple[tuple[str, str], ...]]] = {}
_HELP = {
    "gateway_requests_total": "Requests finished, by pipeline, upstream, status and error code.",
    "gateway_losses_total": "Translation losses recorded, by pipeline and loss key.",
    "gateway_tokens_total": "Tokens reported by upstreams, by pipeline and kind.",
    "gateway_reasoning_replay_total": "Which rung of the reasoning-replay ladder served each request.",
    "gateway_reasoning_replay_turns_total": "Which rung replayed each earlier tool turn of a request.",
    "gateway_routed_total": "Requests of pipelines with routes, by the routing rule that served them.",
}


def inc(name: str, labels: dict[str, str], value: int = 1) -> None:
    _add(name, tuple(sorted(labels.items())), value)


def get(name: str, labels: dict[str, str]) -> int:
    return _counters.get(name, Counter())[tuple(sorted(labels.items()))]


def observe(ctx: Any, outcome: Any) -> None:
    """One finished request. The label tuples are written in ``inc``'s sorted order directly."""
    pipe = ("pipeline", ctx.pipeline_id)
    _add("gateway_requests_total", (("error_code", outcome.error_code or ""), pipe,
                                    ("status", str(outcome.status)), ("upstream", ctx.upstream_id)))
    for loss in ctx.losses:
        _add("gateway_losses_total", (pipe, ("what", loss.what)))
    for kind, value in (("input", outcome.input_tokens), ("output", outcome.output_tokens),
                        ("cached", outcome.cached_tokens), ("reasoning", outcome.reasoning_tokens)):
        if value:
            _add("gateway_tokens_total", (("kind", kind), pipe), value)
    route = ctx.fields.get("route")
    if route:
        _add("gateway_routed_total", (pipe, ("route", str(route))))
    rung = ctx.fields.get("replay_rung")
    if rung:
        _add("gateway_reasoning_replay_total", (pipe, ("rung", str(rung))))
    turns = ctx.fields.get("replay_turns")
    if turns:
        for rung, n in turns.items():
            _add("gateway_reasoning_replay_turns_total", (pipe, ("rung", rung)), n)


def _add(name: str, key: tuple[tuple[str, str], ...], value: int = 1) -> None:
    counter = _counters.get(name)
    if counter is None:
        counter = _counters[name] = Counter()
    counter[key] += value


def render() -> bytes:
    lines: list[str] = []
    for name, counter in sorted(_counters.items()):
        lines.append(f"# HELP {name} {_HELP.get(name, name)}")
        lines.append(f"# TYPE {name} counter")
        for labels, value in sorted(counter.items()):
            label_text = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.append(f"{name}{{{label_text}}} {value}")
    return ("\n".join(lines) + "\n").encode()


__all__ = ["get", "inc", "observe", "render"]
