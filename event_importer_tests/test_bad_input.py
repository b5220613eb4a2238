"""Bad input never crashes a run (issue 4, item 5).

Each bad event becomes either an invalid record reported at load time, with where it is (file and
line) and why, or a failed submission with a clear reason at submit time; the events around it load
and are sent all the same. Hostile but valid content (HTML, scripts, any Unicode) is stored and sent
as it came, escaped where it becomes HTML. Bad settings stop the real `event-importer` command at
start with exit status 2 and a message naming the setting, never a traceback or the value.
"""

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import insert, select

from event_importer.db.models import EventCache, Submission
from event_importer.events.loader import load_events, load_files, parse_records
from event_importer.runs import submit_through_dagster
from event_importer_tests.conftest import TEST_API_KEY, reset_process_state
from event_importer_tests.factories import add_events, event_data
from event_importer_tests.standin import Fault

EVENT_IMPORTER = str(Path(sys.executable).parent / "event-importer")
MEGABYTE = 1_000_000

# Valid, but everything a scraped page can throw at us.
RTL = "حفلة موسيقية في بيروت — מסיבה בתל אביב \u202eevil\u202c"
EMOJI = "🎉🎶 👩‍👩‍👧‍👦 🇩🇪 🏳️‍🌈 🧑🏽‍🎤"
COMBINING = "Z̴̢̛a̶͎l̷̰g̸̣o e\u0301te\u0301 ÅÅ"
ASTRAL = "𝄞 𠀋 東京の夜 \u200bzero\u200dwidth\ufeff"
HTML_DESCRIPTION = "<img src=x onerror=alert(1)><script>steal(document.cookie)</script> & \"quotes\" 'too'"


def stored(database) -> dict[str, dict]:
    with database.session() as session:
        return {row.source_url: row.data for row in session.scalars(select(EventCache))}


# -- load time ---------------------------------------------------------------------------------------

# (line of the file, the reason reported for it); None: the line is a valid event.
BAD_LINES = [
    ('{"title": "broken", ', "not valid JSON: Expecting property name enclosed in double quotes"),
    (json.dumps({"title": "No URL", "date": "2027-03-14"}), "source_url: Field required"),
    (
        json.dumps({**event_data(), "title": 42, "lineup": "DJ One", "minimum_age": -1}),
        "title: Input should be a valid string; lineup: Input should be a valid list; minimum_age: "
        "expected a whole number of years, got -1",
    ),
    (json.dumps({k: v for k, v in event_data().items() if k != "title"}), "title: Field required"),
    (json.dumps({**event_data(), "title": "  "}), "title: String should have at least 1 character"),
    (json.dumps({**event_data(), "title": None}), "title: Input should be a valid string"),
    (json.dumps({**event_data(), "minimum_age": True}), "minimum_age: expected text such as '21+' or 'All Ages'"),
    (json.dumps({**event_data(), "date": "2027-02-30"}), "date: Input should be a valid date"),
    (
        json.dumps({**event_data(), "date": "2027-03-14", "end_date": "2027-03-13"}),
        "(event): end_date 2027-03-13 is before date 2027-03-14",
    ),
    (json.dumps({**event_data(), "time": {"start": "25:00"}}), "time.start: expected a time such as '21:00', "),
    (json.dumps({**event_data(), "time": {"end": "half past nine"}}), "time.end: expected a time such as "),
    (json.dumps({**event_data(), "time": {"start": 75600}}), "time.start: expected a time such as "),
    (json.dumps({**event_data(), "time": {"start": "13pm"}}), "time.start: expected a time such as "),
    (json.dumps({**event_data(), "ticket_url": "javascript:alert(1)"}), "ticket_url: must be an absolute http(s) URL"),
    (json.dumps({**event_data(), "source_url": "/events/7"}), "source_url: must be an absolute http(s) URL"),
    (
        json.dumps({**event_data(), "source_url": "https://events.example.org/a night out"}),
        "source_url: must be an absolute http(s) URL",
    ),
    (
        json.dumps({**event_data(), "images": {"full": "data:image/png;base64,AAAA"}}),
        "images.full: must be an absolute http(s) URL",
    ),
    (
        json.dumps({**event_data(), "long_description": "x" * MEGABYTE}),
        "long_description: String should have at most 100000 characters",
    ),
    (json.dumps({**event_data(), "title": "x" * MEGABYTE}), "title: String should have at most 1000 characters"),
    (
        json.dumps({**event_data(), "location": {"coordinates": {"lat": 200, "lng": 13.4}}}),
        "location.coordinates.lat: Input should be less than or equal to 90",
    ),
    # A lone surrogate, which no UTF-8 text (nor database) can hold.
    (
        '{"source_url": "https://events.example.org/s", "title": "bad \\ud800 half"}',
        "title: Input should be a valid string",
    ),
    (json.dumps([event_data(), event_data()]), "an event must be a JSON object, got list"),
    ('"just a string"', "an event must be a JSON object, got str"),
]


