"""The webhook's settings (prefix `WEBHOOK_`): where to POST and the secret the bodies are signed with."""

from pydantic import Field, SecretStr, field_validator

from event_importer.sdk import ConfigurationError, IntegrationSettings, check_http_url


class WebhookSettings(IntegrationSettings, env_prefix="WEBHOOK_"):
    required = ("url", "secret")

    url: str | None = Field(default=None, description="Endpoint every event is POSTed to; required to send.")
    secret: SecretStr | None = Field(
        default=None,
        description="Secret of the Standard Webhooks signature: whsec_<base64> or any text; required to send.",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return check_http_url(value)

    @field_validator("secret")
    @classmethod
    def _signing_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from event_importer.integrations.webhook.client import signing_key

            try:
                signing_key(value.get_secret_value())
            except ConfigurationError:
                raise ValueError("starts with whsec_ but the rest is not base64") from None
        return value
