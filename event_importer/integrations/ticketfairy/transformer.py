"""Maps one event to the body of TicketFairy's `/draft-events` request.

TicketFairy wants a title, local start and end times with an IANA timezone, and HTML details.
Imported events rarely spell all of that out, so the rules for what is missing live here, once:

- no start time: an all-day event, 00:00:00 to 23:59:59 (of `end_date` when there is one);
- an end time at or before the start time on the same day ends the next day (22:00-04:00);
- no end time: `DEFAULT_DURATION` after the start for a one-day event, 23:59:59 of `end_date`
  for a multi-day one;
- no timezone: resolved offline from the coordinates, city, state or country;
- no image: the `image` key is left out, not sent as null, so a strictly typed API cannot
  reject null where it expects a URL.

Nothing is invented: a missing date or timezone is a `TransformError`, never a placeholder (the
title is required by `EventData` itself).
Every text that goes into `details` is HTML-escaped, since titles and descriptions come from
pages we do not control.
"""

import datetime as dt
import html
from collections.abc import Iterable
from typing import Any

from event_importer.sdk import (
    BaseTransformer,
    EventData,
    Images,
    TransformError,
    minimum_age_label,
    overnight_end,
    place_line,
    resolve_event_timezone,
)

# A concert or club night without a stated end: long enough that the event is still listed while it
# runs, short enough not to claim the next evening.
DEFAULT_DURATION = dt.timedelta(hours=4)

_END_OF_DAY = dt.time(23, 59, 59)
_ELLIPSIS = ("…", "...")


class TicketFairyTransformer(BaseTransformer):
    """One event as a TicketFairy draft event."""

    def transform(self, event_data: dict[str, Any]) -> dict[str, Any]:
        event = self.parse(event_data)
        if event.date is None:
            raise TransformError("date is required by TicketFairy")
        timezone = resolve_event_timezone(event)
        if timezone is None:
            raise TransformError(
                "timezone could not be determined: give time.timezone, location.coordinates or a city/country"
            )
        start, end = event_period(event)
        attributes: dict[str, Any] = {"title": event.title, "url": event.ticket_url or event.source_url}
        image = _image_url(event.images)
        if image is not None:
            attributes["image"] = image
        attributes |= {
            "hostedBy": True,
            "startDate": _local(start),
            "endDate": _local(end),
            "timezone": timezone,
            "isOnline": 0,
            "status": "Public",
            "address": place_line(event.location),
            "venue": event.venue or "",
            "details": format_details(event),
        }
        return {"data": {"attributes": attributes}}


def event_period(event: EventData) -> tuple[dt.datetime, dt.datetime]:
    """The event's local start and end, following the rules in the module docstring.

    Raises:
        TransformError: the event has no date, or its end falls past the year 9999.
    """
    if event.date is None:
        raise TransformError("date is required by TicketFairy")
    start_time = _naive(event.time.start) if event.time else None
    end_time = _naive(event.time.end) if event.time else None
    last_day = event.end_date or event.date
    start = dt.datetime.combine(event.date, start_time or dt.time())
    try:
        if end_time is not None:
            # Only overnight on a one-day event: a later end_date always ends after the start.
            end = overnight_end(start, dt.datetime.combine(last_day, end_time))
        elif start_time is None or last_day > event.date:
            end = dt.datetime.combine(last_day, _END_OF_DAY)
        else:
            end = start + DEFAULT_DURATION
    except OverflowError:
        raise TransformError(f"the event's end falls after the year 9999 (date {event.date})") from None
    return start, end


def format_details(event: EventData) -> str:
    """The event's texts as HTML paragraphs, every one escaped; empty parts are left out."""
    paragraphs = [
        *_descriptions(event),
        _labelled("Cost", event.cost),
        minimum_age_label(event.minimum_age),
        _labelled("Lineup", _listing(event.lineup)),
        _labelled("Presented by", _listing(event.promoters)),
        _labelled("Genres", _listing(event.genres)),
    ]
    return "".join(f"<p>{_html(text)}</p>" for text in paragraphs if text)


def _descriptions(event: EventData) -> list[str]:
    long, short = event.long_description, event.short_description
    if long and short and not _summarises(short, long):
        return [short, long]
    return [long or short or ""]


def _summarises(short: str, long: str) -> bool:
    # A short description is often the long one cut off, sometimes with an ellipsis: no news.
    head = " ".join(short.split())
    for ellipsis in _ELLIPSIS:
        head = head.removesuffix(ellipsis).rstrip()
    return " ".join(long.split()).startswith(head)


def _labelled(label: str, text: str | None) -> str:
    return f"{label}: {text}" if text else ""


def _listing(items: Iterable[str]) -> str:
    names = (item.strip() for item in items)
    return ", ".join(dict.fromkeys(name for name in names if name))


def _html(text: str) -> str:
    escaped = html.escape(text, quote=True)
    return escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


def _image_url(images: Images | None) -> str | None:
    if images is None:
        return None
    return images.full or images.thumbnail


def _naive(value: dt.time | None) -> dt.time | None:
    # The model accepts "22:00+02:00"; the timezone field, not an offset, says where the event is.
    return None if value is None else value.replace(tzinfo=None)


def _local(moment: dt.datetime) -> str:
    # isoformat pads years below 1000, which strftime("%Y") does not do on every platform.
    return moment.isoformat(sep=" ", timespec="seconds")
