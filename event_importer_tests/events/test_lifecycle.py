"""An event's status and its removal from the source: schema.org's forms read as `status`, a status
change changing the content hash, `events load --mirror` and `events remove` through the CLI on a
real database (nothing deleted, a returning event restored), and an older database gaining the new
columns at start."""

import json

import pytest
from click.testing import CliRunner
from pydantic import ValidationError
from sqlalchemy import create_engine, inspect, select, text

from event_importer.cli.main import build_cli
from event_importer.db.engine import Database, get_database
from event_importer.db.models import EventCache
from event_importer.events.loader import data_hash, load_events
from event_importer.events.model import EventData
from event_importer.settings import get_settings
from event_importer_tests.factories import event_data


@pytest.mark.parametrize(
    ("given", "status"),
    [
        ("https://schema.org/EventCancelled", "cancelled"),
        ("http://schema.org/EventPostponed", "postponed"),
        ("schema:EventRescheduled", "rescheduled"),
        ("EventMovedOnline", "moved_online"),
        ("moved online", "moved_online"),
        ("Canceled", "cancelled"),
        ("https://schema.org/EventScheduled", "scheduled"),
        ("", "scheduled"),
        (None, "scheduled"),
    ],
)
def test_schema_org_status_forms_are_read(given, status):
    given_event = {"source_url": "https://a.example/1", "title": "A", "status": given}
    assert EventData.model_validate(given_event).status == status


def test_an_unknown_status_is_an_error_naming_the_field_and_the_choices():
    with pytest.raises(ValidationError) as caught:
        EventData.model_validate(
            {"source_url": "https://a.example/1", "title": "A", "status": "EventSoldOut" + "x" * 500}
        )
    [error] = caught.value.errors()
    assert error["loc"] == ("status",)
    assert "unknown event status 'EventSoldOut" in error["msg"] and "cancelled" in error["msg"]
    assert len(error["msg"]) < 250


def test_previous_start_keeps_a_date_or_a_date_and_time():
    base = {"source_url": "https://a.example/1", "title": "A", "status": "rescheduled"}
    assert EventData.model_validate({**base, "previous_start": "2027-03-14"}).to_json()["previous_start"] == (
        "2027-03-14"
    )
    timed = EventData.model_validate({**base, "previous_start": "2027-03-14T21:00"}).to_json()
    assert timed["previous_start"] == "2027-03-14T21:00:00"


def test_the_hash_covers_the_status_and_the_default_leaves_older_hashes_alone():
    plain = EventData.model_validate({"source_url": "https://a.example/1", "title": "A"}).to_json()
    scheduled = EventData.model_validate({"source_url": "https://a.example/1", "title": "A", "status": "scheduled"})
    cancelled = EventData.model_validate({"source_url": "https://a.example/1", "title": "A", "status": "cancelled"})
    assert "status" not in scheduled.to_json() and data_hash(scheduled.to_json()) == data_hash(plain)
    assert data_hash(cancelled.to_json()) != data_hash(plain)


def cli(*args: str):
    return CliRunner().invoke(build_cli(), list(args), catch_exceptions=False)


def write_jsonl(path, events):
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return str(path)


def cached(source_url: str) -> EventCache:
    with get_database(get_settings().resolved_database_url).session() as session:
        row = session.scalars(select(EventCache).where(EventCache.source_url == source_url)).one()
        session.expunge(row)
        return row


def test_a_mirror_load_removes_what_its_source_no_longer_lists_and_a_return_restores_it(tmp_path):
    a, b, c = (event_data(source_url=f"https://club.example/e/{n}") for n in (1, 2, 3))
    other = event_data(source_url="https://elsewhere.example/e/1")
    assert cli("events", "load", write_jsonl(tmp_path / "other.jsonl", [other])).exit_code == 0
    first = cli("events", "load", "--mirror", write_jsonl(tmp_path / "all.jsonl", [a, b, c]))
    assert first.exit_code == 0 and "3 new" in first.stdout and "0 removed (source club.example)" in first.stdout

    second = cli("events", "load", "--mirror", write_jsonl(tmp_path / "less.jsonl", [a]), "--json")

    assert second.exit_code == 0, second.output
    report = json.loads(second.stdout)
    assert (report["unchanged"], report["removed"], report["source"]) == (1, 2, "club.example")
    assert cached(b["source_url"]).removed_at is not None and cached(c["source_url"]).removed_at is not None
    assert cached(a["source_url"]).removed_at is None
    assert cached(other["source_url"]).removed_at is None  # another source: untouched
    listed = {e["source_url"]: e for e in json.loads(cli("events", "list", "--json").stdout)}
    assert len(listed) == 4 and listed[b["source_url"]]["removed_at"]  # nothing deleted

    back = cli("events", "load", write_jsonl(tmp_path / "back.jsonl", [b]))
    assert back.exit_code == 0 and "1 restored" in back.stdout
    assert cached(b["source_url"]).removed_at is None and cached(c["source_url"]).removed_at is not None


