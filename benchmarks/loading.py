"""Loading: `event-importer events load FILE` of a JSON Lines file into a fresh data folder, timed from
process start to exit, next to `event-importer --help` (the fixed cost of starting the CLI) and a
second load of the same file (every event unchanged: the upsert's read path).

Memory: the peak RSS of `events load` of a small and a large JSON Lines file, and of a JSON array as
large as the large one, each into a fresh data folder; the loader streams, so the peak should not
grow with the file (the target: within 50 MB from the small file to the large one)."""

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


def write_sized(path: Path, megabytes: int, *, array: bool = False) -> int:
    """Synthetic events up to `megabytes` MB, one per line or as a JSON array; the number written."""
    limit, written, size = megabytes * 1_000_000, 0, 0
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("[\n" if array else "")
        while size < limit:
            line = json.dumps(synthetic_event(written + 1), ensure_ascii=False)
            handle.write(("," if array and written else "") + line + "\n")
            size += len(line.encode()) + 1
            written += 1
        handle.write("]\n" if array else "")
    return written


def peak_rss(megabytes: int, workdir: Path, log: Any, *, array: bool = False) -> dict[str, Any]:
    shape = "JSON array" if array else "JSON Lines"
    home = workdir / f"loading-{megabytes}mb-{'array' if array else 'lines'}"
    home.mkdir(parents=True, exist_ok=True)
    source = home / ("events.json" if array else "events.jsonl")
    events = write_sized(source, megabytes, array=array)
    done = run_process([*cli_command(), "events", "load", str(source), "--json"], env=bench_env(home), cwd=home).check()
    source.unlink()
    if done.json()["new"] != events:
        raise RuntimeError(f"load of {events} events: {done.json()}")
    log(f"  {megabytes} MB of {shape} ({events:,} events): peak RSS {done.max_rss_mb:,.0f} MB, {done.wall_s:.1f} s")
    return {"file_mb": megabytes, "shape": shape, "events": events, "max_rss_mb": done.max_rss_mb,
            "process_wall_s": done.wall_s}


def memory(*, small_mb: int, large_mb: int, workdir: Path, log: Any) -> dict[str, Any]:
    log(f"[loading] peak RSS of events load, {small_mb} MB and {large_mb} MB")
    small = peak_rss(small_mb, workdir, log)
    large = peak_rss(large_mb, workdir, log)
    array = peak_rss(large_mb, workdir, log, array=True)
    growth = large["max_rss_mb"] - small["max_rss_mb"]
    return {"small": small, "large": large, "large_array": array, "growth_mb": growth}


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
