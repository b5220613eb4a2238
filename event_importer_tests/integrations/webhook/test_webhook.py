"""The webhook integration end to end against a real receiver on 127.0.0.1 that keeps each request's
exact bytes, because the signature is over those bytes: the body's shape, `created` then `updated`
through the `changed` selector, Standard Webhooks signatures that the `standardwebhooks` library (the
receiver's verifier) and our own `verify_signature` accept, and that fail when anything is off,
idempotency keys per version, any 2xx as success, and a clear failure for the rest."""

import base64
import hashlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from event_importer.db.models import EventCache
from event_importer.errors import ConfigurationError
from event_importer.framework.discovery import discover
from event_importer.framework.records import Outcome
from event_importer.integrations.webhook import verify_signature
from event_importer.integrations.webhook.client import signature_headers
from event_importer.integrations.webhook.submitter import WebhookSubmitter
from event_importer.ledger import AttemptRecord
from event_importer_tests.factories import add_events, current_hash, event_data, submission_rows

# A distinctive value, so a search for it in rows, messages and reprs cannot match by accident.
SECRET = "whsec-test-5b2f0e9d41c7"
# The same kind of secret in the specification's form: whsec_ and 24 random bytes in base64.
WHSEC_KEY = bytes(range(7, 31))
WHSEC_SECRET = "whsec_" + base64.b64encode(WHSEC_KEY).decode()


def standard_verify(secret: str | bytes, request: "Received") -> Any:
    """What a receiver using the Standard Webhooks library does: the parsed body, or an exception."""
    return Webhook(secret).verify(request.body, request.headers)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int = 204
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


