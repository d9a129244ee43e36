"""tool_ids.names: reversible, deterministic, collision-free tool name mapping."""

from __future__ import annotations

import re

from stages.tool_ids.names import map_names, sanitise, short_hash
from pipeline.profiles import PROFILES

PATTERN = PROFILES["deepseek"].tool_name_pattern
LONG_MCP = "mcp__github__create_pull_request_review_comment_with_suggestions_and_more"


def test_valid_names_are_untouched() -> None:
    """Names the upstream accepts do not appear in the map."""
    names = map_names(["Bash", "exec_command", "mcp__fs__read-file"], PATTERN)
    assert names.forward == {} and names.reverse == {} and names.up("Bash") == "Bash"


def test_long_mcp_name_gets_prefix_and_hash() -> None:
    """Over 64 chars: a 55-char prefix + _ + 8 hex digits of the original, reversible."""
    assert len(LONG_MCP) > 64
    names = map_names([LONG_MCP, "Bash"], PATTERN)
    mapped = names.up(LONG_MCP)
    assert mapped == f"{LONG_MCP[:55]}_{short_hash(LONG_MCP)}" and len(mapped) == 64
    assert re.fullmatch(PATTERN, mapped) and names.down(mapped) == LONG_MCP


def test_bad_characters_are_sanitised() -> None:
    """Dots, slashes, spaces and unicode become ASCII the upstream accepts."""
    names = map_names(["files.read", "a/b c", "café_tool", "工具"], PATTERN)
    assert names.up("files.read") == "files_read"
    assert names.up("a/b c") == "a_b_c"
    assert names.up("café_tool") == "cafe_tool"
    assert re.fullmatch(PATTERN, names.up("工具"))
    assert {names.down(names.up(n)) for n in ["files.read", "a/b c", "café_tool", "工具"]} == {
        "files.read", "a/b c", "café_tool", "工具"}


def test_collisions_are_resolved_uniquely() -> None:
    """Two originals that sanitise alike, or a sanitised form equal to a valid name, stay distinct."""
    names = map_names(["a.b", "a b", "a_b"], PATTERN)
    ups = {names.up("a.b"), names.up("a b"), names.up("a_b")}
    assert len(ups) == 3 and names.up("a_b") == "a_b"
    assert all(re.fullmatch(PATTERN, u) for u in ups)
    assert names.down(names.up("a.b")) == "a.b" and names.down(names.up("a b")) == "a b"


def test_mapping_is_deterministic_and_order_independent() -> None:
    """The same set of names maps the same way, whatever the order (next turn agrees)."""
    one = map_names(["x.y", LONG_MCP, "x y", "ok"], PATTERN)
    two = map_names(["ok", "x y", LONG_MCP, "x.y", "x.y"], PATTERN)
    assert one == two


def test_unmappable_names_are_reported() -> None:
    """A pattern no candidate can meet leaves the name as it is, listed as unmappable."""
    names = map_names(["weird.name"], r"^fixed$")
    assert names.unmappable == ("weird.name",) and names.up("weird.name") == "weird.name"


def test_sanitise_never_returns_empty() -> None:
    """A name of only combining marks still yields something."""
    assert sanitise("\u0301") == "tool"
    assert sanitise("") == "tool"
