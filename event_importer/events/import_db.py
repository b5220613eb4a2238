"""Importing an Event Importer database: its events into the cache, its submissions into the ledger.

The Event Importer keeps a table `events` (`id`, `source_url` unique, `scraped_data`: the EventData as
JSON, `scraped_at`, `data_hash`, `updated_at`) and a table `submissions` (`id`, `event_cache_id` ->
`events.id`, `service_name`, `status` pending/success/failed/retry, `submitted_at`, `response_data`,
`error_message`, `retry_count`, `selection_criteria`, `batch_id`).

Events go through the loader as `events load` input does. Each submission becomes an imported attempt
in the ledger (`ledger.import_attempts`), so the selectors treat what the Event Importer sent as sent
and what failed there as failed. Its statuses map to the ledger's:

- `success` is a success, unless its answer carries an `errors` member: the Event Importer is known to
  store TicketFairy's 422 rejections that way, so that is a failure with the answer's message;
- `failed` is a failure with its error message;
- `pending` and `retry` (or anything else) are failures whose outcome is unknown, so that
  `--selector failed` and `retry-failed` offer them, and nothing sends them unasked.

The source is opened read-only and read as a stream, a chunk of rows at a time.
"""

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote as url_quote

from sqlalchemy import Connection, Engine, create_engine, inspect, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from event_importer.db.engine import Database
from event_importer.db.models import EventCache, SubmissionStatus, utcnow
from event_importer.errors import ConfigurationError
from event_importer.events.jsonstream import InvalidRecord, Record
from event_importer.events.loader import LoadReport, load_events
from event_importer.events.model import normalise_source_url, quote
from event_importer.framework.http import body_error_message
from event_importer.ledger import ImportedAttempt, import_attempts

CHUNK_SIZE = 1000
# How much of a source URL a location shows.
URL_LIMIT = 200
IMPORTED = "imported from the Event Importer"
# The ledger's `service_name` column.
MAX_SERVICE_NAME = 64


@dataclass
class HistoryReport:
    """What became of the source's submissions."""

    # Per service, how many attempts were imported as success and as failed.
    imported: dict[str, Counter[str]] = field(default_factory=dict)
    already_imported: int = 0
    # Attempts left out because this project has attempts of its own for that event and service.
    kept_own: int = 0
    skipped: list[InvalidRecord] = field(default_factory=list)

    @property
    def imported_total(self) -> int:
        return sum(sum(c.values()) for c in self.imported.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "imported": self.imported_total,
            "by_service": {name: dict(counts) for name, counts in sorted(self.imported.items())},
            "already_imported": self.already_imported,
            "kept_own": self.kept_own,
            "skipped": [{"location": s.location, "reason": s.reason} for s in self.skipped],
        }


@dataclass
class ImportReport:
    events: LoadReport
    history: HistoryReport


def import_database(database: Database, source_url: str) -> ImportReport:
    """Import the Event Importer database at `source_url` into `database`: events first, then history.

    Raises:
        ConfigurationError: the source cannot be opened or is not an Event Importer database.
    """
    engine = open_source(source_url)
    where = make_url(source_url).render_as_string(hide_password=True)
    try:
        tables = set(inspect(engine).get_table_names())
        if "events" not in tables:
            raise ConfigurationError(f"{where} is not an Event Importer database: it has no table 'events'")
        with engine.connect() as connection:
            events = load_events(database, _event_records(connection, where))
        history = HistoryReport()
        if "submissions" in tables:
            with engine.connect() as connection:
                _import_history(database, connection, where, history)
        return ImportReport(events, history)
    finally:
        engine.dispose()


def open_source(url: str) -> Engine:
    """A read-only engine on an Event Importer database (SQLite or PostgreSQL); nothing is created or changed."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError("DATABASE_URL: not a valid database URL (e.g. sqlite:///events.db)") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(_sqlite_read_only(parsed))
    elif backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        try:
            engine = create_engine(parsed, execution_options={"postgresql_readonly": True})
        except ImportError as exc:
            raise ConfigurationError(
                f"DATABASE_URL: the driver for {parsed.drivername} is not installed ({exc.name}); "
                "postgresql:// uses psycopg: pip install -e '.[postgres]'"
            ) from None
    else:
        raise ConfigurationError("DATABASE_URL: only sqlite and postgresql databases can be imported")
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        engine.dispose()
        where = parsed.render_as_string(hide_password=True)
        raise ConfigurationError(f"cannot open the Event Importer database {where}: {_reason(exc)}") from None
    return engine


def _sqlite_read_only(url: URL) -> URL:
    path = url.database or ""
    if not path or path == ":memory:" or path.startswith("file:"):
        raise ConfigurationError("DATABASE_URL: give the path of the Event Importer's SQLite file")
    if not Path(path).is_file():
        raise ConfigurationError(f"DATABASE_URL: no such file: {path}")
    # mode=ro: SQLite then neither creates the file nor writes to it (not even a journal mode change).
    return url.set(database=f"file:{url_quote(str(Path(path).resolve()))}", query={"mode": "ro", "uri": "true"})


def _reason(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig and str(exc.orig).strip() else type(exc).__name__


def _stream(connection: Connection, where: str, statement: str) -> Iterator[Any]:
    """The rows of `statement` on the source, fetched a chunk at a time.

    Raises:
        ConfigurationError: the source cannot be read (a missing column, a lost connection); errors
            of this project's own database, written while the rows are consumed, pass as they are.
    """
    try:
        result = connection.execution_options(stream_results=True, yield_per=CHUNK_SIZE).execute(text(statement))
        yield from result
    except DBAPIError as exc:
        raise ConfigurationError(f"cannot read the Event Importer database {where}: {_reason(exc)}") from None


def _shown_url(value: object) -> str:
    text_ = str(value)
    return text_ if len(text_) <= URL_LIMIT else text_[: URL_LIMIT - 1] + "…"


def _event_records(connection: Connection, where: str) -> Iterator[Record | InvalidRecord]:
    """Each row of `events` as a loader record, located by its id and source_url."""
    rows = _stream(connection, where, "SELECT id, source_url, scraped_data FROM events ORDER BY id")
    for source_id, source_url, raw in rows:
        location = f"events id={source_id} source_url={_shown_url(source_url)}"
        try:
            data = _json(raw)
        except ValueError as exc:
            yield InvalidRecord(location, f"scraped_data is not valid JSON: {exc}")
            continue
        if isinstance(data, dict) and source_url:
            # The row's source_url is the event's key there, and what its submissions refer to.
            data = {**data, "source_url": source_url}
        yield location, data


def _json(raw: Any) -> Any:
    """A JSON column's value: PostgreSQL's json types arrive parsed, SQLite's as text."""
    if isinstance(raw, bytes | bytearray | memoryview):
        raw = bytes(raw).decode("utf-8")
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except RecursionError:
            raise ValueError("nested too deeply") from None
    return raw


