"""Benchmarks: a fake upstream, a load generator and scenarios that measure the gateway side by side
with a direct connection (and optionally LiteLLM). Run everything with ``python -m bench``."""
