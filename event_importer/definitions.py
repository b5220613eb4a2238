"""The Dagster code location: the definitions in `event_importer/defs/`, loaded as Dagster's project layout does.

`workspace.yaml` loads the attribute `defs`; `dagster dev -m event_importer.definitions` (and the
`[tool.dagster]` table) find the `@dg.definitions` function `load_definitions`, which returns the same
object. `dg.load_from_defs_folder` finds the project through `[tool.dg]` in `pyproject.toml`. Either
way the definitions are built on first use, not at import, so importing this module touches no
database, network or environment value; building reads the integrations' settings (selector names,
schedule) and checks only whether secret variables are *set*, to bind them as `dg.EnvVar`s (see
`event_importer.orchestration.resources`).
"""

from pathlib import Path
from typing import Any

import dagster as dg

_built: dict[str, dg.Definitions] = {}


@dg.definitions
def load_definitions() -> dg.Definitions:
    """The project's definitions, built once per process."""
    if "defs" not in _built:
        _built["defs"] = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    return _built["defs"]


def __getattr__(name: str) -> Any:
    if name == "defs":
        return load_definitions()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
