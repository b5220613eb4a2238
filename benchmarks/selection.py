"""Selection: every standard selector over 1,000,000 events and their submissions, streamed through
`BaseSubmitter.select`, on SQLite (a cached file) and on PostgreSQL when one is reachable.

The harness side (`run`) builds or reuses the databases and starts one worker process per database,
plus two more per database for memory: one streaming every event (`all`) and one selecting a single
event (`url`), whose peak RSS is the baseline. The worker side (`python -m benchmarks.selection`)
times, per selector, the first 10,000 events (a new session, clock from the query to the 10,000th
`EventRef`; the better of two) and all matches (another session), checks the count against what the generator expects,
and records the query plan (EXPLAIN QUERY PLAN / EXPLAIN of the cursor) of the statement `select`
actually sent, captured from the engine. On PostgreSQL the first rows are timed once more with JIT
compilation off.
"""

import argparse
import json
import os
import time
import uuid
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import Any

from benchmarks.common import bench_env, run_module, sqlite_url
from benchmarks.data import Expected, load_postgres, selection_sqlite

SELECTORS = ["unsubmitted", "failed", "pending", "changed", "all", "url"]
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


# -- worker ------------------------------------------------------------------------------------------


def _explain(connection: Any, statement: str, parameters: Any) -> list[str]:
    """The plan of exactly what `select` sent: SQLite's EXPLAIN QUERY PLAN, PostgreSQL's EXPLAIN of the
    cursor (`select` streams through a server-side cursor, which PostgreSQL plans for the first rows)."""
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        lines = [str(row[3]) for row in rows]
    else:
        rows = connection.exec_driver_sql("EXPLAIN DECLARE bench_plan CURSOR FOR " + statement, parameters).all()
        lines = [str(row[0]) for row in rows]
    return [line if len(line) <= 240 else line[:239] + "…" for line in lines]


def _unindexed(plan: list[str]) -> list[str]:
    """Plan lines that read a table without an index: the submissions table at all, or every event when
    the events are not read in id order through the primary key (a scan then a sort)."""
    bad = []
    for line in plan:
        text = line.strip()
        if (text.startswith("SCAN submissions") and "INDEX" not in text) or "Seq Scan on submissions" in text:
            bad.append(text)
        if "Seq Scan on event_cache" in text or "USE TEMP B-TREE FOR ORDER BY" in text:
            bad.append(text)
    return bad


def event_access(plan: list[str]) -> str:
    """How the plan reads the event cache, in a few words (e.g. "SCAN event_cache", "Index Scan ... pkey")."""
    for line in plan:
        text = line.strip().lstrip("->").strip()
        if "event_cache" in text and not text.startswith(("Sort Key", "Index Cond", "Filter", "Hash Cond")):
            text = text.split("  (cost")[0].strip()
            return (text.replace(" on event_cache", "") if " using " in text else text)[:64]
    return "?"


def _timed(stream: Callable[[], Any], stop_after: int | None) -> tuple[int, float]:
    started = time.perf_counter()
    iterator = stream()
    count = sum(1 for _ in (islice(iterator, stop_after) if stop_after else iterator))
    return count, time.perf_counter() - started


def worker(database_url: str, selectors: list[str], first: int, url_value: str, full: bool) -> dict[str, Any]:
    from sqlalchemy import event

    from event_importer.db.engine import Database
    from event_importer.integrations.ticketfairy.submitter import TicketFairySubmitter

    database = Database(database_url)
    submitter = TicketFairySubmitter()
    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "event_cache" in statement:
            sent.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", capture)
    results: dict[str, Any] = {}
    for name in selectors:
        url = url_value if name == "url" else None

        def stream(session: Any, name: str = name, url: str | None = url) -> Callable[[], Any]:
            return lambda: submitter.select(session, name, url=url)

        entry: dict[str, Any] = {}
        sent.clear()
        if first:
            # Twice, each in a new session, keeping the better: one stall of a shared server (or of
            # the machine) should not decide a sub-second figure. Both samples stay in the JSON.
            samples = []
            for _ in range(2):
                with database.session() as session:
                    entry["first_count"], seconds = _timed(stream(session), first)
                samples.append(seconds)
            entry["first_s"], entry["first_samples"] = min(samples), samples
        if full:
            with database.session() as session:
                entry["count"], entry["all_s"] = _timed(stream(session), None)
        if sent:
            statement, parameters = sent[0]
            entry["statements"] = len({s for s, _ in sent})
            try:
                with database.engine.connect() as connection:
                    entry["plan"] = _explain(connection, statement, parameters)
            except Exception as exc:  # noqa: BLE001 - a plan is a diagnostic, not the measurement
                entry["plan"] = [f"(EXPLAIN failed: {type(exc).__name__}: {exc})"]
            entry["unindexed"] = _unindexed(entry["plan"])
            entry["event_access"] = event_access(entry["plan"])
        results[name] = entry
    return {"dialect": database.dialect, "selectors": results}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--selectors", default=",".join(SELECTORS))
    parser.add_argument("--first", type=int, default=10_000)
    parser.add_argument("--no-full", action="store_true")
    parser.add_argument("--url-value", required=True)
    args = parser.parse_args()
    print(json.dumps(worker(args.database_url, args.selectors.split(","), args.first, args.url_value,
                            not args.no_full)))


