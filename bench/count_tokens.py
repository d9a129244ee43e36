"""Time ``count_tokens``' local work: decode a ~100 KB Claude Code request and estimate it.

Run: python bench/count_tokens.py. The request is a real capture
(tests/fixtures/captures/claude-thinking-tool-2.json) with its messages repeated to 100 KB.
Target (token-budget issue): under 5 ms.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.protocols.anthropic import decode_request  # noqa: E402
from pipeline.tokens import estimate_request_tokens  # noqa: E402
from tests.captures import capture_body  # noqa: E402


def main() -> None:
    body = capture_body("claude-thinking-tool-2.json")
    first = body["messages"][:1]
    while len(json.dumps(body)) < 100_000:
        body["messages"] = body["messages"] + first
    raw = json.dumps(body).encode()
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        tokens = estimate_request_tokens(decode_request(raw)[0], "deepseek-v4-pro")
        times.append(time.perf_counter() - t0)
    times.sort()
    print(f"request {len(raw):,} bytes -> {tokens:,} tokens; "
          f"p50 {statistics.median(times) * 1e3:.2f} ms, p99 {times[int(len(times) * 0.99)] * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
