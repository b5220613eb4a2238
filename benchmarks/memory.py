"""Memory: peak RSS of the dry-run job (`event-importer ticketfairy submit --dry-run`) over a small and a
large event cache, each against a run that selects nothing in the same data folder (the fixed cost of
the CLI, Dagster and the integrations). Peak RSS is the CLI process's own `ru_maxrss` from `wait4`.

The selection side (streaming 1,000,000 events through `BaseSubmitter.select`) is measured by
`benchmarks.selection`, which reports it next to these figures.
"""

import sqlite3
from pathlib import Path
from typing import Any

from benchmarks.common import rate
from benchmarks.jobs import job_home, run_job, warm_up


def dry_run(events: int, workdir: Path, log: Any) -> dict[str, Any]:
    home = job_home(workdir, f"memory-{events}", events)
    empty = warm_up(home, None, 32)
    run = run_job(home, server=None, concurrency=32, dry_run=True, as_json=False)
    with sqlite3.connect(home.database) as connection:
        (recorded,) = connection.execute(
            "SELECT count(*) FROM submissions WHERE run_id = ? AND status = 'dry_run'", (run.timings.run_id,)
        ).fetchone()
    if recorded != events:
        raise RuntimeError(f"dry run over {events} events recorded {recorded}")
    empty_rss = empty.max_rss_mb if empty else None
    log(f"  {events:>9,} events: peak RSS {run.process.max_rss_mb:,.0f} MB "
        f"(a run selecting nothing: {empty_rss or 0:,.0f} MB), run {run.timings.run_wall_s:.1f} s")
    return {
        "events": events,
        "max_rss_mb": run.process.max_rss_mb,
        "empty_run_max_rss_mb": empty_rss,
        "process_wall_s": run.process.wall_s,
        "run_wall_s": run.timings.run_wall_s,
        "steps_s": run.timings.steps,
        "dry_run_events_per_s": rate(events, run.timings.run_wall_s),
        "recorded": recorded,
    }


def run(*, small: int, large: int, workdir: Path, log: Any) -> dict[str, Any]:
    log(f"[memory] dry-run job over {small:,} and {large:,} events")
    low = dry_run(small, workdir, log)
    high = dry_run(large, workdir, log)
    return {"small": low, "large": high, "growth_mb": high["max_rss_mb"] - low["max_rss_mb"]}
