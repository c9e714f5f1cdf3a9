"""The package's shape: no module imports a module that imports it back (directly or through others),
and nothing outside the interfaces (`provenance.api`, `provenance.cli`) imports them."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parent.parent / "provenance"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> nx.DiGraph[str]:
    """Every import of every module of the package (at module level or inside a function), as edges."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    g: nx.DiGraph[str] = nx.DiGraph()
    for name, path in modules.items():
        g.add_node(name)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base
                                                                                                     else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for t in targets:
                while t and t not in modules:  # `import provenance.x.y` of a name: the module that holds it
                    t = t.rpartition(".")[0]
                if t.startswith("provenance") and t != name:
                    g.add_edge(name, t)
    return g


def test_no_import_cycles() -> None:
    cycles = [sorted(c) for c in nx.strongly_connected_components(import_graph()) if len(c) > 1]
    assert cycles == [], f"modules that import each other: {cycles}"


def test_only_the_interfaces_import_the_interfaces() -> None:
    g = import_graph()
    interfaces = ("provenance.api", "provenance.cli")
    wrong = sorted((a, b) for a, b in g.edges if b.startswith(interfaces) and not a.startswith(interfaces))
    assert wrong == [], f"modules below the interfaces that import them: {wrong}"


def test_the_graph_sees_every_module() -> None:
    """The walk itself works: it finds the package's modules and edges known to exist (a test of the test)."""
    g = import_graph()
    assert {"provenance.service", "provenance.api.app", "provenance.cli.queries"} <= set(g.nodes)
    assert g.has_edge("provenance.api.app", "provenance.service") and g.has_edge("provenance.cli.queries",
                                                                                  "provenance.service")
    assert g.has_edge("provenance.stack", "provenance.formats")
