"""Alerts about submission runs: what one says, and its delivery to a Slack-style webhook and by email.

An `Alert` is a change of an integration's state: its runs started failing (`FAILING`), or a run
is healthy again after failures (`RECOVERED`). It names the integration and the run with a link to
it in the Dagster UI, the run's counts, why it failed, and its first few failed events with their
reasons and whether each failure is transient (later runs retry it) or permanent.

Targets are configured by settings (`EVENT_IMPORTER_ALERT_*`) and are off until set:

- `WebhookTarget` POSTs a JSON body that Slack incoming webhooks accept (`text`, plus `blocks`);
  any endpoint taking JSON works. The URL is a secret (a Slack URL holds its token).
- `EmailTarget` sends a plain-text email over SMTP, with STARTTLS and a login when configured.

`deliver` tries each target a few times with a growing pause, logs every failure and never raises:
an alert that cannot be delivered must not break what sends it. No secret is ever part of an alert
(the texts it carries were redacted by their sources) or of a delivery error message.
"""

import enum
import logging
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol

import httpx

from event_importer.settings import Settings

logger = logging.getLogger(__name__)

# Failed events an alert lists; the link to the run shows them all.
LISTED_FAILURES = 5
ERROR_LIMIT = 300
# Pauses between delivery attempts: 1 s, 2 s, 4 s... capped, so a tick stays well under a minute.
RETRY_PAUSE_S = 1.0
RETRY_PAUSE_CAP_S = 5.0


class AlertKind(enum.StrEnum):
    FAILING = "failing"
    RECOVERED = "recovered"


@dataclass(frozen=True)
class FailedEvent:
    """One event that failed in the run, as the ledger recorded it."""

    title: str
    source_url: str
    error: str
    #: "transient" or "permanent"; None for failures recorded before kinds existed.
    kind: str | None = None
    http_status: int | None = None


@dataclass(frozen=True)
class Alert:
    """A change of one integration's state, told with the run that changed it."""

    kind: AlertKind
    service: str
    run_id: str
    run_url: str
    #: Outcomes of the run in the ledger: sent, failed, transient, permanent.
    counts: dict[str, int] = field(default_factory=dict)
    #: Why the run failed (asset checks, step errors), already redacted.
    reason: str | None = None
    failures: Sequence[FailedEvent] = ()
    trigger: str | None = None
    selector: str | None = None

    @property
    def title(self) -> str:
        if self.kind is AlertKind.RECOVERED:
            return f"event-importer: {self.service} recovered, run {self.run_id[:8]} is healthy"
        return f"event-importer: {self.service} submission run {self.run_id[:8]} failed"

    def summary(self) -> str:
        """One line: the run, who started it, its counts."""
        started = f" (started by {self.trigger}, selector {self.selector})" if self.trigger else ""
        counts = ", ".join(f"{value} {name}" for name, value in self.counts.items())
        return f"Run {self.run_id}{started}: {counts or 'no events recorded'}."

    def failure_lines(self) -> list[str]:
        lines = []
        for failure in self.failures[:LISTED_FAILURES]:
            kind = failure.kind or "unknown kind"
            status = f"HTTP {failure.http_status}, " if failure.http_status else ""
            name = failure.title or failure.source_url
            lines.append(f"{name} <{failure.source_url}> ({status}{kind}): {_cut(failure.error)}")
        more = self.counts.get("failed", len(self.failures)) - len(lines)
        if more > 0:
            lines.append(f"... and {more} more in the run")
        return lines

    def text(self) -> str:
        """The whole alert as plain text (the email body, Slack's fallback `text`)."""
        parts = [self.title, "", self.summary()]
        if self.reason:
            parts += ["", f"Why: {self.reason}"]
        if self.kind is AlertKind.FAILING and self.failures:
            parts += ["", "First failed events (transient ones are retried by later runs):"]
            parts += [f"- {line}" for line in self.failure_lines()]
        parts += ["", f"Run in the Dagster UI: {self.run_url}"]
        return "\n".join(parts)

    def slack_body(self) -> dict[str, Any]:
        """A Slack incoming-webhook body: `text` for notifications, `blocks` for the message."""
        fields = [
            {"type": "mrkdwn", "text": f"*Integration*\n{self.service}"},
            {"type": "mrkdwn", "text": f"*State*\n{self.kind.value}"},
            {"type": "mrkdwn", "text": f"*Run*\n<{self.run_url}|{self.run_id}>"},
            {"type": "mrkdwn", "text": "*Counts*\n" + (", ".join(f"{v} {k}" for k, v in self.counts.items()) or "-")},
        ]
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": self.title[:150]}},
            {"type": "section", "fields": fields},
        ]
        if self.reason:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Why*\n{_cut(self.reason, 2900)}"}})
        if self.kind is AlertKind.FAILING and self.failures:
            listed = "\n".join(f"• {line}" for line in self.failure_lines())
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*First failed events*\n{listed}"}})
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{self.run_url}|Open the run>"}]})
        return {"text": f"{self.title}. {self.summary()} {self.run_url}", "blocks": blocks}


