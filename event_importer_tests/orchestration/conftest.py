"""Fixtures for the Dagster layer: a temporary instance, the event cache the runs use, and TicketFairy
pointed at the loopback stand-in server.

The top-level conftest already gives each test its own EVENT_IMPORTER_HOME and working directory and
clears the developer's settings (EVENT_IMPORTER_*, DAGSTER_HOME and each discovered integration's prefix).
"""

import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from event_importer.db.engine import Database, get_database
from event_importer.settings import get_settings
from event_importer_tests.conftest import TEST_API_KEY, reset_process_state

SERVICE = "ticketfairy"


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DAGSTER_HOME of the test's own, restored afterwards (code under test sets os.environ directly)."""
    from event_importer.instance import ensure_dagster_home

    home = tmp_path / "dagster-home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    ensure_dagster_home()
    return home


@pytest.fixture
def instance(dagster_home: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.get() as dagster_instance:
        yield dagster_instance


@pytest.fixture
def cache_db() -> Database:
    """The event cache the runs use: the default SQLite file under the test's EVENT_IMPORTER_HOME."""
    return get_database(get_settings().resolved_database_url)


@pytest.fixture
def ticketfairy_env(stand_in, monkeypatch: pytest.MonkeyPatch):
    """TicketFairy configured against the stand-in, with the API key set."""
    monkeypatch.setenv("TICKETFAIRY_API_URL", stand_in.url)
    monkeypatch.setenv("TICKETFAIRY_API_KEY", TEST_API_KEY)
    # No retries and no waiting: a fault is final, so tests stay fast and deterministic.
    monkeypatch.setenv("TICKETFAIRY_MAX_ATTEMPTS", "1")
    reset_process_state()
    return stand_in


@pytest.fixture
def ticketfairy_no_key(stand_in, monkeypatch: pytest.MonkeyPatch):
    """TicketFairy pointed at the stand-in, with no API key anywhere."""
    monkeypatch.setenv("TICKETFAIRY_API_URL", stand_in.url)
    monkeypatch.delenv("TICKETFAIRY_API_KEY", raising=False)
    assert "TICKETFAIRY_API_KEY" not in os.environ
    return stand_in


def files_containing(root: Path, needle: str) -> list[Path]:
    """Every file under `root` whose bytes contain `needle` (SQLite files included)."""
    data = needle.encode()
    return [path for path in root.rglob("*") if path.is_file() and data in path.read_bytes()]


@pytest.fixture
def event_db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Database:
    """The event cache on SQLite and on PostgreSQL (where reachable), as the runs will find it."""
    monkeypatch.setenv("EVENT_IMPORTER_DATABASE_URL", database_url)
    reset_process_state()
    return get_database(database_url)
