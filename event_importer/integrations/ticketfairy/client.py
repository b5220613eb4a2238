"""Posts draft events to TicketFairy's `/draft-events` endpoint."""

from typing import Any

from pydantic import SecretStr

from event_importer.sdk import DEFAULT_OPTIONS, ClientOptions, HttpClient


class TicketFairyClient(HttpClient):
    """A client for one run. The API key is kept out of `repr` and every message."""

    def __init__(
        self,
        *,
        service_name: str,
        api_key: SecretStr,
        api_url: str,
        origin: str,
        options: ClientOptions = DEFAULT_OPTIONS,
    ) -> None:
        self._api_key = api_key
        super().__init__(
            service_name=service_name,
            base_url=api_url,
            headers={"Accept": "application/json", "Origin": origin},
            options=options,
            secrets=[api_key],
        )

    def __repr__(self) -> str:
        return f"TicketFairyClient(api_url={self.base_url!r})"

    async def submit(self, data: dict[str, Any]) -> dict[str, Any]:
        authorization = f"Bearer {self._api_key.get_secret_value()}"
        return await self.post_json("/draft-events", data, headers={"Authorization": authorization})
