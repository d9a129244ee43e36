"""tool_ids.apply_patch: the grammar check and each wrapper repair."""

from __future__ import annotations

import json

import msgspec
import pytest

from pipeline.model import ToolSpec
from stages.tool_ids.apply_patch import check_patch, fix_arguments, is_apply_patch
from tests.captures import load_capture as capture

PATCH = "*** Begin Patch\n*** Add File: notes.txt\n+written by tool\n*** End Patch"
UPDATE = ("*** Begin Patch\n*** Update File: src/app.py\n*** Move to: src/main.py\n@@ def main():\n"
          " print('a')\n-print('b')\n+print('c')\n\n*** End of File\n*** Delete File: old.txt\n*** End Patch\n")


def fix(args: str):
    return fix_arguments(args, msgspec.json.decode(args))


def encoded(patch: str) -> str:
    return json.dumps({"input": patch}, ensure_ascii=False, separators=(",", ":"))


def test_codex_grammar_is_recognised() -> None:
    """Codex's freeform apply_patch tool (from the capture) is detected by its grammar."""
    raw = next(t for t in capture("codex-write-file-1.json")["body"]["tools"] if t.get("type") == "custom")
    spec = ToolSpec(name="renamed", kind="custom", grammar=raw["format"]["definition"])
    assert is_apply_patch(spec)
    assert is_apply_patch(ToolSpec(name="apply_patch"))
    assert is_apply_patch(ToolSpec(name="ns__apply_patch", namespace="ns", client_name="apply_patch"))
    assert not is_apply_patch(ToolSpec(name="Write"))
    assert not is_apply_patch(ToolSpec(name="x", kind="custom", grammar="start: /.+/"))


def test_codex_own_patch_is_valid_and_untouched() -> None:
    """The patch Codex itself produced (capture) passes the check; args come back byte-identical."""
    patch = capture("codex-write-file-1.json")["response"][1]["input"]
    assert check_patch(patch) is None
    args = json.dumps({"input": patch})
    assert fix(args) == msgspec.structs.replace(fix(args), arguments=args, changed=False, repairs=(), error=None)


def test_update_move_delete_and_eof_are_valid() -> None:
    """Update with Move to, @@ headers, blank context lines, End of File, and Delete."""
    assert check_patch(UPDATE) is None


@pytest.mark.parametrize(("patch", "problem"), [
    ("*** Add File: a\n+x\n*** End Patch", "must start with"),
    ("*** Begin Patch\n*** Add File: a\n+x", "must end with"),
    ("*** Begin Patch\n*** End Patch", "no file operation"),
    ("*** Begin Patch\n*** Add File: a\nx\n*** End Patch", "line 3: lines of an added file start with '+'"),
    ("*** Begin Patch\n*** Update File: a\n*** End Patch", "update of a has no hunk lines"),
    ("*** Begin Patch\n*** Update File: a\n@@\n~weird\n*** End Patch", "line 4: hunk lines start with"),
    ("*** Begin Patch\n*** Frobnicate File: a\n*** End Patch", "line 2: expected"),
    ("*** Begin Patch\n*** Add File: \n+x\n*** End Patch", "line 2: expected"),
])
def test_structural_errors_are_named(patch: str, problem: str) -> None:
    """Each grammar violation is reported with what and where."""
    error = check_patch(patch)
    assert error is not None and problem in error


@pytest.mark.parametrize(("args", "repair"), [
    (encoded(encoded(PATCH)), "JSON-encoded patch inside input unwrapped"),
    (encoded(json.dumps({"patch": PATCH})), "JSON-encoded patch inside input unwrapped"),
    (json.dumps({"patch": PATCH}), "\"patch\" key renamed to \"input\""),
    (encoded(f"```diff\n{PATCH}\n```"), "markdown code fence removed"),
    (encoded(f"```\n{PATCH}\n```\n"), "markdown code fence removed"),
    (encoded(f"apply_patch <<'EOF'\n{PATCH}\nEOF"), "shell heredoc removed"),
    (encoded(f"apply_patch <<\"PATCH\"\n{PATCH}\nPATCH\n"), "shell heredoc removed"),
    (encoded(f"cat <<EOF | apply_patch\n{PATCH}\nEOF"), "shell heredoc removed"),
    (encoded(PATCH.removesuffix("\n*** End Patch")), "missing '*** End Patch' added"),
    (encoded(PATCH.replace("\n", "\r\n")), "CRLF line endings"),
    (json.dumps(PATCH), "bare JSON string wrapped as {\"input\": ...}"),
    (encoded("\n\n" + PATCH), "leading whitespace removed"),
])
def test_each_wrapper_is_repaired(args: str, repair: str) -> None:
    """Every known wrapper comes off; the result is {"input": <the clean patch>}."""
    result = fix(args)
    assert result.error is None and result.changed
    assert repair in result.repairs
    assert msgspec.json.decode(result.arguments) == {"input": PATCH}


def test_wrappers_combine() -> None:
    """A fenced heredoc with CRLF inside a JSON string inside input, missing its end marker."""
    inner = f"```bash\r\napply_patch <<'EOF'\r\n{PATCH.removesuffix(chr(10) + '*** End Patch')}\r\nEOF\r\n```"
    result = fix(encoded(json.dumps({"input": inner})))
    assert result.error is None
    assert msgspec.json.decode(result.arguments) == {"input": PATCH}
    assert len(result.repairs) >= 4


def test_invalid_patch_passes_unchanged_with_the_reason() -> None:
    """Still invalid after repair: the model's arguments go on as they were, with an error."""
    args = encoded("*** Begin Patch\n*** Update File: a.py\nthis is prose, not a hunk\n*** End Patch")
    result = fix(args)
    assert result.arguments == args and not result.changed
    assert result.error is not None and "line 3" in result.error


def test_invalid_bare_string_is_only_reshaped() -> None:
    """A bare JSON string that is no patch is sent as {"input": <the same text>} so clients can carry it."""
    result = fix(json.dumps("please edit the file"))
    assert result.error is not None and result.changed
    assert msgspec.json.decode(result.arguments) == {"input": "please edit the file"}


def test_no_patch_text_at_all() -> None:
    """Arguments without any string to treat as a patch are reported, unchanged."""
    result = fix('{"path": "a.txt"}')
    assert result.arguments == '{"path": "a.txt"}' and result.error and "no patch text" in result.error
