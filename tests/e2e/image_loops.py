"""Screenshots in the clients' tool loops, through the official SDKs: Claude Code's ``Read`` of a PNG
(an ``image`` block inside a ``tool_result``), Codex's ``view_image`` (an ``input_image`` inside a
``function_call_output``), a Chat user's ``image_url``; and real PNG files to put in them."""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib
from typing import Any

import anthropic
import openai

from tests.e2e.messages_loop import claude_loop

READ = {"name": "Read", "description": "Read a file from the local filesystem.",
        "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}}
VIEW_IMAGE = {"type": "function", "name": "view_image", "strict": False,
              "description": "View a local image file from the filesystem when visual inspection is needed.",
              "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"],
                             "additionalProperties": False}}


def png(width: int, height: int, seed: int = 0) -> bytes:
    """A valid RGB PNG of ``width`` x ``height`` whose pixels depend on ``seed`` (noise, so it does
    not compress: about 3 bytes per pixel)."""
    rows = []
    state = seed * 2654435761 + 1
    for _ in range(height):
        row = bytearray(width * 3)
        for i in range(len(row)):
            state = (state * 1103515245 + 12345) & 0x7FFFFFFF
            row[i] = state >> 16 & 0xFF
        rows.append(b"\0" + bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows), 1))
            + chunk(b"IEND", b""))


def seen(image: bytes, width: int, height: int) -> str:
    """What the simulator, as a vision model, says of ``image`` (``upstreams.simulator.vision``)."""
    return f"image/png {width}x{height}, {len(image)} bytes, sha256 {hashlib.sha256(image).hexdigest()[:16]}"


def data_url(image: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(image).decode()


def claude_read_loop(base_url: str, script: str, image: bytes, *, steps: int = 3) -> list[anthropic.types.Message]:
    """Claude Code's loop (its shape, thinking on): every ``Read`` the model calls returns
    ``image`` as Claude Code does, a base64 ``image`` block as the tool_result's content."""
    block = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": base64.b64encode(image).decode()}}
    return claude_loop(base_url, script=script, steps=steps, tools=[READ], result=lambda _: [block])


def codex_view_image_loop(base_url: str, script: str, image: bytes, *, steps: int = 3,
                          model: str = "deepseek-v4-pro") -> list[Any]:
    """Codex's loop: every ``view_image`` call's output is the image as Codex 0.169 returns it (a
    ``function_call_output`` whose output is one ``input_image`` with a data URL)."""
    client = openai.OpenAI(base_url=base_url, api_key="dummy", max_retries=0)
    items: list[dict[str, Any]] = [{"type": "message", "role": "user",
                                    "content": [{"type": "input_text", "text": script}]}]
    responses = []
    for _ in range(steps):
        with client.responses.stream(model=model, input=items, tools=[VIEW_IMAGE], store=False,  # type: ignore[arg-type]
                                     reasoning={"effort": "high", "summary": "auto"},
                                     include=["reasoning.encrypted_content"]) as stream:
            response = stream.get_final_response()
        responses.append(response)
        calls = [o for o in response.output if o.type == "function_call"]
        if not calls:
            break
        items += [o.model_dump(exclude_none=True, exclude={"id", "status"}) for o in response.output]
        items += [{"type": "function_call_output", "call_id": c.call_id,
                   "output": [{"type": "input_image", "image_url": data_url(image), "detail": "high"}]}
                  for c in calls]
    return responses


def chat_image(base_url: str, text: str, image: bytes, model: str = "deepseek-v4-pro") -> str:
    """A Chat user's turn with an ``image_url`` part; the answer's text."""
    client = openai.OpenAI(base_url=base_url, api_key="dummy", max_retries=0)
    answer = client.chat.completions.create(model=model, stream=False, messages=[{"role": "user", "content": [
        {"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": data_url(image)}}]}])
    return answer.choices[0].message.content or ""


__all__ = ["READ", "VIEW_IMAGE", "chat_image", "claude_read_loop", "codex_view_image_loop", "data_url", "png", "seen"]
