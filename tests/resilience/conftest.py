"""Fixtures for the resilience tests: the real-client captures as (name, request body bytes)."""

from __future__ import annotations

import json

import pytest

from tests.captures import capture_paths


def load_captures() -> list[tuple[str, bytes]]:
    """Every capture with a JSON body, re-encoded compactly; the name says the client."""
    out = []
    for path in capture_paths():
        body = json.loads(path.read_text()).get("body")
        if isinstance(body, dict):
            out.append((path.stem, json.dumps(body).encode()))
    return out


@pytest.fixture(scope="session")
def captures() -> list[tuple[str, bytes]]:
    return load_captures()
