"""The states an event can be in at one destination, each defined once, and the status report.

A state is one SQL statement selecting the events in it. The selectors of the same names *are*
these statements, and `integration_status` counts what each statement selects, so a state's count
in `status` is by construction the number of events its selector would pick.

Every state rests on the latest *real* attempt per (event, service): dry runs never count as an
attempt, so an event with dry runs only is `unsubmitted` (the status report says how many of those
had dry runs, as `dry_run_only`). `unsubmitted`, `withheld` (never sent and not to be: removed from
its source, or cancelled before it was ever sent where the destination does not take those),
`success`, `skipped` (the destination's lifecycle could not carry out the latest operation; a real
outcome: nothing is left to send), `failed` and `pending` partition the events. `changed` (the data
changed since the latest *settled* attempt, a success or a skip), `removed` (removed from the source
since the destination last settled it: its removal is due) and `exhausted` (transient failures that
used up the automatic retries) overlap them. A new state is one more entry in `STATES`; the report
and the selectors pick it up.

A statement takes the service's name and whether the destination sends cancelled events it never
had (`Lifecycle.send_unsent_cancelled`); only `unsubmitted` and `withheld` depend on the latter.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, DateTime, Exists, Select, and_, case, func, literal, not_, or_, select
from sqlalchemy.orm import aliased

from event_importer.db.engine import Database
from event_importer.db.models import (
    SETTLED_STATUSES,
    EventCache,
    FailureKind,
    Submission,
    SubmissionStatus,
    utcnow,
)
from event_importer.events.status import EventStatus
from event_importer.framework.lifecycle import Operation
from event_importer.ledger import owner_alive
from event_importer.settings import Settings, get_settings

if TYPE_CHECKING:
    from event_importer.framework.discovery import Integration

_REAL = Submission.status != SubmissionStatus.DRY_RUN.value


# "The latest attempt" is phrased as an attempt that no later one follows (a join plus NOT EXISTS),
# not as the attempt whose id is the max: PostgreSQL then reads the service's attempts in event order
# from an index (`ix_submissions_real` once the table is vacuumed) and merge-joins them with the
# events, instead of running an aggregate sub-select for every event it passes, most of which do not
# match. Each condition on an attempt repeats `status != 'dry_run'`, without which SQLite does not
# use `ix_submissions_real`, a partial index.


def with_attempt(service_name: str, attempt: type[Submission], *conditions: Any) -> Select[EventCache]:
    """Events joined to their real attempts (for this service) that meet `conditions`."""
    joined = and_(
        attempt.event_cache_id == EventCache.id,
        attempt.service_name == service_name,
        attempt.status != SubmissionStatus.DRY_RUN.value,
        *conditions,
    )
    # The same order as the event id `select` orders by, named on the attempt: SQLite starts from
    # the index of attempts and does not carry its order across the join's equality, so without
    # this it would sort every match before returning the first.
    return select(EventCache).join(attempt, joined).order_by(attempt.event_cache_id)


def followed(service_name: str, attempt: type[Submission], *, by_settled: bool = False) -> Exists:
    """Whether a later real attempt (with `by_settled`, a later settled one) follows `attempt`."""
    later = aliased(Submission, name="later")
    # `SELECT later.id`, not `SELECT *`: SQLite then answers from the index alone.
    return (
        select(later.id)
        .where(
            later.service_name == service_name,
            later.event_cache_id == attempt.event_cache_id,
            later.id > attempt.id,
            later.status != SubmissionStatus.DRY_RUN.value,
            *([later.status.in_(SETTLED_STATUSES)] if by_settled else []),
        )
        .exists()
    )


def latest_attempt_in(service_name: str, status: SubmissionStatus) -> Select[EventCache]:
    """Events whose latest real attempt has `status`."""
    latest = aliased(Submission, name="latest")
    return with_attempt(service_name, latest, latest.status == status.value).where(~followed(service_name, latest))


def not_cancelled() -> ColumnElement[bool]:
    """The event's status is not cancelled (no status means scheduled)."""
    status = EventCache.data["status"].as_string()
    return or_(status.is_(None), status != EventStatus.CANCELLED.value)


def _never_attempted(service_name: str) -> Select[EventCache]:
    # `SELECT id`, not `SELECT *`: SQLite then answers from `ix_submissions_real` alone.
    attempted = (
        select(Submission.id)
        .where(Submission.event_cache_id == EventCache.id, Submission.service_name == service_name, _REAL)
        .exists()
    )
    return select(EventCache).where(~attempted)


def _to_send(include_cancelled: bool) -> ColumnElement[bool]:
    """An event never sent is to be sent: still in its source and, unless the destination takes
    cancelled events it never had, not cancelled."""
    in_source = EventCache.removed_at.is_(None)
    return in_source if include_cancelled else and_(in_source, not_cancelled())


