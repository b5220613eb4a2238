"""The Dagster code location: `defs`, built from the discovered integrations.

`workspace.yaml` loads the attribute `defs`; `dagster dev -m event_importer.definitions` (and the
`[tool.dagster]` table) find the `@dg.definitions` function `load_definitions`, which returns the same
object. Either way it is built on first use, not at import, so importing this module touches no
database, network or environment value; building loads `.env` into the environment (a code server
started on its own has not), reads the integrations' settings (selector names, schedule) and checks
only whether secret variables are *set*, to bind them as `dg.EnvVar`s (see `defs/resources.py`).
"""

from typing import Any

import dagster as dg

from event_importer.defs import build_defs
from event_importer.environment import load_env_file

_built: dict[str, dg.Definitions] = {}


@dg.definitions
def load_definitions() -> dg.Definitions:
    """The project's definitions, built once per process."""
    if "defs" not in _built:
        load_env_file()
        _built["defs"] = build_defs()
    return _built["defs"]


def __getattr__(name: str) -> Any:
    if name == "defs":
        return load_definitions()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
