"""Asset checks on `<svc>/submission_results`, read against the submission ledger.

- `outcomes_recorded` (blocking, ERROR): every event the run selected has a finished row of this run
  in the ledger (or was skipped because another live run held it). A gap means an outcome was lost.
- `failure_rate` (blocking, ERROR): the share of failed events (sent or dry run, invalid ones
  included) stays at or under `EVENT_IMPORTER_FAILURE_RATE_THRESHOLD`. Single rejected events are
  normal and recorded; most of a run failing means something systemic (a wrong key, the destination
  down), so the run fails.
- `no_duplicate_submissions` (ERROR, not blocking): no event of this run has two successful
  submissions of the same data, unless the integration declares `idempotent_writes`. The events are
  already at the destination, so failing the run would undo nothing; the check shows red instead.

They are declared as check specs of the asset and evaluated in its step, right after the ledger is
written: the asset's value lives only within its run, so a check could not run on its own anyway,
and three extra steps would cost a third of a second of event-log writes per run.
"""

from collections import Counter
from typing import Any

import dagster as dg
from sqlalchemy import func, select

from event_importer.db.engine import Database
from event_importer.db.models import Submission, SubmissionStatus
from event_importer.framework.chunks import CHUNK_SIZE, chunked
from event_importer.framework.lifecycle import Operation
from event_importer.framework.records import Outcome
from event_importer.orchestration.values import Submitted

# Event ids listed in a check's metadata.
LISTED_IDS = 20
# The operations that deliver a version of an event (see `no_duplicate_submissions`).
_DELIVERIES = (Operation.CREATE.value, Operation.UPDATE.value)


def check_specs(asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            "outcomes_recorded",
            asset=asset_key,
            blocking=True,
            description="Every selected event has a finished outcome of this run in the submission ledger.",
        ),
        dg.AssetCheckSpec(
            "failure_rate",
            asset=asset_key,
            blocking=True,
            description="At most EVENT_IMPORTER_FAILURE_RATE_THRESHOLD of the run's events failed.",
        ),
        dg.AssetCheckSpec(
            "no_duplicate_submissions",
            asset=asset_key,
            description="No event of this run was accepted twice with the same data, unless the "
            "destination deduplicates (idempotent_writes).",
        ),
    ]


def evaluate_checks(
    service: str,
    submitted: Submitted,
    database: Database,
    *,
    idempotent_writes: bool,
    failure_rate_threshold: float,
) -> list[dg.AssetCheckResult]:
    """The results of the three checks for one run, in `check_specs` order."""
    return [
        outcomes_recorded(service, submitted, database),
        failure_rate(submitted, failure_rate_threshold),
        no_duplicate_submissions(service, submitted, database, idempotent_writes=idempotent_writes),
    ]


def outcomes_recorded(service: str, submitted: Submitted, database: Database) -> dg.AssetCheckResult:
    run_id = submitted.report.run_id
    with database.session() as session:
        rows = session.execute(
            select(Submission.event_cache_id, Submission.status).where(
                Submission.run_id == run_id, Submission.service_name == service
            )
        ).all()
    finished = {event_id for event_id, status in rows if status != SubmissionStatus.PENDING.value}
    skipped = {r.event_id for r in submitted.report.results if r.outcome is Outcome.SKIPPED}
    missing = sorted(set(submitted.selected_ids) - finished - skipped)
    return dg.AssetCheckResult(
        check_name="outcomes_recorded",
        passed=not missing,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None if not missing else f"{len(missing)} selected events have no recorded outcome",
        metadata={
            "selected": len(submitted.selected_ids),
            "recorded": len(finished),
            "skipped": len(skipped),
            "missing": len(missing),
            "missing_ids": dg.MetadataValue.json(missing[:LISTED_IDS]),
        },
    )


def failure_rate(submitted: Submitted, threshold: float) -> dg.AssetCheckResult:
    counts = submitted.report.counts
    # Every event with an outcome of its own counts; skipped ones belong to another run.
    outcomes = counts["submitted"] + counts["failed"] + counts["dry_run"]
    rate = counts["failed"] / outcomes if outcomes else 0.0
    passed = rate <= threshold
    return dg.AssetCheckResult(
        check_name="failure_rate",
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None
        if passed
        else f"{counts['failed']} of {outcomes} events failed ({rate:.0%} > {threshold:.0%})",
        metadata={
            "failed": counts["failed"],
            "outcomes": outcomes,
            "failure_rate": dg.MetadataValue.float(round(rate, 4)),
            "threshold": dg.MetadataValue.float(threshold),
        },
    )


def no_duplicate_submissions(
    service: str, submitted: Submitted, database: Database, *, idempotent_writes: bool
) -> dg.AssetCheckResult:
    if idempotent_writes:
        return dg.AssetCheckResult(
            check_name="no_duplicate_submissions",
            passed=True,
            description=f"{service} deduplicates resubmissions itself (idempotent_writes)",
        )
    accepted = [r.event_id for r in submitted.report.results if r.outcome is Outcome.SUCCESS]
    duplicates: Counter[int] = Counter()
    with database.session() as session:
        for chunk in chunked(accepted, CHUNK_SIZE):
            statement: Any = (
                select(Submission.event_cache_id, func.count())
                .where(
                    Submission.service_name == service,
                    Submission.status == SubmissionStatus.SUCCESS.value,
                    # A cancellation or removal carries the data of the version before it: no duplicate.
                    Submission.operation.in_(_DELIVERIES),
                    Submission.event_cache_id.in_(chunk),
                )
                .group_by(Submission.event_cache_id, Submission.data_hash)
                .having(func.count() > 1)
            )
            for event_id, count in session.execute(statement):
                duplicates[event_id] = max(duplicates[event_id], count)
    ids = sorted(duplicates)
    return dg.AssetCheckResult(
        check_name="no_duplicate_submissions",
        passed=not ids,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None if not ids else f"{len(ids)} events were accepted more than once with the same data",
        metadata={"duplicated_events": len(ids), "event_ids": dg.MetadataValue.json(ids[:LISTED_IDS])},
    )
