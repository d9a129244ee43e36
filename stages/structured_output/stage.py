"""structured_output: an answer that validates against the schema the client asked for, or a
clear error, on upstreams that do not enforce one (DeepSeek: ``json_object`` only).

Request way: a JSON-schema answer format (Responses ``text.format``, Chat ``response_format``,
Anthropic ``output_config.format``) on a profile whose ``response_schema`` is not ``enforced``
goes as the schema in the system prompt, with ``json_object`` where the upstream has that JSON
mode (DeepSeek, whose JSON mode needs the word "json" in the prompt: the instruction has it) and
no format where it has none. A client's own ``json_object`` gets that word when its prompt lacks
it, and a JSON-object check. A forced tool (``tool_choice`` naming one function) is left as it is:
its arguments are checked against its parameters (its ``input_schema``), unless the upstream
enforces them (``strict`` sent to a profile that supports it).

Response way: the answer is held back whole (only ``Heartbeat`` events pass, one at least every
``keepalive_s`` while it is held, so a streaming client's idle timer keeps running) and checked at
its ``MessageStop`` (``schema.Checker``). Valid: it goes on as it came (a text answer without the
code fence or white space around the JSON, when it had them). Invalid: ``pipeline.errors.Redo``
asks the retry loop for another try with the validation error appended as a user message, up to
``retries`` times; then the client gets a 422 (``unprocessable``) in its dialect, after the start
of the message for a streaming client (Responses ``response.failed`` / ``invalid_prompt``, which
Codex does not retry; Anthropic ``invalid_request_error``; Chat's error chunk). Not checked and not
held past it: a turn that calls another tool (a Codex agent turn before its final answer: released
at the call's start), an answer cut by the output budget (``max_tokens``: reported as cut), one
that ends in an upstream error. The log line's ``structured_output`` field says how many tries it
took and why the last one failed.

Place it last in YAML (after ``tool_ids``, and after any task-form stage): on the way out it is
then the first to see the upstream's answer, as the upstream sent it (a forced tool's arguments
before ``tool_ids`` drops a call whose arguments do not parse, the upstream's own stop reason), its
``Redo`` is raised in the task that reads the upstream, and no other stage has seen anything of
an answer it sends back. It checks a forced tool's arguments against the tool's parameters as
sent upstream (by the upstream's name, ``tool_ids``' sanitised schema). The system-prompt schema
is not in ``token_budget``'s estimate (a few KB, on 1M-token DeepSeek windows).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from typing import Any

import msgspec

from pipeline.errors import Redo, RequestError
from pipeline.events import (
    BlockStart,
    ErrorInfo,
    Event,
    Heartbeat,
    MessageStart,
    MessageStop,
    StreamError,
    TextDelta,
    ToolArgsDelta,
)
from pipeline.model import ChatRequest, Message, ResponseFormat, TextPart
from pipeline.profiles import Profile
from pipeline.stage import RequestContext, Stage, StageConfig
from stages.structured_output.schema import OBJECT, Checker, SchemaProblem

_ENCODE = msgspec.json.Encoder()
_QUOTE_CHARS = 2_000  # of a rejected answer, quoted back to the model in the retry's note


class _Ask:
    """What this request's answer is checked against, and how many tries were asked for: made by
    the request hook, kept by reference across the retry loop's rewinds of ``ctx.state``."""

    __slots__ = ("checker", "label", "redos", "tool")

    def __init__(self, checker: Checker, label: str, tool: str | None = None) -> None:
        self.checker = checker
        self.label = label  # for the retry's note and the error: "the JSON schema" / "tool X's input schema"
        self.tool = tool  # the forced tool's name (client-facing), None: the answer's text
        self.redos = 0


class _Held:
    """One try's answer, held back until its end."""

    __slots__ = ("args", "beat", "events", "passing", "texts")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.texts: dict[int, list[str]] = {}  # text block index -> pieces
        self.args: dict[int, list[str]] = {}  # the forced tool's call blocks -> argument fragments
        self.passing = False  # released: the rest of the answer passes unchecked
        self.beat = time.monotonic()

    def release(self, *tail: Event) -> list[Event]:
        self.passing = True
        out, self.events = self.events, []
        out.extend(tail)
        return out


