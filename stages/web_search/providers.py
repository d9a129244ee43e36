"""Search providers for ``web_search``: SearXNG's JSON API (self-hosted) and Brave Search (hosted).

A provider is built once per stage from the stage's ``provider`` (a built-in name or
``module:attr``) and its ``options``; ``await provider.search(query, count=...)`` returns hits
(``pipeline.events.SearchHit``) or raises ``SearchFailed`` (any other exception is treated alike
by the tool: the model reads an error, the request goes on). Keys are named by env variable
(``api_key_env``) and read per search, never logged. HTTP goes through httpx on the gateway's
own transport (``upstreams.transport.StreamTransport``), opened with the stage.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import httpx
import msgspec

from pipeline.events import SearchHit
from upstreams.transport import StreamTransport

_DECODE = msgspec.json.Decoder()


class SearchFailed(Exception):
    """The provider could not answer; ``code`` is the error the client sees (Anthropic's
    ``web_search_tool_result_error`` codes: ``unavailable``, ``too_many_requests``, ...)."""

    def __init__(self, message: str, code: str = "unavailable") -> None:
        super().__init__(message)
        self.code = code


class SearchProvider(Protocol):
    async def search(self, query: str, *, count: int) -> list[SearchHit]: ...

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...


class HttpProvider:
    """Shared plumbing: an httpx client on the gateway's transport, the timeout, the key."""

    name = "http"

    def __init__(self, options: dict[str, Any], *, timeout_s: float) -> None:
        self.options = dict(options)
        self.timeout = httpx.Timeout(timeout_s)
        self.client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        self.client = httpx.AsyncClient(transport=StreamTransport(max_connections=16), timeout=self.timeout)

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def search(self, query: str, *, count: int) -> list[SearchHit]:
        raise NotImplementedError

    def key(self, default_env: str) -> str:
        env = str(self.options.get("api_key_env", default_env))
        value = os.environ.get(env, "")
        if not value:
            raise SearchFailed(f"{self.name}: the key variable {env} is not set")
        return value

    async def get_json(self, url: str, params: dict[str, Any], headers: dict[str, str]) -> Any:
        if self.client is None:
            await self.open()
        assert self.client is not None
        try:
            response = await self.client.get(url, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise SearchFailed(f"{self.name}: {type(exc).__name__} {exc}") from None
        if response.status_code == 429:
            raise SearchFailed(f"{self.name}: rate limited (429)", "too_many_requests")
        if response.status_code != 200:
            raise SearchFailed(f"{self.name}: HTTP {response.status_code}")
        try:
            return _DECODE.decode(response.content)
        except msgspec.DecodeError:
            raise SearchFailed(f"{self.name}: the answer is not JSON") from None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class SearXNG(HttpProvider):
    """SearXNG's ``GET {base_url}/search?q=...&format=json`` (enable ``json`` in its
    ``search.formats``). Options: ``base_url``; optional ``api_key_env`` (sent as a bearer token,
    for an instance behind an authenticating proxy), ``engines``, ``language``."""

    name = "searxng"

    async def search(self, query: str, *, count: int) -> list[SearchHit]:
        base = str(self.options.get("base_url", "http://127.0.0.1:8888")).rstrip("/")
        params: dict[str, Any] = {"q": query, "format": "json"}
        for key in ("engines", "language", "categories"):
            if key in self.options:
                params[key] = self.options[key]
        headers = {"accept": "application/json"}
        if "api_key_env" in self.options:
            headers["authorization"] = "Bearer " + self.key("")
        body = await self.get_json(base + "/search", params, headers)
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise SearchFailed("searxng: no results list in the answer")
        hits = [SearchHit(url=r["url"], title=_text(r.get("title")), snippet=_text(r.get("content")),
                          page_age=_text(r.get("publishedDate")) or None)
                for r in results if isinstance(r, dict) and isinstance(r.get("url"), str)]
        return hits[:count]


class Brave(HttpProvider):
    """Brave Search's ``GET https://api.search.brave.com/res/v1/web/search`` with the
    ``X-Subscription-Token`` header. Options: ``api_key_env`` (default ``BRAVE_API_KEY``),
    ``base_url``, ``country``, ``search_lang``."""

    name = "brave"

    async def search(self, query: str, *, count: int) -> list[SearchHit]:
        base = str(self.options.get("base_url", "https://api.search.brave.com")).rstrip("/")
        params: dict[str, Any] = {"q": query, "count": min(count, 20)}
        for key in ("country", "search_lang"):
            if key in self.options:
                params[key] = self.options[key]
        headers = {"accept": "application/json", "x-subscription-token": self.key("BRAVE_API_KEY")}
        body = await self.get_json(base + "/res/v1/web/search", params, headers)
        web = body.get("web") if isinstance(body, dict) else None
        results = web.get("results") if isinstance(web, dict) else []
        if not isinstance(results, list):
            raise SearchFailed("brave: no web.results list in the answer")
        hits = [SearchHit(url=r["url"], title=_text(r.get("title")), snippet=_text(r.get("description")),
                          page_age=_text(r.get("page_age")) or _text(r.get("age")) or None)
                for r in results if isinstance(r, dict) and isinstance(r.get("url"), str)]
        return hits[:count]


PROVIDERS: dict[str, type[HttpProvider]] = {"searxng": SearXNG, "brave": Brave}


__all__ = ["PROVIDERS", "Brave", "HttpProvider", "SearXNG", "SearchFailed", "SearchProvider"]
