"""Events that leave their source: `events load --mirror`, `events remove`, and their return.

Nothing is deleted: a removed event keeps its row and its history, with `removed_at` set (and
`updated_at`, so the sensors notice). The selectors then send each destination its removal, as its
lifecycle rule says. Loading the event again, in any load, clears `removed_at`: it is restored, and
the `changed` selector sends it again where its removal was carried out.

A mirror load says "this file is the whole catalogue of one source". The source is named with
`--source NAME`, or derived: the host of the events' source URLs, which must then all share one.
The source's events are those an earlier mirror load of it saw, and, for a derived source, every
event whose source URL has that host and which no mirror load assigned to another source. Each of
them missing from the file is removed. A file with a record that could not be read (not JSON, not
an object, no source URL) removes nothing: it may not be the whole catalogue.
"""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from event_importer.db.engine import Database
from event_importer.db.models import EventCache, utcnow
from event_importer.errors import UsageError
from event_importer.events.jsonstream import InvalidRecord, Record
from event_importer.events.loader import LoadReport, load_events, read_records
from event_importer.events.model import normalise_source_url
from event_importer.framework.chunks import chunked

# URLs per UPDATE ... WHERE source_url IN (...): well under SQLite's and PostgreSQL's parameter limits.
_URLS_PER_STATEMENT = 500


def url_key(url: str) -> str:
    """A source URL compared as the model stores it (`normalise_source_url`), stripped."""
    return normalise_source_url(url.strip())


def url_host(url: str) -> str:
    """The host of a source URL, in lower case ("" when it has none)."""
    try:
        return (urlsplit(url.strip()).hostname or "").lower()
    except ValueError:
        return ""


@dataclass
class MirrorReport:
    """What a mirror load did besides loading: the source, and the events removed and restored."""

    source: str
    removed: int = 0
    restored: int = 0
    #: Why nothing was removed, when nothing could be (an unreadable record).
    not_removing: str | None = None


def mirror_load(database: Database, path: Path, *, source: str | None = None) -> tuple[LoadReport, MirrorReport]:
    """Load `path` as the whole catalogue of `source` (or of its URLs' one host), removing the rest.

    Raises:
        UsageError: no source named and the file's events have several hosts (nothing loaded).
    """
    seen: set[str] = set()
    hosts: set[str] = set()
    unreadable: list[str] = []
    for record in read_records(path):
        url = _record_url(record)
        if url is None:
            unreadable.append(record.location if isinstance(record, InvalidRecord) else record[0])
            continue
        seen.add(url_key(url))
        hosts.add(url_host(url))
    name = source or _derived_source(hosts, path)
    # Read twice rather than held: only the source URLs are kept (about 150 bytes an event), not the records.
    load = load_events(database, read_records(path))
    mirror = MirrorReport(name)
    if unreadable:
        mirror.not_removing = (
            f"{len(unreadable)} records could not be read (first: {unreadable[0]}), so the file may not "
            "be the whole catalogue: nothing was removed"
        )
    _assign_source(database, name, seen)
    if mirror.not_removing is None:
        mirror.removed = _remove_missing(database, name, seen, derived=source is None)
    load.removed += mirror.removed
    return load, mirror


def _record_url(record: Record | InvalidRecord) -> str | None:
    if isinstance(record, InvalidRecord):
        return None
    value = record[1]
    url = value.get("source_url") if isinstance(value, dict) else None
    # An invalid record with a source URL still names an event that is in the source: it stays.
    return url if isinstance(url, str) and url.strip() else None


def _derived_source(hosts: set[str], path: Path) -> str:
    hosts.discard("")
    if len(hosts) == 1:
        return next(iter(hosts))
    if not hosts:
        raise UsageError(f"{path}: no event with a source URL, so no source to mirror; name it with --source")
    listed = ", ".join(sorted(hosts)[:5]) + (", ..." if len(hosts) > 5 else "")
    raise UsageError(
        f"{path}: events from {len(hosts)} hosts ({listed}); a mirror load is one source's catalogue: "
        "name it with --source NAME"
    )


def _assign_source(database: Database, name: str, seen: set[str]) -> None:
    """Record `name` as the source of the file's events (those the load stored)."""
    with database.session() as session:
        for urls in chunked(sorted(_stored_urls(session, seen)), _URLS_PER_STATEMENT):
            session.execute(
                update(EventCache)
                .where(EventCache.source_url.in_(urls), EventCache.source.is_distinct_from(name))
                .values(source=name)
            )


def _stored_urls(session: Session, keys: set[str]) -> Iterator[str]:
    """The stored source URLs whose key is in `keys` (they may differ in scheme or host case)."""
    for (url,) in session.execute(select(EventCache.source_url)):
        if url_key(url) in keys:
            yield url


def _remove_missing(database: Database, name: str, seen: set[str], *, derived: bool) -> int:
    now = utcnow()
    with database.session() as session:
        candidates = select(
            EventCache.id, EventCache.source_url, EventCache.source
        ).where(EventCache.removed_at.is_(None))
        missing = [
            event_id
            for event_id, url, source in session.execute(candidates)
            if url_key(url) not in seen and (source == name or (derived and source is None and url_host(url) == name))
        ]
        for ids in chunked(missing, _URLS_PER_STATEMENT):
            session.execute(update(EventCache).where(EventCache.id.in_(ids)).values(removed_at=now, updated_at=now))
    return len(missing)


@dataclass(frozen=True)
class Removal:
    """The outcome of `remove_event`."""

    event_id: int
    source_url: str
    removed_at: dt.datetime
    #: False when the event had been removed already (at `removed_at`).
    newly: bool


def remove_event(database: Database, url: str) -> Removal:
    """Mark the event with this source URL as removed from its source.

    Raises:
        UsageError: no cached event has that source URL.
    """
    key = url_key(url)
    with database.session() as session:
        columns = select(EventCache.id, EventCache.source_url, EventCache.removed_at)
        row = session.execute(columns.where(EventCache.source_url == key)).first()
        if row is None:
            # Stored before the cache's keys were normalised: one scan, for a command run by hand.
            row = next((r for r in session.execute(columns) if url_key(r.source_url) == key), None)
        if row is None:
            raise UsageError(f"no cached event has the source URL {url.strip()[:200]!r}")
        if row.removed_at is not None:
            # SQLite hands back naive UTC datetimes.
            removed_at = row.removed_at if row.removed_at.tzinfo else row.removed_at.replace(tzinfo=dt.UTC)
            return Removal(row.id, row.source_url, removed_at, newly=False)
        now = utcnow()
        session.execute(update(EventCache).where(EventCache.id == row.id).values(removed_at=now, updated_at=now))
    return Removal(row.id, row.source_url, now, newly=True)
