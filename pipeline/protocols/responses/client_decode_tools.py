"""Responses ``tools`` and ``tool_choice`` → neutral ``ToolSpec`` / ``ToolChoice`` (§2.3, §5.3).

function and custom map one to one, local_shell becomes a function-shaped spec, a namespace is
flattened to ``<ns>__<name>``. A client-executed ``tool_search`` (Codex's, ``execution: "client"``:
Codex runs the search over its deferred tools) is offered as a function of that name; hosted tools
(web_search, a server-run tool_search, ...) are dropped with a loss. The tools a
``tool_search_output`` loaded are decoded here too (``decode_tools`` on its ``tools``).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from pipeline.errors import RequestError
from pipeline.model import ServerTool, ToolChoice, ToolSpec
from pipeline.protocols.responses.client_decode_reader import Reader
from pipeline.protocols.responses.models import (
    CustomToolParam,
    FunctionToolParam,
    NamespaceToolParam,
    ToolChoiceParam,
    ToolHead,
    ToolSearchToolParam,
)
from pipeline.protocols.values import decode_value

LOCAL_SHELL = "local_shell"
LOCAL_SHELL_DESCRIPTION = (
    "Run a command on the user's machine. `command` is the argv array, e.g. "
    '["bash", "-lc", "ls"]; `workdir` the working directory; `timeout_ms` a timeout.'
)
LOCAL_SHELL_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "command": {"type": "array", "items": {"type": "string"}},
        "workdir": {"type": "string"},
        "timeout_ms": {"type": "integer"},
    },
    "required": ["command"],
    "additionalProperties": False,
}

TOOL_SEARCH = "tool_search"  # the tool's name: the type has none of its own, Codex calls it so
TOOL_SEARCH_DESCRIPTION = "Search the deferred tools; the tools found become callable on the next turn."
TOOL_SEARCH_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"query": {"type": "string"}, "limit": {"type": "number"}},
    "required": ["query"],
    "additionalProperties": False,
}

_STR_CHOICES = ("auto", "none", "required")
_CHOICE: Any = str | ToolChoiceParam | None
_CHOICE_EXPECTED = 'expected one of "auto", "none", "required" or an object'


def flat_name(namespace: str | None, name: str) -> str:
    """The upstream-facing name of a (possibly namespaced) client tool."""
    return f"{namespace}__{name}" if namespace else name


def decode_tools(raws: list[msgspec.Raw], reader: Reader, where: str = "tools"
                 ) -> tuple[tuple[ToolSpec, ...], frozenset[str]]:
    """``tools`` (or the tools of a ``tool_search_output`` at ``where``) → the specs, and the
    names among them of client-executed ``tool_search`` tools (the encoder answers their calls
    with a ``tool_search_call`` item)."""
    specs: list[ToolSpec] = []
    searches: set[str] = set()
    for i, raw in enumerate(raws):
        path = f"{where}.{i}"
        kind = decode_value(raw, ToolHead, path).type
        if kind == "namespace":
            specs.extend(_namespace(raw, path, reader))
            continue
        if kind == TOOL_SEARCH:
            spec = _search(raw, path, reader)
            if spec is not None:
                searches.add(spec.name)
        else:
            spec = _tool(raw, kind, path, None, reader)
        if spec is not None:
            specs.append(spec)
    return tuple(specs), frozenset(searches)


def _search(raw: msgspec.Raw, path: str, reader: Reader) -> ToolSpec | None:
    search = decode_value(raw, ToolSearchToolParam, path)
    if search.execution != "client":
        return _tool(raw, TOOL_SEARCH, path, None, reader)  # hosted: a loss, kept as a ServerTool
    return ToolSpec(
        name=TOOL_SEARCH,
        description=search.description or TOOL_SEARCH_DESCRIPTION,
        parameters=search.parameters or TOOL_SEARCH_PARAMETERS,
    )


def _tool(raw: msgspec.Raw, kind: str, path: str, namespace: str | None, reader: Reader) -> ToolSpec | None:
    if kind == "function":
        fn = decode_value(raw, FunctionToolParam, path)
        return ToolSpec(
            name=flat_name(namespace, fn.name),
            description=fn.description or "",
            parameters=fn.parameters or {},
            strict=True if fn.strict else None,
            namespace=namespace,
            client_name=fn.name if namespace else None,
        )
    if kind == "custom":
        custom = decode_value(raw, CustomToolParam, path)
        fmt = custom.format
        grammar = syntax = None
        if fmt is not None and fmt.type == "grammar":
            if fmt.definition is None:
                raise RequestError(f"{path}.format.definition: field required for a grammar format")
            grammar, syntax = fmt.definition, fmt.syntax or "lark"
        elif fmt is not None and fmt.type != "text":
            reader.lose("custom_tool_format", f"{path}.format: type {fmt.type!r} not understood; sent as text")
        return ToolSpec(
            name=flat_name(namespace, custom.name),
            description=custom.description or "",
            kind="custom",
            grammar=grammar,
            syntax=syntax,
            namespace=namespace,
            client_name=custom.name if namespace else None,
        )
    if kind == LOCAL_SHELL and namespace is None:
        return ToolSpec(
            name=LOCAL_SHELL,
            description=LOCAL_SHELL_DESCRIPTION,
            parameters=LOCAL_SHELL_PARAMETERS,
            kind="local_shell",
        )
    reader.lose("server_tool", f"{path}: {kind} tool dropped (hosted tools cannot run on this upstream)")
    options = msgspec.json.decode(raw)
    if isinstance(options, dict):
        options.pop("type", None)
        name = options.pop("name", "")
        reader.server_tools.append(ServerTool(kind=kind, name=name if isinstance(name, str) else "", options=options))
    return None


def _namespace(raw: msgspec.Raw, path: str, reader: Reader) -> list[ToolSpec]:
    ns = decode_value(raw, NamespaceToolParam, path)
    if ns.description:
        reader.lose("namespace_description", f"{path}: description of namespace {ns.name!r} not sent")
    specs: list[ToolSpec] = []
    for j, inner in enumerate(ns.tools):
        ipath = f"{path}.tools.{j}"
        spec = _tool(inner, decode_value(inner, ToolHead, ipath).type, ipath, ns.name, reader)
        if spec is not None:
            specs.append(spec)
    return specs


def decode_tool_choice(raw: msgspec.Raw, tools: tuple[ToolSpec, ...], reader: Reader) -> ToolChoice | None:
    """``tool_choice``: a mode string or an object; unsupported forms fall back to a mode + loss.
    ``raw`` is empty when the field was absent."""
    if len(raw) == 0:
        return None
    value = decode_value(raw, _CHOICE, "tool_choice", expected=_CHOICE_EXPECTED)
    if value is None:
        return None
    if isinstance(value, str):
        if value not in _STR_CHOICES:
            raise RequestError(f"tool_choice: expected one of \"auto\", \"none\", \"required\", got {value!r}")
        return ToolChoice(mode=value)  # type: ignore[arg-type]  # a str in _STR_CHOICES: one of the modes
    if value.type in ("function", "custom"):
        if not value.name:
            raise RequestError("tool_choice.name: field required")
        return ToolChoice(mode="tool", name=_resolve(value.name, tools))
    if value.type == "allowed_tools":
        mode: Literal["required", "auto"] = "required" if value.mode == "required" else "auto"
        reader.lose("tool_choice", f"tool_choice allowed_tools sent as {mode!r}; all tools stay offered")
        return ToolChoice(mode=mode)
    reader.lose("tool_choice", f"tool_choice type {value.type!r} cannot be forced here; sent as 'auto'")
    return ToolChoice(mode="auto")


def _resolve(name: str, tools: tuple[ToolSpec, ...]) -> str:
    """A forced tool named as the client knows it → its upstream-facing (flattened) name."""
    if any(spec.name == name for spec in tools):
        return name
    matches = [spec.name for spec in tools if spec.client_name == name]
    return matches[0] if len(matches) == 1 else name


__all__ = [
    "LOCAL_SHELL",
    "LOCAL_SHELL_PARAMETERS",
    "TOOL_SEARCH",
    "decode_tool_choice",
    "decode_tools",
    "flat_name",
]
