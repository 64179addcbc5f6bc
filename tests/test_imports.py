"""The `asr` package's import graph has no cycle (function-level imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

ASR = Path(__file__).resolve().parents[1] / "asr"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ASR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """asr module -> the asr modules it imports anywhere in its body (ast, not importing them)."""
    mods = {_module_name(p): p for p in ASR.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                # `from pkg import submodule` needs the submodule; `from mod import name` needs mod
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in mods]
                targets = subs + ([base] if len(subs) < len(node.names) else [])
            else:
                continue
            for t in targets:
                while t and t not in mods:  # `from asr.x import func` -> asr.x
                    t = t.rpartition(".")[0]
                if t and t != name:
                    deps.add(t)
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a list of modules (first == last), or None. A package's __init__ re-exporting its
    submodules is an edge; a submodule importing a name from its parent package would close a
    cycle, so submodules import their siblings directly."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for d in sorted(graph.get(n, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (c := visit(d)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_finder_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_asr_import_graph_has_no_cycle():
    graph = import_graph()
    assert {"asr.gmm", "asr.graph", "asr.hmm_io", "asr.tree.build", "asr.train"} <= set(graph)
    assert "asr.hmm_io" in graph["asr.graph"] and "asr.graph" in graph["asr.gmm.decode"]
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)
