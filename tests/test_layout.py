"""The layout's rules. Helpers live in helper modules (``*_helpers.py``, ``serving.py`` …), never
imported from another test module, so running or deleting one test file never changes another's.
Each built-in stage is one package, ``stages/<name>/`` (``stage.py`` and its helpers), with one
test file, ``tests/stages/<name>/test_<name>.py``, beside which a helper module's tests are named
after it (``test_<module>.py``)."""

from __future__ import annotations

import ast
from pathlib import Path

from pipeline.registry import STAGES

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


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


def package_faults(stages: Path, tests: Path, builtins: dict[str, str]) -> list[str]:
    """What breaks the one-package-per-stage rule in ``stages`` (the code), ``tests`` (its tests)
    and ``builtins`` (the registry's YAML name -> ``module:attr``)."""
    faults = [f"{path.name}: a module beside the stage packages" for path in sorted(stages.glob("*.py"))
              if path.name != "__init__.py"]
    packages = {path.parent.name for path in stages.glob("*/__init__.py")}
    for name, target in sorted(builtins.items()):
        if target.partition(":")[0] != f"stages.{name}":
            faults.append(f"{name}: {target} is not the package stages.{name}")
    for name in sorted(packages):
        modules = {path.stem for path in (stages / name).glob("*.py")}
        if "stage" not in modules:
            faults.append(f"{name}: no stage.py")
        if not (tests / name / f"test_{name}.py").is_file():
            faults.append(f"{name}: no tests/stages/{name}/test_{name}.py")
        faults += [f"{name}: {path.name} names no module of stages/{name}"
                   for path in sorted((tests / name).glob("test_*.py"))
                   if path.stem != f"test_{name}" and path.stem.removeprefix("test_") not in modules]
    faults += [f"{path.relative_to(tests)}: outside a stage's test folder"
               for path in sorted(tests.rglob("test_*.py")) if len(path.relative_to(tests).parts) != 2
               or path.parent.name not in packages]
    return faults


def test_each_builtin_stage_is_one_package_with_its_test_file() -> None:
    assert package_faults(ROOT / "stages", TESTS / "stages", STAGES) == []


def test_the_check_sees_a_stage_outside_the_rule(tmp_path: Path) -> None:
    stages, tests = tmp_path / "stages", tmp_path / "tests"
    for path in ("stages/__init__.py", "stages/envelope.py", "stages/cut/__init__.py", "stages/cut/stage.py",
                 "stages/cut/trim.py", "stages/bare/__init__.py", "tests/cut/test_cut.py", "tests/cut/test_trim.py",
                 "tests/cut/test_other.py", "tests/test_envelope.py"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).touch()
    assert package_faults(stages, tests, {"cut": "stages.cut:Cut", "flat": "stages.flat_module:Flat"}) == [
        "envelope.py: a module beside the stage packages",
        "flat: stages.flat_module:Flat is not the package stages.flat",
        "bare: no stage.py",
        "bare: no tests/stages/bare/test_bare.py",
        "cut: test_other.py names no module of stages/cut",
        "test_envelope.py: outside a stage's test folder",
    ]
