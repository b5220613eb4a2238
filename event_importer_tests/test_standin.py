"""Tests for the destination stand-in server, observed from a real HTTP client."""

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from event_importer_tests.standin import Fault, StandInServer, fault_to_json

API_KEY = "s3cret-key"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def draft(url: str, **extra: object) -> dict[str, object]:
    return {
        "data": {
            "type": "draft-events",
            "attributes": {"title": "Gig", "url": url, **extra},
        }
    }


def wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def shared_server() -> Iterator[StandInServer]:
    # One server for the module keeps the suite fast; each test resets it.
    with StandInServer(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def server(shared_server: StandInServer) -> Iterator[StandInServer]:
    shared_server.reset()
    shared_server.latency = 0.0
    yield shared_server
    shared_server.reset()


@pytest.fixture
def client(server: StandInServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5.0
    ) as client:
        yield client


def test_url_is_local_api() -> None:
    with StandInServer() as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.url.endswith("/api")


def test_draft_event_is_created_and_recorded(
    server: StandInServer, client: httpx.Client
) -> None:
    first = client.post("/draft-events", json=draft("https://example.com/a"))
    second = client.post("/draft-events", json=draft("https://example.com/b"))

    assert first.status_code == 201
    assert first.json() == {
        "data": {
            "id": "1",
            "type": "draft-events",
            "attributes": {"title": "Gig", "url": "https://example.com/a"},
        }
    }
    assert second.json()["data"]["id"] == "2"
    [record, _] = server.accepted
    assert record["path"] == "/api/draft-events"
    assert record["id"] == "1"
    assert record["body"] == draft("https://example.com/a")
    assert record["headers"]["Authorization"] == "<redacted>"
    assert API_KEY not in str(record["headers"])
    assert record["received_at"] <= time.time()
    assert server.requests_seen == 2


@pytest.mark.parametrize(
    "headers", [{"Authorization": "Bearer wrong"}, {"Authorization": ""}]
)
def test_wrong_or_missing_key_is_401(
    server: StandInServer, client: httpx.Client, headers: dict[str, str]
) -> None:
    response = client.post("/draft-events", json=draft("u"), headers=headers)

    assert response.status_code == 401
    assert response.json() == {"errors": [{"detail": "Invalid API key"}]}
    assert server.accepted == []
    assert server.requests_seen == 1


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"data": {}}', b'{"data": {"attributes": "x"}}'],
)
def test_invalid_draft_body_is_422(
    server: StandInServer, client: httpx.Client, body: bytes
) -> None:
    response = client.post("/draft-events", content=body)

    assert response.status_code == 422
    assert response.json()["errors"][0]["detail"]
    assert server.accepted == []


def test_generic_endpoint_accepts_anything_without_auth(server: StandInServer) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        as_json = anonymous.post("/webhooks/calendar", json={"source_url": "s"})
        as_text = anonymous.post("/hook", content=b"plain text")

    assert as_json.status_code == 200
    assert as_json.json() == {"ok": True, "id": "1"}
    assert as_text.json() == {"ok": True, "id": "2"}
    assert [(r["path"], r["body"]) for r in server.accepted] == [
        ("/api/webhooks/calendar", {"source_url": "s"}),
        ("/api/hook", "plain text"),
    ]


def test_status_fault_answers_5xx_and_is_not_accepted(
    server: StandInServer, client: httpx.Client
) -> None:
    server.add_fault(Fault.status(503))

    faulted = client.post("/draft-events", json=draft("u"))
    healthy = client.post("/draft-events", json=draft("u"))

    assert faulted.status_code == 503
    assert faulted.json() == {"errors": [{"detail": "Service unavailable"}]}
    assert healthy.status_code == 201
    assert len(server.accepted) == 1
    assert server.requests_seen == 2
    assert server.faults_injected == {"status": 1}


