"""DeepSeek's Anthropic endpoint (``POST /anthropic/v1/messages``): request validation.

A decoded Messages body → ``MessagesCall`` (with the conversation in the Chat shape the planner
reads, so the same ``SIM:`` directives script the same tool loops) or ``SimError``. The rules are
what DeepSeek documents for its Anthropic API and what users reported (issue 16):

- roles are ``user`` and ``assistant`` only (a ``role: "system"`` message is a 400: Claude Code
  2.1.154+ sends one); ``system`` is a string or text blocks;
- blocks: ``text``, ``thinking``, ``tool_use``, ``tool_result``; ``redacted_thinking``,
  ``image``, ``document`` and ``search_result`` are rejected (unknown variants);
- in thinking mode an assistant turn with ``tool_use`` must carry its thinking block back:
  "The `content[].thinking` in the thinking mode must be passed back to the API.";
- a thinking block's non-empty ``signature`` must be one this endpoint minted for exactly that
  text (``sign``): Anthropic's and the gateway's envelopes are foreign; an empty one passes
  (presence is what is checked, as on the Chat endpoint);
- ``thinking: {type: disabled}`` with ``output_config.effort`` is a 400; of ``output_config``
  only ``effort`` is accepted; ``budget_tokens``, ``top_k``, ``container``, ``mcp_servers``,
  ``service_tier``, ``metadata``, ``cache_control``, ``citations`` and
  ``disable_parallel_tool_use`` are ignored;
- the model is a DeepSeek model (a ``claude-*`` name or Claude Code's ``[1m]`` marker is
  "Model Not Exist");
- every ``tool_use`` is answered by a ``tool_result`` in the next user turn (Anthropic's wording).

Errors are OpenAI-shaped, as DeepSeek's Anthropic endpoint answers them. Texts marked "sim" are
this simulator's own where DeepSeek's exact wording is not known.

``SimConfig.messages_flavour = "anthropic"`` is the real Anthropic API instead, accepting what it
accepts where DeepSeek refuses and refusing what it refuses: ``redacted_thinking`` (only data this
simulator minted, ``redact``), ``image``, ``document`` and ``search_result`` blocks,
``output_config.format``, ``thinking: disabled`` with an effort; every thinking block needs this
simulator's own signature for its exact text (its own key, so DeepSeek-mode signatures are foreign;
an empty one is a 400 too); ``thinking: enabled`` needs ``budget_tokens`` of at least 1024 and
below ``max_tokens``; ``temperature`` is within [0, 1], and with thinking on only 1, with no
``top_k`` and no ``top_p`` below 0.95 (its extended-thinking docs, "feature compatibility");
only the last assistant turn with ``tool_use`` must start with its thinking (Anthropic's rule);
the model is a ``claude-*`` name (a ``[1m]`` marker is a 404). Its errors are
Anthropic-shaped (``{"type": "error", "error": {...}}``, engine).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Any

import msgspec

from upstreams.simulator.config import DEEPSEEK_MODELS, SimConfig
from upstreams.simulator.validate import SimError, bad, expect, required, variant

_ENCODE = msgspec.json.Encoder()
_BLOCKS = ("text", "thinking", "tool_use", "tool_result")
_RESULT_BLOCKS = ("text",)
_ANTHROPIC_BLOCKS = (*_BLOCKS, "redacted_thinking", "image", "document", "search_result")
_ANTHROPIC_RESULT_BLOCKS = ("text", "image", "document", "search_result")
_EFFORTS = ("low", "medium", "high", "max")
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MUST_PASS_BACK = "The `content[].thinking` in the thinking mode must be passed back to the API."
BAD_SIGNATURE = "Invalid `signature` in `thinking` block"  # sim; Anthropic's own wording
BAD_REDACTED = "Invalid `data` in `redacted_thinking` block"  # sim
FINAL_THINKING = ("When `thinking` is enabled, a final `assistant` message must start with a thinking block "
                  "(preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include "
                  "thinking blocks from previous turns. To avoid this requirement, disable `thinking`.")


class MessagesCall(msgspec.Struct, kw_only=True):
    """What the answer generator needs from a valid Messages request."""

    model: str
    messages: list[dict[str, Any]]  # Chat-shaped, for the planner
    wire: list[dict[str, Any]]  # the request's own messages
    tools: dict[str, dict[str, Any]]
    stream: bool
    budget: int
    thinking: bool
    tool_choice: str | dict[str, Any]
    prompt_bytes: bytes
    prompt_tokens: int


def sign(secret: bytes, text: str) -> str:
    """The signature this endpoint mints for a thinking block's text."""
    return base64.b64encode(hmac.new(secret, text.encode(), hashlib.sha256).digest()).decode()


