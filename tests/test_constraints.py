"""constraints.txt pins the whole install: every package that ``deepseek-gateway[test]`` pulls in
(transitive included) is pinned there, at the version installed here. Fails when a dependency
was added to pyproject.toml without regenerating the lock (``.ci/lock``), or when this venv was
installed without ``-c constraints.txt`` and so tests other versions than a fresh machine would."""

from __future__ import annotations

import re
from importlib import metadata

from packaging.requirements import Requirement

from tests.conftest import ROOT


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(name: str, extras: frozenset[str]) -> dict[str, str]:
    """{canonical name: installed version} of ``name`` with ``extras`` and all it requires."""
    seen: dict[str, str] = {}
    todo = [(name, extras)]
    while todo:
        dist_name, wanted = todo.pop()
        dist = metadata.distribution(dist_name)
        seen[canonical(dist_name)] = dist.version
        for line in dist.requires or ():
            req = Requirement(line)
            if req.marker and not any(req.marker.evaluate({"extra": e}) for e in wanted | {""}):
                continue
            if canonical(req.name) not in seen:
                todo.append((req.name, frozenset(req.extras)))
    return seen


def pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            out[canonical(name)] = version.strip()
    return out


def test_every_installed_dependency_is_pinned_at_its_version() -> None:
    installed = closure("deepseek-gateway", frozenset({"test"}))
    installed.pop("deepseek-gateway")
    pinned = pins()
    assert len(installed) > 30  # the runtime and the test extra, transitive included
    assert {n: v for n, v in installed.items() if pinned.get(n) != v} == {}, "run .ci/lock, or install with -c"
