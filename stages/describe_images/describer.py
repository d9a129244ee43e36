"""The call to the vision model, and the cache that makes each image cost one call.

``Describer.describe(url, ctx)`` answers the description of one image: from the cache (keyed by
``digest``: the SHA-256 of the image's bytes for a ``data:`` URL, of the URL otherwise), else
from one streamed request to the configured vision upstream. That upstream is an ordinary one,
built from the stage's options by the registry (``pipeline.registry.build_upstream``), so the call
takes the production path: the upstream's encoder for its profile, the gateway's HTTP transport,
msgspec, its key read from its ``api_key_env`` at request time and hidden from every error message
(``Attempt.hide``). The answer's events are folded by ``pipeline.assemble`` as for a non-streaming
client. Concurrent requests for one image share one call (single flight), and a bounded LRU keeps
the descriptions; a failure is not cached, so the next request tries again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections import OrderedDict
from collections.abc import Sequence

import trio

from pipeline.assemble import Assembler, Text
from pipeline.attempt import Attempt
from pipeline.errors import GatewayError
from pipeline.events import Event
from pipeline.model import ChatRequest, ImagePart, Message, TextPart, ThinkingConfig
from pipeline.stage import RequestContext
from pipeline.upstream import Upstream


class VisionFailed(Exception):
    """The vision model gave no description (its error, a timeout, an empty answer)."""


def digest(url: str) -> str:
    """The cache key of an image: SHA-256 of its bytes (``data:`` URLs), else of its URL."""
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        try:
            raw = base64.b64decode(data) if head.endswith(";base64") else data.encode()
        except (binascii.Error, ValueError):
            raw = url.encode()
        return hashlib.sha256(raw).hexdigest()
    return hashlib.sha256(url.encode()).hexdigest()


class _Collect:
    """The vision attempt's outlet: the answer folded into a completion."""

    def __init__(self) -> None:
        self.assembler = Assembler()

    async def send_many(self, values: Sequence[Event], /) -> None:
        for event in values:
            self.assembler.feed(event)

    def close(self) -> None:
        return None


class Describer:
    """One vision upstream and model, its cache, and the calls in flight."""

    def __init__(self, upstream: Upstream, *, model: str | None, prompt: str, max_output_tokens: int,
                 timeout_s: float, cache_entries: int) -> None:
        self.upstream = upstream
        self.model = model or upstream.map_model("default")
        self.prompt = prompt
        self.max_output_tokens = max_output_tokens
        self.timeout_s = timeout_s
        self.cache_entries = cache_entries
        self.cache: OrderedDict[str, str] = OrderedDict()
        self.inflight: dict[str, trio.Event] = {}
        self.calls = 0  # vision requests sent (tests, and the log)

    def cached(self, key: str) -> str | None:
        found = self.cache.get(key)
        if found is not None:
            self.cache.move_to_end(key)
        return found

    async def describe(self, key: str, url: str, ctx: RequestContext) -> tuple[str, bool]:
        """(description, from the cache) of the image ``url`` whose digest is ``key``.

        Raises:
            VisionFailed: no description could be had.
        """
        while True:
            found = self.cached(key)
            if found is not None:
                return found, True
            waiting = self.inflight.get(key)
            if waiting is None:
                break
            await waiting.wait()  # another request is describing it: its answer, or (it failed) a try of our own
        done = self.inflight[key] = trio.Event()
        try:
            text = await self._call(url, ctx)
        finally:
            del self.inflight[key]
            done.set()
        self.cache[key] = text
        while len(self.cache) > self.cache_entries:
            self.cache.popitem(last=False)
        return text, False

    async def _call(self, url: str, ctx: RequestContext) -> str:
        upstream = self.upstream
        vctx = RequestContext(request_id=f"{ctx.request_id}.vision", pipeline_id=ctx.pipeline_id,
                              client=ctx.client, deadline=ctx.deadline, headers=ctx.headers)
        missing = upstream.key_missing(vctx)
        if missing is not None:
            raise VisionFailed(missing)
        attempt = Attempt.aimed(upstream, self.model, model=self.model)
        vctx.aim(attempt)
        request = ChatRequest(
            model=self.model, stream=True, max_output_tokens=self.max_output_tokens,
            thinking=ThinkingConfig(enabled=False),
            messages=(Message(role="user", parts=(TextPart(self.prompt), ImagePart(url=url))),))
        out = _Collect()
        self.calls += 1
        try:
            with trio.fail_after(self.timeout_s):
                await attempt.run(request, out, vctx, collected=True)
        except trio.TooSlowError:
            raise VisionFailed(f"no answer within {self.timeout_s:g} s") from None
        except GatewayError as err:
            raise VisionFailed(err.info().message) from None
        completion = out.assembler.completion()
        if completion.error is not None:
            raise VisionFailed(completion.error.message)
        text = " ".join(" ".join(b.text.split()) for b in completion.blocks if isinstance(b, Text)).strip()
        if not text:
            raise VisionFailed("the vision model answered no text")
        return text


__all__ = ["Describer", "VisionFailed", "digest"]
