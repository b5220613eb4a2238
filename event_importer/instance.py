"""The project's Dagster instance, shared by the CLI, the API and the UI.

`prepare_environment()` loads `.env` into `os.environ` (`event_importer.environment`), then makes
`DAGSTER_HOME` default to `<EVENT_IMPORTER_HOME>/dagster` when it is unset, creating the folder with a
`dagster.yaml` that turns telemetry off and lets the run queue start at most one run per integration at
a time (and keeps Dagster's storage in PostgreSQL when `EVENT_IMPORTER_DAGSTER_POSTGRES_URL` is set).
So every way in records its runs in one run history without any setup.

`open_instance()` opens it. The first process to open a new instance creates its storage under a
file lock, and processes starting at the same moment wait for it: two creating Dagster's SQLite
storage at once fail with `UNIQUE constraint failed: alembic_version.version_num`.
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from event_importer.environment import load_env_file
from event_importer.settings import get_settings

DAGSTER_HOME_ENV = "DAGSTER_HOME"

# Every run (UI, schedule, sensor, CLI, API) goes through this queue. One run per lane at a time: a
# lane is an integration and a shard (`event_importer.orchestration.config.lane`), so the shards of one
# submission run side by side while two submissions of one integration take turns, shard by shard.
DAGSTER_YAML = """\
# Written by event-importer when it created this instance; edit freely, it is not overwritten.
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      - key: event-importer/lane
        value:
          applyLimitPerUniqueValue: true
        limit: 1
"""


# Dagster's run, event-log and schedule storage on PostgreSQL, when this variable is set at the
# instance's creation. The file names the variable, so the URL (and its password) never lands on disk.
POSTGRES_STORAGE_ENV = "EVENT_IMPORTER_DAGSTER_POSTGRES_URL"
POSTGRES_STORAGE_YAML = f"""\
storage:
  postgres:
    postgres_url:
      env: {POSTGRES_STORAGE_ENV}
"""


# Runs executed by Celery workers on any host (`event_importer.workers`), when the broker is set at the
# instance's creation. The file names the variable: the broker's password never lands on disk.
CELERY_BROKER_ENV = "EVENT_IMPORTER_CELERY_BROKER_URL"
CELERY_QUEUE_ENV = "EVENT_IMPORTER_CELERY_QUEUE"


def celery_launcher_yaml(queue: str) -> str:
    return f"""\
run_launcher:
  module: dagster_celery.launcher
  class: CeleryRunLauncher
  config:
    broker:
      env: {CELERY_BROKER_ENV}
    default_queue: {queue}
"""


def dagster_home() -> Path:
    """The instance folder: `DAGSTER_HOME` when set, else `<EVENT_IMPORTER_HOME>/dagster`."""
    configured = os.environ.get(DAGSTER_HOME_ENV)
    return Path(configured).expanduser().resolve() if configured else get_settings().dagster_home


def ensure_dagster_home() -> Path:
    """Set `DAGSTER_HOME` (when unset) and create the folder and its `dagster.yaml` (when missing).

    An existing `dagster.yaml` is left as it is.
    """
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        storage = POSTGRES_STORAGE_YAML if os.environ.get(POSTGRES_STORAGE_ENV) else ""
        launcher = ""
        if os.environ.get(CELERY_BROKER_ENV):
            launcher = celery_launcher_yaml(os.environ.get(CELERY_QUEUE_ENV) or "event-importer")
        config.write_text(DAGSTER_YAML + storage + launcher, encoding="utf-8")
    os.environ[DAGSTER_HOME_ENV] = str(home)
    return home


# Marks an instance whose storage exists, so later processes skip the lock.
CREATED_MARKER = ".event-importer-created"


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created when missing), waiting for other processes to let go."""
    with open(path, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def open_instance() -> Iterator[dg.DagsterInstance]:
    """The project's Dagster instance (environment prepared), its storage created once across processes."""
    home = prepare_environment()
    if (home / CREATED_MARKER).exists():
        with dg.DagsterInstance.get() as instance:
            yield instance
        return
    with file_lock(home / ".instance.lock"):
        instance = dg.DagsterInstance.get()
        # The storages create their tables when first used, not all on construction.
        instance.get_runs_count()
        instance.get_daemon_heartbeats()
        instance.all_instigator_state()
        (home / CREATED_MARKER).touch()
    with instance:
        yield instance


def prepare_environment() -> Path:
    """`.env` loaded and the instance folder ready; returns the folder."""
    load_env_file()
    return ensure_dagster_home()
