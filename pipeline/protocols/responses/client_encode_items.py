"""Building Responses output items and Response fields from neutral data (PROTOCOLS §2.4-2.5, §5.6).

Pure helpers for core.py: the tool-call item for a finished block (function, custom, local_shell
with a function_call fallback when the arguments do not fit the action), usage, the echoed
``tool_choice``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from pipeline.events import SearchResult, Usage
from pipeline.model import ChatRequest
from pipeline.protocols.responses import output_models as w
from pipeline.protocols.responses.client_decode_echo import ResponsesEcho, tool_choice_echo

_DECODER = msgspec.json.Decoder()


def web_search_item(call_id: str) -> w.ResponseWebSearchCall:
    """A web_search_call for the gateway's search call ``call_id`` (its id carries the call's)."""
    return w.ResponseWebSearchCall(id="ws_" + call_id, status="in_progress", action=w.SearchAction(query=""))


def web_search_call_id(item: w.ResponseWebSearchCall) -> str:
    return item.id.removeprefix("ws_")


def web_search_action(arguments: str) -> w.SearchAction:
    """The search action of the model's ``{"query": ...}`` arguments."""
    try:
        value = _DECODER.decode(arguments or "{}")
    except msgspec.DecodeError:
        value = None
    query = value.get("query") if isinstance(value, dict) else None
    return w.SearchAction(query=query if isinstance(query, str) else "")


def searched_web_item(item: w.ResponseWebSearchCall, result: SearchResult) -> w.ResponseWebSearchCall:
    """The finished web_search_call: completed with the hits' URLs as sources, or failed."""
    if result.error is not None:
        return msgspec.structs.replace(item, status="failed")
    sources = [w.SearchSource(url=hit.url) for hit in result.hits]
    return msgspec.structs.replace(item, status="completed",
                                   action=msgspec.structs.replace(item.action, sources=sources))


class ToolTarget(msgspec.Struct, frozen=True):
    """How a neutral tool call is shown to the client."""

    kind: str  # function | custom | local_shell | tool_search
    call_id: str
    name: str
    namespace: str | msgspec.UnsetType = msgspec.UNSET


def target(request: ChatRequest, echo: ResponsesEcho, name: str | None, call_id: str) -> ToolTarget:
    """How to show a call to ``name`` (the original flat name): the decoder's facts first, then
    the offered tools; unknown names are plain functions."""
    name = name or ""
    fact = echo.tool_targets.get(name)
    if fact is not None:
        return ToolTarget(fact.kind, call_id, fact.name, fact.namespace or msgspec.UNSET)
    spec = request.tool(name)
    if spec is None:
        return ToolTarget("function", call_id, name)
    namespace = spec.namespace if spec.namespace else msgspec.UNSET
    return ToolTarget(spec.kind, call_id, spec.client_name or spec.name, namespace)


def is_json(text: str) -> bool:
    try:
        _DECODER.decode(text.encode())
    except msgspec.DecodeError:
        return False
    return True


def shell_action(arguments: str) -> w.LocalShellExec | None:
    """``{"command": [...], "workdir"?, "timeout_ms"?}`` → the exec action, or ``None`` when the
    arguments do not have that shape (the call is then shown as a function_call)."""
    try:
        value: Any = _DECODER.decode(arguments.encode())
    except msgspec.DecodeError:
        return None
    if not isinstance(value, dict):
        return None
    command = value.get("command")
    workdir = value.get("workdir", value.get("working_directory"))
    timeout = value.get("timeout_ms")
    if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
        return None
    if workdir is not None and not isinstance(workdir, str):
        return None
    if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool)):
        return None
    return w.LocalShellExec(
        command=command,
        timeout_ms=int(timeout) if timeout is not None else None,
        working_directory=workdir,
        env={},
        user=None,
    )


def function_item(item_id: str, tool: ToolTarget, arguments: str, status: str) -> w.ResponseFunctionToolCall:
    return w.ResponseFunctionToolCall(
        id=item_id, call_id=tool.call_id, name=tool.name, arguments=arguments, status=status,
        namespace=tool.namespace)


def search_item(item_id: str, tool: ToolTarget, arguments: str, status: str) -> w.ResponseToolSearchCall:
    """A client-executed tool search's call: its arguments as the JSON value they hold (as sent
    when they are not JSON: Codex then answers with a failed search the model can read)."""
    try:
        value: Any = _DECODER.decode(arguments.encode())
    except msgspec.DecodeError:
        value = arguments
    return w.ResponseToolSearchCall(id=item_id, call_id=tool.call_id, execution="client", status=status,
                                    arguments=value)


def custom_item(item_id: str, tool: ToolTarget, text: str, status: str) -> w.ResponseCustomToolCall:
    return w.ResponseCustomToolCall(
        id=item_id, call_id=tool.call_id, name=tool.name, input=text, status=status, namespace=tool.namespace)


def usage(u: Usage) -> w.ResponseUsage:
    """Neutral usage → Responses usage (input includes cached; output includes reasoning)."""
    return w.ResponseUsage(
        input_tokens=u.input_tokens,
        input_tokens_details=w.InputTokensDetails(cached_tokens=u.cached_input_tokens),
        output_tokens=u.output_tokens,
        output_tokens_details=w.OutputTokensDetails(reasoning_tokens=u.reasoning_tokens),
        total_tokens=u.input_tokens + u.output_tokens,
    )


def tool_choice(request: ChatRequest, echo: ResponsesEcho) -> str | dict[str, str]:
    """The ``tool_choice`` to echo on the Response, named as the client knows the tool."""
    echoed = echo.tool_choice
    if echoed is not None:
        return echoed if isinstance(echoed, str) else dict(echoed)
    if request.tool_choice is None:
        return "auto"
    return tool_choice_echo(request.tool_choice, request.tools)


def opt(value: Any) -> Any:
    return msgspec.UNSET if value is None else value


__all__ = [
    "ToolTarget",
    "custom_item",
    "function_item",
    "is_json",
    "opt",
    "search_item",
    "searched_web_item",
    "web_search_action",
    "web_search_call_id",
    "web_search_item",
    "shell_action",
    "target",
    "tool_choice",
    "usage",
]
