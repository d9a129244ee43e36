"""describe_images: an image bound for a model that cannot see becomes a description of it.

Request way, for the attempt's upstream model (``ctx.attempt``: a route or a fallback to a
vision-capable model keeps its images): when the attempt's card (``pipeline.model_limits``: the
model table's, or for a model it does not know its profile's) says the model has no image input,
or the upstream's format carries none (``image_refusal``), every image of
the conversation, in user turns and in tool results alike (Claude Code's ``Read`` of a PNG, Codex's
``view_image`` output), is replaced by one text part, ``[image described by <model>: ...]``, the
configured vision model's description of it (``describer``: one call per distinct image, cached
by the digest of its bytes, so a history that carries one screenshot for 50 turns is described
once). Each distinct image is one ``image_described`` loss (the log line and the metrics say the
image did not reach the model as an image); a vision call that fails becomes the text
``[image not described: <why>]`` and an ``image_undescribed`` loss, never a failed request. A
model with vision gets the request unchanged.

Options: ``upstream``, the vision upstream, defined like one under ``upstreams:`` in
pipelines.yaml (its type, ``base_url``, ``api_key_env``, ``profile``, ``models``); ``model``, the
upstream model asked (default: that upstream's ``models.default``); the prompt, the answer's
budget, a timeout, the cache size and how many images one request describes at once.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import trio

from pipeline.attempt import Attempt
from pipeline.model import ChatRequest, ImagePart, Message, Part, TextPart, ToolResultPart
from pipeline.model_limits import image_refusal
from pipeline.registry import build_upstream
from pipeline.stage import RequestContext, Stage, StageConfig
from stages.describe_images.describer import Describer, VisionFailed, digest

PROMPT = ("Describe this image for a reader who cannot see it, as it bears on software work: what it "
          "shows, its layout, and every piece of text in it, transcribed exactly. Answer with the "
          "description only.")


def refusal(attempt: Attempt) -> str | None:
    """Why the attempt's upstream model gets no image (``model_limits.image_refusal``: its card has
    no vision, or the upstream's format carries none), or ``None`` when it sees."""
    return image_refusal(attempt.card, attempt.profile)


def _images(request: ChatRequest) -> list[str]:
    """Every image URL of the conversation, in order (user turns and tool results)."""
    urls: list[str] = []
    for message in request.messages:
        for part in message.parts:
            if isinstance(part, ImagePart):
                urls.append(part.url)
            elif isinstance(part, ToolResultPart):
                urls.extend(p.url for p in part.content if isinstance(p, ImagePart))
    return urls


class DescribeImages(Stage):
    name = "describe_images"
    # The vision upstream (its connection pool), the descriptions and the calls in flight: shared
    # by every request on purpose.
    shared_attributes = frozenset({"describer"})

    class Config(StageConfig, frozen=True, kw_only=True):
        # The vision upstream, defined as under `upstreams:` (type, base_url, api_key_env, profile, models).
        upstream: dict[str, Any]
        # The upstream model that describes (default: the upstream's `models.default`).
        model: str | None = None
        # What the vision model is asked, with the image.
        prompt: str = PROMPT
        # Output budget of one description.
        max_output_tokens: Annotated[int, msgspec.Meta(ge=1)] = 1_024
        # Seconds one description may take before the image gets a placeholder.
        timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
        # Descriptions kept (least recently used dropped first).
        cache_entries: Annotated[int, msgspec.Meta(ge=1)] = 1_024
        # Images of one request described at the same time.
        max_concurrent: Annotated[int, msgspec.Meta(ge=1)] = 4

    def __init__(self, config: Any, *, stage_id: str = "") -> None:
        super().__init__(config, stage_id=stage_id)
        upstream = build_upstream(f"{self.id}.vision", dict(config.upstream))
        self.describer = Describer(
            upstream, model=config.model, prompt=config.prompt, max_output_tokens=config.max_output_tokens,
            timeout_s=config.timeout_s, cache_entries=config.cache_entries)

    async def open(self) -> None:
        await self.describer.upstream.open()

    async def aclose(self) -> None:
        await self.describer.upstream.aclose()

    async def on_request(self, request: ChatRequest, ctx: RequestContext) -> ChatRequest:
        attempt = ctx.attempt
        why = refusal(attempt) if attempt is not None else None
        if why is None:
            return request
        urls = _images(request)
        if not urls:
            return request
        keys = {url: digest(url) for url in urls}
        counts: dict[str, int] = {}
        for url in urls:
            counts[keys[url]] = counts.get(keys[url], 0) + 1
        texts = await self._describe(keys, ctx)
        model = self.describer.model
        for key, n in counts.items():
            text, how = texts[key]
            times = f" ({n} times in the conversation)" if n > 1 else ""
            if how == "failed":
                ctx.lose("image_undescribed", f"image sha256:{key[:12]}{times}: {why}, and {model} could not "
                                              f"describe it ({text}); sent a placeholder")
            else:
                ctx.lose("image_described", f"image sha256:{key[:12]}{times} described by {model} ({how}): {why}")
        replaced = {key: TextPart(f"[image described by {model}: {text}]") if how != "failed"
                    else TextPart(f"[image not described: {text}]") for key, (text, how) in texts.items()}
        return msgspec.structs.replace(
            request, messages=tuple(_replace(m, keys, replaced) for m in request.messages))

    async def _describe(self, keys: dict[str, str], ctx: RequestContext) -> dict[str, tuple[str, str]]:
        """digest -> (description or why not, ``cached`` / ``new`` / ``failed``), each distinct image once."""
        unique = {key: url for url, key in keys.items()}
        results: dict[str, tuple[str, str]] = {}
        limit = trio.CapacityLimiter(self.config.max_concurrent)

        async def one(key: str, url: str) -> None:
            async with limit:
                try:
                    text, hit = await self.describer.describe(key, url, ctx)
                    results[key] = (text, "cached" if hit else "new")
                except VisionFailed as exc:
                    results[key] = (str(exc), "failed")
                except Exception as exc:  # noqa: BLE001 -- an image must never fail the request
                    ctx.log.warning("image_description_failed", error=type(exc).__name__)
                    results[key] = (f"{type(exc).__name__}", "failed")

        async with trio.open_nursery() as nursery:
            for key, url in unique.items():
                if self.describer.cached(key) is not None:  # no task for the common case
                    await one(key, url)
                else:
                    nursery.start_soon(one, key, url)
        return results


def _replace(message: Message, keys: dict[str, str], replaced: dict[str, TextPart]) -> Message:
    """The message with its images (its results' too) described; the very message when it has none
    (the upstream encoder reuses an unchanged message's bytes by identity)."""
    if not any(isinstance(p, ImagePart) or (isinstance(p, ToolResultPart) and any(
            isinstance(c, ImagePart) for c in p.content)) for p in message.parts):
        return message
    parts: list[Part] = []
    for part in message.parts:
        if isinstance(part, ImagePart):
            parts.append(replaced[keys[part.url]])
        elif isinstance(part, ToolResultPart) and any(isinstance(p, ImagePart) for p in part.content):
            content = tuple(replaced[keys[p.url]] if isinstance(p, ImagePart) else p for p in part.content)
            parts.append(msgspec.structs.replace(part, content=content))
        else:
            parts.append(part)
    return msgspec.structs.replace(message, parts=tuple(parts))


__all__ = ["PROMPT", "DescribeImages", "refusal"]
