"""Where the live gateway's time goes on real-size requests: py-spy samples sorted into steps.

Used by ``python -m bench.sized --py-spy`` (needs ``pip install py-spy``): py-spy records the
gateway worker (``--format raw``, collapsed stacks, 1,000 samples/s, idle samples dropped, ``--nonblocking``:
the worker is not paused per sample, which would slow it several times over)
while sequential requests of one size run, and each sample goes to the innermost step its stack
is in: the JSON depth check, the client decode, each request stage, the Chat re-encode, the
upstream request and relay, reading the body from hypercorn, hypercorn itself, the log line.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

# (function name as py-spy prints it, step); the innermost frame of a sample that matches decides.
STEPS: tuple[tuple[str, str], ...] = (
    ("json_depth_exceeds", "depth check"),
    ("DepthMemo.exceeds", "depth check"),
    ("ClientCodec.decode_request", "decode (client codec)"),
    ("StoredResponses.decode", "decode (client codec)"),  # the Responses client behind its store
    ("ResponsesCodec.decode_chained", "decode (client codec)"),
    ("ThinkingFilter.on_request", "thinking_filter (envelopes)"),
    ("TokenBudget.on_request", "token_budget (estimate)"),
    ("ToolIdMap.on_request", "tool_ids"),
    ("encode_request", "encode (Chat, upstream)"),
    ("OpenAIChatUpstream.stream", "upstream request + relay"),
    ("_read_body", "body from hypercorn"),
    ("request_finished", "log line"),
    ("run_pipeline", "pipeline, other"),
    ("Gateway._http", "app, other"),
    ("TCPServer", "hypercorn"),
    ("H11Protocol", "hypercorn"),
    # Stacks py-spy read only in part (--nonblocking) still name the innermost frames:
    ("LeanClient", "upstream request + relay"),
    ("StreamTransport", "upstream request + relay"),
    ("ReceiveBuffer", "hypercorn"),  # h11, the client's request
    ("ContentLengthReader", "hypercorn"),
)


def executable() -> str:
    """The py-spy next to this interpreter, else on PATH; raises with the install hint."""
    here = Path(sys.executable).with_name("py-spy")
    found = str(here) if here.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("--py-spy needs py-spy: pip install py-spy")
    return found


def start(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([executable(), "record", "--pid", str(pid), "--rate", "1000", "--format", "raw",
                             "--nonblocking", "-o", str(out), "--duration", str(max(1, round(seconds)))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _step(frames: list[str]) -> str:
    for frame in reversed(frames):
        name = frame.split(" (", 1)[0]
        for key, step in STEPS:
            if name == key or name.startswith(key + "."):
                return step
    return "trio, socket calls, the rest"


def summarise(raw: Path, requests: int, cpu_ms: float) -> dict[str, object]:
    """Each step's share of the samples, and that share of ``cpu_ms`` (the measured CPU per
    request: py-spy does not keep its 1,000 samples/s on a busy machine, so counts are no clock)."""
    counts: Counter[str] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            counts[_step(stack.split(";"))] += int(n)
    total = sum(counts.values()) or 1
    steps = {step: {"share": round(n / total, 3), "cpu_ms_per_request": round(cpu_ms * n / total, 2)}
             for step, n in counts.most_common()}
    return {"samples": total, "requests": requests, "cpu_ms_per_request": round(cpu_ms, 3), "steps": steps}


__all__ = ["STEPS", "start", "summarise"]
