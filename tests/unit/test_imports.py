"""The shape of the package: no import cycles among qwenchat's modules, every module
imports on its own, and the core never imports Textual or typer.

Module-level imports make the graph (an import inside a function, or under
``if TYPE_CHECKING:``, runs later or never: it is how a dependency is deferred, and it
cannot deadlock a module's loading). A package's import of one of its modules is an
edge like any other; a module's import from its own package is not (Python loads a
package before its modules).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "qwenchat"
SHELLS = ("qwenchat.cli", "qwenchat.tui")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(name: str, path: Path) -> set[str]:
    """The qwenchat modules ``name`` imports when it is loaded."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    nodes = list(tree.body)
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.If) and not _type_checking(node):
            nodes += node.body + node.orelse
        elif isinstance(node, ast.Try):
            nodes += node.body + node.orelse + node.finalbody
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    # A module's own packages are loaded before it, whatever it imports from them.
    ancestors = {name.rsplit(".", n)[0] for n in range(1, name.count(".") + 1)}
    return {m for m in found if m in MODULES and m != name and m not in ancestors}


GRAPH = {name: _top_level_imports(name, path) for name, path in MODULES.items()}


def _cycle() -> list[str] | None:
    """One import cycle, as the modules on it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for neighbour in sorted(GRAPH[node]):
            if state.get(neighbour) == 1:
                return [*path[path.index(neighbour) :], neighbour]
            if neighbour not in state and (found := visit(neighbour)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(GRAPH):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_there_is_no_import_cycle() -> None:
    cycle = _cycle()
    assert cycle is None, " -> ".join(cycle or [])


def test_the_check_sees_a_cycle_when_there_is_one() -> None:
    GRAPH["qwenchat.errors"] = GRAPH["qwenchat.errors"] | {"qwenchat.config"}
    try:
        assert _cycle() is not None
    finally:
        GRAPH["qwenchat.errors"] = GRAPH["qwenchat.errors"] - {"qwenchat.config"}


@pytest.mark.parametrize("shell", SHELLS)
def test_the_core_imports_neither_shell_nor_its_framework(shell: str) -> None:
    core = [name for name in MODULES if not name.startswith(SHELLS)]
    for name in core:
        source = MODULES[name].read_text(encoding="utf-8")
        assert f"import {shell}" not in source and f"from {shell}" not in source, name
        assert "import textual" not in source and "from textual" not in source, name
        assert "import typer" not in source, name


def test_every_module_imports_in_a_fresh_interpreter() -> None:
    skip = {"qwenchat.engine.selfcheck", "qwenchat.sandbox.kernel"}  # scripts run as __main__
    names = [name for name in MODULES if name not in skip]
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)"
    done = subprocess.run(
        [sys.executable, "-c", code, *names], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
