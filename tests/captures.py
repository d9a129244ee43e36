"""The real-client request captures shipped in ``tests/fixtures/captures`` (what Claude Code
2.1.330 and Codex 0.169.0 send; see its README): where they are and how to read them.

Tests read nothing outside the repository. A missing capture is an error, never an empty
parametrization (which pytest would report as a skip).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CAPTURES = Path(__file__).resolve().parent / "fixtures" / "captures"


def capture_paths(pattern: str = "*.json") -> list[Path]:
    """The capture files matching ``pattern``, sorted; raises if there are none."""
    paths = sorted(CAPTURES.glob(pattern))
    if not paths:
        raise FileNotFoundError(f"no capture matches {pattern!r} in {CAPTURES}")
    return paths


def load_capture(name: str) -> dict[str, Any]:
    """One capture record (method, path, headers, body, ...); raises if the file is missing."""
    return json.loads((CAPTURES / name).read_text())


def capture_body(name: str) -> dict[str, Any]:
    """The JSON request body of one capture."""
    return load_capture(name)["body"]


__all__ = ["CAPTURES", "capture_body", "capture_paths", "load_capture"]
