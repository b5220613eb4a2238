"""The HTTP API (issue 3 item 9, issue 4 item 7): health, loading events, triggering and watching
TicketFairy submissions through Dagster, and the hardening around it: a bearer token when one is
configured, request size limits (declared or chunked), 422 answers that name the field; a submit
answers 202 and queues its runs (behind another run of the integration), `GET /runs/<id>` follows
them. The last test serves the API for real with uvicorn and talks to it over HTTP."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import httpx
import pytest
from fastapi.testclient import TestClient

from event_importer.framework.discovery import discover
from event_importer_tests.conftest import TEST_API_KEY, reset_process_state
from event_importer_tests.factories import event_data
from event_importer_tests.standin import Fault

TOKEN = "api-token-4b7e1c9d2a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NDJSON = {"Content-Type": "application/x-ndjson"}
MAX_BODY = 4_000
SUBMIT = "/integrations/ticketfairy/submit"
# Hold the submit until its runs end, so that the answer has the counts and outcomes.
WAIT = {"wait": "true"}
STATUS = "/integrations/ticketfairy/status"
SELECTOR_ENUM = (
    "'all', 'changed', 'exhausted', 'failed', 'pending', 'removed', 'retry', 'unsubmitted', 'upcoming' or 'url'"
)
EVENT_IMPORTER = str(Path(sys.executable).parent / "event-importer")


@pytest.fixture
def dagster_home(isolated_settings: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DAGSTER_HOME unset, as for a new user: the API defaults it under EVENT_IMPORTER_HOME (restored afterwards)."""
    monkeypatch.setenv("DAGSTER_HOME", "unset")
    monkeypatch.delenv("DAGSTER_HOME")
    return isolated_settings / "dagster"


def make_client(monkeypatch: pytest.MonkeyPatch, **env: str) -> TestClient:
    from event_importer.api import create_app

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_process_state()
    return TestClient(create_app(), raise_server_exceptions=False)


@pytest.fixture
def client(stand_in, dagster_home, monkeypatch) -> Iterator[TestClient]:
    """No token configured; TicketFairy pointed at the stand-in with the right key and no retries."""
    with make_client(
        monkeypatch,
        TICKETFAIRY_API_URL=stand_in.url,
        TICKETFAIRY_API_KEY=TEST_API_KEY,
        TICKETFAIRY_MAX_ATTEMPTS="1",
        EVENT_IMPORTER_API_MAX_BODY_BYTES=str(MAX_BODY),
    ) as test_client:
        yield test_client


@pytest.fixture
def guarded(stand_in, dagster_home, monkeypatch) -> Iterator[TestClient]:
    """The same with EVENT_IMPORTER_API_TOKEN set."""
    with make_client(
        monkeypatch,
        TICKETFAIRY_API_URL=stand_in.url,
        TICKETFAIRY_API_KEY=TEST_API_KEY,
        EVENT_IMPORTER_API_TOKEN=TOKEN,
    ) as test_client:
        yield test_client


def jsonl(*events: dict) -> str:
    import json

    return "\n".join(json.dumps(e) for e in events) + "\n"


# -- health and events -------------------------------------------------------------------------------


