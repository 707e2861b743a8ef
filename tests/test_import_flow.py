"""One-way flow between the stages (issue 13 item 5), read from the source with ``ast``.

Every ``import`` counts, at module level or inside a function: an import hidden in a
function is still an arrow between two modules.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules() -> dict[str, Path]:
    mods = {}
    for f in (SRC / "pari_geo").rglob("*.py"):
        parts = f.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = f
    return mods


MODULES = _modules()


@functools.cache
def _imports(name: str) -> list[tuple[str, str]]:
    """``(module imported, name imported)`` of every import in ``name`` (names: ``""``
    for a plain ``import x``)."""
    f = MODULES[name]
    package = name if f.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(f.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.append((sub, "") if sub in MODULES else (target, alias.name))
        elif isinstance(node, ast.Import):
            out.extend((alias.name, "") for alias in node.names)
    return [(m, n) for m, n in out if m in MODULES and m != name]


@functools.cache
def _edges() -> dict[str, frozenset[str]]:
    """Import arrows between pari_geo modules; a package's ``__init__`` re-exporting its
    own submodules is not an arrow back."""
    return {m: frozenset(t for t, _ in _imports(m) if not m.startswith(t + "."))
            for m in MODULES}


def _cycle_through(start: str, edges: dict[str, frozenset[str]]) -> list[str] | None:
    """A path ``start -> ... -> start`` in ``edges``, or None."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in edges.get(node, ()):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


CORE = ("pari_geo.ingest", "pari_geo.grid", "pari_geo.align", "pari_geo.typology",
        "pari_geo.clustering")
PRESENTATION_AND_FACE = ("pari_geo.display", "pari_geo.plot", "pari_geo.cli", "pari_geo.pipeline")
MINE = sorted(m for m in MODULES if m.startswith("pari_geo.clustering")) + [
    "pari_geo.display", "pari_geo.plot", "pari_geo.io_write", "pari_geo.grid",
]


@pytest.mark.parametrize("name", sorted(m for m in MODULES if m.startswith(CORE)))
def test_core_never_imports_presentation_or_the_face(name):
    bad = sorted(t for t, _ in _imports(name) if t.startswith(PRESENTATION_AND_FACE))
    assert not bad, f"{name} imports {bad}"


@pytest.mark.parametrize("name", MINE)
def test_no_import_circle(name):
    cycle = _cycle_through(name, _edges())
    assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("name", MINE + ["pari_geo.outofcore._writer"])
def test_no_private_names_from_other_modules(name):
    private = sorted(f"{m}.{n}" for m, n in _imports(name)
                     if n.startswith("_") and not n.startswith("__") and n != "__version__")
    assert not private, f"{name} imports {private}"


def test_accessors_are_registered_by_the_package_face():
    face = {t for t, _ in _imports("pari_geo")}
    assert "pari_geo.display" in face


def _package(name: str) -> str:
    """``pari_geo.typology`` for ``pari_geo.typology.degurba``; a top-level module is its
    own package."""
    return ".".join(name.split(".")[:2])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_private_names_from_another_package(name):
    """Issue 13 item 5: no module takes another package's private names (inside one
    package, a private helper module such as ``typology/_degurba_cells.py`` is fine)."""
    private = sorted(f"{m}.{n}" for m, n in _imports(name)
                     if n.startswith("_") and not n.startswith("__") and n != "__version__"
                     and _package(m) != _package(name))
    assert not private, f"{name} imports {private}"
