"""The critical path of a run: the chain of dependent nodes whose durations add up to the longest time.

With unlimited threads every node starts as soon as its parents are done, so no run of these nodes can take
less than this chain: it is the lower bound of the wall time, and the nodes on it are the ones worth speeding up.
The graph is dbt's: ``manifest.json`` (``parent_map`` and each node's ``depends_on.nodes``), cut down to the
nodes that ran (a node that did not run passes its parents on), with the edges ``dbt build`` adds: a node waits
for the tests of its parents, and a model for its unit tests.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: The manifest's sections whose entries have ``depends_on.nodes``.
_SECTIONS = ("nodes", "exposures", "unit_tests", "metrics", "semantic_models", "saved_queries")


@dataclass(frozen=True)
class CriticalPath:
    nodes: tuple[str, ...]
    seconds: float


def manifest_parents(manifest: Mapping[str, Any]) -> dict[str, set[str]]:
    """Every node's parents: ``parent_map`` joined with the ``depends_on.nodes`` of each entry."""
    parents: dict[str, set[str]] = defaultdict(set)
    for uid, ups in (manifest.get("parent_map") or {}).items():
        parents[uid].update(str(u) for u in ups or ())
    for section in _SECTIONS:
        for uid, entry in (manifest.get(section) or {}).items():
            depends = (entry or {}).get("depends_on") or {}
            parents[uid].update(str(u) for u in depends.get("nodes") or ())
    return dict(parents)


def _post_order(start: str, ups: Callable[[str], Iterable[str]], done: Container[str]) -> list[str]:
    """``start`` and the nodes above it not yet ``done``, each after all of its own: a depth-first walk without
    recursion (chains can be thousands of nodes long). A cycle, never in dbt's graph, is cut where it closes."""
    order: list[str] = []
    stack, expanded, finished = [start], set(), set()
    while stack:
        current = stack[-1]
        if current in done or current in finished:
            stack.pop()
            continue
        if current not in expanded:
            expanded.add(current)
            stack.extend(u for u in ups(current) if u not in done and u not in expanded)
            continue
        stack.pop()
        finished.add(current)
        order.append(current)
    return order


def _ancestors(node: str, parents: Mapping[str, set[str]], memo: dict[str, frozenset[str]]) -> frozenset[str]:
    for current in _post_order(node, lambda n: parents.get(n, ()), memo):
        found: set[str] = set()
        for parent in parents.get(current, ()):
            found.add(parent)
            found |= memo.get(parent, frozenset())
        memo[current] = frozenset(found)
    return memo[node]


def build_edges(manifest: Mapping[str, Any], parents: dict[str, set[str]]) -> dict[str, set[str]]:
    """``parents`` with the edges ``dbt build`` adds (as dbt-core's ``add_test_edges`` does): a node waits for
    the tests of its parents (a test of several nodes only when all of them are its ancestors); a model
    waits for its unit tests, which wait for the model's parents."""
    nodes = manifest.get("nodes") or {}
    tests = {uid: sorted(parents.get(uid, ())) for uid, n in nodes.items() if (n or {}).get("resource_type") == "test"}
    executable = {uid for uid, n in nodes.items() if (n or {}).get("resource_type") not in ("test", None)}
    children: dict[str, set[str]] = defaultdict(set)
    for uid, ups in parents.items():
        for up in ups:
            children[up].add(uid)
    edges = {uid: set(ups) for uid, ups in parents.items()}
    memo: dict[str, frozenset[str]] = {}
    for test, deps in tests.items():
        for child in {c for d in deps for c in children.get(d, ()) if c in executable}:
            if len(deps) == 1 or set(deps) <= _ancestors(child, parents, memo):
                edges.setdefault(child, set()).add(test)
    for unit_test in manifest.get("unit_tests") or {}:
        for model in parents.get(unit_test, set()) & executable:
            edges[unit_test] = set(parents.get(model, ()))
            edges.setdefault(model, set()).add(unit_test)
    return edges


def _ran_above(
    node: str, parents: Mapping[str, set[str]], ran: set[str], memo: dict[str, frozenset[str]]
) -> frozenset[str]:
    """The nearest nodes that ran above ``node``, which did not run."""

    def not_run(n: str) -> list[str]:
        return [p for p in parents.get(n, ()) if p not in ran]

    for current in _post_order(node, not_run, memo):
        found = {p for p in parents.get(current, ()) if p in ran}
        for up in not_run(current):
            found |= memo.get(up, frozenset())
        memo[current] = frozenset(found)
    return memo[node]


def run_graph(parents: Mapping[str, set[str]], ran: Iterable[str]) -> dict[str, set[str]]:
    """The parents of each node that ran, among the nodes that ran: a node that did not run (not selected, a
    source) is passed through, so its own parents count instead."""
    ran = set(ran)
    memo: dict[str, frozenset[str]] = {}
    graph: dict[str, set[str]] = {}
    for node in ran:
        found: set[str] = set()
        for parent in parents.get(node, ()):
            if parent in ran:
                found.add(parent)
            else:
                found |= _ran_above(parent, parents, ran, memo)
        graph[node] = found - {node}
    return graph


def longest_path(durations: Mapping[str, float], parents: Mapping[str, Iterable[str]]) -> CriticalPath:
    """The chain through ``parents`` (restricted to the nodes of ``durations``) with the largest total duration.

    Ties go to the alphabetically first node, so the answer is stable. A cycle (never in dbt's graph) is broken
    where it is found.
    """
    ups = {n: sorted(p for p in parents.get(n, ()) if p in durations and p != n) for n in durations}
    downs: dict[str, list[str]] = defaultdict(list)
    waiting = {n: len(p) for n, p in ups.items()}
    for node, node_ups in ups.items():
        for up in node_ups:
            downs[up].append(node)
    ready = deque(sorted(n for n, count in waiting.items() if count == 0))
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    while len(finish) < len(durations):
        if not ready:  # a cycle: start from the first node not done
            ready.append(min(n for n in durations if n not in finish))
        node = ready.popleft()
        if node in finish:
            continue
        done = [u for u in ups[node] if u in finish]
        best = max(done, key=lambda u: finish[u], default=None)
        finish[node] = durations[node] + (finish[best] if best else 0.0)
        via[node] = best
        for down in sorted(downs[node]):
            waiting[down] -= 1
            if waiting[down] == 0:
                ready.append(down)
    if not finish:
        return CriticalPath((), 0.0)
    end = max(sorted(finish), key=lambda n: finish[n])
    chain = [end]
    while (previous := via[chain[-1]]) is not None:
        chain.append(previous)
    return CriticalPath(tuple(reversed(chain)), finish[end])


def critical_path(durations: Mapping[str, float], manifest: Mapping[str, Any], *, build: bool) -> CriticalPath:
    """The critical path of the nodes in ``durations`` (unique_id -> seconds) under ``manifest``'s graph;
    ``build``: the run was a ``dbt build`` (tests gate their children)."""
    parents = manifest_parents(manifest)
    if build:
        parents = build_edges(manifest, parents)
    return longest_path(durations, run_graph(parents, durations))
