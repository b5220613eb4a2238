"""The selectors every integration gets: unsubmitted, failed, pending, changed, retry, exhausted, all
and url.

Each rests on the latest *real* attempt per (event, service): dry runs are ignored, so a dry run
never counts as submitted, and an event whose retry succeeded is no longer `failed`.

`retry` and `exhausted` apply the automatic retry policy (`RetryPolicy`, from the
`EVENT_IMPORTER_RETRY_*` settings) to failed events: a transient failure is retried after a delay
that doubles with each failure of the same data, up to a number of attempts; a permanent one only
once the event's data changed.
"""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import DateTime, Exists, Select, and_, case, func, literal, or_, select
from sqlalchemy.orm import aliased

from event_importer.db.models import EventCache, FailureKind, Submission, SubmissionStatus, utcnow
from event_importer.errors import EventImporterError
from event_importer.integrations.base import BaseSelector
from event_importer.settings import Settings, get_settings

_REAL = Submission.status != SubmissionStatus.DRY_RUN.value


# "The latest attempt" is phrased as an attempt that no later one follows (a join plus NOT EXISTS),
# not as the attempt whose id is the max: PostgreSQL then reads the service's attempts in event order
# from an index (`ix_submissions_real` once the table is vacuumed) and merge-joins them with the
# events, instead of running an aggregate sub-select for every event it passes, most of which do not
# match. Each condition on an attempt repeats `status != 'dry_run'`, without which SQLite does not
# use `ix_submissions_real`, a partial index.


def _with_attempt(service_name: str, attempt: type[Submission], *conditions: Any) -> Select[EventCache]:
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


def _followed(service_name: str, attempt: type[Submission], *, by_success: bool = False) -> Exists:
    """Whether a later real attempt (with `by_success`, a later success) follows `attempt`."""
    later = aliased(Submission, name="later")
    # `SELECT later.id`, not `SELECT *`: SQLite then answers from the index alone.
    return (
        select(later.id)
        .where(
            later.service_name == service_name,
            later.event_cache_id == attempt.event_cache_id,
            later.id > attempt.id,
            later.status != SubmissionStatus.DRY_RUN.value,
            *([later.status == SubmissionStatus.SUCCESS.value] if by_success else []),
        )
        .exists()
    )


class AllSelector(BaseSelector):
    """Every event in the cache."""

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        return select(EventCache)


class UnsubmittedSelector(BaseSelector):
    """Events never sent to this service (dry runs do not count)."""

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        # `SELECT id`, not `SELECT *`: SQLite then answers from `ix_submissions_real` alone.
        attempted = (
            select(Submission.id)
            .where(Submission.event_cache_id == EventCache.id, Submission.service_name == service_name, _REAL)
            .exists()
        )
        return select(EventCache).where(~attempted)


class FailedSelector(BaseSelector):
    """Events whose latest attempt failed."""

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        latest = aliased(Submission, name="latest")
        return _with_attempt(service_name, latest, latest.status == SubmissionStatus.FAILED.value).where(
            ~_followed(service_name, latest)
        )


class PendingSelector(BaseSelector):
    """Events whose latest attempt is still pending, e.g. left behind by a killed run.

    A pending attempt is always the latest real one (no run can claim an event while it has one),
    so this asks for the pending row itself, which the partial index `uq_submissions_one_pending`
    finds directly.
    """

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        # A join rather than EXISTS, so the planner starts from the few pending rows, not every event.
        return select(EventCache).join(
            Submission,
            and_(
                Submission.event_cache_id == EventCache.id,
                Submission.service_name == service_name,
                Submission.status == SubmissionStatus.PENDING.value,
            ),
        )


class ChangedSelector(BaseSelector):
    """Events whose data changed since their latest successful submission."""

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        success = aliased(Submission, name="latest_success")
        return _with_attempt(
            service_name,
            success,
            success.status == SubmissionStatus.SUCCESS.value,
            success.data_hash != EventCache.data_hash,
        ).where(~_followed(service_name, success, by_success=True))


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
    return _with_attempt(
        service_name, latest, latest.status == SubmissionStatus.FAILED.value, *conditions
    ).where(~_followed(service_name, latest))


class RetrySelector(BaseSelector):
    """Failed events due for another attempt (what the sensor and the schedule retry on their own).

    Those whose latest failure was transient, once the policy's delay after it has passed and while
    they have attempts left; and those whose data changed since their latest failure, of any kind.
    Read the policy from the settings when the statement is built, unless given one.
    """

    def __init__(self, policy: RetryPolicy | None = None) -> None:
        self.policy = policy

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        policy = self.policy or RetryPolicy.from_settings()
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


class ExhaustedSelector(BaseSelector):
    """Events whose transient failures used up the retry policy's attempts for their current data.

    Later runs no longer retry them on their own; `retry-failed` (the `failed` selector) or a change
    of their data does.
    """

    def __init__(self, policy: RetryPolicy | None = None) -> None:
        self.policy = policy

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        policy = self.policy or RetryPolicy.from_settings()
        latest = aliased(Submission, name="latest")
        return _latest_failed(
            service_name,
            latest,
            latest.data_hash == EventCache.data_hash,
            latest.failure_kind == FailureKind.TRANSIENT.value,
        ).where(_failures_in_a_row(service_name) >= policy.attempts)


class UrlSelector(BaseSelector):
    """The one event with the given source URL."""

    needs_url = True

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        if not url:
            raise EventImporterError("the 'url' selector needs a url")
        return select(EventCache).where(EventCache.source_url == url)


def standard_selectors() -> dict[str, BaseSelector]:
    return {
        "unsubmitted": UnsubmittedSelector(),
        "failed": FailedSelector(),
        "pending": PendingSelector(),
        "changed": ChangedSelector(),
        "retry": RetrySelector(),
        "exhausted": ExhaustedSelector(),
        "all": AllSelector(),
        "url": UrlSelector(),
    }
