"""Shared test fixtures: the fixtures directory on sys.path; the simulator server process
(started once per session, reset to a fresh simulator for each test that uses ``sim``); each test
starts with what the process's thinking_filter stages share, and the token calibration, forgotten."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"

# The embedded store's default directory (pipeline/store): one for the session, never the repo's
# ./gateway-data; gateways started as processes inherit it.
os.environ["GATEWAY_DATA_DIR"] = tempfile.mkdtemp(prefix="gw-test-data-")
atexit.register(shutil.rmtree, os.environ["GATEWAY_DATA_DIR"], True)

# The example operator stage is imported as `custom_stage.redact:Redact`.
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))


@pytest.fixture(scope="session")
def sim_process() -> Iterator[object]:
    """``python -m upstreams.simulator`` on 127.0.0.1 (one process per session), requiring
    ``SIM_KEY``, which the gateway reads from ``SIM_KEY_ENV``."""
    from tests.e2e.serving import SIM_KEY, SIM_KEY_ENV
    from upstreams.simulator import SimConfig
    from upstreams.simulator.testing import SimulatorProcess

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SIM_KEY_ENV, SIM_KEY)
        with SimulatorProcess(SimConfig(api_key=SIM_KEY)) as process:
            yield process


@pytest.fixture
def sim(sim_process):
    """The simulator server, reset to a fresh simulator with the startup config (``sim.reset(
    verify_replay=True)`` and the like change it for one test)."""
    sim_process.reset()
    return sim_process


@pytest.fixture(autouse=True)
def fresh_thinking_state() -> None:
    """Forget the reasoning stores and random secrets earlier tests' thinking_filter stages shared
    (a stage already built keeps its own)."""
    from pipeline.tokens import CALIBRATOR
    from stages.thinking_filter import reset_shared_state

    reset_shared_state()
    CALIBRATOR.reset()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server for the session (``tests/redis_server.py``); tests keep apart by key prefix."""
    from tests.redis_server import redis_server

    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url
