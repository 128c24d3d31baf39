"""The layers of the package, from the imports themselves: no upward import between packages, no cycle.

Every import counts, at module level or inside a function (a lazy import still makes the two modules depend
on each other), and ``TYPE_CHECKING`` ones too.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "dbt_ferry"

#: Top first. A package may import the ones below it, never one above. Modules at the root of the package
#: (``api``, ``console``) are layers of their own.
LAYERS = (
    "__main__",
    "__init__",
    "cli",
    "api",
    "deploy",
    "runtime",
    "release",
    "exports",
    "notify",
    "storage",
    "config",
    "console",
    "core",
)


def _module_name(path: Path, src: Path) -> str:
    parts = path.relative_to(src.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(src: Path = SRC) -> dict[str, set[str]]:
    """Module → the dbt_ferry modules it imports (``from a import b`` counts ``a.b`` when that is a module)."""
    modules = {_module_name(p, src): p for p in src.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):  # relative imports are banned (ruff TID252)
                base = node.module or ""
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                if target.startswith("dbt_ferry") and target != name:
                    graph[name].add(target)
    return graph


def _layer(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def _upward(graph: dict[str, set[str]]) -> list[str]:
    rank = {layer: index for index, layer in enumerate(LAYERS)}
    upward = []
    for module, targets in graph.items():
        for target in targets:
            source_layer, target_layer = _layer(module), _layer(target)
            assert source_layer in rank, f"{module}: add its package to LAYERS"
            if rank[target_layer] < rank[source_layer]:
                upward.append(f"{module} imports {target}")
    return sorted(upward)


def test_no_package_imports_one_above_it() -> None:
    assert _upward(_imports()) == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _module_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    # A module importing its own package's __init__ (which re-exports it) is not a cycle of design.
    return _cycles({m: {t for t in targets if not m.startswith(t + ".")} for m, targets in graph.items()})


def _package_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    packages: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        packages[_layer(module)] |= {_layer(t) for t in targets} - {_layer(module)}
    return _cycles(packages)


def test_no_import_cycle_between_modules() -> None:
    assert _module_cycles(_imports()) == []


def test_no_import_cycle_between_packages() -> None:
    assert _package_cycles(_imports()) == []


def test_the_checks_find_an_upward_import_and_cycles(tmp_path: Path) -> None:
    """The same checks on a small package laid out wrongly on purpose."""
    root = tmp_path / "dbt_ferry"
    files = {
        "__init__.py": "",
        "core/__init__.py": "",
        "core/names.py": "def f():\n    from dbt_ferry.runtime.job import run  # lazy, still upward\n",
        "runtime/__init__.py": "",
        "runtime/job.py": "from dbt_ferry.runtime import flow\nfrom dbt_ferry.core.names import f\n",
        "runtime/flow.py": "if TYPE_CHECKING:\n    from dbt_ferry.runtime.job import x\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    graph = _imports(root)
    assert _upward(graph) == ["dbt_ferry.core.names imports dbt_ferry.runtime.job"]
    assert _module_cycles(graph) == [["dbt_ferry.core.names", "dbt_ferry.runtime.flow", "dbt_ferry.runtime.job"]]
    assert _package_cycles(graph) == [["core", "runtime"]]