# -- harness -----------------------------------------------------------------------------------------


def _warm_file_cache(path: Path) -> None:
    """Read the database once so every selector starts from the same (warm) page cache."""
    with open(path, "rb") as handle:
        while handle.read(1 << 24):
            pass


def measure_database(label: str, database_url: str, expected: Expected, *, first: int, workdir: Path,
                     log: Any, jit_off_url: str | None = None) -> dict[str, Any]:
    url_value = f"https://events.example.org/e/{expected.events // 2}"
    env = bench_env(workdir / label)
    common = ["--database-url", database_url, "--url-value", url_value]
    log(f"[selection/{label}] {expected.events:,} events, {expected.submissions:,} submissions")
    timed = run_module("selection", [*common, "--first", str(first)], env=env, cwd=workdir / label)
    for name, entry in timed["selectors"].items():
        want = expected.for_selector(name)
        entry["expected"] = want
        entry["correct"] = entry["count"] == want and entry["first_count"] == min(first, want)
        entry.setdefault("plan", [])
        entry.setdefault("unindexed", [])
        log(f"  {name:<12} first {entry['first_count']:>6,} in {entry['first_s']:6.3f} s, "
            f"all {entry['count']:>9,} in {entry['all_s']:6.2f} s{'' if entry['correct'] else '  WRONG COUNT'}")
    # Memory: the same process streaming every event, against one selecting a single event.
    streaming = run_module("selection", [*common, "--selectors", "all", "--first", "0"], env=env, cwd=workdir / label)
    single = run_module("selection", [*common, "--selectors", "url", "--first", "0"], env=env, cwd=workdir / label)
    memory = {
        "stream_all_max_rss_mb": streaming["process"]["max_rss_mb"],
        "stream_all_count": streaming["selectors"]["all"]["count"],
        "stream_all_s": streaming["selectors"]["all"]["all_s"],
        "single_event_max_rss_mb": single["process"]["max_rss_mb"],
    }
    log(f"  peak RSS streaming all: {memory['stream_all_max_rss_mb']:.0f} MB "
        f"(one event: {memory['single_event_max_rss_mb']:.0f} MB)")
    result = {"label": label, "expected": expected.__dict__, **timed, "memory": memory}
    if jit_off_url:
        # PostgreSQL compiles expensive-looking plans with LLVM before the first row (jit_above_cost):
        # the same first rows again with JIT off show what that costs.
        args = ["--database-url", jit_off_url, "--url-value", url_value, "--first", str(first), "--no-full"]
        jit_off = run_module("selection", args, env=env, cwd=workdir / label)
        result["jit_off_first_s"] = {name: e["first_s"] for name, e in jit_off["selectors"].items()}
        log("  first rows with jit=off: " + ", ".join(f"{k} {v:.3f} s" for k, v in result["jit_off_first_s"].items()))
    return result


def postgres_reachable(url: str = POSTGRES_URL) -> bool:
    try:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001 - any failure means "not here"
        return False


def _admin(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as connection:
        connection.execute(statement)


def run(*, events: int, first: int, workdir: Path, postgres: bool, log: Any) -> dict[str, Any]:
    path, expected = selection_sqlite(events, log=log)
    _warm_file_cache(path)
    results = {"sqlite": measure_database("sqlite", sqlite_url(path), expected, first=first, workdir=workdir,
                                          log=log)}
    if postgres and postgres_reachable():
        name = f"event_importer_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        base = POSTGRES_URL.rsplit("/", 1)[0]
        _admin(POSTGRES_URL, f'CREATE DATABASE "{name}"')
        try:
            log(f"[selection/postgresql] loading {events:,} events into database {name} ...")
            load_postgres(f"{base}/{name}", path, log=log)
            results["postgresql"] = measure_database("postgresql", f"{base}/{name}", expected, first=first,
                                                     workdir=workdir, log=log,
                                                     jit_off_url=f"{base}/{name}?options=-c%20jit%3Doff")
        finally:
            _admin(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    elif postgres:
        log(f"[selection/postgresql] skipped: {POSTGRES_URL} is not reachable")
        results["postgresql"] = {"skipped": f"{POSTGRES_URL} not reachable"}
    return results


if __name__ == "__main__":
    main()