def unsubmitted(service_name: str, include_cancelled: bool = False) -> Select[EventCache]:
    return _never_attempted(service_name).where(_to_send(include_cancelled))


def withheld(service_name: str, include_cancelled: bool = False) -> Select[EventCache]:
    return _never_attempted(service_name).where(not_(_to_send(include_cancelled)))


def pending(service_name: str) -> Select[EventCache]:
    # A pending attempt is always the latest real one (no run can claim an event while it has one),
    # so this asks for the pending row itself, which the partial index `uq_submissions_one_pending`
    # finds directly; a join rather than EXISTS, so the planner starts from the few pending rows.
    return select(EventCache).join(
        Submission,
        and_(
            Submission.event_cache_id == EventCache.id,
            Submission.service_name == service_name,
            Submission.status == SubmissionStatus.PENDING.value,
        ),
    )


def changed(service_name: str) -> Select[EventCache]:
    """Events in their source whose data changed since their latest settled attempt (a status change
    included), or that came back to their source after their removal was settled."""
    settled = aliased(Submission, name="latest_settled")
    return with_attempt(
        service_name,
        settled,
        settled.status.in_(SETTLED_STATUSES),
        or_(settled.data_hash != EventCache.data_hash, settled.operation == Operation.REMOVE.value),
    ).where(EventCache.removed_at.is_(None), ~followed(service_name, settled, by_settled=True))


def removed(service_name: str) -> Select[EventCache]:
    """Events removed from their source since this service last settled them: their removal is due."""
    settled = aliased(Submission, name="latest_settled")
    return with_attempt(
        service_name,
        settled,
        settled.status.in_(SETTLED_STATUSES),
        settled.operation != Operation.REMOVE.value,
    ).where(EventCache.removed_at.is_not(None), ~followed(service_name, settled, by_settled=True))


