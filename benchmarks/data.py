"""Synthetic events and databases, generated fast with bulk inserts (not the loader).

`synthetic_event(i)` is deterministic, so a bare client in another process posts exactly the payloads
the job posts. Events look like real imports: a title, venue, lineup, a few hundred characters of
description, mostly an explicit timezone, some with only coordinates or a city (the transformer then
resolves the zone offline, as it would in production).

`selection_database` builds the event cache and submission ledger with a realistic mix of attempts
(see `_event_history`) and counts, while generating, how many events each standard selector must
return, so the benchmark checks the answers as well as the time.
"""

import datetime as dt
import hashlib
import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, SERVICE, sqlite_url

# Bump when the generated data changes, so cached databases are rebuilt.
GENERATOR_VERSION = 3
OTHER_SERVICE = "webhook"

_PLACES = [
    # city, country, IANA zone, lat, lng, address
    ("Berlin", "Germany", "Europe/Berlin", 52.5103, 13.4197, "Köpenicker Str. 70, 10179 Berlin"),
    ("London", "United Kingdom", "Europe/London", 51.5194, -0.1025, "77A Charterhouse St"),
    ("New York", "United States", "America/New_York", 40.7128, -74.0060, "99 Scott Ave"),
    ("Tokyo", "Japan", "Asia/Tokyo", 35.6595, 139.7005, "2-1 Dogenzaka, Shibuya"),
    ("São Paulo", "Brazil", "America/Sao_Paulo", -23.5505, -46.6333, "Rua Augusta 501"),
    ("Sydney", "Australia", "Australia/Sydney", -33.8688, 151.2093, "Bennelong Point"),
    ("Mexico City", "Mexico", "America/Mexico_City", 19.4326, -99.1332, "Av. Insurgentes Sur 1235"),
    ("Cape Town", "South Africa", "Africa/Johannesburg", -33.9249, 18.4241, "Rhodes Dr, Newlands"),
    ("Mumbai", "India", "Asia/Kolkata", 19.0760, 72.8777, "Linking Rd, Bandra West"),
    ("Reykjavík", "Iceland", "Atlantic/Reykjavik", 64.1466, -21.9426, "Austurbakki 2"),
    ("Amsterdam", "Netherlands", "Europe/Amsterdam", 52.3676, 4.9041, "Weteringschans 6"),
    ("Montréal", "Canada", "America/Toronto", 45.5017, -73.5673, "Parc Jean-Drapeau"),
]
_GENRES = ["Techno", "House", "Jazz", "Indie", "Folk", "Ambient", "Drum & Bass", "Afrobeats", "Cumbia", "Soul"]
_WORDS = (
    "night long sessions warehouse rooftop open air live electronics vinyl only sunrise basement choir "
    "strings tour launch showcase residents guests lights river harbour garden festival edition"
).split()
_NAMES = ["Kessel", "Funke", "Marla Stern", "Oskar Lind", "Ruth Amsel", "Sunbleach", "Velvet Arcade", "DJ Nadia",
          "The Fynbos Five", "Saltwater Choir", "Kollektiv Nord", "Penhaligon Trio", "Bombay Beats", "Nordlys"]
_BASE_DATE = dt.date(2027, 1, 1)
IMPORTED_AT = "2026-11-20T09:00:00Z"


def _pick(seq: list[Any], i: int, salt: int) -> Any:
    return seq[(i * 2654435761 + salt * 40503) % len(seq)]


# `--quick` sets this: every event then states its timezone, so no process pays the transformer's
# first-use cost of building its gazetteer indexes (seconds), which a smoke check need not measure.
ALL_TIMEZONES_ENV = "BENCH_ALL_TIMEZONES"


def all_timezones() -> bool:
    return os.environ.get(ALL_TIMEZONES_ENV) == "1"


def synthetic_event(i: int) -> dict[str, Any]:
    """Event number `i` (1-based) as `EventData.to_json()` would store it."""
    city, country, zone, lat, lng, address = _pick(_PLACES, i, 1)
    words = [_pick(_WORDS, i, k) for k in range(3, 7)]
    lineup = list(dict.fromkeys(_pick(_NAMES, i, k) for k in range(7, 7 + 2 + i % 3)))
    day = _BASE_DATE + dt.timedelta(days=i % 700)
    start_hour = 18 + i % 6
    description = (
        f"{' '.join(words).capitalize()} with {', '.join(lineup)}. "
        f"Doors at {start_hour}:00, music until late. {' '.join(reversed(words))}. "
        "Bring ID; the venue is step-free and has a cloakroom. Tickets are limited and sold online first."
    )
    # 16 in 20 state their timezone; 3 give only coordinates, 1 only a city (all 20 under `--quick`).
    kind = 0 if all_timezones() else i % 20
    time_: dict[str, Any] = {"start": f"{start_hour:02d}:00", "end": f"{(start_hour + 6) % 24:02d}:00"}
    location: dict[str, Any] = {"address": address, "city": city, "country": country}
    if kind < 16:
        time_["timezone"] = zone
        location["coordinates"] = {"lat": lat, "lng": lng}
    elif kind < 19:
        location = {"coordinates": {"lat": lat, "lng": lng}}
    event: dict[str, Any] = {
        "title": f"{' '.join(w.capitalize() for w in words[:2])} #{i}",
        "venue": f"{city} {words[2].capitalize()} Hall",
        "date": day.isoformat(),
        "time": time_,
        "promoters": [f"{city} Sound Co."],
        "lineup": lineup,
        "long_description": description,
        "short_description": description[:80].strip(),
        "genres": [_pick(_GENRES, i, 11), _pick(_GENRES, i, 12)],
        "location": location,
        "images": {"full": f"https://images.example.org/e/{i}.jpg"},
        "minimum_age": "18+" if i % 3 else "All Ages",
        "cost": f"€{10 + i % 40}",
        "ticket_url": f"https://tickets.example.com/e/{i}",
        "source_url": f"https://events.example.org/e/{i}",
        "imported_at": IMPORTED_AT,
    }
    return event


