"""Submission runs for the CLI and the API: started through the Dagster instance, followed through its event log.

`submit_through_dagster` validates the request (nothing is recorded when it is wrong), creates one
run of `<svc>_submit_job` per shard with the tags saying who started it, submits them to the
instance's run queue (`event_importer.run_queue`: the per-lane limits of `dagster.yaml` apply as to
the UI's, the schedules' and the sensors' runs), and follows each run through its event log: the
steps' info messages are the progress lines, and when the run ends its counts come from the
materialization metadata and its per-event outcomes from the ledger (by run id). The runs execute
in the run launcher's processes, never in the caller's.

`start_submission` only starts the runs (the API answers 202 with their ids); `run_report` reads
what a run did, finished or not (`GET /runs/<id>`).
"""

import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from pydantic import ValidationError
from sqlalchemy import select

from event_importer.db.engine import configured_database
from event_importer.db.models import EventCache
from event_importer.errors import EventImporterError, UsageError
from event_importer.framework.discovery import Integration, discover
from event_importer.framework.records import Outcome, SubmissionResult
from event_importer.instance import open_instance
from event_importer.ledger import run_results
from event_importer.orchestration import (
    PROGRESS_METADATA,
    SKIPPED_METADATA,
    TAG_INTEGRATION,
    TAG_SUBMISSION,
    TRIGGERS,
    ShardConfig,
    SubmitConfig,
    job_name,
    submission_job,
    submitted_config,
)
from event_importer.run_queue import Dispatcher, fail_if_worker_gone
from event_importer.secret_settings import redact

ProgressCallback = Callable[[str], None]

# How often a follower reads the event log of the runs it waits for.
POLL_INTERVAL_S = 0.2
# Dagster's console logger would print every event of the run to the run worker's stderr; the event log keeps them.
QUIET_LOGGERS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
COUNT_KEYS = ("selected", "transformed", "invalid", "submitted", "failed", "dry_run", "skipped")
_END_EVENTS = {
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_CANCELED,
}


def _error_names(cls: type[Exception]) -> set[str]:
    """The names of `cls` and its subclasses: errors whose message says everything without the class name."""
    return {cls.__name__}.union(*(_error_names(sub) for sub in cls.__subclasses__()))


@dataclass(frozen=True)
class RunSummary:
    """What one submission did: one run, or the runs of its shards together."""

    run_id: str
    service: str
    selector: str
    dry_run: bool
    #: Whether the Dagster run succeeded (its steps and blocking checks); every shard's, for several.
    success: bool
    #: selected, transformed, invalid, submitted, failed, dry_run, skipped.
    counts: dict[str, int]
    results: list[SubmissionResult] = field(default_factory=list)
    #: Why the run failed, when it did; never holds a secret.
    error: str | None = None
    #: Whether the failure was a configuration error (e.g. a missing API key): nothing was sent.
    configuration_error: bool = False
    #: Every run of the submission (one per shard); `run_id` is the first.
    run_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The run succeeded and no selected event failed."""
        return self.success and not any(r.outcome is Outcome.FAILED for r in self.results)


@dataclass(frozen=True)
class PreparedSubmission:
    """A validated request: the integration and the run config and tags of each of its runs."""

    integration: Integration
    config: SubmitConfig
    runs: list[tuple[str, dict[str, Any], dict[str, str]]]

    @property
    def run_ids(self) -> list[str]:
        return [run_id for run_id, _, _ in self.runs]


def prepare_submission(
    service: str,
    *,
    selector: str = "unsubmitted",
    url: str | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    shards: int = 1,
    trigger: str = "cli",
) -> PreparedSubmission:
    """Validate a request as the launchpad cannot (selector needs, bounds) and name its runs.

    Raises:
        IntegrationNotFoundError: no integration has that name.
        UnknownSelectorError: the integration has no such selector.
        UsageError: the request is incomplete or out of range.
        ConfigurationError: the integration's settings are invalid.
    """
    if trigger not in TRIGGERS:
        raise ValueError(f"trigger must be one of {', '.join(TRIGGERS)}, not {trigger!r}")
    if shards < 1:
        raise UsageError(f"shards: must be at least 1, not {shards}")
    integration = discover().get(service)
    submitter = integration.create_submitter()
    chosen = submitter.get_selector(selector)
    if chosen.needs_url and not url:
        raise UsageError(f"the {selector!r} selector needs a url")
    job = submission_job(integration, submitter)
    submission = str(uuid.uuid4())
    runs = []
    for index in range(shards):
        shard = ShardConfig(index=index, count=shards) if shards > 1 else None
        try:
            config = job.config_class(selector=selector, url=url, dry_run=dry_run, limit=limit, shard=shard)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise UsageError(problems) from None
        tags = job.tags(config, trigger)
        if shards > 1:
            tags[TAG_SUBMISSION] = submission
        run_id = submission if shards == 1 else str(uuid.uuid4())
        runs.append((run_id, {**job.run_config(config), **QUIET_LOGGERS}, tags))
    return PreparedSubmission(integration, config, runs)


def start_submission(dispatcher: Dispatcher, prepared: PreparedSubmission) -> list[str]:
    """Create and queue the submission's runs, and launch those the queue allows when no daemon serves it."""
    run_ids = dispatcher.create_runs(job_name(prepared.integration.name), prepared.runs)
    dispatcher.launch_queued(run_ids)
    return run_ids


