"""Creating submission runs on the instance, queueing them, and launching them when no daemon does.

Every run the CLI and the API start goes through the instance like the UI's: it is created from the
code location of `workspace.yaml` (so the UI can re-execute it), submitted to the run coordinator
(the queue, with the per-lane limits of `dagster.yaml`), and executed by the run launcher (by
default a subprocess of the code server), never in the caller's own code path.

The queue is served by `dagster-daemon` (`event-importer ui` starts one). While no daemon has sent a
heartbeat for `DAEMON_STALE_AFTER_S` seconds, `Dispatcher.launch_queued` serves the caller's own
runs instead: under a file lock in `DAGSTER_HOME` (so two callers never both take the last slot), it
launches each queued run that the queue's limits allow, as the daemon would.

A run whose worker process died before it could record its end (a SIGKILL) would hold its lane for
ever; the worker records its `host:pid` as a run tag, and a dispatcher on that host marks such runs
failed before it counts the active ones (with a daemon, Dagster's run monitoring does that job).
"""

import logging
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import dagster as dg
from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData
from dagster._core.launcher import LaunchRunContext
from dagster._core.remote_representation.external import RemoteJob
from dagster._core.storage.dagster_run import ACTIVE_RUN_STATUSES
from dagster._core.workspace.context import WorkspaceProcessContext, WorkspaceRequestContext
from dagster._core.workspace.load_target import ModuleTarget, WorkspaceFileTarget, WorkspaceLoadTarget
from dagster._utils.error import serializable_error_info_from_exc_info
from dagster._utils.tags import TagConcurrencyLimitsCounter

from event_importer.errors import ConfigurationError
from event_importer.instance import dagster_home, file_lock, open_instance
from event_importer.ledger import HOSTNAME, owner_alive
from event_importer.orchestration import TAG_OWNER
from event_importer.settings import get_settings

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
WORKSPACE_FILE = PROJECT_ROOT / "workspace.yaml"
DEFINITIONS_MODULE = "event_importer.definitions"
LOCATION_NAME = "event_importer"
# The daemon beats every 30 s (Dagster's default); two missed beats and the caller launches its runs.
DAEMON_STALE_AFTER_S = 60.0
QUEUE_DAEMON = "QUEUED_RUN_COORDINATOR"


def load_target() -> WorkspaceLoadTarget:
    """`workspace.yaml` in a source checkout, else the installed module (a package has no workspace file)."""
    if WORKSPACE_FILE.is_file():
        return WorkspaceFileTarget(paths=[str(WORKSPACE_FILE)])
    return ModuleTarget(
        module_name=DEFINITIONS_MODULE, attribute="defs", working_directory=None, location_name=LOCATION_NAME
    )


def queue_daemon_live(instance: dg.DagsterInstance, *, now: float | None = None) -> bool:
    """Whether a daemon serving the run queue sent a heartbeat in the last `DAEMON_STALE_AFTER_S` seconds."""
    beat = instance.get_daemon_heartbeats().get(QUEUE_DAEMON)
    return beat is not None and (now or time.time()) - beat.timestamp < DAEMON_STALE_AFTER_S


