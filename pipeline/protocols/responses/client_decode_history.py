"""Responses ``input`` items → neutral system texts and messages (PROTOCOLS §2.2, §5.3).

A run of reasoning + assistant message + call items becomes ONE assistant message (DeepSeek
wants one per step); tool outputs become ``tool`` messages keyed by ``call_id``. A client-run
search (Codex's ``tool_search_call`` / ``tool_search_output``, ``execution: "client"``) is a call
of the ``tool_search`` function and its result, which names the tools it loaded; those tools are
kept in ``loaded`` and offered with the request's own. Hosted-tool items are dropped with a loss.
Nothing else is dropped, nothing invented.

The walk is a fold over the items: ``History.fold`` is what it left after each one, so that a
session's next request, whose leading items are this one's (``pipeline.conversation``), resumes
after them (``History.resume``) and hands on the very same ``Message`` objects for them.
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from pipeline.errors import RequestError
from pipeline.events import SearchHit
from pipeline.model import (
    ImagePart,
    Loss,
    Message,
    Part,
    ServerTool,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)
from pipeline.protocols.responses.client_decode_reader import Reader
from pipeline.protocols.responses.client_decode_tools import LOCAL_SHELL, TOOL_SEARCH, decode_tools, flat_name
from pipeline.protocols.responses.models import (
    ContentPartParam,
    CustomToolCallItem,
    FunctionCallItem,
    ItemHead,
    LocalShellCallItem,
    LocalShellOutputItem,
    MessageItem,
    ReasoningItem,
    ToolOutputItem,
    ToolSearchCallItem,
    ToolSearchOutputItem,
    WebSearchCallItem,
)
from pipeline.protocols.values import decode_value
from pipeline.server_tools import search_error_text, search_gone_text, search_text

_ENCODER = msgspec.json.Encoder()
_TEXT_TYPES = frozenset({"input_text", "output_text", "text"})
_CALL_TYPES = frozenset({"function_call", "custom_tool_call", "local_shell_call"})
_OUTPUT_TYPES = frozenset({"function_call_output", "custom_tool_call_output"})
_ROLES = ("user", "assistant", "developer", "system")


class _Step:
    """One assistant step being assembled from a run of items."""

    __slots__ = ("calls", "made", "texts", "thinking")

    def __init__(self, thinking: list[Part] | None = None, texts: list[Part] | None = None,
                 calls: list[Part] | None = None, made: Message | None = None) -> None:
        self.thinking: list[Part] = thinking or []
        self.texts: list[Part] = texts or []
        self.calls: list[Part] = calls or []
        self.made = made  # the message these very parts made in a remembered request

    def message(self) -> Message:
        return self.made or Message(role="assistant", parts=(*self.thinking, *self.texts, *self.calls))


class _Mark(NamedTuple):
    """The walk's state after one item: how many messages, system texts, loaded tools, losses and
    hosted tools it had made, and the open step (its parts so far: the first ``n_*`` of its lists;
    they only grow until the step is flushed)."""

    messages: int
    system: int
    loaded: int
    losses: int
    server_tools: int
    step: _Step | None
    n_thinking: int
    n_texts: int
    n_calls: int


class Fold(NamedTuple):
    """What walking a request's items left, for a session's next request to resume after."""

    messages: tuple[Message, ...]
    system: tuple[str, ...]
    loaded: tuple[ToolSpec, ...]
    losses: tuple[Loss, ...]
    server_tools: tuple[ServerTool, ...]
    marks: tuple[_Mark, ...]  # after each item


class History:
    """Walks the items once; ``system`` and ``messages`` hold the result.

    A step's parts are thinking parts first, then text, then tool calls; a reasoning item that
    follows text or calls starts a new step (it always opens a new response). Leading
    developer/system messages go to ``system``; later ones stay in place as ``system`` messages
    (position matters to the model and to the upstream's prefix cache). Codex does not echo item
    ids, so everything is keyed by ``call_id``.
    """

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.system: list[str] = []  # the leading developer/system messages' texts
        self.messages: list[Message] = []
        self.loaded: list[ToolSpec] = []  # the tools the client's tool searches loaded, in order
        self._step: _Step | None = None
        self._marks: list[_Mark] = []

    def read(self, items: list[msgspec.Raw], stored: int = 0, start: int = 0) -> None:
        """The items in order; the first ``stored`` are a stored history (named so in errors),
        the rest the request's ``input``, whose first ``start`` were resumed."""
        marks, reader = self._marks, self.reader
        for i, raw in enumerate(items, start):
            self._item(raw, f"input.{i - stored}" if i >= stored else f"previous_response_id: stored item {i}")
            step = self._step
            marks.append(_Mark(len(self.messages), len(self.system), len(self.loaded), len(reader.losses),
                               len(reader.server_tools), step, *((len(step.thinking), len(step.texts),
                                                                  len(step.calls)) if step else (0, 0, 0))))
        self._flush()

    def fold(self) -> Fold:
        """What the walk left (after ``read``, before anything else records a loss)."""
        reader = self.reader
        return Fold(tuple(self.messages), tuple(self.system), tuple(self.loaded), tuple(reader.losses),
                    tuple(reader.server_tools), tuple(self._marks))

    def resume(self, fold: Fold, same: int) -> None:
        """Be as after the first ``same`` items of the request ``fold`` was made of (a fresh
        ``History``, its reader unused), so that ``read`` of the rest walks them as a whole walk."""
        mark = fold.marks[same - 1]
        self.messages = list(fold.messages[:mark.messages])
        self.system = list(fold.system[:mark.system])
        self.loaded = list(fold.loaded[:mark.loaded])
        self.reader.losses = list(fold.losses[:mark.losses])
        self.reader.server_tools = list(fold.server_tools[:mark.server_tools])
        self._marks = list(fold.marks[:same])
        step = mark.step
        if step is not None:
            # Open at the last item: the remembered request's last message is what it made.
            made = fold.messages[-1] if same == len(fold.marks) else None
            self._step = _Step(step.thinking[:mark.n_thinking], step.texts[:mark.n_texts],
                               step.calls[:mark.n_calls], made)

    def read_text(self, text: str) -> None:
        """``input`` given as a plain string: one user message."""
        self.messages.append(Message(role="user", parts=(TextPart(text),) if text else ()))

    def _item(self, raw: msgspec.Raw, path: str) -> None:
        head = decode_value(raw, ItemHead, path)
        kind = head.type if head.type is not None else ("message" if head.role is not None else None)
        if kind is None:
            raise RequestError(f"{path}.type: field required")
        if kind == "message":
            self._message(decode_value(raw, MessageItem, path), path)
        elif kind == "reasoning":
            step = self._step
            if step is not None and (step.texts or step.calls):
                self._flush()
            self._open().thinking.append(_thinking(decode_value(raw, ReasoningItem, path)))
        elif kind in _CALL_TYPES:
            self._open().calls.append(self._call(raw, kind, path))
        elif kind in _OUTPUT_TYPES:
            out = decode_value(raw, ToolOutputItem, path)
            self._result(out.call_id, self._parts(out.output, f"{path}.output", images=True, where=" of a tool output"))
        elif kind == "tool_search_call":
            call = decode_value(raw, ToolSearchCallItem, path)
            if self._client_run(call.execution, kind, path):
                self._open().calls.append(ToolCallPart(id=_call_id(call.call_id, path), name=TOOL_SEARCH,
                                                       arguments=_search_arguments(call.arguments)))
        elif kind == "tool_search_output":
            search = decode_value(raw, ToolSearchOutputItem, path)
            if self._client_run(search.execution, kind, path):
                specs, _ = decode_tools(search.tools, self.reader, f"{path}.tools")
                self.loaded.extend(specs)
                self._result(_call_id(search.call_id, path), (TextPart(_loaded_text(specs, search.status)),))
        elif kind == "web_search_call":
            self._web_search(decode_value(raw, WebSearchCallItem, path), path)
        elif kind == "local_shell_call_output":
            shell = decode_value(raw, LocalShellOutputItem, path)
            call_id = shell.call_id or shell.id
            if not call_id:
                raise RequestError(f"{path}.call_id: field required")
            self._result(call_id, (TextPart(shell.output),) if shell.output else ())
        else:
            # image_generation_call, compaction, item_reference,
            # mcp_*, computer_call*, ... : produced or resolved by OpenAI's servers only.
            self.reader.lose("input_item", f"{path}: {kind} item dropped")

    def _web_search(self, item: WebSearchCallItem, path: str) -> None:
        """A search the gateway ran, sent back with its id (``ws_`` + the call's id; Codex 0.169 and
        the SDKs keep it): the call and a result from the sources' URLs, or, when the client kept
        none (Codex), a result saying so (either way a loss). Without the id nothing ties it to its
        turn: dropped with a loss."""
        action = item.action or {}
        query = action.get("query")
        if not (item.id or "").startswith("ws_") or action.get("type") != "search" or not isinstance(query, str):
            self.reader.lose("input_item", f"{path}: web_search_call item dropped")
            return
        call_id = (item.id or "").removeprefix("ws_")
        self._open().calls.append(ToolCallPart(id=call_id, name="web_search",
                                               arguments=_ENCODER.encode({"query": query}).decode()))
        self._flush()
        if item.status == "failed":
            result = ToolResultPart(call_id=call_id, content=(TextPart(search_error_text("unavailable")),),
                                    is_error=True)
        elif isinstance(sources := action.get("sources"), list):
            hits = [SearchHit(url=s["url"]) for s in sources if isinstance(s, dict) and isinstance(s.get("url"), str)]
            self.reader.lose("web_search_result", f"{path}: only the results' URLs were kept by the client")
            result = ToolResultPart(call_id=call_id, content=(TextPart(search_text(query, hits)),))
        else:  # Codex keeps the query, not the sources
            self.reader.lose("web_search_result", f"{path}: the results were not kept by the client")
            result = ToolResultPart(call_id=call_id, content=(TextPart(search_gone_text(query)),))
        self.messages.append(Message(role="tool", parts=(result,)))

    def _client_run(self, execution: str | None, kind: str, path: str) -> bool:
        """A tool search item the client ran (else the server did: a loss)."""
        if execution == "client":
            return True
        self.reader.lose("input_item", f"{path}: {kind} item of a server-run search dropped")
        return False

    def _open(self) -> _Step:
        """The open step, to add a part to (so it no longer is a remembered message)."""
        step = self._step
        if step is None:
            step = self._step = _Step()
        else:
            step.made = None
        return step

    def _flush(self) -> None:
        if self._step is not None:
            self.messages.append(self._step.message())
            self._step = None

    def _message(self, item: MessageItem, path: str) -> None:
        role = item.role
        if role not in _ROLES:
            raise RequestError(f"{path}.role: expected one of {', '.join(_ROLES)}, got {role!r}")
        if item.phase is not None:
            self.reader.lose("phase", f"{path}: phase {item.phase!r} not carried")
        cpath = f"{path}.content"
        if role == "assistant":
            self._open().texts.extend(self._parts(item.content, cpath, images=False))
            return
        self._flush()
        parts = self._parts(item.content, cpath, images=role == "user")
        if role == "user":
            self.messages.append(Message(role="user", parts=parts))
        elif not self.messages:
            self.system.extend(p.text for p in parts if isinstance(p, TextPart))
        else:
            self.messages.append(Message(role="system", parts=parts))

    def _parts(self, content: str | list[ContentPartParam], path: str, *, images: bool,
               where: str = "") -> tuple[TextPart | ImagePart, ...]:
        """Message content or a tool output (``where`` names it in loss entries)."""
        if isinstance(content, str):
            return (TextPart(content),) if content else ()
        parts: list[TextPart | ImagePart] = []
        for j, part in enumerate(content):
            ppath = f"{path}.{j}"
            kind = part.type
            if kind in _TEXT_TYPES:
                if part.text is None:
                    raise RequestError(f"{ppath}.text: field required")
                if part.text:
                    parts.append(TextPart(part.text))
            elif kind == "refusal":
                if part.refusal is None:
                    raise RequestError(f"{ppath}.refusal: field required")
                parts.append(TextPart(part.refusal))
            elif kind == "input_image" and images:
                image = self._image(part, ppath)
                if image is not None:
                    parts.append(image)
            else:
                self.reader.lose("content_part", f"{ppath}: {kind} part{where} dropped")
        return tuple(parts)

    def _image(self, part: ContentPartParam, path: str) -> ImagePart | None:
        if part.image_url:
            return ImagePart(url=part.image_url, detail=part.detail)
        if part.file_id:
            self.reader.lose("image", f"{path}: image by file_id {part.file_id!r} dropped (no file store)")
            return None
        raise RequestError(f"{path}.image_url: field required")

    def _call(self, raw: msgspec.Raw, kind: str, path: str) -> ToolCallPart:
        if kind == "function_call":
            fn = decode_value(raw, FunctionCallItem, path)
            return ToolCallPart(id=fn.call_id, name=flat_name(fn.namespace, fn.name), arguments=fn.arguments)
        if kind == "custom_tool_call":
            custom = decode_value(raw, CustomToolCallItem, path)
            args = _ENCODER.encode({"input": custom.input}).decode()
            return ToolCallPart(
                id=custom.call_id, name=flat_name(custom.namespace, custom.name), arguments=args, origin="custom"
            )
        shell = decode_value(raw, LocalShellCallItem, path)
        action = shell.action
        args_obj: dict[str, object] = {"command": action.command}
        if action.working_directory is not None:
            args_obj["workdir"] = action.working_directory
        if action.timeout_ms is not None:
            args_obj["timeout_ms"] = action.timeout_ms
        if action.env or action.user:
            self.reader.lose("local_shell_action", f"{path}.action: env/user not carried")
        args = _ENCODER.encode(args_obj).decode()
        return ToolCallPart(id=shell.call_id, name=LOCAL_SHELL, arguments=args, origin="local_shell")

    def _result(self, call_id: str, content: tuple[TextPart | ImagePart, ...]) -> None:
        self._flush()
        part = ToolResultPart(call_id=call_id, content=content)
        self.messages.append(Message(role="tool", parts=(part,)))


def _call_id(call_id: str | None, path: str) -> str:
    if not call_id:
        raise RequestError(f"{path}.call_id: field required")
    return call_id


def _search_arguments(arguments: object) -> str:
    """A tool_search_call's arguments (a JSON value) as the JSON text of a function call."""
    if isinstance(arguments, str):
        return arguments
    return _ENCODER.encode({} if arguments is None else arguments).decode()


def _loaded_text(specs: list[ToolSpec] | tuple[ToolSpec, ...], status: str | None) -> str:
    """What the model reads as the search's result: the tools it made callable, by the names
    they are offered under (their definitions are in the request's tools)."""
    if not specs:
        return f"tool_search ({status or 'completed'}): no tools found"
    return f"tool_search ({status or 'completed'}): these tools are now callable: " + ", ".join(s.name for s in specs)


def _thinking(item: ReasoningItem) -> ThinkingPart:
    """Raw ``reasoning_text`` content if present, else the summary texts; the opaque
    ``encrypted_content`` (our envelope, or a foreign blob) rides as the signature."""
    texts = [p.text for p in item.content or () if p.type == "reasoning_text" and p.text]
    if not texts:
        texts = [s.text for s in item.summary or () if s.text]
    return ThinkingPart(text="\n\n".join(texts), signature=item.encrypted_content)


__all__ = ["Fold", "History"]
