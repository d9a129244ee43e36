"""Shared test fixtures: the fixtures directory on sys.path, an in-process hypercorn server."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"

# The example operator stage is imported as `custom_stage.redact:Redact`.
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))
