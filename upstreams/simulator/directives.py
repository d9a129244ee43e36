"""Directives: how a prompt scripts the simulator's answer, and the planner that applies them.

Directives are read from the prompt: the last user message's text (string or text parts, the
whole text searched, since clients wrap prompts in their own markup). A user message that comes
straight after a tool message and holds no directive is a client's note inside a tool loop (e.g.
Claude Code's text beside a tool_result), so the search goes back to the user message before it.
Each directive runs from ``SIM:<kind>`` to the end of its line:

    SIM:text <words>                 answer exactly <words>
    SIM:shell <command>              one call to the offered shell tool (Bash {command},
                                     exec_command {cmd}, shell_command {command},
                                     shell / local_shell {command: ["bash", "-lc", cmd]})
    SIM:write <path> <content...>    Write {file_path, content}, else apply_patch {input: an
                                     Add File patch}, else a shell printf; ``\\n`` = newline
    SIM:parallel <c1> || <c2> ...    several shell calls in one turn (fragments interleaved)
    SIM:call <name> <json>           one call to any offered tool with these arguments;
                                     ``{{result.KEY}}`` in them becomes field KEY of the latest
                                     tool result (a JSON object), e.g. an id a first call returned
    SIM:read <path>                  Read {file_path}, else a shell ``cat <path>`` (with the
                                     tool's ``max_output_tokens`` raised, if it has one)
    SIM:result                       answer with the text of the latest tool result
    SIM:describe                     (a vision model) describe the images of the newest message
                                     carrying any (``vision.describe_image``)
    SIM:script <s0> ;; <s1> ;; ...   step k (a directive without ``SIM:``) is used when k
                                     tool-result rounds follow the prompt; past the end: "done"
    SIM:think <words>                use <words> as this turn's reasoning text (``{step}``
                                     becomes the script step's number)
    SIM:fault <kind> [once]          inject a fault (config.FaultKind); ``once``: only the
                                     first time this prompt reaches this step
    SIM:redact [<words>]             the real-Anthropic flavour (thinking on) also answers a
                                     ``redacted_thinking`` block after the thinking block, its
                                     data this simulator's seal of <words>
    SIM:invalid [once] <text>        answer <text> instead: the content of a text answer, the
                                     arguments of each call of a tool answer (invalid JSON or
                                     JSON that breaks a schema, on demand); ``once``: only the
                                     first time this prompt reaches this step (Chat and
                                     Responses endpoints)

In JSON mode (``response_format`` ``json_object`` or ``json_schema``) a text answer that is not
already a JSON object is wrapped as ``{"answer": <text>}``; ``SIM:text {"a": 1}`` answers the
object itself.

A single answer directive is a one-step script. No directive: "Simulated answer to: <prompt>", or,
when the prompt carries images, their descriptions (the simulator as a vision model).
A user message without a directive straight after another user message is a note on it (a
gateway's request to answer again, or the images of the tool results before it): the search goes
back to the one before it too.

Context compaction: when the last message asks for a summary of the conversation (a client's own
compaction prompt, ``COMPACTION_MARKERS``), the answer is a summary whose text carries the
script's remaining steps as a ``SIM:script`` line (and the ``SIM:think`` line). The client puts
that summary into its rewritten history, where it is the newest user message with a directive,
so the loop goes on from the step it had reached however the client rebuilt the history.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from typing import Any

import msgspec

from upstreams.simulator.config import FAULT_KINDS
from upstreams.simulator.vision import describe_all, describe_latest, image_urls

_DIRECTIVE = re.compile(r"SIM:([A-Za-z_]+)[ \t]*([^\r\n]*)")
_RESULT_FIELD = re.compile(r"\{\{result\.([A-Za-z0-9_]+)\}\}")
_SHELL_TOOLS = ("Bash", "exec_command", "shell_command", "shell", "local_shell")
_STEP_KINDS = ("text", "shell", "write", "parallel", "call", "result", "read", "describe")
_READ_MAX_TOKENS = 100_000
# Phrases of the clients' compaction prompts (Claude Code 2.1's auto-compact, Codex 0.169's
# local summarisation turn); a last user message holding one is answered with a summary.
COMPACTION_MARKERS: tuple[str, ...] = (
    "create a detailed summary of the conversation",
    "CONTEXT CHECKPOINT COMPACTION",
)
_DECODE = msgspec.json.Decoder()
_ENCODE = msgspec.json.Encoder()


class PlannedCall(msgspec.Struct, frozen=True):
    name: str
    arguments: str  # JSON text, exactly as it will be streamed


class Plan(msgspec.Struct, kw_only=True):
    """One answer before budgets and faults: reasoning, then content, then tool calls."""

    reasoning: str
    content: str
    calls: list[PlannedCall]
    fault: str | None = None
    fault_once: bool = False
    invalid: str | None = None  # SIM:invalid's text, in place of the content / the arguments
    invalid_once: bool = False
    step_key: str = ""  # identifies prompt + step, for ``fault ... once`` and ``invalid once ...``
    redacted: str | None = None  # ``SIM:redact``: the text hidden in a redacted_thinking block


def message_text(msg: dict[str, Any]) -> str:
    content = msg.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content
                         if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _last_text_part(msg: dict[str, Any]) -> str:
    content = msg.get("content")
    if isinstance(content, list):
        texts = [p.get("text", "") for p in content
                 if isinstance(p, dict) and p.get("type") == "text" and p.get("text", "").strip()]
        return texts[-1] if texts else ""
    return content if isinstance(content, str) else ""


def find_prompt(messages: list[dict[str, Any]]) -> int | None:
    """Index of the user message that carries the prompt (see the module docstring)."""
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    if not users:
        return None
    for i in reversed(users):
        if "SIM:" in message_text(messages[i]):
            return i
        j = i - 1
        while j >= 0 and messages[j]["role"] == "system":
            j -= 1
        if j < 0 or messages[j]["role"] not in ("tool", "user"):
            return i
    return users[-1]


def tool_rounds(messages: list[dict[str, Any]], start: int) -> int:
    """Groups of consecutive tool messages after ``start`` (a parallel turn counts once)."""
    rounds = 0
    previous = None
    for msg in messages[start + 1:]:
        if msg["role"] == "tool" and previous != "tool":
            rounds += 1
        if msg["role"] != "system":
            previous = msg["role"]
    return rounds


def _properties(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool schema's ``properties`` when it is a map, else none: a client may send any JSON
    there (a string, a list, a number), and the planner only reads which names are offered."""
    props = schema.get("properties")
    return props if isinstance(props, dict) else {}


