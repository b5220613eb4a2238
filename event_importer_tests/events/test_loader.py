"""Loading events: every input shape, upsert counts, and bad records reported with their location
and reason while the good ones around them still load."""

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from event_importer.cli.main import cli
from event_importer.db.engine import get_database
from event_importer.db.models import EventCache
from event_importer.events.loader import load_files, sample_text
from event_importer.events.model import EventData
from event_importer.settings import get_settings
from event_importer_tests.factories import event_data


def count(database) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(EventCache))


def test_object_array_and_json_lines(tmp_path, database):
    one, two, three, four = (event_data() for _ in range(4))
    (tmp_path / "one.json").write_text(json.dumps(one))
    (tmp_path / "many.json").write_text(json.dumps([two, three]))
    (tmp_path / "lines.jsonl").write_text(json.dumps(four) + "\n\n" + json.dumps({**two, "title": "Changed"}) + "\n")
    report = load_files(database, [tmp_path / "one.json", tmp_path / "many.json", tmp_path / "lines.jsonl"])
    # `two` given twice in one load: one new event, holding the later record, and a duplicate reported.
    none_removed = {"restored": 0, "removed": 0}
    assert report.counts == {"new": 4, "updated": 0, "unchanged": 0, "invalid": 0, "duplicates": 1} | none_removed
    assert [i.location for i in report.duplicates] == [f"{tmp_path / 'lines.jsonl'}:3"]
    again = load_files(database, [tmp_path / "one.json"])
    assert again.counts == {"new": 0, "updated": 0, "unchanged": 1, "invalid": 0, "duplicates": 0} | none_removed
    assert count(database) == 4


def test_bad_records_are_reported_with_location_and_reason_and_the_rest_load(tmp_path, database):
    good = [event_data() for _ in range(3)]
    lines = [
        json.dumps(good[0]),
        '{"title": "broken", ',
        json.dumps({**event_data(), "date": "2027-02-30"}),
        json.dumps({"title": "no url"}),
        json.dumps(good[1]),
        json.dumps([1, 2]),
        json.dumps({**event_data(), "ticket_url": "javascript:alert(1)"}),
        json.dumps(good[2]),
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines))
    report = load_files(database, [path])
    assert (report.new, len(report.invalid)) == (3, 5)
    by_line = {i.location: i.reason for i in report.invalid}
    assert "not valid JSON" in by_line[f"{path}:2"]
    assert by_line[f"{path}:3"].startswith("date:")
    assert "source_url" in by_line[f"{path}:4"]
    assert "JSON object" in by_line[f"{path}:6"]
    assert by_line[f"{path}:7"].startswith("ticket_url:")
    assert count(database) == 3


def test_array_index_is_the_location_in_json_arrays(tmp_path, database):
    path = tmp_path / "arr.json"
    path.write_text(json.dumps([event_data(), {"source_url": "not a url"}, event_data()]))
    report = load_files(database, [path])
    assert report.new == 2
    assert [i.location for i in report.invalid] == [f"{path}[1]"]


@pytest.mark.parametrize(
    "text",
    ["", "[1, 2", '{"a": '],
)
def test_unparseable_files_are_reported_not_raised(tmp_path, database, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    report = load_files(database, [path])
    assert report.new == 0 and report.invalid


def test_events_in_the_event_importers_shapes_load_and_one_without_a_title_is_reported(tmp_path, database):
    shaped = [
        event_data(minimum_age="21+", time={"start": "9pm", "end": "2:30 AM", "timezone": "America/New_York"}),
        event_data(minimum_age="All Ages", time={"start": "21:00:00"}, image_search={"query": "poster"}),
        event_data(minimum_age=21, time={"start": "9:30 PM"}),
    ]
    untitled = {k: v for k, v in event_data().items() if k != "title"}
    path = tmp_path / "importer.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in [shaped[0], untitled, shaped[1], shaped[2]]))

    report = load_files(database, [path])

    assert [str(i) for i in report.invalid] == [f"{path}:2: title: Field required"]
    assert report.new == 3
    with database.session() as session:
        data = {row.source_url: row.data for row in session.scalars(select(EventCache))}
    assert [data[e["source_url"]]["minimum_age"] for e in shaped] == ["21+", "All Ages", "21+"]
    assert [data[e["source_url"]]["time"]["start"] for e in shaped] == ["21:00", "21:00", "21:30"]
    assert data[shaped[0]["source_url"]]["time"]["end"] == "02:30"


def test_hostile_content_is_stored_verbatim(database, tmp_path):
    hostile = event_data(
        title="<script>alert('x')</script> & \"quotes\" — ñ 日本 🎉",
        long_description="x" * 90_000,
    )
    path = tmp_path / "h.json"
    path.write_text(json.dumps(hostile, ensure_ascii=False))
    assert load_files(database, [path]).new == 1
    with database.session() as session:
        row = session.scalars(select(EventCache)).one()
    assert row.data["title"] == hostile["title"]
    too_big = event_data(long_description="x" * 200_000)
    path.write_text(json.dumps(too_big))
    assert load_files(database, [path]).invalid[0].reason.startswith("long_description:")


def test_bundled_samples_are_valid_and_varied():
    samples = json.loads(sample_text())
    events = [EventData.model_validate(s) for s in samples]
    assert len(events) >= 30
    assert len({e.source_url for e in events}) == len(events)
    assert len({e.location.country for e in events if e.location}) >= 5


def test_cli_load_exit_codes_and_report(tmp_path):
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    good.write_text(json.dumps(event_data()) + "\n")
    bad.write_text(json.dumps(event_data()) + "\nnot json\n")
    runner = CliRunner()
    ok = runner.invoke(cli, ["events", "load", str(good)])
    assert ok.exit_code == 0, ok.output
    assert "1 new, 0 updated, 0 unchanged, 0 invalid" in ok.output
    mixed = runner.invoke(cli, ["events", "load", "--json", str(bad)])
    assert mixed.exit_code == 1
    body = json.loads(mixed.stdout)
    assert body["new"] == 1 and body["invalid"] == 1
    assert body["errors"][0]["location"] == f"{bad}:2"
    samples = runner.invoke(cli, ["events", "load", "--sample"])
    assert samples.exit_code == 0, samples.output
    listed = runner.invoke(cli, ["events", "list", "--json"])
    assert len(json.loads(listed.stdout)) == count(get_database(get_settings().resolved_database_url))
