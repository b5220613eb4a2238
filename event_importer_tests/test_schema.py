"""A database created by an older version gains the nullable columns added since, on SQLite and
PostgreSQL, keeping its rows."""

from sqlalchemy import create_engine, inspect, text

from event_importer.db.engine import Database


def test_an_existing_submissions_table_gains_the_failure_kind_column(database_url):
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE submissions (id INTEGER PRIMARY KEY, event_cache_id INTEGER, service_name VARCHAR(64),"
                " status VARCHAR(16), attempt INTEGER, data_hash VARCHAR(64), run_id VARCHAR(64),"
                " claimed_by VARCHAR(255), created_at TIMESTAMP, finished_at TIMESTAMP, http_status INTEGER,"
                " response TEXT, error TEXT)"
            )
        )
        connection.execute(
            text("INSERT INTO submissions (id, service_name, status, data_hash) VALUES (1, 'x', 'failed', 'h')")
        )
    engine.dispose()

    database = Database(database_url)
    try:
        columns = {c["name"] for c in inspect(database.engine).get_columns("submissions")}
        assert "failure_kind" in columns
        with database.engine.connect() as connection:
            assert connection.execute(text("SELECT status, failure_kind FROM submissions")).all() == [("failed", None)]
        Database(database_url).dispose()  # a second start finds nothing to add
    finally:
        database.dispose()
