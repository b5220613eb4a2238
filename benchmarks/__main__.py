"""`python -m benchmarks`: run the benchmarks, print the table, write `benchmarks/results/latest.json`.

    python -m benchmarks [--events N] [--latency S] [--concurrency C] [--only NAME ...] [--quick]
                         [--profile] [--no-postgres] [--keep]

Sections: throughput, selection, memory, loading, overhead (see benchmarks/README.md). `--quick` runs
every section at small sizes, without warm-up runs and with every event stating its timezone (a
smoke check in under a minute); the full run takes about 15 minutes
on a 2-core machine, most of it in the bare-httpx baselines and the 1,000,000-event selection.
"""

import argparse
import datetime as dt
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks import jobs, loading, memory, overhead, selection, throughput, workers
from benchmarks.common import REPO_ROOT, RESULTS_DIR, standin, temp_workdir
from benchmarks.data import ALL_TIMEZONES_ENV
from benchmarks.report import (
    Row,
    breakdown_rows,
    format_table,
    loading_memory_rows,
    loading_rows,
    markdown_table,
    memory_rows,
    overhead_rows,
    rows_json,
    selection_rows,
    throughput_rows,
    workers_rows,
)

SECTIONS = ["throughput", "selection", "memory", "loading", "overhead", "workers"]

FULL: dict[str, Any] = {"events": 20_000, "serial_events": 500, "loop_events": 500, "selection_events": 1_000_000,
        "first": 10_000, "memory": (10_000, 100_000), "loading_events": 100_000, "loading_mb": (10, 100), "repeats": 2,
        "breakdown": True, "workers_events": 20_000}
