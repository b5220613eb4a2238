"""The loader's promise on any input: the valid records around a bad one load all the same, and the
bad one is reported with its position (file and line, or array index).

The array tests also run with a read size of a few bytes, so every string, escape and bracket of
the scanner falls across a read boundary somewhere.
"""

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from event_importer.db.models import EventCache
from event_importer.events import jsonstream, loader
from event_importer.events.loader import LoadReport, load_files
from event_importer_tests.factories import event_data


def stored(database) -> dict[str, dict[str, Any]]:
    with database.session() as session:
        return {row.source_url: row.data for row in session.scalars(select(EventCache))}


def dumps(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode()


def load(database, path: Path, content: bytes) -> LoadReport:
    path.write_bytes(content)
    return load_files(database, [path])


def reasons(report: LoadReport) -> dict[str, str]:
    return {issue.location: issue.reason for issue in report.invalid}


@pytest.fixture(params=[jsonstream.READ_SIZE, 7], ids=["read-1MiB", "read-7B"])
def read_size(request, monkeypatch):
    monkeypatch.setattr(jsonstream, "READ_SIZE", request.param)


# -- invalid UTF-8 -------------------------------------------------------------------------------------


def test_invalid_utf8_on_a_line_is_reported_with_line_and_column(sqlite_database, tmp_path):
    good = [event_data(title="Café"), event_data(), event_data()]
    path = tmp_path / "latin1.jsonl"
    bad = dumps(event_data(title="caf")).replace(b'"caf"', b'"caf\xe9"')
    report = load(sqlite_database, path, b"\n".join([dumps(good[0]), bad, dumps(good[1]), dumps(good[2])]))

    assert reasons(report) == {f"{path}:2": "not UTF-8 text: byte 0xe9 at column 15"}
    assert report.new == 3
    assert stored(sqlite_database)[good[0]["source_url"]]["title"] == "Café"


def test_invalid_utf8_in_an_array_element_is_reported_with_index_and_line(sqlite_database, tmp_path, read_size):
    good = [event_data(), event_data()]
    bad = dumps(event_data(venue="caf")).replace(b'"caf"', b'"caf\xe9"')
    path = tmp_path / "latin1.json"
    report = load(sqlite_database, path, b"[\n" + dumps(good[0]) + b",\n" + bad + b",\n" + dumps(good[1]) + b"\n]\n")

    [(location, reason)] = reasons(report).items()
    assert location == f"{path}[1]"
    assert reason.startswith("not UTF-8 text: byte 0xe9 at line 3, column ")
    assert report.new == 2


def test_invalid_utf8_in_one_event_over_several_lines_is_reported_once_with_its_line(sqlite_database, tmp_path):
    event = event_data(venue="caf")
    path = tmp_path / "one.json"
    report = load(sqlite_database, path, json.dumps(event, indent=2).encode().replace(b'"caf"', b'"caf\xe9"'))
    assert reasons(report) == {str(path): "not UTF-8 text: byte 0xe9 at line 3, column 16"}


# -- a JSON Lines file whose first line is an array ----------------------------------------------------


def test_an_array_on_the_first_line_of_json_lines_is_one_bad_line(sqlite_database, tmp_path):
    first_line = [event_data(), event_data()]
    good = [event_data(), event_data()]
    path = tmp_path / "lines.jsonl"
    report = load(sqlite_database, path, b"\n".join([dumps(first_line), dumps(good[0]), dumps(good[1])]) + b"\n")  # type: ignore[arg-type]

    assert reasons(report) == {f"{path}:1": "an event must be a JSON object, got list"}
    assert set(stored(sqlite_database)) == {e["source_url"] for e in good}


def test_a_one_line_array_is_still_an_array(sqlite_database, tmp_path):
    events = [event_data(), event_data()]
    report = load(sqlite_database, tmp_path / "one-line.json", dumps(events) + b"\n")  # type: ignore[arg-type]
    assert (report.new, report.invalid) == (2, [])


# -- one bad element in a JSON array -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b'{"title": "x",}', "not valid JSON: Expecting property name enclosed in double quotes (line 3, column 15)"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON: nested too deeply to be an event"),
        (b'{"title": "a \\"quoted\\" ] } , [ {"}}', "not valid JSON: Extra data (line 3, column 36)"),
        (b"", "not valid JSON: an empty element (line 3, column 1)"),
    ],
    ids=["trailing-comma-inside", "too-deep", "brackets-in-strings-and-a-stray-brace", "empty"],
)
def test_one_bad_element_is_isolated(sqlite_database, tmp_path, read_size, bad, reason):
    good = [event_data(), event_data(long_description='Brackets ] } [ { and "quotes" \\ in text'), event_data()]
    path = tmp_path / "array.json"
    content = b"[\n" + dumps(good[0]) + b",\n" + bad + b",\n" + dumps(good[1]) + b", " + dumps(good[2]) + b"\n]"
    report = load(sqlite_database, path, content)

    assert reasons(report) == {f"{path}[1]": reason}
    assert report.new == 3
    assert stored(sqlite_database)[good[1]["source_url"]]["long_description"] == good[1]["long_description"]


def test_a_trailing_comma_after_the_last_element_loses_nothing(sqlite_database, tmp_path, read_size):
    good = [event_data(), event_data()]
    path = tmp_path / "array.json"
    report = load(sqlite_database, path, b"[\n  " + dumps(good[0]) + b",\n  " + dumps(good[1]) + b",\n]\n")
    assert reasons(report) == {f"{path}[2]": "not valid JSON: a comma after the last element (line 4, column 1)"}
    assert report.new == 2


