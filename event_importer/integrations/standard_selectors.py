"""The selectors every integration gets: unsubmitted, failed, pending, changed, removed, all and url.

Each rests on the latest *real* attempt per (event, service): dry runs are ignored, so a dry run
never counts as submitted, and an event whose retry succeeded is no longer `failed`. `changed` and
`removed` compare against the latest *settled* attempt: a success, or a skip the destination's
lifecycle rule decided (it cannot cancel, say), so a version the destination cannot take is skipped
once, not at every run.
"""

from typing import Any

from sqlalchemy import ColumnElement, Exists, Select, and_, or_, select
from sqlalchemy.orm import aliased

from event_importer.db.models import SETTLED_STATUSES, EventCache, Submission, SubmissionStatus
from event_importer.errors import EventImporterError
from event_importer.events.status import EventStatus
from event_importer.integrations.base import BaseSelector
from event_importer.integrations.lifecycle import Operation

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


def _followed(service_name: str, attempt: type[Submission], *, by_settled: bool = False) -> Exists:
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


class AllSelector(BaseSelector):
    """Every event in the cache."""

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        return select(EventCache)


def not_cancelled() -> ColumnElement[bool]:
    """The event's status is not cancelled (no status means scheduled)."""
    status = EventCache.data["status"].as_string()
    return or_(status.is_(None), status != EventStatus.CANCELLED.value)


class UnsubmittedSelector(BaseSelector):
    """Events never sent to this service (dry runs do not count), that are still to happen.

    Events removed from their source are left out, and so are cancelled ones unless the
    destination's lifecycle sends cancelled events it never had (`include_cancelled`).
    """

    def __init__(self, *, include_cancelled: bool = False) -> None:
        self.include_cancelled = include_cancelled

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        # `SELECT id`, not `SELECT *`: SQLite then answers from `ix_submissions_real` alone.
        attempted = (
            select(Submission.id)
            .where(Submission.event_cache_id == EventCache.id, Submission.service_name == service_name, _REAL)
            .exists()
        )
        statement = select(EventCache).where(~attempted, EventCache.removed_at.is_(None))
        return statement if self.include_cancelled else statement.where(not_cancelled())


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
    """Events in their source whose data changed since their latest settled submission (a status
    change included), or that came back to their source after their removal was settled."""

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        settled = aliased(Submission, name="latest_settled")
        return _with_attempt(
            service_name,
            settled,
            settled.status.in_(SETTLED_STATUSES),
            or_(settled.data_hash != EventCache.data_hash, settled.operation == Operation.REMOVE.value),
        ).where(EventCache.removed_at.is_(None), ~_followed(service_name, settled, by_settled=True))


class RemovedSelector(BaseSelector):
    """Events removed from their source since this service last settled them: their removal is due."""

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        settled = aliased(Submission, name="latest_settled")
        return _with_attempt(
            service_name,
            settled,
            settled.status.in_(SETTLED_STATUSES),
            settled.operation != Operation.REMOVE.value,
        ).where(EventCache.removed_at.is_not(None), ~_followed(service_name, settled, by_settled=True))


class UrlSelector(BaseSelector):
    """The one event with the given source URL."""

    needs_url = True

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        if not url:
            raise EventImporterError("the 'url' selector needs a url")
        return select(EventCache).where(EventCache.source_url == url)


def standard_selectors(*, include_cancelled: bool = False) -> dict[str, BaseSelector]:
    """The standard selectors; `include_cancelled`: `unsubmitted` takes cancelled events too."""
    return {
        "unsubmitted": UnsubmittedSelector(include_cancelled=include_cancelled),
        "failed": FailedSelector(),
        "pending": PendingSelector(),
        "changed": ChangedSelector(),
        "removed": RemovedSelector(),
        "all": AllSelector(),
        "url": UrlSelector(),
    }