def _shell_call(tools: dict[str, dict[str, Any]], cmd: str) -> PlannedCall | None:
    names = [n for n in _SHELL_TOOLS if n in tools]
    names += [n for n in tools if n not in names and any(k in n.lower() for k in ("shell", "bash"))]
    for name in names:
        props = _properties(tools[name])
        if "cmd" in props:
            args: dict[str, Any] = {"cmd": cmd}
        elif "command" in props:
            command = props["command"]
            is_array = isinstance(command, dict) and command.get("type") == "array"
            args = {"command": ["bash", "-lc", cmd] if is_array else cmd}
        elif not props and name in _SHELL_TOOLS:
            args = ({"cmd": cmd} if name == "exec_command" else
                    {"command": ["bash", "-lc", cmd]} if name in ("shell", "local_shell") else
                    {"command": cmd})
        else:
            continue
        return PlannedCall(name, _ENCODE.encode(args).decode())
    return None


def _write_call(tools: dict[str, dict[str, Any]], path: str, content: str) -> PlannedCall | None:
    write_props = _properties(tools["Write"]) if "Write" in tools else {}
    if "Write" in tools and ("file_path" in write_props or not write_props):
        args = {"file_path": path, "content": content}
        return PlannedCall("Write", _ENCODE.encode(args).decode())
    if "apply_patch" in tools:
        lines = content[:-1].split("\n") if content.endswith("\n") else content.split("\n")
        patch = (f"*** Begin Patch\n*** Add File: {path}\n"
                 + "".join(f"+{line}\n" for line in lines) + "*** End Patch\n")
        return PlannedCall("apply_patch", _ENCODE.encode({"input": patch}).decode())
    return _shell_call(tools, f"printf '%s' {shlex.quote(content)} > {shlex.quote(path)}")


def _no_tool(what: str, tools: dict[str, Any]) -> tuple[str, str, list[PlannedCall]]:
    offered = ", ".join(sorted(tools)) or "none"
    return (f"I need a {what} tool, but none is offered.",
            f"No {what} tool is available (offered tools: {offered}).", [])


