"""Submission throughput: the whole Dagster job against bare clients and a one-at-a-time loop.

For each scenario (latency, concurrency, N) against one stand-in server process:
- the job, as `event-importer ticketfairy submit --json` in its own process (instance warmed up),
  timed three ways: the CLI process start to exit, the Dagster run's start to end (its run record),
  and the submission step alone (STEP_START to STEP_SUCCESS of `ticketfairy__submission_results`);
- a bare `httpx.AsyncClient` and a bare `aiohttp.ClientSession` posting the same payloads with the
  same concurrency to the same server: the faster is the destination's limit on this machine;
- the ideal, concurrency / latency.
CPU seconds of the client and of the server process show which side is saturated.
"""

from pathlib import Path
from typing import Any

from benchmarks.common import StandIn, bench_env, rate, run_module, sqlite_url
from benchmarks.jobs import SUBMIT_STEP, job_home, run_job, warm_up


def bare_clients(kinds: list[str], server: StandIn, events: int, concurrency: int, workdir: Path,
                 extra: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """The baselines of `benchmarks.bare`, in one process (payloads built once), each checked."""
    assert server.process is not None
    result = run_module(
        "bare", [*kinds, "--url", server.url, "--events", str(events), "--concurrency", str(concurrency),
                 "--server-pid", str(server.process.pid), "--payload-cache", str(workdir / "payloads.txt"),
                 *(extra or [])],
        env=bench_env(workdir), cwd=workdir,
    )
    for kind, run in result["runs"].items():
        if run["ok"] != events or run["accepted"] != events:
            raise RuntimeError(f"bare {kind}: {run['ok']} ok, {run['accepted']} accepted of {events}")
    return result["runs"]  # type: ignore[no-any-return]


def scenario(
    name: str, server: StandIn, *, events: int, concurrency: int, workdir: Path, log: Any, repeats: int = 1
) -> dict[str, Any]:
    """The job and both bare clients at one latency and concurrency, `repeats` times in turn.

    Each figure is the best of its repeats (the run least disturbed by the rest of the machine), and
    every sample is kept in the JSON.
    """
    latency = server.latency
    log(f"[throughput/{name}] {events:,} events, latency {latency * 1000:g} ms, concurrency {concurrency}"
        f"{f', best of {repeats}' if repeats > 1 else ''}")
    jobs: list[dict[str, Any]] = []
    bare: dict[str, list[dict[str, Any]]] = {"httpx": [], "aiohttp": []}
    for repeat in range(repeats):
        home = job_home(workdir, f"job-{name}-{repeat}", events)
        warm_up(home, server, concurrency)
        run = run_job(home, server=server, concurrency=concurrency)
        if run.counts.get("submitted") != events or run.server_accepted != events:
            raise RuntimeError(f"job: {run.counts}, server accepted {run.server_accepted} of {events}")
        log(f"  job: run {run.timings.run_wall_s:.1f} s, submission step {run.submit_step_s:.1f} s, "
            f"process {run.process.wall_s:.1f} s")
        jobs.append(run.summary())
        # httpx is CPU-bound at a steady rate far below the limit: once is enough (it takes minutes).
        kinds = list(bare) if repeat == 0 else ["aiohttp"]
        for kind, sample in bare_clients(kinds, server, events, concurrency, workdir).items():
            bare[kind].append(sample)
            log(f"  bare {kind}: {sample['events_per_s']:,.0f}/s")
    best_bare = {kind: max(samples, key=lambda b: b["events_per_s"]) for kind, samples in bare.items()}
    limit_kind = max(best_bare, key=lambda k: best_bare[k]["events_per_s"])
    limit = best_bare[limit_kind]["events_per_s"]
    job = min(jobs, key=lambda j: j["run_wall_s"])
    step = min(j["steps_s"].get(SUBMIT_STEP, float("inf")) for j in jobs)
    rates = {
        "ideal": concurrency / latency if latency else None,
        "bare_httpx": best_bare["httpx"]["events_per_s"],
        "bare_aiohttp": best_bare["aiohttp"]["events_per_s"],
        "job_run": rate(events, job["run_wall_s"]),
        "job_process": rate(events, min(j["process_wall_s"] for j in jobs)),
        "job_submission_step": rate(events, step if step != float("inf") else None),
    }
    return {
        "name": name,
        "events": events,
        "latency_s": latency,
        "concurrency": concurrency,
        "repeats": repeats,
        "limit": {"kind": limit_kind, "events_per_s": limit},
        "rates": rates,
        "ratios": {k: (v / limit if v else None) for k, v in rates.items() if k.startswith("job")},
        "job": job,
        "bare": best_bare,
        "samples": {"job": jobs, "bare": bare},
    }


def loop_baseline(server: StandIn, *, events: int, workdir: Path, log: Any) -> dict[str, Any]:
    """The reference importer's one-at-a-time loop on its own preloaded database."""
    log(f"[throughput/loop] {events:,} events one at a time, latency {server.latency * 1000:g} ms")
    home = job_home(workdir, "loop", events)
    result = bare_clients(["loop"], server, events, 1, home.path, ["--database-url", sqlite_url(home.database)])["loop"]
    log(f"  loop: {result['events_per_s']:,.1f}/s")
    return result


def breakdown(server: StandIn, *, events: int, concurrency: int, workdir: Path, log: Any) -> dict[str, Any]:
    """The submission path taken apart outside Dagster (see `benchmarks.breakdown`)."""
    from benchmarks.jobs import job_env

    log(f"[throughput/breakdown] {events:,} events, latency {server.latency * 1000:g} ms, concurrency {concurrency}")
    home = job_home(workdir, f"breakdown-{server.latency * 1000:g}ms", events)
    server.reset()
    result: dict[str, Any] = run_module("breakdown", ["--database", str(home.database), "--events", str(events),
                                      "--concurrency", str(concurrency)],
                        env=job_env(home, server, concurrency), cwd=home.path)
    for name in ("client", "submit", "ledger"):
        entry = result.get(name, {"error": "not run"})
        if "error" in entry:
            log(f"  {name:<26} {entry['error']}")
        else:
            log(f"  {name:<26} {entry['events_per_s']:8,.0f}/s  ({entry['seconds']:.1f} s, CPU {entry['cpu_s']:.1f} s)")
    log(f"  select {result['select_s']:.2f} s, transform {result['transform_s']:.2f} s")
    return result
