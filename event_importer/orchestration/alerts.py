"""One alerts sensor per integration: an alert when its submission runs start failing, a recovery notice
when a later run is healthy again.

The sensor reads the instance's event log for the job's `RUN_FAILURE` and `RUN_SUCCESS` events, in
the order they were stored, from where its cursor left off. Those events are written by every run on
the instance, however it was started and wherever it executed: launched runs (UI, schedules,
sensors, `dagster job launch`) and runs the CLI or API executed in their own process alike. That is
why this is a plain sensor over the event log and not a `run_failure_sensor`: it needs a state of its
own, kept in its cursor with the event-log position, to alert once per change of state.

- A failed run (a step error, a blocking asset check, a failure rate above
  `EVENT_IMPORTER_FAILURE_RATE_THRESHOLD`, which is a blocking check) of a healthy integration
  sends a `FAILING` alert; further failed runs send nothing.
- A successful run that recorded at least one outcome, after a failing one, sends `RECOVERED`. A
  run that had nothing to send proves nothing and leaves the state as it is.
- Dry runs are left out: they say nothing about the destination.

The first tick starts at the end of the log (no alerts about history). Delivery (see
`event_importer.alerts`) is retried a few times and logged when it fails; the state moves on either
way, so one broken target never repeats alerts on the others. The sensor starts no runs. Created
stopped, like the integration's other sensor and schedule.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import dagster as dg
from sqlalchemy import func, select

from event_importer.alerts import (
    LISTED_FAILURES,
    Alert,
    AlertKind,
    FailedEvent,
    configured_targets,
    deliver,
    missing_alert_settings,
)
from event_importer.db.engine import Database
from event_importer.db.models import EventCache, Submission, SubmissionStatus
from event_importer.framework.discovery import Integration
from event_importer.orchestration.config import TAG_DRY_RUN, TAG_SELECTOR, TAG_TRIGGER
from event_importer.orchestration.resources import DatabaseResource
from event_importer.secret_settings import redact
from event_importer.settings import get_settings

# Run-status events read per tick; the rest wait for the next tick.
PAGE = 50
_STATUS_EVENTS: tuple[Literal[dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.RUN_SUCCESS], ...] = (
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_SUCCESS,
)


def alerts_sensor_name(service: str) -> str:
    return f"{service}_alerts_sensor"


@dataclass(frozen=True)
class AlertState:
    """The sensor's cursor: how far it read the event log, and whether the integration is failing."""

    after: int | None = None
    failing: bool = False

    @classmethod
    def parse(cls, text: str | None) -> "AlertState":
        if not text:
            return cls()
        data = json.loads(text)
        return cls(data.get("after"), bool(data.get("failing")))

    def dump(self) -> str:
        return json.dumps({"after": self.after, "failing": self.failing}, sort_keys=True)


@dataclass(frozen=True)
class FinishedRun:
    run_id: str
    storage_id: int
    failed: bool
    tags: dict[str, str]
    #: The run-failure event's own message (e.g. a killed CLI process), when it failed.
    message: str | None


def build_alerts_sensor(integration: Integration, job_name: str) -> dg.SensorDefinition:
    service = integration.name

    @dg.sensor(
        name=alerts_sensor_name(service),
        # Read when the definitions load, like the schedules' cron.
        minimum_interval_seconds=get_settings().alert_interval,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=f"Alert (EVENT_IMPORTER_ALERT_* settings) when {service} submission runs start failing, "
        "and when a later run is healthy again. Starts no runs.",
    )
    def alerts_sensor(context: dg.SensorEvaluationContext, database: DatabaseResource) -> dg.SensorResult:
        state = AlertState.parse(context.cursor)
        instance = context.instance
        if state.after is None:
            start = AlertState(_newest_storage_id(instance), state.failing)
            return dg.SensorResult(skip_reason="started: watching runs from now on", cursor=start.dump())
        runs, read_up_to = _finished_runs(instance, job_name, state.after)
        if not runs:
            return dg.SensorResult(
                skip_reason=f"no {job_name} run finished since the last tick",
                cursor=AlertState(read_up_to, state.failing).dump(),
            )
        settings = get_settings()
        targets = configured_targets(settings)
        for missing in missing_alert_settings(settings):
            context.log.error(f"{missing} is not set: alert emails have no recipient")
        db = database.get_database()
        failing = state.failing
        notes = []
        for run in runs:
            if run.tags.get(TAG_DRY_RUN) == "true":
                continue
            kind = _change(failing, run, db, service)
            if kind is None:
                continue
            failing = kind is AlertKind.FAILING
            alert = build_alert(kind, integration, run, db, instance, settings.ui_url)
            if not targets:
                notes.append(f"{kind.value} (run {run.run_id}); no alert target is configured")
                continue
            outcome = deliver(alert, targets, attempts=settings.alert_attempts, log=context.log)
            sent = [name for name, error in outcome.items() if error is None]
            notes.append(f"{kind.value} (run {run.run_id}): sent to {', '.join(sent) or 'no target'}")
        summary = "; ".join(notes) or f"{len(runs)} runs finished, no change of state"
        context.log.info(summary)
        return dg.SensorResult(skip_reason=summary, cursor=AlertState(read_up_to, failing).dump())

    return alerts_sensor


def _newest_storage_id(instance: dg.DagsterInstance) -> int:
    newest = 0
    for event_type in _STATUS_EVENTS:
        records = instance.fetch_run_status_changes(event_type, limit=1, ascending=False).records
        newest = max([newest, *(record.storage_id for record in records)])
    return newest


