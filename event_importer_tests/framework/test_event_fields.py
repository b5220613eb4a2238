"""The rules every destination reads an event by, once: its id, an overnight end, its place on one line.
The id is held by destinations (webhook receivers, calendars), so its value is pinned here."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from event_importer.events.model import Location
from event_importer.sdk import overnight_end, place_line, source_url_id


def test_the_id_of_a_source_url_never_changes():
    # The id earlier releases sent for this URL (the webhook's `id`, CalDAV's UID before "@event-importer").
    assert source_url_id("https://events.example.org/e/1") == "63824be60ebc41961cf1df34b8da7592fd96fc9e"
    assert source_url_id("https://events.example.org/e/2") != source_url_id("https://events.example.org/e/1")


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ((22, 0), (4, 0), dt.datetime(2027, 3, 15, 4, 0)),  # a club night ends the next day
        ((22, 0), (22, 0), dt.datetime(2027, 3, 15, 22, 0)),  # an end at the start too
        ((20, 0), (23, 0), dt.datetime(2027, 3, 14, 23, 0)),  # a later end stays
    ],
)
def test_an_end_at_or_before_the_start_is_on_the_next_day(start, end, expected):
    day = dt.date(2027, 3, 14)
    assert overnight_end(dt.datetime.combine(day, dt.time(*start)), dt.datetime.combine(day, dt.time(*end))) == expected


def test_an_overnight_end_keeps_its_zone():
    berlin = ZoneInfo("Europe/Berlin")
    start = dt.datetime(2027, 3, 27, 23, 0, tzinfo=berlin)
    assert overnight_end(start, dt.datetime(2027, 3, 27, 5, 0, tzinfo=berlin)) == dt.datetime(
        2027, 3, 28, 5, 0, tzinfo=berlin
    )


@pytest.mark.parametrize(
    ("venue", "location", "line"),
    [
        (None, None, ""),
        ("Tresor", None, "Tresor"),
        ("Tresor", Location(address="Köpenicker Str. 70", city="Berlin", country="Germany"),
         "Tresor, Köpenicker Str. 70, Berlin, Germany"),
        # The city is in the address already, postcode or not; "DE" is not "Dresden".
        ("Club", Location(address="Prager Str. 1, 01069 Dresden", city="Dresden", country="DE"),
         "Club, Prager Str. 1, 01069 Dresden, DE"),
        (None, Location(address="Berliner Str. 5", city="Berlin"), "Berliner Str. 5, Berlin"),
    ],
)
def test_the_place_says_each_part_once(venue, location, line):
    assert place_line(location, venue=venue) == line