def submit_through_dagster(
    service: str,
    *,
    selector: str = "unsubmitted",
    url: str | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    shards: int = 1,
    trigger: str = "cli",
    on_progress: ProgressCallback | None = None,
) -> RunSummary:
    """Start `<service>_submit_job` on the project's instance (one run per shard) and wait for the result.

    Args:
        service: the integration's name.
        selector: one of the integration's selectors.
        url: the source URL, for the 'url' selector.
        dry_run: select, transform and record dry-run outcomes, but send nothing.
        limit: submit at most this many events (per shard).
        shards: split the selected events into this many runs, which may run side by side.
        trigger: who starts the run (one of `TRIGGERS`), recorded as a run tag.
        on_progress: called with a line of text as the runs go (in the calling thread).

    Returns:
        The submission's summary; a run that failed (a configuration error in the run, a blocking
        asset check) is a summary with `success=False` and `error`, not an exception.

    Raises:
        IntegrationNotFoundError: no integration has that name.
        UnknownSelectorError: the integration has no such selector (nothing recorded).
        UsageError: the request is incomplete or out of range (nothing recorded).
        ConfigurationError: the integration's settings are invalid (nothing recorded).
    """
    with open_instance() as instance:
        prepared = prepare_submission(
            service, selector=selector, url=url, dry_run=dry_run, limit=limit, shards=shards, trigger=trigger
        )
        with Dispatcher(instance) as dispatcher:
            run_ids = start_submission(dispatcher, prepared)
            traces = follow_runs(instance, run_ids, dispatcher=dispatcher, on_progress=on_progress)
        summaries = [summarize_trace(prepared.integration, traces[run_id]) for run_id in run_ids]
    return merge_summaries(summaries)


class RunTrace:
    """What a follower learned of one run from its event log."""

    def __init__(self, run: dg.DagsterRun) -> None:
        self.run = run
        self.cursor: str | None = None
        self.status: dg.DagsterRunStatus = run.status
        self.metadata: dict[str, dict[str, Any]] = {}
        self.check_failures: list[str] = []
        self.step_failures: list[tuple[str, Any]] = []
        self.run_failure: str | None = None
        self.finished = False

    def read(self, instance: dg.DagsterInstance, on_message: ProgressCallback | None = None) -> None:
        """Read the run's new event-log records; info messages of its steps go to `on_message`."""
        while True:
            connection = instance.get_records_for_run(self.run.run_id, cursor=self.cursor, limit=1000)
            for record in connection.records:
                self._take(record.event_log_entry, on_message)
            self.cursor = connection.cursor
            if not connection.has_more:
                return

    def _take(self, entry: Any, on_message: ProgressCallback | None) -> None:
        event = entry.dagster_event
        if event is None:
            # Errors are told once, by the run's outcome: not as the engine's lines ("Dependencies for
            # step ... Not executing") for each step it skipped after the first one failed.
            if on_message is not None and logging.INFO <= entry.level < logging.ERROR and entry.step_key:
                on_message(entry.user_message)
            return
        kind = event.event_type
        if kind is dg.DagsterEventType.ENGINE_EVENT:
            data = event.engine_event_data
            if on_message is not None and data is not None and PROGRESS_METADATA in data.metadata:
                on_message(event.message or "")
        elif kind is dg.DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            self.metadata[materialization.asset_key.path[-1]] = {
                name: value.value for name, value in materialization.metadata.items()
            }
        elif kind is dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if not evaluation.passed and evaluation.severity is dg.AssetCheckSeverity.ERROR and evaluation.blocking:
                detail = evaluation.description or "did not pass"
                self.check_failures.append(f"asset check {evaluation.check_name} failed: {detail}")
        elif kind is dg.DagsterEventType.STEP_FAILURE:
            failure = event.step_failure_data
            self.step_failures.append((event.step_key, failure.error if failure else None))
        elif kind is dg.DagsterEventType.RUN_FAILURE:
            self.run_failure = event.message or entry.user_message
        if kind in _END_EVENTS:
            self.finished = True
            self.status = {
                dg.DagsterEventType.RUN_SUCCESS: dg.DagsterRunStatus.SUCCESS,
                dg.DagsterEventType.RUN_FAILURE: dg.DagsterRunStatus.FAILURE,
                dg.DagsterEventType.RUN_CANCELED: dg.DagsterRunStatus.CANCELED,
            }[kind]


