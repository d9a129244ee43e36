"""DeepSeek's request validation: a decoded Chat Completions body → ``ChatCall`` or ``SimError``.

Two layers, in DeepSeek's order: the shape (DeepSeek is a serde server, so its messages read
"Failed to deserialize the JSON body into the target type: messages[1].role: unknown variant
...") and then the documented rules (model, limits, tool pairing, reasoning replay, context).
Wordings come from observed DeepSeek errors where known (PROTOCOLS.md §3.4, §4).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from upstreams.simulator.config import DEEPSEEK_MODELS, VISION_MODELS, SimConfig

_ENCODE = msgspec.json.Encoder()
_DESERIALIZE = "Failed to deserialize the JSON body into the target type: "
_ROLES = ("system", "user", "assistant", "tool")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_USER = re.compile(r"^[A-Za-z0-9_-]{1,512}$")
_EFFORTS = ("low", "high", "max")
_MAX_STOP = 16


class SimError(Exception):
    """An HTTP error answer: status and the OpenAI-style error object."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 code: str | None = "invalid_request_error",
                 headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.headers = headers

    def body(self) -> bytes:
        return _ENCODE.encode({"error": {"message": self.message, "type": self.type,
                                         "param": None, "code": self.code}})


class ChatCall(msgspec.Struct, kw_only=True):
    """What the answer generator needs from a valid request."""

    model: str
    messages: list[dict[str, Any]]
    tools: dict[str, dict[str, Any]]  # function name -> parameters schema
    stream: bool
    include_usage: bool
    budget: int  # max_tokens, or the model's maximum
    thinking: bool
    tool_choice: str | dict[str, Any]
    json_mode: bool
    prompt_bytes: bytes  # canonical [tools, messages] JSON: token and cache estimates
    prompt_tokens: int


def bad(message: str) -> SimError:
    return SimError(400, message)


def _says_json(messages: list[dict[str, Any]]) -> bool:
    """A system or user message has the word "json" (any case)."""
    for msg in messages:
        if msg.get("role") not in ("system", "user"):
            continue
        content = msg.get("content")
        texts = [content] if isinstance(content, str) else [
            p.get("text") for p in content or () if isinstance(p, dict)] if isinstance(content, list) else []
        if any(isinstance(t, str) and "json" in t.lower() for t in texts):
            return True
    return False


def _shape(path: str, detail: str) -> SimError:
    return bad(f"{_DESERIALIZE}{path}: {detail}" if path else f"{_DESERIALIZE}{detail}")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f'string "{value[:40]}"'
    if isinstance(value, list):
        return "sequence"
    return "map"


def _expect(value: Any, typ: type | tuple[type, ...], path: str, what: str) -> None:
    ok = isinstance(value, typ) and not (isinstance(value, bool) and bool not in (
        typ if isinstance(typ, tuple) else (typ,)))
    if not ok:
        raise _shape(path, f"invalid type: {_kind(value)}, expected {what}")


def _variant(value: Any, allowed: tuple[str, ...], path: str) -> str:
    _expect(value, str, path, "a string")
    if value not in allowed:
        quoted = [f"`{a}`" for a in allowed]
        expected = (f"expected {quoted[0]}" if len(quoted) == 1 else
                    f"expected {quoted[0]} or {quoted[1]}" if len(quoted) == 2 else
                    f"expected one of {', '.join(quoted)}")
        raise _shape(path, f"unknown variant `{value}`, {expected}")
    return value


