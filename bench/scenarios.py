"""The benchmarked paths: what each client sends, where, and how its stream ends.

``direct`` is the floor: the load generator talks Chat Completions to the fake upstream itself.
``chat`` is Chat → Chat passthrough, ``messages`` is Anthropic Messages → Chat (Claude Code),
``responses`` is OpenAI Responses → Chat (Codex). The pass-through paths, under ``/pass``, translate
nothing: ``messages_pass`` is Messages → Messages (Claude Code on ``type: anthropic_messages``,
profile ``anthropic``), ``responses_pass`` is Responses → Responses (Codex on ``type:
openai_responses``, profile ``openai``). Bodies come in two sizes: ``small`` (one short user turn) and ``real`` (a captured Claude Code / Codex request: system prompt, tools, ~40-50 KB).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from bench.upstream import delta_text
from tests.captures import capture_body

REAL_CAPTURE = {"messages": "claude-tool-2.json", "messages_pass": "claude-tool-2.json",
                "responses": "codex-tool-2.json", "responses_pass": "codex-tool-2.json"}
FIRST = delta_text(0).encode()  # the first content delta's text: TTFT stops the clock on it


@dataclass(frozen=True)
class Path_:
    name: str
    url: str
    terminal: bytes  # present in every complete stream of this dialect
    delta: bytes  # occurs once per content delta of this dialect's stream
    headers: dict[str, str] = field(default_factory=dict)


# The key every client sends: the bench gateway checks none, LiteLLM's proxy needs its master key.
CLIENT_KEY = "sk-bench-0123456789abcdef"

PATHS: dict[str, Path_] = {
    "direct": Path_("direct", "/v1/chat/completions", b"data: [DONE]", b'"content":"'),
    "chat": Path_("chat", "/v1/chat/completions", b"data: [DONE]", b'"content":"',
                  {"authorization": f"Bearer {CLIENT_KEY}"}),
    "messages": Path_("messages", "/v1/messages", b"event: message_stop", b'"text_delta"',
                      {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}),
    "messages_pass": Path_("messages_pass", "/pass/v1/messages", b"event: message_stop", b'"text_delta"',
                           {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}),
    "responses": Path_("responses", "/v1/responses", b"event: response.completed",
                       b"event: response.output_text.delta", {"authorization": f"Bearer {CLIENT_KEY}"}),
    "responses_pass": Path_("responses_pass", "/pass/v1/responses", b"event: response.completed",
                            b"event: response.output_text.delta", {"authorization": f"Bearer {CLIENT_KEY}"}),
}

# LiteLLM 1.106 serves chat and /v1/messages from a chat upstream; its /v1/responses on a
# hosted_vllm model fails at the first chunk ("'GenericEvent' object has no attribute 'type'").
LITELLM_PATHS = ("chat", "messages")


def body(path: str, model: str, size: str = "small") -> bytes:
    """The request body a client of ``path`` sends for ``model`` (``small`` or ``real``)."""
    if size == "real":
        data = capture_body(REAL_CAPTURE[path])
        data["model"] = model
        data["stream"] = True
        return json.dumps(data, separators=(",", ":")).encode()
    if path in ("direct", "chat"):
        data = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "stream": True}
        if path == "direct":
            data["stream_options"] = {"include_usage": True}
    elif path in ("messages", "messages_pass"):
        data = {"model": model, "max_tokens": 8192, "stream": True,
                "messages": [{"role": "user", "content": "Say hello."}]}
    else:
        data = {"model": model, "stream": True, "input": "Say hello."}
    return json.dumps(data, separators=(",", ":")).encode()


__all__ = ["CLIENT_KEY", "FIRST", "LITELLM_PATHS", "PATHS", "REAL_CAPTURE", "Path_", "body"]
