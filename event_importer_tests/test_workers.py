"""Sharded submissions executed by two Celery worker processes sharing only PostgreSQL, RabbitMQ and Redis.

Real parts throughout: the `event-importer` CLI submits through the instance, whose `dagster.yaml`
(written from the environment) keeps Dagster's storage in PostgreSQL and launches runs with
`CeleryRunLauncher` onto RabbitMQ; two `celery -A event_importer.workers worker` processes, each with
its own data folder and `DAGSTER_HOME`, execute them; the destination is the stand-in server in a
process of its own, which measures the peak requests per second and in flight over both workers.

1. A submission of 2,000 events in 4 shards: every event is sent exactly once, all four runs are in
   the one run history, executed by both workers.
2. 2,000 more events in 4 shards; one worker is killed with SIGKILL in the middle of a run. The CLI
   following the runs marks that run failed (its worker process is gone) and ends, and a
   re-run of its shard (`--selector pending`, then `--selector unsubmitted`) sends the rest: nothing
   is lost, and what was sent twice stays within the README's bound, 2 x max_concurrency per killed
   process.

Throughout, the destination never sees more requests in flight, nor more per second, than the one
shared limit allows.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from sqlalchemy.engine import make_url

from event_importer.db.engine import Database
from event_importer.orchestration.config import TAG_OWNER, TAG_SUBMISSION
from event_importer_tests.conftest import TEST_API_KEY, skip_or_fail
from event_importer_tests.factories import add_events, event_data
from event_importer_tests.framework.test_shared_limits import ARRIVAL_ALLOWANCE

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

BROKER_URL = os.environ.get("EVENT_IMPORTER_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
EVENTS = 2_000
SHARDS = 4
WORKERS = 2
MAX_CONCURRENCY = 6
RATE_LIMIT = 250
LATENCY = 0.02
KILL_AFTER = 300
PROCESS_TIMEOUT = 240
BIN = Path(sys.executable).parent


def _broker_unavailable() -> str | None:
    url = make_url(BROKER_URL.replace("amqp://", "postgresql://", 1))
    try:
        socket.create_connection((url.host or "127.0.0.1", url.port or 5672), timeout=2).close()
    except OSError as exc:
        return f"RabbitMQ not reachable at {url.host}:{url.port}: {type(exc).__name__}"
    return None


@pytest.fixture
def broker_queue() -> Iterator[str]:
    """A queue of this test's own on the broker (other test runs may share the broker), deleted at the end."""
    if reason := _broker_unavailable():
        skip_or_fail(reason)
    name = f"event-importer-test-{uuid.uuid4().hex[:8]}"
    yield name
    from kombu import Connection

    with Connection(BROKER_URL) as connection:
        connection.default_channel.queue_delete(name)


class StandIn:
    """The stand-in server in its own process, read through its control API."""

    def __init__(self, tmp_path: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "event_importer_tests.standin", "--latency", str(LATENCY)]
            + ["--api-key", TEST_API_KEY],
            stdout=subprocess.PIPE,
            stderr=(tmp_path / "standin.err").open("wb"),
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode().split()
        assert line[:1] == ["READY"], line
        self.url = line[1]
        self.control = self.url.rsplit("/api", 1)[0] + "/_control"

    def get(self, what: str) -> Any:
        with urllib.request.urlopen(f"{self.control}/{what}", timeout=30) as answer:
            return json.loads(answer.read())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _accepted_urls(stand_in: StandIn, batch: str) -> Counter[str]:
    urls = (r["body"]["data"]["attributes"]["url"] for r in stand_in.get("accepted"))
    return Counter(url for url in urls if f"/{batch}/" in url)


def _load(database_url: str, batch: str) -> None:
    database = Database(database_url)
    add_events(database, *(event_data(source_url=f"https://workers.example.org/{batch}/{n}") for n in range(EVENTS)))
    database.dispose()


