"""The package's import graph, read from the source: no cycle, and every import goes to
the same layer or a lower one (docs/architecture.md draws the layers)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "network_anim"

# Lowest first. A module may import its own layer and the layers below, never above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "clock", "domain", "gc_pause"),
    ("db", "config"),
    ("channels", "compose", "routing"),
    ("app",),
    ("network", "outbox"),
    ("planning",),
    ("campaigns", "bounces"),
    ("challenges",),
    ("engine", "reports", "webhooks"),
    ("web",),
    ("demo", "preview"),
    ("daemon",),
    ("cli", "__main__"),
)
LAYER_OF = {top: level for level, tops in enumerate(LAYERS) for top in tops}
# Upward imports being removed (issue 13); the test fails when one is gone and still listed.
KNOWN_UPWARD: set[tuple[str, str]] = set()


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).with_suffix("")
        if "migrations" in relative.parts:
            continue  # Alembic scripts, loaded by Alembic, not imported by the package
        parts = [p for p in relative.parts if p != "__init__"]
        modules[".".join(["network_anim", *parts])] = path
    return modules


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports, at module level or inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        candidates: list[str] = []
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            candidates = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        for candidate in candidates:
            # "import a.b.c" also runs a and a.b: the deepest known module is the target.
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name and candidate != "network_anim":
                found.add(candidate)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYER_OF.get(parts[1]) if len(parts) > 1 else None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(m for m in _graph() if m != "network_anim" and _layer(m) is None)
    assert not unplaced, f"add these to LAYERS (and docs/architecture.md): {unplaced}"


def test_the_import_graph_has_no_cycle() -> None:
    assert _cycles(_graph()) == []


def test_imports_only_go_down() -> None:
    upward = {
        (module, target)
        for module, targets in _graph().items()
        for target in targets
        if (_layer(module) or 0) < (_layer(target) or 0)
    }
    new = sorted(
        f"{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})" for m, t in upward - KNOWN_UPWARD
    )
    assert new == []
    assert upward >= KNOWN_UPWARD, f"fixed, drop from KNOWN_UPWARD: {KNOWN_UPWARD - upward}"


def test_the_checker_sees_cycles_and_upward_imports() -> None:
    graph = {"network_anim.db.a": {"network_anim.db.b"}, "network_anim.db.b": {"network_anim.db.a"}}
    assert _cycles(graph) == [["network_anim.db.a", "network_anim.db.b"]]
    assert _layer("network_anim.db.models") < _layer("network_anim.web.app")  # type: ignore[operator]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "from network_anim.outbox import dispatcher",
            {"network_anim.outbox", "network_anim.outbox.dispatcher"},
        ),
        ("import network_anim.db.models", {"network_anim.db.models"}),
        ("def f():\n    from network_anim.web.app import x", {"network_anim.web.app"}),
        ("from .models import Contact", {"network_anim.db.models"}),
    ],
)
def test_imports_are_read_in_every_form(tmp_path: Path, source: str, expected: set[str]) -> None:
    module = tmp_path / "engine.py"
    module.write_text(source, encoding="utf-8")
    known = {"network_anim.db.engine", "network_anim.db.models", "network_anim.web.app"}
    known |= {"network_anim.outbox", "network_anim.outbox.dispatcher", "network_anim.db"}
    assert _imports("network_anim.db.engine", module, known) == expected
