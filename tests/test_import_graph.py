"""The package's modules import one another without a cycle (module-level imports)."""

from __future__ import annotations

import ast
from pathlib import Path

import redditvision

SRC = Path(redditvision.__file__).resolve().parent
PACKAGE = "redditvision"


def module_names() -> dict[str, Path]:
    """Every module of the package: dotted name -> file (a package is its ``__init__``)."""
    names: dict[str, Path] = {}
    for path in SRC.rglob("*.py"):
        parts = (PACKAGE, *path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: not in functions or TYPE_CHECKING."""
    found: list[ast.Import | ast.ImportFrom] = []

    def walk(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.append(node)
            elif isinstance(node, ast.If):
                if not _is_type_checking(node.test):
                    walk(node.body)
                walk(node.orelse)
            elif isinstance(node, ast.Try):
                walk(node.body)
                for handler in node.handlers:
                    walk(handler.body)
                walk(node.orelse)
                walk(node.finalbody)
            elif isinstance(node, ast.With):
                walk(node.body)
            # Function and class bodies are not walked: a class body runs at import time,
            # but this package imports nothing inside one.

    walk(tree.body)
    return found


def all_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import but TYPE_CHECKING ones, deferred (inside functions) included."""
    found: list[ast.Import | ast.ImportFrom] = []

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if _is_type_checking(node.test):
                for statement in node.orelse:
                    self.visit(statement)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.append(node)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            found.append(node)

    Visitor().visit(tree)
    return found


def _ancestors(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def import_graph(*, deferred: bool = False) -> dict[str, set[str]]:
    """Module -> the package modules its module-level imports load.

    With ``deferred``, imports inside functions count too: a cycle there does not fail an
    import, but it ties modules together that should not know each other.

    Importing ``a.b.c`` also runs the ``__init__`` of ``a.b`` unless the importing module
    lies inside ``a.b`` (its own packages are already being imported); such parent edges
    are kept, because a package ``__init__`` that imports back is a real cycle. A name
    taken from a package (``from a.b import name``, not a submodule) is an edge to its
    ``__init__`` even from inside the package.
    """
    modules = module_names()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in (all_imports if deferred else module_level_imports)(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    source = node.module or ""
                # ``from pkg import sub`` loads the module pkg.sub; ``from pkg import name``
                # needs pkg's __init__ to have run to the end, even from inside pkg.
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    if sub in modules:
                        targets.append(sub)
                    elif source in modules:
                        graph[name].add(source)
            for target in targets:
                if target not in modules:
                    continue
                graph[name].add(target)
                for parent in _ancestors(target) - _ancestors(name) - {name}:
                    if parent in modules:
                        graph[name].add(parent)
            graph[name].discard(name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one cycle as a list of modules (first repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_package_modules_import_one_another_without_a_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 40  # the walk found the package
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def cycle_through(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """Return a path from ``start`` back to itself, or None."""
    seen: set[str] = set()
    paths = [[start]]
    while paths:
        path = paths.pop()
        for target in sorted(graph[path[-1]]):
            if target == start:
                return [*path, target]
            if target not in seen:
                seen.add(target)
                paths.append([*path, target])
    return None


def test_no_cycle_through_the_comparison_labelers_or_report_even_with_deferred_imports() -> None:
    # On the old layout: vision -> classify -> (deferred) backends.local -> _labeler -> vision.
    graph = import_graph(deferred=True)
    for module in sorted(graph):
        if module.startswith(
            (
                "redditvision.compare",
                "redditvision.labelers._base",
                "redditvision.labelers.cloud_vision",
                "redditvision.report",
                "redditvision.metrics",
                "redditvision._csv",
                "redditvision._vocabulary",
            )
        ):
            assert cycle_through(graph, module) is None, " -> ".join(
                cycle_through(graph, module) or []
            )


def test_the_graph_sees_the_edges_that_made_the_old_cycle() -> None:
    graph = import_graph()
    # The comparison imports the shared label types, not a labeler or a backend ...
    assert "redditvision.labelers._base" in graph["redditvision.compare"]
    assert "redditvision.backends.local" not in graph["redditvision.compare"]
    # ... and the local backend re-exports the ImageNet labeler, which imports it lazily.
    assert "redditvision.labelers.imagenet" in graph["redditvision.backends.local"]
    assert not any(
        name.startswith("redditvision.backends") for name in graph["redditvision.labelers.imagenet"]
    )


def test_the_cycle_finder_reports_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_type_checking_and_function_imports_are_not_edges() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "import os\n"
        "if TYPE_CHECKING:\n"
        "    import redditvision.compare\n"
        "def f():\n"
        "    import redditvision.report\n"
        "try:\n"
        "    import redditvision.labelers\n"
        "except ImportError:\n"
        "    pass\n"
    )
    names = [
        alias.name
        for node in module_level_imports(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    assert names == ["os", "redditvision.labelers"]
