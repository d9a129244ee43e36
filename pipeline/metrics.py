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
}


def inc(name: str, labels: dict[str, str], value: int = 1) -> None:
    _counters.setdefault(name, Counter())[tuple(sorted(labels.items()))] += value


def get(name: str, labels: dict[str, str]) -> int:
    return _counters.get(name, Counter())[tuple(sorted(labels.items()))]


def observe(ctx: Any, outcome: Any) -> None:
    base = {"pipeline": ctx.pipeline_id}
    inc("gateway_requests_total", {**base, "upstream": ctx.upstream_id, "status": str(outcome.status),
                                   "error_code": outcome.error_code or ""})
    for loss in ctx.losses:
        inc("gateway_losses_total", {**base, "what": loss.what})
    for kind in ("input", "output", "cached", "reasoning"):
        value = getattr(outcome, f"{kind}_tokens")
        if value:
            inc("gateway_tokens_total", {**base, "kind": kind}, value)
    rung = ctx.fields.get("replay_rung")
    if rung:
        inc("gateway_reasoning_replay_total", {**base, "rung": str(rung)})


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
