"""POSTs signed JSON to the webhook URL, signed as the Standard Webhooks specification says.

Each request carries (https://www.standardwebhooks.com, "Verifying webhooks")

    webhook-id: <the idempotency key below>
    webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>
    Idempotency-Key: <hex SHA-256 of "<service>:<id>:<version>"> (`delivery_version`)

(`<service>` is the integration's name, `webhook`.)

so any Standard Webhooks library verifies a delivery. The key is the secret's bytes: a secret in the
specification's form `whsec_<base64>` is base64-decoded (what the libraries do with such a string);
any other secret is used as its UTF-8 bytes (give the libraries those bytes, e.g. Python's
`Webhook(secret.encode())`). The HMAC covers the id, the timestamp and the exact body bytes, so a
receiver verifies the raw body before parsing it, and rejects timestamps further than a tolerance
(five minutes by default) from its own clock, which bounds how long a captured request can be
replayed. Every attempt is signed afresh: a retry after a long `Retry-After` is still fresh. The
signature header may hold several space-separated signatures (a receiver accepts any that matches),
which leaves room for rotating the secret. The id is the same for every delivery of one version of
one event, retries and resends included, as the specification asks, so a receiver can drop what it
already has; a new version gets a new id, and so do a cancellation and a deletion (a deletion
carries the last version's data, whose `created` or `updated` delivery the receiver already has).

Any 2xx answer is success, whatever its body: many receivers answer `204` or a plain `ok`.
"""

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from event_importer.sdk import DEFAULT_OPTIONS, ClientOptions, ConfigurationError, HttpClient

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_VERSION = "v1"
SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_S = 300
# Enough of a receiver's non-JSON answer to recognise it in the submission record.
ANSWER_TEXT_LIMIT = 500


def signing_key(secret: str | bytes) -> bytes:
    """The HMAC key of a secret: `whsec_<base64>` decoded, any other text as its UTF-8 bytes.

    Raises:
        ConfigurationError: the secret starts with `whsec_` but the rest is not base64 (the message
            names the setting, never the value).
    """
    if isinstance(secret, bytes):
        return secret
    if secret.startswith(SECRET_PREFIX):
        # Decoded as the Standard Webhooks libraries decode it (padding optional), so both ends agree.
        try:
            key = base64.b64decode(secret.removeprefix(SECRET_PREFIX) + "==")
        except (binascii.Error, ValueError):
            key = b""
        if not key:
            raise ConfigurationError(
                "WEBHOOK_SECRET: starts with whsec_ but the rest is not base64; give a whsec_ secret "
                "as generated, or a plain secret without the prefix"
            )
        return key
    return secret.encode()


def signature_headers(
    secret: str | bytes, message_id: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """The `webhook-id`, `webhook-timestamp` and `webhook-signature` headers for `body`, signed now."""
    t = int(time.time()) if timestamp is None else timestamp
    signature = _sign(signing_key(secret), message_id, t, body)
    return {ID_HEADER: message_id, TIMESTAMP_HEADER: str(t), SIGNATURE_HEADER: f"{SIGNATURE_VERSION},{signature}"}


def verify_signature(
    secret: str | bytes,
    body: bytes | str,
    headers: Mapping[str, str],
    *,
    tolerance: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Whether `headers` carry a valid, fresh Standard Webhooks signature of `body` made with `secret`.

    For receivers without a Standard Webhooks library; with one, use it.

    Args:
        secret: the shared `WEBHOOK_SECRET` (`whsec_...` or plain, as configured on the sender).
        body: the request body exactly as received (verify before parsing: re-serialised JSON differs).
        headers: the request's headers (names in any case).
        tolerance: largest accepted difference, in seconds, between the signature's timestamp and
            `now`, either way; older requests are treated as replays.
        now: the receiver's current Unix time; default: the clock.

    Returns:
        True when the timestamp is within the tolerance and a `v1` signature matches.
    """
    lower = {name.lower(): value for name, value in headers.items()}
    message_id, stamp, header = (lower.get(n) for n in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER))
    if not message_id or not stamp or not header:
        return False
    try:
        timestamp = int(stamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    try:
        key = signing_key(secret)
    except ConfigurationError:
        return False
    raw = body.encode() if isinstance(body, str) else body
    expected = _sign(key, message_id, timestamp, raw)
    candidates = [
        value for version, _, value in (item.partition(",") for item in header.split()) if version == SIGNATURE_VERSION
    ]
    # Every candidate is compared (a list, not a short-circuiting generator), each in constant time.
    return any([hmac.compare_digest(expected, candidate) for candidate in candidates])  # noqa: C419


def idempotency_key(event_id: str, data_hash: str, *, service: str) -> str:
    """The same for every delivery of one version of one event, different for the next version."""
    return hashlib.sha256(f"{service}:{event_id}:{data_hash}".encode()).hexdigest()


def delivery_version(body: Mapping[str, Any]) -> str:
    """What the idempotency key identifies besides the event: its version, and what happened to it
    unless that is a plain creation or update (which share a key, as a resend may be either)."""
    action = body.get("event")
    version = str(body.get("data_hash"))
    return version if action in (None, "created", "updated") else f"{version}:{action}"


def message_id(body: bytes, *, service: str) -> str:
    """The `webhook-id` of a body this client encoded: its idempotency key, read back from the body."""
    data = json.loads(body)
    return idempotency_key(str(data.get("id")), delivery_version(data), service=service)


def encode_body(body: Mapping[str, Any]) -> bytes:
    """Compact, key-sorted UTF-8 JSON: one version of an event always makes the same bytes."""
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def _sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class WebhookClient(HttpClient):
    """A client for one run. The secret is kept out of `repr` and every message."""

    def __init__(
        self,
        *,
        service_name: str,
        url: str,
        secret: SecretStr,
        options: ClientOptions = DEFAULT_OPTIONS,
    ) -> None:
        self._url = url
        # The HMAC key, derived once; the secret itself is unwrapped only here.
        self._key = signing_key(secret.get_secret_value())
        super().__init__(
            service_name=service_name,
            # Requests go to the absolute URL as given: a base URL would gain a trailing slash.
            base_url=url,
            headers={"Accept": "application/json", "User-Agent": "event-importer-webhook"},
            options=options,
            secrets=[secret],
        )

    def __repr__(self) -> str:
        # The host only: webhook URLs often carry a token in their path (Slack, Zapier and the like).
        return f"WebhookClient(host={urlsplit(self._url).hostname!r})"

    async def submit(self, data: dict[str, Any]) -> dict[str, Any]:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            IDEMPOTENCY_HEADER: idempotency_key(str(data["id"]), delivery_version(data), service=self.service_name),
        }
        return await self.request_json("POST", self._url, content=encode_body(data), headers=headers)

    def request_headers(self, content: bytes | None) -> Mapping[str, str]:
        # Signed per attempt, not once per event in `submit`: a retry may come minutes later
        # (Retry-After), and its timestamp must still be within the receiver's tolerance.
        return signature_headers(self._key, message_id(content or b"{}", service=self.service_name), content or b"")

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
