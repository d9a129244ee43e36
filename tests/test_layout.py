"""The test tree's own rule: helpers live in helper modules (``*_helpers.py``, ``serving.py`` …),
never imported from another test module, so running or deleting one test file never changes
another's."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imports_of_test_modules(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                 else [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
        found += [name for name in names if name.rpartition(".")[2].startswith("test_")]
    return found


def test_no_test_module_imports_another() -> None:
    offenders = {str(path.relative_to(TESTS)): names for path in sorted(TESTS.rglob("*.py"))
                 if (names := imports_of_test_modules(path))}
    assert offenders == {}


def test_the_check_sees_such_an_import(tmp_path: Path) -> None:
    module = tmp_path / "test_x.py"
    module.write_text("from tests.test_runner import run\nimport tests.resilience.test_load\nfrom tests import helpers\n")
    assert imports_of_test_modules(module) == ["tests.test_runner", "tests.resilience.test_load"]
