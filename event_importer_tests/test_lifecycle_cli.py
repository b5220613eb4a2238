"""An event's life end to end through the CLI (each submission a Dagster run on the project's
instance), with real destinations on 127.0.0.1: a webhook receiver that gets `event.cancelled` and
`event.deleted`, a Radicale calendar read back with a CalDAV client (STATUS:CANCELLED with a higher
SEQUENCE, or the resource deleted), and the TicketFairy stand-in, which receives nothing while every
case is recorded as skipped with its reason in the ledger, the CLI, the API and the run's metadata."""

import json
from pathlib import Path

import dagster as dg
import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from event_importer.cli.main import build_cli
from event_importer.db.engine import get_database
from event_importer.db.models import Submission
from event_importer.framework.discovery import discover
from event_importer.integrations.webhook import verify_signature
from event_importer.orchestration import integration_defs
from event_importer.settings import get_settings
from event_importer_tests.conftest import TEST_API_KEY, reset_process_state
from event_importer_tests.factories import event_data
from event_importer_tests.integrations.caldav.radicale_server import PASSWORD, USERNAME
from event_importer_tests.integrations.caldav.test_caldav import read_back
from event_importer_tests.integrations.webhook.test_webhook import SECRET

SOURCE = "https://club.example/e"


@pytest.fixture(autouse=True)
def default_dagster_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """DAGSTER_HOME unset, as for a new user; restored after the test although the code sets it directly."""
    monkeypatch.setenv("DAGSTER_HOME", "unset-by-the-fixture")
    monkeypatch.delenv("DAGSTER_HOME")


def cli(*args: str):
    return CliRunner().invoke(build_cli(), list(args), catch_exceptions=False)


