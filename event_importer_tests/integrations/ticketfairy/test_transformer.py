"""TicketFairy's transformer: the exact body sent, and every rule for what an event leaves out.

A draft with a wrong end date or an unescaped description goes live without an error anywhere,
so the payload is pinned field by field, and every bundled sample must transform.
"""

import json
from importlib import resources
from typing import Any

import pytest
from pydantic import ValidationError

from event_importer.errors import TransformError
from event_importer.events.model import EventData
from event_importer.integrations.ticketfairy.transformer import TicketFairyTransformer

transformer = TicketFairyTransformer()


def event(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "Night Shift",
        "date": "2027-03-14",
        "time": {"start": "22:00", "end": "04:00", "timezone": "Europe/Berlin"},
        "source_url": "https://events.example.org/night-shift",
    }
    return data | overrides


def attributes(data: dict[str, Any]) -> dict[str, Any]:
    payload = transformer.transform(data)
    assert list(payload) == ["data"] and list(payload["data"]) == ["attributes"]
    result: dict[str, Any] = payload["data"]["attributes"]
    return result


def samples() -> list[dict[str, Any]]:
    text = resources.files("event_importer.events").joinpath("sample_events.json").read_text(encoding="utf-8")
    loaded: list[dict[str, Any]] = json.loads(text)
    return loaded


def test_full_event_payload() -> None:
    data = {
        "title": "Tresor Nacht: Kessel & Funke",
        "venue": "Tresor",
        "date": "2027-01-16",
        "time": {"start": "23:00", "end": "06:00", "timezone": "Europe/Berlin"},
        "location": {
            "address": "Köpenicker Str. 70, 10179 Berlin",
            "city": "Berlin",
            "country": "Germany",
            "coordinates": {"lat": 52.5103, "lng": 13.4197},
        },
        "lineup": ["Kessel", "Funke"],
        "promoters": ["Tresor Records"],
        "genres": ["Techno", "Industrial"],
        "minimum_age": "18+",
        "cost": "€18 at the door",
        "long_description": "Seven hours in the vault.\nNo photos.",
        "short_description": "Techno until the morning.",
        "images": {"full": "https://img.example.org/full.jpg", "thumbnail": "https://img.example.org/t.jpg"},
        "ticket_url": "https://tickets.example.com/tresor",
        "source_url": "https://events.example.org/tresor",
        "imported_at": "2026-11-20T10:00:00Z",
    }
    assert transformer.transform(data) == {
        "data": {
            "attributes": {
                "title": "Tresor Nacht: Kessel & Funke",
                "url": "https://tickets.example.com/tresor",
                "image": "https://img.example.org/full.jpg",
                "hostedBy": True,
                "startDate": "2027-01-16 23:00:00",
                "endDate": "2027-01-17 06:00:00",
                "timezone": "Europe/Berlin",
                "isOnline": 0,
                "status": "Public",
                "address": "Köpenicker Str. 70, 10179 Berlin, Germany",
                "venue": "Tresor",
                "details": (
                    "<p>Techno until the morning.</p>"
                    "<p>Seven hours in the vault.<br>No photos.</p>"
                    "<p>Cost: €18 at the door</p>"
                    "<p>Minimum age: 18+</p>"
                    "<p>Lineup: Kessel, Funke</p>"
                    "<p>Presented by: Tresor Records</p>"
                    "<p>Genres: Techno, Industrial</p>"
                ),
            }
        }
    }


def test_minimal_event_payload() -> None:
    assert attributes(event()) == {
        "title": "Night Shift",
        "url": "https://events.example.org/night-shift",
        "hostedBy": True,
        "startDate": "2027-03-14 22:00:00",
        "endDate": "2027-03-15 04:00:00",
        "timezone": "Europe/Berlin",
        "isOnline": 0,
        "status": "Public",
        "address": "",
        "venue": "",
        "details": "",
    }


