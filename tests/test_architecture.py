"""The layout's contract: imports go one way (cli → workflows → search/evaluation → plugins → base),
no circles, and no module too long to read in one sitting.

Every import counts: at the top, inside functions and under ``TYPE_CHECKING``. Plugins that load
lazily through a registry (entry points) are not imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"decam": ROOT / "decam", "decam_strategies": ROOT / "strategies"}
MAX_LINES = 300

# Lower ranks are lower layers. A unit may import its own modules and units of strictly lower rank;
# units of equal rank (search and evaluation, say) never import each other.
RANKS = {
    "decam.errors": 0, "decam.interrupts": 0,
    "decam.registry": 1, "decam.io": 1, "decam.substrates": 1,
    "decam.config": 2,
    "decam.encodings": 3, "decam.models": 3, "decam_strategies": 3,
    "decam.distributed": 4,
    "decam.search": 5, "decam.evaluation": 5,
    "decam.tracking": 6, "decam.testing": 6,
    "decam.workflows": 7,
    "decam.cli": 8,
    "decam": 9,  # the public facade (decam/__init__.py, decam/__main__.py): nothing inside imports it
}


def modules() -> dict[str, Path]:
    out = {}
    for top, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([top, *parts])] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Our modules that ``name`` imports anywhere in its file."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:
                found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base)
    return {m for m in found if m in known}


def unit(module: str) -> str:
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in RANKS:
            return ".".join(parts[:i])
    raise KeyError(module)


GRAPH = {name: imports(name, path, set(modules())) for name, path in modules().items()}


def test_every_module_belongs_to_a_layer():
    stray = []
    for m in GRAPH:
        try:
            unit(m)
        except KeyError:
            stray.append(m)
    assert not stray, f"modules outside every layer (add them to RANKS): {stray}"


def test_imports_only_go_down():
    wrong = []
    for importer, targets in GRAPH.items():
        for target in targets:
            a, b = unit(importer), unit(target)
            if a != b and not RANKS[b] < RANKS[a] or (b == "decam" and importer not in ("decam", "decam.__main__")):
                wrong.append(f"{importer} → {target}")
    assert not wrong, "imports that run up or sideways:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles():
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(GRAPH[m]):
            if state.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if t not in state and (cycle := visit(t)):
                return cycle
        state[m] = 2
        stack.pop()
        return None

    for m in sorted(GRAPH):
        if m not in state and (cycle := visit(m)):
            pytest.fail("import cycle: " + " → ".join(cycle))


def test_no_module_is_too_long_to_read():
    long = {n: len(p.read_text().splitlines()) for n, p in modules().items()}
    assert not {n: k for n, k in long.items() if k > MAX_LINES}, f"over {MAX_LINES} lines: " + str(
        {n: k for n, k in long.items() if k > MAX_LINES})


def test_the_checker_sees_an_upward_import(tmp_path):
    """The contract test itself can fail: a base module importing the search is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from decam.search.explainer import Explainer\n")
    found = imports("decam.io.bad", bad, set(modules()))
    assert found == {"decam.search.explainer"} and RANKS[unit("decam.search.explainer")] > RANKS["decam.io"]