def submit(service: str, selector: str) -> dict:
    result = cli(service, "submit", "--selector", selector, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def catalogue(tmp_path: Path, name: str, *events: dict) -> str:
    path = tmp_path / name
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return str(path)


def two_events() -> tuple[dict, dict]:
    return event_data(source_url=f"{SOURCE}/1", title="Opening"), event_data(source_url=f"{SOURCE}/2", title="Closing")


def ledger(service: str) -> list[tuple[int, str, str, str | None]]:
    with get_database(get_settings().resolved_database_url).session() as session:
        rows = session.execute(
            select(Submission.event_cache_id, Submission.operation, Submission.status, Submission.error)
            .where(Submission.service_name == service)
            .order_by(Submission.id)
        )
        return [tuple(row) for row in rows]


# -- webhook ----------------------------------------------------------------------------------------


def test_webhook_gets_event_cancelled_and_event_deleted(receiver, tmp_path):
    opening, closing = two_events()
    assert cli("events", "load", "--mirror", catalogue(tmp_path, "all.jsonl", opening, closing)).exit_code == 0
    assert submit("webhook", "unsubmitted")["counts"]["submitted"] == 2

    cancelled = {**opening, "status": "https://schema.org/EventCancelled"}
    assert cli("events", "load", catalogue(tmp_path, "cancel.jsonl", cancelled)).exit_code == 0
    run = submit("webhook", "changed")
    assert [(r["operation"], r["outcome"]) for r in run["results"]] == [("cancel", "success")]

    mirrored = cli("events", "load", "--mirror", catalogue(tmp_path, "less.jsonl", cancelled))
    assert mirrored.exit_code == 0 and "1 removed (source club.example)" in mirrored.stdout
    run = submit("webhook", "removed")
    assert [(r["operation"], r["outcome"]) for r in run["results"]] == [("remove", "success")]
    assert submit("webhook", "removed")["counts"]["selected"] == 0

    *created, cancel, delete = receiver.received
    created_1, created_2 = sorted(created, key=lambda d: d.json["data"]["source_url"])
    assert {d.json["type"] for d in created} == {"event.created"}
    assert (cancel.json["type"], cancel.json["event"]) == ("event.cancelled", "cancelled")
    assert cancel.json["data"]["status"] == "cancelled" and cancel.json["id"] == created_1.json["id"]
    assert (delete.json["type"], delete.json["event"]) == ("event.deleted", "deleted")
    assert delete.json["id"] == created_2.json["id"] and delete.json["data"]["title"] == "Closing"
    for delivery in receiver.received:
        assert verify_signature(SECRET, delivery.body, delivery.headers)
        # The Standard Webhooks id is the idempotency key: one per delivery of one version and kind.
        assert delivery.headers["webhook-id"] == delivery.headers["idempotency-key"]
    # Stable ids, and a key per delivery: the deletion carries the version the receiver has.
    assert delete.json["data_hash"] == created_2.json["data_hash"]
    assert len({d.headers["idempotency-key"] for d in receiver.received}) == 4


# -- CalDAV -----------------------------------------------------------------------------------------


def entries(url: str) -> dict[str, dict]:
    """{SUMMARY: {"status", "sequence"}} of every entry the calendar holds."""
    return {
        str(vevent["SUMMARY"]): {"status": str(vevent.get("STATUS")), "sequence": int(vevent.get("SEQUENCE", 0))}
        for _, vevent in read_back(url).values()
    }


def test_caldav_cancels_with_a_higher_sequence_and_a_removal_cancels_too_by_default(calendar_url, tmp_path):
    opening, closing = two_events()
    cli("events", "load", "--mirror", catalogue(tmp_path, "all.jsonl", opening, closing))
    submit("caldav", "unsubmitted")
    before = entries(calendar_url)
    assert before["Opening"]["status"] == "CONFIRMED"

    cli("events", "load", catalogue(tmp_path, "cancel.jsonl", {**opening, "status": "EventCancelled"}))
    submit("caldav", "changed")
    cli("events", "load", "--mirror", catalogue(tmp_path, "less.jsonl", opening))
    removed = submit("caldav", "removed")

    assert [r["operation"] for r in removed["results"]] == ["remove"]
    after = entries(calendar_url)
    assert set(after) == {"Opening", "Closing"}  # both entries kept, struck through
    for title in after:
        assert after[title]["status"] == "CANCELLED"
        assert after[title]["sequence"] > before[title]["sequence"]


def test_caldav_deletes_a_removed_event_when_configured(calendar_url, tmp_path, monkeypatch):
    monkeypatch.setenv("CALDAV_REMOVAL", "delete")
    opening, closing = two_events()
    cli("events", "load", "--mirror", catalogue(tmp_path, "all.jsonl", opening, closing))
    submit("caldav", "unsubmitted")
    assert set(entries(calendar_url)) == {"Opening", "Closing"}

    cli("events", "remove", closing["source_url"])
    run = submit("caldav", "removed")

    assert [(r["operation"], r["outcome"]) for r in run["results"]] == [("remove", "success")]
    assert set(entries(calendar_url)) == {"Opening"}
    listing = json.loads(cli("integrations", "list", "--json").stdout)
    [caldav] = [i for i in listing["integrations"] if i["name"] == "caldav"]
    assert caldav["lifecycle"]["remove"]["does"].startswith("the entry is deleted")
    # Deleted once: a later `all` has nothing to delete there, and says so.
    again = {r["title"]: (r["operation"], r["outcome"], r["error"]) for r in submit("caldav", "all")["results"]}
    assert again == {
        "Opening": ("update", "success", None),
        "Closing": ("remove", "skipped", "skipped: removed from the source, and this destination does not have it"),
    }


def test_caldav_counts_a_resource_already_gone_as_deleted(calendar_url, tmp_path, monkeypatch):
    monkeypatch.setenv("CALDAV_REMOVAL", "delete")
    opening, _ = two_events()
    cli("events", "load", catalogue(tmp_path, "one.jsonl", opening))
    [created] = submit("caldav", "unsubmitted")["results"]
    [(href, _)] = read_back(calendar_url).values()
    assert httpx.delete(href, auth=(USERNAME, PASSWORD)).status_code in (200, 204)  # deleted by hand

    cli("events", "remove", opening["source_url"])
    [result] = submit("caldav", "removed")["results"]

    assert (result["operation"], result["outcome"], result["error"]) == ("remove", "success", None)
    assert result["event_id"] == created["event_id"]


# -- TicketFairy ------------------------------------------------------------------------------------


@pytest.fixture
def ticketfairy(stand_in, monkeypatch):
    monkeypatch.setenv("TICKETFAIRY_API_URL", stand_in.url)
    monkeypatch.setenv("TICKETFAIRY_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("TICKETFAIRY_MAX_ATTEMPTS", "1")
    return stand_in


def latest_results_metadata() -> dict:
    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(["ticketfairy", "submission_results"]))
        assert event is not None and event.asset_materialization is not None
        return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_ticketfairy_records_what_it_cannot_do_as_skipped_and_receives_nothing(ticketfairy, tmp_path, monkeypatch):
    opening, closing = two_events()
    cli("events", "load", "--mirror", catalogue(tmp_path, "all.jsonl", opening, closing))
    assert submit("ticketfairy", "unsubmitted")["counts"]["submitted"] == 2
    seen = ticketfairy.requests_seen

    cli("events", "load", catalogue(tmp_path, "cancel.jsonl", {**opening, "status": "cancelled"}))
    shown = cli("ticketfairy", "submit", "--selector", "changed")
    assert shown.exit_code == 0, shown.output
    assert "skipped: the destination cannot cancel events" in shown.stdout and "1 skipped" in shown.stdout
    metadata = latest_results_metadata()
    assert metadata["operations"] == {"cancel": {"skipped": 1}}
    assert "skipped: the destination cannot cancel events" in [r.data["error"] for r in metadata["results"].records]

    cli("events", "remove", closing["source_url"])
    with TestClient(_app(monkeypatch)) as client:
        answer = client.post("/integrations/ticketfairy/submit", params={"wait": "true"}, json={"selector": "removed"})
        status = client.get("/integrations/ticketfairy/status").json()
    assert answer.status_code == 200, answer.text
    [result] = answer.json()["results"]
    assert (result["operation"], result["outcome"]) == ("remove", "skipped")
    assert result["error"] == "skipped: the destination cannot remove events"
    cannot_cancel = {"supported": False, "does": "skipped: the destination cannot cancel events"}
    assert status["lifecycle"]["cancel"] == cannot_cancel

    assert ticketfairy.requests_seen == seen  # nothing sent for either
    assert [row[1:] for row in ledger("ticketfairy")][2:] == [
        ("cancel", "skipped", "skipped: the destination cannot cancel events"),
        ("remove", "skipped", "skipped: the destination cannot remove events"),
    ]
    # Each is skipped once: the next runs find nothing to do.
    assert submit("ticketfairy", "changed")["counts"]["selected"] == 0
    assert submit("ticketfairy", "removed")["counts"]["selected"] == 0


def _app(monkeypatch):
    from event_importer.api import create_app

    reset_process_state()
    return create_app()


# -- what each destination declares -----------------------------------------------------------------


def test_integrations_list_and_the_asset_description_show_each_destinations_lifecycle():
    listed = cli("integrations", "list")
    assert listed.exit_code == 0
    assert "delivered as event.deleted" in listed.stdout
    assert "skipped: the destination cannot update events" in listed.stdout
    assert "STATUS:CANCELLED" in listed.stdout

    as_json = json.loads(cli("integrations", "list", "--json").stdout)
    by_name = {i["name"]: i["lifecycle"] for i in as_json["integrations"]}
    assert by_name["webhook"]["cancel"] == {"supported": True, "does": "delivered as event.cancelled"}
    assert by_name["ticketfairy"]["remove"]["supported"] is False

    defs = integration_defs(discover().get("webhook"))
    spec = defs.resolve_assets_def(dg.AssetKey(["webhook", "submission_results"]))
    description = spec.descriptions_by_key[dg.AssetKey(["webhook", "submission_results"])]
    assert "**remove**: delivered as event.deleted" in description
