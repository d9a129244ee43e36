"""A DeepSeek-faithful simulator upstream: offline default for the demo, upstream of most tests.

``Simulator`` (sans-IO engine) speaks DeepSeek's Chat Completions API, strictly: DeepSeek's
400s, thinking first, scripted tool calls (``directives``), faults. Serve it in-process with
``SimulatorTransport`` (httpx) or over HTTP with ``serve_simulator`` / ``python -m
upstreams.simulator``. The ``simulator`` upstream type of pipelines.yaml is ``upstream``'s
``SimulatorUpstream`` (not imported here: the server needs no gateway upstream).
"""

from __future__ import annotations

from upstreams.simulator.config import ScheduledFault, SimConfig
from upstreams.simulator.engine import SimResponse, Simulator
from upstreams.simulator.server import SimulatorApp, serve_simulator
from upstreams.simulator.transport import ConnectionRecord, SimulatorTransport

__all__ = [
    "ConnectionRecord",
    "ScheduledFault",
    "SimConfig",
    "SimResponse",
    "Simulator",
    "SimulatorApp",
    "SimulatorTransport",
    "serve_simulator",
]
