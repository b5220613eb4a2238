"""TicketFairy's settings (prefix `TICKETFAIRY_`)."""

from pydantic import Field, SecretStr, field_validator

from event_importer.sdk import IntegrationSettings, check_http_url


class TicketFairySettings(IntegrationSettings, env_prefix="TICKETFAIRY_"):
    required = ("api_key",)

    api_key: SecretStr | None = Field(default=None, description="API key (Bearer token); required to send.")
    api_url: str = Field(default="https://www.theticketfairy.com/api", description="Base URL of the API.")
    origin: str = Field(default="https://www.theticketfairy.com", description="Origin header sent with requests.")

    @field_validator("api_url", "origin")
    @classmethod
    def _http_url(cls, value: str) -> str:
        checked = check_http_url(value)
        if not checked:
            raise ValueError("must be an absolute http(s) URL")
        return checked
