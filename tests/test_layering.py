"""Dependencies flow one way: dsl <- compiler, dsl <- runtime <- rl; only the top-level medgym package (the
CLI, the gate, the shipped build) ties the stages together.

Every module's imports are read with `ast` (top-level and lazy ones inside functions, relative ones resolved,
`importlib.import_module("medgym....")` with a constant name too) and checked against the stage it lives in.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = {"dsl": "medgym.dsl", "compiler": "medgym.compiler", "runtime": "medgym.runtime", "rl": "medgym.rl"}
ALLOWED = {  # what each stage may import from medgym besides itself
    "medgym.dsl": set(),
    "medgym.compiler": {"medgym.dsl"},
    "medgym.runtime": {"medgym.dsl"},
    "medgym.rl": {"medgym.dsl", "medgym.runtime"},
}


def module_name(path: Path, folder: str) -> str:
    parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([STAGES[folder], *parts])


def imported(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the tree."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return found


def stage_of(name: str) -> str | None:
    """The stage a medgym import belongs to; 'medgym' for the top-level package; None outside medgym."""
    if name != "medgym" and not name.startswith("medgym."):
        return None
    for stage in STAGES.values():
        if name == stage or name.startswith(stage + "."):
            return stage
    return "medgym"


def modules():
    for folder in STAGES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield folder, path


def violations(folder: str, path: Path) -> list[str]:
    module = module_name(path, folder)
    own = STAGES[folder]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    out = []
    for line, name in imported(tree, module, path.name == "__init__.py"):
        target = stage_of(name)
        if target is None or target == own or target in ALLOWED[own]:
            continue
        out.append(f"{path.relative_to(ROOT)}:{line}: {own} imports {name} (against the flow)")
    return out


def test_the_checker_sees_every_stage():
    counts = {folder: sum(1 for f, _ in modules() if f == folder) for folder in STAGES}
    assert all(n >= 5 for n in counts.values()), counts


@pytest.mark.parametrize("folder", list(STAGES))
def test_imports_flow_one_way(folder):
    found = [v for f, path in modules() if f == folder for v in violations(f, path)]
    assert not found, "\n".join(found)


def test_the_checker_catches_back_edges(tmp_path):
    """A runtime module importing rl, the top-level package or (lazily, relatively) the compiler is caught."""
    source = ("import medgym.rl.agents\nfrom medgym import shipped\n\n\ndef f():\n"
              "    from ...compiler import pipeline\n    importlib.import_module('medgym.rl.local')\n")
    tree = ast.parse(source)
    names = [name for _, name in imported(tree, "medgym.runtime.agents", True)]
    assert names == ["medgym.rl.agents", "medgym", "medgym.compiler", "medgym.rl.local"]
    assert [stage_of(n) for n in names] == ["medgym.rl", "medgym", "medgym.compiler", "medgym.rl"]
    assert stage_of("json") is None and stage_of("medgym.dsl.build") == "medgym.dsl"