def test_a_named_source_covers_only_what_its_mirror_loads_saw(tmp_path):
    a, b = event_data(source_url="https://one.example/a"), event_data(source_url="https://two.example/b")
    plain = event_data(source_url="https://one.example/plain")
    cli("events", "load", write_jsonl(tmp_path / "plain.jsonl", [plain]))
    first = cli("events", "load", "--mirror", "--source", "feed", write_jsonl(tmp_path / "1.jsonl", [a, b]))
    assert first.exit_code == 0

    result = cli("events", "load", "--mirror", "--source", "feed", write_jsonl(tmp_path / "2.jsonl", [b]))

    assert "1 removed (source feed)" in result.stdout
    assert cached(a["source_url"]).removed_at is not None
    assert cached(plain["source_url"]).removed_at is None


def test_a_mirror_without_a_source_needs_one_host(tmp_path):
    path = write_jsonl(tmp_path / "mixed.jsonl", [event_data(source_url="https://x.example/1"),
                                                  event_data(source_url="https://y.example/1")])
    result = cli("events", "load", "--mirror", path)
    assert result.exit_code == 2
    assert "events from 2 hosts (x.example, y.example)" in result.stderr and "--source NAME" in result.stderr
    assert cli("events", "list", "--json").stdout.strip() == "[]"  # nothing loaded


def test_a_file_with_an_unreadable_record_removes_nothing(tmp_path):
    a, b = event_data(source_url="https://club.example/a"), event_data(source_url="https://club.example/b")
    cli("events", "load", "--mirror", write_jsonl(tmp_path / "all.jsonl", [a, b]))
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(a) + "\n{not json\n")
    # An invalid record that still names its event keeps that event in the source.
    invalid_b = {**b, "date": "someday"}

    result = cli("events", "load", "--mirror", str(broken))
    kept = cli("events", "load", "--mirror", write_jsonl(tmp_path / "invalid.jsonl", [a, invalid_b]))

    assert result.exit_code == 1 and "0 removed" in result.stdout
    assert "1 records could not be read (first: " in result.stderr and "nothing was removed" in result.stderr
    assert kept.exit_code == 1 and "0 removed" in kept.stdout
    assert cached(b["source_url"]).removed_at is None


def test_events_remove_marks_one_event_and_says_when_it_is_unknown(tmp_path):
    event = event_data(source_url="https://club.example/one")
    cli("events", "load", write_jsonl(tmp_path / "one.jsonl", [event]))

    removed = cli("events", "remove", "https://CLUB.example/one", "--json")
    again = cli("events", "remove", event["source_url"])
    unknown = cli("events", "remove", "https://club.example/none")

    assert removed.exit_code == 0 and json.loads(removed.stdout)["already_removed"] is False
    assert again.exit_code == 0 and "already removed at" in again.stdout
    assert unknown.exit_code == 1 and "no cached event has the source URL" in unknown.stderr
    assert cached(event["source_url"]).removed_at is not None


def test_an_older_database_gains_the_new_columns_at_start(database_url):
    engine = create_engine(database_url)
    key = "SERIAL PRIMARY KEY" if engine.dialect.name == "postgresql" else "INTEGER PRIMARY KEY"
    with engine.begin() as connection:
        # The two tables as an earlier release created them, with one event and one attempt.
        connection.execute(text(
            f"CREATE TABLE event_cache (id {key}, source_url VARCHAR(2048) UNIQUE NOT NULL, "
            "data JSON NOT NULL, data_hash VARCHAR(64) NOT NULL, imported_at TIMESTAMP, updated_at TIMESTAMP)"
        ))
        connection.execute(text(
            f"CREATE TABLE submissions (id {key}, event_cache_id INTEGER NOT NULL "
            "REFERENCES event_cache(id), service_name VARCHAR(64) NOT NULL, status VARCHAR(16) NOT NULL, "
            "attempt INTEGER NOT NULL, data_hash VARCHAR(64) NOT NULL, run_id VARCHAR(64), claimed_by VARCHAR(255), "
            "created_at TIMESTAMP, finished_at TIMESTAMP, http_status INTEGER, response JSON, error TEXT)"
        ))
        connection.execute(text(
            "INSERT INTO event_cache (source_url, data, data_hash) "
            "VALUES ('https://old.example/1', '{\"source_url\": \"https://old.example/1\"}', 'h')"
        ))
        connection.execute(text(
            "INSERT INTO submissions (event_cache_id, service_name, status, attempt, data_hash) "
            "VALUES (1, 'webhook', 'success', 1, 'h')"
        ))
    engine.dispose()

    database = Database(database_url)
    try:
        columns = {c["name"] for c in inspect(database.engine).get_columns("event_cache")}
        assert {"removed_at", "source"} <= columns
        with database.session() as session:
            assert session.execute(text("SELECT operation FROM submissions")).scalar_one() == "create"
        report = load_events(database, [("new", event_data())])
        assert report.new == 1
        Database(database_url).dispose()  # a second start finds nothing to add
    finally:
        database.dispose()
