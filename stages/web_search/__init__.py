"""The ``web_search`` stage: the client's hosted web search, run by the gateway (``stage``)."""

from stages.web_search.stage import WebSearch

__all__ = ["WebSearch"]