QUICK: dict[str, Any] = {"events": 500, "serial_events": 25, "loop_events": 25, "selection_events": 5_000,
         "first": 10_000, "memory": (1_000, 5_000), "loading_events": 5_000, "loading_mb": (1, 5), "repeats": 1,
         "breakdown": False, "workers_events": 2_000}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "packages": {p: version(p) for p in ("dagster", "httpx", "httpx-aiohttp", "aiohttp", "sqlalchemy", "psycopg")},
    }
    try:
        info["git"] = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO_ROOT, capture_output=True,
                                     text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    if selection.postgres_reachable():
        import psycopg

        with psycopg.connect(selection.POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")) as c:
            info["postgresql"] = c.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    return info


def cpu_times() -> list[int]:
    """The machine's CPU time counters (/proc/stat): user nice system idle iowait irq softirq steal."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            return [int(v) for v in stat.readline().split()[1:9]]
    except OSError:
        return []


def steal_share(before: list[int], after: list[int]) -> float | None:
    """The share of CPU time the hypervisor gave to other guests meanwhile (noise a VM adds)."""
    if not before or not after:
        return None
    delta = [b - a for a, b in zip(before, after, strict=True)]
    return round(delta[7] / sum(delta), 4) if sum(delta) else None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=None, help="events per throughput run (default 20,000)")
    parser.add_argument("--latency", type=float, default=0.02, help="stand-in latency in seconds (default 0.02)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, metavar="NAME", help=f"run only these: {SECTIONS}")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke check in under a minute")
    parser.add_argument("--profile", action="store_true", help="also profile the job and the loader (py-spy)")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL even when reachable")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (printed)")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes: dict[str, Any] = dict(QUICK if args.quick else FULL)
    if args.events:
        sizes["events"] = args.events
    sections = args.only or SECTIONS
    jobs.WARM_UP = not args.quick
    if args.quick:
        os.environ[ALL_TIMEZONES_ENV] = "1"
    started = time.perf_counter()
    cpu_before = cpu_times()
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    durations: dict[str, float] = {}
    rows: list[Row] = []
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    with temp_workdir(keep=args.keep) as workdir:
        if args.keep:
            log(f"scratch folder: {workdir}")

        def section(name: str, call: Any) -> Any:
            begun = time.perf_counter()
            try:
                results[name] = call()
                return results[name]
            except Exception as exc:  # noqa: BLE001 - one broken section must not lose the others
                errors[name] = f"{type(exc).__name__}: {exc}"
                log(f"[{name}] FAILED: {errors[name]}\n{traceback.format_exc()}")
                rows.append(Row(name.split("/")[0], "FAILED", errors[name].splitlines()[0][:120]))
                return None
            finally:
                durations[name] = round(time.perf_counter() - begun, 1)
                log(f"  ({name}: {durations[name]:.0f} s)")

        if "throughput" in sections:
            rows.extend(_throughput(args, sizes, workdir, section))
        if "selection" in sections:
            found = section("selection", lambda: selection.run(
                events=sizes["selection_events"], first=sizes["first"], workdir=workdir,
                postgres=not args.no_postgres, log=log))
            if found:
                rows.extend(selection_rows(found, sizes["first"], sizes["selection_events"]))
        if "memory" in sections:
            small, large = sizes["memory"]
            found = section("memory", lambda: memory.run(small=small, large=large, workdir=workdir, log=log))
            rows.extend(memory_rows(found, results.get("selection")))
        elif "selection" in sections:
            rows.extend(memory_rows(None, results.get("selection")))
        if "loading" in sections:
            found = section("loading", lambda: loading.run(events=sizes["loading_events"], workdir=workdir, log=log))
            if found:
                rows.extend(loading_rows(found))
            small_mb, large_mb = sizes["loading_mb"]
            found = section("loading/memory", lambda: loading.memory(
                small_mb=small_mb, large_mb=large_mb, workdir=workdir, log=log))
            if found:
                rows.extend(loading_memory_rows(found))
        if "overhead" in sections:
            found = section("overhead", lambda: overhead.run(workdir=workdir, log=log))
            if found:
                rows.extend(overhead_rows(found))
        if "workers" in sections and not args.no_postgres:
            found = section("workers", lambda: workers.run(
                events=sizes["workers_events"], concurrency=args.concurrency, latency=args.latency, workdir=workdir,
                log=log))
            if found:
                rows.extend(workers_rows(found))
        if args.profile:
            results["profiles"] = _profiles(args, sizes, workdir, log)
    elapsed = time.perf_counter() - started
    table = format_table(rows)
    print(table)
    document: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 1),
        "section_s": durations,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "sizes": sizes,
        "machine": {**machine(), "cpu_steal_share_during_run": steal_share(cpu_before, cpu_times())},
        "rows": rows_json(rows),
        "targets": {f"{r.section}: {r.measurement}": r.result for r in rows if r.result},
        "errors": errors,
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2, default=str))
    args.output.with_suffix(".md").write_text(markdown_table(rows) + "\n")
    targets: dict[str, str] = document["targets"]
    missed = [k for k, v in targets.items() if v == "MISS"]
    print(f"\n{len(targets) - len(missed)} of {len(targets)} targets met"
          f"{'; missed: ' + '; '.join(missed) if missed else ''}")
    print(f"elapsed {elapsed:.0f} s; wrote {args.output} (and {args.output.with_suffix('.md').name})")
    return 1 if errors else 0


def _throughput(args: argparse.Namespace, sizes: dict[str, Any], workdir: Path, section: Any) -> list[Row]:
    rows: list[Row] = []
    events, concurrency, latency = sizes["events"], args.concurrency, args.latency

    def scenario_and_breakdown(server: Any, *, main: bool, loop: Any, repeats: int) -> None:
        """The scenario at the server's latency and the full concurrency, then its breakdown."""
        name = f"{server.latency * 1000:g}ms-c{concurrency}"
        found = section(f"throughput/{name}", lambda: throughput.scenario(
            name, server, events=events, concurrency=concurrency, workdir=workdir, log=log, repeats=repeats))
        if found:
            rows.extend(throughput_rows(found, main=main, loop=loop))
        if sizes["breakdown"]:
            found = section(f"throughput/breakdown-{name}", lambda: throughput.breakdown(
                server, events=events, concurrency=concurrency, workdir=workdir, log=log))
            if found:
                rows.extend(breakdown_rows(found, name))

    with standin(latency, workdir / "standin-main") as server:
        loop = section("throughput/loop", lambda: throughput.loop_baseline(
            server, events=sizes["loop_events"], workdir=workdir, log=log))
        scenario_and_breakdown(server, main=True, loop=loop, repeats=sizes["repeats"])
        serial_name = f"{latency * 1000:g}ms-c1"
        found = section(f"throughput/{serial_name}", lambda: throughput.scenario(
            serial_name, server, events=sizes["serial_events"], concurrency=1, workdir=workdir, log=log))
        if found:
            rows.extend(throughput_rows(found, main=False, loop=None))
    with standin(0.0, workdir / "standin-zero") as server:
        scenario_and_breakdown(server, main=False, loop=None, repeats=1)
    return rows


def _profiles(args: argparse.Namespace, sizes: dict[str, Any], workdir: Path, log: Any) -> dict[str, Any]:
    from benchmarks import profiling
    from benchmarks.common import bench_env, cli_command, run_process
    from benchmarks.jobs import job_home, run_job, warm_up

    out = RESULTS_DIR / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    summaries: dict[str, Any] = {}
    with standin(args.latency, workdir / "standin-profile") as server:
        home = job_home(workdir, "profile-job", sizes["events"])
        warm_up(home, server, args.concurrency)
        command, profiler = profiling.wrap(["true"], out / "job.raw")
        prefix = command[: command.index("--") + 1] if profiler == "py-spy" else command[:-1]
        log(f"[profile] job, {sizes['events']:,} events under {profiler}")
        run_job(home, server=server, concurrency=args.concurrency, wrap=prefix)
        summaries["job"] = profiling.summarize(out / "job.raw", profiler)
        log(profiling.format_summary("job", summaries["job"]))
    home_path = workdir / "profile-load"
    home_path.mkdir(parents=True, exist_ok=True)
    source = loading.write_jsonl(workdir / "profile-load.jsonl", sizes["loading_events"])
    command, profiler = profiling.wrap([*cli_command(), "events", "load", str(source), "--json"], out / "load.raw")
    log(f"[profile] events load, {sizes['loading_events']:,} events under {profiler}")
    run_process(command, env=bench_env(home_path), cwd=home_path).check()
    summaries["load"] = profiling.summarize(out / "load.raw", profiler)
    log(profiling.format_summary("load", summaries["load"]))
    return summaries


if __name__ == "__main__":
    sys.exit(main())
