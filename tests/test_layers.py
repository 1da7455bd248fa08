"""The house's layers point down only: no import of an upper package from a lower one, no cycle.

Every import in ``src/scalefree`` is read from the source (``ast``), wherever it stands: at the
top of a module, inside a function (a lazy import is still a dependency), under
``TYPE_CHECKING``, and as a string naming a module that code imports by name (``"scalefree.x"``
or ``"scalefree.x:NAME"``, as the CLI's subcommand list and RunConfig's registry fields do). The
layer order is docs/design.md section 1 ("Layers"): a package may import only packages on lower
floors, never one on its own floor or above. No exception is allowed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "scalefree"
DESIGN = Path(__file__).resolve().parents[1] / "docs" / "design.md"

# Floor of every package (or top-level module) of scalefree, lowest first. The same table is in
# docs/design.md; a package may import only packages on a lower floor.
FLOORS: dict[str, int] = {
    "errors": 0,
    "io": 1,
    "registry": 1,
    "chance": 1,
    "cli_flags": 1,
    "locking": 2,
    "rundir": 3,
    "data": 4,
    "optim": 4,
    "trackers": 4,
    "models": 5,
    "train": 6,
    "plots": 7,
    "sweep": 8,
    "diagnose": 8,
    "reproduce": 9,
    "integrations": 9,
    "cli": 10,
    "__main__": 11,
}
ROOT = ""  # scalefree/__init__.py: only __version__, importable from every floor

MODULE_NAME = re.compile(r"^scalefree(\.[A-Za-z_]\w*)+(:[A-Za-z_]\w*)?$")


def package_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py") if rel.parts[0] != "__init__.py" else ROOT


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["scalefree", *parts])


def names_a_module(name: str) -> bool:
    """Whether ``scalefree.a.b`` is a module of the source tree (a tag such as
    "scalefree.sweep_parent" is a string, not an import)."""
    where = SRC.joinpath(*name.split(".")[1:])
    return where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()


def imported_modules(path: Path) -> list[tuple[str, int]]:
    """(absolute module name, line) of every import in ``path``, lazy and by-name ones included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path).split(".")
    if path.name != "__init__.py":
        here = here[:-1]  # the package a relative import starts from
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = here[: len(here) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            # "from scalefree import rundir" imports the package rundir; "from scalefree.x import
            # y" may name a submodule y: both count as imports of what they name.
            found += [
                (f"{base}.{a.name}" if base == "scalefree" else base, node.lineno)
                for a in node.names
            ]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if MODULE_NAME.match(node.value) and names_a_module(node.value.split(":")[0]):
                found.append((node.value.split(":")[0], node.lineno))
    return found


def package_edges() -> list[tuple[str, str, str]]:
    """(importing package, imported package, "file:line") for every import between packages."""
    edges = []
    for path in sorted(SRC.rglob("*.py")):
        src_pkg = package_of(path)
        for name, line in imported_modules(path):
            parts = name.split(".")
            if parts[0] != "scalefree":
                continue
            dst_pkg = parts[1] if len(parts) > 1 else ROOT
            if dst_pkg == "__version__":
                dst_pkg = ROOT
            if dst_pkg != src_pkg:
                edges.append((src_pkg, dst_pkg, f"{path.relative_to(SRC.parent)}:{line}"))
    return edges


EDGES = package_edges()


def test_every_package_has_a_floor():
    packages = {package_of(p) for p in SRC.rglob("*.py")} - {ROOT}
    assert packages - set(FLOORS) == set(), "new package(s): give them a floor here and in docs"
    assert set(FLOORS) - packages == set(), "FLOORS names a package that no longer exists"


def test_the_reader_sees_lazy_and_by_name_imports():
    """The reader must find what it is meant to enforce, or the layer test could pass vacuously."""
    sites = {(a, b) for a, b, _ in EDGES}
    assert ("rundir", "io") in sites and ("train", "rundir") in sites
    assert ("cli", "reproduce") in sites  # by name: the subcommand list of scalefree/cli.py
    assert ("train", "models") in sites  # by name: RunConfig's registry fields
    lazy = [w for a, b, w in EDGES if (a, b) == ("sweep", "plots")]
    assert lazy, "sweep/runner.py imports plots.tables inside a function"


def test_no_import_points_up_or_sideways():
    bad = [
        f"{where}: {src} (floor {FLOORS[src]}) imports {dst} (floor {FLOORS[dst]})"
        for src, dst, where in EDGES
        if dst != ROOT and src != ROOT and FLOORS[dst] >= FLOORS[src]
    ]
    assert bad == [], "imports that do not point down:\n" + "\n".join(bad)


def test_no_package_import_cycle():
    graph: dict[str, set[str]] = {}
    for src, dst, _ in EDGES:
        graph.setdefault(src, set()).add(dst)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            pytest.fail("package import cycle: " + " -> ".join(cycle))


def test_the_design_doc_states_the_same_floors():
    text = DESIGN.read_text()
    section = text[text.index("### Layers") :]
    section = section[: section.index("\n#", 1)]
    for floor in sorted(set(FLOORS.values())):
        names = sorted(p for p, f in FLOORS.items() if f == floor)
        row = re.search(rf"^\| {floor} \| ([^|]+) \|", section, re.M)
        assert row, f"docs/design.md: no row for floor {floor}"
        documented = sorted(n.strip(" `") for n in row.group(1).split(","))
        assert documented == names, f"floor {floor}: docs say {documented}, code says {names}"
