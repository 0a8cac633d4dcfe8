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
