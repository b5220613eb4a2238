"""Posts draft events to TicketFairy's `/draft-events` endpoint."""

from typing import Any

from event_importer.sdk import DEFAULT_OPTIONS, ClientOptions, ConfigurationError, HttpClient


class TicketFairyClient(HttpClient):
    """A client for one run. The API key is kept out of `repr` and every message."""

    def __init__(
        self,
        *,
        api_key: str | None,
        api_url: str,
        origin: str,
        options: ClientOptions = DEFAULT_OPTIONS,
    ) -> None:
        self._api_key = api_key
        super().__init__(
            service_name="ticketfairy",
            base_url=api_url,
            headers={"Accept": "application/json", "Origin": origin},
            options=options,
            secrets=[api_key],
        )

    def __repr__(self) -> str:
        return f"TicketFairyClient(api_url={self.base_url!r})"

    def check_configured(self) -> None:
        if not self._api_key:
            raise ConfigurationError("TICKETFAIRY_API_KEY is not set: it is needed to send events to TicketFairy")

    async def submit(self, data: dict[str, Any]) -> dict[str, Any]:
        self.check_configured()
        return await self.post_json(
            "/draft-events", data, headers={"Authorization": f"Bearer {self._api_key}"}
        )