def test_rate_limited_fault_sends_retry_after(
    server: StandInServer, client: httpx.Client
) -> None:
    server.add_fault(Fault.rate_limited(retry_after=2))

    response = client.post("/draft-events", json=draft("u"))

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.json()["errors"][0]["detail"]
    assert server.accepted == []


def test_reject_fault_answers_4xx_with_message(
    server: StandInServer, client: httpx.Client
) -> None:
    server.add_fault(Fault.reject(status=400, message="Venue is required"))

    response = client.post("/draft-events", json=draft("u"))

    assert response.status_code == 400
    assert response.json() == {"errors": [{"detail": "Venue is required"}]}
    assert server.accepted == []


def test_empty_and_non_json_bodies(server: StandInServer, client: httpx.Client) -> None:
    server.add_fault(Fault.empty_body(status=200))
    server.add_fault(Fault.non_json(status=502))

    empty = client.post("/draft-events", json=draft("u"))
    html = client.post("/draft-events", json=draft("u"))

    assert (empty.status_code, empty.content) == (200, b"")
    assert (html.status_code, html.text) == (502, "<html>oops</html>")
    assert html.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        html.json()
    assert server.accepted == []
    assert server.faults_injected == {"empty_body": 1, "non_json": 1}


def test_reset_fault_drops_the_connection(
    server: StandInServer, client: httpx.Client
) -> None:
    server.add_fault(Fault.reset())

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post("/draft-events", json=draft("u"))

    assert client.post("/draft-events", json=draft("u")).status_code == 201
    assert len(server.accepted) == 1
    assert server.faults_injected == {"reset": 1}


def test_hang_times_out_client_but_is_accepted_once_handled(
    server: StandInServer, client: httpx.Client
) -> None:
    server.add_fault(Fault.hang(0.4))

    with pytest.raises(httpx.ReadTimeout):
        client.post("/draft-events", json=draft("slow"), timeout=0.1)

    assert server.accepted == []  # still hanging
    wait_for(lambda: len(server.accepted) == 1)
    assert server.accepted[0]["body"] == draft("slow")


def test_latency_fixed_and_injected(
    server: StandInServer, client: httpx.Client
) -> None:
    server.latency = 0.1
    started = time.monotonic()
    client.post("/draft-events", json=draft("u"))
    assert time.monotonic() - started >= 0.1

    server.latency = 0.0
    server.add_fault(Fault.latency(0.15))
    started = time.monotonic()
    response = client.post("/draft-events", json=draft("u"))
    assert time.monotonic() - started >= 0.15
    assert response.status_code == 201
    assert len(server.accepted) == 2


def test_rules_match_substring_and_count_down(
    server: StandInServer, client: httpx.Client
) -> None:
    server.add_fault(Fault.status(500), match="target", times=2)

    codes = [
        client.post("/draft-events", json=draft(u)).status_code
        for u in ["other", "target", "target", "target"]
    ]

    assert codes == [201, 500, 500, 201]
    assert server.requests_seen == 4


def test_first_live_rule_wins_and_forever_rules_persist(
    server: StandInServer, client: httpx.Client
) -> None:
    server.add_fault(Fault.reject(message="first"), times=1)
    server.add_fault(Fault.status(502), times=None)

    codes = [
        client.post("/draft-events", json=draft("u")).status_code for _ in range(4)
    ]

    assert codes == [400, 502, 502, 502]
    assert server.faults_injected == {"reject": 1, "status": 3}


def test_duplicates(server: StandInServer, client: httpx.Client) -> None:
    for url in ["a", "b", "a", "a"]:
        client.post("/draft-events", json=draft(url))
    client.post("/hook", json={"source_url": "s"})
    client.post("/hook", json={"source_url": "s"})
    client.post("/hook", content=b"raw")
    client.post("/hook", content=b"raw")
    client.post("/hook", content=b"once")

    assert server.duplicates() == {"a": 3, "s": 2, "raw": 2}
    assert server.duplicates(key=lambda r: r["path"]) == {
        "/api/draft-events": 4,
        "/api/hook": 5,
    }


