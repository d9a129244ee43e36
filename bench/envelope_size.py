"""Measure the reasoning envelope: bytes on the wire and seal/open time versus reasoning size.

Run: python bench/envelope_size.py. Reasoning text is sampled from the prose in the real-client
captures (Claude Code's and Codex's system prompts and tool descriptions, ~70 KB of English
technical text, like DeepSeek's reasoning). Informs thinking_filter.inline_max_chars.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stages.thinking_filter.envelope import Envelope, Keyring  # noqa: E402
from tests.captures import capture_body  # noqa: E402

KEY = Keyring(b"bench-secret").upstream("deepseek")


def prose(value: object) -> list[str]:
    """The long strings (200+ characters) of a JSON value, in order."""
    if isinstance(value, str):
        return [value] if len(value) >= 200 else []
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return [s for item in items for s in prose(item)]


def sample(n: int) -> str:
    src = "\n\n".join(dict.fromkeys(prose(capture_body("claude-tool-1.json")) + prose(capture_body("codex-tool-1.json"))))
    text = (src * (n // len(src) + 1))[:n]
    return text


def main() -> None:
    print(f"{'reasoning chars':>16} {'envelope bytes':>15} {'ratio':>6} {'seal µs':>8} {'open µs':>8}")
    for n in (200, 2_000, 20_000, 100_000, 262_144, 1_000_000):
        text = sample(n)
        env = Envelope(u="deepseek", m="deepseek-v4-pro", r=text, t=("call_00_abcdefghijklmnopqrstuvwx",))
        reps = max(3, 200_000 // n)
        t0 = time.perf_counter()
        for _ in range(reps):
            token = KEY.seal(env)
        t1 = time.perf_counter()
        for _ in range(reps):
            opened = KEY.open(token)
        t2 = time.perf_counter()
        assert opened == env
        print(f"{n:>16,} {len(token):>15,} {len(token) / n:>6.2f} {(t1 - t0) / reps * 1e6:>8.0f} {(t2 - t1) / reps * 1e6:>8.0f}")


if __name__ == "__main__":
    main()
