"""The gateway's engine: ASGI app, stage contract, neutral model and events.

``pipeline:app`` is the ASGI callable (``hypercorn -k trio pipeline:app``); it is imported lazily
so that codecs and stages can import ``pipeline.*`` submodules without loading the app.
"""

from __future__ import annotations

from typing import Any

from pipeline.stage import RequestContext, Stage

__all__ = ["RequestContext", "Stage", "app"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from pipeline.app import app

        return app
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
