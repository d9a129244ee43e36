"""What the Responses request decoder tells the response encoder (client decode → client encode).

Frozen and typed: the runner keeps it beside the request (``pipeline.protocols.base.Reply``) and
hands it to the encoder it builds, so no request stage sees or changes it. The tool facts are
taken as decoded, before any stage renames a ``ToolSpec`` for the upstream (``tool_ids`` does,
and maps ``BlockStart.name`` back).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import msgspec

from pipeline.model import ToolChoice, ToolSpec


class ClientTool(msgspec.Struct, frozen=True):
    """How the client knows a tool that is not a plain function: its kind (``tool_search``: a
    client-executed search, whose call is a ``tool_search_call`` item), its own (inner) name, and
    the namespace it was flattened from."""

    kind: Literal["function", "custom", "local_shell", "tool_search"]
    name: str
    namespace: str | None = None


class ResponsesEcho(msgspec.Struct, frozen=True, kw_only=True):
    """Attributes:
    tool_targets: flat tool name → how the client knows it, for each custom, local_shell or
        namespaced tool (a plain function is shown by its name).
    tool_choice: the ``tool_choice`` to echo on the Response, named as the client knows the tool
        (``None``: the client sent none).
    metadata: the client's ``metadata``, echoed on the Response.
    max_output_tokens: the client's ``max_output_tokens`` (``None``: absent), echoed on the
        Response as sent, not the budget ``token_budget`` computed for the upstream.
    reasoning_summary: the client's ``reasoning.summary``: ``"none"`` or absent (the API writes
        no summary unless asked; Codex leaves the field out for its ``none``) withholds the
        reasoning text, the reasoning item still carrying its ``encrypted_content``; ``auto``,
        ``concise`` and ``detailed`` show it as the summary.
    previous_response_id: the stored response this request continues, shown on the Response.
    store, include, prompt_cache_key: the client's ``store``, ``include`` and
        ``prompt_cache_key`` as sent (``None``: absent); kept with the request's facts, not echoed
        on the Response (yet).
    """

    tool_targets: Mapping[str, ClientTool] = msgspec.field(default_factory=dict)
    tool_choice: str | Mapping[str, str] | None = None
    metadata: Mapping[str, object] | None = None
    store: bool | None = None
    include: tuple[str, ...] | None = None
    prompt_cache_key: str | None = None
    reasoning_summary: str | None = None
    max_output_tokens: int | None = None
    previous_response_id: str | None = None


NO_ECHO = ResponsesEcho()  # a request whose decoder had nothing to tell


def tool_targets(tools: tuple[ToolSpec, ...], searches: frozenset[str] = frozenset()) -> dict[str, ClientTool]:
    """The ``tool_targets`` of the decoded tools (``searches``: the client-executed tool_search names)."""
    targets = {spec.name: ClientTool(spec.kind, spec.client_name or spec.name, spec.namespace)
               for spec in tools if spec.kind != "function" or spec.namespace}
    targets.update((name, ClientTool("tool_search", name)) for name in searches)
    return targets


def tool_choice_echo(choice: ToolChoice, tools: tuple[ToolSpec, ...]) -> str | dict[str, str]:
    """``choice`` as the client wrote it: a mode, or the tool by the name the client knows."""
    if choice.mode != "tool":
        return choice.mode
    spec = next((s for s in tools if s.name == choice.name), None)
    if spec is None:
        return {"type": "function", "name": choice.name or ""}
    kind = "custom" if spec.kind == "custom" else "function"
    return {"type": kind, "name": spec.client_name or spec.name}


__all__ = ["NO_ECHO", "ClientTool", "ResponsesEcho", "tool_choice_echo", "tool_targets"]
