"""web_search: the client's hosted web search, run by the gateway.

Request way: when the client offers its hosted web search tool (``ChatRequest.server_tools``:
Anthropic ``web_search_20250305``, Responses ``web_search``), the upstream is offered a function
``web_search {query}`` instead, a ``tool_choice`` naming the hosted tool names the function, and
a ``WebSearchTool`` (``tool.py``) with the client's ``max_uses`` and domain rules is registered on
the attempt. The attempt runs the searches the model asks for and streams the next round into
the same answer (``pipeline.server_tools``); the client sees its own hosted tool's blocks. Put it
first in ``stages:``, so ``token_budget`` counts the function and ``tool_ids`` maps it.

Server calls replayed in the history (the client's decoder made them a call to the hosted tool's
name with a tool result) are renamed to the function, so the upstream sees its own turn again.
"""

from __future__ import annotations

from typing import Any

import msgspec

from pipeline.model import ChatRequest, Message, ServerTool, ToolCallPart, ToolChoice, ToolSpec
from pipeline.registry import resolve
from pipeline.stage import RequestContext, Stage, StageConfig
from stages.web_search.providers import PROVIDERS, SearchProvider
from stages.web_search.tool import MAX_QUERY, WebSearchTool

DESCRIPTION = ("Search the web for current information. Returns result titles, URLs and snippets; cite the "
               "URLs you use. Call it again with a new query when the results do not answer the question.")


def _domains(value: Any) -> tuple[str, ...]:
    return tuple(str(d) for d in value) if isinstance(value, list) else ()


class WebSearch(Stage):
    name = "web_search"

    class Config(StageConfig, frozen=True, kw_only=True):
        # The search provider: searxng, brave, or module:attr (a class taking (options, timeout_s=)).
        provider: str = "searxng"
        # The provider's options: base_url, api_key_env (the variable's NAME), ...
        options: dict[str, Any] = {}
        # Results per search.
        max_results: int = 5
        # Searches per answer when the client sets no max_uses.
        max_uses: int = 5
        # Seconds a search may take; then the model reads an error and the request goes on.
        timeout_s: float = 15.0
        # The function's name upstream.
        tool_name: str = "web_search"

        def __post_init__(self) -> None:
            if self.max_results < 1 or self.max_uses < 1 or self.timeout_s <= 0:
                raise ValueError("max_results and max_uses must be >= 1, timeout_s > 0")

    def __init__(self, config: Config, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        factory = PROVIDERS.get(config.provider) or resolve(config.provider, "web search provider")
        # Built once; its HTTP client is opened with the stage and shared by all requests.
        self._provider: SearchProvider = factory(config.options, timeout_s=config.timeout_s)

    async def open(self) -> None:
        await self._provider.open()

    async def aclose(self) -> None:
        await self._provider.aclose()

    async def on_request(self, request: ChatRequest, ctx: RequestContext) -> ChatRequest:
        hosted = next((tool for tool in request.server_tools if tool.is_web_search), None)
        if hosted is None or ctx.attempt is None:
            return request
        name = self.config.tool_name
        hosted_name = hosted.name or "web_search"
        ctx.losses[:] = [loss for loss in ctx.losses
                         if not (loss.what == "server_tool" and hosted.kind in loss.detail)]
        ctx.attempt.gateway_tools[name] = self._tool(hosted, ctx)
        unused = sorted(set(hosted.options) - _APPLIED)
        filters = hosted.options.get("filters")
        if isinstance(filters, dict):
            unused += [f"filters.{key}" for key in sorted(set(filters) - {"allowed_domains"})]
        if unused:
            ctx.lose("web_search_option", f"{hosted.kind}: {', '.join(unused)} not applied by the gateway's search "
                                          f"({self.config.provider})")
        spec = ToolSpec(name=name, description=DESCRIPTION, parameters={
            "type": "object", "properties": {"query": {"type": "string", "maxLength": MAX_QUERY,
                                                       "description": "The search query"}},
            "required": ["query"]})
        tools = tuple(t for t in request.tools if t.name != name) + (spec,)
        choice = request.tool_choice
        if choice is not None and choice.mode == "tool" and choice.name == hosted_name:
            choice = ToolChoice(mode="tool", name=name)
        messages = request.messages
        if hosted_name != name:
            messages = tuple(_renamed(m, hosted_name, name) for m in messages)
        return msgspec.structs.replace(request, tools=tools, tool_choice=choice, messages=messages)

    def _tool(self, hosted: ServerTool, ctx: RequestContext) -> WebSearchTool:
        options = hosted.options
        filters = options.get("filters")
        allow = _domains(options.get("allowed_domains"))
        if not allow and isinstance(filters, dict):
            allow = _domains(filters.get("allowed_domains"))
        max_uses = options.get("max_uses")
        return WebSearchTool(self._provider, max_uses=max_uses if isinstance(max_uses, int) and max_uses > 0
                             else self.config.max_uses, count=self.config.max_results,
                             timeout_s=self.config.timeout_s, allow=allow,
                             block=_domains(options.get("blocked_domains")), log=ctx.log)


# The hosted tool's options the gateway's search applies; any other is a loss.
_APPLIED = frozenset({"allowed_domains", "blocked_domains", "filters", "max_uses"})


def _renamed(message: Message, old: str, new: str) -> Message:
    if message.role != "assistant" or not any(isinstance(p, ToolCallPart) and p.name == old for p in message.parts):
        return message
    parts = tuple(msgspec.structs.replace(p, name=new) if isinstance(p, ToolCallPart) and p.name == old else p
                  for p in message.parts)
    return msgspec.structs.replace(message, parts=parts)


__all__ = ["WebSearch"]
