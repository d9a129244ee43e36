"""The gateway's engine: ASGI app, stage contract, neutral model and events.

``pipeline:app`` is the ASGI callable (``hypercorn -k trio pipeline:app``). It is a thin proxy
that imports ``pipeline.app`` on first use, so codecs and stages can import ``pipeline.*``
submodules without loading (or cyclically importing) the whole app. Imported by hypercorn's trio
worker, it applies ``pipeline.hypercorn_patch`` first (before the worker starts serving).
"""

from __future__ import annotations

import sys
from typing import Any

from pipeline.stage import RequestContext, Stage, StageConfig

if "hypercorn.trio.run" in sys.modules:  # served by hypercorn's trio worker (or in-process serve)
    from pipeline import hypercorn_patch

    hypercorn_patch.apply()

__all__ = ["RequestContext", "Stage", "StageConfig", "app"]


class _App:
    __slots__ = ("_app",)

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            try:
                from pipeline.app import app as real
            except Exception as exc:  # noqa: BLE001 -- a failed start, never a server answering 500s
                from pipeline import fatal

                fatal.exit_startup(fatal.one_line(exc))
            self._app = real
        await self._app(scope, receive, send)


app = _App()