def hostile_events() -> list[dict]:
    """Valid events carrying markup and every kind of Unicode, with the texts at their size limits."""
    return [
        event_data(title="<b>Bold</b> & <i>loud</i> night", long_description=HTML_DESCRIPTION),
        event_data(title=RTL, venue=RTL, lineup=[RTL, EMOJI]),
        event_data(title=EMOJI, short_description=COMBINING, long_description=ASTRAL),
        event_data(title=COMBINING + " " + ASTRAL, cost="€10 / ¥1500 / ₹500"),
        event_data(title="Marathon", long_description=("long line " * 9_999).strip()),  # 99 989 characters
        event_data(title="Ünïcödé URL", source_url="https://例え.jp/イベント/夜?q=ü#frag"),
    ]


def test_every_bad_record_of_a_load_file_is_reported_with_line_and_reason_and_the_rest_load(database, tmp_path):
    hostile = hostile_events()
    # Each bad line sits between valid ones: the hostile events first, then plain ones.
    valid = hostile + [event_data() for _ in range(len(BAD_LINES) + 1 - len(hostile))]
    lines = [json.dumps(valid[0], ensure_ascii=False)]
    for (line, _), after in zip(BAD_LINES, valid[1:], strict=True):
        lines += [line, json.dumps(after, ensure_ascii=False)]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    report = load_files(database, [path])

    reasons = {issue.location: issue.reason for issue in report.invalid}
    expected = {f"{path}:{2 + 2 * n}": reason for n, (_, reason) in enumerate(BAD_LINES)}
    assert sorted(reasons) == sorted(expected)
    for location, reason in expected.items():
        assert reasons[location].startswith(reason), (location, reasons[location])
    # Reasons name the problem, not the data: a megabyte value is not echoed back.
    assert all(len(reason) < 500 for reason in reasons.values())
    assert (report.new, report.updated, report.unchanged) == (len(valid), 0, 0)
    # Hostile content is kept verbatim, on SQLite and in PostgreSQL's JSONB alike.
    cache = stored(database)
    for event in hostile:
        data = cache[event["source_url"]]
        for key in ("title", "venue", "lineup", "long_description", "short_description", "cost"):
            assert data.get(key) == event.get(key), key