def test_health(client):
    answer = client.get("/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok" and body["version"]
    assert "ticketfairy" in body["integrations"] and body["failed_integrations"] == []


def test_post_events_takes_an_object_an_array_and_json_lines(client):
    one, two, three, four = (event_data() for _ in range(4))
    answers = [
        client.post("/events", json=one),
        client.post("/events", json=[two, three]),
        client.post("/events", content=jsonl(four, {**one, "title": "Renamed"}), headers=NDJSON),
        client.post("/events", json=[two]),
    ]
    assert [a.status_code for a in answers] == [200] * 4
    assert [{k: a.json()[k] for k in ("new", "updated", "unchanged", "invalid")} for a in answers] == [
        {"new": 1, "updated": 0, "unchanged": 0, "invalid": 0},
        {"new": 2, "updated": 0, "unchanged": 0, "invalid": 0},
        {"new": 1, "updated": 1, "unchanged": 0, "invalid": 0},
        {"new": 0, "updated": 0, "unchanged": 1, "invalid": 0},
    ]
    assert all(a.json()["errors"] == [] for a in answers)
    assert client.get(STATUS).json()["events"] == 4


def test_mixed_valid_and_invalid_records_answer_207_with_each_location_and_reason(client):
    good = [event_data(), event_data()]
    array = client.post("/events", json=[good[0], {"title": "no url"}, {**event_data(), "date": "2027-02-30"}])
    assert array.status_code == 207
    assert array.json()["new"] == 1
    errors = {e["location"]: e["reason"] for e in array.json()["errors"]}
    assert errors.keys() == {"body[1]", "body[2]"}
    assert errors["body[1]"] == "source_url: Field required"
    assert errors["body[2]"].startswith("date: Input should be a valid date")

    bad_url = '{"title": "x", "source_url": "javascript:x"}\n'
    lines = client.post("/events", content=jsonl(good[1]) + "{broken\n" + bad_url)
    assert lines.status_code == 207
    errors = {e["location"]: e["reason"] for e in lines.json()["errors"]}
    assert errors["body:2"].startswith("not valid JSON")
    assert errors["body:3"] == "source_url: must be an absolute http(s) URL"


@pytest.mark.parametrize(
    ("content", "location", "reason"),
    [
        (b'[{"title": "no url"}]', "body[0]", "source_url: Field required"),
        (b"{broken", "body:1", "not valid JSON"),
        (b"", "body", "no events: the file is empty"),
        (b"[1]", "body[0]", "an event must be a JSON object, got int"),
    ],
    ids=["no-url", "not-json", "empty", "not-an-object"],
)
def test_all_invalid_answers_422(client, content, location, reason):
    answer = client.post("/events", content=content)
    assert answer.status_code == 422
    [error] = answer.json()["errors"]
    assert error["location"] == location and error["reason"].startswith(reason)
    assert answer.json()["new"] == 0


def test_a_record_the_loader_cannot_parse_answers_422_not_500(client):
    """A JSON line nested deeper than Python's recursion limit makes json.loads raise RecursionError."""
    deep = "[" * 1_500 + "]" * 1_500
    answer = client.post("/events", content=jsonl(event_data()) + deep + "\n")
    assert answer.status_code == 207, answer.text
    [error] = answer.json()["errors"]
    assert error["location"] == "body:2" and error["reason"].startswith("not valid JSON")


def test_a_record_that_is_not_utf8_is_reported_by_its_line_and_the_rest_load(client):
    good = [event_data(), event_data()]
    bad = jsonl(event_data(title="x")).encode().strip().replace(b'"x"', b'"caf\xe9"')
    answer = client.post("/events", content=b"\n".join([jsonl(good[0]).encode().strip(), bad, jsonl(good[1]).encode()]))
    assert answer.status_code == 207, answer.text
    assert answer.json()["new"] == 2
    assert answer.json()["errors"] == [{"location": "body:2", "reason": "not UTF-8 text: byte 0xe9 at column 15"}]
    alone = client.post("/events", content=bad)
    assert alone.status_code == 422
    assert alone.json()["errors"] == [{"location": "body", "reason": "not UTF-8 text: byte 0xe9 at line 1, column 15"}]


# -- size limits -------------------------------------------------------------------------------------


def big_body() -> bytes:
    return jsonl(*(event_data(long_description="x" * 500) for _ in range(10))).encode()


def chunks(data: bytes, size: int = 1_000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_a_body_over_the_limit_answers_413_by_content_length_and_when_chunked(client):
    body = big_body()
    assert len(body) > MAX_BODY
    declared = client.post("/events", content=body)
    assert declared.status_code == 413
    assert declared.json()["detail"] == f"request body larger than {MAX_BODY} bytes"
    chunked = client.post("/events", content=chunks(body))
    assert chunked.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in chunked.request.headers
    assert chunked.status_code == 413
    assert client.get(STATUS).json()["events"] == 0


def test_a_chunked_body_under_the_limit_reaches_the_endpoint_whole(client):
    """The size check reads a body without Content-Length to count it; the endpoint must still get all of it."""
    small = jsonl(event_data(), event_data()).encode()
    answer = client.post("/events", content=chunks(small, 100))
    assert answer.request.headers.get("transfer-encoding") == "chunked"
    assert answer.status_code == 200, answer.text
    assert answer.json()["new"] == 2


def test_a_malformed_content_length_is_refused(client):
    answer = client.post("/events", content=b"{}", headers={"Content-Length": "abc"})
    assert answer.status_code in (400, 413)


# -- bearer token ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "payload", "allowed"),
    [
        ("post", "/events", [event_data()], 200),
        ("post", SUBMIT, {"dry_run": True}, 202),
        ("get", STATUS, None, 200),
        ("get", "/runs/no-such-run", None, 404),
    ],
    ids=["events", "submit", "status", "runs"],
)
def test_the_token_is_required_everywhere_but_health(guarded, method, path, payload, allowed):
    def call(headers: dict) -> httpx.Response:
        return guarded.request(method, path, json=payload, headers=headers)

    refused = [
        call({}),
        call({"Authorization": "Bearer wrong-token"}),
        call({"Authorization": f"Bearer {TOKEN}x"}),
        call({"Authorization": f"Basic {TOKEN}"}),
        call({"Authorization": TOKEN}),
        call({"Authorization": "Bearer ünï".encode("latin-1")}),
    ]
    for answer in refused:
        assert answer.status_code == 401, answer.text
        assert answer.json() == {"detail": "missing or wrong bearer token"}
        assert answer.headers["www-authenticate"] == "Bearer"
        assert TOKEN not in answer.text
    assert guarded.get(STATUS).json() == {"detail": "missing or wrong bearer token"}
    # Nothing was done on a refused call.
    assert guarded.get(STATUS, headers=AUTH).json()["events"] == 0
    accepted = call(AUTH)
    assert accepted.status_code == allowed, accepted.text
    assert call({"Authorization": f"bearer {TOKEN}"}).status_code == allowed
    assert guarded.get("/health").status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [("/events", b"{broken"), (SUBMIT, b"{broken"), (SUBMIT, b'{"dry_run": 0}'), ("/events", b"x" * 20_000_000)],
    ids=["events-malformed", "submit-malformed", "submit-invalid", "events-over-the-limit"],
)
def test_the_token_is_checked_before_the_body_is_read(guarded, path, body):
    """Without the token the answer is 401 whatever the body holds: it is never parsed, nor even counted."""
    headers = {"Content-Type": "application/json"}
    refused = guarded.post(path, content=body, headers=headers)
    assert refused.status_code == 401, refused.text
    assert refused.json() == {"detail": "missing or wrong bearer token"}
    assert guarded.post(path, content=body, headers=headers | AUTH).status_code in (413, 422)


