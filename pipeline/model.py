"""The neutral request: what every client codec decodes into and every upstream encodes from.

Frozen msgspec Structs; edit with ``msgspec.structs.replace``. Content parts are a tagged union
(``kind``), so a request round-trips through ``msgspec.json`` for goldens and debugging.

Conventions:
- A ``tool`` message carries exactly one ``ToolResultPart`` (Chat's shape); client decoders split
  Anthropic's multi-result user turns and Responses' ``*_output`` items into such messages.
- ``Message.reasoning`` is the text to replay upstream as ``reasoning_content``; ``None`` means
  "not known". ``ThinkingPart`` is what the client echoed (text + signature) before the
  thinking filter resolves it.
- What a client decoder tells its encoder (tool names as the client knows them, metadata to
  echo) is not here: it is the codec's frozen echo (``pipeline.protocols.base.Reply``), which
  request stages never see.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import msgspec

Role = Literal["system", "user", "assistant", "tool"]
Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]


class TextPart(msgspec.Struct, frozen=True, tag="text", tag_field="kind"):
    text: str


class ImagePart(msgspec.Struct, frozen=True, tag="image", tag_field="kind"):
    """An image as a URL: ``data:<mime>;base64,...`` or http(s)."""

    url: str
    detail: str | None = None


class ThinkingPart(msgspec.Struct, frozen=True, tag="thinking", tag_field="kind"):
    """Reasoning the client echoed back. ``signature`` is opaque: ours (an envelope) or foreign.

    ``redacted`` marks Anthropic ``redacted_thinking`` (text empty, data in ``signature``).
    """

    text: str
    signature: str | None = None
    redacted: bool = False


class ToolCallPart(msgspec.Struct, frozen=True, tag="tool_call", tag_field="kind"):
    """A call the assistant made. ``arguments`` is the raw JSON text (Chat's form).

    ``origin`` records the client-side item type so a codec can re-emit it faithfully:
    ``function`` (default), ``custom`` (Responses freeform; arguments ``{"input": ...}``),
    ``local_shell`` (Responses local_shell_call).
    """

    id: str
    name: str
    arguments: str
    origin: Literal["function", "custom", "local_shell"] = "function"


class ToolResultPart(msgspec.Struct, frozen=True, tag="tool_result", tag_field="kind"):
    call_id: str
    content: tuple[TextPart | ImagePart, ...] = ()
    is_error: bool = False


Part = TextPart | ImagePart | ThinkingPart | ToolCallPart | ToolResultPart


class Message(msgspec.Struct, frozen=True, kw_only=True):
    role: Role
    parts: tuple[Part, ...] = ()
    reasoning: str | None = None
    name: str | None = None
    # What the upstream that produced ``reasoning`` needs back with it: (upstream id, opaque data)
    # from its UpstreamSeal. An upstream encoder sends the data only to that same upstream.
    upstream_seal: tuple[str, str] | None = None


class ToolSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A tool offered to the model.

    ``kind`` ``function`` has a JSON schema in ``parameters``. ``custom`` is a Responses freeform
    tool (``grammar`` holds its Lark/regex definition, ``syntax`` its flavour); upstream it
    becomes a function with one string parameter ``input``. ``namespace`` is set when a
    Responses ``namespace`` tool was flattened: ``name`` is then the flattened name and
    ``client_name`` the inner name the client knows.
    """

    name: str
    description: str = ""
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    kind: Literal["function", "custom", "local_shell"] = "function"
    grammar: str | None = None
    syntax: str | None = None
    strict: bool | None = None
    namespace: str | None = None
    client_name: str | None = None


class ServerTool(msgspec.Struct, frozen=True, kw_only=True):
    """A tool the client expects its provider to run (Anthropic ``web_search_20250305``, Responses
    ``web_search``, ...): never offered upstream as it is (the decoder records the loss), kept so
    routing rules and gateway-run tools can see what the client asked for. ``kind`` is the
    client's type string, ``options`` the rest of the definition as sent."""

    kind: str
    name: str = ""
    options: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def is_web_search(self) -> bool:
        return self.kind.startswith("web_search")


class ToolChoice(msgspec.Struct, frozen=True, kw_only=True):
    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None


class ThinkingConfig(msgspec.Struct, frozen=True, kw_only=True):
    """What the client asked for. ``enabled=None``: the client did not say (upstream default)."""

    enabled: bool | None = None
    effort: Effort | None = None
    budget_tokens: int | None = None
    display: str | None = None


class ResponseFormat(msgspec.Struct, frozen=True, kw_only=True):
    type: Literal["text", "json_object", "json_schema"] = "text"
    schema: dict[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None


class Loss(msgspec.Struct, frozen=True):
    """Something a translation could not carry. ``what`` is a stable short key."""

    what: str
    detail: str = ""


class ChatRequest(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    messages: tuple[Message, ...] = ()
    system: tuple[str, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    server_tools: tuple[ServerTool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    user: str | None = None
    thinking: ThinkingConfig = ThinkingConfig()
    response_format: ResponseFormat | None = None
    stream: bool = False
    losses: tuple[Loss, ...] = ()

    def tool(self, name: str) -> ToolSpec | None:
        """The offered tool called ``name`` (upstream-facing name), or ``None``."""
        for spec in self.tools:
            if spec.name == name:
                return spec
        return None


def part_kind(part: Part) -> str:
    """The neutral tag of a part (``text``, ``image`` ...), for loss keys."""
    tag = type(part).__struct_config__.tag
    return tag if isinstance(tag, str) else type(part).__name__


def text_of(parts: tuple[Part, ...], where: str, lose: Callable[[str, str], None]) -> str:
    """The text parts joined by newlines; every other part is recorded with ``lose`` as not
    carried in ``where`` (an upstream encoder's system message, say)."""
    texts: list[str] = []
    for part in parts:
        if isinstance(part, TextPart):
            texts.append(part.text)
        else:
            lose(part_kind(part), f"only text is carried in a {where}")
    return "\n".join(texts)


__all__ = [
    "ChatRequest",
    "Effort",
    "ImagePart",
    "Loss",
    "Message",
    "Part",
    "ResponseFormat",
    "Role",
    "ServerTool",
    "TextPart",
    "ThinkingConfig",
    "ThinkingPart",
    "ToolCallPart",
    "ToolChoice",
    "ToolResultPart",
    "ToolSpec",
    "part_kind",
    "text_of",
]