def data_hash(data: dict[str, Any]) -> str:
    # The loader's definition (event_importer.events.loader.data_hash), inlined for speed in bulk loads.
    content = {k: v for k, v in data.items() if k != "imported_at"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


_SQLITE_TIME = "2026-11-20 09:00:00.000000"


def _event_row(i: int, hashes: list[str] | None = None) -> tuple[int, str, str, str, str, str]:
    data = synthetic_event(i)
    digest = data_hash(data)
    if hashes is not None:
        hashes.append(digest)
    return (i, data["source_url"], json.dumps(data), digest, _SQLITE_TIME, _SQLITE_TIME)


def create_schema(url: str) -> None:
    """The project's own schema (tables and indexes), created by `Database` as the application does."""
    from event_importer.db.engine import Database

    Database(url).dispose()


def event_database(path: Path, n: int) -> Path:
    """A SQLite event cache at `path` holding events 1..n and no submissions."""
    import sqlite3

    create_schema(sqlite_url(path))
    with sqlite3.connect(path) as connection:
        connection.executemany(
            "INSERT INTO event_cache (id, source_url, data, data_hash, imported_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (_event_row(i) for i in range(1, n + 1)),
        )
    return path


# -- the selection database --------------------------------------------------------------------------


@dataclass
class Expected:
    """How many events each standard selector must return for `SERVICE`."""

    events: int = 0
    submissions: int = 0
    unsubmitted: int = 0
    failed: int = 0
    pending: int = 0
    changed: int = 0

    def for_selector(self, name: str) -> int:
        return {"all": self.events, "url": 1}.get(name, getattr(self, name, 0))


# (service, status, changed_hash) per attempt, oldest first.
Attempt = tuple[str, str, bool]


def _event_history(rng: random.Random) -> list[Attempt]:
    """One event's attempts: 40 % never sent (some dry runs), 45 % accepted (some after failures, some
    changed since), 10 % failing (some accepted earlier), 0.5 % pending, plus a second service for 15 %."""
    r = rng.random()
    history: list[Attempt] = []
    if r < 0.40:
        if rng.random() < 0.12:
            history.append((SERVICE, "dry_run", False))
    elif r < 0.85:
        if rng.random() < 0.05:
            history.append((SERVICE, "dry_run", False))
        failures = 0 if rng.random() < 0.75 else (1 if rng.random() < 0.8 else 2)
        history += [(SERVICE, "failed", False)] * failures
        history.append((SERVICE, "success", rng.random() < 0.10))
    elif r < 0.95:
        if rng.random() < 0.2:
            history.append((SERVICE, "success", True))
        history += [(SERVICE, "failed", False)] * (1 + int(rng.random() * 3))
    elif r < 0.955:
        if rng.random() < 0.5:
            history.append((SERVICE, "failed", False))
        history.append((SERVICE, "pending", False))
    else:
        history.append((SERVICE, "success", rng.random() < 0.10))
    if rng.random() < 0.15:
        history.insert(0, (OTHER_SERVICE, "success", False))
    return history


def _tally(expected: Expected, history: list[Attempt]) -> None:
    mine = [a for a in history if a[0] == SERVICE and a[1] != "dry_run"]
    if not mine:
        expected.unsubmitted += 1
        return
    latest = mine[-1][1]
    if latest == "failed":
        expected.failed += 1
    elif latest == "pending":
        expected.pending += 1
    successes = [a for a in mine if a[1] == "success"]
    if successes and successes[-1][2]:
        expected.changed += 1


def submission_rows(hashes: list[str], expected: Expected) -> Iterator[tuple[Any, ...]]:
    """Submission rows for events 1..n (`hashes[i - 1]` is event i's data hash) in the order runs write
    them, round by round, ids from 1."""
    n = len(hashes)
    rng = random.Random(20261120)
    histories: list[list[Attempt]] = []
    for _ in range(n):
        history = _event_history(rng)
        _tally(expected, history)
        histories.append(history)
    expected.events = n
    next_id = 1
    rounds = max(len(h) for h in histories)
    for round_ in range(rounds):
        run_id = f"run-{round_:02d}"
        for index, history in enumerate(histories):
            if round_ >= len(history):
                continue
            service, status, changed = history[round_]
            event_id = index + 1
            attempt = sum(1 for s, st, _ in history[:round_ + 1] if s == service and st != "dry_run")
            digest = hashlib.sha256(f"old-{event_id}".encode()).hexdigest() if changed else hashes[index]
            finished = None if status == "pending" else _SQLITE_TIME
            http_status = {"failed": 422, "success": 201}.get(status)
            answer = {"data": {"id": str(next_id), "type": "draft-events"}}
            response = json.dumps(answer) if status == "success" else None
            error = "HTTP 422 from ticketfairy: venue is required" if status == "failed" else None
            yield (next_id, event_id, service, status, max(attempt, 1), digest, run_id, "benchhost:1",
                   _SQLITE_TIME, finished, http_status, response, error)
            next_id += 1
    expected.submissions = next_id - 1


_SUBMISSION_COLUMNS = ("id, event_cache_id, service_name, status, attempt, data_hash, run_id, claimed_by, "
                       "created_at, finished_at, http_status, response, error")


def schema_fingerprint() -> str:
    """A short hash of the project's schema (tables and indexes), so a cached database built for an older
    schema is rebuilt rather than measured."""
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    from event_importer.db.models import Base

    dialect = sqlite.dialect()
    ddl = []
    for table in Base.metadata.sorted_tables:
        ddl.append(str(CreateTable(table).compile(dialect=dialect)))
        ddl += sorted(str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes)
    return hashlib.sha256("\n".join(ddl).encode()).hexdigest()[:8]


def selection_sqlite(n: int, *, directory: Path = RESULTS_DIR, log: Any = print) -> tuple[Path, Expected]:
    """The cached SQLite selection database of `n` events (built on first use, keyed by size, generator
    version and schema) and its expected counts."""
    import sqlite3
    import time

    directory.mkdir(parents=True, exist_ok=True)
    variant = "tz" if all_timezones() else "mix"
    path = directory / f"selection-v{GENERATOR_VERSION}{variant}-{schema_fingerprint()}-{n}.db"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        return path, Expected(**json.loads(meta.read_text()))
    for stale in directory.glob(f"selection-v*-{n}.*"):
        stale.unlink()
    started = time.perf_counter()
    log(f"generating the SQLite selection database ({n:,} events; cached in {path.name}) ...")
    building = path.with_name(path.name + ".building")
    building.unlink(missing_ok=True)
    create_schema(sqlite_url(building))
    expected = Expected()
    hashes: list[str] = []
    with sqlite3.connect(building) as connection:
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        connection.executemany(
            "INSERT INTO event_cache (id, source_url, data, data_hash, imported_at, updated_at) VALUES (?,?,?,?,?,?)",
            (_event_row(i, hashes) for i in range(1, n + 1)),
        )
        connection.executemany(
            f"INSERT INTO submissions ({_SUBMISSION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            submission_rows(hashes, expected),
        )
    with sqlite3.connect(building) as connection:
        connection.execute("PRAGMA journal_mode=WAL")  # as the application leaves it
    building.rename(path)
    meta.write_text(json.dumps(expected.__dict__))
    log(f"  built in {time.perf_counter() - started:.0f} s ({path.stat().st_size / 1e6:,.0f} MB)")
    return path, expected


def load_postgres(url: str, source: Path, *, log: Any = print) -> None:
    """Fill the empty PostgreSQL database at `url` with the rows of the SQLite database `source`, by COPY,
    then VACUUM (ANALYZE): what autovacuum does within a minute or two of a bulk load, so the plans and
    timings measured are the steady-state ones. ANALYZE alone left every first read of a page setting
    hint bits (and writing the page back), and index-only scans visiting the table for want of a
    visibility map, on a server that may run without autovacuum (as the benchmark machine's does)."""
    import sqlite3
    import time

    import psycopg

    started = time.perf_counter()
    create_schema(url)
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    pg_time = "2026-11-20 09:00:00+00"
    with sqlite3.connect(source) as lite, psycopg.connect(conninfo) as connection:
        with connection.cursor() as cursor:
            with cursor.copy(
                "COPY event_cache (id, source_url, data, data_hash, imported_at, updated_at) FROM STDIN"
            ) as copy:
                for row in lite.execute("SELECT id, source_url, data, data_hash FROM event_cache ORDER BY id"):
                    copy.write_row((*row, pg_time, pg_time))
            with cursor.copy(f"COPY submissions ({_SUBMISSION_COLUMNS}) FROM STDIN") as copy:
                for row in lite.execute(f"SELECT {_SUBMISSION_COLUMNS} FROM submissions ORDER BY id"):
                    copy.write_row((*row[:8], pg_time, None if row[9] is None else pg_time, *row[10:]))
            for table in ("event_cache", "submissions"):
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM (ANALYZE)")
    log(f"  PostgreSQL loaded by COPY in {time.perf_counter() - started:.0f} s")
