"""The webhook's settings (prefix `WEBHOOK_`): where to POST and the secret the bodies are signed with."""

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from event_importer.events.model import check_http_url
from event_importer.settings import ENV_FILE, IntegrationSettings


class WebhookSettings(IntegrationSettings):
    model_config = SettingsConfigDict(env_prefix="WEBHOOK_", env_file=ENV_FILE, extra="ignore", validate_default=True)

    url: str | None = Field(default=None, description="Endpoint every event is POSTed to; required to send.")
    secret: SecretStr | None = Field(
        default=None, description="Shared secret for the HMAC-SHA256 signature; required to send."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return check_http_url(value)

    def missing(self) -> list[str]:
        missing = [] if self.url else ["WEBHOOK_URL"]
        if not (self.secret and self.secret.get_secret_value()):
            missing.append("WEBHOOK_SECRET")
        return missing
