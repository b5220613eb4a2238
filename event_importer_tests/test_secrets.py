"""The API key never leaks (issue 4, item 6), end to end, after failing runs.

With `TICKETFAIRY_API_KEY` set to a distinctive value, jobs fail every way a destination can make
them fail (401 for the wrong key, 500, unreachable) through the real `event-importer` command and
through the HTTP API; then the key is searched for everywhere it could have been written: command
output, every file under EVENT_IMPORTER_HOME and DAGSTER_HOME (run, event-log and compute-log
storage), every column of every row of every table of the event cache, the Dagster runs' config,
tags, snapshots and event-log records, the API's answers and logs, and the client's exceptions. The
API's own bearer token is never echoed either, and on PostgreSQL neither is the database password.

`defs/test_job.py` covers the job executed in process; this covers the ways a user starts a run.
"""

import asyncio
import json
import os
import socket
import subprocess
import sys
import traceback
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import MetaData, select
from sqlalchemy.engine import make_url

from event_importer.errors import SubmissionError
from event_importer.framework.contracts import ClientOptions
from event_importer.integrations.ticketfairy.client import TicketFairyClient
from event_importer.settings import get_settings
from event_importer_tests.conftest import reset_process_state
from event_importer_tests.factories import add_events, event_data
from event_importer_tests.standin import Fault

# Distinctive values, so that a match cannot be a coincidence. The stand-in expects another key: 401.
SECRET = "tf-leak-canary-Q7x2Z9w4K1"
API_TOKEN = "api-token-canary-M3v8R5t0P6"
DB_PASSWORD = "db-password-canary-H4j9L2s7"
EVENT_IMPORTER = str(Path(sys.executable).parent / "event-importer")


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"


