"""Sharded throughput on 1, 2 and 4 Celery workers, next to the bare-client limit of the same run.

For each worker count W: a fresh PostgreSQL event cache (N events, loaded by COPY) and Dagster
storage, W `celery -A event_importer.workers worker --pool solo` processes (each its own data
folder), RabbitMQ as the broker, and `event-importer ticketfairy submit --shards W` from a CLI
process of its own. The same total concurrency C in every case, two ways:

- `shared`: `TICKETFAIRY_MAX_CONCURRENCY=C` held for all workers together in Redis (the shared limit);
- `split`: no Redis, each worker's own limit C / W.

Timings, from the runs' event logs in PostgreSQL: the submission across shards (the first shard's
`submission_results` STEP_START to the last one's STEP_SUCCESS), end to end (the first run's start
to the last run's end) and the CLI process. Each worker count first runs a submission that selects
nothing (`--selector failed`), so every worker has loaded the code before the measured run; that
warm-up is also the zero-event run through the workers (launch overhead).
"""

import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.common import API_KEY, PYTHON, StandIn, bench_env, rate, run_process
from benchmarks.data import event_database, load_postgres
from benchmarks.jobs import SUBMIT_STEP, submit_command
from benchmarks.selection import POSTGRES_URL, _admin, postgres_reachable
from benchmarks.throughput import bare_clients

BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
REDIS_URL = "redis://127.0.0.1:6379/0"
WORKER_COUNTS = (1, 2, 4)


def _reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return False
    return True


def unavailable() -> str | None:
    """Why this section cannot run here, or None."""
    if not postgres_reachable():
        return "PostgreSQL not reachable"
    if not _reachable("127.0.0.1", 5672):
        return "RabbitMQ not reachable at 127.0.0.1:5672"
    if not _reachable("127.0.0.1", 6379):
        return "Redis not reachable at 127.0.0.1:6379"
    return None


