"""The rest of the project uses the Dagster layer through `event_importer.orchestration`'s public names
(its `__all__`), never through the modules behind them, so those can move as the layer changes."""

import ast
from pathlib import Path

import event_importer
import event_importer.orchestration as orchestration

PACKAGE = Path(event_importer.__file__).parent
# The builder's own modules, and the definitions folder it serves.
INSIDE = (PACKAGE / "orchestration", PACKAGE / "defs")


def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
    return found


def test_modules_outside_the_layer_import_only_its_public_names():
    outside = [p for p in PACKAGE.rglob("*.py") if not any(p.is_relative_to(folder) for folder in INSIDE)]
    assert PACKAGE / "runs.py" in outside
    wrong = []
    for path in outside:
        for module, names in imports_of(path):
            if module.startswith("event_importer.orchestration."):
                wrong.append(f"{path.relative_to(PACKAGE)}: {module}")
            elif module == "event_importer.orchestration":
                wrong += [f"{path.relative_to(PACKAGE)}: {name}" for name in names if name not in orchestration.__all__]
    assert wrong == []


def test_every_public_name_exists():
    assert sorted(orchestration.__all__) == sorted(set(orchestration.__all__))
    assert all(hasattr(orchestration, name) for name in orchestration.__all__)
