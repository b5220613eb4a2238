"""The submission ledger: the one place that writes `Submission` rows.

Every attempt goes through it in two steps. `claim` inserts a `pending` row carrying the run id
before anything is sent; `finish` turns it into `success` or `failed` as soon as the answer is known.

Two unique indexes make claims safe across processes, with no check-then-write in Python: one
pending row per (event, service), and one real attempt per (event, service, attempt number). A run
claims attempt N+1 of an event it saw with N attempts, so of two runs that selected the same event
only one can claim it, even when the other finished its attempt before the slower one claims. A run killed in between
leaves a `pending` row behind whose owner is gone: `claim` takes such stale claims over, closing the
old row as failed with a reason, so the event is sent again (the at-least-once window is the
requests sent whose outcome was not yet committed when the run died; `sending` bounds them).
"""

import datetime as dt
import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil
from sqlalchemy import Table, and_, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from event_importer.db.engine import Database
from event_importer.db.models import EventCache, FailureKind, Submission, SubmissionStatus, utcnow
from event_importer.errors import EventImporterError
from event_importer.framework.lifecycle import Operation
from event_importer.framework.records import Outcome as RecordOutcome
from event_importer.framework.records import SubmissionResult

HOSTNAME = socket.gethostname()


def current_owner() -> str:
    """Who holds a claim: `host:pid`, so a later run on the same host can tell whether it still lives."""
    return f"{HOSTNAME}:{os.getpid()}"


def owner_alive(owner: str | None, claimed_at: dt.datetime | None, *, stale_after: float) -> bool:
    """Whether the process that made a claim may still be working on it.

    On this host the process table answers (a zombie, or a process started after the claim under a
    reused pid, is not the owner); for another host only the claim's age can, after `stale_after`
    seconds.
    """
    if claimed_at is not None and claimed_at.tzinfo is None:
        claimed_at = claimed_at.replace(tzinfo=dt.UTC)
    host, _, pid = (owner or "").rpartition(":")
    if host == HOSTNAME and pid.isdigit():
        try:
            process = psutil.Process(int(pid))
            if process.status() == psutil.STATUS_ZOMBIE:
                return False
            # A second of slack: create_time is rounded to the clock tick.
            return claimed_at is None or process.create_time() <= claimed_at.timestamp() + 1
        except psutil.NoSuchProcess:
            return False
        except psutil.AccessDenied:
            return True
    if claimed_at is None:
        return False
    return (utcnow() - claimed_at).total_seconds() < stale_after


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """Claim an event seen with `seen_attempts` real attempts: the claim is attempt `seen_attempts + 1`."""

    event_id: int
    data_hash: str
    seen_attempts: int
    operation: str = "create"


@dataclass(frozen=True, slots=True)
class Claim:
    """A pending row this run holds for one event."""

    submission_id: int
    event_id: int
    attempt: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What came of one claimed attempt: `response` is the destination's answer, `payload` what was sent."""

    submission_id: int
    status: SubmissionStatus
    http_status: int | None = None
    response: dict[str, Any] | None = None
    error: str | None = None
    payload: dict[str, Any] | None = None
    failure_kind: FailureKind | None = None


@dataclass(frozen=True, slots=True)
class FinalRecord:
    """An attempt that needs no claim because nothing is sent: a dry run, an event that failed to
    transform, or one the destination's lifecycle rule skips."""

    event_id: int
    data_hash: str
    seen_attempts: int
    status: SubmissionStatus
    response: dict[str, Any] | None = None
    error: str | None = None
    payload: dict[str, Any] | None = None
    failure_kind: FailureKind | None = None
    operation: str = "create"


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """What the `response` column holds about one attempt: who started its run, what was sent, the answer."""

    trigger: str | None = None
    payload: dict[str, Any] | None = None
    answer: Any = None

    def to_json(self) -> dict[str, Any] | None:
        stored = {"trigger": self.trigger, "payload": self.payload, "answer": self.answer}
        return {key: value for key, value in stored.items() if value is not None} or None

    @classmethod
    def from_json(cls, stored: Any) -> "AttemptRecord":
        # Rows written before the column held these three keys hold the answer alone (dry runs:
        # the payload alone, under the same key as now).
        if isinstance(stored, dict) and stored and set(stored) <= {"trigger", "payload", "answer"}:
            return cls(stored.get("trigger"), stored.get("payload"), stored.get("answer"))
        return cls(answer=stored)


