"""The selectors every integration gets: unsubmitted, failed, pending, changed, all and url.

Each rests on the latest *real* attempt per (event, service): dry runs are ignored, so a dry run
never counts as submitted, and an event whose retry succeeded is no longer `failed`.
"""

from typing import Any

from sqlalchemy import Select, and_, exists, func, select

from event_importer.db.models import EventCache, Submission, SubmissionStatus
from event_importer.errors import EventImporterError
from event_importer.integrations.base import BaseSelector

_REAL = Submission.status != SubmissionStatus.DRY_RUN.value


def _latest_attempt_id(service_name: str, *conditions: Any) -> Any:
    return (
        select(func.max(Submission.id))
        .where(Submission.event_cache_id == EventCache.id, Submission.service_name == service_name, *conditions)
        .correlate(EventCache)
        .scalar_subquery()
    )


def _with_latest(service_name: str, status: SubmissionStatus) -> Select[EventCache]:
    return select(EventCache).join(
        Submission,
        and_(Submission.id == _latest_attempt_id(service_name, _REAL), Submission.status == status.value),
    )


class AllSelector(BaseSelector):
    """Every event in the cache."""

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        return select(EventCache)


class UnsubmittedSelector(BaseSelector):
    """Events never sent to this service (dry runs do not count)."""

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        attempted = exists().where(
            Submission.event_cache_id == EventCache.id, Submission.service_name == service_name, _REAL
        )
        return select(EventCache).where(~attempted)


class FailedSelector(BaseSelector):
    """Events whose latest attempt failed."""

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        return _with_latest(service_name, SubmissionStatus.FAILED)


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
        latest_success = _latest_attempt_id(service_name, Submission.status == SubmissionStatus.SUCCESS.value)
        return select(EventCache).join(
            Submission, and_(Submission.id == latest_success, Submission.data_hash != EventCache.data_hash)
        )


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
        "all": AllSelector(),
        "url": UrlSelector(),
    }