class Dispatcher:
    """Creates, queues and (without a daemon) launches runs, through one code server for its lifetime.

    Use as a context manager: entering starts the code server (a `dagster api grpc` subprocess with
    this process's environment, which the runs it launches inherit); leaving stops it once the runs
    it launched have finished.
    """

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self._stack = ExitStack()
        self._process: WorkspaceProcessContext | None = None

    def __enter__(self) -> Self:
        # The code server runs in the workspace's folder: give it (and the runs) the same absolute data folder.
        os.environ["EVENT_IMPORTER_HOME"] = str(get_settings().home.resolve())
        self._process = self._stack.enter_context(
            WorkspaceProcessContext(self.instance, load_target(), code_server_log_level="WARNING")
        )
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stack.close()
        self._process = None

    def _workspace(self) -> WorkspaceRequestContext:
        if self._process is None:
            raise RuntimeError("use the Dispatcher as a context manager")
        return self._process.create_request_context()

    def _remote_job(self, workspace: WorkspaceRequestContext, job_name: str) -> tuple[Any, Any, RemoteJob]:
        errors = workspace.get_code_location_error(LOCATION_NAME)
        if errors is not None:
            raise ConfigurationError(f"the code location {LOCATION_NAME} failed to load: {errors.message.strip()}")
        location = workspace.get_code_location(LOCATION_NAME)
        (repository,) = location.get_repositories().values()
        if not repository.has_job(job_name):
            raise ConfigurationError(
                f"{job_name} is not in the code location {LOCATION_NAME} (its integration failed to load there)"
            )
        return location, repository, repository.get_full_job(job_name)

    def create_runs(
        self, job_name: str, requests: Sequence[tuple[str, Mapping[str, Any], Mapping[str, str]]]
    ) -> list[str]:
        """Create one run per `(run_id, run_config, tags)` of `job_name` and submit each to the queue.

        The tags are merged over the job's own. Returns the run ids; the runs are QUEUED (or already
        launched, on an instance whose coordinator does not queue).
        """
        workspace = self._workspace()
        location, repository, remote_job = self._remote_job(workspace, job_name)
        run_ids = []
        for run_id, run_config, tags in requests:
            plan = location.get_execution_plan(
                remote_job, run_config, step_keys_to_execute=None, known_state=None, instance=self.instance
            )
            snapshot = plan.execution_plan_snapshot
            run = self.instance.create_run(
                job_name=job_name,
                run_id=run_id,
                run_config=run_config,
                resolved_op_selection=None,
                step_keys_to_execute=snapshot.step_keys_to_execute,
                op_selection=None,
                status=None,
                root_run_id=None,
                parent_run_id=None,
                tags={**remote_job.tags, **tags},
                job_snapshot=remote_job.job_snapshot,
                execution_plan_snapshot=snapshot,
                parent_job_snapshot=remote_job.parent_job_snapshot,
                remote_job_origin=remote_job.get_remote_origin(),
                job_code_origin=remote_job.get_python_origin(),
                asset_selection=None,
                asset_check_selection=None,
                asset_graph=repository.asset_graph,
            )
            run_ids.append(run.run_id)
        for run_id in run_ids:
            self.instance.submit_run(run_id, workspace)
        return run_ids

    def launch_queued(self, run_ids: Sequence[str]) -> list[str]:
        """Launch those of `run_ids` still queued that the queue's limits allow, unless a daemon serves the queue.

        Returns the ids launched now.
        """
        if queue_daemon_live(self.instance):
            # Dagster's run monitoring cannot tell that a default-launched run's process died; free its lane here.
            live_active_runs(self.instance)
            return []
        queued = [
            record.dagster_run
            for record in self.instance.get_run_records(
                filters=dg.RunsFilter(run_ids=list(run_ids), statuses=[dg.DagsterRunStatus.QUEUED])
            )
        ]
        if not queued:
            return []
        chosen = []
        with file_lock(dagster_home() / ".run-queue.lock"):
            config = self.instance.get_concurrency_config().run_queue_config
            active = live_active_runs(self.instance)
            room = len(queued) if config is None or config.max_concurrent_runs == -1 else (
                config.max_concurrent_runs - len(active)
            )
            counter = TagConcurrencyLimitsCounter(config.tag_concurrency_limits if config else [], active)
            order = {run_id: position for position, run_id in enumerate(run_ids)}
            for run in sorted(queued, key=lambda r: order[r.run_id]):
                if room <= 0:
                    break
                if counter.is_blocked(run):
                    continue
                # STARTING from here on: other dispatchers count it once this lock is released.
                self.instance.report_dagster_event(
                    DagsterEvent(event_type_value=DagsterEventType.PIPELINE_STARTING.value, job_name=run.job_name),
                    run_id=run.run_id,
                )
                counter.update_counters_with_launched_item(run)
                room -= 1
                chosen.append(run.run_id)
        # Each launch waits until its run's process has started: the shards of a submission start together.
        workspace = self._workspace()
        with ThreadPoolExecutor(max_workers=max(1, len(chosen))) as pool:
            list(pool.map(lambda run_id: self._launch(run_id, workspace), chosen))
        return chosen

    def _launch(self, run_id: str, workspace: WorkspaceRequestContext) -> None:
        """Hand a STARTING run to the run launcher; a launch that fails fails the run (as the daemon does)."""
        run = self.instance.get_run_by_id(run_id)
        if run is None:
            return
        try:
            self.instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=workspace))
        except Exception:  # noqa: BLE001 - recorded on the run, which the follower then reports
            error = serializable_error_info_from_exc_info(sys.exc_info())
            self.instance.report_engine_event(error.message, run, EngineEventData.engine_error(error))
            self.instance.report_run_failed(run)


