"""Helpers for tests that drive or inspect the simulator (public, like ``pipeline.testing``).

``sse_chunks`` decodes Chat Completions SSE bytes into JSON chunks (``"[DONE]"`` kept as a
string, undecodable data lines as ``bytes``); ``accumulate`` folds them into the answer a client
would see; ``chat_tools`` turns Anthropic or Responses tool definitions (as found in the
captures) into the Chat Completions function tools a gateway would send upstream.
``SimulatorProcess`` runs ``python -m upstreams.simulator --control`` as a subprocess on
127.0.0.1 (port 0) and drives its ``/_sim/`` endpoints: reset to a ``SimConfig``, the received
request bodies, the chat request count, the connection records.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import httpx
import msgspec

from pipeline.sse import SseDecoder
from upstreams.simulator.config import SimConfig
from upstreams.simulator.transport import ConnectionRecord

_DECODE = msgspec.json.Decoder()
# The tree this module is in: the subprocess runs this code, whatever the caller's directory.
_TREE = Path(__file__).resolve().parents[2]

# How a freeform (custom) tool reaches a Chat upstream: one string parameter (PROTOCOLS.md §5).
FREEFORM_PARAMETERS = {"type": "object", "properties": {"input": {
    "type": "string", "description": "raw input matching the grammar"}},
    "required": ["input"]}


def sse_chunks(pieces: Iterable[bytes]) -> list[Any]:
    """Decode SSE pieces: JSON chunks as dicts, ``"[DONE]"``, bad data lines as bytes."""
    decoder = SseDecoder()
    frames = []
    for piece in pieces:
        frames += decoder.feed(piece)
    frames += decoder.close()
    out: list[Any] = []
    for frame in frames:
        if frame.data == b"[DONE]":
            out.append("[DONE]")
            continue
        try:
            out.append(_DECODE.decode(frame.data))
        except msgspec.DecodeError:
            out.append(frame.data)
    return out


def accumulate(chunks: list[Any], reasoning_field: str = "reasoning_content") -> dict[str, Any]:
    """Fold chunks into ``{reasoning, content, calls: [{id, name, arguments}], finish, usage}``.

    Tool-call fragments are keyed on ``index`` (never on ``id``), as a client must.
    """
    reasoning, content = [], []
    calls: dict[int, dict[str, str]] = {}
    finish = usage = None
    for chunk in chunks:
        if not isinstance(chunk, dict):
            continue
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            reasoning.append(delta.get(reasoning_field) or "")
            content.append(delta.get("content") or "")
            for frag in delta.get("tool_calls") or ():
                call = calls.setdefault(frag["index"], {"id": "", "name": "", "arguments": ""})
                call["id"] = frag.get("id") or call["id"]
                fn = frag.get("function") or {}
                call["name"] = fn.get("name") or call["name"]
                call["arguments"] += fn.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    return {"reasoning": "".join(reasoning), "content": "".join(content),
            "calls": [calls[i] for i in sorted(calls)], "finish": finish, "usage": usage}


def chat_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Anthropic (``input_schema``) or Responses (``function`` / ``custom``) tools → Chat tools.

    Hosted tools (``web_search``, ``tool_search``) and ``namespace`` groups are skipped.
    """
    out = []
    for tool in tools:
        kind = tool.get("type")
        if "input_schema" in tool:
            params = tool["input_schema"]
        elif kind == "function":
            params = tool.get("parameters") or {}
        elif kind == "custom":
            params = FREEFORM_PARAMETERS
        else:
            continue
        fn = {"name": tool["name"], "description": tool.get("description", ""),
              "parameters": params}
        out.append({"type": "function", "function": fn})
    return out


