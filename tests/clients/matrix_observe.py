"""What one client version sent and what the gateway made of it, for the client version matrix
(tests/clients/test_matrix.py, README "Client version matrix").

The inputs are one run's records: the client's requests as ``tests.clients.capture_app`` wrote
them (``capture.jsonl``), the bodies the simulator received (``/_sim/requests``) and the
gateway's ``request_finished`` lines. Each request is the main agent's or its sub-agent's (the
sub-agent's first user message is ``SUB_PROMPT``). ``sends`` describes the client's own request
shape, behaviour by behaviour, from what it really sent (never from its version string);
``needs`` says, for each behaviour DeepSeek would refuse, what the gateway did about it, and is
only filled in after ``check_*`` has measured that the upstream got the fixed shape.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUB_PROMPT = "SIM:shell cat out.txt"
CLAUDE_SCRIPT = (
    "SIM:script shell echo hello > out.txt ;; call Agent {\"description\":\"read the file\",\"prompt\":\""
    + SUB_PROMPT + "\",\"subagent_type\":\"general-purpose\",\"run_in_background\":false} ;; "
    "text All done: out.txt says hello.")
CODEX_SCRIPT = (
    "SIM:script shell echo hello > out.txt ;; call multi_agent_v1__spawn_agent {\"message\":\"" + SUB_PROMPT
    + "\"} ;; call multi_agent_v1__wait_agent {\"targets\":[\"{{result.agent_id}}\"]} ;; text All done.")
NAMESPACE = "multi_agent_v1"


@dataclass
class Run:
    """One run's records, split into the main agent's and the sub-agent's requests."""

    which: str
    captured: list[dict[str, Any]]  # every client request, in arrival order
    upstream: list[dict[str, Any]]  # the simulator's request bodies, in arrival order
    lines: list[dict[str, Any]]
    sends: list[str] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)

    @property
    def generate(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.captured if r["method"] == "POST"
                and r["path"].endswith(("/v1/messages", "/v1/responses"))]

    def sub(self, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [b for b in bodies if is_sub_agent(b)]

    def main(self, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [b for b in bodies if not is_sub_agent(b)]


def load_run(which: str, out: Path, capture: Path, lines: list[dict[str, Any]]) -> Run:
    captured = sorted((json.loads(line) for line in capture.read_text().splitlines() if line.strip()),
                      key=lambda r: r["seq"])
    upstream = list(json.loads((out / "simulator_requests.json").read_text()))
    return Run(which, captured, upstream, lines)


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    return [p.get("text", "") for p in content or [] if isinstance(p, dict) and isinstance(p.get("text"), str)]


def user_texts(body: dict[str, Any]) -> list[str]:
    """The text of every user message of a request body in any of the three dialects."""
    if "messages" in body:
        return [t for m in body["messages"] if m.get("role") == "user" for t in _texts(m.get("content"))]
    return [t for item in body.get("input", []) if item.get("type", "message") == "message"
            and item.get("role") == "user" for t in _texts(item.get("content"))]


def is_sub_agent(body: dict[str, Any]) -> bool:
    texts = user_texts(body)
    return any(SUB_PROMPT in t for t in texts) and not any("SIM:script" in t for t in texts)


def tool_outputs(body: dict[str, Any]) -> list[str]:
    """Every tool result's text in a client request (Messages ``tool_result``, Responses outputs)."""
    if "messages" in body:
        return ["\n".join(_texts(block.get("content"))) for m in body["messages"]
                if isinstance(m.get("content"), list) for block in m["content"]
                if isinstance(block, dict) and block.get("type") == "tool_result"]
    return [item["output"] if isinstance(item.get("output"), str) else json.dumps(item.get("output"))
            for item in body.get("input", []) if item.get("type") == "function_call_output"]


def echoed_thinking(body: dict[str, Any]) -> list[str]:
    """The token each echoed thinking block (Messages ``signature``) or reasoning item (Responses
    ``encrypted_content``) of a client request carries."""
    if "messages" in body:
        return [block.get("signature", "") for m in body["messages"] if m.get("role") == "assistant"
                and isinstance(m.get("content"), list) for block in m["content"]
                if isinstance(block, dict) and block.get("type") == "thinking"]
    return [item.get("encrypted_content") or "" for item in body.get("input", []) if item.get("type") == "reasoning"]


# ------------------------------------------------------------------ what the client sent


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def client_effort(body: dict[str, Any]) -> str | None:
    """The effort a client request asks for (Messages ``output_config``, Responses ``reasoning``)."""
    return (body.get("output_config") or {}).get("effort") or (body.get("reasoning") or {}).get("effort")


def effort_shape(body: dict[str, Any]) -> str:
    """How a client request that asks for an effort says thinking: disabled, or nothing."""
    thinking = body.get("thinking")
    return f"`thinking: {{type: {thinking['type']}}}` with an effort" if thinking else "effort without `thinking`"


def _thinking_words(body: dict[str, Any]) -> str:
    thinking = body.get("thinking")
    effort = client_effort(body)
    words = f"thinking `{thinking['type']}`" if thinking else "no `thinking`"
    if thinking and thinking.get("display"):
        words += f" (display `{thinking['display']}`)"
    return words + (f" with effort `{effort}`" if effort else "")


def claude_sends(run: Run) -> dict[str, Any]:
    """Claude Code's request shape: its thinking and effort (main agent, sub-agent), a system
    message inside messages[], a probe before the first request."""
    main, sub = run.main(run.generate), run.sub(run.generate)
    shapes = {
        "main": sorted({_thinking_words(b) for b in main}),
        "sub": sorted({_thinking_words(b) for b in sub}),
        "system_in_messages": any(m.get("role") == "system" for b in run.generate for m in b["messages"]),
        "probes": sorted({f"`{r['method']} {r['path']}` (answered {r.get('status')})" for r in run.captured
                          if not r["path"].endswith(("/v1/messages", "/v1/responses"))}),
    }
    run.sends += [f"main agent: {', '.join(shapes['main'])}", f"sub-agent: {', '.join(shapes['sub'])}"]
    if shapes["system_in_messages"]:
        run.sends.append("a `system` message inside `messages[]`")
    run.sends += [f"{probe} before its first request" for probe in shapes["probes"]]
    return shapes


def codex_sends(run: Run) -> dict[str, Any]:
    """Codex's request shape: namespace tools, instructions or developer messages, reasoning."""
    first = run.generate[0]
    namespaces = sorted(t["name"] for t in first.get("tools", []) if t.get("type") == "namespace")
    kinds = sorted({t.get("type", "?") for t in first.get("tools", [])})
    shapes = {"namespaces": namespaces,
              "instructions": "instructions" in first,
              "reasoning": first.get("reasoning"),
              "include": first.get("include") or []}
    run.sends.append(f"tools of types {', '.join(f'`{k}`' for k in kinds)}; namespaces "
                     + ", ".join(f"`{n}`" for n in namespaces))
    run.sends.append("its prompt in `instructions`" if shapes["instructions"]
                     else "its prompt as developer messages, no `instructions`")
    run.sends.append(f"`reasoning: {compact(shapes['reasoning'])}`"
                     + (f", `include: {compact(shapes['include'])}`" if shapes["include"] else ""))
    return shapes


# ------------------------------------------------------------------ what the upstream got


def late_system(body: dict[str, Any], upstream: str) -> list[int]:
    """Indexes of the system messages DeepSeek refuses in an upstream request: any in a Messages
    body's ``messages``, one after a non-system message in Chat ``messages`` or Responses ``input``."""
    if upstream == "anthropic":
        return [i for i, m in enumerate(body["messages"]) if m.get("role") == "system"]
    late, seen_other = [], False
    for i, item in enumerate(body["messages"] if upstream == "chat" else body.get("input", [])):
        if item.get("role") in ("system", "developer"):
            if seen_other:
                late.append(i)
        else:
            seen_other = True
    return late


def upstream_effort(body: dict[str, Any]) -> Any:
    """The effort an upstream request carries (any dialect), None without one."""
    if "reasoning_effort" in body:
        return body["reasoning_effort"]
    if "output_config" in body:
        return body["output_config"].get("effort")
    effort = (body.get("reasoning") or {}).get("effort")
    return None if effort == "none" else effort


def upstream_thinking_off(body: dict[str, Any]) -> bool:
    if "thinking" in body:
        return body["thinking"].get("type") == "disabled"
    return (body.get("reasoning") or {}).get("effort") == "none"


def upstream_tool_names(body: dict[str, Any]) -> list[str]:
    return [t.get("name") or t.get("function", {}).get("name", "") for t in body.get("tools", [])]


def echoed_calls(body: dict[str, Any]) -> list[tuple[str | None, str]]:
    """(namespace, name) of every function call a Responses client echoes back."""
    return [(item.get("namespace"), item["name"]) for item in body.get("input", [])
            if item.get("type") == "function_call"]


__all__ = ["CLAUDE_SCRIPT", "CODEX_SCRIPT", "NAMESPACE", "Run", "SUB_PROMPT", "claude_sends", "client_effort",
           "codex_sends", "compact", "echoed_calls", "echoed_thinking", "effort_shape", "is_sub_agent", "late_system",
           "load_run", "tool_outputs", "upstream_effort", "upstream_thinking_off", "upstream_tool_names", "user_texts"]
