"""Codex ``apply_patch`` calls: grammar check, and repair of the wrappers models put around patches
(JSON inside ``input``, a ``patch`` key, a bare string, markdown fences, shell heredocs, CRLF, a
missing ``*** End Patch``). Decision: a patch still invalid after repair passes through unchanged
(only reshaped to ``{"input": ...}`` when it was not an object) with an ``apply_patch_invalid``
loss; Codex's own apply_patch then reports the parse error to the model, which retries.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from pipeline.model import ToolSpec

BEGIN = "*** Begin Patch"
END = "*** End Patch"
_ADD, _DELETE, _UPDATE, _MOVE = "*** Add File: ", "*** Delete File: ", "*** Update File: ", "*** Move to: "
_EOF = "*** End of File"
_ENCODER = msgspec.json.Encoder()
_FENCE = re.compile(r"\A\s*```[\w+.-]*[ \t]*\n(.*?)\n?[ \t]*```\s*\Z", re.DOTALL)
_HEREDOC = re.compile(
    r"(?:apply_patch|applypatch)\s*<<-?\s*(['\"]?)([A-Za-z_]\w*)\1"
    r"|cat\s*<<-?\s*(['\"]?)([A-Za-z_]\w*)\3\s*\|\s*(?:apply_patch|applypatch)"
)
_MAX_UNWRAP = 3


class PatchFix(msgspec.Struct, frozen=True, kw_only=True):
    """What to emit for one apply_patch call.

    ``arguments``: the JSON arguments to send on; ``changed``: whether they differ from the input;
    ``repairs``: what was repaired; ``error``: why the patch is still invalid (``None`` when valid).
    """

    arguments: str
    changed: bool = False
    repairs: tuple[str, ...] = ()
    error: str | None = None


def is_apply_patch(spec: ToolSpec) -> bool:
    """A tool whose calls carry an apply_patch patch in ``input``."""
    if "apply_patch" in (spec.name, spec.client_name):
        return True
    grammar = spec.grammar or ""
    return spec.kind == "custom" and ("begin_patch" in grammar or BEGIN in grammar)


def fix_arguments(raw: str, value: Any) -> PatchFix:
    """Repair the decoded arguments ``value`` (the JSON text ``raw``) of an apply_patch call."""
    repairs: list[str] = []
    text = _patch_text(value, repairs)
    if text is None:
        return PatchFix(arguments=raw, error="arguments carry no patch text (expected {\"input\": \"...\"})")
    original = text
    text = _unwrap_json(text, repairs)
    text = _normalise(text, repairs)
    error = check_patch(text)
    if error is None:
        if not repairs:
            return PatchFix(arguments=raw)
        return PatchFix(arguments=_encode(text), changed=True, repairs=tuple(repairs))
    if isinstance(value, dict) and isinstance(value.get("input"), str):
        return PatchFix(arguments=raw, error=error)
    return PatchFix(arguments=_encode(original), changed=True, error=error)


def check_patch(text: str) -> str | None:
    """``None`` when ``text`` follows the apply_patch grammar, else the first problem found."""
    lines = text.split("\n")
    while lines and lines[-1].strip() == "":
        lines.pop()
    if not lines or lines[0].strip() != BEGIN:
        return f"the patch must start with {BEGIN!r}"
    if len(lines) < 2 or lines[-1].strip() != END:
        return f"the patch must end with {END!r}"
    body = lines[1:-1]
    if not body:
        return "the patch has no file operation"
    i = 0
    while i < len(body):
        line, at = body[i], i + 2  # 1-based line number in the patch
        if line.startswith(_ADD) and line[len(_ADD):].strip():
            i += 1
            while i < len(body) and body[i].startswith("+"):
                i += 1
            if i < len(body) and not body[i].startswith("*** "):
                return f"line {i + 2}: lines of an added file start with '+', got {body[i][:80]!r}"
        elif line.startswith(_DELETE) and line[len(_DELETE):].strip():
            i += 1
        elif line.startswith(_UPDATE) and line[len(_UPDATE):].strip():
            i, error = _update(body, i + 1, line[len(_UPDATE):].strip())
            if error:
                return error
        else:
            return (f"line {at}: expected '*** Add File: ', '*** Delete File: ' or '*** Update File: ', "
                    f"got {line[:80]!r}")
    return None


def _update(body: list[str], i: int, path: str) -> tuple[int, str | None]:
    moved = False
    if i < len(body) and body[i].startswith(_MOVE):
        if not body[i][len(_MOVE):].strip():
            return i, f"line {i + 2}: '*** Move to: ' needs a path"
        moved, i = True, i + 1
    changes = 0
    while i < len(body):
        line = body[i]
        if line == "@@" or line.startswith("@@ ") or line == _EOF:
            pass
        elif line == "" or line[0] in " +-":
            changes += 1
        elif line.startswith("*** "):
            break
        else:
            return i, f"line {i + 2}: hunk lines start with ' ', '+', '-' or '@@', got {line[:80]!r}"
        i += 1
    if not changes and not moved:
        return i, f"update of {path} has no hunk lines"
    return i, None


def _patch_text(value: Any, repairs: list[str]) -> str | None:
    if isinstance(value, str):
        repairs.append("bare JSON string wrapped as {\"input\": ...}")
        return value
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("input"), str):
        if len(value) > 1:
            repairs.append("extra argument keys dropped")
        return value["input"]
    if isinstance(value.get("patch"), str):
        repairs.append("\"patch\" key renamed to \"input\"")
        return value["patch"]
    return None


def _unwrap_json(text: str, repairs: list[str]) -> str:
    """The input itself being JSON: ``{"input": "..."}``, ``{"patch": "..."}`` or a quoted string."""
    for _ in range(_MAX_UNWRAP):
        stripped = text.strip()
        if not stripped.startswith(("{", '"')):
            break
        try:
            inner: Any = msgspec.json.decode(stripped)
        except msgspec.DecodeError:
            break
        if isinstance(inner, dict):
            found = inner.get("input", inner.get("patch"))
            if not isinstance(found, str):
                break
            inner = found
        if not isinstance(inner, str):
            break
        repairs.append("JSON-encoded patch inside input unwrapped")
        text = inner
    return text


def _normalise(text: str, repairs: list[str]) -> str:
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
        repairs.append("CRLF line endings")
    for _ in range(_MAX_UNWRAP):
        fence = _FENCE.match(text)
        if fence:
            text = fence.group(1)
            repairs.append("markdown code fence removed")
            continue
        unwrapped = _heredoc(text)
        if unwrapped is not None:
            text = unwrapped
            repairs.append("shell heredoc removed")
            continue
        break
    if not text.startswith(BEGIN) and text.lstrip().startswith(BEGIN):
        text = text.lstrip()
        repairs.append("leading whitespace removed")
    lines = text.rstrip().split("\n")
    if lines[0].strip() == BEGIN and lines[-1].strip() != END:
        text = text + ("" if text.endswith("\n") else "\n") + END
        repairs.append(f"missing {END!r} added")
    return text


def _heredoc(text: str) -> str | None:
    lines = text.strip().split("\n")
    head = _HEREDOC.fullmatch(lines[0].strip())
    if head is None:
        return None
    tag = head.group(2) or head.group(4)
    body = lines[1:]
    if body and body[-1].strip() == tag:
        body = body[:-1]
    return "\n".join(body)


def _encode(text: str) -> str:
    return _ENCODER.encode({"input": text}).decode()


__all__ = ["BEGIN", "END", "PatchFix", "check_patch", "fix_arguments", "is_apply_patch"]
