"""What every benchmark shares: paths, a clean environment per run, measured subprocesses, the stand-in
server as a process, and reading a run's timings back from the Dagster instance.

Every measurement runs in its own subprocess with its own temporary data folder, so no benchmark
sees another's database, Dagster instance, imports or heap; the harness process only starts them
and reads their results.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
PYTHON = sys.executable
SERVICE = "ticketfairy"
API_KEY = "bench-key"
# Settings the project reads from the environment; a benchmark never inherits the caller's.
PROJECT_ENV_PREFIXES = ("EVENT_IMPORTER_", "TICKETFAIRY_", "WEBHOOK_", "CALDAV_", "DAGSTER_")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cli_command() -> list[str]:
    """The installed `event-importer` script of this interpreter's environment (what a user runs)."""
    script = Path(sys.executable).parent / "event-importer"
    if script.exists():
        return [str(script)]
    return [PYTHON, "-c", "import sys; from event_importer.cli.main import main; sys.exit(main())"]


def bench_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of one benchmark subprocess: the caller's, minus project settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PROJECT_ENV_PREFIXES)}
    env["EVENT_IMPORTER_HOME"] = str(home)
    env["DAGSTER_HOME"] = str(home / "dagster")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@dataclass
class ProcessResult:
    """A finished subprocess: wall time from spawn to exit, exit status, peak RSS and CPU time."""

    command: list[str]
    wall_s: float
    returncode: int
    stdout: str
    stderr: str
    max_rss_mb: float
    cpu_s: float

    def json(self) -> Any:
        """The JSON document the command printed (after anything a wrapper, e.g. a profiler, printed first)."""
        start = self.stdout.find("{")
        if start < 0:
            raise ValueError(f"no JSON in the output of {' '.join(self.command[:6])}: {self.stdout[:200]!r}")
        return json.JSONDecoder().raw_decode(self.stdout[start:])[0]

    def check(self, allowed: Sequence[int] = (0,)) -> "ProcessResult":
        if self.returncode not in allowed:
            tail = "\n".join(self.stderr.strip().splitlines()[-25:])
            raise RuntimeError(f"{' '.join(self.command[:6])} exited {self.returncode}:\n{tail}")
        return self


# Peak RSS must be the measured command's own. Linux keeps a process's RSS high-water mark across
# exec, and a child forked from the harness starts with the harness's (hundreds of MB after building
# the selection database), so a small launcher forks the command from itself and reports `wait4`.
_LAUNCHER = """
import json, os, sys, time
report, command = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(command[0], command)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(report, "w") as handle:
    json.dump({"wall_s": wall, "max_rss_kb": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime,
               "returncode": os.waitstatus_to_exitcode(status)}, handle)
"""