def test_reset_clears_everything(server: StandInServer, client: httpx.Client) -> None:
    server.add_fault(Fault.status(503), times=None)
    client.post("/draft-events", json=draft("u"))
    server.reset()
    client.post("/draft-events", json=draft("u"))

    assert server.requests_seen == 1
    assert server.faults_injected == {}
    assert [r["id"] for r in server.accepted] == ["1"]


def test_fault_helpers_and_json_form() -> None:
    fault = Fault.status(502, "down")

    assert fault == Fault("status", status=502, message="down")
    assert fault.status == 502
    assert Fault.from_json(fault_to_json(fault)) == fault
    with pytest.raises(ValueError):
        Fault("explode")


def test_control_api(server: StandInServer, client: httpx.Client) -> None:
    base = server.url.removesuffix("/api")
    with httpx.Client(base_url=base) as control:
        added = control.post(
            "/_control/faults",
            json=[
                fault_to_json(Fault.status(503), match="x", times=1),
                {"kind": "reject", "status": 422, "message": "nope", "times": None},
            ],
        )
        assert added.json() == {"ok": True, "added": 2}
        for bad in [
            {"kind": "bogus"},
            [{"kind": "reset"}, {"kind": "reset", "times": 0}],
        ]:
            assert control.post("/_control/faults", json=bad).status_code == 400

        assert client.post("/draft-events", json=draft("x")).status_code == 503
        assert client.post("/draft-events", json=draft("y")).status_code == 422

        assert control.get("/_control/stats").json()["faults_injected"] == {
            "status": 1,
            "reject": 1,
        }
        control.post("/_control/reset")
        assert client.post("/draft-events", json=draft("z")).status_code == 201
        [record] = control.get("/_control/accepted").json()

    assert record["body"] == draft("z")
    assert server.requests_seen == 1  # control requests are not counted


def test_start_fails_loudly_when_the_port_is_taken(server: StandInServer) -> None:
    port = int(server.url.rsplit(":", 1)[1].removesuffix("/api"))

    with pytest.raises(RuntimeError, match="failed to start"):
        StandInServer(port=port).start()


def test_stop_does_not_wait_for_a_hung_request() -> None:
    server = StandInServer().start()
    client_thread = threading.Thread(
        target=lambda: pytest.raises(
            httpx.TransportError,
            httpx.post,
            f"{server.url}/hook",
            content=b"x",
            timeout=5.0,
        )
    )
    server.add_fault(Fault.hang(30))
    client_thread.start()
    wait_for(lambda: server.requests_seen == 1)

    started = time.monotonic()
    server.stop()
    client_thread.join(5)

    assert time.monotonic() - started < 3
    assert server.accepted == []  # cancelled before it finished
    # A stopped server can be started again.
    with server:
        assert httpx.post(f"{server.url}/hook", content=b"y").status_code == 200


@pytest.mark.slow
def test_runs_as_a_process() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-W",
            "error::DeprecationWarning",
            "-m",
            "event_importer_tests.standin",
            "--port",
            "0",
            "--latency",
            "0.02",
            "--api-key",
            API_KEY,
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the server prints it as soon as it listens
        assert line.startswith("READY http://127.0.0.1:"), line
        url = line.split()[1]
        base = url.removesuffix("/api")

        headers = {"Authorization": f"Bearer {API_KEY}"}
        httpx.post(f"{base}/_control/faults", json=fault_to_json(Fault.status(503)))
        assert (
            httpx.post(
                f"{url}/draft-events", json=draft("p"), headers=headers
            ).status_code
            == 503
        )
        assert (
            httpx.post(
                f"{url}/draft-events", json=draft("p"), headers=headers
            ).status_code
            == 201
        )

        [record] = httpx.get(f"{base}/_control/accepted").json()
        assert record["body"] == draft("p")
        assert record["headers"]["Authorization"] == "<redacted>"
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert stderr == ""
