"""Alerts on a real Dagster instance: the alerts sensor evaluated over real run records of the TicketFairy
job (executed against the loopback stand-in), delivering to a real HTTP receiver on 127.0.0.1 and a
real SMTP server (aiosmtpd). One alert per change of state, a recovery notice, and no secret in any."""

import email
import email.policy
import json
import socket
from collections.abc import Iterator

import dagster as dg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from event_importer.alerts import Alert, AlertKind, WebhookTarget, deliver
from event_importer.framework.discovery import discover
from event_importer.orchestration import integration_defs
from event_importer.orchestration.resources import DatabaseResource
from event_importer_tests.conftest import TEST_API_KEY, reset_process_state
from event_importer_tests.factories import add_events, event_data
from event_importer_tests.orchestration.conftest import SERVICE
from event_importer_tests.standin import Fault, StandInServer

JOB = f"{SERVICE}_submit_job"
SENSOR = f"{SERVICE}_alerts_sensor"
HOOK_TOKEN = "hook-token-5e4d3c2b1a"
SMTP_USER = "alerts-user"
SMTP_PASSWORD = "smtp-pass-0a9b8c7d"
UI_URL = "https://dagster.example.org/ui"


class Mailbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.raw: list[bytes] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.raw.append(envelope.content)
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        if ok:
            self.logins.append(SMTP_USER)
        return AuthResult(success=ok)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(
        box, hostname="127.0.0.1", port=port, authenticator=box.authenticate, auth_require_tls=False
    )
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def receiver() -> Iterator[StandInServer]:
    """The HTTP endpoint taking the Slack-style alert bodies."""
    with StandInServer() as server:
        yield server