def _wait(condition: Any, what: str, timeout: float = PROCESS_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_sharded_runs_on_two_workers_exactly_once_and_after_a_killed_worker(
    tmp_path: Path,
    postgres_url: str,
    dagster_postgres_url: str,
    redis_url: str,
    broker_queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stand_in = StandIn(tmp_path)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("EVENT_IMPORTER_", "TICKETFAIRY_", "DAGSTER_"))},
        "EVENT_IMPORTER_DATABASE_URL": postgres_url,
        "EVENT_IMPORTER_DAGSTER_POSTGRES_URL": dagster_postgres_url,
        "EVENT_IMPORTER_CELERY_BROKER_URL": BROKER_URL,
        "EVENT_IMPORTER_CELERY_QUEUE": broker_queue,
        "EVENT_IMPORTER_REDIS_URL": redis_url,
        "TICKETFAIRY_API_URL": stand_in.url,
        "TICKETFAIRY_API_KEY": TEST_API_KEY,
        "TICKETFAIRY_MAX_CONCURRENCY": str(MAX_CONCURRENCY),
        "TICKETFAIRY_RATE_LIMIT": str(RATE_LIMIT),
        "TICKETFAIRY_REQUEST_TIMEOUT": "5",
    }
    workers: list[subprocess.Popen[bytes]] = []

    def start_worker(n: int) -> subprocess.Popen[bytes]:
        home = tmp_path / f"worker{n}"
        home.mkdir()
        command = [str(BIN / "celery"), "-A", "event_importer.workers", "worker", "--pool", "solo"]
        command += ["--queues", broker_queue, "--hostname", f"w{n}-{broker_queue}@%h", "--loglevel", "WARNING"]
        command += ["--without-gossip", "--without-mingle"]
        process = subprocess.Popen(
            command,
            env={**env, "EVENT_IMPORTER_HOME": str(home / "data")},
            cwd=home,
            stdout=(home / "worker.out").open("wb"),
            stderr=(home / "worker.err").open("wb"),
            start_new_session=True,
        )
        workers.append(process)
        return process

    cli_home = tmp_path / "cli"
    cli_env = {**env, "EVENT_IMPORTER_HOME": str(cli_home)}

    def cli(*args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [str(BIN / "event-importer"), "ticketfairy", "submit", *args, "--json"],
            env=cli_env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def instance() -> dg.DagsterInstance:
        """The CLI's instance, opened in this process: the one run history, in PostgreSQL."""
        monkeypatch.setenv("DAGSTER_HOME", str(cli_home / "dagster"))
        monkeypatch.setenv("EVENT_IMPORTER_DAGSTER_POSTGRES_URL", dagster_postgres_url)
        return dg.DagsterInstance.get()

    started = time.monotonic()
    phases: dict[str, float] = {}

    def phase(name: str) -> None:
        phases[name] = round(time.monotonic() - started, 1)

    try:
        for n in range(WORKERS):
            start_worker(n)

        # 1. 2,000 events in 4 shards: each sent exactly once.
        _load(postgres_url, "first")
        first = cli("--shards", str(SHARDS))
        out, err = first.communicate(timeout=PROCESS_TIMEOUT)
        assert first.returncode == 0, err.decode()[-3000:]
        phase("first submission done")
        report = json.loads(out)
        assert report["counts"]["submitted"] == EVENTS, report["counts"]
        accepted = _accepted_urls(stand_in, "first")
        assert len(accepted) == EVENTS and max(accepted.values()) == 1

        with instance() as dagster:
            records = dagster.get_run_records()
            submission = {r.dagster_run.tags.get(TAG_SUBMISSION) for r in records}
            assert len(records) == SHARDS and len(submission) == 1, "every shard in the one run history"
            assert all(r.dagster_run.status is dg.DagsterRunStatus.SUCCESS for r in records)
            owners = {r.dagster_run.tags[TAG_OWNER] for r in records}
            pids = {str(w.pid) for w in workers}
            assert {owner.rpartition(":")[2] for owner in owners} == pids, "both workers executed runs"

        # 2. 2,000 more; one worker killed with SIGKILL in the middle of a run.
        _load(postgres_url, "second")
        second = cli("--shards", str(SHARDS))
        victim = workers[0]
        with instance() as dagster:

            def victim_mid_run() -> bool:
                running = dagster.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
                mine = any(r.dagster_run.tags.get(TAG_OWNER, "").endswith(f":{victim.pid}") for r in running)
                return mine and sum(_accepted_urls(stand_in, "second").values()) >= KILL_AFTER

            _wait(victim_mid_run, "the first worker to be half way through a run of the second submission")
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait(10)
            phase("worker killed")

        # The CLI following the runs sees that the killed run's worker is gone, marks that run failed,
        # and ends once the other shards' runs have ended.
        out, err = second.communicate(timeout=PROCESS_TIMEOUT)
        assert second.returncode == 1, err.decode()[-3000:]
        phase("second submission ended")
        with instance() as dagster:
            runs = dagster.get_run_records(filters=dg.RunsFilter(run_ids=json.loads(out)["run_ids"]))
            statuses = Counter(r.dagster_run.status for r in runs)
        assert statuses == {dg.DagsterRunStatus.SUCCESS: SHARDS - 1, dg.DagsterRunStatus.FAILURE: 1}, statuses

        # The re-run of the killed shard: its stale claims, then what it never claimed (one run each).
        for selector in ("pending", "unsubmitted"):
            rerun = cli("--selector", selector)
            out, err = rerun.communicate(timeout=PROCESS_TIMEOUT)
            assert rerun.returncode == 0, err.decode()[-3000:]
            phase(f"re-run {selector} done")

        accepted = _accepted_urls(stand_in, "second")
        assert len(accepted) == EVENTS, "an event was lost"
        duplicates = sum(count - 1 for count in accepted.values())
        assert duplicates <= 2 * MAX_CONCURRENCY, f"{duplicates} events sent twice"

        # The one shared limit held over both workers, the kill and the re-runs.
        stats = stand_in.get("stats")
        assert stats["peak_in_flight"] <= MAX_CONCURRENCY, stats
        assert stats["peak_per_second"] <= ARRIVAL_ALLOWANCE * RATE_LIMIT, stats
        print(json.dumps({"seconds": phases, "duplicates": duplicates, "stand-in": stats}))
    finally:
        for process in workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
        stand_in.stop()
