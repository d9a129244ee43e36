"""Upstream side: neutral ``ChatRequest`` → Chat Completions request body for a backend ``Profile``.

Backend differences (thinking switch, system folding, strictness) are read from the profile, never
from backend names; what the model can do (thinking by default, a forced ``tool_choice`` while
thinking, the reasoning replay field, effort levels, vision) from its card in the model table
(``pipeline.model_limits``). A forced ``tool_choice`` the model rejects while thinking is sent as it
came, with thinking off for that request. What the target cannot carry is reported through
``lose(what, detail)``. Facts: ../shared/PROTOCOLS.md §3.1, §4.2-4.5.
"""

from __future__ import annotations

import re
from typing import Any

from msgspec import UNSET

from pipeline.conversation import Recall
from pipeline.model import ChatRequest, ToolSpec
from pipeline.model_limits import ModelCard, card_for, display_not_carried, effort_not_sent, effort_word, thinking_for
from pipeline.profiles import Profile
from pipeline.protocols.chat.models import (
    ENCODER,
    ChatCompletionRequest,
    FunctionDef,
    JsonSchemaFormat,
    ResponseFormatOut,
    StreamOptions,
    ThinkingSwitch,
    Tool,
)
from pipeline.protocols.chat.upstream_encode_messages import (
    IMAGE_PLACEHOLDER,
    TOOL_ERROR_PREFIX,
    TOOL_IMAGE_LABEL,
    TOOL_IMAGE_MOVED,
    TOOL_IMAGE_PLACEHOLDER,
    Lose,
    chat_messages,
)
from pipeline.protocols.openai import LOCAL_SHELL_DESCRIPTION, LOCAL_SHELL_SCHEMA, freeform_parameters

_USER_BAD_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def _no_loss(what: str, detail: str) -> None:
    return None


def encode_request(
    request: ChatRequest,
    *,
    model: str,
    profile: Profile,
    card: ModelCard | None = None,
    stream: bool = True,
    lose: Lose | None = None,
    recall: Recall | None = None,
    slot: str = "chat_encode",
) -> bytes:
    """The JSON body for ``POST /chat/completions`` on an upstream described by ``profile``, for
    ``model`` as ``card`` describes it (default: the model table's, ``card_for``). With ``recall``
    bound, the messages' translation is kept in its slot ``slot`` and the session's next request
    resumes it (``upstream_encode_messages``): the same body, re-encoding only what is new."""
    lose = lose or _no_loss
    card = card or card_for(model, profile)
    on = thinking_for(request, card, f"{model} on {profile.name}", lose)
    messages = chat_messages(request.messages, request.system, profile, card, on, lose, recall, slot)
    body = ChatCompletionRequest(model=model, messages=messages, stream=stream)
    if stream and profile.stream_usage:
        body.stream_options = StreamOptions(include_usage=True)
    _thinking(body, request, profile, card, on, lose)
    if request.tools:
        body.tools = [_tool(spec, profile) for spec in request.tools]
        if request.tool_choice is not None:
            body.tool_choice = _tool_choice(request)
        if request.parallel_tool_calls is not None:
            body.parallel_tool_calls = request.parallel_tool_calls
    if request.max_output_tokens is not None:
        body.max_tokens = request.max_output_tokens
    if request.temperature is not None:
        body.temperature = request.temperature
    if request.top_p is not None:
        body.top_p = request.top_p
    if request.top_k is not None:
        if profile.send_top_k:
            body.top_k = request.top_k
        else:
            lose("top_k", f"{profile.name} does not accept top_k")
    if request.seed is not None:
        body.seed = request.seed
    if request.stop:
        stop = list(request.stop)
        if len(stop) > profile.max_stop:
            lose("stop", f"{len(stop)} stop sequences, {profile.name} accepts {profile.max_stop}")
            stop = stop[: profile.max_stop]
        body.stop = stop
    if request.user and profile.send_user:
        body.user = _USER_BAD_CHARS.sub("_", request.user)[:512]
    rf = request.response_format
    if rf is not None and rf.type != "text":
        if rf.type == "json_schema":
            schema = JsonSchemaFormat(name=rf.name or "response", schema=rf.schema or {})
            if rf.strict is not None:
                schema.strict = rf.strict
            body.response_format = ResponseFormatOut(type="json_schema", json_schema=schema)
        else:
            body.response_format = ResponseFormatOut(type=rf.type)
    return ENCODER.encode(body)




def _thinking(body: ChatCompletionRequest, request: ChatRequest, profile: Profile, card: ModelCard,
              on: bool, lose: Lose) -> None:
    effort = request.thinking.effort
    word = effort_word(card, effort)
    switch = profile.thinking_switch
    if switch == "deepseek":
        body.thinking = ThinkingSwitch(type="enabled" if on else "disabled")
        if on and word:
            body.reasoning_effort = word
    elif switch == "chat_template_kwargs":
        said = request.thinking.enabled is not None or effort == "none" or on != card.thinking_default
        if said:
            body.chat_template_kwargs = {"enable_thinking": on}
        if on and word:
            body.reasoning_effort = word
    elif word and request.thinking.enabled is not False:
        body.reasoning_effort = word
    if not on and body.reasoning_effort is UNSET:
        effort_not_sent(request, lose)
    if on:
        display_not_carried(request, profile.name, lose)


def _tool(spec: ToolSpec, profile: Profile) -> Tool:
    if spec.kind == "custom":
        fn = FunctionDef(name=spec.name, parameters=freeform_parameters(spec))
        if spec.description:
            fn.description = spec.description
        return Tool(function=fn)
    if spec.kind == "local_shell":
        return Tool(
            function=FunctionDef(
                name=spec.name or "local_shell",
                parameters=LOCAL_SHELL_SCHEMA,
                description=spec.description or LOCAL_SHELL_DESCRIPTION,
            )
        )
    fn = FunctionDef(name=spec.name, parameters=spec.parameters or _EMPTY_SCHEMA)
    if spec.description:
        fn.description = spec.description
    if profile.supports_strict and spec.strict:
        fn.strict = True
    return Tool(function=fn)


def _tool_choice(request: ChatRequest) -> str | dict[str, Any]:
    """The client's choice as it came (a forced one the model rejects while thinking went with
    thinking off: ``model_limits.thinking_on``)."""
    choice = request.tool_choice
    assert choice is not None
    mode = choice.mode
    if mode == "tool":
        if not choice.name:
            return "required"
        return {"type": "function", "function": {"name": choice.name}}
    return mode




__all__ = ["IMAGE_PLACEHOLDER", "TOOL_ERROR_PREFIX", "TOOL_IMAGE_LABEL", "TOOL_IMAGE_MOVED", "TOOL_IMAGE_PLACEHOLDER",
           "encode_request"]
