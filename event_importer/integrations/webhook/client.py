"""POSTs signed JSON to the webhook URL, and the signature scheme receivers verify.

Each request carries

    Webhook-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(WEBHOOK_SECRET, "<t>." + body)>
    Idempotency-Key: <hex SHA-256 of "webhook:<id>:<data_hash>">

in the manner of Stripe's and GitHub's signatures. The HMAC covers the timestamp and the exact body
bytes, so a receiver verifies the raw body before parsing it, and rejects timestamps further than a
tolerance (five minutes by default) from its own clock, which bounds how long a captured request can
be replayed. Every attempt is signed afresh: a retry after a long `Retry-After` is still fresh. The
header may hold several `v1=` entries (a receiver accepts any that matches), which leaves room for
rotating the secret. The idempotency key is the same for every delivery of one version of one event,
retries and resends included, so a receiver can drop what it already has; a new version gets a new key,
and so do a cancellation and a deletion (a deletion carries the last version's data, whose `created`
or `updated` delivery the receiver already has).

Any 2xx answer is success, whatever its body: many receivers answer `204` or a plain `ok`.
"""

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from event_importer.errors import ConfigurationError
from event_importer.integrations.base import DEFAULT_OPTIONS, ClientOptions
from event_importer.integrations.http import HttpClient

SERVICE_NAME = "webhook"
SIGNATURE_HEADER = "Webhook-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300
# Enough of a receiver's non-JSON answer to recognise it in the submission record.
ANSWER_TEXT_LIMIT = 500


def signature_header(secret: str | bytes, body: bytes, *, timestamp: int | None = None) -> str:
    """The `Webhook-Signature` value for `body`, signed now (or at `timestamp`)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},{SIGNATURE_VERSION}={_hmac(secret, t, body)}"


def verify_signature(
    secret: str | bytes,
    body: bytes | str,
    header: str | None,
    *,
    tolerance: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Whether `header` is a valid, fresh signature of `body` made with `secret`.

    Args:
        secret: the shared `WEBHOOK_SECRET`.
        body: the request body exactly as received (verify before parsing: re-serialised JSON differs).
        header: the `Webhook-Signature` header value.
        tolerance: largest accepted difference, in seconds, between the signature's timestamp and
            `now`, either way; older requests are treated as replays.
        now: the receiver's current Unix time; default: the clock.

    Returns:
        True when the timestamp is within the tolerance and a `v1` signature matches.
    """
    if not header:
        return False
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == SIGNATURE_VERSION:
            signatures.append(value)
    if timestamp is None or not signatures:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    raw = body.encode() if isinstance(body, str) else body
    expected = _hmac(secret, timestamp, raw)
    # Every candidate is compared (a list, not a short-circuiting generator), each in constant time.
    return any([hmac.compare_digest(expected, candidate) for candidate in signatures])  # noqa: C419


def idempotency_key(event_id: str, data_hash: str, *, service: str = SERVICE_NAME) -> str:
    """The same for every delivery of one version of one event, different for the next version."""
    return hashlib.sha256(f"{service}:{event_id}:{data_hash}".encode()).hexdigest()


def delivery_version(body: Mapping[str, Any]) -> str:
    """What the idempotency key identifies besides the event: its version, and what happened to it
    unless that is a plain creation or update (which share a key, as a resend may be either)."""
    action = body.get("event")
    version = str(body["data_hash"])
    return version if action in (None, "created", "updated") else f"{version}:{action}"


def encode_body(body: Mapping[str, Any]) -> bytes:
    """Compact, key-sorted UTF-8 JSON: one version of an event always makes the same bytes."""
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def _hmac(secret: str | bytes, timestamp: int, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


class WebhookClient(HttpClient):
    """A client for one run. The secret is kept out of `repr` and every message."""

    def __init__(
        self,
        *,
        url: str | None,
        secret: str | None,
        options: ClientOptions = DEFAULT_OPTIONS,
    ) -> None:
        self._url = url
        self._secret = secret
        super().__init__(
            service_name=SERVICE_NAME,
            # Requests go to the absolute URL as given: a base URL would gain a trailing slash.
            base_url=url or "",
            headers={"Accept": "application/json", "User-Agent": "event-importer-webhook"},
            options=options,
            secrets=[secret],
        )

    def __repr__(self) -> str:
        # The host only: webhook URLs often carry a token in their path (Slack, Zapier and the like).
        return f"WebhookClient(host={urlsplit(self._url or '').hostname!r})"

    def check_configured(self) -> None:
        missing = [name for name, value in (("WEBHOOK_URL", self._url), ("WEBHOOK_SECRET", self._secret)) if not value]
        if missing:
            raise ConfigurationError(f"{' and '.join(missing)} not set: needed to send events to the webhook")

    async def submit(self, data: dict[str, Any]) -> dict[str, Any]:
        self.check_configured()
        assert self._url is not None
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            IDEMPOTENCY_HEADER: idempotency_key(str(data["id"]), delivery_version(data)),
        }
        return await self.request_json("POST", self._url, content=encode_body(data), headers=headers)

    def request_headers(self, content: bytes | None) -> Mapping[str, str]:
        # Signed per attempt, not once per event in `submit`: a retry may come minutes later
        # (Retry-After), and its timestamp must still be within the receiver's tolerance.
        assert self._secret is not None
        return {SIGNATURE_HEADER: signature_header(self._secret, content or b"")}

    def parse_success(self, response: httpx.Response) -> dict[str, Any]:
        # Any 2xx is success, whatever its body; the body is kept when there is one.
        answer: dict[str, Any] = {"status": response.status_code}
        text = response.text.strip()
        if text:
            try:
                answer["body"] = response.json()
            except ValueError:
                answer["text"] = text[:ANSWER_TEXT_LIMIT]
        return answer
