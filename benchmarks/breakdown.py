"""Where the job's submission time goes: the submission path taken apart, outside Dagster, in one process.

`python -m benchmarks.breakdown --url URL --database DB --events N --concurrency C` selects and
transforms N events with the project's submitter (timed, as the first two steps), then times, each
on a fresh copy of the database:

- `client`: the project's `TicketFairyClient` (httpx API on the aiohttp transport) posting every
  payload with a semaphore of C and a task per payload, as `sending.py` does, and no ledger;
- `submit`: `BaseSubmitter.submit`, the exact code the job's submission step runs (claims ahead of
  the requests, slots released at the answer, outcomes committed in batches);
- `ledger`: claims and outcomes for N events with no HTTP at all (the database's share of the CPU).

(Two more variants were measured once and dropped from the harness, neither helped: uvloop's event
loop, and a 1 ms GIL switch interval; see the README.)

The step timings of the Dagster job (same N, same server) come from `benchmarks.throughput`; the
difference to `submit` here is what Dagster itself adds to the step.
"""

import argparse
import asyncio
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import sqlite_url


def _fresh(database: Path, label: str) -> Any:
    from event_importer.db.engine import Database

    copy = database.with_name(f"{database.stem}-{label}.db")
    shutil.copyfile(database, copy)
    return Database(sqlite_url(copy))


def _timed(call: Callable[[], Any]) -> tuple[Any, float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    value = call()
    return value, time.perf_counter() - wall, time.process_time() - cpu


async def _client_only(submitter: Any, payloads: list[Any], concurrency: int) -> int:
    slots = asyncio.Semaphore(concurrency)
    ok = 0

    async def one(payload: Any) -> None:
        nonlocal ok
        try:
            await client.send(payload)
            ok += 1
        finally:
            slots.release()

    client = submitter.create_client()
    tasks = set()
    async with client:
        for payload in payloads:
            await slots.acquire()
            task = asyncio.create_task(one(payload))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
    return ok


def _ledger_only(ledger: Any, payloads: list[Any], batch: int) -> int:
    from event_importer.db.models import SubmissionStatus
    from event_importer.framework.chunks import CHUNK_SIZE, chunked
    from event_importer.ledger import ClaimRequest, Outcome

    done = 0
    response = {"data": {"id": "1", "type": "draft-events", "attributes": payloads[0].body["data"]["attributes"]}}
    for chunk in chunked(payloads, CHUNK_SIZE):
        claims = ledger.claim([ClaimRequest(p.event.id, p.event.data_hash, p.event.attempts) for p in chunk])
        for group in chunked([c for c in claims if c is not None], batch):
            ledger.finish([Outcome(c.submission_id, SubmissionStatus.SUCCESS, response=response) for c in group])
            done += len(group)
    return done


def worker(database: Path, events: int, concurrency: int) -> dict[str, Any]:
    from event_importer.db.engine import Database
    from event_importer.integrations.ticketfairy.submitter import TicketFairySubmitter
    from event_importer.ledger import SubmissionLedger

    submitter = TicketFairySubmitter()
    source = Database(sqlite_url(database))
    out: dict[str, Any] = {"events": events, "concurrency": concurrency}

    def select() -> list[Any]:
        with source.session() as session:
            return list(submitter.select(session, "unsubmitted"))

    selected, out["select_s"], out["select_cpu_s"] = _timed(select)
    payloads, out["transform_s"], out["transform_cpu_s"] = _timed(lambda: submitter.transform(selected))
    assert len(payloads) == events and all(p.valid for p in payloads)
    source.dispose()

    def phase(name: str, call: Callable[[], int]) -> None:
        try:
            ok, wall, cpu = _timed(call)
        except Exception as exc:  # noqa: BLE001 - an experiment on internals may not fit newer code
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
            return
        out[name] = {"ok": ok, "seconds": wall, "cpu_s": cpu, "events_per_s": events / wall}

    phase("client", lambda: asyncio.run(_client_only(submitter, payloads, concurrency)))
    db = _fresh(database, "submit")
    phase("submit", lambda: sum(r.outcome.value == "success" for r in
                                submitter.submit(payloads, database=db, run_id="breakdown-submit")))
    db = _fresh(database, "ledger")
    ledger = SubmissionLedger(db, submitter.service_name, "breakdown-ledger")
    phase("ledger", lambda: _ledger_only(ledger, payloads, concurrency))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", type=Path, required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    print(json.dumps(worker(args.database, args.events, args.concurrency)))


if __name__ == "__main__":
    main()
