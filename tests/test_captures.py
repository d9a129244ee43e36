"""The shipped real-client captures: all there, inside the repository, and a missing one fails."""

from __future__ import annotations

import pytest

from tests.captures import CAPTURES, capture_paths, load_capture
from tests.conftest import ROOT


def test_captures_live_in_the_repository() -> None:
    assert CAPTURES.is_relative_to(ROOT) and (CAPTURES / "README.md").is_file()
    names = [p.name for p in capture_paths()]
    assert sum(n.startswith("claude-") for n in names) == 13 and sum(n.startswith("codex-") for n in names) == 12
    assert all(load_capture(n)["method"] in ("POST", "HEAD") for n in names)


def test_a_missing_capture_is_an_error_not_a_skip() -> None:
    with pytest.raises(FileNotFoundError, match="no capture matches"):
        capture_paths("gemini-*.json")
    with pytest.raises(FileNotFoundError):
        load_capture("claude-missing-1.json")