def endpoint_secret(config: SimConfig) -> bytes:
    """What the endpoint signs with: one per flavour and seed (a reset keeps it, the flavours'
    signatures are foreign to each other)."""
    return f"{config.messages_flavour}-sim-anthropic:{config.seed}".encode()


def redact(secret: bytes, text: str) -> str:
    """The ``data`` of a ``redacted_thinking`` block this endpoint mints for ``text`` (anthropic)."""
    payload = base64.b64encode(text.encode()).decode()
    return f"{payload}.{sign(secret, 'redacted:' + payload)}"


def check_redacted(i: int, blocks: list[dict[str, Any]], emitted: str | None, call_id: str) -> None:
    """``verify_replay``: an assistant turn's thinking sequence comes back as it was answered, the
    thinking block then the ``redacted_thinking`` block of exactly ``emitted`` (none if ``None``)."""
    sent = [b["data"] for b in blocks if b["type"] == "redacted_thinking"]
    want = [] if emitted is None else [emitted]
    if sent != want or (want and [b["type"] for b in blocks[:2]] != ["thinking", "redacted_thinking"]):
        raise bad(f"messages[{i}]: the redacted_thinking of tool call {call_id} did not come back exactly as "
                  f"it was generated: expected {want!r} after the thinking block, got {sent!r}")  # sim


def _redacted_ok(secret: bytes, data: str) -> bool:
    payload, _, mac = data.rpartition(".")
    return bool(payload) and hmac.compare_digest(mac, sign(secret, "redacted:" + payload))


