"""Run overhead: a submission run that selects zero events, from CLI process start to exit and as the
Dagster run itself (run record start to end), on a fresh data folder (the first run creates the
Dagster instance) and again (a user's usual case); against starting Python, importing Dagster and
`event-importer --help`."""

from pathlib import Path
from typing import Any

from benchmarks.common import PYTHON, bench_env, cli_command, read_run_timings, run_process
from benchmarks.jobs import job_env, job_home, submit_command


def run(*, workdir: Path, log: Any) -> dict[str, Any]:
    log("[overhead] a run that selects zero events")
    home = job_home(workdir, "overhead", 0)
    env = job_env(home, None, 32)
    baselines = {
        "python_start_s": run_process([PYTHON, "-c", "pass"], env=env, cwd=home.path).check().wall_s,
        "import_dagster_s": run_process([PYTHON, "-c", "import dagster"], env=env, cwd=home.path).check().wall_s,
        "cli_help_s": run_process([*cli_command(), "--help"], env=bench_env(home.path), cwd=home.path).check().wall_s,
    }
    runs = {}
    for label in ("first", "warm"):
        process = run_process(submit_command("--json"), env=env, cwd=home.path).check()
        timings = read_run_timings(home.dagster_home, process.json()["run_id"])
        runs[label] = {
            "process_wall_s": process.wall_s,
            "run_wall_s": timings.run_wall_s,
            "steps_s": timings.steps,
            "steps_total_s": sum(timings.steps.values()),
            "max_rss_mb": process.max_rss_mb,
            "cpu_s": process.cpu_s,
        }
        log(f"  {label:<10} process {process.wall_s:.2f} s, run {timings.run_wall_s:.2f} s, "
            f"steps {runs[label]['steps_total_s']:.2f} s")
    return {"baselines": baselines, "runs": runs}
