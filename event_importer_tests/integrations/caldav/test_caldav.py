"""The CalDAV integration against a real Radicale server: what `submit_events` stores is read back
with a CalDAV client (the `caldav` library) and checked field by field, a changed event updates its
one calendar entry in place instead of adding a second, and bad settings or credentials fail clearly
without ever showing the password."""

import datetime as dt
import sys
from zoneinfo import ZoneInfo

import caldav
import httpx
import icalendar
import pytest
from pydantic import SecretStr

from event_importer.errors import (
    ConfigurationError,
    RejectedSubmissionError,
    TransformError,
)
from event_importer.events.model import EventData
from event_importer.framework.discovery import discover
from event_importer.framework.records import Outcome
from event_importer.integrations.caldav.client import CalDavClient
from event_importer.integrations.caldav.submitter import INSTALL_HINT, CalDavSubmitter
from event_importer.integrations.caldav.transformer import (
    CalDavTransformer,
    event_span,
    event_uid,
    plain_text,
)
from event_importer.ledger import AttemptRecord
from event_importer.sdk import place_line
from event_importer_tests.factories import add_events, event_data, submission_rows
from event_importer_tests.integrations.caldav.radicale_server import (
    PASSWORD,
    USERNAME,
    RadicaleServer,
)

BERLIN = ZoneInfo("Europe/Berlin")


def read_back(url, *, auth=True):
    """Every entry of the calendar, as a CalDAV client sees it: {UID: (href, VEVENT)}."""
    credentials = {"username": USERNAME, "password": PASSWORD} if auth else {}
    with caldav.DAVClient(url=url, **credentials) as client:
        objects = client.calendar(url=url).get_events()
    entries = {str(o.icalendar_component["UID"]): (str(o.url), o.icalendar_component) for o in objects}
    assert len(entries) == len(objects), "two resources share a UID"
    return entries