def test_every_text_in_details_is_escaped() -> None:
    script = "<script>alert(1)</script>"
    details = attributes(
        event(
            title=f"{script} & friends",
            long_description=f'Line "one" & {script}\r\nLine two',
            short_description=f"{script}",
            cost="<b>€10</b> & up",
            lineup=[script, "Tom & Jerry"],
            promoters=["O'Brien <Presents>"],
            genres=["R&B"],
        )
    )["details"]
    assert details == (
        "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
        "<p>Line &quot;one&quot; &amp; &lt;script&gt;alert(1)&lt;/script&gt;<br>Line two</p>"
        "<p>Cost: &lt;b&gt;€10&lt;/b&gt; &amp; up</p>"
        "<p>Lineup: &lt;script&gt;alert(1)&lt;/script&gt;, Tom &amp; Jerry</p>"
        "<p>Presented by: O&#x27;Brien &lt;Presents&gt;</p>"
        "<p>Genres: R&amp;B</p>"
    )


def test_title_is_sent_as_plain_text() -> None:
    # The title is a text field, not HTML: escaping it would show "&amp;" on the event page.
    assert attributes(event(title='Rock <Live> & "Loud"'))["title"] == 'Rock <Live> & "Loud"'


@pytest.mark.parametrize(
    ("dates", "time", "start", "end"),
    [
        # A club night: an end at or before the start is the next morning.
        ({}, {"start": "22:00", "end": "04:00"}, "2027-03-14 22:00:00", "2027-03-15 04:00:00"),
        ({}, {"start": "22:00", "end": "22:00"}, "2027-03-14 22:00:00", "2027-03-15 22:00:00"),
        ({}, {"start": "20:00", "end": "00:00"}, "2027-03-14 20:00:00", "2027-03-15 00:00:00"),
        ({}, {"start": "20:00", "end": "23:30"}, "2027-03-14 20:00:00", "2027-03-14 23:30:00"),
        ({"end_date": "2027-03-14"}, {"start": "22:00", "end": "04:00"}, "2027-03-14 22:00:00", "2027-03-15 04:00:00"),
        # New Year's Eve rolls into the next year.
        ({"date": "2027-12-31"}, {"start": "21:00", "end": "01:00"}, "2027-12-31 21:00:00", "2028-01-01 01:00:00"),
        # An explicit later end_date is taken as it is.
        ({"end_date": "2027-03-16"}, {"start": "14:00", "end": "23:00"}, "2027-03-14 14:00:00", "2027-03-16 23:00:00"),
        ({"end_date": "2027-03-16"}, {"start": "22:00", "end": "06:00"}, "2027-03-14 22:00:00", "2027-03-16 06:00:00"),
        # No end time: four hours on a one-day event, the end of the last day on a multi-day one.
        ({}, {"start": "19:30"}, "2027-03-14 19:30:00", "2027-03-14 23:30:00"),
        ({}, {"start": "23:00"}, "2027-03-14 23:00:00", "2027-03-15 03:00:00"),
        ({"end_date": "2027-03-16"}, {"start": "12:00"}, "2027-03-14 12:00:00", "2027-03-16 23:59:59"),
        # No start time: all day.
        ({}, {}, "2027-03-14 00:00:00", "2027-03-14 23:59:59"),
        ({"end_date": "2027-03-16"}, {}, "2027-03-14 00:00:00", "2027-03-16 23:59:59"),
        ({}, {"end": "18:00"}, "2027-03-14 00:00:00", "2027-03-14 18:00:00"),
        # Seconds are kept; an offset in the time is dropped (the timezone says where the event is).
        ({}, {"start": "21:30:15", "end": "23:00"}, "2027-03-14 21:30:15", "2027-03-14 23:00:00"),
        ({}, {"start": "22:00+02:00", "end": "04:00"}, "2027-03-14 22:00:00", "2027-03-15 04:00:00"),
    ],
)
def test_start_and_end(dates: dict[str, str], time: dict[str, str], start: str, end: str) -> None:
    result = attributes(event(**dates, time={**time, "timezone": "Europe/Berlin"}))
    assert (result["startDate"], result["endDate"]) == (start, end)


def test_event_without_time_at_all_is_all_day() -> None:
    result = attributes(event(time=None, location={"city": "Berlin"}))
    assert (result["startDate"], result["endDate"], result["timezone"]) == (
        "2027-03-14 00:00:00",
        "2027-03-14 23:59:59",
        "Europe/Berlin",
    )


