"""An offline official Anthropic SDK client for the encoder tests: every request it makes is
answered with the bytes a test rendered."""

from __future__ import annotations

from typing import Any

import anthropic

try:  # recent SDKs ship their own httpx fork and reject plain httpx objects
    import httpx2 as sdk_httpx
except ImportError:  # pragma: no cover - older SDKs
    import httpx as sdk_httpx


def sdk_client(stream: bytes, status: int = 200, headers: dict[str, str] | None = None) -> anthropic.Anthropic:
    """An offline SDK client whose every request is answered with ``stream``."""

    def handler(request: Any) -> Any:
        return sdk_httpx.Response(status, headers=headers or {"content-type": "text/event-stream"}, content=stream)

    http = sdk_httpx.Client(transport=sdk_httpx.MockTransport(handler))
    return anthropic.Anthropic(api_key="test", base_url="http://gateway.invalid", http_client=http, max_retries=0)


__all__ = ["sdk_client"]