class Receiver:
    """A webhook receiver: records every request and answers with the queued replies (default: 204)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    reply = receiver.replies.popleft() if receiver.replies else Reply()
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/hooks/events"
        # A short poll interval: shutdown() waits for it, and the default is half a second.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def reply(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def submit(database, selector="unsubmitted"):
    return WebhookSubmitter().submit_events(database, selector)


def stored_data(database, event_id):
    """The event as the cache holds it: normalised `EventData` JSON."""
    with database.session() as session:
        return session.get(EventCache, event_id).data


def test_each_event_is_posted_as_signed_json(receiver, database):
    events = [event_data(), event_data(cost="12 EUR", minimum_age=21)]
    ids = add_events(database, *events)

    report = submit(database)

    assert report.counts["submitted"] == 2 and report.ok
    by_url = {r.json["data"]["source_url"]: r for r in receiver.received}
    for event, event_id in zip(events, ids, strict=True):
        request = by_url[event["source_url"]]
        assert request.path == "/hooks/events"
        assert request.headers["content-type"] == "application/json; charset=utf-8"
        assert request.json == {
            "type": "event.created",
            "event": "created",
            "id": hashlib.sha1(event["source_url"].encode()).hexdigest(),
            "data": stored_data(database, event_id),
            "data_hash": current_hash(database, event_id),
            "timezone": "Europe/Berlin",
        }
        # A plain secret: the receiver gives the library its bytes.
        assert standard_verify(SECRET.encode(), request) == request.json
        assert verify_signature(SECRET, request.body, request.headers)
        assert len(request.headers["idempotency-key"]) == 64
        assert request.headers["webhook-id"] == request.headers["idempotency-key"]
    assert by_url[events[1]["source_url"]].json["data"]["minimum_age"] == "21+"
    assert SECRET not in repr(submission_rows(database))


def test_a_changed_event_is_sent_again_as_updated_with_a_new_idempotency_key(receiver, database):
    original = event_data()
    add_events(database, original)
    submit(database)
    add_events(database, {**original, "title": "Moved to the big room"})

    report = submit(database, "changed")

    assert report.selected == 1 and report.counts["submitted"] == 1
    first, second = receiver.received
    assert (first.json["event"], second.json["event"]) == ("created", "updated")
    assert first.json["id"] == second.json["id"]
    assert second.json["data"]["title"] == "Moved to the big room"
    assert first.json["data_hash"] != second.json["data_hash"]
    assert first.headers["idempotency-key"] != second.headers["idempotency-key"]
    assert submit(database, "changed").selected == 0 and len(receiver.received) == 2


def test_the_idempotency_key_is_the_same_for_every_delivery_of_one_version(receiver, sqlite_database):
    add_events(sqlite_database, event_data(), event_data())
    submit(sqlite_database)
    submit(sqlite_database, "all")  # the same versions once more, e.g. a replay after an outage

    keys: dict[str, list[str]] = {}
    for request in receiver.received:
        keys.setdefault(request.json["id"], []).append(request.headers["idempotency-key"])
    assert all(len(set(sent)) == 1 and len(sent) == 2 for sent in keys.values())
    assert len({sent[0] for sent in keys.values()}) == 2  # different events, different keys
    # A resend of a version the receiver already accepted says so.
    assert [r.json["event"] for r in receiver.received] == ["created", "created", "updated", "updated"]


def test_a_whsec_secret_verifies_with_the_standard_webhooks_library(receiver, sqlite_database, monkeypatch):
    monkeypatch.setenv("WEBHOOK_SECRET", WHSEC_SECRET)
    reykjavik = {"city": "Reykjavik", "country": "Iceland"}
    add_events(sqlite_database, event_data(time={"start": "21:00"}, location=reykjavik))

    assert submit(sqlite_database).counts["submitted"] == 1

    [request] = receiver.received
    body = standard_verify(WHSEC_SECRET, request)
    # The zone the source did not give, resolved from the location as TicketFairy and CalDAV get it.
    assert body["timezone"] == "Atlantic/Reykjavik"
    assert verify_signature(WHSEC_SECRET, request.body, request.headers)
    assert verify_signature(WHSEC_KEY, request.body, request.headers)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        standard_verify(WHSEC_SECRET.encode(), request)  # the text of a whsec_ secret is not the key
    assert WHSEC_SECRET not in repr(submission_rows(sqlite_database))


def test_a_whsec_secret_that_is_not_base64_is_refused_at_start(monkeypatch):
    monkeypatch.setenv("WEBHOOK_SECRET", "whsec_***")
    with pytest.raises(ConfigurationError, match="WEBHOOK_SECRET: starts with whsec_ but the rest is not base64") as e:
        WebhookSubmitter()
    assert "***" not in str(e.value)


def test_the_signature_fails_with_a_wrong_secret_a_changed_body_or_an_old_timestamp(receiver, sqlite_database):
    add_events(sqlite_database, event_data())
    submit(sqlite_database)
    [request] = receiver.received
    headers = request.headers
    t = int(headers["webhook-timestamp"])
    assert abs(t - time.time()) < 60
    assert headers["webhook-signature"].startswith("v1,")

    assert verify_signature(SECRET, request.body, headers)
    assert verify_signature(SECRET.encode(), request.body.decode(), headers, now=t + 300)
    assert not verify_signature("another-secret", request.body, headers)
    assert not verify_signature(SECRET, request.body.replace(b'"created"', b'"updated"'), headers)
    assert not verify_signature(SECRET, request.body + b" ", headers)
    assert not verify_signature(SECRET, request.body, headers, now=t + 301)  # a replay, too late
    assert not verify_signature(SECRET, request.body, headers, now=t - 301)
    assert not verify_signature(SECRET, request.body, {**headers, "webhook-timestamp": str(t + 1)}, now=t)
    assert not verify_signature(SECRET, request.body, {**headers, "webhook-id": "another"}, now=t)
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        assert not verify_signature(SECRET, request.body, {k: v for k, v in headers.items() if k != name})
    for malformed in ("", "v1", "v1,", "v2," + headers["webhook-signature"][3:], "v1=abc"):
        assert not verify_signature(SECRET, request.body, {**headers, "webhook-signature": malformed})
    assert not verify_signature(SECRET, request.body, {**headers, "webhook-timestamp": "soon"})
    # The library agrees on the bad cases.
    with pytest.raises(WebhookVerificationError):
        standard_verify(b"another-secret", request)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET.encode()).verify(request.body + b" ", request.headers)
    # Several signatures, space-separated (a secret being rotated): any one that matches will do.
    old = signature_headers("old-secret", headers["webhook-id"], request.body, timestamp=t)["webhook-signature"]
    rotated = {**headers, "webhook-signature": f"{old} {headers['webhook-signature']}"}
    assert verify_signature(SECRET, request.body, rotated, now=t)
    assert Webhook(SECRET.encode()).verify(request.body, rotated) == request.json


def test_any_2xx_is_success_with_the_status_recorded(receiver, sqlite_database):
    ids = add_events(sqlite_database, event_data(), event_data(), event_data())
    receiver.reply(
        Reply(204),
        Reply(200, b"ok", "text/plain"),
        Reply(202, b'{"queued": true}'),
    )
    submitter = WebhookSubmitter()
    submitter.settings.max_concurrency = 1  # one at a time, so the replies meet the events in order

    report = submitter.submit_events(sqlite_database, "unsubmitted")

    assert report.counts["submitted"] == 3
    rows = {i: (http, AttemptRecord.from_json(stored)) for i, _, http, _, stored in submission_rows(sqlite_database)}
    assert [rows[i][1].answer for i in ids] == [
        {"status": 204},
        {"status": 200, "text": "ok"},
        {"status": 202, "body": {"queued": True}},
    ]
    # Each answer's HTTP status is in the ledger's own column too, as for failures.
    assert [rows[i][0] for i in ids] == [204, 200, 202]
    assert [r.http_status for r in sorted(report.results, key=lambda r: r.event_id)] == [204, 200, 202]


def test_a_4xx_is_recorded_as_failed_with_status_and_message_and_retried_by_the_failed_selector(
    receiver, database
):
    [event_id] = add_events(database, event_data())
    receiver.reply(Reply(422, b'{"error": "unknown venue"}'))

    [result] = submit(database).results

    assert result.outcome is Outcome.FAILED and result.http_status == 422
    assert result.error == "HTTP 422 from webhook: unknown venue"
    assert submission_rows(database)[0][:4] == (event_id, "failed", 422, "HTTP 422 from webhook: unknown venue")
    assert len(receiver.received) == 1  # a 4xx is final: no retry within the run

    retry = submit(database, "failed")
    assert retry.counts["submitted"] == 1
    first, second = receiver.received
    # Never accepted, so still `created`, and the same version: the same idempotency key.
    assert second.json["event"] == "created"
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    submitter = WebhookSubmitter()
    shown = repr(submission_rows(database)) + repr(submitter.settings) + repr(submitter.create_client())
    assert SECRET not in shown


def test_each_retry_is_signed_afresh(receiver, sqlite_database):
    add_events(sqlite_database, event_data())
    receiver.reply(Reply(503, b'{"error": "busy"}', headers=(("Retry-After", "1"),)))

    assert submit(sqlite_database).counts["submitted"] == 1

    first, second = receiver.received
    assert first.body == second.body
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    t1, t2 = (int(r.headers["webhook-timestamp"]) for r in (first, second))
    assert t2 > t1
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert all(standard_verify(SECRET.encode(), r) == r.json for r in (first, second))


def test_missing_settings_are_a_configuration_error_before_any_request(sqlite_database, monkeypatch):
    add_events(sqlite_database, event_data())
    with Receiver() as receiver:
        assert WebhookSubmitter().missing_settings() == ["WEBHOOK_URL", "WEBHOOK_SECRET"]
        with pytest.raises(ConfigurationError, match="^webhook: WEBHOOK_URL, WEBHOOK_SECRET not set"):
            submit(sqlite_database)

        monkeypatch.setenv("WEBHOOK_URL", receiver.url)
        assert WebhookSubmitter().missing_settings() == ["WEBHOOK_SECRET"]
        with pytest.raises(ConfigurationError, match="^webhook: WEBHOOK_SECRET not set"):
            submit(sqlite_database)

        assert receiver.received == [] and submission_rows(sqlite_database) == []

    monkeypatch.setenv("WEBHOOK_URL", "hooks.example.org/events")
    with pytest.raises(ConfigurationError, match="^invalid setting: WEBHOOK_URL: must be an absolute http"):
        WebhookSubmitter()


def test_discovered_with_its_description():
    integration = discover().get("webhook")
    assert integration.submitter_class is WebhookSubmitter
    assert integration.description.startswith("Webhook: ")


def test_cli_submit_then_changed_sends_created_then_updated(receiver, tmp_path, monkeypatch):
    """`event-importer webhook submit` end to end: a Dagster run on the project instance, then the
    `changed` selector after an edit sends one `updated` delivery for the same event."""
    from click.testing import CliRunner

    from event_importer.cli.main import build_cli

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    runner = CliRunner()
    source = tmp_path / "events.jsonl"
    original = event_data(title="Warehouse night")
    source.write_text(json.dumps(original) + "\n")
    assert runner.invoke(build_cli(), ["events", "load", str(source)]).exit_code == 0

    first = runner.invoke(build_cli(), ["webhook", "submit", "--json"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["counts"]["submitted"] == 1

    source.write_text(json.dumps({**original, "title": "Warehouse night (moved)"}) + "\n")
    assert runner.invoke(build_cli(), ["events", "load", str(source)]).exit_code == 0
    second = runner.invoke(build_cli(), ["webhook", "submit", "--selector", "changed", "--json"])
    assert second.exit_code == 0, second.output

    created, updated = receiver.received
    assert (created.json["event"], updated.json["event"]) == ("created", "updated")
    assert created.json["id"] == updated.json["id"]
    assert updated.json["data"]["title"] == "Warehouse night (moved)"
    for delivery in (created, updated):
        assert standard_verify(SECRET.encode(), delivery) == delivery.json
    assert created.headers["idempotency-key"] != updated.headers["idempotency-key"]
