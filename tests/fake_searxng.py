"""A fake SearXNG for tests: ``GET /search?q=...&format=json`` answers SearXNG's JSON shape.

Started in a thread (``FakeSearxng()`` as a context manager, ``.url``) by the SDK tests, or as its
own process (``python -m tests.fake_searxng PORT [QUERY_LOG]``: one JSON string a line) by the
real-client harness. Each query gets
``hits`` results on hosts ``docs.example.org``, ``blog.example.com`` and ``news.example.net`` in
turn, with the query in every title and snippet; ``mode`` ``fail`` answers 500, ``hang`` never
answers. ``queries`` records what was asked, in order. ``GET /res/v1/web/search`` answers in
Brave Search's shape (``X-Subscription-Token: BRAVE_KEY`` required), for the hosted provider.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOSTS = ("docs.example.org", "blog.example.com", "news.example.net")
BRAVE_KEY = "brave-test-key-0123"  # what the Brave-shaped endpoint wants in X-Subscription-Token


def results(query: str, hits: int) -> list[dict[str, Any]]:
    slug = "-".join(query.lower().split())[:60] or "empty"
    return [{"url": f"https://{HOSTS[i % 3]}/{slug}/{i}", "title": f"Result {i} for {query}",
             "content": f"Snippet {i}: what {HOSTS[i % 3]} says about {query}.",
             "publishedDate": "2026-11-0%dT00:00:00" % (i % 9 + 1), "engine": "fake"} for i in range(hits)]


class FakeSearxng:
    def __init__(self, *, hits: int = 6, port: int = 0, log: str | None = None) -> None:
        self.hits = hits
        self.log = log
        self.mode = "ok"
        self.queries: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 -- http.server's name
                parts = urlsplit(self.path)
                args = parse_qs(parts.query)
                brave = parts.path == "/res/v1/web/search"
                if brave and self.headers.get("x-subscription-token") != BRAVE_KEY:
                    self.send_error(401)
                    return
                if not brave and (parts.path != "/search" or args.get("format") != ["json"]):
                    self.send_error(404)
                    return
                query = args.get("q", [""])[0]
                fake.queries.append(query)
                if fake.log:
                    with open(fake.log, "a") as f:
                        f.write(json.dumps(query) + "\n")
                if fake.mode == "hang":
                    time.sleep(30)
                if fake.mode == "fail":
                    self.send_error(500)
                    return
                found = results(query, fake.hits)
                if brave:  # Brave Search's shape: web.results with description and page_age
                    found = [{"url": r["url"], "title": r["title"], "description": r["content"],
                              "page_age": r["publishedDate"]} for r in found]
                    body = json.dumps({"type": "search", "web": {"type": "search", "results": found}}).encode()
                else:
                    body = json.dumps({"query": query, "number_of_results": fake.hits, "results": found}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeSearxng:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


if __name__ == "__main__":
    server = FakeSearxng(port=int(sys.argv[1]), log=sys.argv[2] if len(sys.argv) > 2 else None)
    print(server.url, flush=True)
    server._server.serve_forever()
