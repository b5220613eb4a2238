"""`.env` in the working directory, loaded into `os.environ` once by each entry point.

The entry points are the `event-importer` command, the API application, the Dagster code location and
the Celery worker. Settings read the environment only, so a value in `.env` and one exported in the
shell take the same path: to the settings of the process, to the `dg.EnvVar`s Dagster resolves, and to
the code server and run processes, which inherit the environment. A variable already set wins over
`.env`.
"""

from pathlib import Path

from dotenv import load_dotenv

from event_importer.settings import ENV_FILE


def load_env_file(path: str | Path = ENV_FILE) -> None:
    """Load `.env` (default: in the working directory) into `os.environ`, never overriding what is set."""
    load_dotenv(path, override=False)