# One Core statement, executed for many rows at once: half the CPU of the ORM's bulk update by key,
# which counts once per event sent.
_SUBMISSIONS: Table = Submission.__table__  # type: ignore[assignment]
_FINISH = (
    update(_SUBMISSIONS)
    .where(_SUBMISSIONS.c.id == bindparam("submission_id"))
    .values(
        status=bindparam("status"),
        http_status=bindparam("http_status"),
        response=bindparam("response"),
        error=bindparam("error"),
        failure_kind=bindparam("failure_kind"),
        finished_at=bindparam("finished_at"),
    )
)


class SubmissionLedger:
    """Claims and outcomes of one run for one service."""

    def __init__(
        self,
        database: Database,
        service_name: str,
        run_id: str,
        *,
        stale_after: float = 3600.0,
        trigger: str | None = None,
    ) -> None:
        self.database = database
        self.service_name = service_name
        self.run_id = run_id
        #: Who started the run (cli, api, schedule, sensor, ui), kept with each attempt's record.
        self.trigger = trigger
        self.owner = current_owner()
        self.stale_after = stale_after

    def claim(self, requests: Sequence[ClaimRequest]) -> list[Claim | None]:
        """Claim each event for this run; None where another live run holds it.

        One transaction per call, so callers claim a chunk of events at a time.
        """
        if not requests:
            return []
        ids = [r.event_id for r in requests]
        with self.database.session() as session:
            self._release_stale(session, ids)
            now = utcnow()
            rows = [
                self._attempt_row(r.event_id, r.data_hash, r.seen_attempts, SubmissionStatus.PENDING, now, r.operation)
                for r in requests
            ]
            claimed = {
                event_id: (submission_id, attempt)
                for submission_id, event_id, attempt in self._insert_attempts(session, rows)
            }
        return [
            Claim(claimed[r.event_id][0], r.event_id, claimed[r.event_id][1]) if r.event_id in claimed else None
            for r in requests
        ]

    def _attempt_row(
        self,
        event_id: int,
        data_hash: str,
        seen_attempts: int,
        status: SubmissionStatus,
        now: dt.datetime,
        operation: str,
    ) -> dict[str, Any]:
        return {
            "event_cache_id": event_id,
            "service_name": self.service_name,
            "status": status.value,
            "operation": operation,
            "attempt": seen_attempts + 1,
            "data_hash": data_hash,
            "run_id": self.run_id,
            "claimed_by": self.owner,
            "created_at": now,
        }

    def _insert_attempts(self, session: Session, rows: list[dict[str, Any]]) -> list[tuple[int, int, int]]:
        """Insert the rows that clash with no other attempt; (id, event id, attempt) of those inserted."""
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        # No conflict target: a clash on either unique index means another run has the event.
        # One statement for all rows, compiled once and cached (executemany with RETURNING).
        statement = (
            insert(Submission)
            .on_conflict_do_nothing()
            .returning(Submission.id, Submission.event_cache_id, Submission.attempt)
        )
        return [(row[0], row[1], row[2]) for row in session.execute(statement, rows)]

    def attempt_counts(self, ids: list[int]) -> dict[int, int]:
        """Real (not dry-run) attempts so far per event, for callers that did not select the events."""
        with self.database.session() as session:
            return self._attempt_counts(session, ids)

    def _attempt_counts(self, session: Session, ids: list[int]) -> dict[int, int]:
        rows = session.execute(
            select(Submission.event_cache_id, func.count())
            .where(
                Submission.service_name == self.service_name,
                Submission.event_cache_id.in_(ids),
                Submission.status != SubmissionStatus.DRY_RUN.value,
            )
            .group_by(Submission.event_cache_id)
        )
        return {event_id: count for event_id, count in rows}

    def _release_stale(self, session: Session, ids: list[int]) -> None:
        pending = session.execute(
            select(Submission.id, Submission.run_id, Submission.claimed_by, Submission.created_at).where(
                Submission.service_name == self.service_name,
                Submission.event_cache_id.in_(ids),
                Submission.status == SubmissionStatus.PENDING.value,
            )
        ).all()
        for submission_id, run_id, owner, claimed_at in pending:
            if run_id == self.run_id or owner_alive(owner, claimed_at, stale_after=self.stale_after):
                continue
            # Compare-and-set on status: of two runs taking over the same stale claim, one wins.
            session.execute(
                update(Submission)
                .where(and_(Submission.id == submission_id, Submission.status == SubmissionStatus.PENDING.value))
                .values(
                    status=SubmissionStatus.FAILED.value,
                    # The destination may never have seen it: sending it again can succeed.
                    failure_kind=FailureKind.TRANSIENT.value,
                    finished_at=utcnow(),
                    error=f"abandoned: run {run_id} stopped before recording an outcome; "
                    "the destination may or may not have received this attempt",
                )
            )

    def finish(self, outcomes: Iterable[Outcome]) -> None:
        """Record the outcome of claimed attempts, all in one transaction."""
        now = utcnow()
        rows = [
            {
                "submission_id": o.submission_id,
                "status": o.status.value,
                "http_status": o.http_status,
                "response": AttemptRecord(self.trigger, o.payload, o.response).to_json(),
                "error": o.error,
                "failure_kind": o.failure_kind.value if o.failure_kind else None,
                "finished_at": now,
            }
            for o in outcomes
        ]
        if not rows:
            return
        with self.database.session() as session:
            session.execute(_FINISH, rows)

    def record(self, records: Iterable[FinalRecord]) -> list[int | None]:
        """Write attempts that sent nothing (dry runs, events that could not be transformed, skips).

        A failed or skipped record is a real attempt and takes the next attempt number as a claim would;
        None where another run took that number first.
        """
        records = list(records)
        if not records:
            return []
        with self.database.session() as session:
            now = utcnow()
            rows = [
                self._attempt_row(r.event_id, r.data_hash, r.seen_attempts, r.status, now, r.operation)
                | {
                    "finished_at": now,
                    "response": AttemptRecord(self.trigger, r.payload, r.response).to_json(),
                    "error": r.error,
                    "failure_kind": r.failure_kind.value if r.failure_kind else None,
                }
                for r in records
            ]
            written = {
                event_id: submission_id
                for submission_id, event_id, _ in self._insert_attempts(session, rows)
            }
        return [written.get(r.event_id) for r in records]