def _finished_runs(instance: dg.DagsterInstance, job_name: str, after: int) -> tuple[list[FinishedRun], int]:
    """The job's runs that finished after event-log position `after`, in the order they finished,
    and the position read up to (runs of other jobs count for that, the storages in use cannot
    filter by job)."""
    records: list[Any] = []
    horizon: int | None = None
    for event_type in _STATUS_EVENTS:
        page = instance.fetch_run_status_changes(
            dg.RunStatusChangeRecordsFilter(event_type, after_storage_id=after), limit=PAGE, ascending=True
        ).records
        records += page
        if len(page) == PAGE:
            # Events of the other type beyond this page's end wait for the next tick, to keep the order.
            horizon = page[-1].storage_id if horizon is None else min(horizon, page[-1].storage_id)
    records = sorted((r for r in records if horizon is None or r.storage_id <= horizon), key=lambda r: r.storage_id)
    finished = []
    for record in records:
        entry = record.event_log_entry
        run = instance.get_run_by_id(entry.run_id)
        if run is None or run.job_name != job_name:
            continue
        event = entry.dagster_event
        failed = event is not None and event.event_type is dg.DagsterEventType.RUN_FAILURE
        message = event.message if failed and event is not None else None
        finished.append(FinishedRun(entry.run_id, record.storage_id, failed, dict(run.tags), message))
    return finished, (records[-1].storage_id if records else after)


def _change(failing: bool, run: FinishedRun, database: Database, service: str) -> AlertKind | None:
    """The change of state `run` makes, if any."""
    if run.failed:
        return None if failing else AlertKind.FAILING
    if not failing:
        return None
    counts = _counts(database, service, run.run_id)
    return AlertKind.RECOVERED if counts["sent"] + counts["failed"] > 0 else None


def _counts(database: Database, service: str, run_id: str) -> dict[str, int]:
    """The run's finished real outcomes in the ledger: sent, failed, and the failures by kind."""
    with database.session() as session:
        rows = session.execute(
            select(Submission.status, Submission.failure_kind, func.count())
            .where(
                Submission.run_id == run_id,
                Submission.service_name == service,
                Submission.status.in_([SubmissionStatus.SUCCESS.value, SubmissionStatus.FAILED.value]),
            )
            .group_by(Submission.status, Submission.failure_kind)
        ).all()
    counts = {"sent": 0, "failed": 0, "transient": 0, "permanent": 0}
    for status, kind, count in rows:
        counts["sent" if status == SubmissionStatus.SUCCESS.value else "failed"] += count
        if status == SubmissionStatus.FAILED.value and kind in counts:
            counts[kind] += count
    return counts


def _failures(database: Database, service: str, run_id: str, integration: Integration) -> list[FailedEvent]:
    with database.session() as session:
        rows = session.execute(
            select(
                EventCache.data,
                EventCache.source_url,
                Submission.error,
                Submission.failure_kind,
                Submission.http_status,
            )
            .join(EventCache, EventCache.id == Submission.event_cache_id)
            .where(
                Submission.run_id == run_id,
                Submission.service_name == service,
                Submission.status == SubmissionStatus.FAILED.value,
            )
            .order_by(Submission.id)
            .limit(LISTED_FAILURES)
        ).all()
    return [
        FailedEvent(
            title=str(data.get("title") or "") if isinstance(data, dict) else "",
            source_url=url,
            error=redact(error or "no reason recorded", integration),
            kind=kind,
            http_status=status,
        )
        for data, url, error, kind, status in rows
    ]


def _reason(instance: dg.DagsterInstance, run: FinishedRun, integration: Integration) -> str | None:
    """Why the run failed: its failed blocking checks and step errors (innermost cause), redacted."""
    if not run.failed:
        return None
    reasons: list[str] = []
    for entry in instance.all_logs(
        run.run_id, of_type={dg.DagsterEventType.ASSET_CHECK_EVALUATION, dg.DagsterEventType.STEP_FAILURE}
    ):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type is dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            check = event.event_specific_data
            if isinstance(check, dg.AssetCheckEvaluation) and not check.passed and check.blocking:
                reasons.append(f"asset check {check.check_name} failed: {check.description or 'did not pass'}")
            continue
        error = event.step_failure_data.error if event.step_failure_data else None
        while error is not None and error.cause is not None:
            error = error.cause
        if error is not None and error.cls_name != "DagsterAssetCheckFailedError":
            reasons.append(f"{event.step_key}: {error.cls_name}: {error.message.strip()}")
    if not reasons and run.message:
        reasons.append(run.message)
    return redact("; ".join(reasons), integration) if reasons else None


def build_alert(
    kind: AlertKind,
    integration: Integration,
    run: FinishedRun,
    database: Database,
    instance: dg.DagsterInstance,
    ui_url: str,
) -> Alert:
    service = integration.name
    failing = kind is AlertKind.FAILING
    return Alert(
        kind=kind,
        service=service,
        run_id=run.run_id,
        run_url=f"{ui_url.rstrip('/')}/runs/{run.run_id}",
        counts=_counts(database, service, run.run_id),
        reason=_reason(instance, run, integration) if failing else None,
        failures=_failures(database, service, run.run_id, integration) if failing else (),
        trigger=run.tags.get(TAG_TRIGGER),
        selector=run.tags.get(TAG_SELECTOR),
    )


__all__: Sequence[str] = ["AlertState", "alerts_sensor_name", "build_alert", "build_alerts_sensor"]