def _required(obj: dict[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise _shape(path, f"missing field `{key}`")
    return obj[key]


def _content(value: Any, path: str, parts: tuple[str, ...]) -> None:
    if isinstance(value, str):
        return
    _expect(value, list, path, "a string or a sequence of content parts")
    for j, part in enumerate(value):
        ppath = f"{path}[{j}]"
        _expect(part, dict, ppath, "a content part")
        kind = _variant(_required(part, "type", ppath), parts, f"{ppath}.type")
        if kind == "text":
            _expect(_required(part, "text", ppath), str, f"{ppath}.text", "a string")
        else:
            image = _required(part, "image_url", ppath)
            _expect(image, dict, f"{ppath}.image_url", "a map")
            _expect(_required(image, "url", f"{ppath}.image_url"), str,
                    f"{ppath}.image_url.url", "a string")


def _tool_calls(value: Any, path: str) -> list[str]:
    _expect(value, list, path, "a sequence")
    ids: list[str] = []
    for j, call in enumerate(value):
        cpath = f"{path}[{j}]"
        _expect(call, dict, cpath, "a tool call")
        call_id = _required(call, "id", cpath)
        _expect(call_id, str, f"{cpath}.id", "a string")
        if "type" in call:
            _variant(call["type"], ("function",), f"{cpath}.type")
        fn = _required(call, "function", cpath)
        _expect(fn, dict, f"{cpath}.function", "a map")
        _expect(_required(fn, "name", f"{cpath}.function"), str, f"{cpath}.function.name",
                "a string")
        _expect(_required(fn, "arguments", f"{cpath}.function"), str,
                f"{cpath}.function.arguments", "a string")
        ids.append(call_id)
    return ids


def _message(msg: Any, i: int, reasoning_field: str) -> None:
    path = f"messages[{i}]"
    _expect(msg, dict, path, "a message")
    role = _variant(_required(msg, "role", path), _ROLES, f"{path}.role")
    if "name" in msg and msg["name"] is not None:
        _expect(msg["name"], str, f"{path}.name", "a string")
    if role == "tool":
        _expect(_required(msg, "tool_call_id", path), str, f"{path}.tool_call_id", "a string")
        # DeepSeek takes tool output as a string only (PROTOCOLS.md §4.5).
        _expect(_required(msg, "content", path), str, f"{path}.content", "a string")
    elif role == "assistant":
        content = msg.get("content")
        if content is not None:
            _content(content, f"{path}.content", ("text",))
        calls = msg.get("tool_calls")
        if calls is not None:
            _tool_calls(calls, f"{path}.tool_calls")
        if content is None and not calls:
            raise bad(f"Invalid assistant message at {path}: content or tool_calls must be set")
        reasoning = msg.get(reasoning_field)
        if reasoning is not None:
            _expect(reasoning, str, f"{path}.{reasoning_field}", "a string")
    else:
        parts = ("text", "image_url") if role == "user" else ("text",)
        _content(_required(msg, "content", path), f"{path}.content", parts)


def _tools(value: Any) -> dict[str, dict[str, Any]]:
    _expect(value, list, "tools", "a sequence")
    tools: dict[str, dict[str, Any]] = {}
    for j, tool in enumerate(value):
        path = f"tools[{j}]"
        _expect(tool, dict, path, "a tool")
        _variant(_required(tool, "type", path), ("function",), f"{path}.type")
        fn = _required(tool, "function", path)
        _expect(fn, dict, f"{path}.function", "a function")
        name = _required(fn, "name", f"{path}.function")
        _expect(name, str, f"{path}.function.name", "a string")
        params = fn.get("parameters")
        if params is not None:
            _expect(params, dict, f"{path}.function.parameters", "a map")
        if fn.get("description") is not None:
            _expect(fn["description"], str, f"{path}.function.description", "a string")
        if not _TOOL_NAME.match(name):
            raise bad(f"Invalid 'tools[{j}].function.name': string does not match pattern. "
                      "Expected a string that matches the pattern '^[a-zA-Z0-9_-]{1,64}$'.")
        if name in tools:
            raise bad(f"Invalid 'tools': duplicate function name `{name}`.")
        tools[name] = params or {}
    return tools


def _number(body: dict[str, Any], key: str, low: float, high: float) -> None:
    value = body.get(key)
    if value is None:
        return
    _expect(value, (int, float), key, "a number")
    if not low <= value <= high:
        raise bad(f"Invalid {key} value, the valid range of {key} is [{low:g}, {high:g}]")


def _thinking(body: dict[str, Any], config: SimConfig) -> bool:
    thinking = body.get("thinking")
    if thinking is not None:
        _expect(thinking, dict, "thinking", "a map")
        return _variant(_required(thinking, "type", "thinking"), ("enabled", "disabled"),
                        "thinking.type") == "enabled"
    kwargs = body.get("chat_template_kwargs")  # vLLM / llama.cpp switch
    if isinstance(kwargs, dict) and isinstance(kwargs.get("enable_thinking"), bool):
        return kwargs["enable_thinking"]
    return config.thinking_default


def _tool_choice(body: dict[str, Any], tools: dict[str, Any], thinking: bool) -> str | dict:
    choice = body.get("tool_choice")
    if choice is None:
        return "auto"
    if isinstance(choice, str):
        _variant(choice, ("none", "auto", "required"), "tool_choice")
        forced = choice == "required"
    else:
        _expect(choice, dict, "tool_choice", "a string or a map")
        _variant(_required(choice, "type", "tool_choice"), ("function",), "tool_choice.type")
        fn = _required(choice, "function", "tool_choice")
        _expect(fn, dict, "tool_choice.function", "a map")
        name = _required(fn, "name", "tool_choice.function")
        _expect(name, str, "tool_choice.function.name", "a string")
        if name not in tools:
            raise bad(f"Invalid 'tool_choice': function `{name}` is not among the tools.")
        forced = True
    if forced and not tools:
        raise bad("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' "
                  "are specified.")
    if forced and thinking:
        raise bad("Thinking mode does not support this tool_choice")
    return choice


def _pairing(messages: list[dict[str, Any]]) -> None:
    """Every tool call answered by a tool message before the next user/assistant message."""
    pending: list[str] = []
    answerable: set[str] = set()
    for msg in messages:
        role = msg["role"]
        if role == "tool":
            call_id = msg["tool_call_id"]
            if call_id not in answerable:
                raise bad("Messages with role 'tool' must be a response to a preceding message "
                          f"with 'tool_calls' (tool_call_id {call_id!r} matches none).")
            answerable.discard(call_id)
            pending.remove(call_id)
            continue
        if role in ("user", "assistant") and pending:
            raise bad("An assistant message with 'tool_calls' must be followed by tool messages "
                      "responding to each 'tool_call_id'. The following tool_call_ids did not "
                      f"have response messages: {', '.join(pending)}")
        if role in ("user", "assistant"):
            answerable = set()
        if role == "assistant" and msg.get("tool_calls"):
            pending = [c["id"] for c in msg["tool_calls"]]
            answerable = set(pending)
    if pending:
        raise bad("An assistant message with 'tool_calls' must be followed by tool messages "
                  "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                  f"response messages: {', '.join(pending)}")


def _no_images(messages: list[dict[str, Any]], model: str) -> None:
    """Image input is Flash's only (PROTOCOLS.md §4.1): an image to another model is a 400 (sim)."""
    for i, msg in enumerate(messages):
        content = msg.get("content")
        if isinstance(content, list) and any(part.get("type") == "image_url" for part in content):
            raise bad(f"messages[{i}]: the model `{model}` does not support image input")  # sim


def _replay(messages: list[dict[str, Any]], config: SimConfig) -> None:
    # Presence is what DeepSeek checks ("" passes); null is absent (an Option on the server).
    field = config.reasoning_field
    for msg in messages:
        if msg["role"] != "assistant" or msg.get(field) is not None:
            continue
        if config.replay_check == "all_assistant" or msg.get("tool_calls"):
            raise bad(f"The `{field}` in the thinking mode must be passed back to the API.")


def validate(body: Any, config: SimConfig) -> ChatCall:
    """Check a decoded request body like DeepSeek does.

    Raises:
        SimError: the first problem found, as DeepSeek would report it (400).
    """
    _expect(body, dict, "", "a JSON object")
    model = _required(body, "model", "")
    _expect(model, str, "model", "a string")
    messages = _required(body, "messages", "")
    _expect(messages, list, "messages", "a sequence")
    for i, msg in enumerate(messages):
        _message(msg, i, config.reasoning_field)
    tools = _tools(body["tools"]) if body.get("tools") is not None else {}
    thinking = _thinking(body, config)
    effort = body.get("reasoning_effort")
    if effort is not None:
        _variant(effort, _EFFORTS, "reasoning_effort")
    stream = body.get("stream", False) or False
    _expect(stream, bool, "stream", "a boolean")
    options = body.get("stream_options") or {}
    _expect(options, dict, "stream_options", "a map")
    fmt = body.get("response_format")
    fmt_type = "text"
    if fmt is not None:
        _expect(fmt, dict, "response_format", "a map")
        fmt_type = _variant(_required(fmt, "type", "response_format"),
                            ("text", "json_object", "json_schema"), "response_format.type")
    json_mode = fmt_type != "text"
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str):
        _expect(stop, list, "stop", "a string or a sequence of strings")
        for j, item in enumerate(stop):
            _expect(item, str, f"stop[{j}]", "a string")

    if model not in DEEPSEEK_MODELS and model not in config.models:
        raise bad("Model Not Exist")
    if not messages:
        raise bad("Empty input messages")
    if model in DEEPSEEK_MODELS and model not in VISION_MODELS:
        _no_images(messages, model)
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_completion_tokens")
    if max_tokens is not None:
        _expect(max_tokens, int, "max_tokens", "an integer")
        if not 1 <= max_tokens <= config.max_output_tokens:
            raise bad("Invalid max_tokens value, the valid range of max_tokens is "
                      f"[1, {config.max_output_tokens}]")
    if isinstance(stop, list) and len(stop) > _MAX_STOP:
        raise bad(f"Invalid 'stop': array too long. Expected an array with maximum length "
                  f"{_MAX_STOP}, but got an array with length {len(stop)} instead.")
    user = body.get("user")
    if user is not None and (not isinstance(user, str) or not _USER.match(user)):
        raise bad("Invalid 'user': string does not match pattern. Expected a string that "
                  "matches the pattern '^[A-Za-z0-9_-]{1,512}$'.")
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    _number(body, "presence_penalty", -2, 2)
    _number(body, "frequency_penalty", -2, 2)
    tool_choice = _tool_choice(body, tools, thinking)
    if config.reject_mid_system:
        seen_other = False
        for i, msg in enumerate(messages):
            if msg["role"] != "system":
                seen_other = True
            elif seen_other:
                raise bad(f"messages[{i}]: a system message must come before all other messages")
    _pairing(messages)
    if fmt_type == "json_object" and not _says_json(messages):
        # DeepSeek's JSON mode: "Include the word "json" in the system or user prompt" (§4.5).
        # Whether the live API refuses the request or answers white space is not verified; the
        # simulator refuses it, in the words of OpenAI's equivalent 400 (its own text).
        raise bad("'messages' must contain the word 'json' in some form, to use 'response_format' "
                  "of type 'json_object'.")
    if thinking and config.replay_check != "off":
        _replay(messages, config)

    prompt_bytes = _ENCODE.encode([body.get("tools") or [], messages])
    prompt_tokens = max(1, len(prompt_bytes) // 4)
    requested = prompt_tokens + (max_tokens or 0)
    if requested > config.context_window:
        raise bad(f"This model's maximum context length is {config.context_window} tokens. "
                  f"However, you requested {requested} tokens ({prompt_tokens} in the messages, "
                  f"{max_tokens or 0} in the completion). Please reduce the length of the "
                  "messages or completion.")
    include_usage = options.get("include_usage") is True
    return ChatCall(
        model=model, messages=messages, tools=tools, stream=stream,
        include_usage=include_usage, budget=max_tokens or config.max_output_tokens,
        thinking=thinking, tool_choice=tool_choice, json_mode=json_mode,
        prompt_bytes=prompt_bytes, prompt_tokens=prompt_tokens,
    )


# The serde-style shape checks, for the other endpoints' validators (anthropic_validate).
expect = _expect
variant = _variant
required = _required

__all__ = ["ChatCall", "SimError", "bad", "expect", "required", "validate", "variant"]