class SimulatorProcess:
    """The simulator as its own process; use as ``with SimulatorProcess(config) as sim:``.

    Args:
        config: the startup ``SimConfig`` (``reset()`` with no argument returns to it).
        args: more command-line flags (``--fault-on``, ``--verbose``, ...).
        env: the child's environment (default: this one's).

    Attributes:
        url: ``http://127.0.0.1:PORT`` once started (the upstream's ``base_url``).
    """

    def __init__(self, config: SimConfig | None = None, *, args: Sequence[str] = (),
                 env: dict[str, str] | None = None, startup_timeout_s: float = 20.0) -> None:
        self.config = config or SimConfig()
        self._current = self.config
        self.args = list(args)
        self.env = env
        self.startup_timeout_s = startup_timeout_s
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._http: httpx.Client | None = None

    def start(self) -> str:
        """Start the process and wait for its ``listening on`` line; returns the URL."""
        self._stderr = tempfile.TemporaryFile()
        command = [sys.executable, "-m", "upstreams.simulator", "--port", "0", "--control",
                   "--options", msgspec.json.encode(self.config).decode(), *self.args]
        self._proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self._stderr, cwd=_TREE,
                                      env=self.env if self.env is not None else dict(os.environ))
        assert self._proc.stdout is not None
        deadline = time.monotonic() + self.startup_timeout_s
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._proc.stdout], [], [], left)[0]:
                self.stop()
                raise RuntimeError("the simulator did not report its port in time")
            piece = os.read(self._proc.stdout.fileno(), 4096)
            if not piece:
                raise RuntimeError(f"the simulator exited at startup: {self.stop()}")
            line += piece
        self.url = line.decode().strip().rsplit(" ", 1)[-1]
        self._http = httpx.Client(base_url=self.url, timeout=10)
        return self.url

    def stop(self) -> str:
        """Terminate the process (killed after 5 s); returns what it wrote on stderr."""
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(5)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None
        err = b""
        if self._stderr is not None:
            self._stderr.seek(0)
            err = self._stderr.read()
            self._stderr.close()
            self._stderr = None
        return err.decode(errors="replace")

    def __enter__(self) -> SimulatorProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    def _call(self, method: str, path: str, content: bytes = b"") -> Any:
        assert self._http is not None, "not started"
        key = self._current.api_key
        headers = {"authorization": f"Bearer {key}"} if key else {}
        try:
            response = self._http.request(method, path, content=content, headers=headers)
        except httpx.TransportError:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"the simulator process exited ({self._proc.returncode}): "
                                   f"{self.stop()[-2000:]}") from None
            raise
        if response.status_code != 200:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    def reset(self, config: SimConfig | None = None, **fields: Any) -> None:
        """A fresh simulator in the process (counters, history, emitted calls start over) for
        ``config``, else the startup config with ``fields`` replaced (with neither: the startup
        config as the process has it, ``args`` such as ``--fault-on`` included)."""
        if config is None and not fields:
            self._call("POST", "/_sim/reset")
            self._current = self.config
            return
        config = config or msgspec.structs.replace(self.config, **fields)
        self._call("POST", "/_sim/reset", msgspec.json.encode(config))
        self._current = config

    def stats(self) -> dict[str, Any]:
        """The simulator's ``GET /_sim/stats`` (request count and sizes, replay checks)."""
        return dict(self._call("GET", "/_sim/stats"))

    @property
    def chat_requests(self) -> int:
        """Chat requests received since the last reset (scheduled faults count these)."""
        return int(self.stats()["chat_requests"])

    def requests(self, last: int = 0) -> list[Any]:
        """The received chat request bodies (the last ``last``; 0: all kept), oldest first."""
        return list(self._call("GET", f"/_sim/requests?last={last}"))

    def connections(self) -> list[ConnectionRecord]:
        """The server's connection records (``time.monotonic()`` times), oldest first."""
        return msgspec.convert(self._call("GET", "/_sim/connections"), list[ConnectionRecord])


__all__ = ["FREEFORM_PARAMETERS", "SimulatorProcess", "accumulate", "chat_tools", "sse_chunks"]
