"""Claims that hold across processes: runs started at the same moment never send the same event,
and a run killed with SIGKILL loses nothing, on SQLite and on PostgreSQL."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

from sqlalchemy import select

from event_importer.db.models import Submission
from event_importer_tests.conftest import TEST_API_KEY
from event_importer_tests.factories import add_events, event_data


def worker_env(database, stand_in, **extra) -> dict[str, str]:
    return {
        **os.environ,
        "EVENT_IMPORTER_DATABASE_URL": database.url,
        "TICKETFAIRY_API_URL": stand_in.url,
        "TICKETFAIRY_API_KEY": TEST_API_KEY,
        **extra,
    }


def start_worker(env, selector, run_id) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "event_importer_tests.reliability.worker", selector, run_id],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "READY", process.stderr.read() if process.stderr else ""
    return process


def latest_by_event(database) -> dict[int, list[tuple[str, str | None]]]:
    with database.session() as session:
        found: dict[int, list[tuple[str, str | None]]] = {}
        for row in session.scalars(select(Submission).order_by(Submission.id)):
            found.setdefault(row.event_cache_id, []).append((row.status, row.run_id))
        return found


def test_runs_started_at_the_same_moment_never_send_the_same_event(database, stand_in, tmp_path):
    ids = add_events(database, *(event_data() for _ in range(300)))
    stand_in.latency = 0.01
    go = tmp_path / "go"
    env = worker_env(database, stand_in, WORKER_START_FILE=str(go), EVENT_IMPORTER_MAX_CONCURRENCY="8")
    workers = [start_worker(env, "unsubmitted", f"run-{n}") for n in range(3)]
    go.touch()
    counts = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        counts.append(json.loads(out.strip().splitlines()[-1]))

    assert stand_in.duplicates() == {}
    assert len(stand_in.accepted) == 300
    assert sum(c["submitted"] for c in counts) == 300
    rows = latest_by_event(database)
    assert sorted(rows) == ids
    assert all([status for status, _ in attempts] == ["success"] for attempts in rows.values())


def test_a_killed_run_loses_nothing_and_its_claims_are_taken_up(database, stand_in):
    ids = add_events(database, *(event_data() for _ in range(60)))
    stand_in.latency = 0.05
    env = worker_env(database, stand_in, EVENT_IMPORTER_MAX_CONCURRENCY="4")
    worker = start_worker(env, "unsubmitted", "doomed")
    deadline = time.monotonic() + 30
    while len(stand_in.accepted) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.send_signal(signal.SIGKILL)
    worker.wait()

    rows = latest_by_event(database)
    final = {event_id: attempts[-1] for event_id, attempts in rows.items()}
    # Each event is success, or still pending under the killed run's id, or was never claimed.
    assert all(status == "success" or (status == "pending" and run == "doomed") for status, run in final.values())
    accepted_before = len(stand_in.accepted)
    assert any(status == "pending" for status, _ in final.values())

    rerun = start_worker(worker_env(database, stand_in), "pending", "after")
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    rest = start_worker(worker_env(database, stand_in), "unsubmitted", "rest")
    out, err = rest.communicate(timeout=120)
    assert rest.returncode == 0, err

    rows = latest_by_event(database)
    assert sorted(rows) == ids
    assert all(attempts[-1][0] == "success" for attempts in rows.values())
    for attempts in rows.values():
        for status, run in attempts[:-1]:
            assert (status, run) == ("failed", "doomed")
    # Duplicates are bounded by what was sent without a committed outcome at the kill: in flight, or
    # answered and waiting for the writer's next batch; at most twice the concurrency.
    resent = Counter(r["body"]["data"]["attributes"]["url"] for r in stand_in.accepted)
    assert sum(n - 1 for n in resent.values()) <= 2 * 4, resent
    assert len(stand_in.accepted) >= accepted_before