def follow_runs(
    instance: dg.DagsterInstance,
    run_ids: Sequence[str],
    *,
    dispatcher: Dispatcher | None = None,
    on_progress: ProgressCallback | None = None,
    timeout: float | None = None,
) -> dict[str, RunTrace]:
    """Follow the runs until each has ended (or `timeout` seconds passed), launching queued ones when no daemon does.

    With several runs, each progress line starts with its shard (`shard 2/4: ...`).
    """
    traces = {}
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        if run is None:
            raise LookupError(f"no run {run_id} on this instance")
        traces[run_id] = RunTrace(run)
    count = len(run_ids)
    prefixes = {run_id: f"shard {i + 1}/{count}: " if count > 1 else "" for i, run_id in enumerate(run_ids)}
    deadline = None if timeout is None else time.monotonic() + timeout
    told_queued: set[str] = set()
    while True:
        waiting = [run_id for run_id, trace in traces.items() if not trace.finished]
        if dispatcher is not None and waiting:
            dispatcher.launch_queued(waiting)
        for run_id in waiting:
            trace = traces[run_id]
            say = None if on_progress is None else (lambda line, p=prefixes[run_id]: on_progress(p + line))
            trace.read(instance, say)
            if not trace.finished:
                run = instance.get_run_by_id(run_id)
                if run is not None and fail_if_worker_gone(instance, run):
                    run = instance.get_run_by_id(run_id)
                if run is not None and run.is_finished:
                    # Ended without an end event (e.g. marked failed by a dispatcher): read what is left.
                    trace.read(instance, say)
                    trace.finished, trace.status = True, run.status
                elif run is not None and run.status is dg.DagsterRunStatus.QUEUED and run_id not in told_queued:
                    told_queued.add(run_id)
                    if say is not None:
                        say(f"run {run_id} waits in the run queue (one run per integration and shard at a time)")
        if all(trace.finished for trace in traces.values()):
            return traces
        if deadline is not None and time.monotonic() >= deadline:
            return traces
        time.sleep(POLL_INTERVAL_S)


def run_report(instance: dg.DagsterInstance, run_id: str) -> tuple[dg.DagsterRun, RunSummary | None]:
    """A submission run and, once it has ended, its summary.

    Raises:
        LookupError: the instance has no submission run with that id.
    """
    run = instance.get_run_by_id(run_id)
    if run is None or TAG_INTEGRATION not in run.tags or run.job_name != job_name(run.tags[TAG_INTEGRATION]):
        raise LookupError(f"no submission run {run_id}")
    if not run.is_finished:
        return run, None
    trace = RunTrace(run)
    trace.read(instance)
    trace.finished, trace.status = True, run.status
    return run, summarize_trace(discover().get(run.tags[TAG_INTEGRATION]), trace)


