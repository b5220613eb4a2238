"""Running `event-importer ticketfairy submit` as a user does: the installed CLI in its own process, on
its own data folder, against the stand-in, then reading the run's own timings from its Dagster instance.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import (
    API_KEY,
    SERVICE,
    ProcessResult,
    RunTimings,
    StandIn,
    bench_env,
    cli_command,
    read_run_timings,
    run_process,
    sqlite_url,
)
from benchmarks.data import event_database

SUBMIT_STEP = f"{SERVICE}__submission_results"
# The Dagster instance must not be created inside the measured run: a user's instance already exists.
WARM_UP_SELECTOR = "failed"
# `--quick` turns warm-up runs off: a smoke check need not pay a CLI start for each.
WARM_UP = True


@dataclass
class JobHome:
    """A data folder with its own SQLite event cache and Dagster instance."""

    path: Path
    events: int

    @property
    def database(self) -> Path:
        return self.path / "event-importer.db"

    @property
    def dagster_home(self) -> Path:
        return self.path / "dagster"


def job_home(workdir: Path, label: str, events: int) -> JobHome:
    home = JobHome(workdir / label, events)
    home.path.mkdir(parents=True, exist_ok=True)
    event_database(home.database, events)
    return home


def job_env(home: JobHome, server: StandIn | None, concurrency: int) -> dict[str, str]:
    return bench_env(
        home.path,
        EVENT_IMPORTER_DATABASE_URL=sqlite_url(home.database),
        EVENT_IMPORTER_MAX_CONCURRENCY=str(concurrency),
        TICKETFAIRY_API_KEY=API_KEY,
        TICKETFAIRY_API_URL=server.url if server else "http://127.0.0.1:9/api",
    )


def submit_command(*args: str) -> list[str]:
    return [*cli_command(), SERVICE, "submit", *args]


@dataclass
class JobRun:
    """One measured CLI run of the submission job."""

    process: ProcessResult
    timings: RunTimings
    counts: dict[str, int]
    server_accepted: int | None = None
    server_cpu_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def submit_step_s(self) -> float | None:
        return self.timings.steps.get(SUBMIT_STEP)

    def summary(self) -> dict[str, Any]:
        return {
            "process_wall_s": self.process.wall_s,
            "run_wall_s": self.timings.run_wall_s,
            "steps_s": self.timings.steps,
            "status": self.timings.status,
            "counts": self.counts,
            "client_cpu_s": self.process.cpu_s,
            "client_max_rss_mb": self.process.max_rss_mb,
            "server_accepted": self.server_accepted,
            "server_cpu_s": self.server_cpu_s,
            "run_id": self.timings.run_id,
            "submission_metadata": self.timings.materialization_metadata.get(SUBMIT_STEP, {}),
            **self.extra,
        }


def warm_up(home: JobHome, server: StandIn | None, concurrency: int) -> ProcessResult | None:
    """A run that selects nothing, so the measured run finds its Dagster instance created, as a user's is."""
    if not WARM_UP:
        return None
    return run_process(
        submit_command("--selector", WARM_UP_SELECTOR, "--json"),
        env=job_env(home, server, concurrency),
        cwd=home.path,
    ).check()


def run_job(
    home: JobHome,
    *,
    server: StandIn | None,
    concurrency: int,
    dry_run: bool = False,
    as_json: bool = True,
    wrap: list[str] | None = None,
) -> JobRun:
    """Run `event-importer ticketfairy submit [--dry-run] [--json]` once and read back its timings.

    Args:
        wrap: a command prefix, e.g. a profiler's.
    """
    args = [*(["--dry-run"] if dry_run else []), *(["--json"] if as_json else [])]
    if server is not None:
        server.reset()
        cpu_before = server.cpu_seconds()
    command = [*(wrap or []), *submit_command(*args)]
    process = run_process(command, env=job_env(home, server, concurrency), cwd=home.path)
    process.check()
    run_id = process.json()["run_id"] if as_json else None
    counts = process.json()["counts"] if as_json else {}
    timings = read_run_timings(home.dagster_home, run_id)
    run = JobRun(process, timings, counts)
    if server is not None:
        run.server_cpu_s = server.cpu_seconds() - cpu_before
        run.server_accepted = int(server.stats()["accepted"])
    if timings.status != "SUCCESS":
        raise RuntimeError(f"the run {timings.run_id} ended {timings.status}: {process.stderr[-2000:]}")
    return run