@pytest.fixture
def alert_env(receiver, mailbox, monkeypatch):
    _, port = mailbox
    env = {
        "EVENT_IMPORTER_ALERT_WEBHOOK_URL": f"{receiver.url}/hooks/{HOOK_TOKEN}",
        "EVENT_IMPORTER_ALERT_SMTP_HOST": "127.0.0.1",
        "EVENT_IMPORTER_ALERT_SMTP_PORT": str(port),
        "EVENT_IMPORTER_ALERT_SMTP_STARTTLS": "false",
        "EVENT_IMPORTER_ALERT_SMTP_USER": SMTP_USER,
        "EVENT_IMPORTER_ALERT_SMTP_PASSWORD": SMTP_PASSWORD,
        "EVENT_IMPORTER_ALERT_EMAIL_FROM": "importer@example.org",
        "EVENT_IMPORTER_ALERT_EMAIL_TO": "ops@example.org, promoter@example.org",
        "EVENT_IMPORTER_UI_URL": UI_URL,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_process_state()
    return env


@pytest.fixture
def defs(event_db) -> dg.Definitions:
    return integration_defs(discover().get(SERVICE))


def run_job(defs, instance, selector="unsubmitted", dry_run=False):
    job = defs.resolve_job_def(JOB)
    config = {"selector": selector, "dry_run": dry_run}
    tags = {"event-importer/trigger": "cli", "event-importer/dry_run": str(dry_run).lower()}
    return job.execute_in_process(
        run_config={"ops": {f"{SERVICE}__selected_events": {"config": config}}},
        instance=instance,
        raise_on_error=False,
        tags=tags,
    )


def tick(defs, instance, cursor):
    sensor = defs.resolve_sensor_def(SENSOR)
    context = dg.build_sensor_context(cursor=cursor, instance=instance, resources={"database": DatabaseResource()})
    result = sensor.evaluate_tick(context)
    assert not result.run_requests
    return result.cursor or cursor


def secrets_in(text: str) -> list[str]:
    return [s for s in (TEST_API_KEY, HOOK_TOKEN, SMTP_PASSWORD) if s in text]


def test_one_alert_per_change_of_state_to_webhook_and_email(
    defs, instance, event_db, ticketfairy_env, alert_env, receiver, mailbox
):
    box, _ = mailbox
    cursor = tick(defs, instance, None)  # starts at the end of the log
    add_events(
        event_db,
        event_data(title="Flaky gig"),
        event_data(title="Rejected gig"),
        event_data(title="Fine gig"),
    )
    ticketfairy_env.add_fault(Fault.status(503, "upstream down"), match="Flaky gig", times=None)
    ticketfairy_env.add_fault(Fault.reject(422, "start date is in the past"), match="Rejected gig", times=None)

    failed = run_job(defs, instance)
    assert not failed.success  # 2 of 3 failed: above the 50 % threshold
    cursor = tick(defs, instance, cursor)
    [post] = receiver.accepted
    [mail] = box.messages
    assert post["path"].endswith(HOOK_TOKEN)
    body = post["body"]
    assert set(body) >= {"text", "blocks"} and SERVICE in body["text"]
    slack = json.dumps(body)
    text = mail.get_content()
    for content in (slack, text):
        assert failed.run_id in content
        assert f"{UI_URL}/runs/{failed.run_id}" in content
        assert "1 sent, 2 failed, 1 transient, 1 permanent" in content
        assert "asset check failure_rate failed" in content
        assert "Flaky gig" in content and "HTTP 503" in content and "transient" in content
        assert "Rejected gig" in content and "HTTP 422" in content and "permanent" in content
        assert "start date is in the past" in content
    assert "failed" in mail["Subject"] and SERVICE in mail["Subject"]
    assert mail["To"] == "ops@example.org, promoter@example.org"
    assert box.logins == [SMTP_USER]

    # Still failing: no second alert.
    again = run_job(defs, instance, selector="failed")
    assert not again.success
    cursor = tick(defs, instance, cursor)
    assert len(receiver.accepted) == 1 and len(box.messages) == 1

    # A dry run says nothing about the destination, even a healthy one.
    ticketfairy_env.reset()
    assert run_job(defs, instance, selector="failed", dry_run=True).success
    cursor = tick(defs, instance, cursor)
    assert len(receiver.accepted) == 1 and len(box.messages) == 1

    healthy = run_job(defs, instance, selector="failed")
    assert healthy.success
    cursor = tick(defs, instance, cursor)
    assert len(receiver.accepted) == 2 and len(box.messages) == 2
    recovery = json.dumps(receiver.accepted[1]["body"])
    assert "recovered" in recovery and healthy.run_id in recovery
    assert "recovered" in box.messages[1]["Subject"] and healthy.run_id in box.messages[1].get_content()

    # Healthy stays quiet.
    assert run_job(defs, instance, selector="failed").success
    tick(defs, instance, cursor)
    assert len(receiver.accepted) == 2 and len(box.messages) == 2

    everything = json.dumps([r["body"] for r in receiver.accepted]) + b"".join(box.raw).decode()
    assert secrets_in(everything) == []


def test_alerts_are_off_until_configured(defs, instance, event_db, ticketfairy_env, receiver, mailbox):
    box, _ = mailbox
    cursor = tick(defs, instance, None)
    add_events(event_db, event_data())
    ticketfairy_env.add_fault(Fault.status(503), times=None)
    assert not run_job(defs, instance).success
    sensor = defs.resolve_sensor_def(SENSOR)
    result = sensor.evaluate_tick(
        dg.build_sensor_context(cursor=cursor, instance=instance, resources={"database": DatabaseResource()})
    )
    assert "no alert target is configured" in (result.skip_message or "")
    assert receiver.accepted == [] and box.messages == []
    assert sensor.default_status is dg.DefaultSensorStatus.STOPPED


def alert() -> Alert:
    return Alert(AlertKind.RECOVERED, SERVICE, "run-1", f"{UI_URL}/runs/run-1", {"sent": 1})


def test_a_failed_delivery_is_retried_and_never_raises(receiver):
    receiver.add_fault(Fault.status(503), times=2)
    target = WebhookTarget(f"{receiver.url}/hooks/{HOOK_TOKEN}", timeout=5)
    assert deliver(alert(), [target], attempts=3, sleep=lambda _: None) == {"webhook": None}
    assert len(receiver.accepted) == 1 and receiver.requests_seen == 3

    receiver.add_fault(Fault.status(500), times=None)
    messages: list[str] = []

    class Log:
        def warning(self, text):
            messages.append(text)

        error = warning

    outcome = deliver(alert(), [target], attempts=2, log=Log(), sleep=lambda _: None)
    assert outcome == {"webhook": "alert webhook answered HTTP 500"}
    assert len(messages) == 2 and "after 2 attempts" in messages[-1]

    closed = WebhookTarget(f"http://127.0.0.1:{free_port()}/hooks/{HOOK_TOKEN}", timeout=5)
    outcome = deliver(alert(), [closed], attempts=1, log=Log(), sleep=lambda _: None)
    assert outcome["webhook"] and HOOK_TOKEN not in outcome["webhook"]
    assert not any(HOOK_TOKEN in m for m in messages)


@pytest.fixture
def tls_mailbox(tmp_path) -> Iterator[tuple[Mailbox, int, str]]:
    """An SMTP server that requires STARTTLS before a login, with a certificate made for 127.0.0.1."""
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = Mailbox()
    port = free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        authenticator=box.authenticate,
        tls_context=context,
        require_starttls=True,
    )
    controller.start()
    yield box, port, str(cert)
    controller.stop()


def test_email_goes_over_starttls_to_a_verified_server_only(tls_mailbox, monkeypatch):
    from event_importer.alerts import EmailTarget

    box, port, cert = tls_mailbox

    def target():
        return EmailTarget(
            "127.0.0.1",
            port,
            sender="importer@example.org",
            recipients=["ops@example.org"],
            starttls=True,
            user=SMTP_USER,
            password=SMTP_PASSWORD,
            timeout=5,
        )

    # The certificate is not trusted: nothing is sent, and the error names no secret.
    outcome = deliver(alert(), [target()], attempts=1, sleep=lambda _: None)
    assert outcome["email"] and "SSL" in outcome["email"] and SMTP_PASSWORD not in outcome["email"]
    assert box.messages == []

    monkeypatch.setenv("SSL_CERT_FILE", cert)  # trusted from now on
    assert deliver(alert(), [target()], attempts=1, sleep=lambda _: None) == {"email": None}
    [mail] = box.messages
    assert box.logins == [SMTP_USER]
    assert "recovered" in mail["Subject"] and f"{UI_URL}/runs/run-1" in mail.get_content()