def _step(kind: str, arg: str, tools: dict[str, dict[str, Any]],
          messages: list[dict[str, Any]]) -> tuple[str, str, list[PlannedCall]]:
    """One step → (reasoning, content, calls)."""
    if kind == "text":
        return "The user asked for a direct answer, so I will reply with that text.", arg, []
    if kind == "result":
        results = [m for m in messages if m["role"] == "tool"]
        text = message_text(results[-1]) if results else "(no tool result)"
        return ("The tool finished; I will report its output.", f"Tool result: {text}", [])
    if kind == "describe":
        return "The user wants to know what the image shows; I will describe it.", describe_latest(messages), []
    if kind == "shell":
        call = _shell_call(tools, arg)
        if call is None:
            return _no_tool("shell", tools)
        return (f"The user wants me to run `{arg}`. The {call.name} tool can do that, so I will "
                "call it now and look at the output.", f"Running `{arg}`.", [call])
    if kind == "read":
        if "Read" in tools:
            return (f"I need the contents of {arg}; the Read tool shows them.", "",
                    [PlannedCall("Read", _ENCODE.encode({"file_path": arg}).decode())])
        call = _shell_call(tools, f"cat {shlex.quote(arg)}")
        if call is None:
            return _no_tool("file-reading", tools)
        if "max_output_tokens" in _properties(tools[call.name]):
            # Codex's exec_command keeps 10,000 tokens of output unless asked for more.
            args = {**_DECODE.decode(call.arguments), "max_output_tokens": _READ_MAX_TOKENS}
            call = PlannedCall(call.name, _ENCODE.encode(args).decode())
        return (f"I need the contents of {arg}; `cat` with {call.name} shows them.", "", [call])
    if kind == "parallel":
        cmds = [c.strip() for c in arg.split("||") if c.strip()]
        found = [_shell_call(tools, c) for c in cmds]
        calls = [c for c in found if c is not None]
        if not calls or len(calls) < len(found):
            return _no_tool("shell", tools)
        return (f"There are {len(cmds)} independent commands; I will run them in parallel "
                f"with {calls[0].name}.", "", calls)
    if kind == "write":
        path, _, words = arg.partition(" ")
        content = words.replace("\\n", "\n") + "\n"
        call = _write_call(tools, path, content)
        if call is None:
            return _no_tool("file-writing", tools)
        return (f"I need to create {path}. I will use the {call.name} tool to write it.",
                f"Writing {path}.", [call])
    if kind == "call":
        name, _, raw = arg.partition(" ")
        if name not in tools:
            return _no_tool(f"`{name}`", tools)
        if _RESULT_FIELD.search(raw):
            fields = _result_fields(messages)
            missing = [key for key in _RESULT_FIELD.findall(raw) if not isinstance(fields.get(key), str)]
            if missing:
                return ("The latest tool result lacks a field I need.",
                        f"SIM:call needs {', '.join(missing)} from the latest tool result, which has none.", [])
            raw = _RESULT_FIELD.sub(lambda m: str(fields[m.group(1)]), raw)
        try:
            arguments = _ENCODE.encode(_DECODE.decode(raw or "{}")).decode()
        except msgspec.DecodeError:
            return "The arguments are not JSON.", f"Invalid SIM:call arguments: {raw}", []
        return f"I will call {name} as asked.", "", [PlannedCall(name, arguments)]
    return ("That directive is unknown.", f"Unknown simulator step `{kind}`.", [])


def _is_object(text: str) -> bool:
    try:
        return isinstance(_DECODE.decode(text), dict)
    except msgspec.DecodeError:
        return False


def spoil(plan: Plan) -> Plan:
    """The plan with ``SIM:invalid``'s text as its content, or as each call's arguments."""
    assert plan.invalid is not None
    if plan.calls:
        plan.calls = [PlannedCall(c.name, plan.invalid) for c in plan.calls]
    else:
        plan.content = plan.invalid
    return plan


