"""`event-importer events import-db` end to end, on SQLite and PostgreSQL: an Event Importer database,
made from its schema as DDL, is imported through the real CLI, and then `ticketfairy submit` runs
against a stand-in server send exactly what the Event Importer never sent (or sent and failed)."""

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url

from event_importer.cli.integration import integration_group
from event_importer.cli.main import cli
from event_importer.db.engine import get_database
from event_importer.db.models import EventCache, Submission
from event_importer.framework.discovery import discover
from event_importer.settings import get_settings
from event_importer_tests.conftest import POSTGRES_ADMIN_URL, TEST_API_KEY, reset_process_state
from event_importer_tests.factories import event_data

# The Event Importer's schema as its description gives it; JSON columns are text on SQLite.
SQLITE_DDL = [
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY, source_url VARCHAR(2048) NOT NULL UNIQUE, scraped_data JSON NOT NULL,
        scraped_at DATETIME, data_hash VARCHAR(64), updated_at DATETIME)""",
    """CREATE TABLE submissions (
        id INTEGER PRIMARY KEY, event_cache_id INTEGER NOT NULL REFERENCES events(id),
        service_name VARCHAR(100) NOT NULL, status VARCHAR(20) NOT NULL, submitted_at DATETIME,
        response_data JSON, error_message TEXT, retry_count INTEGER DEFAULT 0, selection_criteria JSON,
        batch_id VARCHAR(100))""",
]
POSTGRES_DDL = [
    """CREATE TABLE events (
        id SERIAL PRIMARY KEY, source_url VARCHAR(2048) NOT NULL UNIQUE, scraped_data JSON NOT NULL,
        scraped_at TIMESTAMP, data_hash VARCHAR(64), updated_at TIMESTAMP)""",
    """CREATE TABLE submissions (
        id SERIAL PRIMARY KEY, event_cache_id INTEGER NOT NULL REFERENCES events(id),
        service_name VARCHAR(100) NOT NULL, status VARCHAR(20) NOT NULL, submitted_at TIMESTAMP,
        response_data JSONB, error_message TEXT, retry_count INTEGER DEFAULT 0, selection_criteria JSONB,
        batch_id VARCHAR(100))""",
]
TF = "ticketfairy"


@dataclass
class Source:
    url: str
    engine: Engine
    dialect: str

    def add_event(self, data: dict[str, Any] | str, source_url: str | None = None) -> int:
        scraped = data if isinstance(data, str) else json.dumps(data)
        url = source_url or (data["source_url"] if isinstance(data, dict) else None)
        with self.engine.begin() as connection:
            return int(connection.execute(
                text(
                    "INSERT INTO events (source_url, scraped_data, scraped_at, data_hash, updated_at)"
                    " VALUES (:url, :data, '2026-05-01 10:00:00', 'h', '2026-05-01 10:00:00') RETURNING id"
                ),
                {"url": url, "data": scraped},
            ).scalar_one())

    def add_submission(
        self, event_id: int, service: str, status: str, *, response: Any = None, error: str | None = None
    ) -> int:
        with self.engine.begin() as connection:
            return int(connection.execute(
                text(
                    "INSERT INTO submissions (event_cache_id, service_name, status, submitted_at, response_data,"
                    " error_message, retry_count, selection_criteria, batch_id)"
                    " VALUES (:event, :service, :status, '2026-05-02 12:30:00', :response, :error, 0,"
                    " :criteria, 'batch-1')"
                    " RETURNING id"
                ),
                {
                    "event": event_id, "service": service, "status": status,
                    "response": None if response is None else json.dumps(response),
                    "error": error, "criteria": json.dumps({"selector": "unsubmitted"}),
                },
            ).scalar_one())

    def set_data(self, event_id: int, data: dict[str, Any]) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                text("UPDATE events SET scraped_data = :data WHERE id = :id"),
                {"data": json.dumps(data), "id": event_id},
            )


@pytest.fixture
def source(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Source]:
    """An Event Importer database of the same kind as this project's database (which the CLI uses)."""
    monkeypatch.setenv("EVENT_IMPORTER_DATABASE_URL", database_url)
    reset_process_state()
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'event-importer.sqlite'}"
        engine = create_engine(url)
        ddl = SQLITE_DDL
    else:
        name = f"ei_source_{uuid.uuid4().hex[:10]}"
        admin = create_engine(make_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        engine = create_engine(url)
        ddl = POSTGRES_DDL
    with engine.begin() as connection:
        for statement in ddl:
            connection.execute(text(statement))
    yield Source(url, engine, engine.dialect.name)
    engine.dispose()
    if engine.dialect.name == "postgresql":
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def configured(stand_in, monkeypatch):
    monkeypatch.setenv("TICKETFAIRY_API_URL", stand_in.url)
    monkeypatch.setenv("TICKETFAIRY_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("TICKETFAIRY_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("DAGSTER_HOME", "unset-by-the-fixture")
    monkeypatch.delenv("DAGSTER_HOME")
    return stand_in


def import_db(url: str) -> tuple[Result, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["events", "import-db", url, "--json"], catch_exceptions=False)
    return result, json.loads(result.stdout)


def submit(stand_in, *args: str) -> set[str]:
    """The source URLs one `ticketfairy submit` run sent, each once."""
    stand_in.reset()
    result = CliRunner().invoke(integration_group(discover().get(TF)), ["submit", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    sent = [record["body"]["data"]["attributes"]["url"] for record in stand_in.accepted]
    assert len(sent) == len(set(sent)), f"sent twice: {sent}"
    return set(sent)


def test_an_event_importer_database_imports_with_its_history(source: Source, configured) -> None:
    def event(**overrides: Any) -> dict[str, Any]:
        # The Event Importer's shapes: minimum_age as text, and keys this project's model does not know.
        shapes = {"minimum_age": "21+", "image_search": {"query": "tresor night", "results": []}}
        return event_data(**{**shapes, **overrides})

    sent = source.add_event(event())
    sent_everywhere = source.add_event(event(minimum_age="All Ages"))
    failed = source.add_event(event())
    failed_then_sent = source.add_event(event())
    rejected_as_success = source.add_event(event())
    pending = source.add_event(event())
    retry = source.add_event(event())
    webhook_only = source.add_event(event(minimum_age="All Ages"))
    never = source.add_event(event())
    invalid = source.add_event(event(date="not a date"))
    # PostgreSQL's json type refuses text that is not JSON; SQLite stores it.
    not_json = source.add_event("{not json", "https://events.example.org/x") if source.dialect == "sqlite" else None

    source.add_submission(sent, TF, "success", response={"data": {"id": "1"}})
    source.add_submission(sent_everywhere, TF, "success", response={"data": {"id": "2"}})
    source.add_submission(sent_everywhere, "webhook", "success", response={"ok": True})
    source.add_submission(failed, TF, "failed", error="422: venue is not valid")
    source.add_submission(failed_then_sent, TF, "failed", error="503: try later")
    source.add_submission(failed_then_sent, TF, "success", response={"data": {"id": "3"}})
    source.add_submission(
        rejected_as_success, TF, "success", response={"errors": [{"detail": "start date is in the past"}]}
    )
    source.add_submission(pending, TF, "pending")
    source.add_submission(retry, TF, "retry", error="timeout")
    source.add_submission(webhook_only, "webhook", "success", response={"ok": True})
    source.add_submission(invalid, TF, "success", response={"data": {"id": "4"}})
    # Its key here has the scheme and host in lower case; its history still finds it.
    shouting = source.add_event(event(source_url="HTTPS://Events.Example.ORG/e/Shouting"))
    source.add_submission(shouting, TF, "success", response={"data": {"id": "5"}})

    url = {
        event_id: row
        for event_id, row in source.engine.connect().execute(text("SELECT id, source_url FROM events")).all()
    }
    result, report = import_db(source.url)
    assert result.exit_code == 1, result.output  # the invalid rows
    bad = [invalid] + ([not_json] if not_json else [])
    assert (report["new"], report["updated"], report["invalid"]) == (10, 0, len(bad))
    assert [e["location"] for e in report["errors"]] == [f"events id={i} source_url={url[i]}" for i in bad]
    assert "date" in report["errors"][0]["reason"]
    if not_json:
        assert "scraped_data is not valid JSON" in report["errors"][1]["reason"]
    history = report["history"]
    assert history["by_service"] == {TF: {"success": 4, "failed": 5}, "webhook": {"success": 2}}
    assert [s["location"] for s in history["skipped"]] == [f"submissions id=11 (events id={invalid})"]

    database = get_database(get_settings().resolved_database_url)
    with database.session() as session:
        errors = dict(session.execute(
            select(Submission.imported_id, Submission.error).where(Submission.error.is_not(None))
        ).all())
    assert "venue is not valid" in errors[4]
    assert "start date is in the past" in errors[7] and "recorded there as success" in errors[7]
    assert "outcome unknown" in errors[8] and "'pending'" in errors[8]
    assert "outcome unknown" in errors[9] and "'retry'" in errors[9]

    # Nothing changed since the imported successes; never sent to TicketFairy: sent now, once each.
    assert submit(configured, "--selector", "changed") == set()
    assert submit(configured) == {url[webhook_only], url[never]}
    shown = {r["body"]["data"]["attributes"]["url"]: json.dumps(r["body"]) for r in configured.accepted}
    assert "Minimum age: 21+" in shown[url[never]] and "All Ages" in shown[url[webhook_only]]
    assert submit(configured, "--selector", "failed") == {url[i] for i in (failed, rejected_as_success, pending, retry)}

    again, report = import_db(source.url)
    assert again.exit_code == 1
    assert (report["new"], report["updated"], report["unchanged"]) == (0, 0, 10)
    assert report["history"]["imported"] == 0 and report["history"]["already_imported"] == 11
    for selector in ("unsubmitted", "failed", "changed"):
        assert submit(configured, "--selector", selector) == set(), selector

    # `changed` compares with the data as imported: an event changed there since is selected again.
    # TicketFairy cannot update events, so the update is recorded as skipped, once, and not sent.
    source.set_data(sent, event(source_url=url[sent], title="Moved to Sunday"))
    _, report = import_db(source.url)
    assert report["updated"] == 1 and report["history"]["imported"] == 0
    assert submit(configured, "--selector", "changed") == set()
    with database.session() as session:
        latest = session.execute(
            select(Submission.status, Submission.operation)
            .join(EventCache, EventCache.id == Submission.event_cache_id)
            .where(EventCache.source_url == url[sent], Submission.service_name == TF)
            .order_by(Submission.id.desc())
            .limit(1)
        ).one()
    assert tuple(latest) == ("skipped", "update")
    assert submit(configured, "--selector", "changed") == set()


def without_scraped_data(path: Path) -> str:
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE events (id INTEGER PRIMARY KEY, source_url VARCHAR)"))
    engine.dispose()
    return f"sqlite:///{path}"


@pytest.mark.parametrize(
    ("make_url_", "message"),
    [
        (lambda tmp: f"sqlite:///{tmp / 'missing.sqlite'}", "no such file"),
        (lambda tmp: "not a url", "not a valid database URL"),
        (lambda tmp: "mysql://u@127.0.0.1/db", "only sqlite and postgresql"),
        (lambda tmp: f"sqlite:///{tmp / 'cache.db'}", "has no table 'events'"),
        (lambda tmp: without_scraped_data(tmp / "old.sqlite"), "cannot read the Event Importer database"),
    ],
)
def test_what_cannot_be_imported_exits_2_saying_why(make_url_, message, tmp_path: Path) -> None:
    get_database(f"sqlite:///{tmp_path / 'cache.db'}")  # a database, but not an Event Importer one
    result = CliRunner().invoke(cli, ["events", "import-db", make_url_(tmp_path)])
    assert result.exit_code == 2
    assert message in result.output


def test_the_source_is_only_read_and_the_report_reads_as_text(tmp_path: Path) -> None:
    path = tmp_path / "event-importer.sqlite"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        for statement in SQLITE_DDL:
            connection.execute(text(statement))
    source = Source(f"sqlite:///{path}", engine, "sqlite")
    event_id = source.add_event(event_data())
    source.add_submission(event_id, TF, "success", response={"data": {"id": "9"}})
    source.add_submission(event_id, "webhook", "failed", error="HTTP 500")
    engine.dispose()
    before = path.read_bytes()

    result = CliRunner().invoke(cli, ["events", "import-db", source.url])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "1 new, 0 updated, 0 unchanged, 0 invalid",
        "history: 2 attempts imported (ticketfairy: 1 success; webhook: 1 failed), 0 already imported, "
        "0 left out (attempted here since), 0 invalid",
    ]
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("event-importer.sqlite")) == [path.name]