def test_a_chunked_submit_over_the_limit_answers_413_not_400(client):
    body = b'{"selector": "all", "dry_run": true, ' + b" " * (2 * MAX_BODY) + b"}"
    answer = client.post(SUBMIT, content=chunks(body), headers={"Content-Type": "application/json"})
    assert answer.request.headers.get("transfer-encoding") == "chunked"
    assert answer.status_code == 413, answer.text
    assert answer.json() == {"detail": f"request body larger than {MAX_BODY} bytes"}
    assert runs_recorded() == 0


# -- self-description --------------------------------------------------------------------------------


def test_openapi_describes_every_body_and_answer(client):
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    answers = {
        (method.upper(), path): operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }
    expected = {
        ("GET", "/health"): {"200"},
        ("POST", "/events"): {"200", "207", "401", "413", "422"},
        ("POST", SUBMIT): {"200", "202", "401", "404", "413", "422"},
        ("GET", STATUS): {"200", "401"},
        ("GET", "/runs/{run_id}"): {"200", "401", "404", "422"},
        ("GET", "/events/{event_id}"): {"200", "401", "404", "422"},
        ("GET", "/integrations/{name}/events/{event_id}/attempts"): {"200", "401", "404", "422"},
    }
    for key, codes in expected.items():
        assert set(answers[key]["responses"]) == codes, key
        for code, response in answers[key]["responses"].items():
            assert response["description"], (key, code)
            assert response["content"]["application/json"]["schema"], (key, code)
    for key, operation in answers.items():
        assert ("security" in operation) == (key != ("GET", "/health")), key
    # Every 422 is described as the app answers it, not as FastAPI's default.
    assert "HTTPValidationError" not in components

    events = answers["POST", "/events"]["requestBody"]
    assert events["required"] is True
    assert set(events["content"]) == {"application/json", "application/x-ndjson"}
    assert "source_url" in components["EventData"]["required"]

    submit = answers["POST", SUBMIT]["requestBody"]
    assert not submit.get("required"), "an empty body means the defaults"
    request = components[submit["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert request["additionalProperties"] is False
    selectors = discover().get("ticketfairy").create_submitter().selectors
    assert request["properties"]["selector"]["enum"] == sorted(selectors)
    assert request["properties"]["dry_run"]["type"] == "boolean"
    [limit] = [s for s in request["properties"]["limit"]["anyOf"] if s["type"] == "integer"]
    assert (limit["minimum"], limit["maximum"]) == (1, 1_000_000)
    webhook = [op for (method, path), op in answers.items() if path == "/integrations/webhook/submit"]
    webhook_request = webhook[0]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert "upcoming" not in components[webhook_request.rsplit("/", 1)[1]]["properties"]["selector"]["enum"]


def local_references(html: str) -> list[str]:
    import re

    return re.findall(r'(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_work_offline_and_need_no_token_while_the_schema_does(guarded, page):
    html = guarded.get(page)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "http://" not in html.text and "https://" not in html.text and "//cdn" not in html.text
    references = local_references(html.text)
    assert any(r.endswith(".js") for r in references)
    for reference in references:
        assert reference.startswith("/docs-assets/"), reference
        asset = guarded.get(reference)
        assert asset.status_code == 200 and len(asset.content) > 1_000, reference
    assert TOKEN not in html.text
    # The page fetches the schema itself, with the token it asks for.
    assert '"/openapi.json"' in html.text and "Authorization" in html.text
    assert guarded.get("/openapi.json").status_code == 401
    assert guarded.get("/openapi.json", headers=AUTH).json()["info"]["title"] == "event-importer"


def test_without_a_token_the_schema_is_open(client):
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs-assets/swagger-ui-bundle.js").headers["content-type"].startswith("text/javascript")


# -- submissions -------------------------------------------------------------------------------------


def test_submit_with_wait_answers_run_id_counts_and_results(client, stand_in, dagster_home):
    events = [event_data(), event_data(), event_data()]
    stand_in.add_fault(Fault.reject(422, "Venue is unknown"), match=events[1]["source_url"], times=None)
    assert client.post("/events", json=events).status_code == 200

    answer = client.post(SUBMIT, params=WAIT, json={})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["counts"] == {
        "selected": 3, "transformed": 3, "invalid": 0, "submitted": 2, "failed": 1, "dry_run": 0, "skipped": 0,
    }
    results = {r["source_url"]: r for r in body["results"]}
    assert results[events[0]["source_url"]]["outcome"] == "success"
    failed = results[events[1]["source_url"]]
    assert (failed["outcome"], failed["http_status"], failed["attempt"]) == ("failed", 422, 1)
    assert failed["error"] == "HTTP 422 from ticketfairy: Venue is unknown"
    assert body["success"] is True and body["error"] is None
    assert len(stand_in.accepted) == 2

    status = client.get(STATUS)
    assert status.status_code == 200
    assert {k: status.json()[k] for k in ("events", "success", "failed", "unsubmitted", "pending")} == {
        "events": 3, "success": 2, "failed": 1, "unsubmitted": 0, "pending": 0,
    }

    dry = client.post(SUBMIT, params=WAIT, json={"selector": "failed", "dry_run": True, "limit": 5})
    assert dry.status_code == 200 and dry.json()["counts"]["dry_run"] == 1

    # Both runs are in the instance's run history, tagged as started by the API.
    assert os.environ["DAGSTER_HOME"] == str(dagster_home)
    with dg.DagsterInstance.get() as instance:
        expected = [(body["run_id"], "unsubmitted", "false"), (dry.json()["run_id"], "failed", "true")]
        for run_id, selector, dry_run in expected:
            run = instance.get_run_by_id(run_id)
            assert run is not None and run.job_name == "ticketfairy_submit_job"
            assert run.status is dg.DagsterRunStatus.SUCCESS
            assert run.tags["event-importer/trigger"] == "api"
            assert run.tags["event-importer/selector"] == selector
            assert run.tags["event-importer/dry_run"] == dry_run


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        ({"limit": 0}, "body.limit", "Input should be greater than or equal to 1"),
        ({"dry_run": "perhaps-not"}, "body.dry_run", "Input should be a valid boolean"),
        ({"selectr": "failed"}, "body.selectr", "Extra inputs are not permitted"),
        ({"limit": "many"}, "body.limit", "Input should be a valid integer"),
        ({"dry_run": 0}, "body.dry_run", "Input should be a valid boolean"),
        ({"dry_run": "true"}, "body.dry_run", "Input should be a valid boolean"),
        ({"limit": 9223372036854775808}, "body.limit", "Input should be less than or equal to 1000000"),
        ({"limit": 1_000_001}, "body.limit", "Input should be less than or equal to 1000000"),
        ({"limit": "5"}, "body.limit", "Input should be a valid integer"),
        ({"limit": 2.0}, "body.limit", "Input should be a valid integer"),
    ],
    ids=[
        "limit-0", "dry-run-not-bool", "unknown-field", "limit-not-int", "dry-run-0", "dry-run-string",
        "limit-past-int64", "limit-past-max", "limit-string", "limit-float",
    ],
)
def test_validation_errors_answer_422_naming_the_field_without_echoing_it(client, payload, field, reason):
    answer = client.post(SUBMIT, json=payload)
    assert answer.status_code == 422
    problems = answer.json()["detail"]
    assert {"field": field, "reason": reason} in [{**p, "reason": p["reason"][: len(reason)]} for p in problems]
    for value in payload.values():
        if isinstance(value, str):
            assert value not in answer.text


@pytest.mark.parametrize(
    "send",
    [
        lambda client: client.post(SUBMIT, params=WAIT),
        lambda client: client.post(SUBMIT, params=WAIT, content=b"", headers={"Content-Type": "application/json"}),
        lambda client: client.post(SUBMIT, params=WAIT, json={}),
    ],
    ids=["no-body", "empty-body", "empty-object"],
)
def test_an_empty_submit_means_the_defaults(client, stand_in, send):
    """Every field has a default: no body, an empty one and `{}` all submit the unsubmitted events for real."""
    events = [event_data(), event_data()]
    assert client.post("/events", json=events).status_code == 200
    answer = send(client)
    assert answer.status_code == 200, answer.text
    assert answer.json()["counts"]["submitted"] == 2
    assert {a["body"]["data"]["attributes"]["url"] for a in stand_in.accepted} == {e["source_url"] for e in events}
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(answer.json()["run_id"])
        assert run is not None
        assert (run.tags["event-importer/selector"], run.tags["event-importer/dry_run"]) == ("unsubmitted", "false")


def test_an_unknown_query_parameter_answers_422_and_starts_no_run(client):
    answer = client.post(SUBMIT, params={"wiat": "true"}, json={"dry_run": True})
    assert answer.status_code == 422
    assert answer.json() == {"detail": "unknown query parameter; the only one is `wait`"}
    assert runs_recorded() == 0


def test_a_body_that_is_not_a_json_object_answers_422(client):
    answer = client.post(SUBMIT, content=b"{oops", headers={"Content-Type": "application/json"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["field"].startswith("body")


NOT_HTTP = "must be an absolute http(s) URL"
URL_ONLY_WITH_ITS_SELECTOR = "a url goes only with the 'url' selector"
NO_SUCH_URL = "no event in the cache has that source_url"


def runs_recorded() -> int:
    home = os.environ.get("DAGSTER_HOME")
    if home is None or not Path(home, "dagster.yaml").exists():
        return 0
    with dg.DagsterInstance.get() as instance:
        return instance.get_runs_count()


REFUSED = [
    ({"selector": "bogus"}, 422, [{"field": "body.selector", "reason": f"Input should be {SELECTOR_ENUM}"}]),
    ({"selector": "url"}, 422, [{"field": "body.url", "reason": "the 'url' selector needs a url"}]),
    ({"selector": "url", "url": "ftp://x.example/a"}, 422, [{"field": "body.url", "reason": NOT_HTTP}]),
    ({"url": "https://x.example/a"}, 422, [{"field": "body.url", "reason": URL_ONLY_WITH_ITS_SELECTOR}]),
    ({"selector": "url", "url": "https://x.example/b", "dry_run": True}, 404, NO_SUCH_URL),
    ({}, 422, "ticketfairy: TICKETFAIRY_API_KEY not set; set it (environment or .env) or make this a dry run"),
]


@pytest.mark.parametrize(
    ("payload", "code", "detail"),
    REFUSED,
    ids=["unknown-selector", "url-selector-no-url", "bad-url", "url-other-selector", "unknown-url", "no-api-key"],
)
def test_a_request_refused_before_it_starts_creates_no_run(client, stand_in, monkeypatch, payload, code, detail):
    monkeypatch.delenv("TICKETFAIRY_API_KEY")
    assert client.post("/events", json=[event_data()]).status_code == 200
    answer = client.post(SUBMIT, json=payload)
    assert answer.status_code == code, answer.text
    assert answer.json() == {"detail": detail}
    assert runs_recorded() == 0
    assert stand_in.requests_seen == 0


def test_after_refused_requests_a_dry_run_of_the_same_event_works(client, stand_in, monkeypatch):
    """Each refusal leaves nothing behind: without the missing setting, a dry run of the event works."""
    monkeypatch.delenv("TICKETFAIRY_API_KEY")
    assert client.post("/events", json=[event_data()]).status_code == 200
    for payload, code, detail in REFUSED:
        answer = client.post(SUBMIT, json=payload)
        assert (answer.status_code, answer.json()) == (code, {"detail": detail})
    assert runs_recorded() == 0 and stand_in.requests_seen == 0
    dry = client.post(SUBMIT, params=WAIT, json={"dry_run": True})
    assert dry.status_code == 200 and dry.json()["counts"]["dry_run"] == 1
    assert runs_recorded() == 1


def test_the_url_selector_submits_the_one_event_it_names(client, stand_in):
    events = [event_data(), event_data()]
    assert client.post("/events", json=events).status_code == 200
    answer = client.post(SUBMIT, params=WAIT, json={"selector": "url", "url": f"  {events[1]['source_url']} "})
    assert answer.status_code == 200, answer.text
    assert [r["source_url"] for r in answer.json()["results"]] == [events[1]["source_url"]]
    assert [a["body"]["data"]["attributes"]["url"] for a in stand_in.accepted] == [events[1]["source_url"]]


def wait_for_run(client: TestClient, url: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(url)
        assert answer.status_code == 200, answer.text
        if answer.json()["finished"]:
            return answer.json()
        assert time.monotonic() < deadline, f"{url} did not finish: {answer.json()}"
        time.sleep(0.3)


def test_submit_answers_202_at_once_and_get_runs_shows_the_outcome(client, stand_in):
    events = [event_data(), event_data()]
    assert client.post("/events", json=events).status_code == 200
    stand_in.latency = 0.5
    answer = client.post(SUBMIT, json={"shards": 2})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert len(body["run_ids"]) == 2 and body["url"] == f"/runs/{body['run_id']}"
    assert answer.headers["location"] == body["url"] and body["urls"] == [f"/runs/{r}" for r in body["run_ids"]]
    assert set(body["statuses"].values()) <= {"QUEUED", "STARTING", "STARTED"}, "answered before the runs ended"

    reports = [wait_for_run(client, url) for url in body["urls"]]
    assert [r["status"] for r in reports] == ["SUCCESS", "SUCCESS"]
    assert sum(r["counts"]["submitted"] for r in reports) == 2
    assert sorted(r["results"][0]["source_url"] for r in reports) == sorted(e["source_url"] for e in events)
    assert {r["tags"]["event-importer/trigger"] for r in reports} == {"api"}
    assert len(stand_in.accepted) == 2
    assert client.get("/runs/no-such-run").status_code == 404


def test_a_second_submit_of_one_integration_waits_in_the_queue_for_the_first(client, stand_in, tmp_path):
    """A CLI run in another process holds the integration's lane: the API's run is queued (202 at
    once) and runs when the CLI's has finished, as dagster.yaml's limit says."""
    events = [event_data() for _ in range(4)]
    assert client.post("/events", json=events).status_code == 200
    stand_in.latency = 0.5
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_HOME")}
    env |= {"EVENT_IMPORTER_MAX_CONCURRENCY": "1"}
    cli = subprocess.Popen(
        [EVENT_IMPORTER, "ticketfairy", "submit", "--json"], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not stand_in.requests_seen:
            assert cli.poll() is None and time.monotonic() < deadline, cli.stderr.read() if cli.stderr else ""
            time.sleep(0.05)
        started = time.monotonic()
        answer = client.post(SUBMIT, json={"selector": "all", "dry_run": True})
        assert answer.status_code == 202, answer.text
        assert time.monotonic() - started < 30, "the answer waited for the CLI's run"
        assert answer.json()["status"] == "QUEUED"
    finally:
        out, err = cli.communicate(timeout=120)
    assert cli.returncode == 0, err
    report = wait_for_run(client, answer.json()["url"])
    # TicketFairy has them all already and cannot update a draft: each is skipped, saying so.
    assert report["status"] == "SUCCESS" and report["counts"]["skipped"] == 4
    assert {r["error"] for r in report["results"]} == {"skipped: the destination cannot update events"}
    with dg.DagsterInstance.get() as instance:
        records = instance.get_run_records(filters=dg.RunsFilter(run_ids=[answer.json()["run_id"]]))
        cli_run = instance.get_run_record_by_id(json.loads(out)["run_id"])
    assert cli_run is not None and records[0].start_time >= cli_run.end_time, "the runs overlapped"
    assert len(stand_in.accepted) == 4


# -- served for real ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_event_importer_api_serves_over_http(stand_in, tmp_path, isolated_settings, monkeypatch):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKETFAIRY_", "DAGSTER_HOME"))}
    env |= {"EVENT_IMPORTER_API_TOKEN": TOKEN, "EVENT_IMPORTER_API_MAX_BODY_BYTES": str(MAX_BODY)}
    # The destination comes from `.env` alone (the API and its runs see it); the token set in the environment
    # wins over the one in `.env`.
    (tmp_path / ".env").write_text(
        f"TICKETFAIRY_API_URL={stand_in.url}\nTICKETFAIRY_API_KEY={TEST_API_KEY}\nEVENT_IMPORTER_API_TOKEN=not-{TOKEN}\n"
    )
    server = subprocess.Popen(
        [EVENT_IMPORTER, "api", "--port", str(port)], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=60) as http:
            deadline = time.monotonic() + 30
            while True:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                try:
                    health = http.get("/health")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the API did not start"
                    time.sleep(0.1)
            assert health.status_code == 200 and "ticketfairy" in health.json()["integrations"]
            assert http.post(SUBMIT, json={}).status_code == 401

            events = [event_data(), event_data()]
            loaded = http.post("/events", json=events, headers=AUTH)
            assert loaded.status_code == 200 and loaded.json()["new"] == 2
            too_big = http.post("/events", content=chunks(big_body()), headers=AUTH)
            assert too_big.status_code == 413
            padded = b'{"dry_run": true' + b" " * (2 * MAX_BODY) + b"}"
            json_type = {"Content-Type": "application/json"}
            assert http.post(SUBMIT, content=chunks(padded), headers=AUTH | json_type).status_code == 413
            assert http.post(SUBMIT, content=b"{broken", headers=json_type).status_code == 401
            assert http.get("/openapi.json").status_code == 401
            assert http.get("/docs").status_code == 200

            answer = http.post(SUBMIT, params=WAIT, json={}, headers=AUTH)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["counts"]["submitted"] == 2 and body["run_id"]
            assert {a["body"]["data"]["attributes"]["url"] for a in stand_in.accepted} == {
                e["source_url"] for e in events
            }
            assert http.get(STATUS, headers=AUTH).json()["success"] == 2
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    # uvicorn exits through the signal it caught once it has shut down cleanly.
    assert server.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert f"Uvicorn running on http://127.0.0.1:{port}" in output
    assert TOKEN not in output and TEST_API_KEY not in output
    monkeypatch.setenv("DAGSTER_HOME", str(isolated_settings / "dagster"))
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(body["run_id"])
        assert run is not None and run.tags["event-importer/trigger"] == "api"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{\"dry_run\": \"caf\xe9\"}".encode("latin-1"), "not UTF-8 text"),
        (b"[" * 1_900 + b"]" * 1_900, "not valid JSON"),
    ],
    ids=["not-utf8", "nested-too-deep"],
)
def test_a_submit_body_that_cannot_be_decoded_answers_422_like_malformed_json(client, body, reason):
    """FastAPI itself would answer 400 "There was an error parsing the body", which no schema describes."""
    answer = client.post(SUBMIT, content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert answer.json() == {"detail": [{"field": "body", "reason": reason}]}
    assert runs_recorded() == 0