def test_end_past_the_last_representable_day() -> None:
    with pytest.raises(TransformError, match="after the year 9999"):
        transformer.transform(event(date="9999-12-31"))


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ({"coordinates": {"lat": 64.1466, "lng": -21.9426}}, "Atlantic/Reykjavik"),
        ({"coordinates": {"lat": 33.4484, "lng": -112.0740}, "city": "Denver"}, "America/Phoenix"),
        ({"city": "Tromsø", "country": "Norway"}, "Europe/Oslo"),
        ({"city": "Ushuaia"}, "America/Argentina/Ushuaia"),
        ({"city": "Hobart", "state": "Tasmania", "country": "Australia"}, "Australia/Hobart"),
        ({"city": "Córdoba", "country": "Spain"}, "Europe/Madrid"),
        ({"country": "Japan"}, "Asia/Tokyo"),
    ],
)
def test_timezone_from_the_location(location: dict[str, Any], expected: str) -> None:
    data = event(time={"start": "20:00", "end": "23:00"}, location=location)
    assert attributes(data)["timezone"] == expected


def test_given_timezone_wins_over_the_location() -> None:
    data = event(location={"city": "Tokyo", "country": "Japan"})
    assert attributes(data)["timezone"] == "Europe/Berlin"


@pytest.mark.parametrize(
    "location",
    [None, {"address": "Somewhere 1"}, {"city": "Xyzzyqwv"}, {"country": "Narnia"}],
)
def test_unresolvable_timezone(location: dict[str, Any] | None) -> None:
    data = event(time={"start": "20:00"}, location=location)
    with pytest.raises(TransformError) as raised:
        transformer.transform(data)
    assert str(raised.value) == (
        "timezone could not be determined: give time.timezone, location.coordinates or a city/country"
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"date": None}, "date is required by TicketFairy"),
        ({"date": None, "end_date": "2027-03-15"}, "date is required by TicketFairy"),
    ],
)
def test_missing_date(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(TransformError) as raised:
        transformer.transform(event(**overrides))
    assert str(raised.value) == message


@pytest.mark.parametrize("overrides", [{"date": "14/03/2027"}, {"title": None}, {"title": "   "}])
def test_invalid_event_data_is_left_to_the_framework(overrides: dict[str, Any]) -> None:
    # BaseSubmitter turns a ValidationError into a per-event "invalid event data" failure; a cached
    # event without a title (loaded before titles were required) ends there too.
    with pytest.raises(ValidationError):
        transformer.transform(event(**overrides))


@pytest.mark.parametrize(
    ("overrides", "url"),
    [
        ({"ticket_url": "https://tickets.example.com/1"}, "https://tickets.example.com/1"),
        ({}, "https://events.example.org/night-shift"),
        ({"ticket_url": "  "}, "https://events.example.org/night-shift"),
    ],
)
def test_url_falls_back_to_the_source(overrides: dict[str, Any], url: str) -> None:
    assert attributes(event(**overrides))["url"] == url


@pytest.mark.parametrize(
    ("images", "image"),
    [
        (
            {"full": "https://img.example.org/f.jpg", "thumbnail": "https://img.example.org/t.jpg"},
            "https://img.example.org/f.jpg",
        ),
        ({"thumbnail": "https://img.example.org/t.jpg"}, "https://img.example.org/t.jpg"),
        ({"full": "", "thumbnail": "https://img.example.org/t.jpg"}, "https://img.example.org/t.jpg"),
    ],
)
def test_image_falls_back_to_the_thumbnail(images: dict[str, str], image: str) -> None:
    assert attributes(event(images=images))["image"] == image


@pytest.mark.parametrize("images", [None, {}, {"full": None, "thumbnail": ""}])
def test_no_image_leaves_the_key_out(images: dict[str, Any] | None) -> None:
    assert "image" not in attributes(event(images=images))


@pytest.mark.parametrize(
    ("location", "address"),
    [
        (
            {"address": "Köpenicker Str. 70", "city": "Berlin", "country": "Germany"},
            "Köpenicker Str. 70, Berlin, Germany",
        ),
        # The city (with its postcode) and the state are already in the address.
        ({"address": "Köpenicker Str. 70, 10179 Berlin", "city": "Berlin"}, "Köpenicker Str. 70, 10179 Berlin"),
        (
            {"address": "319 Frost St, Brooklyn, NY 11222", "city": "Brooklyn", "state": "NY", "country": "USA"},
            "319 Frost St, Brooklyn, NY 11222, USA",
        ),
        ({"address": "77a Charterhouse St, London EC1M 6HJ", "city": "london"}, "77a Charterhouse St, London EC1M 6HJ"),
        ({"city": "Singapore", "country": "Singapore"}, "Singapore"),
        # A street named after the city is not the city.
        ({"address": "Berliner Str. 5", "city": "Berlin"}, "Berliner Str. 5, Berlin"),
        ({"city": "Tromsø", "state": "", "country": "Norway"}, "Tromsø, Norway"),
        ({"coordinates": {"lat": 52.5, "lng": 13.4}}, ""),
    ],
)
def test_address(location: dict[str, Any], address: str) -> None:
    assert attributes(event(location=location))["address"] == address


@pytest.mark.parametrize(
    ("texts", "details"),
    [
        ({"long_description": "Long.", "short_description": "Short."}, "<p>Short.</p><p>Long.</p>"),
        ({"short_description": "Only short."}, "<p>Only short.</p>"),
        ({"long_description": "Only long."}, "<p>Only long.</p>"),
        ({"long_description": "Same.", "short_description": "Same."}, "<p>Same.</p>"),
        # A short description that is the long one cut off adds nothing.
        (
            {"long_description": "Seven hours in the vault.\nNo photos.", "short_description": "Seven hours in the…"},
            "<p>Seven hours in the vault.<br>No photos.</p>",
        ),
        ({"minimum_age": "21+"}, "<p>Minimum age: 21+</p>"),
        ({"minimum_age": "21"}, "<p>Minimum age: 21+</p>"),
        ({"minimum_age": 21}, "<p>Minimum age: 21+</p>"),
        ({"minimum_age": "All Ages"}, "<p>All Ages</p>"),
        ({"minimum_age": "todos"}, "<p>All Ages</p>"),
        ({"minimum_age": "18+ with ID <b>"}, "<p>Minimum age: 18+ with ID &lt;b&gt;</p>"),
        ({"lineup": ["A", " ", "B", "A"], "genres": [], "cost": ""}, "<p>Lineup: A, B</p>"),
    ],
)
def test_details(texts: dict[str, Any], details: str) -> None:
    assert attributes(event(**texts))["details"] == details


def test_venue() -> None:
    assert attributes(event(venue="Tresor"))["venue"] == "Tresor"
    assert attributes(event(venue=None))["venue"] == ""


def test_every_sample_transforms() -> None:
    for data in samples():
        result = attributes(data)
        assert result["title"] and result["timezone"], data["source_url"]
        assert result["startDate"] < result["endDate"], data["source_url"]


def test_samples_cover_what_they_are_for() -> None:
    events = [EventData.model_validate(data) for data in samples()]
    assert len(events) >= 32
    assert len({e.source_url for e in events}) == len(events)
    assert all(e.imported_at is not None for e in events)
    results = [attributes(data) for data in samples()]
    assert len({r["timezone"] for r in results}) >= 6
    assert len({r["timezone"].split("/")[0] for r in results}) >= 4  # continents
    # The edge cases the samples exist to exercise.
    pairs = list(zip(results, events, strict=True))
    assert any(r["endDate"][:10] > r["startDate"][:10] for r, e in pairs if e.end_date is None)
    assert any(e.end_date and e.end_date > e.date for e in events if e.date)
    assert any(e.location and e.location.coordinates and not (e.time and e.time.timezone) for e in events)
    assert any(
        e.location and e.location.city and not e.location.coordinates and not (e.time and e.time.timezone)
        for e in events
    )
    assert any("image" in r and e.images and not e.images.full for r, e in zip(results, events, strict=True))
    assert any(not e.ticket_url for e in events)
    assert any(any(c in (e.title or "") for c in '<&"') for e in events)
    assert any(not (e.title or "").isascii() for e in events)
