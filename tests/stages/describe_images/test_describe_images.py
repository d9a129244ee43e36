"""describe_images: which requests are described, what replaces each image, the cache, failures,
its options. The vision upstream is the production ``openai_chat`` upstream on the in-process
simulator (``type: simulator``: its real encoder, HTTP client and decoder, the socket replaced);
the end-to-end tests with the simulator server are tests/e2e/test_images.py."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import msgspec
import pytest
import trio

from pipeline.config import ConfigError
from pipeline.model import ChatRequest, ImagePart, Message, TextPart, ToolCallPart, ToolResultPart
from pipeline.profiles import PROFILES
from pipeline.registry import build_stage
from pipeline.testing import check_stage, make_attempt, make_context, run_stage
from stages.describe_images import DescribeImages
from tests.e2e.image_loops import data_url, png, seen


def stage(**options: Any) -> DescribeImages:
    options = {"upstream": {"type": "simulator"}, "model": "deepseek-v4-flash", **options}
    built = build_stage({"describe_images": options}, pipeline_id="p", index=1)
    assert isinstance(built, DescribeImages)
    return built


def ctx_for(model: str = "deepseek-v4-pro", profile: str = "deepseek"):
    ctx = make_context()
    ctx.aim(make_attempt(PROFILES[profile], model=model))
    return ctx


def conversation(*urls: str) -> ChatRequest:
    """A user turn with the first image, then one Read per further image (its result an image)."""
    messages = [Message(role="user", parts=(TextPart("look"), ImagePart(url=urls[0])))]
    for i, url in enumerate(urls[1:]):
        messages.append(Message(role="assistant", parts=(ToolCallPart(id=f"c{i}", name="Read", arguments="{}"),)))
        messages.append(Message(role="tool", parts=(ToolResultPart(call_id=f"c{i}", content=(
            TextPart("the file:"), ImagePart(url=url))),)))
    return ChatRequest(model="m", messages=tuple(messages))


SHOT = png(32, 16, seed=3)
OTHER = png(8, 8, seed=4)


def described(image: bytes, w: int, h: int) -> TextPart:
    return TextPart(f"[image described by deepseek-v4-flash: I see {seen(image, w, h)}.]")


def texts(request: ChatRequest) -> list[Any]:
    out: list[Any] = []
    for message in request.messages:
        for part in message.parts:
            out.extend(part.content if isinstance(part, ToolResultPart) else (part,))
    return [p for p in out if not isinstance(p, ToolCallPart)]


async def test_every_image_bound_for_a_text_only_model_is_described_once() -> None:
    s = stage()
    await s.open()
    ctx = ctx_for()
    request, _ = await run_stage(s, [], request=conversation(data_url(SHOT), data_url(SHOT), data_url(OTHER)), ctx=ctx)
    await s.aclose()
    assert texts(request) == [TextPart("look"), described(SHOT, 32, 16), TextPart("the file:"), described(SHOT, 32, 16),
                              TextPart("the file:"), described(OTHER, 8, 8)]
    assert s.describer.calls == 2
    digest = hashlib.sha256(SHOT).hexdigest()[:12]
    assert [(loss.what, loss.detail) for loss in ctx.losses][0] == (
        "image_described", f"image sha256:{digest} (2 times in the conversation) described by deepseek-v4-flash "
                           "(new): deepseek-v4-pro has no image input")
    assert len(ctx.losses) == 2


async def test_messages_without_images_are_the_very_same_objects() -> None:
    """Only the messages with an image are rebuilt: the others (a tool result with text only
    among them) go on as the very objects that came, which the upstream encoder reuses."""
    plain = conversation(data_url(SHOT))
    result = Message(role="tool", parts=(ToolResultPart(call_id="c9", content=(TextPart("no image"),)),))
    request = msgspec.structs.replace(plain, messages=(*plain.messages, Message(role="assistant", parts=(
        ToolCallPart(id="c9", name="Read", arguments="{}"),)), result))
    s = stage()
    await s.open()
    shaped, _ = await run_stage(s, [], request=request, ctx=ctx_for())
    await s.aclose()
    assert shaped.messages[0] is not request.messages[0]
    assert all(a is b for a, b in zip(shaped.messages[1:], request.messages[1:], strict=True))


@pytest.mark.parametrize(("model", "profile"), [("deepseek-v4-flash", "deepseek"), ("some-local-vl", "vllm")])
async def test_a_model_with_vision_keeps_its_images(model: str, profile: str) -> None:
    """Flash has image input by the model table; a model the table does not know has its profile's."""
    s = stage()
    request = conversation(data_url(SHOT), data_url(OTHER))
    ctx = ctx_for(model, profile)
    shaped, _ = await run_stage(s, [], request=request, ctx=ctx)
    assert shaped is request and s.describer.calls == 0 and not ctx.losses


