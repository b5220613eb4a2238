"""Memory and time of `event-importer events import-db` over a small and a large Event Importer database
(SQLite), each event with one submission: peak RSS should not grow with the number of rows, since
both tables are read as a stream. Peak RSS is the CLI process's own (`run_process`).

    .venv/bin/python -m benchmarks.import_db --small 10000 --large 100000
"""

import argparse
import json
import sqlite3
from pathlib import Path
from typing import Any

from benchmarks.common import bench_env, cli_command, rate, run_process, sqlite_url, temp_workdir

DDL = """
CREATE TABLE events (id INTEGER PRIMARY KEY, source_url VARCHAR NOT NULL UNIQUE, scraped_data JSON NOT NULL,
    scraped_at DATETIME, data_hash VARCHAR, updated_at DATETIME);
CREATE TABLE submissions (id INTEGER PRIMARY KEY, event_cache_id INTEGER NOT NULL REFERENCES events(id),
    service_name VARCHAR NOT NULL, status VARCHAR NOT NULL, submitted_at DATETIME, response_data JSON,
    error_message TEXT, retry_count INTEGER, selection_criteria JSON, batch_id VARCHAR);
"""
STATUSES = ("success", "success", "success", "failed", "pending")


def build_source(path: Path, events: int) -> None:
    """An Event Importer database of `events` events of about 1 KB, each with one submission to ticketfairy."""
    with sqlite3.connect(path) as connection:
        connection.executescript(DDL)
        connection.executemany(
            "INSERT INTO events (id, source_url, scraped_data, scraped_at, data_hash, updated_at)"
            " VALUES (?, ?, ?, '2026-05-01 10:00:00', 'h', '2026-05-01 10:00:00')",
            ((n, f"https://events.example.org/e/{n}", json.dumps(_event(n))) for n in range(1, events + 1)),
        )
        connection.executemany(
            "INSERT INTO submissions (event_cache_id, service_name, status, submitted_at, response_data,"
            " error_message, retry_count) VALUES (?, 'ticketfairy', ?, '2026-05-02 12:00:00', ?, ?, 0)",
            (
                (n, STATUSES[n % 5], json.dumps({"data": {"id": str(n)}}), "HTTP 422" if n % 5 == 3 else None)
                for n in range(1, events + 1)
            ),
        )


def _event(n: int) -> dict[str, Any]:
    return {
        "title": f"Night {n}",
        "venue": "Tresor",
        "date": "2027-03-14",
        "time": {"start": "22:00", "end": "04:00", "timezone": "Europe/Berlin"},
        "location": {"address": "Köpenicker Str. 70", "city": "Berlin", "country": "Germany"},
        "lineup": ["DJ One", "DJ Two", "DJ Three"],
        "long_description": "A long night of techno. " * 30,
        "source_url": f"https://events.example.org/e/{n}",
        "image_search": {"query": f"night {n}", "results": []},
    }


def import_once(events: int, workdir: Path) -> dict[str, Any]:
    folder = workdir / f"import-{events}"
    folder.mkdir()
    source = folder / "event-importer.sqlite"
    build_source(source, events)
    result = run_process(
        [*cli_command(), "events", "import-db", sqlite_url(source), "--json"],
        env=bench_env(folder / "home"),
        cwd=folder,
    ).check()
    report = result.json()
    if report["new"] != events or report["history"]["imported"] != events:
        raise RuntimeError(f"imported {report['new']} events and {report['history']['imported']} attempts of {events}")
    return {
        "events": events,
        "source_mb": source.stat().st_size / 1e6,
        "max_rss_mb": result.max_rss_mb,
        "wall_s": result.wall_s,
        "events_per_s": rate(events, result.wall_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    args = parser.parse_args()
    with temp_workdir() as workdir:
        for events in (args.small, args.large):
            figures = import_once(events, workdir)
            print(
                f"{figures['events']:>9,} events ({figures['source_mb']:,.0f} MB): peak RSS "
                f"{figures['max_rss_mb']:,.0f} MB, {figures['wall_s']:.1f} s ({figures['events_per_s']:,.0f} events/s)"
            )


if __name__ == "__main__":
    main()
