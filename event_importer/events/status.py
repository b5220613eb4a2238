"""An event's status in its life (`EventData.status`), in schema.org's `eventStatus` vocabulary.

The values are short snake_case names; the schema.org forms importers copy from pages are accepted
as input too: `https://schema.org/EventCancelled`, `http://schema.org/EventCancelled`,
`schema:EventCancelled`, `EventCancelled`, `cancelled`, in any case, with `canceled` and
`moved online` / `moved-online` spelled either way.
"""

import datetime as dt
import enum
import re
from typing import Any


class EventStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"
    POSTPONED = "postponed"
    RESCHEDULED = "rescheduled"
    MOVED_ONLINE = "moved_online"


# Everything before the status word: a schema.org URL (any scheme, www or not, trailing slash) or prefix.
_PREFIX = re.compile(r"^(?:https?://(?:www\.)?schema\.org/|schema:)", re.IGNORECASE)
# "EventCancelled", "event_cancelled", "moved online", "Moved-Online" all reduce to letters only.
_NOT_LETTERS = re.compile(r"[^a-z]")
_BY_LETTERS = {_NOT_LETTERS.sub("", status.value): status for status in EventStatus}
_BY_LETTERS["canceled"] = EventStatus.CANCELLED
# Longest value echoed back in an error: the rest of a scraped page is of no help.
_QUOTE_LIMIT = 60


def parse_event_status(value: Any) -> Any:
    """`value` as an `EventStatus` value when it names one ("scheduled" when blank or null).

    Used as a pydantic before-validator; a value of another type is left for the enum to reject.

    Raises:
        ValueError: a text that names no status (quoted, cut short).
    """
    if value is None:
        return EventStatus.SCHEDULED.value
    if not isinstance(value, str):
        return value
    text = _PREFIX.sub("", value.strip()).rstrip("/")
    if not text:
        return EventStatus.SCHEDULED.value
    letters = _NOT_LETTERS.sub("", text.lower())
    found = _BY_LETTERS.get(letters) or _BY_LETTERS.get(letters.removeprefix("event"))
    if found is None:
        shown = value if len(value) <= _QUOTE_LIMIT else value[: _QUOTE_LIMIT - 1] + "…"
        accepted = ", ".join(s.value for s in EventStatus)
        raise ValueError(f"unknown event status {shown!r}: use one of {accepted}, or schema.org's EventCancelled etc.")
    return found.value


def parse_previous_start(value: Any) -> Any:
    """A date written alone ("2027-03-14") stays a date; a date with a time becomes a datetime."""
    if isinstance(value, str) and len(value.strip()) == 10:
        return dt.date.fromisoformat(value.strip())
    return value
