"""One request's web search tool: the ``GatewayTool`` (``pipeline.server_tools``) that ``web_search``
registers on the attempt. It parses the model's ``{"query": ...}``, asks the provider, keeps the
hits the client's domain rules allow, and gives the client's block (``SearchResult``) and the text
the model reads. Every failure is a result: an error code for the client (Anthropic's
``web_search_tool_result_error`` codes) and a sentence for the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

import msgspec
import trio

from pipeline.events import SearchHit, SearchResult
from pipeline.server_tools import ToolRun, search_error_text, search_text
from stages.web_search.providers import SearchFailed, SearchProvider

_DECODE = msgspec.json.Decoder()
MAX_QUERY = 500


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


def _matches(host: str, domains: Sequence[str]) -> bool:
    for domain in domains:
        d = domain.lower().strip().removeprefix("https://").removeprefix("http://").split("/")[0].lstrip(".")
        if d.startswith("*."):
            d = d[2:]
        if d and (host == d or host.endswith("." + d)):
            return True
    return False


def allowed(hits: list[SearchHit], allow: Sequence[str], block: Sequence[str]) -> list[SearchHit]:
    """The hits whose host is (a subdomain of) an allowed domain, and of no blocked one."""
    out = []
    for hit in hits:
        host = _host(hit.url)
        if not host or (allow and not _matches(host, allow)) or _matches(host, block):
            continue
        out.append(hit)
    return out


class WebSearchTool:
    """Per request (the client's ``max_uses`` and domain rules); the provider is the stage's."""

    __slots__ = ("allow", "block", "count", "log", "max_uses", "provider", "timeout_s")

    def __init__(self, provider: SearchProvider, *, max_uses: int, count: int, timeout_s: float,
                 allow: Sequence[str] = (), block: Sequence[str] = (), log: object = None) -> None:
        self.provider = provider
        self.max_uses = max_uses
        self.count = count
        self.timeout_s = timeout_s
        self.allow = tuple(allow)
        self.block = tuple(block)
        self.log = log

    async def run(self, call_id: str, arguments: str, *, index: int, exceeded: bool) -> ToolRun:
        query = ""
        try:
            args = _DECODE.decode(arguments or "{}")
            query = args.get("query", "") if isinstance(args, dict) else ""
        except msgspec.DecodeError:
            pass
        if exceeded:
            return self._error(call_id, index, query, "max_uses_exceeded")
        if not isinstance(query, str) or not query.strip():
            return self._error(call_id, index, "", "invalid_tool_input")
        if len(query) > MAX_QUERY:
            return self._error(call_id, index, query, "query_too_long")
        wanted = self.count * 2 if (self.allow or self.block) else self.count
        try:
            with trio.fail_after(self.timeout_s):
                hits = await self.provider.search(query, count=wanted)
        except SearchFailed as exc:
            return self._failed(call_id, index, query, exc.code, str(exc))
        except trio.TooSlowError:
            return self._failed(call_id, index, query, "unavailable", f"no answer in {self.timeout_s:g} s")
        except Exception as exc:  # noqa: BLE001 -- a provider (maybe an operator's module:attr) failed: never the request
            return self._failed(call_id, index, query, "unavailable", f"{type(exc).__name__}: {exc}")
        hits = allowed(hits, self.allow, self.block)[:self.count]
        return ToolRun(result=SearchResult(index=index, call_id=call_id, query=query, hits=tuple(hits)),
                       text=search_text(query, hits))

    def _failed(self, call_id: str, index: int, query: str, code: str, why: str) -> ToolRun:
        if self.log is not None:
            self.log.warning("web_search_failed", code=code, reason=why[:300])  # type: ignore[attr-defined]
        return self._error(call_id, index, query, code)

    def _error(self, call_id: str, index: int, query: str, code: str) -> ToolRun:
        return ToolRun(result=SearchResult(index=index, call_id=call_id, query=query, error=code),
                       text=search_error_text(code), is_error=True)


__all__ = ["MAX_QUERY", "WebSearchTool", "allowed"]
