"""Running a submission through Dagster from the CLI and the API, on the project's instance.

`submit_through_dagster` executes the integration's `<svc>_submit_job` in this process
(`execute_in_process` on `DagsterInstance.get()`), so the run lands in the same run history as
those started by the UI, the schedules and the sensors, with the tags saying who started it. It
validates the request before anything is recorded, refuses to start while another run of the same
job is active on the instance, and serialises runs within the process: Dagster's in-process
execution must never run in two threads of one process at once (its log setup deadlocks and stdout
capture mixes runs), so the API's worker threads wait their turn on a process-wide lock.
"""

import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from pydantic import ValidationError

from event_importer.defs import integration_defs
from event_importer.defs.config import (
    TAG_OWNER,
    TRIGGERS,
    build_config_class,
    job_name,
    run_config,
    run_tags,
)
from event_importer.defs.factory import register_listener
from event_importer.defs.resources import redact
from event_importer.defs.values import Selection, Submitted, Transformed
from event_importer.errors import EventImporterError, RunInProgressError, UsageError
from event_importer.instance import prepare_environment
from event_importer.integrations.base import BaseSubmitter
from event_importer.integrations.discovery import Integration, discover
from event_importer.integrations.records import Outcome, SubmissionReport, SubmissionResult
from event_importer.ledger import current_owner, owner_alive
from event_importer.settings import get_settings

ProgressCallback = Callable[[str], None]

ACTIVE_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
# At most about this many progress lines per run, however big.
PROGRESS_LINES = 10
# Dagster's console logger would print every event of the run to stderr; the event log keeps them all.
QUIET_LOGGERS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}

# Runs in one process go one at a time (Dagster's in-process execution and the environment are
# process-wide); a second run of the same job is refused at once rather than queued behind the first.
_run_lock = threading.Lock()
_jobs_lock = threading.Lock()
_running_jobs: dict[str, str] = {}


@contextmanager
def _claim_job(service: str, trigger: str) -> Iterator[None]:
    name = job_name(service)
    with _jobs_lock:
        if name in _running_jobs:
            raise RunInProgressError(
                f"{name} already has an active run in this process (started by {_running_jobs[name]}); "
                "wait for it to finish"
            )
        _running_jobs[name] = trigger
    try:
        yield
    finally:
        with _jobs_lock:
            del _running_jobs[name]


def _error_names(cls: type[Exception]) -> set[str]:
    """The names of `cls` and its subclasses: errors whose message says everything without the class name."""
    return {cls.__name__}.union(*(_error_names(sub) for sub in cls.__subclasses__()))


@dataclass(frozen=True)
class RunSummary:
    """What one submission run did."""

    run_id: str
    service: str
    selector: str
    dry_run: bool
    #: Whether the Dagster run succeeded (its steps and blocking checks).
    success: bool
    #: selected, transformed, invalid, submitted, failed, dry_run, skipped.
    counts: dict[str, int]
    results: list[SubmissionResult] = field(default_factory=list)
    #: Why the run failed, when it did; never holds a secret.
    error: str | None = None
    #: Whether the failure was a configuration error (e.g. a missing API key): nothing was sent.
    configuration_error: bool = False

    @property
    def ok(self) -> bool:
        """The run succeeded and no selected event failed."""
        return self.success and not any(r.outcome is Outcome.FAILED for r in self.results)


