"""The client version matrix's README table (default suite, no client needed): it lists exactly
tests/clients/matrix.json's versions, every one measured and passing, and the checker that
``.ci/run`` runs after the matrix (``python -m tests.clients.matrix_table --check``) catches a
table that is not what the results say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.clients.matrix_table import (
    README, ROOT, UPSTREAMS, cases, check, matrix, readme_table, render, with_table, write_result,
)


def _rows(table: str) -> list[list[str]]:
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in table.splitlines()[2:]]


def _results(passed: bool = True) -> dict[tuple[str, str, str], dict]:
    return {case: {"client": case[0], "version": case[1], "upstream": case[2], "passed": passed,
                   "detail": "3+2 requests", "error": "boom", "sends": [f"{case[0]} shape"], "needs": ["a fix"]}
            for case in cases()}


def test_readme_table_lists_exactly_the_matrix_every_run_passing() -> None:
    rows = _rows(readme_table(README.read_text()))
    names = {"claude": "Claude Code", "codex": "Codex"}
    assert [(row[0], row[1]) for row in rows] == [
        (names[client], entry["version"]) for client, entries in matrix().items() for entry in entries]
    results = [cell for row in rows for cell in row[3:3 + len(UPSTREAMS)]]
    assert results and all(cell.startswith("pass: ") for cell in results), results


def test_matrix_has_the_latest_and_the_pinned_versions() -> None:
    entries = matrix()
    assert all(sum(bool(e.get("latest")) for e in entries[client]) == 1 for client in entries)
    ci = (ROOT / ".ci" / "run").read_text()
    pinned = re.findall(r"@anthropic-ai/claude-code@([\d.]+)|@openai/codex@([\d.]+)", ci)
    claude_pin = next(a for a, _ in pinned if a)
    codex_pin = next(b for _, b in pinned if b)
    assert claude_pin in {e["version"] for e in entries["claude"]}
    assert codex_pin in {e["version"] for e in entries["codex"]}


def test_check_accepts_the_rendered_table_and_catches_any_other() -> None:
    results = _results()
    readme = with_table(README.read_text(), render(results))
    assert check(readme, results) == []
    edited = readme.replace("pass: 3+2 requests", "pass: 3+2 requests, trust me", 1)
    (fault,) = check(edited, results)
    assert "not what the tests measured" in fault and "trust me" in fault
    failed = _results(passed=False)
    (fault,) = check(readme, failed)
    assert "**FAIL**: boom" in fault
    missing = dict(results)
    del missing[cases()[0]]
    faults = check(with_table(readme, render(missing)), missing)
    assert faults == [f"{cases()[0][0]} {cases()[0][1]} via {UPSTREAMS[cases()[0][2]]}: not measured"]
    assert "not measured" in render(missing)


def test_the_command_line_checks_the_results_folder(tmp_path: Path) -> None:
    """``--check`` reads the result files the tests wrote; a missing one fails it, with the command
    that regenerates the table."""
    for result in _results().values():
        write_result(tmp_path, result)
    command = [sys.executable, "-m", "tests.clients.matrix_table", "--check"]
    run = subprocess.run(command, cwd=ROOT, env={"GW_MATRIX_RESULTS": str(tmp_path), "PATH": ""},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "not what the tests measured" in run.stderr  # README holds real results
    assert "tests/clients/test_matrix.py" in run.stderr
    (tmp_path / f"{cases()[0][0]}-{cases()[0][1]}-{cases()[0][2]}.json").unlink()
    run = subprocess.run(command, cwd=ROOT, env={"GW_MATRIX_RESULTS": str(tmp_path), "PATH": ""},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "not measured" in run.stderr
