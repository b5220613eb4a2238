"""Stores each event's VCALENDAR in a CalDAV calendar collection by HTTP PUT.

CalDAV stores a calendar object resource with a plain PUT (RFC 4791, section 5.3.2), so this is an
`HttpClient` with basic auth (none when no user name is set, for servers without authentication)
and no CalDAV library. Each event goes to `<collection>/<uid>.ics`,
its UID being stable per event, and the PUT is unconditional: sending an event again overwrites that
one resource (201 the first time, 204 after), so a resend updates the calendar entry in place and
never makes a second one. The flip side: edits made to the entry in a calendar app are overwritten
by the next update. A payload `{"uid", "delete": true}` DELETEs the resource instead (a removal with
`CALDAV_REMOVAL=delete`); a resource already gone (404, 410) counts as deleted.
"""

from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from event_importer.sdk import DEFAULT_OPTIONS, ClientOptions, HttpClient, RejectedSubmissionError

# What usually lies behind an error status, named by setting and never by value.
_HINTS = {
    401: "check CALDAV_USERNAME and CALDAV_PASSWORD",
    403: "check that CALDAV_USERNAME may write to CALDAV_URL",
    404: "is CALDAV_URL an existing calendar collection?",
    409: "is CALDAV_URL an existing calendar collection?",
}


class CalDavClient(HttpClient):
    """A client for one run. The password is kept out of `repr` and every message."""

    def __init__(
        self,
        *,
        service_name: str,
        url: str,
        username: str | None = None,
        password: SecretStr | None = None,
        options: ClientOptions = DEFAULT_OPTIONS,
    ) -> None:
        self._collection = url.rstrip("/") + "/"
        self._url = url
        self._username = username
        # Unwrapped only into the auth; a user name without a password never gets here (required together).
        auth = httpx.BasicAuth(username, password.get_secret_value()) if username and password else None
        super().__init__(service_name=service_name, base_url=url, options=options, secrets=[password], auth=auth)

    def __repr__(self) -> str:
        return f"CalDavClient(url={self._url!r}, username={self._username!r})"

    def resource_url(self, uid: str) -> str:
        """Where the event with this UID lives: `<collection>/<uid>.ics`."""
        # Percent-encoded ("@" as %40), the form servers such as Radicale report the href in.
        return f"{self._collection}{quote(uid, safe='')}.ics"

    async def submit(self, data: dict[str, Any]) -> dict[str, Any]:
        """PUT one VCALENDAR (`{"uid", "ics"}`) and return `{"href", "etag", "status", "created"}`."""
        url = self.resource_url(str(data["uid"]))
        if data.get("delete"):
            return await self._delete(url)
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        return await self.request_json("PUT", url, content=str(data["ics"]).encode(), headers=headers)

    async def _delete(self, url: str) -> dict[str, Any]:
        try:
            answer = await self.request_json("DELETE", url)
        except RejectedSubmissionError as exc:
            if exc.status not in (404, 410):
                raise
            # Already gone (deleted by hand, or by an earlier attempt whose answer was lost).
            return {"href": url, "status": exc.status, "deleted": True}
        return {**answer, "deleted": True}

    def parse_success(self, response: httpx.Response) -> dict[str, Any]:
        # A PUT answers with an empty body; the ETag identifies the stored version.
        status = response.status_code
        return {
            "href": str(response.url),
            "etag": response.headers.get("etag"),
            "status": status,
            "created": status == 201,
        }

    def error_hint(self, response: httpx.Response) -> str | None:
        status = response.status_code
        if 300 <= status < 400:
            location = response.headers.get("location")
            return f"redirected{f' to {location}' if location else ''}: set CALDAV_URL to the calendar's final URL"
        return _HINTS.get(status)