class _Listener:
    """Collects the run's results as they come and tells `on_progress` how far the run is.

    Progress is a running count by outcome, not a line per event: the caller prints the events
    themselves once, in its results table.
    """

    def __init__(self, on_progress: ProgressCallback | None) -> None:
        self.on_progress = on_progress
        self.results: list[SubmissionResult] = []
        self.outcomes: Counter[str] = Counter()

    def message(self, text: str) -> None:
        if self.on_progress is not None:
            self.on_progress(text)

    def result(self, result: SubmissionResult, done: int, total: int) -> None:
        self.results.append(result)
        self.outcomes[result.outcome.value] += 1
        if self.on_progress is None:
            return
        if done % max(1, total // PROGRESS_LINES) == 0 or done == total:
            tally = ", ".join(f"{count} {outcome}" for outcome, count in sorted(self.outcomes.items()))
            self.on_progress(f"[{done}/{total}] recorded: {tally}")


def submit_through_dagster(
    service: str,
    *,
    selector: str = "unsubmitted",
    url: str | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    trigger: str = "cli",
    on_progress: ProgressCallback | None = None,
) -> RunSummary:
    """Run `<service>_submit_job` in this process on the project's Dagster instance.

    Args:
        service: the integration's name.
        selector: one of the integration's selectors.
        url: the source URL, for the 'url' selector.
        dry_run: select, transform and record dry-run outcomes, but send nothing.
        limit: submit at most this many events.
        trigger: who starts the run (one of `TRIGGERS`), recorded as a run tag.
        on_progress: called with a line of text as the run goes (in the calling thread).

    Returns:
        The run's summary; a run that failed (a configuration error in the run, a blocking asset
        check) is a summary with `success=False` and `error`, not an exception.

    Raises:
        IntegrationNotFoundError: no integration has that name.
        UnknownSelectorError: the integration has no such selector (nothing recorded).
        UsageError: the request is incomplete or out of range (nothing recorded).
        ConfigurationError: the integration's settings are invalid (nothing recorded).
        RunInProgressError: another run of the job is active on the instance.
    """
    if trigger not in TRIGGERS:
        raise ValueError(f"trigger must be one of {', '.join(TRIGGERS)}, not {trigger!r}")
    with _claim_job(service, trigger), _run_lock:
        prepare_environment()
        integration = discover().get(service)
        submitter = integration.create_submitter()
        config = _validated_config(integration, submitter, selector=selector, url=url, dry_run=dry_run, limit=limit)
        job = integration_defs(integration).resolve_job_def(job_name(service))
        run_id = str(uuid.uuid4())
        tags = {**run_tags(config, trigger), TAG_OWNER: current_owner()}
        listener = _Listener(on_progress)
        with dg.DagsterInstance.get() as instance:
            _refuse_if_active(instance, job.name)
            unregister = register_listener(run_id, listener)
            try:
                result = job.execute_in_process(
                    run_config={**run_config(service, config), **QUIET_LOGGERS},
                    instance=instance,
                    tags=tags,
                    run_id=run_id,
                    raise_on_error=False,
                )
            finally:
                unregister()
    return _summarize(integration, config.selector, dry_run, result, listener)


def _validated_config(
    integration: Integration,
    submitter: BaseSubmitter,
    *,
    selector: str,
    url: str | None,
    dry_run: bool,
    limit: int | None,
) -> Any:
    """The run's typed config, validated as the launchpad cannot (selector needs, pydantic bounds)."""
    chosen = submitter.get_selector(selector)
    if chosen.needs_url and not url:
        raise UsageError(f"the {selector!r} selector needs a url")
    config_class = build_config_class(integration.name, list(submitter.selectors))
    try:
        return config_class(selector=selector, url=url, dry_run=dry_run, limit=limit)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise UsageError(problems) from None


def _refuse_if_active(instance: dg.DagsterInstance, name: str) -> None:
    """Raise when a run of the job is active; mark in-process runs whose process died as failed."""
    stale_after = get_settings().stale_claim_after
    for record in instance.get_run_records(filters=dg.RunsFilter(job_name=name, statuses=ACTIVE_STATUSES)):
        run = record.dagster_run
        owner = run.tags.get(TAG_OWNER)
        if owner and not owner_alive(owner, record.create_timestamp, stale_after=stale_after):
            # Its process was killed before Dagster could record the end: nothing else will.
            instance.report_run_failed(run, message=f"the process running it ({owner}) is gone")
            continue
        started_by = run.tags.get("event-importer/trigger", "unknown")
        raise RunInProgressError(
            f"{name} already has an active run {run.run_id} ({run.status.value}, started by {started_by}); "
            "wait for it to finish or terminate it in the UI"
        )


def _summarize(
    integration: Integration, selector: str, dry_run: bool, result: Any, listener: _Listener
) -> RunSummary:
    service = integration.name
    submitted: Submitted | None = _asset_value(result, [service, "submission_results"])
    if submitted is not None:
        report = submitted.report
        results = report.results
    else:
        selection: Selection | None = _asset_value(result, [service, "selected_events"])
        transformed: Transformed | None = _asset_value(result, [service, "payloads"])
        invalid = transformed.invalid if transformed else 0
        results = listener.results
        selected = len(selection.events) if selection else 0
        report = SubmissionReport(service, selector, result.run_id, dry_run, selected, invalid, results)
    error, configuration = (None, False) if result.success else _failure(result, integration)
    return RunSummary(
        run_id=result.run_id,
        service=service,
        selector=selector,
        dry_run=dry_run,
        success=result.success,
        counts=report.counts,
        results=list(results),
        error=error,
        configuration_error=configuration,
    )


def _asset_value(result: Any, key: list[str]) -> Any:
    try:
        return result.asset_value(dg.AssetKey(key))
    except dg.DagsterError:
        return None


def _failure(result: Any, integration: Integration) -> tuple[str, bool]:
    """Why the run failed, as one message (secrets redacted), and whether it was a configuration error."""
    messages: list[str] = []
    configuration = False
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.severity is dg.AssetCheckSeverity.ERROR and evaluation.blocking:
            detail = evaluation.description or "did not pass"
            messages.append(f"asset check {evaluation.check_name} failed: {detail}")
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error if event.step_failure_data else None
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
            messages.append(f"{event.step_key}: {text}")
    if not messages:
        failure = result.get_run_failure_event()
        messages.append(failure.message if failure is not None else "the run failed")
    return _redact("; ".join(messages), integration), configuration


def _redact(text: str, integration: Integration) -> str:
    return redact(text, integration)
