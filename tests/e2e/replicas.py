"""Several gateway processes on one store, for the multi-replica tests: ``hypercorn -k trio
pipeline:app`` each (``tests/resilience/gateway_process.py``), one pipelines file for all, one
``GATEWAY_THINKING_SECRET``, the simulator server as the upstream; a replica can be restarted
(a new process: nothing of the old one's memory)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.e2e.serving import SIM
from tests.resilience.gateway_process import GatewayProcess, open_gateway_process
from upstreams.simulator.testing import SimulatorProcess

SECRET = {"GATEWAY_THINKING_SECRET": "the secret every replica shares"}
# A pipelines file on one Redis: ``%s`` is the store's url, the key prefix, then the pipelines.
CONFIG = """
store: {backend: redis, url: '%s', key_prefix: '%s'}
server: {log_level: warning}
upstreams:
  sim: {%s}
pipelines:
%s"""


def pipeline(name: str, client: str) -> str:
    """One pipeline of ``client`` with the shipped stages, to the simulator, for ``CONFIG``."""
    return f"  {name}:\n    client: {client}\n    stages: [thinking_filter, token_budget, tool_ids]\n    upstream: sim\n"


class Replicas:
    def __init__(self, stack: ExitStack, tmp: Path, config: str, env: dict[str, str], count: int) -> None:
        self._stack, self._tmp, self._config, self._env = stack, tmp, config, env
        self._started = 0
        self.processes = [self._start() for _ in range(count)]

    def _start(self) -> GatewayProcess:
        folder = self._tmp / f"replica{self._started}"
        self._started += 1
        folder.mkdir()
        return self._stack.enter_context(open_gateway_process(folder, self._config, self._env))

    def restart(self, i: int) -> None:
        old = self.processes[i]
        old.proc.terminate()
        old.proc.wait(10)
        self.processes[i] = self._start()

    def url(self, turn: int) -> str:
        """The replica of ``turn``: round robin, so no two turns in a row on one."""
        return self.processes[turn % len(self.processes)].url


@contextmanager
def replicas(tmp: Path, sim: SimulatorProcess, redis_url: str, prefix: str, pipelines: str,
             count: int = 3) -> Iterator[Replicas]:
    config = CONFIG % (redis_url, prefix, SIM, pipelines)
    with ExitStack() as stack:
        yield Replicas(stack, tmp, config, {**SECRET, "SIM_URL": sim.url}, count)
