"""The code's floors: ``pipeline/`` (1) < ``upstreams/`` (2) < ``stages/`` (3) < ``bench/`` (4).

A module imports only from its own floor or below (the registry names the stages and upstreams
above it as ``module:attr`` strings, resolved when a config is loaded); no module takes another
module's private (``_``) names; a client codec never imports another dialect's codec (what the
OpenAI dialects share is ``pipeline/protocols/openai.py``).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOORS = {"pipeline": 1, "upstreams": 2, "stages": 3, "bench": 4}
DIALECTS = ("anthropic", "chat", "responses")


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names taken) for every import in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
    return found


def sources() -> list[Path]:
    return [path for top in FLOORS for path in sorted((ROOT / top).rglob("*.py"))]


def test_no_import_runs_back_up() -> None:
    """Every import of a floor's module names a module of that floor or one below."""
    upward = []
    for path in sources():
        here = path.relative_to(ROOT)
        floor = FLOORS[here.parts[0]]
        for module, _ in imports(path):
            top = module.partition(".")[0]
            if FLOORS.get(top, 0) > floor:
                upward.append(f"{here} -> {module}")
    assert upward == []


def test_no_private_name_crosses_a_module() -> None:
    """``from pkg.mod import _name`` couples two modules through what one of them hides."""
    private = [f"{path.relative_to(ROOT)}: {module}.{name}" for path in sources()
               for module, names in imports(path) if module.partition(".")[0] in FLOORS
               for name in names if name.startswith("_") and not name.startswith("__")]
    assert private == []


def test_no_codec_imports_another_dialect() -> None:
    """Each dialect's package imports the shared protocol modules, never a sibling dialect."""
    sideways = []
    for dialect in DIALECTS:
        for path in sorted((ROOT / "pipeline" / "protocols" / dialect).rglob("*.py")):
            for module, _ in imports(path):
                parts = module.split(".")
                if parts[:2] == ["pipeline", "protocols"] and len(parts) > 2 and parts[2] in DIALECTS \
                        and parts[2] != dialect:
                    sideways.append(f"{path.relative_to(ROOT)} -> {module}")
    assert sideways == []


# One shape for every dialect package: each module is named by the side it serves.
SHAPE = ("codec", "models", "output_models", "errors", "helpers")
SIDES = ("client_decode", "client_encode", "upstream_encode", "upstream_decode")


def test_dialect_modules_are_named_by_the_side_they_serve() -> None:
    """In ``pipeline/protocols/<dialect>/`` a module is the codec, wire models, errors, helpers,
    or starts with the side it serves (``client_decode``: the client's request → neutral;
    ``client_encode``: neutral events → the client; ``upstream_encode``: neutral → an upstream's
    request; ``upstream_decode``: an upstream's answer → neutral events). Each has a codec."""
    strays = []
    for dialect in DIALECTS:
        package = ROOT / "pipeline" / "protocols" / dialect
        names = {path.stem for path in package.glob("*.py")} - {"__init__"}
        assert "codec" in names and "models" in names, dialect
        strays += [f"{dialect}/{name}.py" for name in sorted(names)
                   if name not in SHAPE and not name.startswith(SIDES)]
    assert strays == []
