"""The client version matrix's list, results and README table.

``tests/clients/matrix.json`` lists the versions; ``.ci/clients-matrix`` installs each into
``$GW_CLIENTS_MATRIX/<client>-<version>``; ``tests/clients/test_matrix.py`` runs each against each
upstream and writes one result file per run into ``results_dir()`` (``$GW_MATRIX_RESULTS``,
default ``build/client-matrix``). This module renders those results as the README table between
``BEGIN`` and ``END``, so the table is never written by hand:

    python -m tests.clients.matrix_table --write    # rewrite README.md's table from the results
    python -m tests.clients.matrix_table --check    # exit 1 if README.md's table is not what they say

A case without a result file is rendered "not measured" (and fails ``--check``).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MATRIX = ROOT / "tests" / "clients" / "matrix.json"
README = ROOT / "README.md"
BEGIN = "<!-- client-matrix:begin (python -m tests.clients.matrix_table --write; do not edit) -->"
END = "<!-- client-matrix:end -->"
CLIENT_NAMES = {"claude": "Claude Code", "codex": "Codex"}
UPSTREAMS = {"chat": "openai_chat", "anthropic": "anthropic_messages", "responses": "openai_responses"}
REGENERATE = ("GW_CLIENTS_MATRIX=~/.cache/gw-clients-matrix .venv/bin/python -m pytest -m clients -q "
              "tests/clients/test_matrix.py && .venv/bin/python -m tests.clients.matrix_table --write")


def matrix() -> dict[str, list[dict[str, Any]]]:
    data = json.loads(MATRIX.read_text())
    return {client: data[client] for client in CLIENT_NAMES}


def cases() -> list[tuple[str, str, str]]:
    """(client, version, upstream) of every run the matrix asks for."""
    return [(client, entry["version"], upstream) for client, entries in matrix().items()
            for entry in entries for upstream in UPSTREAMS]


def results_dir() -> Path:
    return Path(os.environ.get("GW_MATRIX_RESULTS") or ROOT / "build" / "client-matrix")


def result_path(directory: Path, client: str, version: str, upstream: str) -> Path:
    return directory / f"{client}-{version}-{upstream}.json"


def write_result(directory: Path, result: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = result_path(directory, result["client"], result["version"], result["upstream"])
    path.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")


def load_results(directory: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    found = {}
    for case in cases():
        path = result_path(directory, *case)
        if path.is_file():
            found[case] = json.loads(path.read_text())
    return found


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _result_cell(result: dict[str, Any] | None) -> str:
    if result is None:
        return "not measured"
    if result.get("cannot_run"):
        return f"cannot run here: {result['cannot_run']}"
    if not result["passed"]:
        return f"**FAIL**: {result.get('error') or 'see the test'}"
    return f"pass: {result['detail']}"


def _merged(results: list[dict[str, Any] | None], key: str) -> list[str]:
    """One list of ``key`` over a version's runs, in first-seen order (the same on each upstream
    when the client sends the same, as it should; anything upstream-specific still shows)."""
    merged: list[str] = []
    for result in results:
        for item in (result or {}).get(key, []):
            if item not in merged:
                merged.append(item)
    return merged


def render(results: dict[tuple[str, str, str], dict[str, Any]]) -> str:
    head = ["client", "version", "in the matrix for",
            *(f"via `{name}`" for name in UPSTREAMS.values()), "what it sends", "what it needed from the gateway"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for client, entries in matrix().items():
        for entry in entries:
            runs = [results.get((client, entry["version"], upstream)) for upstream in UPSTREAMS]
            row = [CLIENT_NAMES[client], entry["version"], entry["why"], *(_result_cell(r) for r in runs),
                   "; ".join(_merged(runs, "sends")) or "-", "; ".join(_merged(runs, "needs")) or "-"]
            lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def readme_table(text: str) -> str:
    """README's table between the markers (ValueError without them)."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[start:end].strip("\n") + "\n"


def with_table(text: str, table: str) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + table + text[end:]


def check(readme: str, results: dict[tuple[str, str, str], dict[str, Any]]) -> list[str]:
    """What is wrong with README's table against these results (nothing: it says what they say)."""
    faults = [f"{client} {version} via {UPSTREAMS[upstream]}: not measured"
              for client, version, upstream in cases() if (client, version, upstream) not in results]
    want, have = render(results), readme_table(readme)
    if want != have:
        faults.append("README.md's client version matrix is not what the tests measured:\n"
                      + "".join(difflib.unified_diff(have.splitlines(True), want.splitlines(True),
                                                     "README.md", "measured")))
    return faults


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.clients.matrix_table", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite README.md's table from the results")
    mode.add_argument("--check", action="store_true", help="exit 1 unless README.md's table is what they say")
    args = parser.parse_args(argv)
    results = load_results(results_dir())
    readme = README.read_text()
    if args.write:
        README.write_text(with_table(readme, render(results)))
        print(f"README.md: client version matrix from {len(results)} of {len(cases())} runs in {results_dir()}")
        return 0
    faults = check(readme, results)
    for fault in faults:
        print(fault, file=sys.stderr)
    if faults:
        print(f"measure and regenerate: {REGENERATE}", file=sys.stderr)
        return 1
    print(f"README.md's client version matrix matches the {len(results)} measured runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
