"""Shared test fixtures: paths to the real-client captures, an in-process hypercorn server."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
CAPTURES = ROOT.parent / "shared" / "captures"

# The example operator stage is imported as `custom_stage.redact:Redact`.
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))
