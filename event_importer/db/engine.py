"""Engines and sessions for the event cache, on SQLite (the default) or PostgreSQL.

The schema is created on first use. Later schema changes are to be shipped as Alembic revisions
(see the README's "Schema changes"); `create_all` only ever adds missing tables and indexes, and
`add_missing_columns` the columns added to existing tables since.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from event_importer import jsonbytes
from event_importer.db.columns import add_missing_columns
from event_importer.db.models import Base
from event_importer.errors import ConfigurationError

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
