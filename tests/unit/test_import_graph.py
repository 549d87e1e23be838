"""The package's import graph has no circle: data flows one way, and every module can be read
after the ones it imports. Lazy imports inside functions and imports under TYPE_CHECKING count
too: they hide a circle, they do not remove it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "exporter"


def module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_only(tree: ast.Module) -> set[int]:
    """Nodes under `if TYPE_CHECKING:`."""
    nodes: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            nodes.update(id(sub) for sub in ast.walk(node))
    return nodes


def import_graph(package: Path = PACKAGE, *, runtime_only: bool = False) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (at any depth of its body; with
    `runtime_only`, leaving out imports under TYPE_CHECKING)."""
    paths = {module_name(path, package): path for path in package.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        skipped = _type_only(tree) if runtime_only else set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from exporter.core import catalogue` imports the module exporter.core.catalogue
                targets = [f"{node.module}.{alias.name}" for alias in node.names]
                targets.append(node.module)
            for target in targets:
                known = target
                while known and known not in paths:  # `from m import function` -> m
                    known = known.rpartition(".")[0]
                if known and known != name and not name.startswith(known + "."):
                    graph[name].add(known)
    return graph


def package_of(module: str) -> str:
    """exporter.fleet.source -> exporter.fleet; top-level modules stand for themselves."""
    parts = module.split(".")
    return ".".join(parts[:2])


def find_circle(graph: dict[str, set[str]]) -> list[str]:
    """One circle of the graph as [a, b, ..., a], or [] when there is none."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str]:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return []
        visiting.append(node)
        for nxt in sorted(graph.get(node, ())):
            circle = visit(nxt)
            if circle:
                return circle
        visiting.pop()
        done.add(node)
        return []

    for node in sorted(graph):
        circle = visit(node)
        if circle:
            return circle
    return []


def test_finds_a_circle_where_there_is_one(tmp_path: Path) -> None:
    package = tmp_path / "exporter"
    (package / "mixin").mkdir(parents=True)
    (package / "mixin" / "__init__.py").write_text("")
    (package / "mixin" / "config.py").write_text(
        "def render():\n    from exporter.mixin.rules import groups\n"
    )
    (package / "mixin" / "rules.py").write_text("from exporter.mixin import config\n")
    circle = find_circle(import_graph(package))
    assert circle[0] == circle[-1]
    assert set(circle) == {"exporter.mixin.config", "exporter.mixin.rules"}


def test_no_module_imports_itself_back() -> None:
    graph = import_graph()
    assert len(graph) > 50, "the walk found too few modules to mean anything"
    assert find_circle(graph) == []


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        for target in targets:
            if package_of(module) != package_of(target):
                packages.setdefault(package_of(module), set()).add(package_of(target))
    return packages


def test_packages_depend_one_way() -> None:
    """vocab <- exposition <- core <- subjects <- derivations, sources <- check, web, sla <- app
    <- cli. Only type annotations look back: the tenant state (core) names the subjects'
    models it holds."""
    packages = package_graph(import_graph(runtime_only=True))
    assert find_circle(packages) == []
    importers_of_app = {p for p, targets in packages.items() if "exporter.app" in targets}
    assert importers_of_app <= {"exporter.cli", "exporter.simulator"}
    assert packages["exporter.core"] <= {"exporter.config", "exporter.exposition", "exporter.vocab"}


@pytest.mark.parametrize("subject", ["exporter.simulator"])
def test_serving_never_imports(subject: str) -> None:
    """Only the command line and the simulator itself reach the simulator."""
    graph = import_graph()
    importers = sorted(
        name
        for name, targets in graph.items()
        if any(t == subject or t.startswith(subject + ".") for t in targets)
        and not name.startswith(subject)
        and name != "exporter.cli"
    )
    assert importers == []
