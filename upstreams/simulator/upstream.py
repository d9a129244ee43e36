"""The ``simulator`` upstream type: the ``openai_chat`` upstream wired to the in-process simulator.

Every byte goes through the real Chat encoder, HTTP client, SSE framing and decoder; only the
socket is replaced by ``SimulatorTransport``. Options under ``options:`` are the simulator's
``SimConfig`` fields.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from pipeline.upstream import UpstreamConfig
from upstreams.openai_chat import OpenAIChatUpstream
from upstreams.simulator.config import SimConfig
from upstreams.simulator.engine import Simulator
from upstreams.simulator.transport import SimulatorTransport


class SimulatorUpstream(OpenAIChatUpstream):
    type_name: ClassVar[str] = "simulator"

    def __init__(self, config: UpstreamConfig, *, upstream_id: str) -> None:
        if not config.base_url:
            config = msgspec.structs.replace(config, base_url="http://simulator.invalid")
        if config.profile == "openai":
            config = msgspec.structs.replace(config, profile="deepseek")
        if not config.models:
            models = {"default": "deepseek-v4-pro", "*haiku*": "deepseek-v4-flash", "*flash*": "deepseek-v4-flash"}
            config = msgspec.structs.replace(config, models=models)
        self.simulator = Simulator(msgspec.convert(config.options, type=SimConfig))
        self.transport = SimulatorTransport(self.simulator)
        super().__init__(config, upstream_id=upstream_id, transport=self.transport)


__all__ = ["SimulatorUpstream"]
