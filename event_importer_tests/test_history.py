"""One event's history, end to end: a dry run, a rejected attempt, a retry that succeeds after a 503,
each a Dagster run started by the CLI or the API against a real webhook receiver, then read back with
`webhook history`, `events show` and the API's `/events/<id>` and `/integrations/webhook/events/<id>/attempts`.
Every attempt shows its run, trigger, status, HTTP status, error, the payload exactly as sent (the dry
run's too) and the answer; the webhook secret appears nowhere."""

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from event_importer.cli.main import build_cli
from event_importer_tests.conftest import reset_process_state
from event_importer_tests.factories import event_data
from event_importer_tests.integrations.webhook.test_webhook import SECRET, Receiver, Reply

TOKEN = "history-token-7c1f0a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def receiver(receiver: Receiver, monkeypatch) -> Receiver:
    """The shared webhook receiver, with a retry allowed and the API behind a token."""
    monkeypatch.setenv("WEBHOOK_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("EVENT_IMPORTER_API_TOKEN", TOKEN)
    reset_process_state()
    return receiver


def cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(build_cli(), list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.stdout


def test_history_shows_every_attempt_with_payload_and_answer_in_the_cli_and_the_api(receiver, api, tmp_path):
    source = tmp_path / "events.jsonl"
    original = event_data(title="東京 Night 🎧")
    source.write_text(json.dumps(original, ensure_ascii=False) + "\n")
    cli("events", "load", str(source))
    url = original["source_url"]

    dry = json.loads(cli("webhook", "submit", "--dry-run", "--json"))
    receiver.reply(Reply(422, b'{"error": "unknown venue"}'))
    failed = json.loads(cli("webhook", "submit", "--json", code=1))
    receiver.reply(Reply(503, b'{"error": "busy"}'), Reply(204))
    wait = {"wait": "true"}
    retried = api.post("/integrations/webhook/submit", params=wait, json={"selector": "failed"}, headers=AUTH).json()
    assert retried["counts"]["submitted"] == 1, retried

    history = json.loads(cli("webhook", "history", url, "--json"))
    event_id = history["event"]["id"]
    assert history["event"]["source_url"] == url and history["state"] == "success" and not history["changed"]
    attempts = history["attempts"]
    summary = [
        (a["status"], a["attempt"], a["operation"], a["run_id"], a["trigger"], a["http_status"]) for a in attempts
    ]
    assert summary == [
        ("dry_run", 1, "create", dry["run_id"], "cli", None),
        ("failed", 1, "create", failed["run_id"], "cli", 422),
        ("success", 2, "create", retried["run_id"], "api", 204),
    ]
    sent = [r.json for r in receiver.received]  # the 422, the 503 and the 204: the same bytes each time
    assert len(sent) == 3 and sent[0] == sent[1] == sent[2]
    # The payload as sent, for the dry run too (that one would have been sent the same).
    assert [a["payload"] for a in attempts] == [sent[0]] * 3
    assert attempts[0]["answer"] is None and attempts[0]["error"] is None
    assert attempts[1]["error"] == "HTTP 422 from webhook: unknown venue"
    assert attempts[2]["answer"] == {"status": 204} and attempts[2]["error"] is None
    assert all(a["created_at"] and a["finished_at"] for a in attempts)

    # The same through the API, by id; the CLI also takes the id.
    assert api.get(f"/integrations/webhook/events/{event_id}/attempts", headers=AUTH).json() == history
    assert json.loads(cli("webhook", "history", str(event_id), "--json")) == history

    text = cli("webhook", "history", str(event_id))
    assert "東京 Night 🎧" in text and "webhook: success; 3 attempts (dry runs included)" in text
    assert f"dry run (create)  run {dry['run_id']} (cli)" in text
    assert f"attempt 1 failed (create) HTTP 422  run {failed['run_id']} (cli)" in text
    assert f"attempt 2 success (create) HTTP 204  run {retried['run_id']} (api)" in text
    assert "error: HTTP 422 from webhook: unknown venue" in text
    assert text.count("  payload: {") == 3 and '  answer: {"status": 204}' in text

    overview = json.loads(cli("events", "show", url, "--json"))
    assert overview["event"]["id"] == event_id and overview["event"]["data"]["title"] == "東京 Night 🎧"
    webhook = overview["destinations"]["webhook"]
    assert (webhook["state"], webhook["attempts"], webhook["dry_runs"]) == ("success", 2, 1)
    assert webhook["latest_attempt"]["run_id"] == retried["run_id"]
    assert overview["destinations"]["ticketfairy"] == {
        "state": "unsubmitted",
        "changed": False,
        "removed": False,
        "exhausted": False,
        "attempts": 0,
        "dry_runs": 0,
        "latest_attempt": None,
    }
    assert api.get(f"/events/{event_id}", headers=AUTH).json() == overview
    shown = cli("events", "show", str(event_id))
    assert "webhook" in shown and "success" in shown and f"event-importer <destination> history {event_id}" in shown

    # Removed from its source: its removal is due at the webhook, which has it, and TicketFairy,
    # which never had it, withholds it; once sent, the removal is an attempt of its own.
    cli("events", "remove", url)
    removed = json.loads(cli("events", "show", url, "--json"))
    assert removed["event"]["removed_at"]
    assert (removed["destinations"]["webhook"]["state"], removed["destinations"]["webhook"]["removed"]) == (
        "success",
        True,
    )
    assert removed["destinations"]["ticketfairy"]["state"] == "withheld"
    removed_text = cli("events", "show", str(event_id))
    assert "removed from its source at" in removed_text and "removal" in removed_text
    receiver.reply(Reply(204))
    cli("webhook", "submit", "--selector", "removed", "--json")
    after = json.loads(cli("webhook", "history", url, "--json"))
    assert [(a["operation"], a["status"]) for a in after["attempts"]][-1] == ("remove", "success")
    assert after["state"] == "success" and not after["removed"]
    assert "attempt 3 success (remove) HTTP 204" in cli("webhook", "history", url)

    everything = json.dumps([history, overview]) + text + shown
    assert SECRET not in everything


def test_unknown_events_and_integrations_are_named_errors(receiver, api):
    assert api.get("/events/999", headers=AUTH).status_code == 404
    assert "no event with id 999" in api.get("/events/999", headers=AUTH).json()["detail"]
    assert api.get("/integrations/nope/events/1/attempts", headers=AUTH).status_code == 404
    assert api.get("/events/1").status_code == 401
    assert api.get("/integrations/webhook/events/1/attempts").status_code == 401
    result = CliRunner().invoke(build_cli(), ["webhook", "history", "https://nowhere.example/e/1"])
    assert result.exit_code == 2 and "no event with source URL 'https://nowhere.example/e/1'" in result.output
    result = CliRunner().invoke(build_cli(), ["events", "show", "12345"])
    assert result.exit_code == 2 and "no event with id 12345" in result.output


@pytest.fixture
def api(receiver: Receiver) -> Iterator[TestClient]:
    """The API on the receiver's settings; leaving it stops the code server its submissions started."""
    from event_importer.api import create_app

    with TestClient(create_app()) as client:
        yield client
