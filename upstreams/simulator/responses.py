"""The simulator's Responses mode, request side: a ``POST /responses`` body checked strictly, then
turned into the Chat body the engine already validates and plans from.

The checks are the Responses API's own (unknown top-level fields, item and content-part types per
role, tool types, ``tool_choice`` forms, ``previous_response_id`` on a stateless server) plus, per
``SimConfig.responses_flavour``:

- ``deepseek``: DeepSeek's Responses API. Reasoning comes back either as this simulator's own
  ``encrypted_content`` (verified: minted here, untampered, for that item id) or as
  ``reasoning_text`` content; an ``encrypted_content`` made elsewhere (another provider's, the
  gateway's own envelope) is a 400. In thinking mode a turn with tool calls must carry its
  reasoning item, else the 400 of the Chat rule.
- ``openai``: reasoning only as this simulator's own ``encrypted_content`` (``reasoning_text``
  content alone is refused, as OpenAI takes back only its own items).
- ``llamacpp``: llama-server's ``/v1/responses``: ``function`` tools only (a ``custom`` tool is a
  400), no encrypted reasoning.

Everything else (tool call / output pairing, the model, budgets, the context window, the replay
of the exact reasoning when ``verify_replay``) is the Chat checks' on the converted body, so both
modes are held to one set of rules; a replay that differs is told in this API's terms
(``ResponsesCall.reasoning_differs``, ``call_differs``: the input items, not the Chat fields).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import msgspec

from upstreams.simulator.config import SimConfig
from upstreams.simulator.validate import SimError, bad

_ENCODE = msgspec.json.Encoder()
_DECODE = msgspec.json.Decoder()
_TOP_LEVEL = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "reasoning",
    "max_output_tokens", "temperature", "top_p", "text", "stream", "store", "include", "user",
    "metadata", "prompt_cache_key", "service_tier", "truncation", "safety_identifier",
    "previous_response_id",
})
_INCLUDES = frozenset({"reasoning.encrypted_content", "message.output_text.logprobs"})
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_USER_PARTS = ("input_text", "input_image")
_ASSISTANT_PARTS = ("output_text", "refusal")
# How a freeform tool is planned: one string parameter, the call's raw input.
_FREEFORM = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}
SEAL_PREFIX = {"deepseek": "dsenc1.", "openai": "oaienc1.", "llamacpp": ""}


class ResponsesCall(msgspec.Struct, kw_only=True):
    """What the renderer needs beside the Chat call: the freeform tools, what to include."""

    chat: dict[str, Any]  # the equivalent Chat body (validated by ``validate.validate``)
    custom: frozenset[str]  # tool names offered as ``custom``
    encrypted: bool  # mint encrypted_content on reasoning items
    reasoning_items: int  # reasoning items received (replayed)
    sealed_items: int  # of those, with this simulator's verified encrypted_content
    # call id → (the path of its call item, of its turn's first reasoning item or None): where a
    # replay check points in the input
    where: dict[str, tuple[str, str | None]] = {}

    def reasoning_differs(self, call_id: str, expected: str, got: Any) -> SimError:
        """``verify_replay``: the turn of ``call_id`` came back without the reasoning it was generated with."""
        call_at, reasoning_at = self.where.get(call_id, ("input", None))
        if reasoning_at is None:
            return bad(f"{call_at}: the call {call_id} came back without the reasoning item it was generated "
                       f"with (its encrypted_content or reasoning_text content): expected {expected!r}")  # sim
        return bad(f"{reasoning_at}: the reasoning item (its encrypted_content or reasoning_text content) differs "
                   f"from what was generated with call {call_id}: expected {expected!r}, got {got!r}")  # sim

    def call_differs(self, call_id: str, expected: str, got: str) -> SimError:
        call_at, _ = self.where.get(call_id, ("input", None))
        return bad(f"{call_at}: the call {call_id} differs from what was generated: expected {expected}, "
                   f"got {got}")  # sim


class Sealer:
    """This simulator's own ``encrypted_content``: the reasoning and the item id, MAC'd with a key
    only this simulator has (a fresh one per ``Simulator``)."""

    def __init__(self, flavour: str, key: bytes) -> None:
        self.prefix = SEAL_PREFIX[flavour]
        self._key = key

    def seal(self, item_id: str, reasoning: str) -> str:
        payload = base64.urlsafe_b64encode(_ENCODE.encode({"i": item_id, "r": reasoning})).rstrip(b"=")
        mac = hmac.new(self._key, payload, hashlib.sha256).hexdigest()[:32]
        return f"{self.prefix}{payload.decode()}.{mac}"

    def open(self, token: str, item_id: str | None) -> str | None:
        """The reasoning sealed in ``token`` (for ``item_id`` when given), or ``None``."""
        if not self.prefix or not token.startswith(self.prefix):
            return None
        payload, _, mac = token[len(self.prefix):].rpartition(".")
        want = hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()[:32]
        if not payload or not hmac.compare_digest(mac, want):
            return None
        data = _DECODE.decode(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if item_id is not None and data.get("i") != item_id:
            return None
        return data.get("r") if isinstance(data.get("r"), str) else None


def _type_error(path: str, value: Any, expected: str) -> SimError:
    return bad(f"Invalid type for '{path}': expected {expected}, but got {type(value).__name__} instead.")


def _expect(value: Any, typ: type | tuple[type, ...], path: str, expected: str) -> None:
    if not isinstance(value, typ) or isinstance(value, bool) and typ is not bool:
        raise _type_error(path, value, expected)


def _one_of(value: Any, allowed: tuple[str, ...], path: str) -> str:
    if value not in allowed:
        listed = ", ".join(f"'{a}'" for a in allowed)
        raise bad(f"Invalid value: '{value}'. Supported values are: {listed}. (param: {path})")
    return value


def _required(obj: dict[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise bad(f"Missing required parameter: '{path}.{key}'.")
    return obj[key]


def convert(body: Any, config: SimConfig, sealer: Sealer) -> ResponsesCall:
    """Check a decoded ``POST /responses`` body and convert it (see the module docstring).

    Raises:
        SimError: the first problem found (400).
    """
    _expect(body, dict, "body", "an object")
    unknown = sorted(set(body) - _TOP_LEVEL)
    if unknown:
        raise bad(f"Unrecognized request argument supplied: {unknown[0]}")
    if body.get("previous_response_id") is not None:
        raise bad("Previous response with id "
                  f"'{body['previous_response_id']}' not found: this server stores no responses.")
    flavour = config.responses_flavour
    include = body.get("include") or []
    _expect(include, list, "include", "an array")
    for j, name in enumerate(include):
        _one_of(name, tuple(sorted(_INCLUDES)), f"include[{j}]")
    reasoning = body.get("reasoning") or {}
    _expect(reasoning, dict, "reasoning", "an object")
    effort = reasoning.get("effort")
    if effort is not None:
        _one_of(effort, _EFFORTS, "reasoning.effort")
    thinking = config.thinking_default if effort is None else effort != "none"
    if "reasoning" in body and effort is None and body["reasoning"]:
        thinking = True
    tools, custom = _tools(body.get("tools"), flavour)
    chat: dict[str, Any] = {"model": _required(body, "model", "body"), "stream": body.get("stream", False),
                            "thinking": {"type": "enabled" if thinking else "disabled"}}
    if chat["stream"]:
        chat["stream_options"] = {"include_usage": True}
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        _expect(instructions, str, "instructions", "a string")
        messages.append({"role": "system", "content": instructions})
    where: dict[str, tuple[str, str | None]] = {}
    counts = _input(body.get("input"), messages, thinking, flavour, sealer, where)
    chat["messages"] = messages
    if tools:
        chat["tools"] = tools
    choice = body.get("tool_choice")
    if choice is not None:
        chat["tool_choice"] = _tool_choice(choice, custom)
    for key, chat_key in (("max_output_tokens", "max_tokens"), ("temperature", "temperature"),
                          ("top_p", "top_p"), ("parallel_tool_calls", "parallel_tool_calls")):
        if body.get(key) is not None:
            chat[chat_key] = body[key]
    fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        chat["response_format"] = {"type": fmt["type"]}
    encrypted = thinking and flavour != "llamacpp" and (
        flavour == "deepseek" or "reasoning.encrypted_content" in include)
    return ResponsesCall(chat=chat, custom=frozenset(custom), encrypted=encrypted,
                         reasoning_items=counts[0], sealed_items=counts[1], where=where)


def _tools(value: Any, flavour: str) -> tuple[list[dict[str, Any]], set[str]]:
    if value is None:
        return [], set()
    _expect(value, list, "tools", "an array")
    tools: list[dict[str, Any]] = []
    custom: set[str] = set()
    kinds = ("function",) if flavour == "llamacpp" else ("function", "custom")
    for j, tool in enumerate(value):
        path = f"tools[{j}]"
        _expect(tool, dict, path, "an object")
        kind = tool.get("type")
        if kind not in kinds:
            raise bad(f"Unsupported tool type '{kind}' at {path}: only "
                      f"{' and '.join(kinds)} tools are supported")
        name = _required(tool, "name", path)
        _expect(name, str, f"{path}.name", "a string")
        if "function" in tool:
            raise bad(f"Unknown parameter: '{path}.function'. (A Chat Completions tool sent to the Responses API.)")
        fn: dict[str, Any] = {"name": name}
        if tool.get("description") is not None:
            fn["description"] = tool["description"]
        if kind == "custom":
            custom.add(name)
            fmt = tool.get("format")
            if fmt is not None:
                _expect(fmt, dict, f"{path}.format", "an object")
                _one_of(fmt.get("type"), ("text", "grammar"), f"{path}.format.type")
                if fmt["type"] == "grammar":
                    _one_of(fmt.get("syntax"), ("lark", "regex"), f"{path}.format.syntax")
                    _expect(fmt.get("definition"), str, f"{path}.format.definition", "a string")
            fn["parameters"] = _FREEFORM
        elif tool.get("parameters") is not None:
            _expect(tool["parameters"], dict, f"{path}.parameters", "an object")
            fn["parameters"] = tool["parameters"]
        tools.append({"type": "function", "function": fn})
    return tools, custom


def _tool_choice(choice: Any, custom: set[str]) -> Any:
    if isinstance(choice, str):
        return _one_of(choice, ("none", "auto", "required"), "tool_choice")
    _expect(choice, dict, "tool_choice", "a string or an object")
    kind = _one_of(choice.get("type"), ("function", "custom"), "tool_choice.type")
    name = _required(choice, "name", "tool_choice")
    if (kind == "custom") != (name in custom):
        raise bad(f"tool_choice names {kind} tool '{name}', which is not offered as one")
    return {"type": "function", "function": {"name": name}}


def _parts_text(content: Any, path: str, allowed: tuple[str, ...]) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    _expect(content, list, f"{path}.content", "a string or an array")
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        ppath = f"{path}.content[{j}]"
        _expect(part, dict, ppath, "an object")
        kind = _one_of(part.get("type"), allowed, f"{ppath}.type")
        if kind == "input_image":
            _expect(_required(part, "image_url", ppath), str, f"{ppath}.image_url", "a string")
            parts.append({"type": "image_url", "image_url": {"url": part["image_url"]}})
        else:
            text = part.get("refusal") if kind == "refusal" else _required(part, "text", ppath)
            _expect(text, str, f"{ppath}.text", "a string")
            parts.append({"type": "text", "text": text})
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def _input(value: Any, messages: list[dict[str, Any]], thinking: bool, flavour: str,
           sealer: Sealer, where: dict[str, tuple[str, str | None]]) -> tuple[int, int]:
    if isinstance(value, str):
        messages.append({"role": "user", "content": value})
        return 0, 0
    _expect(value, list, "input", "a string or an array")
    turn: dict[str, Any] | None = None  # the assistant turn being gathered (already in ``messages``)
    reasoning_at: str | None = None  # the path of its first reasoning item
    reasoning_items = sealed = 0
    for i, item in enumerate(value):
        path = f"input[{i}]"
        _expect(item, dict, path, "an object")
        kind = item.get("type", "message")
        if kind == "message":
            role = _one_of(_required(item, "role", path), ("user", "assistant", "system", "developer"), f"{path}.role")
            content = _parts_text(_required(item, "content", path), path,
                                  _ASSISTANT_PARTS if role == "assistant" else _USER_PARTS)
            if role == "assistant":
                if not isinstance(content, str):
                    raise bad(f"{path}: an assistant message carries text only")
                if turn is None:
                    turn, reasoning_at = _new_turn(messages), None
                turn["content"] = (turn["content"] or "") + content
                continue
            turn = None
            messages.append({"role": "system" if role == "developer" else role, "content": content})
        elif kind == "reasoning":
            if turn is not None and (turn.get("tool_calls") or turn["content"] is not None):
                turn = None  # a reasoning item opens the next assistant turn
            if turn is None:
                turn, reasoning_at = _new_turn(messages), path
            text = _reasoning(item, path, flavour, sealer)
            reasoning_items += 1
            sealed += "encrypted_content" in item
            turn["reasoning_content"] = turn.get("reasoning_content", "") + text
            continue
        elif kind in ("function_call", "custom_tool_call"):
            call_id = _required(item, "call_id", path)
            name = _required(item, "name", path)
            if kind == "function_call":
                arguments = _required(item, "arguments", path)
                _expect(arguments, str, f"{path}.arguments", "a string")
            else:
                if flavour == "llamacpp":
                    raise bad(f"{path}: unsupported input item type 'custom_tool_call'")
                raw = _required(item, "input", path)
                _expect(raw, str, f"{path}.input", "a string")
                arguments = _ENCODE.encode({"input": raw}).decode()
            if turn is None:
                turn, reasoning_at = _new_turn(messages), None
            where[call_id] = (path, reasoning_at)
            if thinking and "reasoning_content" not in turn:
                raise bad(f"{path}: in thinking mode the reasoning item of a turn with tool calls must be "
                          "passed back to the API (before its calls).")
            turn.setdefault("tool_calls", []).append(
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = _required(item, "call_id", path)
            output = _required(item, "output", path)
            result = output if isinstance(output, str) else _parts_text(output, path, _USER_PARTS)
            turn = None
            messages.append({"role": "tool", "tool_call_id": call_id,
                             "content": result if isinstance(result, str) else "[image]"})
            continue
        else:
            raise bad(f"Invalid value: '{kind}'. Supported values are: 'message', 'reasoning', 'function_call', "
                      f"'custom_tool_call', 'function_call_output', 'custom_tool_call_output'. (param: {path}.type)")
    for message in messages:  # a turn of only reasoning says nothing; Chat needs content or calls
        if message["role"] == "assistant" and message["content"] is None and not message.get("tool_calls"):
            message["content"] = ""
    return reasoning_items, sealed


def _new_turn(messages: list[dict[str, Any]]) -> dict[str, Any]:
    turn: dict[str, Any] = {"role": "assistant", "content": None}
    messages.append(turn)
    return turn


def _reasoning(item: dict[str, Any], path: str, flavour: str, sealer: Sealer) -> str:
    summary = _required(item, "summary", path)
    _expect(summary, list, f"{path}.summary", "an array")
    texts = []
    for j, part in enumerate(item.get("content") or ()):
        _one_of(part.get("type") if isinstance(part, dict) else None, ("reasoning_text",), f"{path}.content[{j}].type")
        _expect(part.get("text"), str, f"{path}.content[{j}].text", "a string")
        texts.append(part["text"])
    token = item.get("encrypted_content")
    if token is not None:
        _expect(token, str, f"{path}.encrypted_content", "a string")
        opened = sealer.open(token, item.get("id"))
        if opened is None:
            raise bad(f"The encrypted content for item {item.get('id') or path} could not be verified: "
                      "it was not produced by this API.")
        if "content" in item and "".join(texts) != opened:
            raise bad(f"{path}: the reasoning_text content differs from the item's encrypted_content")
        return opened
    if flavour == "openai":
        raise bad(f"{path}: a reasoning item needs the encrypted_content this API produced (store is false)")
    if "content" not in item:
        raise bad(f"{path}: a reasoning item needs its reasoning_text content or its encrypted_content")
    return "".join(texts)


__all__ = ["SEAL_PREFIX", "ResponsesCall", "Sealer", "convert"]