def _blocks(content: Any, path: str, allowed: tuple[str, ...]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    expect(content, list, path, "a string or a sequence of content blocks")
    for j, block in enumerate(content):
        bpath = f"{path}[{j}]"
        expect(block, dict, bpath, "a content block")
        kind = variant(required(block, "type", bpath), allowed, f"{bpath}.type")
        if kind == "text":
            expect(required(block, "text", bpath), str, f"{bpath}.text", "a string")
        elif kind == "thinking":
            expect(required(block, "thinking", bpath), str, f"{bpath}.thinking", "a string")
            if block.get("signature") is not None:
                expect(block["signature"], str, f"{bpath}.signature", "a string")
        elif kind == "tool_use":
            expect(required(block, "id", bpath), str, f"{bpath}.id", "a string")
            expect(required(block, "name", bpath), str, f"{bpath}.name", "a string")
            expect(required(block, "input", bpath), dict, f"{bpath}.input", "a map")
        elif kind == "redacted_thinking":
            expect(required(block, "data", bpath), str, f"{bpath}.data", "a string")
        elif kind in ("image", "document"):
            expect(required(block, "source", bpath), dict, f"{bpath}.source", "a map")
        elif kind == "tool_result":
            expect(required(block, "tool_use_id", bpath), str, f"{bpath}.tool_use_id", "a string")
            if block.get("content") is not None:
                inner = _ANTHROPIC_RESULT_BLOCKS if "image" in allowed else _RESULT_BLOCKS
                _blocks(block["content"], f"{bpath}.content", inner)
    return content


def _text(blocks: list[dict[str, Any]]) -> str:
    return "\n".join(b["text"] for b in blocks if b.get("type") == "text")


def _tools(value: Any) -> dict[str, dict[str, Any]]:
    expect(value, list, "tools", "a sequence")
    tools: dict[str, dict[str, Any]] = {}
    for j, tool in enumerate(value):
        path = f"tools[{j}]"
        expect(tool, dict, path, "a tool")
        if tool.get("type") not in (None, "custom"):
            variant(tool["type"], ("custom",), f"{path}.type")
        name = required(tool, "name", path)
        expect(name, str, f"{path}.name", "a string")
        schema = required(tool, "input_schema", path)
        expect(schema, dict, f"{path}.input_schema", "a map")
        if not _TOOL_NAME.match(name):
            raise bad(f"tools.{j}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
        if name in tools:
            raise bad("tools: Tool names must be unique.")
        tools[name] = schema
    return tools


def _thinking(body: dict[str, Any], config: SimConfig) -> bool:
    thinking = body.get("thinking")
    real = config.messages_flavour == "anthropic"
    effort = None
    output = body.get("output_config")
    if output is not None:
        expect(output, dict, "output_config", "a map")
        for key in output:
            if key not in ("effort", "format") or (key == "format" and not real):
                raise bad(f"output_config.{key}: only output_config.effort is supported")  # sim
        if output.get("effort") is not None:
            effort = variant(output["effort"], _EFFORTS, "output_config.effort")
    if thinking is None:
        return config.thinking_default
    expect(thinking, dict, "thinking", "a map")
    kind = variant(required(thinking, "type", "thinking"), ("enabled", "disabled", "adaptive"), "thinking.type")
    if kind == "disabled" and effort is not None and not real:
        raise bad("thinking.type `disabled` cannot be used together with output_config.effort")  # sim
    if kind == "enabled" and real:
        budget = required(thinking, "budget_tokens", "thinking.enabled")
        expect(budget, int, "thinking.enabled.budget_tokens", "an integer")
        if budget < 1024:
            raise bad("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        if budget >= body["max_tokens"]:
            raise bad("`max_tokens` must be greater than `thinking.budget_tokens`.")
    return kind != "disabled"


def _thinking_sampling(body: dict[str, Any]) -> None:
    """The real API with thinking on: sampling is the model's own (texts: sim)."""
    if body.get("temperature") not in (None, 1):
        raise bad("`temperature` may only be set to 1 when thinking is enabled.")
    if body.get("top_k") is not None:
        raise bad("`top_k` may not be set when thinking is enabled.")
    if body.get("top_p") is not None and body["top_p"] < 0.95:
        raise bad("`top_p` must be at least 0.95 when thinking is enabled.")


def _tool_choice(body: dict[str, Any], tools: dict[str, Any], thinking: bool) -> str | dict[str, Any]:
    choice = body.get("tool_choice")
    if choice is None:
        return "auto"
    expect(choice, dict, "tool_choice", "a map")
    kind = variant(required(choice, "type", "tool_choice"), ("auto", "any", "tool", "none"), "tool_choice.type")
    if kind in ("any", "tool") and thinking:
        raise bad("Thinking may not be enabled when tool_choice forces tool use.")
    if kind == "tool":
        name = required(choice, "name", "tool_choice")
        if name not in tools:
            raise bad(f"tool_choice.name: tool `{name}` is not among the tools")  # sim
        return {"type": "function", "function": {"name": name}}
    return {"any": "required"}.get(kind, kind)


def _check_turns(messages: list[dict[str, Any]], thinking: bool, secret: bytes, real: bool) -> None:
    """Tool pairing, the thinking pass-back rule and signatures, in message order (``real``: the
    Anthropic API's rules)."""
    pending: list[str] = []
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
    # Anthropic: the final assistant message, when it has tool_use, must start with its thinking.
    last_tool_turn = last if last >= 0 and isinstance(messages[last]["content"], list) and any(
        b["type"] == "tool_use" for b in messages[last]["content"]) else -1
    for i, msg in enumerate(messages):
        blocks = msg["content"] if isinstance(msg["content"], list) else []
        if msg["role"] == "user":
            results = [b["tool_use_id"] for b in blocks if b["type"] == "tool_result"]
            missing = [c for c in pending if c not in results]
            if missing:
                raise bad(f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                          f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` "
                          "block in the next message.")
            for j, call_id in enumerate(results):
                if call_id not in pending:
                    raise bad(f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                              f"{call_id}. Each `tool_result` block must have a corresponding `tool_use` block in "
                              "the previous message.")
            pending = []
            continue
        if pending:
            raise bad(f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                      f"{', '.join(pending)}. Each `tool_use` block must have a corresponding `tool_result` block "
                      "in the next message.")
        pending = [b["id"] for b in blocks if b["type"] == "tool_use"]
        thoughts = [b for b in blocks if b["type"] == "thinking"]
        if real:
            if thinking and i == last_tool_turn and blocks[0]["type"] not in ("thinking", "redacted_thinking"):
                raise bad(f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                          f"`{blocks[0]['type']}`. {FINAL_THINKING}")
            for j, block in enumerate(blocks):
                if block["type"] == "redacted_thinking" and not _redacted_ok(secret, block["data"]):
                    raise bad(f"messages.{i}.content.{j}: {BAD_REDACTED}")
                if block["type"] == "thinking" and not hmac.compare_digest(
                        block.get("signature") or "", sign(secret, block["thinking"])):
                    raise bad(f"messages.{i}.content.{j}: {BAD_SIGNATURE}")
            continue
        if thinking and pending and not thoughts:
            raise bad(MUST_PASS_BACK)
        for block in thoughts:
            given = block.get("signature") or ""
            if given and not hmac.compare_digest(given, sign(secret, block["thinking"])):
                raise bad(f"messages.{i}: {BAD_SIGNATURE}")
    if pending:
        raise bad(f"messages.{len(messages)}: `tool_use` ids were found without `tool_result` blocks immediately "
                  f"after: {', '.join(pending)}. Each `tool_use` block must have a corresponding `tool_result` "
                  "block in the next message.")


def chat_shape(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as Chat messages (tool results as ``tool`` messages), for the planner."""
    out: list[dict[str, Any]] = []
    for msg in messages:
        blocks = msg["content"] if isinstance(msg["content"], list) else [{"type": "text", "text": msg["content"]}]
        if msg["role"] == "assistant":
            calls = [{"id": b["id"], "type": "function",
                      "function": {"name": b["name"], "arguments": _ENCODE.encode(b["input"]).decode()}}
                     for b in blocks if b["type"] == "tool_use"]
            entry: dict[str, Any] = {"role": "assistant", "content": _text(blocks) or None}
            thoughts = [b["thinking"] for b in blocks if b["type"] == "thinking"]
            if thoughts:
                entry["reasoning_content"] = "".join(thoughts)
            if calls:
                entry["tool_calls"] = calls
            out.append(entry)
            continue
        for block in blocks:
            if block["type"] == "tool_result":
                content = block.get("content")
                text = content if isinstance(content, str) else _text(content or [])
                out.append({"role": "tool", "tool_call_id": block["tool_use_id"], "content": text})
        text = _text(blocks)
        if text or not any(b["type"] == "tool_result" for b in blocks):
            out.append({"role": "user", "content": text})
    return out


def validate_messages(body: Any, config: SimConfig, secret: bytes) -> MessagesCall:
    """Check a decoded Messages body like DeepSeek's Anthropic endpoint does.

    Raises:
        SimError: the first problem found (400).
    """
    expect(body, dict, "", "a JSON object")
    model = required(body, "model", "")
    expect(model, str, "model", "a string")
    messages = required(body, "messages", "")
    expect(messages, list, "messages", "a sequence")
    max_tokens = required(body, "max_tokens", "")
    expect(max_tokens, int, "max_tokens", "an integer")
    real = config.messages_flavour == "anthropic"
    system = body.get("system")
    if system is not None:
        _blocks(system, "system", ("text",))
    for i, msg in enumerate(messages):
        path = f"messages[{i}]"
        expect(msg, dict, path, "a message")
        variant(required(msg, "role", path), ("user", "assistant"), f"{path}.role")
        msg["content"] = _blocks(required(msg, "content", path), f"{path}.content",
                                 _ANTHROPIC_BLOCKS if real else _BLOCKS)
    tools = _tools(body["tools"]) if body.get("tools") is not None else {}
    thinking = _thinking(body, config)
    stream = body.get("stream", False) or False
    expect(stream, bool, "stream", "a boolean")
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None:
            expect(value, (int, float), key, "a number")
            if not 0 <= value <= (2 if key == "temperature" and not real else 1):
                raise bad(f"Invalid {key} value")
    if real and thinking:
        _thinking_sampling(body)
    stop = body.get("stop_sequences")
    if stop is not None:
        expect(stop, list, "stop_sequences", "a sequence")
    if real:
        if not (model.startswith("claude-") and "[" not in model) and model not in config.models:
            raise SimError(404, f"model: {model}", type="not_found_error")
    elif model not in DEEPSEEK_MODELS and model not in config.models:
        raise bad("Model Not Exist")
    if not messages:
        raise bad("Empty input messages")
    if not 1 <= max_tokens <= config.max_output_tokens:
        raise bad(f"Invalid max_tokens value, the valid range of max_tokens is [1, {config.max_output_tokens}]")
    tool_choice = _tool_choice(body, tools, thinking)
    _check_turns(messages, thinking, secret, real)
    prompt_bytes = _ENCODE.encode([body.get("tools") or [], system or "", messages])
    prompt_tokens = max(1, len(prompt_bytes) // 4)
    if prompt_tokens + max_tokens > config.context_window:
        raise bad(f"This model's maximum context length is {config.context_window} tokens. However, you requested "
                  f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, {max_tokens} in the "
                  "completion). Please reduce the length of the messages or completion.")
    return MessagesCall(model=model, messages=chat_shape(messages), wire=messages, tools=tools, stream=stream,
                        budget=max_tokens, thinking=thinking, tool_choice=tool_choice, prompt_bytes=prompt_bytes,
                        prompt_tokens=prompt_tokens)


__all__ = ["BAD_REDACTED", "BAD_SIGNATURE", "MUST_PASS_BACK", "MessagesCall", "chat_shape", "check_redacted",
           "endpoint_secret", "redact", "sign", "validate_messages"]
