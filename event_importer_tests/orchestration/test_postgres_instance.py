"""Dagster's own storage (runs, event logs, schedules) on PostgreSQL: with
EVENT_IMPORTER_DAGSTER_POSTGRES_URL set when the instance is created, runs land in PostgreSQL and the
instance's dagster.yaml names the variable, never the URL."""

import dagster as dg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from event_importer.instance import POSTGRES_STORAGE_ENV
from event_importer.runs import submit_through_dagster
from event_importer_tests.factories import add_events, event_data


@pytest.mark.postgres
def test_runs_are_stored_in_postgres(dagster_postgres_url, cache_db, monkeypatch, tmp_path):
    monkeypatch.setenv(POSTGRES_STORAGE_ENV, dagster_postgres_url)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "pg-instance"))
    add_events(cache_db, event_data(), event_data())

    summary = submit_through_dagster("ticketfairy", dry_run=True, trigger="cli")

    assert summary.success and summary.counts["dry_run"] == 2
    config = (tmp_path / "pg-instance" / "dagster.yaml").read_text()
    assert POSTGRES_STORAGE_ENV in config and dagster_postgres_url not in config
    engine = create_engine(make_url(dagster_postgres_url).set(drivername="postgresql+psycopg"))
    with engine.connect() as connection:
        stored = connection.execute(text("select run_id from runs")).scalars().all()
    engine.dispose()
    assert stored == [summary.run_id]
    with dg.DagsterInstance.get() as instance:
        assert instance.get_run_by_id(summary.run_id).tags["event-importer/trigger"] == "cli"
