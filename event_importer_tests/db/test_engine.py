"""The schema on an existing database: columns added since are added at start; a foreign table is left alone."""

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, inspect, text

from event_importer.db.engine import Database, add_missing_columns
from event_importer.errors import ConfigurationError
from event_importer_tests.events.test_import_db import SQLITE_DDL


def test_a_database_without_a_newer_nullable_column_gets_it_and_its_index(database_url):
    old = Database(database_url)
    with old.engine.begin() as connection:
        # As a database created before attempts could be imported.
        connection.execute(text("DROP INDEX uq_submissions_imported"))
        connection.execute(text("ALTER TABLE submissions DROP COLUMN imported_id"))
    old.dispose()

    upgraded = Database(database_url)
    schema = inspect(upgraded.engine)
    assert "imported_id" in {c["name"] for c in schema.get_columns("submissions")}
    assert "uq_submissions_imported" in {i["name"] for i in schema.get_indexes("submissions")}
    Database(database_url).dispose()  # and a second start finds nothing to do
    upgraded.dispose()


def test_another_programs_table_of_the_same_name_is_refused_untouched(tmp_path):
    url = f"sqlite:///{tmp_path / 'event-importer.sqlite'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        for statement in SQLITE_DDL:  # the Event Importer's own `submissions` table
            connection.execute(text(statement))
    with pytest.raises(ConfigurationError, match="submissions lacks the column attempt: it is another program's"):
        Database(url)
    assert "imported_id" not in {c["name"] for c in inspect(engine).get_columns("submissions")}
    engine.dispose()


def test_a_column_with_a_server_default_is_added_with_its_value_for_the_rows_there(database_url):
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS gadgets"))
        connection.execute(text("CREATE TABLE gadgets (id INTEGER PRIMARY KEY)"))
        connection.execute(text("INSERT INTO gadgets (id) VALUES (1)"))
    newer = MetaData()
    Table("gadgets", newer, Column("id", Integer, primary_key=True),
          Column("state", String(16), nullable=False, server_default="active"))
    add_missing_columns(engine, newer)
    with engine.begin() as connection:
        assert connection.execute(text("SELECT state FROM gadgets")).scalar_one() == "active"
        connection.execute(text("DROP TABLE gadgets"))
    engine.dispose()
