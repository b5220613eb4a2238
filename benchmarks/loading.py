"""Loading: `event-importer events load FILE` of a JSON Lines file into a fresh data folder, timed from
process start to exit, next to `event-importer --help` (the fixed cost of starting the CLI) and a
second load of the same file (every event unchanged: the upsert's read path)."""

import json
from pathlib import Path
from typing import Any

from benchmarks.common import bench_env, cli_command, rate, run_process
from benchmarks.data import synthetic_event


def write_jsonl(path: Path, events: int) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(1, events + 1):
            handle.write(json.dumps(synthetic_event(i), ensure_ascii=False))
            handle.write("\n")
    return path


def run(*, events: int, workdir: Path, log: Any) -> dict[str, Any]:
    log(f"[loading] event-importer events load of {events:,} JSON Lines")
    home = workdir / "loading"
    home.mkdir(parents=True, exist_ok=True)
    source = write_jsonl(workdir / f"events-{events}.jsonl", events)
    env = bench_env(home)
    startup = run_process([*cli_command(), "--help"], env=env, cwd=home).check()
    first = run_process([*cli_command(), "events", "load", str(source), "--json"], env=env, cwd=home).check()
    again = run_process([*cli_command(), "events", "load", str(source), "--json"], env=env, cwd=home).check()
    counts, counts_again = first.json(), again.json()
    if counts["new"] != events or counts_again["unchanged"] != events:
        raise RuntimeError(f"load: {counts}, again: {counts_again}")
    result = {
        "events": events,
        "file_mb": source.stat().st_size / 1e6,
        "process_wall_s": first.wall_s,
        "events_per_s": rate(events, first.wall_s),
        "cpu_s": first.cpu_s,
        "max_rss_mb": first.max_rss_mb,
        "cli_startup_s": startup.wall_s,
        "events_per_s_after_startup": rate(events, first.wall_s - startup.wall_s),
        "reload_wall_s": again.wall_s,
        "reload_events_per_s": rate(events, again.wall_s),
    }
    log(f"  {result['events_per_s']:,.0f} events/s ({first.wall_s:.1f} s; CLI start-up {startup.wall_s:.1f} s), "
        f"reload {result['reload_events_per_s']:,.0f}/s")
    return result
