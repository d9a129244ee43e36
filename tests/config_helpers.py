"""The smallest valid pipelines.yaml, which config and startup tests extend."""

from __future__ import annotations

BASE = """
upstreams:
  sim:
    type: simulator
pipelines:
  p:
    client: chat
    upstream: sim
"""
