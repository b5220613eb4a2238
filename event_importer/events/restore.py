"""Restoring removed events when they are loaded again (see `event_importer.events.removal`)."""

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import update
from sqlalchemy.orm import Session

from event_importer.db.models import EventCache


def restore_loaded(session: Session, urls: Iterable[str], now: dt.datetime) -> int:
    """Clear `removed_at` of the loaded events that had been removed; how many were.

    Called by the loader for every chunk it stores, in the same transaction: an event that is
    loaded is in its source.
    """
    urls = list(urls)
    if not urls:
        return 0
    result = session.execute(
        update(EventCache)
        .where(EventCache.source_url.in_(urls), EventCache.removed_at.is_not(None))
        .values(removed_at=None, updated_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