@dataclass(frozen=True, slots=True)
class ImportedAttempt:
    """An attempt another system made (the Event Importer), keyed by its own submission id there."""

    source_id: int
    event_id: int
    service_name: str
    status: SubmissionStatus
    at: dt.datetime
    response: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class ImportCounts:
    """What `import_attempts` did with each attempt it was given."""

    imported: list[ImportedAttempt] = field(default_factory=list)
    already_imported: int = 0
    kept_own: list[ImportedAttempt] = field(default_factory=list)


def import_attempts(database: Database, attempts: Sequence[ImportedAttempt]) -> ImportCounts:
    """Record attempts made elsewhere as real attempts of this project, in one transaction.

    Each takes the next attempt number of its (event, service), in the order given (oldest first), and
    the hash of the event's data as it is now in the cache: a success was of that data, so `changed`
    picks the event only once its data changes. An attempt already imported (same source id) is left
    alone, and so is every attempt for an (event, service) this project has attempts of its own for:
    those are newer than anything imported and must stay the latest.
    """
    counts = ImportCounts()
    if not attempts:
        return counts
    event_ids = sorted({a.event_id for a in attempts})
    services = sorted({a.service_name for a in attempts})
    try:
        with database.session() as session:
            seen: dict[tuple[str, int], int] = {}
            own: set[tuple[str, int]] = set()
            imported: set[tuple[str, int, int]] = set()
            for service, event_id, imported_id in session.execute(
                select(Submission.service_name, Submission.event_cache_id, Submission.imported_id).where(
                    Submission.event_cache_id.in_(event_ids),
                    Submission.service_name.in_(services),
                    Submission.status != SubmissionStatus.DRY_RUN.value,
                )
            ):
                seen[service, event_id] = seen.get((service, event_id), 0) + 1
                if imported_id is None:
                    own.add((service, event_id))
                else:
                    imported.add((service, event_id, imported_id))
            hashes = dict(
                session.execute(select(EventCache.id, EventCache.data_hash).where(EventCache.id.in_(event_ids))).all()
            )
            rows = []
            for a in attempts:
                pair = (a.service_name, a.event_id)
                if (*pair, a.source_id) in imported:
                    counts.already_imported += 1
                    continue
                if pair in own:
                    counts.kept_own.append(a)
                    continue
                seen[pair] = seen.get(pair, 0) + 1
                imported.add((*pair, a.source_id))
                rows.append(
                    {
                        "event_cache_id": a.event_id,
                        "service_name": a.service_name,
                        "status": a.status.value,
                        "attempt": seen[pair],
                        "data_hash": hashes[a.event_id],
                        "created_at": a.at,
                        "finished_at": a.at,
                        "response": a.response,
                        "error": a.error,
                        "imported_id": a.source_id,
                    }
                )
                counts.imported.append(a)
            if rows:
                session.execute(insert(Submission), rows)
    except IntegrityError:
        raise EventImporterError(
            "another process (a run, or another import) recorded attempts for some of these events while "
            "their history was imported; import again once it is done (what was imported stays, and is not "
            "imported twice)"
        ) from None
    return counts


