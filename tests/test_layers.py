"""The layers import one way: the SDK bootstrap and the shared machinery know no task library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "tasklens"

#: What each layer may import of tasklens (besides itself) and of the task libraries.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "telemetry": ("tasklens.dramatiq", "tasklens.celery", "tasklens.libraries", "dramatiq", "celery"),
    "messaging": ("tasklens.dramatiq", "tasklens.celery", "tasklens.telemetry", "dramatiq", "celery"),
    "semconv.py": ("tasklens.", "dramatiq", "celery", "opentelemetry.sdk"),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_nothing_above_it(layer: str) -> None:
    target = SOURCE / layer
    files = [target] if target.is_file() else sorted(target.rglob("*.py"))
    assert files
    offending = {
        f"{path.relative_to(SOURCE)} imports {name}"
        for path in files
        for name in _imports(path)
        if any(
            name == banned.rstrip(".") or name.startswith(banned.rstrip(".") + ".")
            for banned in FORBIDDEN[layer]
        )
    }
    assert not offending, sorted(offending)


# -- Inside the monitor ---------------------------------------------------------------------------

MONITOR = "tasklens.monitor"

#: What each part of the monitor may import of the monitor's other parts. ``settings`` is the
#: monitor's one settings object; ``http`` (the HTTP surface) may import every part, and nothing
#: imports it back.
MONITOR_PARTS: dict[str, frozenset[str]] = {
    "store": frozenset(),
    "watch": frozenset({"store", "settings"}),
    "ingest": frozenset({"store", "watch", "settings"}),
    "alerts": frozenset({"store", "watch", "ingest", "settings"}),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_level_imports(statements: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """The imports a module runs or names at module level: inside ``if`` (``TYPE_CHECKING``
    included: a cycle through a type is still a cycle) and ``try``, not inside functions."""
    found: list[ast.Import | ast.ImportFrom] = []
    for statement in statements:
        if isinstance(statement, ast.Import | ast.ImportFrom):
            found.append(statement)
        elif isinstance(statement, ast.If):
            found += _module_level_imports(statement.body) + _module_level_imports(statement.orelse)
        elif isinstance(statement, ast.Try):
            for block in (statement.body, statement.orelse, statement.finalbody):
                found += _module_level_imports(block)
            for handler in statement.handlers:
                found += _module_level_imports(handler.body)
    return found


def monitor_graph() -> dict[str, set[str]]:
    """Every module of ``tasklens.monitor`` and the modules of it that it imports, relative imports
    resolved; ``from package import name`` counts as importing the submodule when there is one."""
    paths = {_module_name(path): path for path in sorted((SOURCE / "monitor").rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported: set[str] = set()
        for node in _module_level_imports(ast.parse(path.read_text(), str(path)).body):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
                continue
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                imported.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in paths else base)
        graph[name] = {module for module in imported if module in paths and module != name}
    return graph


def _part(module: str) -> str:
    """``store``, ``watch``, ``ingest``, ``http``, ``alerts``, ``settings``; ``""`` for the
    ``tasklens.monitor`` package itself (which imports the HTTP surface)."""
    return module.removeprefix(MONITOR).lstrip(".").partition(".")[0]


def test_monitor_graph_sees_imports() -> None:
    graph = monitor_graph()
    assert f"{MONITOR}.store.rows" in graph[f"{MONITOR}.ingest.receiver"]
    assert f"{MONITOR}.alerts.config" in graph[f"{MONITOR}.settings"]  # under TYPE_CHECKING


@pytest.mark.parametrize("part", sorted(MONITOR_PARTS))
def test_monitor_part_imports_only_the_parts_below_it(part: str) -> None:
    graph = monitor_graph()
    modules = [module for module in graph if _part(module) == part]
    assert modules
    offending = sorted(
        f"{module} imports {imported}"
        for module in modules
        for imported in graph[module]
        if _part(imported) != part and _part(imported) not in MONITOR_PARTS[part]
    )
    assert not offending, offending


def test_no_import_cycle_in_the_monitor() -> None:
    graph = monitor_graph()
    done: set[str] = set()
    cycles: list[str] = []

    def visit(module: str, path: list[str]) -> None:
        for imported in sorted(graph[module]):
            if imported in path:
                cycles.append(" -> ".join([*path[path.index(imported) :], imported]))
            elif imported not in done:
                visit(imported, [*path, imported])
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert not cycles, cycles
