"""Loading events into the cache from JSON, JSON arrays and JSON Lines, upserting by `source_url`.

A bad record never stops the good ones: each is reported with where it is (file and line, or
array index) and why, and the rest load. Records are validated as `EventData` and written a chunk
at a time.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import insert, select, update

from event_importer.db.engine import Database
from event_importer.db.models import EventCache, utcnow
from event_importer.events.model import EventData, describe_validation_error
from event_importer.events.restore import restore_loaded

CHUNK_SIZE = 1000
SAMPLES = "sample_events.json"
TOO_DEEP = "not valid JSON: nested too deeply to be an event"


def data_hash(data: dict[str, Any]) -> str:
    """SHA-256 of the event's canonical JSON, leaving out when it was imported (not a change)."""
    content = {k: v for k, v in data.items() if k != "imported_at"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class InvalidRecord:
    location: str
    reason: str

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}"


@dataclass
class LoadReport:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: list[InvalidRecord] = field(default_factory=list)
    # Loaded again after their removal from the source; removed by a mirror load (events.removal).
    restored: int = 0
    removed: int = 0

    @property
    def counts(self) -> dict[str, int]:
        return {
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "invalid": len(self.invalid),
            "restored": self.restored,
            "removed": self.removed,
        }


Record = tuple[str, Any]


def read_records(path: Path) -> Iterator[Record | InvalidRecord]:
    """Each record of a JSON object, JSON array or JSON Lines file, with its location."""
    name = str(path)
    try:
        # utf-8-sig: files saved by spreadsheet tools and Windows editors start with a byte order mark.
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        yield InvalidRecord(name, f"cannot read file: {exc}")
        return
    yield from parse_records(text, name)


def parse_records(text: str, name: str) -> Iterator[Record | InvalidRecord]:
    """Records from text holding one JSON value or JSON Lines; `name` prefixes each location."""
    text = text.removeprefix("\ufeff")
    stripped = text.lstrip()
    if not stripped:
        yield InvalidRecord(name, "no events: the file is empty")
        return
    if stripped[0] == "[":
        try:
            array = json.loads(text)
        except json.JSONDecodeError as exc:
            yield InvalidRecord(f"{name}:{exc.lineno}", f"not valid JSON: {exc.msg} (column {exc.colno})")
            return
        except RecursionError:
            yield InvalidRecord(name, TOO_DEEP)
            return
        for index, item in enumerate(array):
            yield f"{name}[{index}]", item
        return
    try:
        single = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        yield from _json_lines(text, name)
        return
    yield name, single


def _json_lines(text: str, name: str) -> Iterator[Record | InvalidRecord]:
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield f"{name}:{lineno}", json.loads(line)
        except json.JSONDecodeError as exc:
            yield InvalidRecord(f"{name}:{lineno}", f"not valid JSON: {exc.msg} (column {exc.colno})")
        except RecursionError:
            yield InvalidRecord(f"{name}:{lineno}", TOO_DEEP)


def validate_record(location: str, value: Any) -> EventData | InvalidRecord:
    if not isinstance(value, dict):
        return InvalidRecord(location, f"an event must be a JSON object, got {type(value).__name__}")
    try:
        return EventData.model_validate(value)
    except ValidationError as exc:
        return InvalidRecord(location, describe_validation_error(exc))


def load_events(database: Database, records: Iterable[Record | InvalidRecord]) -> LoadReport:
    """Validate and upsert records, a chunk per transaction; report what happened to each."""
    report = LoadReport()
    chunk: dict[str, dict[str, Any]] = {}
    for record in records:
        checked = record if isinstance(record, InvalidRecord) else validate_record(*record)
        if isinstance(checked, InvalidRecord):
            report.invalid.append(checked)
            continue
        if checked.imported_at is None:
            checked.imported_at = dt.datetime.now(dt.UTC)
        if checked.source_url in chunk:
            # The same event twice in one chunk: the later one wins, as it would across chunks.
            _upsert(database, chunk, report)
            chunk = {}
        chunk[checked.source_url] = checked.to_json()
        if len(chunk) >= CHUNK_SIZE:
            _upsert(database, chunk, report)
            chunk = {}
    if chunk:
        _upsert(database, chunk, report)
    return report


def _upsert(database: Database, chunk: dict[str, dict[str, Any]], report: LoadReport) -> None:
    now = utcnow()
    with database.session() as session:
        existing = {
            url: (event_id, old_hash)
            for event_id, url, old_hash in session.execute(
                select(EventCache.id, EventCache.source_url, EventCache.data_hash).where(
                    EventCache.source_url.in_(list(chunk))
                )
            )
        }
        new_rows, changed_rows = [], []
        for url, data in chunk.items():
            digest = data_hash(data)
            if url not in existing:
                new_rows.append(
                    {"source_url": url, "data": data, "data_hash": digest, "imported_at": now, "updated_at": now}
                )
            elif existing[url][1] != digest:
                changed_rows.append({"id": existing[url][0], "data": data, "data_hash": digest, "updated_at": now})
            else:
                report.unchanged += 1
        if new_rows:
            session.execute(insert(EventCache), new_rows)
        if changed_rows:
            session.execute(update(EventCache), changed_rows)
        report.restored += restore_loaded(session, existing, now)
        report.new += len(new_rows)
        report.updated += len(changed_rows)


def load_files(database: Database, paths: Iterable[Path]) -> LoadReport:
    def records() -> Iterator[Record | InvalidRecord]:
        for path in paths:
            yield from read_records(path)

    return load_events(database, records())


def sample_text() -> str:
    return resources.files("event_importer.events").joinpath(SAMPLES).read_text(encoding="utf-8")


def load_samples(database: Database) -> LoadReport:
    """Load the bundled sample events."""
    return load_events(database, parse_records(sample_text(), f"<bundled samples>/{SAMPLES}"))
