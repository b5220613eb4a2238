"""TicketFairy's selectors: the standard ones, plus upcoming events only."""

import datetime as dt

from sqlalchemy import Select, or_

from event_importer.sdk import BaseSelector, EventCache, unsubmitted


class UpcomingUnsubmittedSelector(BaseSelector):
    """Unsubmitted events that have not happened yet (TicketFairy drafts for past shows are noise)."""

    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        today = dt.date.today().isoformat()
        date = EventCache.data["date"].as_string()
        end_date = EventCache.data["end_date"].as_string()
        return unsubmitted(service_name).where(or_(date >= today, end_date >= today))