class StructuredOutput(Stage):
    name = "structured_output"

    class Config(StageConfig, frozen=True, kw_only=True):
        # Tries after the first when an answer does not validate (each with the error appended).
        retries: int = 1
        # Longest a streaming client waits without a keep-alive while the answer is held back.
        keepalive_s: float = 10.0

        def __post_init__(self) -> None:
            if not 0 <= self.retries <= 2:
                raise ValueError("retries must be 0, 1 or 2")
            if self.keepalive_s <= 0:
                raise ValueError("keepalive_s must be positive")

    def __init__(self, config: Config, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._held = self.id + ":answer"  # ctx.state key of the current try's _Held

    async def on_request(self, request: ChatRequest, ctx: RequestContext) -> ChatRequest:
        profile = ctx.profile
        choice = request.tool_choice
        if choice is not None and choice.mode == "tool" and choice.name:
            self._forced_tool(request, choice.name, profile, ctx)
            return request
        fmt = request.response_format
        if fmt is None or fmt.type == "text" or profile.response_schema == "enforced":
            return request
        if fmt.type == "json_schema":
            try:
                checker = Checker(fmt.schema or {})
            except SchemaProblem as err:
                raise RequestError(f"the response format's {err}") from None
            label = "the JSON schema" + (f" {fmt.name!r}" if fmt.name else "")
            note: str | None = _instruction(fmt, label)
        else:
            checker, label = Checker(OBJECT), "a JSON object"
            note = None if profile.response_schema == "json_object" and _says_json(request) else (
                "Reply with one JSON object and nothing else.")
        ctx.state[self.id] = _Ask(checker, label)
        sent = ResponseFormat(type="json_object") if profile.response_schema == "json_object" else None
        system = (*request.system, note) if note else request.system
        return msgspec.structs.replace(request, system=system, response_format=sent)

    def _forced_tool(self, request: ChatRequest, name: str, profile: Profile, ctx: RequestContext) -> None:
        spec = request.tool(name)
        if spec is None or spec.kind != "function" or (spec.strict and profile.supports_strict):
            return
        try:
            checker = Checker(spec.parameters or OBJECT)
        except SchemaProblem as err:
            ctx.lose("structured_output", f"tool {name}: its arguments are not checked: {err}")
            return
        ctx.state[self.id] = _Ask(checker, f"the input schema of the tool {name!r}", tool=name)

    def on_event(self, event: Event, ctx: RequestContext) -> Sequence[Event]:
        ask: _Ask | None = ctx.state.get(self.id)
        if ask is None:
            return (event,)
        held: _Held | None = ctx.state.get(self._held)
        if held is None:
            held = ctx.state[self._held] = _Held()
        if held.passing or type(event) is Heartbeat:
            return (event,)
        if type(event) is TextDelta:
            pieces = held.texts.get(event.index)
            if pieces is not None:
                pieces.append(event.text)
        elif type(event) is ToolArgsDelta:
            fragments = held.args.get(event.index)
            if fragments is not None:
                fragments.append(event.fragment)
        elif type(event) is BlockStart:
            if event.block == "text":
                held.texts[event.index] = []
            elif event.block == "tool_call":
                if ask.tool is None:  # an agent's tool turn: not the structured answer
                    return held.release(event)
                if event.name == ask.tool:
                    held.args[event.index] = []
        elif type(event) is MessageStop:
            return self._settle(event, ask, held, ctx)
        elif type(event) is StreamError:
            return held.release(event)
        held.events.append(event)
        now = time.monotonic()
        if now - held.beat >= self.config.keepalive_s:
            held.beat = now
            return (Heartbeat(),)
        return ()

    def on_end(self, ctx: RequestContext) -> Sequence[Event]:
        held: _Held | None = ctx.state.get(self._held)
        return held.release() if held is not None and held.events else ()

    def _settle(self, stop: MessageStop, ask: _Ask, held: _Held, ctx: RequestContext) -> list[Event]:
        """The answer ended: on its way if it validates, else another try or the client's 422."""
        if stop.stop_reason == "max_tokens":  # cut by the budget: the client is told it was cut
            ctx.fields[self.name] = {"tries": ask.redos + 1, "checked": False}
            return held.release(stop)
        if ask.tool is None:
            parts = [("".join(p), i) for i, p in held.texts.items()]
            raw = "".join(text for text, _ in parts)
            clean, problem = ask.checker.text(raw)
            if problem is None and clean != raw and len(parts) == 1:
                held.events = _one_text(held.events, parts[0][1], clean)
        else:
            calls = ["".join(f) for f in held.args.values()]
            problem = None if calls else f"the answer has no call to the tool {ask.tool!r} with JSON arguments"
            for args in calls:
                problem = problem or ask.checker.arguments(args)
            raw = calls[0] if calls else ""
        if problem is None:
            ctx.fields[self.name] = {"tries": ask.redos + 1}
            return held.release(stop)
        if ask.redos < self.config.retries:
            ask.redos += 1
            raise Redo(f"the answer does not validate against {ask.label}: {problem}",
                       partial(_with_note, _retry_note(ask, problem, raw)))
        ctx.fields[self.name] = {"tries": ask.redos + 1, "error": problem[:300]}
        start: list[Event] = [e for e in held.events if type(e) is MessageStart]
        held.events = start[:1]
        tries = "1 try" if ask.redos == 0 else f"{ask.redos + 1} tries"
        message = (f"The model's answer did not validate against {ask.label} after {tries} "
                   f"(the upstream does not enforce schemas; the gateway checks them): {problem}")
        return held.release(StreamError(error=ErrorInfo(code="unprocessable", status=422, message=message)))


def _instruction(fmt: ResponseFormat, label: str) -> str:
    schema = _ENCODE.encode(fmt.schema or {}).decode()
    return ("Structured output: your final answer (any turn in which you do not call a tool) must be "
            "exactly one JSON value and nothing else: no prose before or after it, no Markdown code "
            f"fence. It must validate against {label}:\n{schema}")


def _says_json(request: ChatRequest) -> bool:
    """The prompt (system and user text) has the word "json", which DeepSeek's JSON mode needs."""
    if any("json" in text.lower() for text in request.system):
        return True
    return any(isinstance(part, TextPart) and "json" in part.text.lower()
               for message in request.messages if message.role in ("system", "user") for part in message.parts)


def _retry_note(ask: _Ask, problem: str, raw: str) -> str:
    quoted = raw[:_QUOTE_CHARS] + (" [...]" if len(raw) > _QUOTE_CHARS else "")
    if ask.tool is not None:
        return (f"Your call of the tool {ask.tool!r} was rejected: its arguments do not validate "
                f"against its input schema: {problem}\nThe arguments were: {quoted}\n"
                f"Call {ask.tool!r} again, with arguments (JSON) that validate against its input schema.")
    return (f"Your answer was rejected: it does not validate against {ask.label}: {problem}\n"
            f"The answer was: {quoted}\nAnswer again with only the JSON, valid against {ask.label}.")


def _with_note(note: str, request: ChatRequest) -> ChatRequest:
    """The request for the next try: the previous one with ``note`` as a last user message."""
    message = Message(role="user", parts=(TextPart(note),))
    return msgspec.structs.replace(request, messages=(*request.messages, message))


def _one_text(events: list[Event], index: int, text: str) -> list[Event]:
    """``events`` with the deltas of text block ``index`` as one delta of ``text``."""
    out: list[Event] = []
    done = False
    for event in events:
        if type(event) is TextDelta and event.index == index:
            if not done:
                out.append(TextDelta(index=index, text=text))
                done = True
            continue
        out.append(event)
    return out


__all__ = ["StructuredOutput"]