def _database(name: str) -> str:
    _admin(POSTGRES_URL, f'CREATE DATABASE "{name}"')
    return POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop(name: str) -> None:
    _admin(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _spans(dagster_url: str, run_ids: list[str]) -> dict[str, Any]:
    """Absolute start and end times of the runs and of their submission steps, from Dagster's storage."""
    import dagster as dg
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    runs = PostgresRunStorage(dagster_url)
    events = PostgresEventLogStorage(dagster_url)
    starts, ends, step_starts, step_ends = [], [], [], []
    owners = set()
    for run_id in run_ids:
        record = runs.get_run_records(dg.RunsFilter(run_ids=[run_id]))[0]
        starts.append(record.start_time)
        ends.append(record.end_time)
        owners.add(record.dagster_run.tags.get("event-importer/owner"))
        for entry in events.get_logs_for_run(run_id):
            event = entry.dagster_event
            if event is None or entry.step_key != SUBMIT_STEP:
                continue
            if event.event_type == dg.DagsterEventType.STEP_START:
                step_starts.append(entry.timestamp)
            elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
                step_ends.append(entry.timestamp)
    runs.dispose()
    events.dispose()
    return {
        "end_to_end_s": max(ends) - min(starts) if all(starts) and all(ends) else None,
        "submission_s": max(step_ends) - min(step_starts) if len(step_ends) == len(run_ids) else None,
        "run_s": [end - start for start, end in zip(starts, ends, strict=True) if start and end],
        "workers_used": len(owners),
    }


def sharded(
    workers: int, mode: str, server: StandIn, source: Path, *, events: int, concurrency: int, workdir: Path, log: Any
) -> dict[str, Any]:
    """One sharded submission of `events` on `workers` workers; `mode` is `shared` or `split`."""
    label = f"{workers}w-{mode}"
    tag = uuid.uuid4().hex[:8]
    events_db, dagster_db = f"bench_workers_events_{tag}", f"bench_workers_dagster_{tag}"
    events_url = _database(events_db)
    dagster_url = _database(dagster_db).replace("postgresql+psycopg://", "postgresql+psycopg2://")
    queue = f"event-importer-bench-{tag}"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        load_postgres(events_url, source, log=lambda _: None)
        per_worker = concurrency if mode == "shared" else max(1, concurrency // workers)
        settings = {
            "EVENT_IMPORTER_DATABASE_URL": events_url,
            "EVENT_IMPORTER_DAGSTER_POSTGRES_URL": dagster_url,
            "EVENT_IMPORTER_CELERY_BROKER_URL": BROKER_URL,
            "EVENT_IMPORTER_CELERY_QUEUE": queue,
            "TICKETFAIRY_API_KEY": API_KEY,
            "TICKETFAIRY_API_URL": server.url,
            "TICKETFAIRY_MAX_CONCURRENCY": str(per_worker),
        }
        if mode == "shared":
            settings["EVENT_IMPORTER_REDIS_URL"] = REDIS_URL
        for n in range(workers):
            home = workdir / label / f"worker{n}"
            home.mkdir(parents=True)
            command = [str(Path(PYTHON).parent / "celery"), "-A", "event_importer.workers", "worker", "--pool", "solo",
                       "--queues", queue, "--hostname", f"w{n}-{queue}@%h", "--loglevel", "WARNING",
                       "--without-gossip", "--without-mingle"]
            processes.append(subprocess.Popen(
                command, env=bench_env(home, **settings), cwd=home, stdout=subprocess.DEVNULL,
                stderr=(home / "worker.err").open("wb"), start_new_session=True,
            ))
        cli_home = workdir / label / "cli"
        cli_home.mkdir(parents=True)
        env = bench_env(cli_home, **settings)
        shards = ["--shards", str(workers)] if workers > 1 else []
        warm = run_process(submit_command("--selector", "failed", *shards, "--json"), env=env, cwd=cli_home).check()
        warm_runs = warm.json()["run_ids"]
        zero = _spans(dagster_url, warm_runs)
        server.reset()
        process = run_process(submit_command(*shards, "--json"), env=env, cwd=cli_home).check()
        report = process.json()
        accepted = int(server.stats()["accepted"])
        if report["counts"].get("submitted") != events or accepted != events:
            raise RuntimeError(f"{label}: {report['counts']}, the server accepted {accepted} of {events}")
        spans = _spans(dagster_url, report["run_ids"])
        stats = server.stats()
        result = {
            "workers": workers, "mode": mode, "per_worker_concurrency": per_worker, "events": events,
            "process_wall_s": process.wall_s, **spans,
            "submission_per_s": rate(events, spans["submission_s"]),
            "end_to_end_per_s": rate(events, spans["end_to_end_s"]),
            "process_per_s": rate(events, process.wall_s),
            "peak_in_flight": stats.get("peak_in_flight"), "peak_per_second": stats.get("peak_per_second"),
            "zero_event": {"process_wall_s": warm.wall_s, "run_s": zero["run_s"]},
        }
        log(f"  {label}: submission {result['submission_per_s'] or 0:,.0f}/s, end to end "
            f"{result['end_to_end_per_s'] or 0:,.0f}/s, CLI {process.wall_s:.1f} s, "
            f"{spans['workers_used']} workers used, peak in flight {result['peak_in_flight']}")
        return result
    finally:
        for worker in processes:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in processes:
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        _drop(events_db)
        _drop(dagster_db)
        from kombu import Connection

        with Connection(BROKER_URL) as connection:
            connection.default_channel.queue_delete(queue)


def run(*, events: int, concurrency: int, latency: float, workdir: Path, log: Any,
        modes: tuple[str, ...] = ("shared", "split")) -> dict[str, Any]:
    reason = unavailable()
    if reason:
        log(f"[workers] skipped: {reason}")
        return {"skipped": reason}
    log(f"[workers] {events:,} events, latency {latency * 1000:g} ms, total concurrency {concurrency}, "
        f"on {', '.join(map(str, WORKER_COUNTS))} workers")
    source = event_database(workdir / "workers-events.db", events)
    server = StandIn(latency, workdir / "standin-workers").start()
    try:
        started = time.perf_counter()
        bare = bare_clients(["aiohttp"], server, events, concurrency, workdir)["aiohttp"]
        log(f"  bare aiohttp: {bare['events_per_s']:,.0f}/s")
        runs = [
            sharded(workers, mode, server, source, events=events, concurrency=concurrency, workdir=workdir, log=log)
            for mode in modes
            for workers in WORKER_COUNTS
        ]
    finally:
        server.stop()
    return {"events": events, "concurrency": concurrency, "latency": latency, "bare_aiohttp": bare, "runs": runs,
            "seconds": time.perf_counter() - started}
