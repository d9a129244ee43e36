"""Anthropic content blocks → neutral parts, one message at a time (../shared/PROTOCOLS.md §1.3).

Blocks arrive as dicts; we dispatch on ``type`` and convert known types to their view Struct
(``values.decode_value``, shared with the other codecs), so a malformed known block is a
``RequestError`` naming its path and an unknown block is a ``Loss``. ``BlockReader`` collects the losses of one request.
"""

from __future__ import annotations

from typing import Any

import msgspec

from pipeline.errors import RequestError
from pipeline.events import SearchHit
from pipeline.losses import record
from pipeline.model import (
    ImagePart,
    Loss,
    Message,
    Part,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from pipeline.protocols.anthropic.helpers import open_hit, ours
from pipeline.protocols.anthropic.models import (
    DocumentBlockParam,
    ImageBlockParam,
    RawBlock,
    RedactedThinkingBlockParam,
    SearchResultBlockParam,
    SourceParam,
    TextBlockParam,
    ThinkingBlockParam,
    ToolReferenceBlockParam,
    ToolResultBlockParam,
    ToolUseBlockParam,
)
from pipeline.protocols.values import decode_value
from pipeline.server_tools import search_error_text, search_text

_ENCODER = msgspec.json.Encoder()

# Anthropic-hosted tool traffic replayed in assistant turns; a Chat backend cannot use it.
SERVER_BLOCKS = frozenset(
    {
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "tool_search_tool_result",
        "mcp_tool_use",
        "mcp_tool_result",
        "container_upload",
    }
)


class BlockReader:
    """Converts the blocks of one request, recording what it cannot carry in ``losses``."""

    def __init__(self) -> None:
        self.losses: list[Loss] = []

    def lose(self, what: str, detail: str) -> None:
        record(self.losses, what, detail)

    def block_type(self, raw: RawBlock, path: str) -> str:
        kind = raw.get("type")
        if not isinstance(kind, str):
            raise RequestError(f"{path}.type: field required (a string)")
        return kind

    def user_blocks(self, blocks: list[RawBlock], path: str) -> tuple[list[Message], list[Part]]:
        """A user turn: ``(tool results, other parts)``; results go first (§1.3)."""
        results: list[Message] = []
        parts: list[Part] = []
        for i, raw in enumerate(blocks):
            bpath = f"{path}.{i}"
            kind = self.block_type(raw, bpath)
            if kind == "tool_result":
                results.append(self._tool_result(raw, bpath))
            elif kind in ("tool_use", "thinking", "redacted_thinking"):
                self.lose("misplaced_block", f"{bpath}: {kind} in a user message dropped")
            else:
                parts.extend(self.common(raw, kind, bpath))
        return results, parts

    def assistant_turns(self, blocks: list[RawBlock], path: str) -> list[Message]:
        """An assistant turn as upstream turns: a gateway web search (``server_tool_use`` named
        ``web_search``, then its ``web_search_tool_result``) is a tool call, then a tool message
        with the text the model read (rebuilt from the hits sealed in ``encrypted_content``), then
        the rest of the turn as a new assistant message."""
        turns: list[Message] = []
        parts: list[Part] = []
        queries: dict[str, str] = {}
        for i, raw in enumerate(blocks):
            bpath = f"{path}.{i}"
            kind = self.block_type(raw, bpath)
            if kind == "server_tool_use" and raw.get("name") == "web_search":
                block = decode_value(raw, ToolUseBlockParam, bpath)
                query = block.input.get("query") if isinstance(block.input, dict) else None
                queries[block.id] = query if isinstance(query, str) else ""
                args = _ENCODER.encode(block.input).decode()
                parts.append(ToolCallPart(id=block.id, name=block.name, arguments=args))
            elif kind == "web_search_tool_result" and raw.get("tool_use_id") in queries:
                call_id = str(raw.get("tool_use_id"))
                turns.append(Message(role="assistant", parts=tuple(parts)))
                text, is_error = self._search_text(raw.get("content"), queries[call_id], bpath)
                turns.append(Message(role="tool", parts=(ToolResultPart(call_id, (TextPart(text),), is_error),)))
                parts = []
            else:
                parts.extend(self.assistant_block(raw, kind, bpath))
        if parts or not turns:
            turns.append(Message(role="assistant", parts=tuple(parts)))
        return turns

    def _search_text(self, content: Any, query: str, path: str) -> tuple[str, bool]:
        if isinstance(content, dict):
            code = content.get("error_code")
            return search_error_text(code if isinstance(code, str) else "unavailable"), True
        hits: list[SearchHit] = []
        for entry in content if isinstance(content, list) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
                continue
            data = entry.get("encrypted_content")
            hit = open_hit(data) if isinstance(data, str) else None
            if hit is None:
                self.lose("web_search_result", f"{path}: a result not from this gateway: only its URL and title kept")
                title = entry.get("title")
                hit = SearchHit(url=entry["url"], title=title if isinstance(title, str) else "")
            hits.append(hit)
        return search_text(query, hits), False

    def assistant_blocks(self, blocks: list[RawBlock], path: str) -> list[Part]:
        parts: list[Part] = []
        for i, raw in enumerate(blocks):
            bpath = f"{path}.{i}"
            parts.extend(self.assistant_block(raw, self.block_type(raw, bpath), bpath))
        return parts

    def assistant_block(self, raw: RawBlock, kind: str, bpath: str) -> list[Part]:
        if kind == "tool_use":
            block = decode_value(raw, ToolUseBlockParam, bpath)
            args = _ENCODER.encode(block.input).decode()
            return [ToolCallPart(id=block.id, name=block.name, arguments=args)]
        if kind == "thinking":
            think = decode_value(raw, ThinkingBlockParam, bpath)
            return [ThinkingPart(think.thinking, think.signature)]
        if kind == "redacted_thinking":
            red = decode_value(raw, RedactedThinkingBlockParam, bpath)
            return [ThinkingPart("", red.data, redacted=True)]
        if kind == "tool_result":
            self.lose("misplaced_block", f"{bpath}: tool_result in an assistant message dropped")
            return []
        return self.common(raw, kind, bpath)

    def system_blocks(self, blocks: list[RawBlock], path: str) -> list[str]:
        texts: list[str] = []
        for i, raw in enumerate(blocks):
            bpath = f"{path}.{i}"
            kind = self.block_type(raw, bpath)
            if kind == "text":
                text = decode_value(raw, TextBlockParam, bpath).text
                if text:
                    texts.append(text)
            else:
                self.lose("system_block", f"{bpath}: {kind} block in system dropped")
        return texts

    def common(self, raw: RawBlock, kind: str, path: str) -> list[Part]:
        """Blocks valid in any content position: text, image, document, search_result."""
        if kind == "text":
            block = decode_value(raw, TextBlockParam, path)
            if block.citations and not ours(block.citations):  # the gateway's own say only what the text does
                self.lose("citations", f"{path}: citations dropped")
            return [TextPart(block.text)]
        if kind == "image":
            return [self._image(decode_value(raw, ImageBlockParam, path).source, path)]
        if kind == "document":
            return self._document(decode_value(raw, DocumentBlockParam, path), path)
        if kind == "search_result":
            return [self._search_result(decode_value(raw, SearchResultBlockParam, path), path)]
        if kind == "tool_reference":
            name = decode_value(raw, ToolReferenceBlockParam, path).tool_name
            self.lose("tool_reference", f"{path}: {name} (deferred tools are always sent)")
            return [TextPart(f"[tool reference: {name}]")]
        if kind in SERVER_BLOCKS:
            self.lose("server_tool_block", f"{path}: {kind} dropped")
        else:
            self.lose("unknown_block", f"{path}: {kind} dropped")
        return []

    def _tool_result(self, raw: RawBlock, path: str) -> Message:
        block = decode_value(raw, ToolResultBlockParam, path)
        content: list[TextPart | ImagePart] = []
        if isinstance(block.content, str):
            content.append(TextPart(block.content))
        elif block.content:
            cpath = f"{path}.content"
            for i, inner in enumerate(block.content):
                ipath = f"{cpath}.{i}"
                for part in self.common(inner, self.block_type(inner, ipath), ipath):
                    if isinstance(part, TextPart | ImagePart):
                        content.append(part)
        result = ToolResultPart(block.tool_use_id, tuple(content), bool(block.is_error))
        return Message(role="tool", parts=(result,))

    def _image(self, source: SourceParam, path: str) -> Part:
        if source.type == "base64" and source.data is not None:
            return ImagePart(f"data:{source.media_type or 'image/png'};base64,{source.data}")
        if source.type == "url" and source.url:
            return ImagePart(source.url)
        self.lose("image", f"{path}: {source.type} image source dropped")
        return TextPart(f"[image omitted: {source.type} source]")

    def _document(self, block: DocumentBlockParam, path: str) -> list[Part]:
        source = block.source
        header = "".join(
            f"{label}: {value}\n" for label, value in (("Document", block.title), ("Context", block.context)) if value
        )
        if source.type == "text" and source.data is not None:
            return [TextPart(f"{header}\n{source.data}" if header else source.data)]
        if source.type == "content" and source.content is not None:
            if isinstance(source.content, str):
                return [TextPart(f"{header}\n{source.content}" if header else source.content)]
            parts: list[Part] = [TextPart(header)] if header else []
            cpath = f"{path}.source.content"
            for i, inner in enumerate(source.content):
                ipath = f"{cpath}.{i}"
                parts.extend(self.common(inner, self.block_type(inner, ipath), ipath))
            return parts
        label = block.title or source.media_type or source.type
        self.lose("document", f"{path}: {source.type} {source.media_type or ''} document omitted".rstrip())
        return [TextPart(f"[document omitted: {label}]")]

    def _search_result(self, block: SearchResultBlockParam, path: str) -> TextPart:
        texts: list[str] = []
        for i, inner in enumerate(block.content):
            ipath = f"{path}.content.{i}"
            if self.block_type(inner, ipath) == "text":
                texts.append(decode_value(inner, TextBlockParam, ipath).text)
            else:
                self.lose("search_result", f"{ipath}: non-text search result content dropped")
        body = "\n\n".join(texts)
        return TextPart(f"Search result: {block.title}\nSource: {block.source}\n\n{body}")


__all__ = ["SERVER_BLOCKS", "BlockReader"]
