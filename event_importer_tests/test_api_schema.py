"""The API against its own description (issue 13 items 4 and 8): schemathesis generates requests from
/openapi.json, valid and invalid, for every operation, sends them with the token to the real app
(submissions run real Dagster jobs on a data folder with a few events, TicketFairy pointed at the
stand-in), and fails on any 5xx, any status, content type, header or body the schema does not
declare, any invalid request that is accepted, and any protected route that answers without the
token. Bounded in examples so that it stays well under a minute."""

from collections.abc import Iterator

import dagster as dg
import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from event_importer_tests.conftest import TEST_API_KEY, reset_process_state
from event_importer_tests.factories import event_data

TOKEN = "api-token-schema-7c1d"
# Per operation and kind of data (valid, invalid); a valid submission is a whole Dagster run, about a second.
EXAMPLES = 12
RUNS = 4
HEALTH = "GET /health"  # the one operation open without the token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@schemathesis.serializer("application/x-ndjson")
def json_lines(ctx: schemathesis.SerializationContext, value: object) -> bytes:
    """JSON Lines is text: send a generated string as it is, anything else as its JSON."""
    import json

    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


@pytest.fixture
def served(stand_in, isolated_settings, monkeypatch) -> Iterator[tuple[TestClient, schemathesis.BaseSchema]]:
    """The app with a token, TicketFairy pointed at the stand-in, five events loaded, and its schema."""
    from event_importer.api import create_app

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    for name, value in {
        "TICKETFAIRY_API_URL": stand_in.url,
        "TICKETFAIRY_API_KEY": TEST_API_KEY,
        "TICKETFAIRY_MAX_ATTEMPTS": "1",
        "EVENT_IMPORTER_API_TOKEN": TOKEN,
    }.items():
        monkeypatch.setenv(name, value)
    reset_process_state()
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        loaded = client.post("/events", json=[event_data() for _ in range(5)], headers=AUTH)
        assert loaded.status_code == 200, loaded.text
        description = client.get("/openapi.json", headers=AUTH)
        assert description.status_code == 200, description.text
        yield client, schemathesis.openapi.from_dict(description.json())


def send(client: TestClient, case: schemathesis.Case, headers: dict[str, str]) -> tuple[httpx.Response, dict]:
    """Send a generated case through the app (schemathesis' own transport needs `requests`, which the
    caldav extra's urllib3-future breaks)."""
    request = case.as_transport_kwargs(base_url=str(client.base_url), headers=headers)
    body = {"json": request["json"]} if "json" in request else {"content": request.get("data")}
    response = client.request(
        request["method"], request["url"], params=request.get("params"), headers=request["headers"], **body
    )
    return response, request


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_the_api_answers_as_its_schema_says(served, mode):
    client, api = served
    operations = [result.ok() for result in api.get_all_operations()]
    assert {op.label for op in operations} >= {
        HEALTH, "POST /events", "POST /integrations/ticketfairy/submit", "GET /integrations/ticketfairy/status",
        "GET /events/{event_id}", "GET /integrations/{name}/events/{event_id}/attempts",
    }
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not (operation.body or operation.query or operation.path_parameters):
            continue  # nothing in the request to make invalid

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=RUNS if operation.path.endswith("/submit") else EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def answers_as_described(case: schemathesis.Case) -> None:
            # Without the token first: refused before anything is read or run, whatever the request holds.
            anonymous, _ = send(client, case, {})
            if case.operation.label != HEALTH:
                assert anonymous.status_code == 401, f"{case.method} {case.formatted_path}: {anonymous.status_code}"
            response, request = send(client, case, AUTH)
            case.validate_response(response, checks=CHECKS, headers=request["headers"])

        try:
            answers_as_described()
        except Exception as exc:
            exc.add_note(f"operation: {operation.label} ({mode.value} data)")
            raise
    if mode is GenerationMode.POSITIVE:
        # Valid submissions really ran: the fuzzing reached Dagster, not just the validation.
        with dg.DagsterInstance.get() as instance:
            assert instance.get_runs_count(dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS])) > 0
