"""TicketFairy's client and submitter against a real loopback stand-in for its API: the request it
makes, the errors it raises, and a missing key stopping everything before any request."""

import asyncio

import pytest
from pydantic import SecretStr

from event_importer.errors import ConfigurationError, RejectedSubmissionError
from event_importer.framework.contracts import ClientOptions
from event_importer.framework.discovery import discover
from event_importer.integrations.ticketfairy.client import TicketFairyClient
from event_importer_tests.conftest import TEST_API_KEY
from event_importer_tests.factories import add_events, event_data
from event_importer_tests.standin import Fault

DRAFT = {"data": {"attributes": {"title": "A night", "url": "https://events.example.org/a"}}}


def send(client: TicketFairyClient, body=DRAFT):
    async def run():
        async with client:
            return await client.submit(body)

    return asyncio.run(run())


def client_for(server, key=TEST_API_KEY, **kwargs) -> TicketFairyClient:
    return TicketFairyClient(
        service_name="ticketfairy",
        api_key=SecretStr(key),
        api_url=server.url,
        origin="https://promoter.example.org",
        options=ClientOptions(**kwargs),
    )


def test_posts_the_draft_with_auth_origin_and_json_headers(stand_in):
    answer = send(client_for(stand_in))
    assert answer["data"]["attributes"]["title"] == "A night"
    [record] = stand_in.accepted
    assert record["path"] == "/api/draft-events"
    headers = {k.lower(): v for k, v in record["headers"].items()}
    assert headers["origin"] == "https://promoter.example.org"
    assert headers["accept"] == "application/json"
    assert headers["content-type"] == "application/json"
    assert headers["authorization"] == "<redacted>"  # present; the stand-in checked its value
    assert record["body"] == DRAFT


def test_wrong_key_is_a_rejection_naming_status_and_message(stand_in):
    with pytest.raises(RejectedSubmissionError) as info:
        send(client_for(stand_in, key="wrong-key-123"))
    assert str(info.value) == "HTTP 401 from ticketfairy: Invalid API key"
    assert "wrong-key-123" not in str(info.value)


def test_key_never_in_repr(stand_in):
    assert TEST_API_KEY not in repr(client_for(stand_in))


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault.empty_body(201), "HTTP 201 from ticketfairy: empty response body"),
        (Fault.non_json(200), "HTTP 200 from ticketfairy: response is not JSON"),
        (Fault.reject(422, "Start date must be in the future"), "HTTP 422 from ticketfairy: Start date must be"),
    ],
)
def test_unusable_answers_are_typed_errors(stand_in, fault, message):
    stand_in.add_fault(fault)
    with pytest.raises(RejectedSubmissionError) as info:
        send(client_for(stand_in))
    assert str(info.value).startswith(message)
    assert info.value.status == fault.status


def test_submitter_sends_the_transformed_samples(stand_in, database, monkeypatch):
    monkeypatch.setenv("TICKETFAIRY_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("TICKETFAIRY_API_URL", stand_in.url)
    submitter = discover().get("ticketfairy").create_submitter()
    events = [event_data(minimum_age="21"), event_data(date=None)]
    add_events(database, *events)
    report = submitter.submit_events(database, "unsubmitted")
    assert report.counts["submitted"] == 1 and report.counts["failed"] == 1
    [failure] = [r for r in report.results if r.error]
    assert failure.error == "date is required by TicketFairy"
    [record] = stand_in.accepted
    assert record["body"]["data"]["attributes"]["title"] == events[0]["title"]
    assert "<p>Minimum age: 21+</p>" in record["body"]["data"]["attributes"]["details"]


def test_submitter_without_key_is_a_configuration_error_before_sending(stand_in, database, monkeypatch):
    monkeypatch.setenv("TICKETFAIRY_API_URL", stand_in.url)
    add_events(database, event_data())
    submitter = discover().get("ticketfairy").create_submitter()
    with pytest.raises(ConfigurationError, match="^ticketfairy: TICKETFAIRY_API_KEY not set"):
        submitter.submit_events(database, "unsubmitted")
    assert stand_in.requests_seen == 0
    # A dry run needs no key.
    assert submitter.submit_events(database, "unsubmitted", dry_run=True).counts["dry_run"] == 1
