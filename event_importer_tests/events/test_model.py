"""`EventData` takes the Event Importer's shapes: minimum_age as text, a required title, and times
written as importers write them; anything else is refused naming the field."""

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from event_importer.events.model import EventData, describe_validation_error, minimum_age_label, quote
from event_importer.integrations.caldav.transformer import CalDavTransformer
from event_importer.integrations.ticketfairy.transformer import TicketFairyTransformer
from event_importer_tests.factories import event_data


def parsed(**overrides: Any) -> EventData:
    return EventData.model_validate(event_data(**overrides))


def refusal(**overrides: Any) -> str:
    with pytest.raises(ValidationError) as raised:
        parsed(**overrides)
    return describe_validation_error(raised.value)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("21+", "21+"),
        ("21", "21+"),
        (" 18 + ", "18+"),
        (21, "21+"),
        (18.0, "18+"),
        ("All Ages", "All Ages"),
        ("all ages", "All Ages"),
        ("ALL  AGES", "All Ages"),
        ("Todos", "All Ages"),
        ("FAMILY", "All Ages"),
        (0, "All Ages"),
        ("0", "All Ages"),
        ("  18+ with   ID ", "18+ with ID"),
        ("", None),
        (None, None),
    ],
)
def test_minimum_age_is_normalised_as_the_event_importer_does(given: Any, stored: str | None) -> None:
    event = parsed(minimum_age=given)
    assert event.minimum_age == stored
    assert event.to_json().get("minimum_age") == stored


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (-1, "minimum_age: expected a whole number of years, got -1"),
        (18.5, "minimum_age: expected a whole number of years, got 18.5"),
        (True, "minimum_age: expected text such as '21+' or 'All Ages', or a whole number"),
        (["18+"], "minimum_age: expected text such as '21+' or 'All Ages', or a whole number"),
        ("x" * 1001, "minimum_age: String should have at most 1000 characters"),
    ],
)
def test_minimum_age_that_is_no_age_is_refused(given: Any, message: str) -> None:
    assert refusal(minimum_age=given) == message


def test_destinations_show_the_minimum_age_as_text() -> None:
    assert minimum_age_label("21+") == "Minimum age: 21+"
    assert minimum_age_label("All Ages") == "All Ages"
    assert minimum_age_label("18+ with ID") == "Minimum age: 18+ with ID"
    assert minimum_age_label(None) == ""


def test_title_is_required_and_not_blank() -> None:
    without = event_data()
    del without["title"]
    for data, message in [
        (without, "title: Field required"),
        ({**without, "title": ""}, "title: String should have at least 1 character"),
        ({**without, "title": " \t "}, "title: String should have at least 1 character"),
        ({**without, "title": None}, "title: Input should be a valid string"),
    ]:
        with pytest.raises(ValidationError) as raised:
            EventData.model_validate(data)
        assert describe_validation_error(raised.value) == message
    assert parsed(title=" Night ").title == "Night"


@pytest.mark.parametrize(
    ("given", "time"),
    [
        ("21:00", dt.time(21, 0)),
        ("21:00:00", dt.time(21, 0)),
        ("21:30:15", dt.time(21, 30, 15)),
        ("9:05", dt.time(9, 5)),
        ("9pm", dt.time(21, 0)),
        ("9 PM", dt.time(21, 0)),
        ("9:30 PM", dt.time(21, 30)),
        ("9:30pm", dt.time(21, 30)),
        ("9:30 p.m.", dt.time(21, 30)),
        ("12am", dt.time(0, 0)),
        ("12:15 AM", dt.time(0, 15)),
        ("12pm", dt.time(12, 0)),
        ("11:59 am", dt.time(11, 59)),
        # An offset is dropped: the timezone field says where the event is.
        ("22:00+02:00", dt.time(22, 0)),
        ("", None),
    ],
)
def test_times_load_as_importers_write_them(given: str, time: dt.time | None) -> None:
    event = parsed(time={"start": given, "end": given, "timezone": "Europe/Berlin"})
    assert event.time is not None
    assert (event.time.start, event.time.end) == (time, time)


@pytest.mark.parametrize("given", ["25:00", "21:60", "13pm", "0am", "21h", "2100", "9", "noon", "9:30 PM PST", 75600])
def test_any_other_time_is_refused_naming_the_field(given: Any) -> None:
    message = refusal(time={"start": "21:00", "end": given})
    assert message.startswith("time.end: expected a time such as '21:00', '21:00:00', '9pm' or '9:30 PM', got ")


def test_quote_keeps_short_values_and_cuts_long_ones() -> None:
    assert quote("Europe/Berlin") == "'Europe/Berlin'"
    assert quote(75600) == "75600"
    long = quote("x" * 100_000)
    assert long == f"{'x' * 40!r}... (100,000 characters)"


def test_the_readme_example_record_is_a_valid_event_that_every_destination_takes() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The event format", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.DOTALL)
    assert block is not None
    data = json.loads(block.group(1))
    event = EventData.model_validate(data)
    assert (event.minimum_age, event.time and event.time.start) == ("18+", dt.time(23, 0))
    details = TicketFairyTransformer().transform(data)["data"]["attributes"]["details"]
    assert "<p>Minimum age: 18+</p>" in details
    assert "Minimum age: 18+" in CalDavTransformer().transform(data)["ics"]
