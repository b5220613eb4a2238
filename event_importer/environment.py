"""`.env` in the working directory, loaded into `os.environ` once by each entry point.

The entry points are the `event-importer` command, the API application, the Dagster code location and
the Celery worker. Settings read the environment only, so a value in `.env` and one exported in the
shell take the same path: to the settings of the process, to the `dg.EnvVar`s Dagster resolves, and to
the code server and run processes, which inherit the environment. A variable already set wins over
`.env`, with one exception that is Dagster's: its code server (and the runs it starts) loads `.env`
from the working directory again, over the environment. A variable set both ways with different
values would then mean one thing to the command and another to its runs, so the entry points name
such variables (`conflict_warning`).
"""

import os
from pathlib import Path

from dotenv import dotenv_values

from event_importer.settings import ENV_FILE


def load_env_file(path: str | Path = ENV_FILE) -> list[str]:
    """Load `.env` (default: in the working directory) into `os.environ`, never overriding what is set.

    Returns the names of the variables already set in the environment with another value than
    `.env` gives them.
    """
    values = {name: value for name, value in dotenv_values(path).items() if value is not None}
    conflicts = sorted(name for name, value in values.items() if os.environ.get(name, value) != value)
    for name, value in values.items():
        os.environ.setdefault(name, value)
    return conflicts


def conflict_warning(names: list[str]) -> str:
    """What to tell the user about variables set differently in the environment and `.env` (names only)."""
    return (
        f"{', '.join(names)} set in the environment and, with another value, in .env: this process uses "
        "the environment's, but Dagster's code server and runs load .env over it; keep one of the two"
    )
