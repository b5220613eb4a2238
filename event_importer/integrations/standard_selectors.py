"""The selectors every integration gets: unsubmitted, failed, pending, changed, all and url.

The first four are the event states of `event_importer.states`, the same statements the status
report counts, so a selector picks exactly the events `status` counts in its state.
"""

from sqlalchemy import Select, select

from event_importer.db.models import EventCache
from event_importer.errors import EventImporterError
from event_importer.events.model import normalise_source_url
from event_importer.integrations.base import BaseSelector
from event_importer.states import STATES, EventState


class StateSelector(BaseSelector):
    """The events in one state (see `event_importer.states`)."""

    def __init__(self, state: EventState) -> None:
        self.state = state

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        return self.state.statement(service_name)


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


# The states with a selector of their own; `success` has none (nothing to do for those events).
SELECTED_STATES = ("unsubmitted", "failed", "pending", "changed")


def standard_selectors() -> dict[str, BaseSelector]:
    selectors: dict[str, BaseSelector] = {name: StateSelector(STATES[name]) for name in SELECTED_STATES}
    return selectors | {"all": AllSelector(), "url": UrlSelector()}
