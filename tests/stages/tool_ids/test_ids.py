"""tool_ids.ids: the pure client → upstream id mapping, the client rule, fresh ids."""

from __future__ import annotations

import re

import pytest

from stages.tool_ids.ids import CLIENT_ID_PATTERN, fits, fresh_id, upstream_id, valid_for_client
from pipeline.profiles import PROFILES

DEFAULT = PROFILES["deepseek"].tool_id_pattern


def test_valid_ids_are_kept_verbatim() -> None:
    """An id the upstream accepts is sent as it is."""
    assert upstream_id("toolu_01A09q90qw90lq917835lq9", DEFAULT) == "toolu_01A09q90qw90lq917835lq9"
    assert upstream_id("call_7f2a", DEFAULT) == "call_7f2a"


@pytest.mark.parametrize("client_id", ["call.1", "fc:abc/def", "ünï", "x" * 65, "", "call_1\n"])
def test_invalid_ids_map_to_a_fitting_deterministic_form(client_id: str) -> None:
    """Rejected ids become call_<hex>, the same on every call (stateless), different per id."""
    mapped = upstream_id(client_id, DEFAULT)
    assert mapped is not None and re.fullmatch(r"call_[0-9a-f]{24}", mapped)
    assert upstream_id(client_id, DEFAULT) == mapped
    assert upstream_id(client_id + "z", DEFAULT) != mapped


def test_short_fixed_length_pattern_gets_a_bare_form() -> None:
    """A pattern like Mistral's (exactly 9 alphanumerics) gets the first form that fits."""
    pattern = r"^[a-zA-Z0-9]{9}$"
    mapped = upstream_id("call_abcdefghijklmnop", pattern)
    assert mapped is not None and len(mapped) == 9 and fits(mapped, pattern)


def test_no_fitting_form_is_none() -> None:
    """When nothing fits the caller is told (it keeps the id and records a loss)."""
    assert upstream_id("bad id", r"^only-this$") is None


def test_trailing_newline_does_not_fit() -> None:
    """``$`` must not accept a trailing newline: the whole id is checked."""
    assert not fits("call_1\n", DEFAULT)
    assert not valid_for_client("call_1\n")


def test_client_rule_and_fresh_ids() -> None:
    """Fresh ids are call_ + 24 alphanumerics, valid for every client, and unique."""
    ids = {fresh_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"call_[A-Za-z0-9]{24}", i) and valid_for_client(i) for i in ids)
    assert CLIENT_ID_PATTERN == r"^[a-zA-Z0-9_-]+$"
    assert not valid_for_client("") and not valid_for_client(None) and not valid_for_client("a.b")