def test_the_cli_reports_each_invalid_line_and_loads_the_rest(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(
        "\n".join([json.dumps(event_data()), "{not json", json.dumps({"title": "no url"}), json.dumps(event_data())])
    )
    done = subprocess.run(
        [EVENT_IMPORTER, "events", "load", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"invalid: {path}:2: not valid JSON" in done.stderr
    assert f"invalid: {path}:3: source_url: Field required" in done.stderr
    assert "2 new, 0 updated, 0 unchanged, 2 invalid" in done.stdout


def test_a_nul_character_fails_its_record_not_the_chunk(database, tmp_path):
    """PostgreSQL's JSONB (and text columns) cannot hold U+0000: the record must be reported, the rest loaded.

    SQLite stores it; either way no load may fail as a whole because of one record.
    """
    good = [event_data(), event_data(), event_data()]
    nul_title = event_data(title="Night\u0000Shift")
    nul_lineup = event_data(lineup=["DJ\u0000One"])
    records = [("in[0]", good[0]), ("in[1]", nul_title), ("in[2]", good[1]), ("in[3]", nul_lineup), ("in[4]", good[2])]

    report = load_events(database, records)

    cache = stored(database)
    assert all(event["source_url"] in cache for event in good)
    reasons = {issue.location: issue.reason for issue in report.invalid}
    for location, event in (("in[1]", nul_title), ("in[3]", nul_lineup)):
        if database.dialect == "postgresql" or location in reasons:
            assert re.search(r"NUL|\\u0000|null character", reasons.get(location, "")), reasons
        else:
            assert event["source_url"] in cache


@pytest.mark.parametrize("shape", ["json_lines", "json_array"])
def test_a_deeply_nested_record_is_reported_not_raised(sqlite_database, tmp_path, shape):
    """Past ~1000 levels json.loads raises RecursionError, not JSONDecodeError: one line must not stop the load."""
    deep = "[" * 100_000 + "]" * 100_000
    path = tmp_path / "deep.json"
    if shape == "json_lines":
        path.write_text("\n".join([json.dumps(event_data()), deep, json.dumps(event_data())]))
    else:
        path.write_text(deep)

    report = load_files(sqlite_database, [path])

    assert report.new == (2 if shape == "json_lines" else 0)
    [issue] = report.invalid
    assert issue.location.startswith(str(path)) and "not valid JSON" in issue.reason


@pytest.mark.parametrize("shape", ["json_lines", "json_array"])
def test_a_utf8_byte_order_mark_at_the_start_of_a_file_is_ignored(sqlite_database, tmp_path, shape):
    """Files saved by Windows editors and spreadsheet exports start with U+FEFF; the events in them are fine."""
    events = [event_data(), event_data()]
    text = "\n".join(json.dumps(e) for e in events) if shape == "json_lines" else json.dumps(events, indent=2)
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())

    report = load_files(sqlite_database, [path])

    assert report.invalid == []
    assert report.new == 2


def test_unparseable_text_is_one_reported_record():
    assert [str(r) for r in parse_records("   ", "body")] == ["body: no events: the file is empty"]
    [issue] = list(parse_records('[{"source_url": ', "body"))
    assert str(issue) == (
        "body[0]: not valid JSON: the element starting at line 1, column 2 has a string or bracket that is never "
        "closed, so the array's remaining elements cannot be told apart; nothing after it was read"
    )


# -- submit time -------------------------------------------------------------------------------------


@pytest.fixture
def configured(database, stand_in, tmp_path, monkeypatch):
    """The TicketFairy job on this test's database and Dagster instance, against the stand-in."""
    monkeypatch.setenv("EVENT_IMPORTER_DATABASE_URL", database.url)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setenv("TICKETFAIRY_API_URL", stand_in.url)
    monkeypatch.setenv("TICKETFAIRY_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("TICKETFAIRY_MAX_ATTEMPTS", "1")
    reset_process_state()
    return stand_in


def test_events_that_cannot_be_sent_fail_alone_with_their_reason_and_the_rest_are_sent(database, configured):
    clean = [event_data() for _ in range(12)]
    hostile = hostile_events()
    untransformable = {
        "no date": (event_data(date=None), "date is required by TicketFairy"),
        "no timezone": (
            event_data(time={"start": "20:00"}, location=None),
            "timezone could not be determined: give time.timezone, location.coordinates or a city/country",
        ),
        "past 9999": (
            event_data(date="9999-12-31", time={"start": "22:00", "end": "04:00", "timezone": "Europe/Berlin"}),
            "the event's end falls after the year 9999 (date 9999-12-31)",
        ),
    }
    script_title = event_data(title="<script>alert('x')</script>Night")
    add_events(database, *clean, *hostile, *(e for e, _ in untransformable.values()), script_title)
    # Rows another tool wrote straight into the cache, never validated by the loader.
    corrupt = {
        "https://raw.example.org/typed": (
            {"source_url": "https://raw.example.org/typed", "title": 5, "date": "soon"},
            "invalid event data: title: Input should be a valid string; date: Input should be a valid date",
        ),
        "https://raw.example.org/huge": (
            {**event_data(source_url="https://raw.example.org/huge"), "long_description": "x" * MEGABYTE},
            "invalid event data: long_description: String should have at most 100000 characters",
        ),
        "https://raw.example.org/nourl": ({"title": "No URL"}, "invalid event data: source_url: Field required"),
        # Cached before titles were required.
        "https://raw.example.org/notitle": (
            {**event_data(source_url="https://raw.example.org/notitle", title=None)},
            "invalid event data: title: Input should be a valid string",
        ),
    }
    with database.session() as session:
        for url, (data, _) in corrupt.items():
            session.execute(insert(EventCache).values(source_url=url, data=data, data_hash="0" * 64))
    configured.add_fault(Fault.reject(422, "Title must not contain HTML"), match="<script>alert", times=None)

    summary = submit_through_dagster("ticketfairy", trigger="cli")

    assert summary.success, summary.error
    by_url = {r.source_url: r for r in summary.results}
    assert len(by_url) == len(clean) + len(hostile) + len(untransformable) + 1 + len(corrupt)
    for event, reason in untransformable.values():
        result = by_url[event["source_url"]]
        assert (result.outcome.value, result.error) == ("failed", reason)
    for url, (_, reason) in corrupt.items():
        assert by_url[url].outcome.value == "failed" and by_url[url].error.startswith(reason), by_url[url].error
    rejected = by_url[script_title["source_url"]]
    assert (rejected.outcome.value, rejected.http_status) == ("failed", 422)
    assert rejected.error == "HTTP 422 from ticketfairy: Title must not contain HTML"
    for event in [*clean, *hostile]:
        assert by_url[event["source_url"]].outcome.value == "success", by_url[event["source_url"]]
    # Every outcome is in the ledger, failures with their reason.
    with database.session() as session:
        rows = {row.event_cache_id: row for row in session.scalars(select(Submission))}
    assert len(rows) == len(by_url)
    assert all(row.error for row in rows.values() if row.status == "failed")

    # What reached the destination: titles exactly as they came, every description HTML-escaped.
    sent = {r["body"]["data"]["attributes"]["url"]: r["body"]["data"]["attributes"] for r in configured.accepted}
    assert len(sent) == len(clean) + len(hostile)
    for event in hostile:
        attributes = sent[event["source_url"]]
        assert attributes["title"] == event["title"]
        assert "<script>" not in attributes["details"] and "<img" not in attributes["details"]
    assert "&lt;script&gt;steal(document.cookie)&lt;/script&gt;" in sent[hostile[0]["source_url"]]["details"]
    assert ASTRAL in sent[hostile[2]["source_url"]]["details"]
    assert COMBINING in sent[hostile[2]["source_url"]]["details"]


def test_a_cache_row_whose_data_is_not_an_object_fails_alone(database, configured):
    """A row written by another tool with a JSON list or string as its data must not stop the run."""
    good = [event_data() for _ in range(4)]
    add_events(database, *good)
    with database.session() as session:
        session.execute(insert(EventCache).values(source_url="https://raw.example.org/list", data=["x"], data_hash="1"))
        session.execute(insert(EventCache).values(source_url="https://raw.example.org/text", data="x", data_hash="2"))

    summary = submit_through_dagster("ticketfairy", trigger="cli")

    assert summary.success, summary.error
    outcomes = {r.source_url: (r.outcome.value, r.error or "") for r in summary.results}
    assert all(outcomes[e["source_url"]] == ("success", "") for e in good)
    for url in ("https://raw.example.org/list", "https://raw.example.org/text"):
        assert outcomes[url][0] == "failed" and outcomes[url][1].startswith("invalid event data:"), outcomes[url]


# -- bad settings ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_cli(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TICKETFAIRY_", "DAGSTER_HOME"))}
    return subprocess.run(
        [EVENT_IMPORTER, *args],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "variable", "value", "message"),
    [
        (["ticketfairy", "submit"], "EVENT_IMPORTER_MAX_CONCURRENCY", "0", "Input should be greater than or equal"),
        (["ticketfairy", "submit"], "EVENT_IMPORTER_MAX_CONCURRENCY", "abc", "Input should be a valid integer"),
        (["ticketfairy", "submit"], "TICKETFAIRY_API_URL", "ftp://x", "must be an absolute http(s) URL"),
        (
            ["ticketfairy", "submit"],
            "EVENT_IMPORTER_DATABASE_URL",
            "mysql://admin:hunter2-db-password@db.example.org/events",
            "must be a sqlite:/// or postgresql+psycopg:// URL",
        ),
        (["events", "load", "--sample"], "EVENT_IMPORTER_REQUEST_TIMEOUT", "-1", "Input should be greater than 0"),
        (["api", "--port", "PORT"], "EVENT_IMPORTER_API_MAX_BODY_BYTES", "lots", "Input should be a valid integer"),
    ],
    ids=["concurrency-0", "concurrency-abc", "api-url-ftp", "database-mysql", "timeout-negative", "api-body-limit"],
)
def test_a_bad_setting_stops_the_command_at_start_naming_it(
    tmp_path, isolated_settings, monkeypatch, args, variable, value, message
):
    args = [str(free_port()) if a == "PORT" else a for a in args]
    done = run_cli(args, tmp_path, **{variable: value, "TICKETFAIRY_API_KEY": TEST_API_KEY})
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert f"error: invalid setting: {variable}: {message}" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "hunter2-db-password" not in done.stdout + done.stderr
    assert TEST_API_KEY not in done.stdout + done.stderr
    # Nothing ran: no Dagster run was recorded.
    home = isolated_settings / "dagster"
    if (home / "dagster.yaml").exists():
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        with dg.DagsterInstance.get() as instance:
            assert instance.get_runs_count() == 0


def test_an_unreachable_database_is_a_clear_error_naming_the_setting(tmp_path):
    """A database URL pointing nowhere is a bad setting too: a message, exit 2, no traceback, no password."""
    url = "postgresql+psycopg://reader:s3cret-db-pw@127.0.0.1:1/events"
    for args in (["ticketfairy", "status"], ["events", "load", "--sample"]):
        done = run_cli(args, tmp_path, EVENT_IMPORTER_DATABASE_URL=url)
        output = done.stdout + done.stderr
        assert "Traceback" not in output, (args, output[-2000:])
        assert done.returncode == 2, (args, output[-2000:])
        assert "EVENT_IMPORTER_DATABASE_URL" in done.stderr
        assert "s3cret-db-pw" not in output
