"""Engines and sessions for the event cache, on SQLite (the default) or PostgreSQL.

The schema is created on first use. `create_all` only ever adds missing tables (with their indexes);
columns a newer model adds to an existing table are added at start too when the rows there can take
them (nullable, or with a server default). Other schema changes are to be shipped as Alembic
revisions (see the README's "Schema changes").
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.schema import CreateColumn

from event_importer import jsonbytes
from event_importer.db.models import Base
from event_importer.errors import ConfigurationError
from event_importer.settings import get_settings

# Several runs (CLI, schedule, API) may write at once: wait for the lock rather than fail.
SQLITE_BUSY_TIMEOUT_S = 60


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (the UI, the sensors) go on while a run writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.close()


def _json_text(value: Any) -> str:
    return jsonbytes.dumps(value).decode()


# The JSON columns (event data, recorded answers) are written and read once per event: orjson's speed.
_JSON = {"json_serializer": _json_text, "json_deserializer": jsonbytes.loads}


def create_db_engine(url: str) -> Engine:
    """An engine for `url`, with SQLite tuned for several writers and its folder created."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError("EVENT_IMPORTER_DATABASE_URL: not a valid database URL") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}, **_JSON
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            # The maintained driver, installed by the `postgres` extra.
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, **_JSON)
    raise ConfigurationError("EVENT_IMPORTER_DATABASE_URL: only sqlite and postgresql databases are supported")


def add_missing_columns(engine: Engine, metadata: MetaData = Base.metadata) -> None:
    """Add the columns of the model that an existing table lacks, and the indexes on them.

    `create_all` creates missing tables only, so a database made by an older version would otherwise
    lack them. Only columns the rows already there can take: nullable, or with a server default.
    """
    inspector = inspect(engine)
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        missing = [column for column in table.columns if column.name not in present]
        if not missing:
            continue
        # Checked before anything is altered: the table may be another program's of the same name.
        for column in missing:
            if not column.nullable and column.server_default is None:
                raise ConfigurationError(
                    f"the database's table {table.name} lacks the column {column.name}: it is another "
                    "program's table of that name, or needs a schema migration"
                )
        for column in missing:
            specification = CreateColumn(column).compile(dialect=engine.dialect)
            try:
                with engine.begin() as connection:
                    connection.exec_driver_sql(
                        f"ALTER TABLE {engine.dialect.identifier_preparer.format_table(table)} "
                        f"ADD COLUMN {specification}"
                    )
            except DBAPIError:
                # Another process starting at the same moment may have added it first.
                if column.name not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
                    raise
        added = {column.name for column in missing}
        for index in table.indexes:
            if added & {column.name for column in index.columns}:
                try:
                    with engine.begin() as connection:
                        index.create(connection, checkfirst=True)
                except DBAPIError:
                    if index.name not in {i["name"] for i in inspect(engine).get_indexes(table.name)}:
                        raise


class Database:
    """One engine and session factory per database URL, with the schema created on first use."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_db_engine(url)
        try:
            Base.metadata.create_all(self.engine)
            add_missing_columns(self.engine)
        except DBAPIError as exc:
            self.engine.dispose()
            where = make_url(url).render_as_string(hide_password=True)
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            raise ConfigurationError(
                f"EVENT_IMPORTER_DATABASE_URL: cannot use the database {where}: {reason}"
            ) from None
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits when the block ends and rolls back on error."""
        with self.sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


_databases: dict[str, Database] = {}
_lock = threading.Lock()


def get_database(url: str) -> Database:
    """The process-wide `Database` for `url`."""
    with _lock:
        if url not in _databases:
            _databases[url] = Database(url)
        return _databases[url]


def configured_database() -> Database:
    """The process-wide `Database` of the settings' event cache (`EVENT_IMPORTER_DATABASE_URL`)."""
    return get_database(get_settings().resolved_database_url)
