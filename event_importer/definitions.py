"""The Dagster code location: the definitions in `event_importer/defs/`, loaded as Dagster's project layout does.

`workspace.yaml` loads the attribute `defs`; `dagster dev -m event_importer.definitions` (and the
`[tool.dagster]` table) find the `@dg.definitions` function `load_definitions`, which returns the same
object: the `defs/` folder's definitions, loaded as `dg.load_from_defs_folder` loads them. Either way
the definitions are built on first use, not at import, so importing this module touches no
database, network or environment value; building loads `.env` into the environment (a code server
started on its own has not), reads the integrations' settings (selector names, schedule) and checks
only whether secret variables are *set*, to bind them as `dg.EnvVar`s (see
`event_importer.orchestration.resources`).
"""

import warnings
from pathlib import Path
from typing import Any

import dagster as dg

import event_importer.defs
from event_importer.environment import load_env_file

_built: dict[str, dg.Definitions] = {}


@dg.definitions
def load_definitions() -> dg.Definitions:
    """The project's definitions, built once per process."""
    if "defs" not in _built:
        load_env_file()
        _built["defs"] = load_defs_folder()
    return _built["defs"]


def load_defs_folder() -> dg.Definitions:
    """The definitions in `event_importer/defs/`, as Dagster's project layout loads them.

    `dg.load_from_defs_folder` builds this same component tree, but finds the folder through the
    project's `pyproject.toml` (`[tool.dg]`), which an installed package (the deploy image) does not
    have; the tree is built here from the module itself, wherever it is installed. Like
    `load_from_defs_folder`, it silences the preview warning of the module loader Dagster uses inside.
    """
    project_root = Path(event_importer.defs.__file__).parents[2]
    tree = dg.ComponentTree.from_module(defs_module=event_importer.defs, project_root=project_root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return tree.build_defs()


def __getattr__(name: str) -> Any:
    if name == "defs":
        return load_definitions()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
