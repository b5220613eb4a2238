"""The selectors every integration gets: unsubmitted, failed, pending, changed, removed, retry,
exhausted, all and url.

The first five and `exhausted` are the event states of `event_importer.states`, the same statements
the status report counts, so a selector picks exactly the events `status` counts in its state.
`changed` and `removed` compare against the latest *settled* attempt: a success, or a skip the
destination's lifecycle rule decided (it cannot cancel, say), so a version the destination cannot
take is skipped once, not at every run.
`retry` and `exhausted` apply the automatic retry policy (`RetryPolicy`, from the
`EVENT_IMPORTER_RETRY_*` settings) to failed events: a transient failure is retried after a delay
that doubles with each failure of the same data, up to a number of attempts; a permanent one only
once the event's data changed.
"""

from sqlalchemy import Select, select

from event_importer.db.models import EventCache
from event_importer.errors import EventImporterError
from event_importer.events.model import normalise_source_url
from event_importer.framework.contracts import BaseSelector
from event_importer.states import STATES, EventState, RetryPolicy, exhausted, retry_due


class StateSelector(BaseSelector):
    """The events in one state (see `event_importer.states`)."""

    def __init__(self, state: EventState, *, include_cancelled: bool = False) -> None:
        self.state = state
        self.include_cancelled = include_cancelled

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        return self.state.select(service_name, include_cancelled=self.include_cancelled)


class RetrySelector(BaseSelector):
    """Failed events due for another attempt (what the sensor and the schedule retry on their own).

    Those whose latest failure was transient, once the policy's delay after it has passed and while
    they have attempts left; and those whose data changed since their latest failure, of any kind.
    The policy is read from the settings when the statement is built, unless one is given.
    """

    def __init__(self, policy: RetryPolicy | None = None) -> None:
        self.policy = policy

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        return retry_due(service_name, self.policy)


class ExhaustedSelector(BaseSelector):
    """Events whose transient failures used up the retry policy's attempts for their current data.

    Later runs no longer retry them on their own; `retry-failed` (the `failed` selector) or a change
    of their data does.
    """

    def __init__(self, policy: RetryPolicy | None = None) -> None:
        self.policy = policy

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        return exhausted(service_name, self.policy)


class AllSelector(BaseSelector):
    """Every event in the cache."""

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        return select(EventCache)


class UrlSelector(BaseSelector):
    """The one event with the given source URL."""

    needs_url = True

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        if not url:
            raise EventImporterError("the 'url' selector needs a url")
        return select(EventCache).where(EventCache.source_url == normalise_source_url(url.strip()))


# The states with a selector of their own; `success`, `skipped` and `withheld` have none (nothing to
# do for those events).
SELECTED_STATES = ("unsubmitted", "failed", "pending", "changed", "removed")


def standard_selectors(*, include_cancelled: bool = False) -> dict[str, BaseSelector]:
    """The standard selectors; `include_cancelled`: `unsubmitted` takes cancelled events too."""
    selectors: dict[str, BaseSelector] = {
        name: StateSelector(STATES[name], include_cancelled=include_cancelled) for name in SELECTED_STATES
    }
    return selectors | {
        "retry": RetrySelector(),
        "exhausted": ExhaustedSelector(),
        "all": AllSelector(),
        "url": UrlSelector(),
    }