def live_active_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """The runs holding a place in the queue's limits, after failing those whose worker died on this host."""
    records = instance.get_run_records(filters=dg.RunsFilter(statuses=ACTIVE_RUN_STATUSES))
    return [r.dagster_run for r in records if not fail_if_worker_gone(instance, r.dagster_run)]


def fail_if_worker_gone(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Mark an active run failed when its worker process, on this host, is gone; True when it did.

    Only this host's process table can tell: a run on another host is left to Dagster's run monitoring.
    """
    owner = run.tags.get(TAG_OWNER, "")
    if run.is_finished or owner.rpartition(":")[0] != HOSTNAME:
        return False
    if owner_alive(owner, None, stale_after=get_settings().stale_claim_after):
        return False
    instance.report_run_failed(run, message=f"the process running it ({owner}) is gone")
    return True


class QueueServer:
    """A long-lived process's dispatcher (the API's), with a thread that launches its queued runs.

    The API answers as soon as its runs are queued; while no daemon serves the queue, this thread
    launches each of them once the queue's limits allow, checking every `interval` seconds. The
    code server starts with the first submission, not with the process.
    """

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pending: list[str] = []
        self._stack = ExitStack()
        self._instance: dg.DagsterInstance | None = None
        self._dispatcher: Dispatcher | None = None
        self._thread: threading.Thread | None = None

    def instance(self) -> dg.DagsterInstance:
        """The instance, opened on first use."""
        with self._lock:
            return self._open_instance()

    def _open_instance(self) -> dg.DagsterInstance:
        if self._instance is None:
            self._instance = self._stack.enter_context(open_instance())
        return self._instance

    def dispatcher(self) -> Dispatcher:
        """The dispatcher, started on first use."""
        with self._lock:
            if self._dispatcher is None:
                self._dispatcher = self._stack.enter_context(Dispatcher(self._open_instance()))
                self._stop.clear()
                self._thread = threading.Thread(target=self._serve, name="event-importer-run-queue", daemon=True)
                self._thread.start()
            return self._dispatcher

    def watch(self, run_ids: Sequence[str]) -> None:
        """Launch these runs (those still queued) as soon as the queue allows."""
        with self._lock:
            self._pending.extend(run_ids)
        self._wake.set()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            with self._lock:
                pending, dispatcher = list(self._pending), self._dispatcher
            if not pending or dispatcher is None:
                continue
            try:
                dispatcher.launch_queued(pending)
                queued = {
                    record.dagster_run.run_id
                    for record in dispatcher.instance.get_run_records(
                        filters=dg.RunsFilter(run_ids=pending, statuses=[dg.DagsterRunStatus.QUEUED])
                    )
                }
            except Exception:  # noqa: BLE001 - a failed launch is recorded on its run; keep serving the rest
                logger.exception("launching queued runs failed")
                continue
            with self._lock:
                self._pending = [run_id for run_id in self._pending if run_id in queued or run_id not in pending]

    def close(self) -> None:
        """Stop the thread and the code server (which waits for the runs it executes); the next use starts anew."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
        with self._lock:
            self._stack.close()
            self._dispatcher = self._instance = None
