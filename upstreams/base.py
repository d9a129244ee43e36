"""The upstream contract's old home: it lives in ``pipeline.upstream`` (below the stages and the
upstreams); these names are handed on for custom upstream types written against ``upstreams.base``.
"""

from pipeline.upstream import ModelLimits, Upstream, UpstreamConfig

__all__ = ["ModelLimits", "Upstream", "UpstreamConfig"]