async def test_a_profile_without_images_gets_descriptions_for_a_model_the_table_does_not_know() -> None:
    s = stage()
    shaped, _ = await run_stage(s, [], request=conversation(data_url(SHOT)), ctx=ctx_for("qwen3-8b", "llamacpp"))
    assert texts(shaped)[1] == described(SHOT, 32, 16)


async def test_the_cache_is_a_bounded_lru_keyed_by_the_image_bytes() -> None:
    s = stage(cache_entries=2)
    images = [png(4, 4, seed=i) for i in range(3)]
    for image in images:
        await run_stage(s, [], request=conversation(data_url(image)), ctx=ctx_for())
    assert s.describer.calls == 3 and len(s.describer.cache) == 2
    # The same bytes under another media-type label are the same image; the evicted first one is asked again.
    await run_stage(s, [], request=conversation(data_url(images[2]).replace("image/png", "image/x-png")), ctx=ctx_for())
    assert s.describer.calls == 3
    await run_stage(s, [], request=conversation(data_url(images[0])), ctx=ctx_for())
    assert s.describer.calls == 4


async def test_concurrent_requests_for_one_image_share_one_call() -> None:
    s = stage()
    results: list[ChatRequest] = []

    async def one() -> None:
        shaped, _ = await run_stage(s, [], request=conversation(data_url(SHOT)), ctx=ctx_for())
        results.append(shaped)

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(one)
    assert s.describer.calls == 1
    assert all(texts(r)[1] == described(SHOT, 32, 16) for r in results)


async def test_a_failed_description_is_a_placeholder_and_a_loss_and_is_tried_again(monkeypatch) -> None:
    """The vision upstream's key variable is unset: the request goes on with a placeholder; once the
    key is there the next request gets the description (a failure is not cached)."""
    monkeypatch.delenv("GW_VISION_KEY", raising=False)
    s = stage(upstream={"type": "simulator", "api_key_env": "GW_VISION_KEY"})
    ctx = ctx_for()
    shaped, _ = await run_stage(s, [], request=conversation(data_url(SHOT)), ctx=ctx)
    assert texts(shaped)[1] == TextPart("[image not described: upstream 'p.1.describe_images.vision' has no API key: "
                                        "environment variable GW_VISION_KEY is not set]")
    ((what, detail),) = [(loss.what, loss.detail) for loss in ctx.losses]
    assert what == "image_undescribed" and "GW_VISION_KEY" in detail
    monkeypatch.setenv("GW_VISION_KEY", "k")
    shaped, _ = await run_stage(s, [], request=conversation(data_url(SHOT)), ctx=ctx_for())
    assert texts(shaped)[1] == described(SHOT, 32, 16)


async def test_a_slow_vision_model_times_out_into_a_placeholder() -> None:
    s = stage(upstream={"type": "simulator", "options": {"chunk_delay_s": 5}}, timeout_s=0.2)
    ctx = ctx_for()
    with trio.fail_after(3):
        shaped, _ = await run_stage(s, [], request=conversation(data_url(SHOT)), ctx=ctx)
    assert texts(shaped)[1] == TextPart("[image not described: no answer within 0.2 s]")
    assert [loss.what for loss in ctx.losses] == ["image_undescribed"]


async def test_an_http_image_is_described_by_url() -> None:
    s = stage()
    shaped, _ = await run_stage(s, [], request=conversation("https://example.com/a.png"), ctx=ctx_for())
    assert texts(shaped)[1] == TextPart("[image described by deepseek-v4-flash: I see an image at https://example.com/a.png.]")


async def test_conformance() -> None:
    await check_stage(stage())
    await check_stage(stage(), request=conversation(data_url(SHOT)))


def test_options_are_validated_with_their_path() -> None:
    with pytest.raises(ConfigError, match=r"stage 1 \(describe_images\).*upstream"):
        build_stage({"describe_images": {"model": "x"}}, pipeline_id="p", index=1)
    with pytest.raises(ConfigError, match="unknown field"):
        stage(colour="red")
    with pytest.raises(ConfigError, match="base_url"):
        stage(upstream={"type": "openai_chat"})
    with pytest.raises(ConfigError, match="unknown profile"):
        stage(upstream={"type": "openai_chat", "base_url": "http://h", "profile": "nope"})


def test_the_base64_is_decoded_for_the_digest() -> None:
    from stages.describe_images.describer import digest
    assert digest(data_url(SHOT)) == hashlib.sha256(SHOT).hexdigest()
    assert digest("data:image/png;base64," + base64.b64encode(SHOT).decode()) == digest(data_url(SHOT))
    assert digest("https://x/y.png") == hashlib.sha256(b"https://x/y.png").hexdigest()
    assert msgspec.json.encode(digest("data:,notbase64")).decode()
