"""Loading events into the cache from JSON, JSON arrays and JSON Lines, upserting by `source_url`.

A bad record never stops the good ones: each is reported with where it is (file and line, or
array index) and why, and the rest load. Files are read as a stream (`events.jsonstream`), records
are validated as `EventData` and written a chunk at a time, so memory does not grow with the file.
A `source_url` given twice in one load is reported as a duplicate; the later record is kept.
"""

import datetime as dt
import hashlib
import io
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
from event_importer.events.jsonstream import InvalidRecord, Record, stream_records
from event_importer.events.model import EventData, describe_validation_error, quote
from event_importer.events.restore import restore_loaded

CHUNK_SIZE = 1000
SAMPLES = "sample_events.json"


def data_hash(data: dict[str, Any]) -> str:
    """SHA-256 of the event's canonical JSON, leaving out when it was imported (not a change)."""
    content = {k: v for k, v in data.items() if k != "imported_at"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class LoadReport:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: list[InvalidRecord] = field(default_factory=list)
    # Records whose source_url an earlier record of the same load already gave; they still load.
    duplicates: list[InvalidRecord] = field(default_factory=list)
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
            "duplicates": len(self.duplicates),
            "restored": self.restored,
            "removed": self.removed,
        }

    def as_json(self) -> dict[str, Any]:
        """The counts, then each invalid and each duplicate record with its location and reason."""
        return {
            **self.counts,
            "errors": [{"location": i.location, "reason": i.reason} for i in self.invalid],
            "duplicate_records": [{"location": i.location, "reason": i.reason} for i in self.duplicates],
        }

    def merge(self, other: "LoadReport") -> None:
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.invalid += other.invalid
        self.duplicates += other.duplicates
        self.restored += other.restored
        self.removed += other.removed


def read_records(path: Path) -> Iterator[Record | InvalidRecord]:
    """Each record of a JSON object, JSON array or JSON Lines file, with its location, read as a stream."""
    name = str(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, after the generator is done with it
    except OSError as exc:
        yield InvalidRecord(name, f"cannot read file: {exc.strerror or exc}")
        return
    with handle:
        try:
            yield from stream_records(handle, name)
        except OSError as exc:
            yield InvalidRecord(name, f"cannot read file: {exc.strerror or exc}")


def parse_records(data: bytes | str, name: str) -> Iterator[Record | InvalidRecord]:
    """Records from a JSON value or JSON Lines held in memory; `name` prefixes each location."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    return stream_records(io.BytesIO(raw), name)


def validate_record(location: str, value: Any) -> EventData | InvalidRecord:
    if not isinstance(value, dict):
        return InvalidRecord(location, f"an event must be a JSON object, got {type(value).__name__}")
    try:
        return EventData.model_validate(value)
    except ValidationError as exc:
        return InvalidRecord(location, describe_validation_error(exc))


def load_events(database: Database, records: Iterable[Record | InvalidRecord]) -> LoadReport:
    """Validate and upsert records, a chunk per transaction; report what happened to each.

    Within one load, a second record with the same (normalised) `source_url` replaces the first, as a
    later load would, and is reported as a duplicate; the counts count each event once.
    """
    report = LoadReport()
    chunk: dict[str, dict[str, Any]] = {}
    # Where each event of this load was first given, by a digest of its URL: the one structure that
    # grows with the input, by about 150 bytes an event.
    first_seen: dict[bytes, str] = {}
    counted: set[str] = set()  # events of this chunk already counted by an earlier chunk
    for record in records:
        if isinstance(record, InvalidRecord):
            report.invalid.append(record)
            continue
        location = record[0]
        checked = validate_record(location, record[1])
        if isinstance(checked, InvalidRecord):
            report.invalid.append(checked)
            continue
        url = checked.source_url
        key = hashlib.blake2b(url.encode(), digest_size=16).digest()
        if (first := first_seen.get(key)) is None:
            first_seen[key] = location
        else:
            report.duplicates.append(
                InvalidRecord(location, f"the same source_url as {first} ({quote(url)}); this later record is kept")
            )
            if url not in chunk:
                counted.add(url)
        if checked.imported_at is None:
            checked.imported_at = dt.datetime.now(dt.UTC)
        chunk[url] = checked.to_json()
        if len(chunk) >= CHUNK_SIZE:
            _upsert(database, chunk, counted, report)
            chunk, counted = {}, set()
    if chunk:
        _upsert(database, chunk, counted, report)
    return report


def _upsert(database: Database, chunk: dict[str, dict[str, Any]], counted: set[str], report: LoadReport) -> None:
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
            else:
                if existing[url][1] != digest:
                    changed_rows.append(
                        {"id": existing[url][0], "data": data, "data_hash": digest, "updated_at": now}
                    )
                # A duplicate whose first record an earlier chunk counted is written, not counted again.
                if url not in counted:
                    if existing[url][1] != digest:
                        report.updated += 1
                    else:
                        report.unchanged += 1
        if new_rows:
            session.execute(insert(EventCache), new_rows)
        if changed_rows:
            session.execute(update(EventCache), changed_rows)
        report.restored += restore_loaded(session, existing, now)
        report.new += len(new_rows)


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
