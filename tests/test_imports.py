"""No two modules of the package import each other, directly or through others, even inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports; `from mixsd.x import y` means x.y where that is a module."""
    paths = {
        ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"): p
        for p in sorted((SRC / "mixsd").rglob("*.py"))
    }
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module in paths:
                deps |= {
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in paths else node.module for a in node.names
                }
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name in paths}
        graph[name] = deps - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, str] = {}

    def visit(m: str, path: list[str]) -> list[str]:
        state[m] = "open"
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                return path[path.index(d) :] + [m, d] if d in path else [m, d]
            if d not in state and (cycle := visit(d, path + [m])):
                return cycle
        state[m] = "done"
        return []

    for m in sorted(graph):
        if m not in state and (cycle := visit(m, [])):
            return cycle
    return []


def test_the_cycle_finder_sees_a_deferred_import():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    cycle = find_cycle(module_graph())
    assert not cycle, " -> ".join(cycle)