def merge_summaries(summaries: Sequence[RunSummary]) -> RunSummary:
    """One summary for the runs of a sharded submission (a single run's summary is returned as it is)."""
    first = summaries[0]
    if len(summaries) == 1:
        return first
    errors = [f"shard {i + 1}/{len(summaries)}: {s.error}" for i, s in enumerate(summaries) if s.error]
    return RunSummary(
        run_id=first.run_id,
        service=first.service,
        selector=first.selector,
        dry_run=first.dry_run,
        success=all(s.success for s in summaries),
        counts={key: sum(s.counts.get(key, 0) for s in summaries) for key in COUNT_KEYS},
        results=sorted((r for s in summaries for r in s.results), key=lambda r: r.event_id),
        error="; ".join(errors) or None,
        configuration_error=any(s.configuration_error for s in summaries),
        run_ids=[run_id for s in summaries for run_id in s.run_ids],
    )


def summarize_trace(integration: Integration, trace: RunTrace) -> RunSummary:
    run = trace.run
    service = integration.name
    config = submitted_config(service, run.run_config)
    dry_run = bool(config.get("dry_run", False))
    results = run_results(configured_database(), service, run.run_id)
    final = trace.metadata.get("submission_results")
    if final is not None:
        skipped = final.get(SKIPPED_METADATA) or []
        # Events another run held have no row of this run; those the destination's lifecycle rule
        # skipped have one already.
        recorded = {r.event_id for r in results}
        skipped = [entry for entry in skipped if int(entry[0]) not in recorded]
        if skipped:
            results = sorted([*results, *_skipped_results(skipped)], key=lambda r: r.event_id)
        counts = {key: int(final.get(key, 0)) for key in COUNT_KEYS}
    else:
        earlier = trace.metadata.get("payloads") or trace.metadata.get("selected_events") or {}
        selected = int(earlier.get("selected", 0))
        invalid = int(earlier.get("invalid", 0))
        by_outcome = {o: sum(r.outcome is o for r in results) for o in Outcome}
        counts = {
            "selected": selected,
            "transformed": int(earlier.get("transformed", selected - invalid)),
            "invalid": invalid,
            "submitted": by_outcome[Outcome.SUCCESS],
            "failed": by_outcome[Outcome.FAILED],
            "dry_run": by_outcome[Outcome.DRY_RUN],
            "skipped": by_outcome[Outcome.SKIPPED],
        }
    success = trace.status is dg.DagsterRunStatus.SUCCESS
    error, configuration = (None, False) if success else _failure(trace, integration)
    return RunSummary(
        run_id=run.run_id,
        service=service,
        selector=str(config.get("selector", "unsubmitted")),
        dry_run=dry_run,
        success=success,
        counts=counts,
        results=results,
        error=error,
        configuration_error=configuration,
        run_ids=[run.run_id],
    )


def _skipped_results(skipped: list[list[Any]]) -> list[SubmissionResult]:
    reasons = {int(event_id): str(reason) for event_id, reason in skipped}
    database = configured_database()
    with database.session() as session:
        rows = session.execute(
            select(EventCache.id, EventCache.source_url, EventCache.data).where(EventCache.id.in_(list(reasons)))
        ).all()
    return [
        SubmissionResult(
            event_id,
            source_url,
            str(data.get("title") or "") if isinstance(data, dict) else "",
            Outcome.SKIPPED,
            error=reasons[event_id],
        )
        for event_id, source_url, data in rows
    ]


def _failure(trace: RunTrace, integration: Integration) -> tuple[str, bool]:
    """Why the run failed, as one message (secrets redacted), and whether it was a configuration error."""
    messages: list[str] = list(trace.check_failures)
    configuration = False
    for step_key, error in trace.step_failures:
        if error is None or error.cls_name == "DagsterAssetCheckFailedError":
            continue
        chain = []
        while error is not None:
            chain.append(error)
            error = error.cause
        configuration = configuration or any(e.cls_name == "ConfigurationError" for e in chain)
        # The innermost error is the one that says what went wrong (Dagster wraps it once or twice).
        root = chain[-1]
        text = root.message.strip()
        if root.cls_name in _error_names(EventImporterError):
            # The project's errors name what they concern; Dagster's step key and class path add nothing.
            messages.append(re.sub(rf"^[\w.]*\b{root.cls_name}: ", "", text))
        else:
            messages.append(f"{step_key}: {text}")
    if not messages:
        if trace.status is dg.DagsterRunStatus.CANCELED:
            messages.append("the run was canceled")
        else:
            messages.append(trace.run_failure or "the run failed")
    return redact("; ".join(messages), integration), configuration