def _import_history(database: Database, connection: Connection, where: str, report: HistoryReport) -> None:
    rows = _stream(
        connection,
        where,
        "SELECT s.id, s.event_cache_id, s.service_name, s.status, s.submitted_at, s.response_data,"
        " s.error_message, e.source_url"
        " FROM submissions s LEFT JOIN events e ON e.id = s.event_cache_id ORDER BY s.id",
    )
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK_SIZE:
            _import_chunk(database, chunk, report)
            chunk = []
    if chunk:
        _import_chunk(database, chunk, report)


def _import_chunk(database: Database, rows: list[Any], report: HistoryReport) -> None:
    urls = {_cache_key(row.source_url) for row in rows if row.source_url}
    with database.session() as session:
        cached = dict(
            session.execute(select(EventCache.source_url, EventCache.id).where(EventCache.source_url.in_(urls))).all()
        )
    attempts = []
    for row in rows:
        location = f"submissions id={row.id} (events id={row.event_cache_id})"
        service = (row.service_name or "").strip()
        event_id = cached.get(_cache_key(row.source_url)) if row.source_url else None
        if row.source_url is None:
            report.skipped.append(InvalidRecord(location, "its event is not in the events table"))
        elif event_id is None:
            report.skipped.append(InvalidRecord(location, "its event was not imported (see the event's error)"))
        elif not service or len(service) > MAX_SERVICE_NAME:
            report.skipped.append(InvalidRecord(location, f"not a service name: {quote(row.service_name)}"))
        else:
            attempts.append(_attempt(row, event_id, service))
    counts = import_attempts(database, attempts)
    for attempt in counts.imported:
        report.imported.setdefault(attempt.service_name, Counter())[attempt.status.value] += 1
    report.already_imported += counts.already_imported
    report.kept_own += len(counts.kept_own)


def _cache_key(source_url: str) -> str:
    """The key the loader stores an event under: its source_url as the model validates it."""
    return normalise_source_url(source_url.strip())


def _attempt(row: Any, event_id: int, service: str) -> ImportedAttempt:
    """One source submission as a ledger attempt, by the status mapping in the module docstring."""
    try:
        answer = _json(row.response_data)
    except ValueError:
        answer = None
    response = answer if isinstance(answer, dict) or answer is None else {"response": answer}
    status, error = _outcome(row.status, row.error_message, response)
    return ImportedAttempt(
        source_id=row.id,
        event_id=event_id,
        service_name=service,
        status=status,
        at=_timestamp(row.submitted_at),
        response=response,
        error=error,
    )


def _outcome(
    status: Any, error_message: Any, response: dict[str, Any] | None
) -> tuple[SubmissionStatus, str | None]:
    # Any case: a SQLAlchemy Enum column stores the member's name, which may be upper case.
    name = str(status or "").strip().lower()
    if name == "success":
        errors = response.get("errors") if response else None
        if not errors:
            return SubmissionStatus.SUCCESS, None
        # Not one of the shapes the HTTP client knows: the member itself, shortened the same way.
        message = body_error_message(response) or body_error_message(json.dumps(errors, ensure_ascii=False))
        return SubmissionStatus.FAILED, f"{IMPORTED}: recorded there as success, but its answer has errors: {message}"
    if name == "failed":
        reason = body_error_message(str(error_message or "")) or "no error message recorded"
        return SubmissionStatus.FAILED, f"{IMPORTED}: {reason}"
    return (
        SubmissionStatus.FAILED,
        f"outcome unknown: {IMPORTED} with status {quote(status)}; the destination may or may not have received it",
    )


def _timestamp(value: Any) -> dt.datetime:
    """`submitted_at` as an aware datetime (naive ones are UTC); now when missing or unreadable."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            value = None
    if not isinstance(value, dt.datetime):
        return utcnow()
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
