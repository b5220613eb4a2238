"""Builds one iCalendar VEVENT per event with `icalendar`, wrapped in a VCALENDAR ready to PUT.

Calendars show local times, so a timed event gets DTSTART/DTEND in its own zone (a TZID, from the
event or resolved from its location by `resolve_event_timezone`, plus the VTIMEZONE that RFC 5545
requires next to it); when no zone can be found the times are floating, i.e. the same local time
wherever the calendar is read, which is honest about what is known. An end at or before the start
is on the next day (a club night from 22:00 to 04:00). An event without a start time is all-day,
its DTEND the day after its last day (exclusive, as RFC 5545 has it).

The UID is derived from the source URL alone, so every version of an event is the same calendar
entry. SEQUENCE is the number of attempts made for the event before this one, so every later
version, a cancellation included, has a higher one, as RFC 5546 asks of a changed event. A cancelled
event (its status, or a removal with `CALDAV_REMOVAL=cancel`) has STATUS:CANCELLED, a postponed one
STATUS:TENTATIVE, any other STATUS:CONFIRMED; a removal with `CALDAV_REMOVAL=delete` is no VEVENT but
`{"uid", "delete": true}`, which the client turns into a DELETE.

DESCRIPTION is plain text: calendar apps show markup as it is, so HTML from the source is
reduced to its text.
"""

import datetime as dt
import re
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

from event_importer.sdk import (
    BaseTransformer,
    EventData,
    EventRef,
    EventStatus,
    Operation,
    TransformError,
    minimum_age_label,
    overnight_end,
    place_line,
    resolve_event_timezone,
    source_url_id,
)

UID_DOMAIN = "event-importer"
PRODID = "-//event-importer//CalDAV integration//EN"

_ONE_DAY = dt.timedelta(days=1)
_UTC = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu"})
_LOOKS_LIKE_HTML = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*|/[a-zA-Z][a-zA-Z0-9]*|!--)[^<>]*>")
_BLOCK_TAGS = frozenset({"br", "p", "div", "li", "ul", "ol", "tr", "h1", "h2", "h3", "h4", "h5", "h6"})


def event_uid(source_url: str) -> str:
    """The event's stable UID: `<sha1 of the source URL>@event-importer`."""
    return f"{source_url_id(source_url)}@{UID_DOMAIN}"


class CalDavTransformer(BaseTransformer):
    def __init__(self, *, delete_removed: bool = False) -> None:
        self.delete_removed = delete_removed

    def transform(self, event_data: dict[str, Any]) -> dict[str, Any]:
        """`{"uid": ..., "ics": <VCALENDAR text>}` for one event seen without its history (SEQUENCE 0).

        Raises:
            TransformError: the event has no date, without which there is no entry.
        """
        return self._calendar(event_data, sequence=0, cancelled=False)

    def transform_event(self, event: EventRef) -> dict[str, Any]:
        if event.operation is Operation.REMOVE and self.delete_removed:
            return {"uid": event_uid(event.source_url), "delete": True}
        removed = event.operation is Operation.REMOVE
        return self._calendar(event.data, sequence=event.attempts, cancelled=removed)

    def _calendar(self, event_data: dict[str, Any], *, sequence: int, cancelled: bool) -> dict[str, Any]:
        event = self.parse(event_data)
        if event.date is None:
            raise TransformError("no date: a calendar entry needs one for its DTSTART")
        uid = event_uid(event.source_url)
        start, end = event_span(event)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)

        vevent = icalendar.Event()
        vevent.add("uid", uid)
        vevent.add("dtstamp", now)
        vevent.add("last-modified", now)
        vevent.add("sequence", sequence)
        vevent.add("status", _ical_status(EventStatus.CANCELLED if cancelled else event.status))
        vevent.add("summary", event.title)
        add_time(vevent, "dtstart", start)
        if end is not None:
            add_time(vevent, "dtend", end)
        if location := place_line(event.location, venue=event.venue):
            vevent.add("location", location)
        if event.location and event.location.coordinates:
            vevent.add("geo", (event.location.coordinates.lat, event.location.coordinates.lng))
        if description := description_text(event):
            vevent.add("description", description)
        vevent.add("url", event.source_url)
        if event.genres:
            vevent.add("categories", event.genres)

        calendar = icalendar.Calendar()
        calendar.add("prodid", PRODID)
        calendar.add("version", "2.0")
        calendar.add_component(vevent)
        last = end or start
        # VTIMEZONE rules for the years around the event only: the default span (1970-2038) makes
        # every entry kilobytes longer and stops short of later events.
        calendar.add_missing_timezones(
            first_date=dt.date(start.year - 1, 1, 1), last_date=dt.date(last.year + 2, 1, 1)
        )
        return {"uid": uid, "ics": calendar.to_ical().decode()}


def _ical_status(status: EventStatus) -> str:
    if status is EventStatus.CANCELLED:
        return "CANCELLED"
    return "TENTATIVE" if status is EventStatus.POSTPONED else "CONFIRMED"


def add_time(vevent: icalendar.Event, name: str, value: dt.date | dt.datetime) -> None:
    """Add DTSTART or DTEND, a zoned time always with its own TZID.

    icalendar writes a time in a zone it holds equivalent to UTC (Atlantic/Reykjavik, Africa/Abidjan,
    ...) as a `Z` time, which drops the zone the event is in: the local time goes in with the TZID
    as a parameter instead. A time in UTC itself stays a `Z` time.
    """
    if isinstance(value, dt.datetime) and isinstance(value.tzinfo, ZoneInfo) and value.tzinfo.key not in _UTC:
        vevent.add(name, value.replace(tzinfo=None), parameters={"TZID": value.tzinfo.key})
    else:
        vevent.add(name, value)


def event_span(event: EventData) -> tuple[dt.date | dt.datetime, dt.date | dt.datetime | None]:
    """DTSTART and DTEND (None: no end known) of a dated event."""
    assert event.date is not None
    time = event.time
    if time is None or time.start is None:
        return event.date, (event.end_date or event.date) + _ONE_DAY
    zone = resolve_event_timezone(event)
    tzinfo = ZoneInfo(zone) if zone else None
    start = dt.datetime.combine(event.date, time.start, tzinfo=tzinfo)
    if time.end is None:
        return start, None
    return start, overnight_end(start, dt.datetime.combine(event.end_date or event.date, time.end, tzinfo=tzinfo))


def description_text(event: EventData) -> str:
    """The description, then lineup, cost, age and tickets, as plain text."""
    lines: list[str] = []
    if text := event.long_description or event.short_description:
        lines += [plain_text(text), ""]
    if event.lineup:
        lines.append(f"Lineup: {', '.join(event.lineup)}")
    if event.promoters:
        lines.append(f"Promoters: {', '.join(event.promoters)}")
    if event.cost:
        lines.append(f"Cost: {event.cost}")
    if age := minimum_age_label(event.minimum_age):
        lines.append(age)
    if event.ticket_url:
        lines.append(f"Tickets: {event.ticket_url}")
    if event.status is not EventStatus.SCHEDULED:
        lines.append(f"Status: {event.status.value.replace('_', ' ')}")
    if event.previous_start:
        lines.append(f"Previously scheduled for: {event.previous_start.isoformat()}")
    return "\n".join(lines).strip()


def plain_text(text: str) -> str:
    """`text` without HTML markup; text that has no tags is returned as it is ("1 < 2" stays)."""
    if not _LOOKS_LIKE_HTML.search(text):
        return text.strip()
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
