"""Tests of the upstream side: the transport and the DeepSeek simulator (upstreams/)."""
