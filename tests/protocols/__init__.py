"""Tests of the client and upstream protocol codecs (pipeline/protocols)."""