def test_events_are_stored_as_vevents_and_read_back(calendar_url, sqlite_database):
    club_night = event_data(
        title="Club night",
        long_description="<p>All night <b>long</b> &amp; loud</p>",
        cost="15 EUR",
        ticket_url="https://tickets.example.org/1",
    )
    festival = event_data(title="Open air", time=None, date="2027-06-01", end_date="2027-06-03")
    brunch = event_data(
        title="Jazz brunch",
        venue="Blue Note",
        time={"start": "11:00", "end": "14:00"},  # no timezone: resolved from the coordinates
        location={"city": "New York", "country": "US", "coordinates": {"lat": 40.7306, "lng": -74.0005}},
    )
    undated = event_data(date=None)
    add_events(sqlite_database, club_night, festival, brunch, undated)

    report = CalDavSubmitter().submit_events(sqlite_database, "unsubmitted")

    assert report.counts["submitted"] == 3 and report.counts["invalid"] == 1
    [failed] = [r for r in report.results if r.outcome is Outcome.FAILED]
    assert failed.source_url == undated["source_url"]
    assert failed.error == "no date: a calendar entry needs one for its DTSTART"

    entries = read_back(calendar_url)
    assert set(entries) == {event_uid(e["source_url"]) for e in (club_night, festival, brunch)}

    href, night = entries[event_uid(club_night["source_url"])]
    assert str(night["UID"]).endswith("@event-importer") and len(str(night["UID"]).split("@")[0]) == 40
    assert str(night["SUMMARY"]) == "Club night"
    assert night["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert night.start == dt.datetime(2027, 3, 14, 22, 0, tzinfo=BERLIN)
    # 22:00 to 04:00 ends the next morning.
    assert night.end == dt.datetime(2027, 3, 15, 4, 0, tzinfo=BERLIN)
    assert str(night["LOCATION"]) == "Tresor, Köpenicker Str. 70, Berlin, Germany"
    assert str(night["URL"]) == club_night["source_url"]
    description = str(night["DESCRIPTION"])
    assert description.startswith("All night long & loud\n")
    assert "Lineup: DJ One, DJ Two" in description and "Cost: 15 EUR" in description
    assert "Tickets: https://tickets.example.org/1" in description
    assert "DTSTAMP" in night and "LAST-MODIFIED" in night

    _, open_air = entries[event_uid(festival["source_url"])]
    assert open_air.start == dt.date(2027, 6, 1) and open_air.end == dt.date(2027, 6, 4)  # DTEND is exclusive
    assert "TZID" not in open_air["DTSTART"].params

    _, jazz = entries[event_uid(brunch["source_url"])]
    assert jazz["DTSTART"].params["TZID"] == "America/New_York"
    assert jazz.start == dt.datetime(2027, 3, 14, 11, 0, tzinfo=ZoneInfo("America/New_York"))
    assert str(jazz["LOCATION"]) == "Blue Note, New York, US"

    # The stored answer points at the entry the server reports, and nothing stored holds the password.
    ids = {r.source_url: r.event_id for r in report.results if r.outcome is Outcome.SUCCESS}
    rows = submission_rows(sqlite_database)
    stored = {row[0]: AttemptRecord.from_json(row[4]).answer for row in rows if row[1] == "success"}
    stored = {url: stored[event_id] for url, event_id in ids.items()}
    assert stored[club_night["source_url"]]["href"] == href
    assert stored[club_night["source_url"]]["created"] is True
    assert stored[club_night["source_url"]]["etag"]
    assert PASSWORD not in repr(submission_rows(sqlite_database))


def test_no_authentication_and_zones_always_at_utc_keep_their_tzid(tmp_path, sqlite_database, monkeypatch):
    harpa_time = {"start": "21:00", "end": "23:30", "timezone": "Atlantic/Reykjavik"}
    reykjavik = event_data(title="Harpa night", time=harpa_time)
    # No timezone given: resolved from the city, another zone icalendar holds equivalent to UTC.
    ivory_coast = {"city": "Abidjan", "country": "CI"}
    abidjan = event_data(title="Abidjan live", time={"start": "20:00"}, location=ivory_coast)
    add_events(sqlite_database, reykjavik, abidjan)
    with RadicaleServer(tmp_path / "open-radicale", auth=False) as server:
        url = server.new_calendar()
        monkeypatch.setenv("CALDAV_URL", url)
        submitter = CalDavSubmitter()
        assert submitter.missing_settings() == []

        report = submitter.submit_events(sqlite_database, "unsubmitted")

        assert report.counts["submitted"] == 2, report.results
        assert all(r.http_status == 201 for r in report.results)
        entries = read_back(url, auth=False)
    _, harpa = entries[event_uid(reykjavik["source_url"])]
    assert harpa["DTSTART"].params["TZID"] == "Atlantic/Reykjavik"
    assert harpa.start == dt.datetime(2027, 3, 14, 21, 0, tzinfo=ZoneInfo("Atlantic/Reykjavik"))
    assert harpa.end == dt.datetime(2027, 3, 14, 23, 30, tzinfo=ZoneInfo("Atlantic/Reykjavik"))
    _, live = entries[event_uid(abidjan["source_url"])]
    assert live["DTSTART"].params["TZID"] == "Africa/Abidjan"
    assert live.start == dt.datetime(2027, 3, 14, 20, 0, tzinfo=ZoneInfo("Africa/Abidjan"))


def test_a_changed_event_updates_its_one_entry_in_place(calendar_url, database):
    original = event_data(title="Club night")
    [event_id] = add_events(database, original)
    assert CalDavSubmitter().submit_events(database, "unsubmitted").counts["submitted"] == 1
    [(uid, (href, _))] = read_back(calendar_url).items()

    changed = {**original, "title": "Club night (moved)", "time": {**original["time"], "end": "06:00"}}
    add_events(database, changed)
    report = CalDavSubmitter().submit_events(database, "changed")

    assert report.selected == 1 and report.counts["submitted"] == 1
    entries = read_back(calendar_url)
    assert list(entries) == [uid]
    updated_href, updated = entries[uid]
    assert updated_href == href
    assert str(updated["SUMMARY"]) == "Club night (moved)"
    assert updated.end == dt.datetime(2027, 3, 15, 6, 0, tzinfo=BERLIN)
    rows = [r for r in submission_rows(database) if r[0] == event_id]
    assert [r[1] for r in rows] == ["success", "success"]
    answer = AttemptRecord.from_json(rows[-1][4]).answer
    assert answer["status"] == rows[-1][2] == 204 and answer["created"] is False
    assert CalDavSubmitter().submit_events(database, "changed").selected == 0
    assert CalDavSubmitter().submit_events(database, "unsubmitted").selected == 0


def test_wrong_password_fails_each_event_with_the_status_and_no_secret(calendar_url, sqlite_database, monkeypatch):
    wrong = "not-the-password-31d5"
    monkeypatch.setenv("CALDAV_PASSWORD", wrong)
    add_events(sqlite_database, event_data())
    submitter = CalDavSubmitter()

    [result] = submitter.submit_events(sqlite_database, "unsubmitted").results

    assert result.outcome is Outcome.FAILED and result.http_status == 401
    assert result.error == (
        "HTTP 401 from caldav: Access to the requested resource forbidden. (check CALDAV_USERNAME and CALDAV_PASSWORD)"
    )
    shown = repr(submission_rows(sqlite_database)) + repr(submitter.settings) + repr(submitter.create_client())
    assert wrong not in shown and PASSWORD not in shown
    assert read_back(calendar_url) == {}


def test_a_url_that_is_no_calendar_is_named_as_the_likely_cause(radicale, sqlite_database, monkeypatch):
    monkeypatch.setenv("CALDAV_URL", f"{radicale.url}/{USERNAME}/no-such-calendar/")
    monkeypatch.setenv("CALDAV_USERNAME", USERNAME)
    monkeypatch.setenv("CALDAV_PASSWORD", PASSWORD)
    add_events(sqlite_database, event_data())

    [result] = CalDavSubmitter().submit_events(sqlite_database, "unsubmitted").results

    assert result.outcome is Outcome.FAILED and result.http_status == 409
    assert result.error.endswith("(is CALDAV_URL an existing calendar collection?)")


def test_missing_settings_stop_the_run_before_anything_is_sent(sqlite_database, monkeypatch):
    add_events(sqlite_database, event_data())
    submitter = CalDavSubmitter()
    # A server without authentication needs the URL alone; a user name and password go together.
    assert submitter.missing_settings() == ["CALDAV_URL"]
    with pytest.raises(ConfigurationError, match="CALDAV_URL not set"):
        submitter.submit_events(sqlite_database, "unsubmitted")
    monkeypatch.setenv("CALDAV_USERNAME", USERNAME)
    assert CalDavSubmitter().missing_settings() == ["CALDAV_URL", "CALDAV_PASSWORD"]
    monkeypatch.delenv("CALDAV_USERNAME")
    monkeypatch.setenv("CALDAV_PASSWORD", PASSWORD)
    with pytest.raises(ConfigurationError, match="CALDAV_URL, CALDAV_USERNAME not set"):
        CalDavSubmitter().submit_events(sqlite_database, "unsubmitted")
    monkeypatch.delenv("CALDAV_PASSWORD")
    assert submission_rows(sqlite_database) == []

    monkeypatch.setenv("CALDAV_URL", "ftp://dav.example.org/cal/")
    with pytest.raises(ConfigurationError, match="^invalid setting: CALDAV_URL: must be an absolute http"):
        CalDavSubmitter()
    monkeypatch.setenv("CALDAV_URL", f"https://{USERNAME}:{PASSWORD}@dav.example.org/cal/")
    with pytest.raises(ConfigurationError, match="CALDAV_URL: must not contain a password") as info:
        CalDavSubmitter()
    assert PASSWORD not in str(info.value)


def test_without_icalendar_the_integration_loads_and_says_what_it_needs(sqlite_database, monkeypatch):
    monkeypatch.setitem(sys.modules, "icalendar", None)  # what `import icalendar` sees when it is not installed
    add_events(sqlite_database, event_data())
    submitter = CalDavSubmitter()
    assert submitter.missing_settings()[-1] == INSTALL_HINT
    with sqlite_database.session() as session:
        events = list(submitter.select(session, "all"))
    with pytest.raises(ConfigurationError, match="needs the icalendar library"):
        submitter.transform(events)


def test_discovered_and_not_shadowing_the_caldav_library():
    integration = discover().get("caldav")
    assert integration.submitter_class is CalDavSubmitter
    assert integration.description.startswith("CalDAV: ")
    # The test module's `import caldav` is the PyPI library, not the integration package.
    assert caldav.__name__ == "caldav" and hasattr(caldav, "DAVClient")


# -- the transformer alone ---------------------------------------------------------------------------


def span(**overrides):
    return event_span(EventData.model_validate(event_data(**overrides)))


@pytest.mark.parametrize(
    ("overrides", "start", "end"),
    [
        ({"time": None}, dt.date(2027, 3, 14), dt.date(2027, 3, 15)),
        ({"time": None, "end_date": "2027-03-16"}, dt.date(2027, 3, 14), dt.date(2027, 3, 17)),
        (
            {"time": {"start": "20:00", "end": "23:30", "timezone": "Europe/Berlin"}},
            dt.datetime(2027, 3, 14, 20, 0, tzinfo=BERLIN),
            dt.datetime(2027, 3, 14, 23, 30, tzinfo=BERLIN),
        ),
        (
            # The end date already says "next day": no second day is added.
            {"end_date": "2027-03-15"},
            dt.datetime(2027, 3, 14, 22, 0, tzinfo=BERLIN),
            dt.datetime(2027, 3, 15, 4, 0, tzinfo=BERLIN),
        ),
        (
            {"time": {"start": "22:00", "timezone": "Europe/Berlin"}},
            dt.datetime(2027, 3, 14, 22, 0, tzinfo=BERLIN),
            None,
        ),
        (
            # Nowhere to take a zone from: floating local time.
            {"time": {"start": "22:00", "end": "02:00"}, "location": None},
            dt.datetime(2027, 3, 14, 22, 0),
            dt.datetime(2027, 3, 15, 2, 0),
        ),
    ],
    ids=["all-day", "all-day-multi", "same-evening", "end-date-given", "no-end", "floating"],
)
def test_event_span(overrides, start, end):
    got_start, got_end = span(**overrides)
    assert (got_start, got_end) == (start, end)
    assert getattr(got_start, "tzinfo", None) == getattr(start, "tzinfo", None)


def test_an_event_without_a_date_cannot_be_an_entry():
    with pytest.raises(TransformError, match="^no date: "):
        CalDavTransformer().transform(event_data(date=None))


@pytest.mark.parametrize(
    ("age", "line"), [("21", "Minimum age: 21+"), (21, "Minimum age: 21+"), ("family", "All Ages")]
)
def test_the_minimum_age_is_shown_as_text(age, line):
    ics = CalDavTransformer().transform(event_data(minimum_age=age))["ics"]
    description = icalendar.Calendar.from_ical(ics).walk("VEVENT")[0]["DESCRIPTION"]
    assert line in description.splitlines()


def test_plain_text_and_location():
    assert plain_text("<p>Doors &amp; bar</p><p>open</p>late<br>") == "Doors & bar\n\nopen\nlate"
    assert plain_text("1 < 2 & 3 > 2") == "1 < 2 & 3 > 2"
    place = {"address": "Prager Str. 1, 01069 Dresden", "city": "Dresden", "country": "DE"}
    event = EventData.model_validate(event_data(venue="Club", location=place))
    assert place_line(event.location, venue=event.venue) == "Club, Prager Str. 1, 01069 Dresden, DE"


def test_a_redirect_names_where_the_calendar_moved():
    client = CalDavClient(
        service_name="caldav", url="https://dav.example.org/cal/", username=USERNAME, password=SecretStr(PASSWORD)
    )
    moved = "https://p42-caldav.example.org/cal/"
    request = httpx.Request("PUT", client.resource_url("x@event-importer"))
    with pytest.raises(RejectedSubmissionError) as info:
        client._parse(httpx.Response(301, headers={"location": moved}, request=request))
    assert info.value.status == 301
    assert str(info.value).endswith(f"(redirected to {moved}: set CALDAV_URL to the calendar's final URL)")
    assert client.resource_url("x@event-importer") == "https://dav.example.org/cal/x%40event-importer.ics"


def test_cli_submit_then_changed_updates_the_one_entry(calendar_url, tmp_path, monkeypatch):
    """`event-importer caldav submit` end to end through Dagster, then `--selector changed` after an
    edit: still exactly one calendar entry, now with the new title."""
    import json

    from click.testing import CliRunner

    from event_importer.cli.main import build_cli

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    runner = CliRunner()
    source = tmp_path / "events.jsonl"
    original = event_data(title="Club night")
    source.write_text(json.dumps(original) + "\n")
    assert runner.invoke(build_cli(), ["events", "load", str(source)]).exit_code == 0

    first = runner.invoke(build_cli(), ["caldav", "submit", "--json"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    [(uid, _)] = read_back(calendar_url).items()

    source.write_text(json.dumps({**original, "title": "Club night (sold out)"}) + "\n")
    assert runner.invoke(build_cli(), ["events", "load", str(source)]).exit_code == 0
    second = runner.invoke(build_cli(), ["caldav", "submit", "--selector", "changed", "--json"])
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["counts"]["submitted"] == 1

    entries = read_back(calendar_url)
    assert list(entries) == [uid]
    assert str(entries[uid][1]["SUMMARY"]) == "Club night (sold out)"