def files_containing(root: Path, needles: list[str]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {needle}" for needle in needles if needle.encode() in data]
    return found


def rows_containing(database, needles: list[str]) -> list[str]:
    """Every column of every row of every table in the database, as text."""
    metadata = MetaData()
    metadata.reflect(database.engine)
    found = []
    with database.engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                for column, value in row._mapping.items():
                    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
                    found += [f"{table.name}.{column}: {needle}" for needle in needles if needle in text]
    return found


def instance_records_containing(instance: dg.DagsterInstance, needles: list[str]) -> list[str]:
    """Run config, tags, job snapshot and every event-log record of every run on the instance."""
    found = []
    records = instance.get_run_records()
    assert records, "no run was recorded"
    for record in records:
        run = record.dagster_run
        blobs = {
            "run_config": dg.serialize_value(run.run_config),
            "tags": dg.serialize_value(run.tags),
            "job_snapshot": dg.serialize_value(instance.get_job_snapshot(run.job_snapshot_id)),
            "event_log": "\n".join(dg.serialize_value(entry) for entry in instance.all_logs(run.run_id)),
        }
        found += [f"run {run.run_id} {kind}: {n}" for kind, blob in blobs.items() for n in needles if n in blob]
    return found


def failing_events(database, stand_in) -> list[dict]:
    """Four events: the first answered 500 whatever the key, the others 401 for the wrong key."""
    events = [event_data() for _ in range(4)]
    add_events(database, *events)
    stand_in.add_fault(Fault.status(500, "Internal error"), match=events[0]["source_url"], times=None)
    return events


# -- the CLI -----------------------------------------------------------------------------------------


def test_failing_cli_runs_leave_the_key_nowhere(database, stand_in, tmp_path, isolated_settings, monkeypatch):
    failing_events(database, stand_in)
    url = database.url
    needles = [SECRET]
    if database.dialect == "postgresql":
        # The test server trusts local connections, so any password works: it must still never be written.
        url = make_url(url).set(password=DB_PASSWORD).render_as_string(hide_password=False)
        needles.append(DB_PASSWORD)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKETFAIRY_", "DAGSTER_HOME"))}
    env |= {
        "EVENT_IMPORTER_DATABASE_URL": url,
        "TICKETFAIRY_API_URL": stand_in.url,
        "TICKETFAIRY_API_KEY": SECRET,
        "TICKETFAIRY_MAX_ATTEMPTS": "2",
    }

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [EVENT_IMPORTER, *args], cwd=tmp_path, env=env | extra, capture_output=True, text=True, timeout=120
        )

    rejected = run("ticketfairy", "submit", "--json")
    assert rejected.returncode == 1, rejected.stderr
    errors = sorted(r["error"] for r in json.loads(rejected.stdout)["results"])
    assert errors[0].startswith("HTTP 401 from ticketfairy: Invalid API key")
    assert errors[-1].startswith("HTTP 500 from ticketfairy: Internal error (gave up after 2 attempts)")
    # Unreachable, with the plain-text table this time.
    unreachable = run("ticketfairy", "retry-failed", TICKETFAIRY_API_URL=closed_port_url())
    assert unreachable.returncode == 1, unreachable.stderr
    assert "connection failed" in unreachable.stdout and "4 failed" in unreachable.stdout
    readers = [
        subprocess.Popen(
            [EVENT_IMPORTER, *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for args in (["ticketfairy", "status", "--json"], ["integrations", "list", "--json"])
    ]
    outputs = [rejected.stdout + rejected.stderr, unreachable.stdout + unreachable.stderr]
    for reader in readers:
        out, err = reader.communicate(timeout=120)
        assert reader.returncode == 0, err
        outputs.append(out + err)

    assert [n for output in outputs for n in needles if n in output] == []
    assert files_containing(isolated_settings, needles) == []
    assert files_containing(tmp_path, needles) == []
    assert rows_containing(database, needles) == []
    monkeypatch.setenv("DAGSTER_HOME", str(isolated_settings / "dagster"))
    with dg.DagsterInstance.get() as instance:
        assert len(instance.get_run_records()) == 2
        assert instance_records_containing(instance, needles) == []


# -- the API -----------------------------------------------------------------------------------------


@pytest.fixture
def api(stand_in, monkeypatch):
    """The API app with a bearer token, TicketFairy configured with the (wrong) secret key."""
    from event_importer.api import create_app

    monkeypatch.setenv("TICKETFAIRY_API_URL", stand_in.url)
    monkeypatch.setenv("TICKETFAIRY_API_KEY", SECRET)
    monkeypatch.setenv("TICKETFAIRY_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("EVENT_IMPORTER_API_TOKEN", API_TOKEN)
    # The code sets DAGSTER_HOME itself when it is unset; restore that afterwards.
    monkeypatch.setenv("DAGSTER_HOME", "unset")
    monkeypatch.delenv("DAGSTER_HOME")
    reset_process_state()
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield client


def test_failing_api_runs_leave_the_key_and_the_token_nowhere(
    api, stand_in, isolated_settings, tmp_path, monkeypatch, caplog, capfd
):
    from event_importer.db.engine import get_database

    needles = [SECRET, API_TOKEN]
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    events = [event_data() for _ in range(4)]
    stand_in.add_fault(Fault.status(500, "Internal error"), match=events[0]["source_url"], times=None)
    answers = [api.post("/events", json=events, headers=auth)]
    assert answers[-1].status_code == 200, answers[-1].text

    answers.append(api.post("/integrations/ticketfairy/submit?wait=true", json={}, headers=auth))
    assert answers[-1].status_code == 200, answers[-1].text
    body = answers[-1].json()
    assert body["counts"]["failed"] == 4 and body["success"] is False
    assert {r["http_status"] for r in body["results"]} == {401, 500}

    monkeypatch.setenv("TICKETFAIRY_API_URL", closed_port_url())
    # Runs take the environment of the API's code server: restart it so the next one sees the new URL.
    api.app.state.queue_server.close()
    answers.append(api.post("/integrations/ticketfairy/submit?wait=true", json={"selector": "failed"}, headers=auth))
    assert answers[-1].status_code == 200, answers[-1].text
    assert all("connection failed" in r["error"] for r in answers[-1].json()["results"])

    answers += [
        api.get("/integrations/ticketfairy/status", headers=auth),
        api.get("/health"),
        api.get("/openapi.json"),
        # Refusals and validation errors.
        api.get("/integrations/ticketfairy/status"),
        api.get("/integrations/ticketfairy/status", headers={"Authorization": f"Bearer {API_TOKEN[:-1]}"}),
        api.get("/integrations/ticketfairy/status", headers={"Authorization": f"Basic {API_TOKEN}"}),
        api.post("/integrations/ticketfairy/submit", json={"selector": "bogus"}, headers=auth),
        api.post("/integrations/ticketfairy/submit", json={"limit": 0, "dry_run": "maybe"}, headers=auth),
        api.post("/events", content=b"{not json", headers=auth),
    ]
    assert [a.status_code for a in answers[-6:]] == [401, 401, 401, 422, 422, 422]

    for answer in answers:
        text = answer.text + json.dumps(dict(answer.headers))
        assert [n for n in needles if n in text] == [], (answer.request.url, answer.text[:500])
    out, err = capfd.readouterr()
    assert [n for n in needles if n in out + err + caplog.text] == []
    assert files_containing(isolated_settings, needles) == []
    assert rows_containing(get_database(get_settings().resolved_database_url), needles) == []
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_run_records()
        assert {r.dagster_run.tags["event-importer/trigger"] for r in runs} == {"api"}
        assert instance_records_containing(instance, needles) == []


# -- the client's exceptions -------------------------------------------------------------------------


def submit_with(url: str, **options) -> SubmissionError:
    client = TicketFairyClient(
        service_name="ticketfairy",
        api_key=SecretStr(SECRET),
        api_url=url,
        origin="https://www.theticketfairy.com",
        options=ClientOptions(**options),
    )
    assert SECRET not in repr(client)

    async def send() -> None:
        async with client:
            await client.submit({"data": {"attributes": {"title": "Night", "url": "https://example.org/e/1"}}})

    with pytest.raises(SubmissionError) as raised:
        asyncio.run(send())
    return raised.value


def exception_texts(exc: BaseException) -> str:
    """What a log or a traceback shows of the error: message, repr, API message and the whole chain."""
    parts = [str(exc), repr(exc), str(getattr(exc, "api_message", "")), "".join(traceback.format_exception(exc))]
    return "\n".join(parts)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (None, "HTTP 401 from ticketfairy: Invalid API key"),
        (Fault.status(500, "Internal error"), "HTTP 500 from ticketfairy: Internal error"),
        (Fault.hang(2), "ticketfairy: no answer within 0.3 s (timeout)"),
        (Fault.non_json(200), "HTTP 200 from ticketfairy: response is not JSON"),
        (Fault.reset(), "ticketfairy: connection failed"),
        ("unreachable", "ticketfairy: connection failed"),
    ],
    ids=["401", "500", "timeout", "non-json", "reset", "unreachable"],
)
def test_client_errors_never_carry_the_key(stand_in, fault, message):
    url = stand_in.url
    if fault == "unreachable":
        url = closed_port_url()
    elif fault is not None:
        stand_in.add_fault(fault, times=None)
    error = submit_with(url, timeout=0.3, max_attempts=2)
    assert str(error).startswith(message)
    assert SECRET not in exception_texts(error)


def test_a_destination_that_echoes_the_key_in_its_error_does_not_leak_it(stand_in):
    """Some APIs answer "invalid token <token>": the recorded error (rows, output, metadata) must not carry it."""
    stand_in.add_fault(Fault.reject(401, f"Invalid API key '{SECRET}'"), times=None)
    error = submit_with(stand_in.url, max_attempts=1)
    assert str(error).startswith("HTTP 401 from ticketfairy: Invalid API key")
    assert SECRET not in exception_texts(error)


@pytest.mark.parametrize("secret", [SECRET, 'tf-"quoted"\\key-Q7x2'])
def test_a_success_answer_that_echoes_the_key_is_recorded_without_it(stand_in, secret, monkeypatch):
    """The stand-in echoes the posted attributes back, as many APIs do; a key inside them is masked,
    also one that JSON would escape (found by walking the answer, not by searching its text)."""
    monkeypatch.setattr(stand_in, "api_key", secret)
    client = TicketFairyClient(
        service_name="ticketfairy",
        api_key=SecretStr(secret),
        api_url=stand_in.url,
        origin="https://www.theticketfairy.com",
    )

    async def send() -> dict:
        async with client:
            return await client.submit({"data": {"attributes": {"title": f"Night {secret}", "tags": [secret]}}})

    answer = asyncio.run(send())
    attributes = answer["data"]["attributes"]
    assert attributes["title"] == "Night ***" and attributes["tags"] == ["***"]
    assert secret not in repr(answer)