def _result_fields(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The latest tool result's JSON object (none when it is not one)."""
    results = [m for m in messages if m["role"] == "tool"]
    try:
        value = _DECODE.decode(message_text(results[-1])) if results else None
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


class Script(msgspec.Struct, kw_only=True):
    """The prompt's directives as they apply to this request."""

    text: str  # the prompt message's text
    prompt: str  # its last text part, for the no-directive answer
    think: str | None
    fault: str | None
    redact: str | None
    invalid: str | None
    kind: str | None  # the answer directive (``script`` or a single step), None: none
    steps: list[str]
    rounds: int  # tool-result rounds since the prompt: the current step
    images: list[str] = []  # the prompt message's image URLs


def read_script(messages: list[dict[str, Any]]) -> Script:
    at = find_prompt(messages)
    text = message_text(messages[at]) if at is not None else ""
    directives = [(k.lower(), a.strip()) for k, a in _DIRECTIVE.findall(text)]
    answer = next(((k, a) for k, a in directives if k not in ("think", "fault", "redact", "invalid")), None)
    kind, arg = answer if answer is not None else (None, "")
    return Script(
        text=text, prompt=" ".join(_last_text_part(messages[at]).split()) if at is not None else "",
        think=next((a for k, a in directives if k == "think"), None),
        fault=next((a for k, a in directives if k == "fault"), None), kind=kind,
        redact=next((a or "hidden reasoning" for k, a in directives if k == "redact"), None),
        invalid=next((a for k, a in directives if k == "invalid"), None),
        steps=([s.strip() for s in arg.split(";;")] if kind == "script" else
               [f"{kind} {arg}"] if kind is not None else []),
        rounds=tool_rounds(messages, at) if at is not None else 0,
        images=image_urls(messages[at]) if at is not None else [])


def is_compaction(messages: list[dict[str, Any]]) -> bool:
    """The last message is a client's request to summarise the conversation."""
    if not messages or messages[-1]["role"] != "user":
        return False
    text = message_text(messages[-1])
    return "SIM:" not in text and any(m in text for m in COMPACTION_MARKERS)


def _summary(script: Script) -> tuple[str, str]:
    """(reasoning, content) answering a compaction request: the remaining steps survive."""
    done = min(script.rounds, len(script.steps))
    left = script.steps[done:] or ["text done"]
    lines = [f"SIM:think {script.think}"] if script.think is not None else []
    if script.kind is not None:
        lines.append("SIM:script " + " ;; ".join(left))
    carried = "\n".join(lines) or f"The user asked: {script.prompt[:200]}"
    reasoning = (f"The client asks me to summarise the conversation. {done} of "
                 f"{len(script.steps)} scripted steps are done; the summary must keep the rest.")
    content = (f"<analysis>\nA scripted session: {done} steps done, {len(left)} left.\n"
               f"</analysis>\n\n<summary>\n1. Primary Request and Intent: run the remaining "
               f"scripted steps, in order.\n7. Pending Tasks:\n{carried}\n</summary>")
    return reasoning, content


def _forced_args(schema: dict[str, Any] | None) -> str:
    """The arguments of a call the directives did not plan but a forced ``tool_choice`` demands:
    each required string property filled in, so a client's schema check passes."""
    props = (schema or {}).get("properties") or {}
    required = [name for name in (schema or {}).get("required") or () if isinstance(name, str)]
    args = {name: "forced" for name in required if (props.get(name) or {}).get("type", "string") == "string"}
    return _ENCODE.encode(args).decode()


def plan_answer(messages: list[dict[str, Any]], tools: dict[str, dict[str, Any]],
                tool_choice: str | dict[str, Any], json_mode: bool) -> Plan:
    """Decide this turn's answer from the prompt's directives and the conversation so far."""
    if is_compaction(messages):
        script = read_script(messages[:-1])
        reasoning, content = _summary(script)
        return Plan(reasoning=reasoning, content=content, calls=[],
                    step_key=f"compact:{script.rounds}")
    script = read_script(messages)
    steps, rounds = script.steps, script.rounds
    calls: list[PlannedCall]
    if script.kind is None and script.images:
        reasoning, content, calls = ("The user sent images without a directive; I will describe them.",
                                     describe_all(script.images), [])
    elif script.kind is None:
        reasoning, content, calls = ("The user asked a question without a directive; I will "
                                     "answer briefly.",
                                     f"Simulated answer to: {script.prompt[:60]}", [])
    elif script.kind not in _STEP_KINDS and script.kind != "script":
        reasoning, content, calls = ("That directive is unknown.",
                                     f"Unknown simulator directive SIM:{script.kind}.", [])
    elif rounds >= len(steps):
        reasoning, content, calls = ("Every step is finished; I will say so.", "done", [])
    else:
        step_kind, _, step_arg = steps[rounds].partition(" ")
        reasoning, content, calls = _step(step_kind.lower(), step_arg.strip(), tools, messages)

    if tool_choice == "none" and calls:
        content, calls = "Tool use is disabled for this request.", []
    elif isinstance(tool_choice, dict):  # a named tool: that call and no other
        forced = tool_choice["function"]["name"]
        calls = [c for c in calls if c.name == forced] or [PlannedCall(forced, _forced_args(tools.get(forced)))]
    elif tool_choice == "required" and not calls and tools:
        first = next(iter(tools))
        calls = [PlannedCall(first, _forced_args(tools[first]))]
    if json_mode and not calls and not _is_object(content):
        content = _ENCODE.encode({"answer": content}).decode()

    digest = hashlib.blake2b(script.text.encode(), digest_size=8).hexdigest()
    if script.think is not None:
        reasoning = script.think.replace("{step}", str(rounds))
    plan = Plan(reasoning=reasoning, content=content, calls=calls, step_key=f"{digest}:{rounds}",
                redacted=script.redact)
    if script.invalid is not None:
        head, _, rest = script.invalid.partition(" ")
        plan.invalid_once = head == "once"
        plan.invalid = rest if plan.invalid_once else script.invalid
    if script.fault is not None:
        kind, _, rest = script.fault.partition(" ")
        if kind not in FAULT_KINDS:
            plan.content, plan.calls = f"Unknown simulator fault `{kind}`.", []
        else:
            plan.fault, plan.fault_once = kind, rest.strip() == "once"
    return plan


__all__ = ["COMPACTION_MARKERS", "Plan", "PlannedCall", "Script", "find_prompt", "is_compaction",
           "message_text", "plan_answer", "read_script", "spoil", "tool_rounds"]
