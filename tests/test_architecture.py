"""The package's architecture, checked from its source: layers, one-way imports, docstrings.

Every ``pool3`` import (module level or inside a function) is read with ``ast``. A package
may import its own modules and those of lower layers only; no two modules import each other
in a cycle; every subpackage says in its docstring what it owns and what it may import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from paths import REPO

LIB = REPO / "lib"
#: lowest first; a unit may import only units of a lower layer (and itself)
LAYERS: list[set[str]] = [
    {"version", "spark_internals"},
    {"errors", "daemon"},
    {"log", "config"},
    {"workers"},
    {"connect", "jvm", "spark_settings"},
    {"storage", "images", "session"},
    {"model"},
    {"extraction"},
    {"duplicates"},
    {"training"},
    {"scoring", "report"},
    {"tracking"},
    {"api"},
    {"commands"},
    {"cli"},
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(LIB).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Fully qualified pool3 modules that ``path`` imports (``from pool3.x import y`` -> both
    ``pool3.x`` and ``pool3.x.y`` where the latter is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in ("pool3", "pool3_tools"):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "pool3")
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in (LIB / "pool3").rglob("*.py")}
    return {m: {i for i in imports_of(p) if i in modules and i != m} for m, p in modules.items()}


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "pool3"


def test_every_unit_has_a_layer():
    units = {unit(m) for m in graph()} - {"pool3"}
    assert units == set(LAYER), units ^ set(LAYER)


def test_no_upward_or_sideways_import():
    wrong = [
        f"{m} imports {i}"
        for m, deps in graph().items()
        for i in deps
        if unit(m) != "pool3"
        and unit(i) not in ("pool3", unit(m))
        and LAYER[unit(i)] >= LAYER[unit(m)]
    ]
    assert not wrong, wrong


def test_no_import_cycle():
    g = graph()
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(g[m]):
            if state.get(d) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path[path.index(d) :], d]))
            if d not in state:
                visit(d, [*path, d])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [m])


def test_the_shipped_package_never_imports_the_tools_at_module_level():
    for path in (LIB / "pool3").rglob("*.py"):
        tree = ast.parse(path.read_text())
        top = [n for n in tree.body if isinstance(n, ast.ImportFrom | ast.Import)]
        names = {getattr(n, "module", None) or n.names[0].name for n in top}
        assert not any(str(n).startswith("pool3_tools") for n in names), path


@pytest.mark.parametrize(
    "package", sorted(p.parent.name for p in (LIB / "pool3").glob("*/__init__.py"))
)
def test_each_subpackage_says_what_it_owns_and_may_import(package):
    doc = ast.get_docstring(ast.parse((LIB / "pool3" / package / "__init__.py").read_text()))
    assert doc and "May import" in doc, package


def test_modules_stay_around_250_lines():
    long = {
        str(p.relative_to(LIB)): n
        for p in (LIB / "pool3").rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 330
    }
    assert not long, long
