"""The one loss recorder: how stages and codecs note what a translation cannot carry.

A loss is a ``pipeline.model.Loss(what, detail)``: ``what`` a short kind (``"image"``,
``"max_tokens_clamped"``), counted by ``gateway_losses_total{kind}``; ``detail`` a sentence for the
``request_finished`` log line. Everything that records one goes through ``record`` (stages call
``ctx.lose(what, detail)``, codec readers their ``lose``), so the list is the only place losses
live and the log line and metric see every one.

``LossRecorder`` is ``record`` bound to one list: a callable that does not hold the
``RequestContext``, for per-request state kept in ``ctx.state`` (a bound ``ctx.lose`` there would
make a reference cycle that only the garbage collector frees). It appends to the list it was
given, so a retry that truncates ``ctx.losses`` in place also drops what the recorder recorded.
"""

from __future__ import annotations

from pipeline.model import Loss


def record(losses: list[Loss], what: str, detail: str = "") -> None:
    """Append the loss ``what`` (its kind) with ``detail`` to ``losses``."""
    losses.append(Loss(what, detail))


class LossRecorder:
    """``record`` bound to one list: ``recorder(what, detail)``."""

    __slots__ = ("losses",)

    def __init__(self, losses: list[Loss] | None = None) -> None:
        self.losses: list[Loss] = [] if losses is None else losses

    def __call__(self, what: str, detail: str = "") -> None:
        record(self.losses, what, detail)


__all__ = ["LossRecorder", "record"]