def test_an_element_that_never_closes_says_why_nothing_after_it_loaded(sqlite_database, tmp_path, read_size):
    good = [event_data(), event_data()]
    path = tmp_path / "array.json"
    content = b"[\n" + dumps(good[0]) + b',\n{"title": "unterminated},\n' + dumps(good[1]) + b"\n]\n"
    report = load(sqlite_database, path, content)

    assert reasons(report) == {
        f"{path}[1]": "not valid JSON: the element starting at line 3, column 1 has a string or bracket that is never "
        "closed, so the array's remaining elements cannot be told apart; nothing after it was read"
    }
    assert set(stored(sqlite_database)) == {good[0]["source_url"]}


def test_data_after_the_array_is_reported_and_the_array_loads(sqlite_database, tmp_path):
    path = tmp_path / "array.json"
    report = load(sqlite_database, path, b"[\n" + dumps(event_data()) + b"\n]\n]")
    assert reasons(report) == {
        str(path): "not valid JSON: more data after the array's closing ] (line 4, column 1); not read"
    }
    assert report.new == 1


def test_a_record_too_large_to_be_an_event_is_skipped_unread(sqlite_database, tmp_path, monkeypatch, read_size):
    monkeypatch.setattr(jsonstream, "MAX_RECORD_BYTES", 2_000)
    huge = event_data(long_description="x" * 5_000)
    good = [event_data(), event_data()]
    lines, array = tmp_path / "big.jsonl", tmp_path / "big.json"
    load(sqlite_database, lines, b"\n".join([dumps(good[0]), dumps(huge), dumps(good[1])]))
    report = load(sqlite_database, array, b"[" + b",".join([dumps(good[0]), dumps(huge), dumps(good[1])]) + b"]")

    assert [str(i) for i in report.invalid] == [f"{array}[1]: {jsonstream.TOO_LARGE}"]
    assert set(stored(sqlite_database)) == {e["source_url"] for e in good}


# -- duplicate source_urls -----------------------------------------------------------------------------


def test_duplicates_within_a_load_are_reported_and_counted_once(database, tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "CHUNK_SIZE", 2)  # the repeats fall in the first record's chunk and in later ones
    first = event_data(source_url="https://dup.example/a")
    slash = event_data(source_url="https://dup.example/a/")
    path = tmp_path / "dups.jsonl"
    records = [
        first,
        event_data(),
        {**first, "source_url": "HTTPS://Dup.EXAMPLE/a", "title": "Later"},
        slash,
        event_data(),
        {**first, "title": "Latest"},
    ]
    report = load(database, path, b"\n".join(dumps(r) for r in records))

    none_removed = {"restored": 0, "removed": 0}
    assert report.counts == {"new": 4, "updated": 0, "unchanged": 0, "invalid": 0, "duplicates": 2} | none_removed
    assert [str(d) for d in report.duplicates] == [
        f"{path}:3: the same source_url as {path}:1 ('https://dup.example/a'); this later record is kept",
        f"{path}:6: the same source_url as {path}:1 ('https://dup.example/a'); this later record is kept",
    ]
    cache = stored(database)
    assert cache["https://dup.example/a"]["title"] == "Latest"
    assert "https://dup.example/a/" in cache  # a trailing slash names another page


def test_the_cli_reports_duplicates_without_failing(tmp_path):
    from click.testing import CliRunner

    from event_importer.cli.main import cli

    event = event_data(source_url="https://Case.example/x")
    path = tmp_path / "dups.jsonl"
    path.write_text(json.dumps(event) + "\n" + json.dumps({**event, "source_url": "https://case.example/x"}) + "\n")
    done = CliRunner().invoke(cli, ["events", "load", str(path)])
    assert done.exit_code == 0, done.output
    assert "1 new, 0 updated, 0 unchanged, 0 invalid, 1 duplicates" in done.stdout
    assert f"duplicate: {path}:2: the same source_url as {path}:1" in done.stderr


def test_the_url_selector_finds_an_event_by_its_url_in_any_case(sqlite_database):
    from event_importer.framework.selectors import UrlSelector
    from event_importer_tests.factories import add_events

    [event_id] = add_events(sqlite_database, event_data(source_url="https://where.example/Night"))
    statement = UrlSelector().statement("plain", url="HTTPS://WHERE.example/Night ")
    with sqlite_database.session() as session:
        assert [e.id for e in session.scalars(statement)] == [event_id]


# -- timezones and long values -------------------------------------------------------------------------


def test_only_real_zone_names_are_timezones_and_long_values_are_not_echoed(sqlite_database, tmp_path):
    accepted = ["UTC", "Etc/UTC", "Europe/Berlin", "America/Argentina/Ushuaia", "US/Eastern"]
    refused = ["localtime", "posixrules", "Factory", "right/UTC", "posix/Europe/Berlin", "Europe/Nowhere"]
    refused.append("x" * 100_000)
    records = [event_data(time={"start": "21:00", "timezone": zone}) for zone in [*accepted, *refused]]
    path = tmp_path / "zones.jsonl"
    report = load(sqlite_database, path, b"\n".join(dumps(r) for r in records))

    assert report.new == len(accepted)
    found = reasons(report)
    assert sorted(found) == sorted(f"{path}:{n}" for n in range(len(accepted) + 1, len(records) + 1))
    assert found[f"{path}:{len(accepted) + 1}"] == (
        "time.timezone: 'localtime' is not an IANA timezone name (e.g. 'Europe/Berlin' or 'UTC')"
    )
    assert found[f"{path}:{len(records)}"] == (
        f"time.timezone: {'x' * 40!r}... (100,000 characters) is not an IANA timezone name "
        "(e.g. 'Europe/Berlin' or 'UTC')"
    )