# What a run's rows say of each event, for callers that follow the run from another process.
_OUTCOMES = {
    SubmissionStatus.SUCCESS.value: RecordOutcome.SUCCESS,
    SubmissionStatus.FAILED.value: RecordOutcome.FAILED,
    SubmissionStatus.DRY_RUN.value: RecordOutcome.DRY_RUN,
    SubmissionStatus.SKIPPED.value: RecordOutcome.SKIPPED,
}
UNFINISHED = "the run ended before recording an outcome"


def run_results(database: Database, service_name: str, run_id: str) -> list[SubmissionResult]:
    """The outcome of every event the run `run_id` recorded for `service_name`, in event order.

    A claim the run left pending (it ended before the answer was recorded) counts as failed.
    """
    statement = (
        select(
            Submission.event_cache_id,
            EventCache.source_url,
            EventCache.data,
            Submission.status,
            Submission.attempt,
            Submission.id,
            Submission.http_status,
            Submission.error,
            Submission.operation,
        )
        .join(EventCache, EventCache.id == Submission.event_cache_id)
        .where(Submission.run_id == run_id, Submission.service_name == service_name)
        .order_by(Submission.event_cache_id)
    )
    with database.session() as session:
        rows = session.execute(statement).all()
    return [
        SubmissionResult(
            event_id,
            source_url,
            str(data.get("title") or "") if isinstance(data, dict) else "",
            _OUTCOMES.get(status, RecordOutcome.FAILED),
            attempt,
            submission_id,
            http_status,
            error if status in _OUTCOMES else UNFINISHED,
            Operation(operation),
        )
        for event_id, source_url, data, status, attempt, submission_id, http_status, error, operation in rows
    ]
