"""The schema on a database created by an older version: columns added since are added at start."""

from sqlalchemy import inspect, text

from event_importer.db.engine import Database


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