def run_process(
    command: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    timeout: float = 1800.0,
) -> ProcessResult:
    """Run `command` to completion, measuring it with `wait4` in a small launcher process: its wall time
    from fork to exit, its own peak RSS and CPU time (never the harness's).

    stdout and stderr go to files (a run may print megabytes of JSON), read back afterwards.
    """
    cwd.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cwd) as scratch:
        folder = Path(scratch)
        report = folder / "rusage.json"
        with open(folder / "out", "w+b") as out, open(folder / "err", "w+b") as err:
            process = subprocess.Popen([PYTHON, "-S", "-c", _LAUNCHER, str(report), *command], env=env, cwd=cwd,
                                       stdout=out, stderr=err, start_new_session=True)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process.pid)
                process.wait()
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode("utf-8", "replace")
            stderr = err.read().decode("utf-8", "replace")
        if not report.exists():
            return ProcessResult(command, 0.0, process.returncode or -1, stdout, stderr, 0.0, 0.0)
        usage = json.loads(report.read_text())
        return ProcessResult(
            command=command,
            wall_s=usage["wall_s"],
            returncode=usage["returncode"],
            stdout=stdout,
            stderr=stderr,
            max_rss_mb=usage["max_rss_kb"] / 1024,
            cpu_s=usage["cpu_s"],
        )


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_module(module: str, args: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 1800.0) -> Any:
    """Run `python -m benchmarks.<module> ARGS`, which prints one JSON object; return it with the process figures."""
    result = run_process([PYTHON, "-m", f"benchmarks.{module}", *args], env=env, cwd=cwd, timeout=timeout).check()
    answer = result.json()
    answer["process"] = {"wall_s": result.wall_s, "max_rss_mb": result.max_rss_mb, "cpu_s": result.cpu_s}
    return answer


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a live process has used so far (from /proc)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class StandIn:
    """The loopback stand-in destination (`event_importer_tests.standin`) as its own process."""

    def __init__(self, latency: float, workdir: Path) -> None:
        self.latency = latency
        self.workdir = workdir
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> "StandIn":
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = bench_env(self.workdir)
        self.process = subprocess.Popen(
            [PYTHON, "-m", "event_importer_tests.standin", "--port", "0", "--latency", str(self.latency),
             "--api-key", API_KEY],
            env=env, cwd=self.workdir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"the stand-in server did not start: {line!r}")
        self.url = line.split(" ", 1)[1]
        return self

    @property
    def origin(self) -> str:
        return self.url.rsplit("/api", 1)[0]

    def _control(self, method: str, path: str) -> Any:
        request = urllib.request.Request(f"{self.origin}/_control/{path}", method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def reset(self) -> None:
        self._control("POST", "reset")

    def stats(self) -> dict[str, Any]:
        return self._control("GET", "stats")  # type: ignore[no-any-return]

    def cpu_seconds(self) -> float:
        assert self.process is not None
        return process_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@contextmanager
def standin(latency: float, workdir: Path) -> Iterator[StandIn]:
    server = StandIn(latency, workdir).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def temp_workdir(keep: bool = False) -> Iterator[Path]:
    """A scratch folder for one harness run (data folders, databases, stand-in logs)."""
    path = Path(tempfile.mkdtemp(prefix="event-importer-bench-"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


@dataclass
class RunTimings:
    """A Dagster run's own timings, read from the instance's run record and event log."""

    run_id: str
    status: str
    run_wall_s: float | None
    steps: dict[str, float] = field(default_factory=dict)
    materialization_metadata: dict[str, Any] = field(default_factory=dict)


def read_run_timings(dagster_home: Path, run_id: str | None = None) -> RunTimings:
    """The run's start-to-end time and each step's STEP_START-to-STEP_SUCCESS/FAILURE time.

    Without `run_id`, the newest run of the instance.
    """
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
        if run_id is None:
            records = instance.get_run_records(limit=1)
            if not records:
                raise RuntimeError(f"no run in the instance at {dagster_home}")
            record = records[0]
        else:
            found = instance.get_run_record_by_id(run_id)
            if found is None:
                raise RuntimeError(f"run {run_id} not found in {dagster_home}")
            record = found
        run = record.dagster_run
        wall = (record.end_time - record.start_time) if record.start_time and record.end_time else None
        starts: dict[str, float] = {}
        steps: dict[str, float] = {}
        metadata: dict[str, Any] = {}
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None or entry.step_key is None:
                continue
            kind = event.event_type
            if kind == dg.DagsterEventType.STEP_START:
                starts[entry.step_key] = entry.timestamp
            elif kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
                if entry.step_key in starts:
                    steps[entry.step_key] = entry.timestamp - starts[entry.step_key]
            elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
                materialization = event.event_specific_data.materialization  # type: ignore[union-attr]
                metadata[entry.step_key] = {
                    key: _metadata_value(value) for key, value in materialization.metadata.items()
                }
        return RunTimings(run.run_id, run.status.value, wall, steps, metadata)


def _metadata_value(value: Any) -> Any:
    raw = getattr(value, "value", value)
    if isinstance(raw, (int, float, bool, str)) or raw is None:
        return raw if not isinstance(raw, str) or len(raw) < 200 else raw[:200] + "…"
    return str(raw)[:200]


def rate(count: float, seconds: float | None) -> float | None:
    return count / seconds if seconds else None