class Target(Protocol):
    """Where alerts go."""

    name: str

    def send(self, alert: Alert) -> None:
        """Deliver `alert` once; raise on failure with a message that holds no secret."""


class DeliveryError(Exception):
    """An alert could not be delivered to one target (the message never holds a secret)."""


class WebhookTarget:
    """POSTs the Slack-compatible JSON body to the configured URL."""

    name = "webhook"

    def __init__(self, url: str, *, timeout: float) -> None:
        self._url = url
        self.timeout = timeout

    def send(self, alert: Alert) -> None:
        try:
            response = httpx.post(self._url, json=alert.slack_body(), timeout=self.timeout)
        except httpx.TransportError as exc:
            # httpx's messages may name the URL, which holds the webhook's token.
            raise DeliveryError(f"alert webhook: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"alert webhook answered HTTP {response.status_code}")


class EmailTarget:
    """Sends the alert as a plain-text email over SMTP."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        recipients: list[str],
        starttls: bool,
        user: str | None,
        password: str | None,
        timeout: float,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.recipients = recipients
        self.starttls = starttls
        self._user = user
        self._password = password
        self.timeout = timeout

    def message(self, alert: Alert) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = alert.title
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message.set_content(alert.text())
        return message

    def send(self, alert: Alert) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    # Verified against the system's CAs (smtplib's own default verifies nothing).
                    smtp.starttls(context=ssl.create_default_context())
                if self._user:
                    smtp.login(self._user, self._password or "")
                smtp.send_message(self.message(alert))
        except (OSError, smtplib.SMTPException) as exc:
            # SMTP replies can echo what was sent (the login): give the kind and code only.
            code = getattr(exc, "smtp_code", None)
            raise DeliveryError(
                f"alert email via {self.host}:{self.port}: {type(exc).__name__}" + (f" {code}" if code else "")
            ) from None


def configured_targets(settings: Settings) -> list[Target]:
    """The targets the settings configure; empty when alerts are off."""
    targets: list[Target] = []
    if settings.alert_webhook_url is not None:
        targets.append(WebhookTarget(settings.alert_webhook_url.get_secret_value(), timeout=settings.alert_timeout))
    if settings.alert_smtp_host:
        targets.append(
            EmailTarget(
                settings.alert_smtp_host,
                settings.alert_smtp_port,
                sender=settings.alert_email_from or f"event-importer@{settings.alert_smtp_host}",
                recipients=settings.alert_recipients,
                starttls=settings.alert_smtp_starttls,
                user=settings.alert_smtp_user.get_secret_value() if settings.alert_smtp_user else None,
                password=settings.alert_smtp_password.get_secret_value() if settings.alert_smtp_password else None,
                timeout=settings.alert_timeout,
            )
        )
    return targets


def missing_alert_settings(settings: Settings) -> list[str]:
    """What a configured target still lacks (an SMTP host without recipients)."""
    if settings.alert_smtp_host and not settings.alert_recipients:
        return ["EVENT_IMPORTER_ALERT_EMAIL_TO"]
    return []


def deliver(
    alert: Alert,
    targets: Sequence[Target],
    *,
    attempts: int = 3,
    log: logging.Logger | Any = logger,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, str | None]:
    """Send `alert` to every target, each up to `attempts` times; never raises.

    Returns:
        Per target name, None when delivered, else the last error (logged too).
    """
    outcome: dict[str, str | None] = {}
    for target in targets:
        outcome[target.name] = None
        for attempt in range(1, attempts + 1):
            try:
                target.send(alert)
            except DeliveryError as exc:
                error = str(exc)
            except Exception as exc:  # noqa: BLE001 - a broken target must not stop the others
                error = f"{target.name}: {type(exc).__name__}"
            else:
                outcome[target.name] = None
                break
            outcome[target.name] = error
            if attempt < attempts:
                log.warning(f"{alert.service}: alert delivery attempt {attempt}/{attempts} failed: {error}; retrying")
                sleep(min(RETRY_PAUSE_CAP_S, RETRY_PAUSE_S * 2 ** (attempt - 1)))
            else:
                log.error(f"{alert.service}: alert not delivered to {target.name} after {attempts} attempts: {error}")
    return outcome


def _cut(text: str, limit: int = ERROR_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
