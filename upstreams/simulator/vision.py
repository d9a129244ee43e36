"""The simulator as a vision model.

A model with image input (``config.VISION_MODELS``: DeepSeek's Flash, "image input on Flash only",
PROTOCOLS.md §4.1; ``validate`` refuses an image to any other DeepSeek model with a 400) answers a
prompt that carries images and no directive with a deterministic description of each (its media
type, size in pixels for a PNG, byte count and the first 16 hex digits of the SHA-256 of its
bytes), so a test can tell exactly which image a model saw; the ``SIM:describe`` step does the
same inside a script, for the newest message that carries images.

Messages are Chat-shaped dicts (the Responses and Messages modes convert to them first).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from typing import Any

_PNG = b"\x89PNG\r\n\x1a\n"


def image_urls(message: dict[str, Any]) -> list[str]:
    """The image URLs of a Chat message's content parts, in order."""
    content = message.get("content")
    if not isinstance(content, list):
        return []
    urls: list[str] = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str):
                urls.append(url)
    return urls


def describe_image(url: str) -> str:
    """One line that names the image exactly: ``image/png 64x48, 1234 bytes, sha256 0123...``."""
    if not url.startswith("data:"):
        return f"an image at {url}"
    head, _, data = url[5:].partition(",")
    mime = head.split(";")[0] or "application/octet-stream"
    try:
        raw = base64.b64decode(data, validate=False) if ";base64" in head else data.encode()
    except (binascii.Error, ValueError):
        return f"{mime}, undecodable base64"
    size = ""
    if raw.startswith(_PNG) and len(raw) >= 24:
        width, height = struct.unpack(">II", raw[16:24])
        size = f" {width}x{height}"
    return f"{mime}{size}, {len(raw)} bytes, sha256 {hashlib.sha256(raw).hexdigest()[:16]}"


def describe_all(urls: list[str]) -> str:
    if len(urls) == 1:
        return f"I see {describe_image(urls[0])}."
    return " ".join(f"Image {k}: {describe_image(url)}." for k, url in enumerate(urls, 1))


def describe_latest(messages: list[dict[str, Any]]) -> str:
    """The description of the images of the newest message that carries any."""
    for message in reversed(messages):
        urls = image_urls(message)
        if urls:
            return describe_all(urls)
    return "I see no image."


__all__ = ["describe_all", "describe_image", "describe_latest", "image_urls"]