@dataclass(frozen=True)
class RetryPolicy:
    """How later runs retry events whose latest attempt failed transiently."""

    #: Attempts of the same data (the first included) before automatic retries stop.
    attempts: int = 5
    #: Seconds after the first failure; doubled after each further one, up to `max_delay`.
    delay: float = 300.0
    max_delay: float = 21600.0

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> "RetryPolicy":
        settings = settings or get_settings()
        return cls(settings.retry_attempts, settings.retry_delay, settings.retry_max_delay)

    def wait_after(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failure in a row before the next attempt."""
        return min(self.max_delay, self.delay * 2.0 ** (failures - 1))


def _failures_in_a_row(service_name: str) -> Any:
    """Failed real attempts of the event's current data that no success followed."""
    failure = aliased(Submission, name="failure")
    success = aliased(Submission, name="later_success")
    succeeded_since = (
        select(success.id)
        .where(
            success.service_name == service_name,
            success.event_cache_id == failure.event_cache_id,
            success.id > failure.id,
            success.status == SubmissionStatus.SUCCESS.value,
        )
        .exists()
    )
    return (
        select(func.count(failure.id))
        .where(
            failure.service_name == service_name,
            failure.event_cache_id == EventCache.id,
            failure.status == SubmissionStatus.FAILED.value,
            failure.data_hash == EventCache.data_hash,
            ~succeeded_since,
        )
        .correlate(EventCache)
        .scalar_subquery()
    )


def _latest_failed(service_name: str, latest: type[Submission], *conditions: Any) -> Select[EventCache]:
    return with_attempt(service_name, latest, latest.status == SubmissionStatus.FAILED.value, *conditions).where(
        ~followed(service_name, latest)
    )


def retry_due(service_name: str, policy: RetryPolicy | None = None) -> Select[EventCache]:
    """Failed events due for an automatic retry: a transient failure whose delay has passed while
    attempts are left, or any failure whose event's data changed since."""
    policy = policy or RetryPolicy.from_settings()
    now = utcnow()
    # The latest failure must be this old; NULL (never true) once the attempts are used up.
    due_before = case(
        {
            failures: literal(now - dt.timedelta(seconds=policy.wait_after(failures)), DateTime(timezone=True))
            for failures in range(1, policy.attempts)
        },
        value=_failures_in_a_row(service_name),
        else_=None,
    )
    latest = aliased(Submission, name="latest")
    transient_due = and_(
        latest.data_hash == EventCache.data_hash,
        latest.failure_kind == FailureKind.TRANSIENT.value,
        latest.finished_at <= due_before,
    )
    return _latest_failed(service_name, latest, or_(latest.data_hash != EventCache.data_hash, transient_due))


def exhausted(service_name: str, policy: RetryPolicy | None = None) -> Select[EventCache]:
    """Events whose transient failures used up the policy's attempts for their current data."""
    policy = policy or RetryPolicy.from_settings()
    latest = aliased(Submission, name="latest")
    return _latest_failed(
        service_name,
        latest,
        latest.data_hash == EventCache.data_hash,
        latest.failure_kind == FailureKind.TRANSIENT.value,
    ).where(_failures_in_a_row(service_name) >= policy.attempts)


@dataclass(frozen=True, slots=True)
class EventState:
    """One state of an event at a destination, and the statement selecting the events in it."""

    name: str
    description: str
    statement: Callable[[str], Select[EventCache]]
    #: Whether the state is one of those that partition the events (exactly one holds per event).
    exclusive: bool = True
    #: The statement when it depends on whether the destination sends cancelled events it never had.
    cancelled_rule: Callable[[str, bool], Select[EventCache]] | None = None

    def select(self, service_name: str, *, include_cancelled: bool = False) -> Select[EventCache]:
        """The events in this state at `service_name` (`include_cancelled`: see the module)."""
        if self.cancelled_rule is not None:
            return self.cancelled_rule(service_name, include_cancelled)
        return self.statement(service_name)


STATES: dict[str, EventState] = {
    state.name: state
    for state in (
        EventState(
            "unsubmitted",
            "never sent to this service (dry runs do not count), and to be sent",
            unsubmitted,
            cancelled_rule=unsubmitted,
        ),
        EventState(
            "withheld",
            "never sent, and not to be: removed from the source, or cancelled before it was ever sent",
            withheld,
            cancelled_rule=withheld,
        ),
        EventState(
            "success",
            "latest attempt accepted",
            lambda service: latest_attempt_in(service, SubmissionStatus.SUCCESS),
        ),
        EventState(
            "skipped",
            "latest operation skipped: the destination cannot carry it out, so nothing is left to send",
            lambda service: latest_attempt_in(service, SubmissionStatus.SKIPPED),
        ),
        EventState(
            "failed", "latest attempt failed", lambda service: latest_attempt_in(service, SubmissionStatus.FAILED)
        ),
        EventState("pending", "latest attempt still pending (a live run, or one that was killed)", pending),
        EventState(
            "changed",
            "data changed since the latest settled (accepted or skipped) attempt",
            changed,
            exclusive=False,
        ),
        EventState(
            "removed",
            "removed from the source since the latest settled attempt: the removal is due",
            removed,
            exclusive=False,
        ),
        EventState(
            "exhausted",
            "failed transiently until the automatic retries stopped (retry-failed or new data sends it again)",
            exhausted,
            exclusive=False,
        ),
    )
}


def status_counts(
    database: Database, service_name: str, *, stale_after: float, include_cancelled: bool = False
) -> dict[str, int]:
    """Events by state at `service_name`: the keys of `STATES`, `events`, and two refinements.

    `include_cancelled`: whether the destination sends cancelled events it never had (its
    lifecycle's `send_unsent_cancelled`), as its selectors are built with.

    `dry_run_only` counts the `unsubmitted` events that have dry runs; `stale_pending` counts the
    `pending` events whose claim's process is gone (the `pending` selector takes those over).
    """
    dry_runs = (
        select(Submission.id)
        .where(
            Submission.event_cache_id == EventCache.id,
            Submission.service_name == service_name,
            Submission.status == SubmissionStatus.DRY_RUN.value,
        )
        .exists()
    )

    def count(statement: Select[Any]) -> int:
        return session.scalar(select(func.count()).select_from(statement.subquery())) or 0

    with database.session() as session:
        counts = {
            name: count(state.select(service_name, include_cancelled=include_cancelled))
            for name, state in STATES.items()
        }
        counts["dry_run_only"] = count(unsubmitted(service_name, include_cancelled).where(dry_runs))
        claims = session.execute(
            pending(service_name).with_only_columns(
                Submission.claimed_by, Submission.created_at, maintain_column_froms=True
            )
        ).all()
        counts["events"] = session.scalar(select(func.count()).select_from(EventCache)) or 0
    counts["stale_pending"] = sum(not owner_alive(owner, at, stale_after=stale_after) for owner, at in claims)
    return counts


def integration_status(integration: "Integration") -> dict[str, Any]:
    """Counts of the integration's events by state (see `status_counts`), with the service's name.

    Keys: `service`, `events`, then each state of `STATES` (the exclusive ones, `unsubmitted`,
    `withheld`, `success`, `skipped`, `failed` and `pending`, add up to `events`; `changed`,
    `removed` and `exhausted` overlap them), `dry_run_only` (of `unsubmitted`) and `stale_pending`
    (of `pending`). Counted with the destination's lifecycle rule for cancelled events it never had,
    as its selectors are.
    """
    from event_importer.db.engine import configured_database

    settings = get_settings()
    service = integration.name
    include_cancelled = integration.sends_unsent_cancelled()
    counts = status_counts(
        configured_database(),
        service,
        stale_after=settings.stale_claim_after,
        include_cancelled=include_cancelled,
    )
    ordered = ["events", *STATES, "dry_run_only", "stale_pending"]
    return {"service": service, **{key: counts[key] for key in ordered}}
