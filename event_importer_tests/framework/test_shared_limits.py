"""One rate limit and one in-flight limit for every process sending to a destination (Redis).

Several real worker processes, each with its own event database, send to one stand-in server at the
same time; the stand-in measures the peak requests per second and in flight over all of them. With
Redis configured both stay within the destination's limits; without it each process keeps its own,
and together they exceed them. Redis unreachable, at the start or half way: the run stops, says why,
and leaves no event pending or sent beyond the limits.
"""

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from event_importer.db.engine import Database
from event_importer.db.models import Submission, SubmissionStatus
from event_importer.errors import SharedLimitError
from event_importer.settings import Settings
from event_importer_tests.conftest import TEST_API_KEY
from event_importer_tests.factories import PlainSubmitter, add_events, event_data
from event_importer_tests.standin import StandInServer

pytestmark = pytest.mark.slow

WORKERS = 3
EVENTS_PER_WORKER = 120
PROCESS_TIMEOUT = 120
# What a loaded machine's scheduling may add to the peak second measured at the stand-in (see the test).
ARRIVAL_ALLOWANCE = 1.1


def _start_workers(tmp_path: Path, url: str, redis_url: str | None, **settings: str) -> list[subprocess.Popen[bytes]]:
    """`WORKERS` processes, each submitting its own events to `url`, released together."""
    start = tmp_path / "start"
    processes = []
    for n in range(WORKERS):
        database_url = f"sqlite:///{tmp_path / f'worker{n}.db'}"
        database = Database(database_url)
        add_events(database, *(event_data() for _ in range(EVENTS_PER_WORKER)))
        database.dispose()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("EVENT_IMPORTER_", "TICKETFAIRY_"))},
            "EVENT_IMPORTER_HOME": str(tmp_path / f"home{n}"),
            "EVENT_IMPORTER_DATABASE_URL": database_url,
            "TICKETFAIRY_API_URL": url,
            "TICKETFAIRY_API_KEY": TEST_API_KEY,
            "WORKER_START_FILE": str(start),
            **settings,
        }
        if redis_url:
            env["EVENT_IMPORTER_REDIS_URL"] = redis_url
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "event_importer_tests.reliability.worker", "unsubmitted", f"worker{n}"],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"READY", process.stderr.read() if process.stderr else ""
    start.touch()
    return processes


def _finish(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        out, err = process.communicate(timeout=PROCESS_TIMEOUT)
        assert process.returncode == 0, err.decode()[-3000:]
        assert b'"submitted": %d' % EVENTS_PER_WORKER in out, out


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "per-process"])
def test_in_flight_limit_holds_for_all_workers_together(tmp_path: Path, redis_url: str, shared: bool) -> None:
    limit = 6
    with StandInServer(api_key=TEST_API_KEY, latency=0.05) as server:
        workers = _start_workers(
            tmp_path, server.url, redis_url if shared else None, TICKETFAIRY_MAX_CONCURRENCY=str(limit)
        )
        _finish(workers)
        assert len(server.accepted) == WORKERS * EVENTS_PER_WORKER
        assert not server.duplicates()
        peak = server.peak_in_flight
    if shared:
        # Never passed (and reached or nearly: a loaded machine may not keep every slot busy).
        assert limit // 2 < peak <= limit
    else:
        # Each process keeps its own limit: together they pass the destination's (documented).
        assert peak > limit


def test_rate_limit_holds_for_all_workers_together(tmp_path: Path, redis_url: str) -> None:
    rate = 100
    with StandInServer(api_key=TEST_API_KEY, latency=0.02) as server:
        started = time.monotonic()
        workers = _start_workers(
            tmp_path, server.url, redis_url, TICKETFAIRY_RATE_LIMIT=str(rate), TICKETFAIRY_MAX_CONCURRENCY="16"
        )
        _finish(workers)
        seconds = time.monotonic() - started
        assert len(server.accepted) == WORKERS * EVENTS_PER_WORKER
        peak = server.peak_per_second()
    # 360 requests at 100/s take at least 3.6 s whoever sends them (each process alone would be allowed
    # 100/s, and the three together would be done in 1.2 s).
    assert seconds >= (WORKERS * EVENTS_PER_WORKER - 1) / rate
    # Requests are granted 10 ms apart across the workers, each leaving within 5 ms of its slot. The
    # stand-in stamps a request when its handler starts: on a loaded machine a sender or the server
    # descheduled for a few ms bunches arrivals that were spaced (measured: 101-111 in the peak second
    # at load average 9). 10 % is that allowance, not the limiter's: without the shared limit the three
    # workers would reach 300 (each allowed 100/s).
    assert peak <= ARRIVAL_ALLOWANCE * rate


def _plain_submitter(url: str, redis: str, **settings: object) -> PlainSubmitter:
    submitter = PlainSubmitter(app_settings=Settings(redis_url=SecretStr(redis), max_concurrency=4))
    submitter.url = url
    for name, value in settings.items():
        setattr(submitter.settings, name, value)
    return submitter


def test_unreachable_store_stops_the_run_before_anything_is_claimed(database: Database) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    add_events(database, *(event_data() for _ in range(5)))
    with StandInServer() as server:
        submitter = _plain_submitter(server.url, f"redis://:hunter2secret@127.0.0.1:{closed_port}/0")
        with pytest.raises(SharedLimitError) as raised:
            submitter.submit_events(database)
        assert server.requests_seen == 0
    message = str(raised.value)
    assert "EVENT_IMPORTER_REDIS_URL" in message and "unreachable" in message
    assert "hunter2secret" not in message
    with database.session() as session:
        assert session.scalars(select(Submission)).all() == []


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Redis server of this test's own, which the test may stop."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        + ["--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail("the test's own redis-server did not start")
            time.sleep(0.02)
    yield f"redis://127.0.0.1:{port}/0", process
    process.kill()
    process.wait()


def test_store_lost_half_way_stops_sending_and_leaves_nothing_pending(
    sqlite_database: Database, private_redis: tuple[str, subprocess.Popen[bytes]]
) -> None:
    url, redis_process = private_redis
    events = 200
    add_events(sqlite_database, *(event_data() for _ in range(events)))
    with StandInServer(latency=0.01) as server:
        submitter = _plain_submitter(server.url, url, rate_limit=50.0)

        def stop_redis_once_sending() -> None:
            while server.requests_seen < 20:
                time.sleep(0.01)
            redis_process.kill()

        stopper = threading.Thread(target=stop_redis_once_sending, daemon=True)
        stopper.start()
        with pytest.raises(SharedLimitError, match="EVENT_IMPORTER_REDIS_URL"):
            submitter.submit_events(sqlite_database)
        stopper.join()
        sent = server.requests_seen
        time.sleep(0.2)
        assert server.requests_seen == sent, "a request left after the run stopped"
    assert 20 <= sent < events
    with sqlite_database.session() as session:
        rows = session.execute(select(Submission.status, Submission.error)).all()
    statuses = [status for status, _ in rows]
    assert SubmissionStatus.PENDING.value not in statuses
    assert statuses.count(SubmissionStatus.SUCCESS.value) == sent
    not_sent = [error for status, error in rows if status == SubmissionStatus.FAILED.value]
    assert not_sent and all(error.startswith("not sent: ") for error in not_sent)
